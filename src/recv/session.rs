//! One receiving session on its socket, once the sender authenticated: the offer and the plan,
//! every file's bytes (small ones from the read-ahead and handed to the writer threads, the
//! others by the configured data path straight into their part files), each checked against
//! its digest and put in place, then the summary.

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::thread;

use anyhow::Context;

use super::mirror;
use super::plan::{self, SessionPlan, read_ahead, size};
use crate::config::RecvConfig;
use crate::copy::batch::{self, Inbox};
use crate::copy::{self, Framing, Incoming, Moved, Timed};
use crate::datapath::{DataPath, Encryption, Method};
use crate::disk::writer::{Job, Writer};
use crate::disk::{self, Barrier, Decision, Destination, LockedPart, Refusal, Target};
use crate::error::{ExitCode, SessionError, exit_code, idle_in, refusal_reason};
use crate::link::peer::{self, unexpected};
use crate::progress::Ui;
use crate::protocol::{
    self, Entry, ErrorCode, Message, ProtocolError, Summary, Verdict, VerdictStatus,
};
use crate::report::events::{Event, Events};
use crate::report::{FileReport, Report, Status};
use crate::role::Role;
use crate::sys::{rusage, signals};

/// What one session reads: the receiver's options and destination, and the channel's
/// protection (for the report).
pub(super) struct Session<'r> {
    pub cfg: &'r RecvConfig,
    pub dest: &'r Destination,
    pub encryption: Encryption,
}

impl Session<'_> {
    /// One session, from the offer to the end, on a socket whose handshake passed; the offer
    /// is read against the handshake's deadline (`handshake`). `data_starts` is called once the
    /// plan is sent and file data may flow.
    pub fn serve(
        &self,
        mut socket: TcpStream,
        mut handshake: peer::Deadline,
        data_starts: impl FnOnce(),
    ) -> anyhow::Result<Report> {
        // Writes may stall too (a sender that stops reading): bound them like idle reads.
        socket.set_write_timeout(self.cfg.net.idle_timeout).context("setting the write timeout")?;
        let offer = match handshake.next_message("the sender's offer") {
            Ok(Message::Offer(offer)) => offer,
            Ok(other) => return Err(tell_peer(&mut socket, unexpected("OFFER", &other))),
            Err(e) => return Err(tell_peer(&mut socket, e)),
        };
        if let Err(e) = plan::check_bounds(&offer.entries) {
            return Err(tell_peer(&mut socket, e.into()));
        }
        match self.dest.directory_for(&offer.entries) {
            Ok(None) => self.serve_offer(socket, offer, None, data_starts),
            Ok(Some((dir, created))) => {
                let encryption = self.encryption.clone();
                let session = Session { cfg: self.cfg, dest: &dir, encryption };
                let created = created.then(|| self.cfg.output.display().to_string());
                session.serve_offer(socket, offer, created, data_starts)
            }
            Err(e) => Err(tell_peer(&mut socket, e)),
        }
    }

    /// The session after the offer: the plan, the files, the summary. `created` names the
    /// output directory this session created, for the report.
    fn serve_offer(
        &self,
        mut socket: TcpStream,
        offer: protocol::Offer,
        created: Option<String>,
        data_starts: impl FnOnce(),
    ) -> anyhow::Result<Report> {
        let mut plan = plan::plan(&offer.entries, self.dest, self.cfg);
        protocol::write_plan(&mut Timed::replying(&socket), plan.answers())
            .context("sending the plan")?;
        peer::set_timeout(&socket, self.cfg.net.idle_timeout)?;
        data_starts();
        let start = rusage::Snapshot::now();
        let mut inbox = Inbox::new(&socket);
        let barrier = self.cfg.fsync.then(|| Barrier::new(self.cfg.policy.force, self.sessions()));
        let events = Events::new(self.cfg.print.events);
        let received =
            self.receive_all(&mut inbox, &offer.entries, &mut plan, barrier.as_ref(), &events);
        // The files held for --fsync get their names before directory modes are applied (a
        // read-only mode would stop the renames).
        let placed =
            received.and_then(|t| barrier.as_ref().map_or(Ok(()), Barrier::flush).map(|_| t));
        let total = match placed {
            Ok(total) => total,
            Err(e) => return Err(tell_peer(&mut socket, self.explain_idle(e))),
        };
        // Only the directories this session created or found: a refused one (unsafe name, a
        // symlink in the way) has nothing to finish, and must not fail the session.
        let dirs = offer.entries.iter().zip(&plan.decisions).rev();
        let made = dirs.filter(|(_, d)| matches!(d, Ok(Decision::Dir { created: true })));
        self.dest.finish_dirs(made.map(|(entry, _)| entry), self.cfg.policy)?;
        if let Some(errno) = self.dest.modes_refused() {
            Ui::hidden().warn(&format!(
                "{}: the file system keeps no Unix modes (chmod: {}): what landed has the modes it gives",
                self.cfg.output.display(),
                errno.desc()
            ));
        }
        if let Some(barrier) = &barrier
            && let Err(e) = self.sync_dirs(barrier, &offer.entries, &plan, created.is_some())
        {
            // Every file already has its name: say so, and that --fsync's promise does not hold.
            let e = e.context("the files are in place, but not known to be durable (--fsync)");
            return Err(tell_peer(&mut socket, e));
        }
        // Files the barrier could not name (the name was taken meanwhile): refused alone.
        let refused = barrier.as_ref().map(Barrier::take_refused).unwrap_or_default();
        refuse_written(&mut plan, refused, &events);
        let idle = self.cfg.net.idle_timeout;
        let sender = match peer::next_message_from(&mut inbox, idle, "the sender's statistics")? {
            Message::Finish(stats) => stats,
            other => return Err(unexpected("FINISH", &other)),
        };
        let removed = self.mirror(&offer.entries, &plan, &events)?;
        let stats = start.side_stats(&total);
        let summary = Summary { verdicts: plan.verdicts.clone(), stats: stats.clone() };
        protocol::write_message(&mut Timed::replying(&socket), &Message::Summary(summary))
            .context("sending the summary")?;
        let report = Report {
            role: Role::Receiver,
            files: plan.reports,
            send: sender,
            recv: stats,
            created,
            encryption: self.encryption.clone(),
            excluded: 0,
            removed,
        };
        events.finished(&report);
        Ok(report)
    }

    /// `--mirror`, after every file landed and the sender finished: removes what the offer
    /// does not hold (see `mirror`), each removal an event; returns what was removed.
    fn mirror(
        &self,
        entries: &[Entry],
        plan: &SessionPlan,
        events: &Events,
    ) -> anyhow::Result<Vec<String>> {
        if !self.cfg.mirror {
            return Ok(Vec::new());
        }
        let ui = Ui::hidden();
        let pruned = match mirror::mirror(self.dest, entries, &plan.reports)? {
            Ok(pruned) => pruned,
            Err(mirror::Incomplete(failed)) => {
                let what = if failed == 1 { "entry" } else { "entries" };
                ui.warn(&format!("--mirror: nothing removed: {failed} {what} did not land"));
                return Ok(Vec::new());
            }
        };
        pruned.left.iter().for_each(|why| ui.warn(&format!("--mirror: left {why}")));
        for name in &pruned.removed {
            events.emit(&Event::FileRemove { name });
        }
        Ok(pruned.removed)
    }

    /// `--fsync`, after the last barrier: syncs every directory that gained a name (those
    /// holding new files, the parents of directories this session created, and the parent of
    /// an output directory it created), so the names survive a power loss too.
    fn sync_dirs(
        &self,
        barrier: &Barrier,
        entries: &[Entry],
        plan: &SessionPlan,
        created_output: bool,
    ) -> anyhow::Result<()> {
        for (entry, decision) in entries.iter().zip(&plan.decisions) {
            if let Ok(Decision::Dir { created: true }) = decision {
                let parent = entry.name.iter().rposition(|&b| b == b'/').unwrap_or(0);
                barrier.gained_name(&entry.name[..parent]);
            }
        }
        barrier.finish(self.dest)?;
        if created_output {
            disk::sync_parent_of(&self.cfg.output)?;
        }
        Ok(())
    }

    /// Sessions that may run at once, sharing the process's descriptors.
    fn sessions(&self) -> u32 {
        if self.cfg.keep_open { self.cfg.max_conns } else { 1 }
    }

    /// Receives every planned file: small ones through the writer threads, the others off the
    /// socket. Returns once every file is written (or, with `--fsync`, held by `barrier`).
    fn receive_all(
        &self,
        inbox: &mut Inbox<'_>,
        entries: &[Entry],
        plan: &mut SessionPlan,
        barrier: Option<&Barrier>,
        events: &Events,
    ) -> anyhow::Result<Moved> {
        let wanted: Vec<usize> = plan.wanted();
        let known =
            wanted.iter().try_fold(0u64, |sum, &i| entries[i].size.map(|s| sum.saturating_add(s)));
        // With --keep-open, sessions at once each have a bar, stacked (`progress::bars`).
        let mut ui =
            Ui::new(self.cfg.print, known, wanted.len() as u64).with_events(events.clone());
        let files = wanted.len();
        events.emit(&Event::SessionStart {
            role: Role::Receiver,
            entries: entries.len(),
            files,
            bytes: known,
        });
        plan.reports.iter().enumerate().for_each(|(i, r)| events.planned(i, r));
        let force = self.cfg.policy.force;
        // Small files whose name was taken when they were written (a file came under it): each
        // is refused alone, and the session goes on.
        let taken: std::sync::Mutex<Vec<(Target, String)>> = std::sync::Mutex::default();
        let write = |job: &Job<'_>| match barrier {
            Some(barrier) => disk::hold_small(job.target, &job.body, job.entry, force, barrier),
            None => disk::write_small(job.target, &job.body, job.entry, force).or_else(|e| {
                let reason = refusal_reason(&e).ok_or(e)?;
                taken
                    .lock()
                    .map_err(|_| anyhow::anyhow!("a writer thread failed"))?
                    .push((job.target.clone(), reason));
                Ok(0)
            }),
        };
        let total = thread::scope(|scope| {
            let mut writer = Writer::new(scope, &write);
            let mut live = Live { ui: &mut ui, barrier, events };
            let received = self.receive_each(inbox, entries, &wanted, plan, &mut writer, &mut live);
            // Wait for the queued files whatever happened: they are whole and checked.
            let written = writer.finish();
            let mut total = received?;
            total.calls += written?;
            anyhow::Ok(total)
        })?;
        let taken = taken.into_inner().map_err(|_| anyhow::anyhow!("a writer thread failed"))?;
        refuse_written(plan, taken, events);
        ui.finish();
        Ok(total)
    }

    /// The loop of `receive_all`.
    fn receive_each<'env>(
        &self,
        inbox: &mut Inbox<'_>,
        entries: &'env [Entry],
        wanted: &[usize],
        plan: &'env mut SessionPlan,
        writer: &mut Writer<'_, 'env, impl Fn(&Job<'env>) -> anyhow::Result<u64> + Sync>,
        live: &mut Live<'_>,
    ) -> anyhow::Result<Moved> {
        let SessionPlan { decisions, reports, verdicts } = plan;
        let small: Vec<bool> = wanted
            .iter()
            .map(|&i| plan::batched(self.cfg.method, &entries[i], &decisions[i]))
            .collect();
        let ahead = read_ahead(wanted, &small, entries);
        let mut total = Moved::default();
        inbox.allow(ahead[0]);
        // Reads of the read-ahead that may have carried small files' bytes start here: a read
        // that brings only a spliced file's frames is not a data call, one that brings a batch
        // is, whichever file's frame asked for it.
        let mut data_reads_from = inbox.calls;
        for (k, &index) in wanted.iter().enumerate() {
            let entry = &entries[index];
            let (offset, sparse) = self.file_start(inbox, index)?;
            let name = String::from_utf8_lossy(&entry.name);
            live.ui.file(&name);
            live.ui.begin(index, &name, entry.size, offset);
            let decision = &decisions[index];
            let (moved, report, verdict) = if small[k] {
                if sparse {
                    let why = format!("{name} comes in the sparse form, but it is batched");
                    return Err(ProtocolError::Malformed(why).into());
                }
                let mut file = self.receive_small(inbox, entry, decision, offset, writer)?;
                file.0.calls += inbox.calls - data_reads_from;
                data_reads_from = inbox.calls;
                file
            } else {
                // Its bytes come straight from the socket; the read-ahead takes up again
                // after them, with its FILE_END (and, usually in the same read, the next
                // batch: that read counts as the batch's).
                inbox.allow(ahead[k + 1].map(|a| a + protocol::FILE_END_FRAME as u64));
                let before_end = inbox.calls;
                let start = (offset, sparse);
                let file = self.receive_file(inbox, entry, decision, start, &total, live)?;
                let next_small = small.get(k + 1).copied().unwrap_or(false);
                data_reads_from = if next_small { before_end } else { inbox.calls };
                file
            };
            live.ui.skip(moved.holes);
            total.absorb(moved);
            live.ui.position(total.bytes);
            live.events.file_end(index, &report);
            reports[index] = report;
            verdicts.push(verdict);
        }
        if small.contains(&true) && self.cfg.method == Method::Auto {
            total.absorb_fallback(batch::recv_reason());
        }
        Ok(total)
    }

    /// Reads FILE_START (or SPARSE_START) for the file due (`index`) and returns the offset
    /// it is sent from, and whether in the sparse form.
    fn file_start(&self, inbox: &mut Inbox<'_>, index: usize) -> anyhow::Result<(u64, bool)> {
        match peer::next_message_from(inbox, self.cfg.net.idle_timeout, "the next file")? {
            Message::FileStart { index: i, offset } if i as usize == index => Ok((offset, false)),
            Message::SparseStart { index: i, offset } if i as usize == index => Ok((offset, true)),
            Message::FileStart { index: i, .. } | Message::SparseStart { index: i, .. } => {
                Err(ProtocolError::Malformed(format!("file #{i} sent where #{index} was due"))
                    .into())
            }
            other => Err(unexpected("FILE_START", &other)),
        }
    }

    /// Receives one batched file: its bytes come from the read-ahead and are checked against
    /// its FILE_END digest before anything is written, so a damaged file never touches the
    /// disk; then the writer puts them in a file with one `write`.
    fn receive_small<'env>(
        &self,
        inbox: &mut Inbox<'_>,
        entry: &'env Entry,
        decision: &'env Result<Decision, Refusal>,
        offset: u64,
        writer: &mut Writer<'_, 'env, impl Fn(&Job<'env>) -> anyhow::Result<u64> + Sync>,
    ) -> anyhow::Result<(Moved, FileReport, Verdict)> {
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        let (Ok(Decision::Receive { target, .. }), 0) = (decision, offset) else {
            let why = format!("{name} was not planned to be sent from offset {offset}");
            return Err(ProtocolError::Malformed(why).into());
        };
        let size = entry.size.unwrap_or(0);
        if let Err(e) = inbox.hold(size as usize) {
            return Err(match e.kind() {
                io::ErrorKind::UnexpectedEof => SessionError::ConnectionLost {
                    received: inbox.unread() as u64,
                    expected: Some(size),
                }
                .into(),
                _ => anyhow::Error::from(e).context(format!("receiving {name}")),
            });
        }
        let idle = self.cfg.net.idle_timeout;
        let end = match peer::next_message_from(inbox, idle, "the file's checksum")? {
            Message::FileEnd(end) => end,
            other => return Err(unexpected("FILE_END", &other)),
        };
        let xxh3 = crate::checksum::xxh3_128(inbox.held());
        let moved = Moved {
            data_path: DataPath::Buffered,
            bytes: size,
            files: 1,
            xxh3,
            ..Moved::default()
        };
        let mut report = FileReport::new(name, false, Status::Sent);
        (report.bytes, report.data_path) = (size, Some(DataPath::Buffered));
        let verdict = if xxh3 == end.xxh3 {
            writer.write(Job { target, entry, body: inbox.held().to_vec() })?;
            report.saved_as = Some(target.shown().display().to_string());
            Verdict { status: VerdictStatus::Ok, detail: String::new() }
        } else {
            mismatch(&mut report)
        };
        inbox.release();
        Ok((moved, report, verdict))
    }

    /// Receives one file from `offset`, checks it and puts it in place (or drops it).
    fn receive_file(
        &self,
        inbox: &mut Inbox<'_>,
        entry: &Entry,
        decision: &Result<Decision, Refusal>,
        (offset, sparse): (u64, bool),
        before: &Moved,
        live: &Live<'_>,
    ) -> anyhow::Result<(Moved, FileReport, Verdict)> {
        let ui = &*live.ui;
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        if !inbox.is_empty() {
            let why = format!("bytes of {name} arrived before its turn");
            return Err(ProtocolError::Malformed(why).into());
        }
        let socket = inbox.socket();
        // `n` counts this file's holes too: as zeros, they are written (onto standard output)
        // or they are the file's size all the same.
        let (base, written, max) = (before.bytes, before.bytes + before.holes, self.cfg.max_size);
        let mut tick = |n: u64| -> anyhow::Result<()> {
            if let Some(signal) = signals::pending() {
                // The receiver names the signal around this (`Receiver::session`).
                let message = format!("cut off after {}", size(n));
                return Err(SessionError::Interrupted { signal, message }.into());
            }
            ui.position(base + n);
            match max {
                Some(max) if written + n > max => Err(SessionError::Refused {
                    name: name.clone(),
                    reason: format!("the session passed the receiver's --max-size {}", size(max)),
                }
                .into()),
                _ => Ok(()),
            }
        };
        let (moved, part) = match decision {
            // The sender's file hashes as the one here (FILE_END says so again): nothing came.
            Ok(Decision::Compare { size, xxh3, .. }) if offset == *size => {
                (Moved { xxh3: *xxh3, ..Moved::default() }, None)
            }
            Ok(Decision::Compare { target, .. }) if offset == 0 => {
                let part = target.part().open_locked(&name, 0)?;
                let moved = self
                    .receive_into(socket, entry, &part, (0, sparse), &mut tick)
                    .map_err(|e| part_failed(e, target, &part, &name))?;
                (moved, Some((target, part)))
            }
            Ok(Decision::Receive { target, offset: planned, lock, .. }) => {
                if offset != 0 && offset != *planned {
                    let why =
                        format!("{name}: sender resumed at {offset}, the plan said {planned}");
                    return Err(ProtocolError::Malformed(why).into());
                }
                let part = target.part().open_planned(&name, offset, lock.take())?;
                let moved = self
                    .receive_into(socket, entry, &part, (offset, sparse), &mut tick)
                    .map_err(|e| part_failed(e, target, &part, &name))?;
                (moved, Some((target, part)))
            }
            Ok(Decision::Stdout) if offset == 0 => {
                let out = crate::disk::stdout()?;
                let moved = self
                    .receive_into(socket, entry, &out, (0, sparse), &mut tick)
                    .with_context(|| format!("writing {name} to standard output"))?;
                (moved, None)
            }
            _ => {
                let why = format!("{name} was not planned to be sent from offset {offset}");
                return Err(ProtocolError::Malformed(why).into());
            }
        };
        let idle = self.cfg.net.idle_timeout;
        let end = match peer::next_message_from(inbox, idle, "the file's checksum")? {
            Message::FileEnd(end) => end,
            other => return Err(unexpected("FILE_END", &other)),
        };
        let mut report = FileReport::new(name, false, Status::Sent);
        (report.bytes, report.data_path, report.resumed_from, report.holes) =
            (moved.bytes, Some(moved.data_path), offset, moved.holes);
        let matched = end.xxh3 == moved.xxh3;
        if let (Ok(Decision::Compare { target, xxh3, .. }), true) = (decision, matched)
            && let Some(verdict) = self.compared(target, *xxh3, &moved, &mut report)
        {
            return Ok((moved, report, verdict));
        }
        let verdict = self.conclude(entry, matched, part, &mut report, live.barrier)?;
        Ok((moved, report, verdict))
    }

    /// Moves one file's bytes from the socket into `out` (a part file at `offset`, or standard
    /// output) by the configured method, in the sparse form when `sparse`.
    fn receive_into(
        &self,
        socket: &TcpStream,
        entry: &Entry,
        out: &File,
        (offset, sparse): (u64, bool),
        tick: copy::Tick<'_>,
    ) -> anyhow::Result<Moved> {
        let framing = Framing::of(entry.size, offset, false);
        let positioned =
            matches!(self.dest, Destination::Directory { .. } | Destination::File { .. });
        let inc = Incoming {
            socket,
            file: out,
            framing,
            offset,
            positioned,
            buffer_size: self.cfg.buffer_size,
            checksum: true,
        };
        match (sparse, entry.size) {
            (false, _) => copy::recv(&inc, self.cfg.method, tick),
            (true, Some(size)) => copy::holes::recv_sparse(&inc, self.cfg.method, size, tick),
            (true, None) => {
                let why = "a file of unknown size cannot come in the sparse form";
                Err(ProtocolError::Malformed(why.into()).into())
            }
        }
    }

    /// Puts a verified file in place (with `--fsync`: hands it to the barrier that will), or
    /// drops a damaged one, and says which.
    fn conclude(
        &self,
        entry: &Entry,
        matched: bool,
        part: Option<(&Target, LockedPart)>,
        report: &mut FileReport,
        barrier: Option<&Barrier>,
    ) -> anyhow::Result<Verdict> {
        if !matched {
            if let Some((target, _)) = part {
                target.part().discard();
            }
            return Ok(mismatch(report));
        }
        if let Some((target, file)) = part {
            match barrier {
                Some(barrier) => {
                    target.part().prepare(&file, entry)?;
                    barrier.hold_part(target, file)?;
                }
                None => {
                    if let Err(e) = target.part().commit(&file, entry, self.cfg.policy.force) {
                        return refused_at_commit(e, report);
                    }
                }
            }
            report.saved_as = Some(target.shown().display().to_string());
        }
        Ok(Verdict { status: VerdictStatus::Ok, detail: String::new() })
    }

    /// The verdict on a file compared by content (`--checksum`) whose bytes, if any came,
    /// checked: kept as it was when the sender's digest is the one here (its part file, from a
    /// sender that sent it whole, removed); refused, part file removed, when it differs and
    /// `--force` is not given. `None`: it differs and replaces the file (`conclude`).
    fn compared(
        &self,
        target: &Target,
        here: u128,
        moved: &Moved,
        report: &mut FileReport,
    ) -> Option<Verdict> {
        if moved.xxh3 == here {
            if moved.bytes > 0 {
                target.part().discard();
            } else {
                report.data_path = None;
            }
            // Nothing was resumed: the offset only asked the sender to compare.
            (report.status, report.resumed_from) = (Status::Skipped, 0);
            return Some(Verdict::unchanged());
        }
        if self.cfg.policy.force {
            return None;
        }
        target.part().discard();
        let reason = format!(
            "{} exists with other content (use --force to overwrite)",
            target.shown().display()
        );
        (report.status, report.reason) = (Status::Refused, Some(reason.clone()));
        Some(Verdict { status: VerdictStatus::Failed, detail: reason })
    }

    /// Says what an idle timeout left behind.
    fn explain_idle(&self, err: anyhow::Error) -> anyhow::Error {
        match idle_in(&err) {
            Some(_) => err.context("the sender stalled; partial files kept"),
            None => err,
        }
    }
}

/// Where the receiving loop shows progress, and holds verified files for `--fsync`.
struct Live<'a> {
    ui: &'a mut Ui,
    barrier: Option<&'a Barrier>,
    events: &'a Events,
}

/// A verified file whose name was taken when it was to be put in place (a file came under it
/// during the transfer, or one whose name differs only in case where the file system folds
/// case): that file is refused, its part file kept, and the session goes on. Any other failure
/// to put it in place ends the session.
fn refused_at_commit(e: anyhow::Error, report: &mut FileReport) -> anyhow::Result<Verdict> {
    let reason = refusal_reason(&e).ok_or(e)?;
    report.status = Status::Refused;
    report.reason = Some(reason.clone());
    Ok(Verdict { status: VerdictStatus::Failed, detail: reason })
}

/// Turns each file of `refused`, written and checked but not put in place (its name was taken
/// meanwhile), into a refusal for its reason: its verdict and report, and a `file_refuse`
/// event after its `file_end`.
fn refuse_written(plan: &mut SessionPlan, refused: Vec<(Target, String)>, events: &Events) {
    for (target, reason) in refused {
        let Some(index) = plan.index_of(&target) else { continue };
        if let Some(report) = plan.refuse_written(index, reason) {
            events.file_end(index, report);
        }
    }
}

/// The verdict on a file whose checksum differs; it was not saved.
fn mismatch(report: &mut FileReport) -> Verdict {
    report.status = Status::ChecksumMismatch;
    Verdict { status: VerdictStatus::ChecksumMismatch, detail: "xxh3-128 differs".into() }
}

/// Names the file a write failed on and what became of its part file: kept for a resume, or
/// removed when the file system takes no file this large (EFBIG: FAT's limit is 4 GiB - 1
/// byte), which no resume onto it could finish. EFBIG where the part file reached a file size
/// limit (`ulimit -f`; within one write of it) says so instead, and keeps the part: a resume
/// with a higher limit finishes it.
fn part_failed(err: anyhow::Error, target: &Target, part: &File, name: &str) -> anyhow::Error {
    let too_large = err.chain().any(|cause| {
        cause.downcast_ref::<nix::errno::Errno>() == Some(&nix::errno::Errno::EFBIG)
            || cause
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::FileTooLarge)
    });
    let kept = target.part().shown().display().to_string();
    // The largest write a data path makes: the buffered path's largest buffer.
    let len = part.metadata().map_or(0, |m| m.len());
    let limit =
        file_size_limit().filter(|&limit| len.saturating_add(crate::units::MAX_BUFFER) >= limit);
    match (too_large, limit) {
        (true, Some(limit)) => err.context(format!(
            "writing {name}: past this process's file size limit (ulimit -f: {limit} bytes); \
             partial data kept in {kept}"
        )),
        (true, None) => {
            target.part().discard();
            let why = "the file system takes no file this large (FAT holds at most 4 GiB - 1 byte); nothing kept";
            err.context(format!("writing {name}: {why}"))
        }
        (false, _) => err.context(format!("writing {name} (partial data kept in {kept})")),
    }
}

/// The soft RLIMIT_FSIZE in bytes, when there is one.
fn file_size_limit() -> Option<u64> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_FSIZE).ok()?;
    (soft != RLIM_INFINITY).then_some(soft)
}

/// What a sender is told when a signal stops the receiver.
pub(super) const SHUT_DOWN: &str = "receiver shut down";

/// Tells the sender why this end gives up, when the sender can still hear it, and passes the
/// error on.
fn tell_peer(socket: &mut TcpStream, err: anyhow::Error) -> anyhow::Error {
    let code = match exit_code(&err) {
        // Stopped by a signal mid-file: told as every sender is at a stop (`stop_all`).
        ExitCode::Interrupted | ExitCode::Terminated => {
            peer::fail_with(socket, ErrorCode::Interrupted, SHUT_DOWN);
            return err;
        }
        ExitCode::Io => Some(ErrorCode::Io),
        ExitCode::Protocol => Some(ErrorCode::Protocol),
        ExitCode::Refused => Some(ErrorCode::Limit),
        // The receiver broke the session off: the sender exits 3 (a timeout), not 5.
        ExitCode::Connection if idle_in(&err).is_some() => Some(ErrorCode::Interrupted),
        _ => None,
    };
    if let Some(code) = code {
        peer::fail_with(socket, code, &format!("receiver: {err:#}"));
    }
    err
}
