//! The receive loop of one session, once the plan is sent: every wanted file's bytes (small
//! ones from the read-ahead and handed to the writer threads, the others by the configured data
//! path straight into their part files), each checked against its digest and put in place. The
//! offer, the plan and the summary around it are `session`'s.

use std::fs::File;
use std::io;
use std::thread;

use anyhow::Context;

use super::plan::{self, SessionPlan, Way, read_ahead, size};
use crate::config::RecvConfig;
use crate::copy::batch::{self, Inbox};
use crate::copy::socket::Stream;
use crate::copy::{self, Framing, Incoming, Moved};
use crate::datapath::{DataPath, Method};
use crate::disk::writer::{Job, Writer, Written};
use crate::disk::{self, Barrier, Decision, Destination, LockedPart, NameTaken, Refusal, Target};
use crate::error::{SessionError, refusal_reason};
use crate::link::peer::{self, unexpected};
use crate::progress::Ui;
use crate::protocol::{self, Entry, Message, ProtocolError, Verdict, VerdictStatus};
use crate::report::events::{Event, Events};
use crate::report::{FileReport, Status};
use crate::role::Role;
use crate::sys::signals;

/// Receives every planned file: small ones through the writer threads, the others off the
/// socket. Returns once every file is written (or, with `--fsync`, held by `barrier`).
pub(super) fn receive_all(
    cfg: &RecvConfig,
    dest: &Destination,
    inbox: &mut Inbox<'_>,
    entries: &[Entry],
    plan: &mut SessionPlan,
    barrier: Option<&Barrier>,
    events: &Events,
) -> anyhow::Result<Moved> {
    let turns = Turns::new(entries, plan, cfg.method);
    let files = turns.wanted.len();
    let known = turns.known_bytes(entries);
    // With --keep-open, sessions at once each have a bar, stacked (`progress::bars`).
    let mut ui = Ui::new(cfg.print, known, files as u64).with_events(events.clone());
    events.emit(&Event::SessionStart {
        role: Role::Receiver,
        entries: entries.len(),
        files,
        bytes: known,
    });
    plan.reports.iter().enumerate().for_each(|(i, r)| events.planned(i, r));
    let write = |job: &Job<'_>| write_small(job, cfg.policy.force, barrier);
    let SessionPlan { decisions, reports, verdicts } = plan;
    let landed = thread::scope(|scope| {
        let intake = Intake {
            cfg,
            dest,
            batch_reads: BatchReads { from: inbox.calls },
            inbox,
            entries,
            decisions,
            reports,
            verdicts,
            turns,
            writer: Writer::new(scope, &write),
            outlets: Outlets { ui: &mut ui, barrier, events },
            total: Moved::default(),
        };
        intake.run()
    })?;
    refuse_written(plan, landed.refused, events);
    ui.finish();
    Ok(landed.moved)
}

/// Writes one small file for the writer threads (with `--fsync`, holds it for `barrier`).
/// A file whose name was taken when it was written (a file came under it) is refused
/// alone, and the session goes on.
fn write_small(job: &Job<'_>, force: bool, barrier: Option<&Barrier>) -> anyhow::Result<Written> {
    match barrier {
        Some(barrier) => disk::hold_small(job.target, &job.body, job.entry, force, barrier)
            .map(|calls| Written::Placed { calls }),
        None => match disk::write_small(job.target, &job.body, job.entry, force) {
            Ok(calls) => Ok(Written::Placed { calls }),
            Err(e) => Ok(Written::NameTaken { reason: refusal_reason(&e).ok_or(e)? }),
        },
    }
}

/// The files whose bytes come, in the order they come, and how each comes.
struct Turns {
    /// Their entries' indices.
    wanted: Vec<usize>,
    /// How each comes off the socket.
    ways: Vec<Way>,
    /// How far the read-ahead may read from each one's FILE_START (`plan::read_ahead`).
    ahead: Vec<Option<u64>>,
}

impl Turns {
    fn new(entries: &[Entry], plan: &SessionPlan, method: Method) -> Turns {
        let wanted = plan.wanted();
        let ways: Vec<Way> =
            wanted.iter().map(|&i| plan::way(method, &entries[i], &plan.decisions[i])).collect();
        let ahead = read_ahead(&wanted, &ways, entries);
        Turns { wanted, ways, ahead }
    }

    /// The bytes the wanted files hold, when every size is known.
    fn known_bytes(&self, entries: &[Entry]) -> Option<u64> {
        let mut sizes = self.wanted.iter().map(|&i| entries[i].size);
        sizes.try_fold(0u64, |sum, size| size.map(|s| sum.saturating_add(s)))
    }
}

/// Where the receive loop's results go besides the plan: the progress bar, the `--fsync`
/// barrier that holds verified files until their data is synced, and the events.
struct Outlets<'a> {
    ui: &'a mut Ui,
    barrier: Option<&'a Barrier>,
    events: &'a Events,
}

/// Which of the read-ahead's `read` calls are data calls: those that may have carried batched
/// files' bytes. A read that brings only a spliced file's frames is not one; a read that
/// brings a batch is, whichever file's frame asked for it. It reads the inbox's count of
/// `read` calls made so far.
struct BatchReads {
    /// The first read not yet counted.
    from: u64,
}

impl BatchReads {
    /// The reads since the last count, which brought the batched file just read.
    fn charge(&mut self, calls: u64) -> u64 {
        let reads = calls - self.from;
        self.from = calls;
        reads
    }

    /// After a spliced file whose FILE_END was read from read `end_from` on: those reads are
    /// the next file's when it is batched (they brought its batch), else no data call's.
    fn after_spliced(&mut self, end_from: u64, next: Option<Way>, calls: u64) {
        self.from = if next == Some(Way::Batched) { end_from } else { calls };
    }
}

/// The receive loop of one session. It owns its parts (the read-ahead over the socket, the
/// plan's entries and what it records of them, the turns, the writer threads, the outlets),
/// takes the wanted files in turn, and hands each to the way it comes. `'scope` is the writer
/// threads' scope, `'env` what they borrow (the entries and decisions), `'sock` the socket.
struct Intake<'scope, 'env, 'sock, W> {
    cfg: &'scope RecvConfig,
    dest: &'scope Destination,
    inbox: &'scope mut Inbox<'sock>,
    entries: &'env [Entry],
    decisions: &'env [Result<Decision, Refusal>],
    reports: &'scope mut [FileReport],
    verdicts: &'scope mut Vec<Verdict>,
    turns: Turns,
    writer: Writer<'scope, 'env, W>,
    outlets: Outlets<'scope>,
    /// What the files received so far moved.
    total: Moved,
    batch_reads: BatchReads,
}

/// What the receive loop brought in.
struct Landed {
    /// The bytes and calls of every file.
    moved: Moved,
    /// The small files written and checked whose names were taken meanwhile.
    refused: Vec<NameTaken>,
}

/// One file received: what it moved, its report, and the verdict the sender is told.
struct Received {
    moved: Moved,
    report: FileReport,
    verdict: Verdict,
}

/// Where a file starts, as its FILE_START or SPARSE_START said.
#[derive(Clone, Copy)]
struct FileStart {
    /// The offset its bytes come from.
    offset: u64,
    form: Form,
}

/// The form a file's bytes come in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Every byte.
    Plain,
    /// Its data ranges only, the holes left out (`copy::holes`).
    Sparse,
}

/// Whether a file's bytes hash to the digest its FILE_END carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Digest {
    Matches,
    Differs,
}

/// A part file that took a file's bytes, and where it is to go.
struct PartFile<'t> {
    target: &'t Target,
    file: LockedPart,
}

/// A spliced file's bytes, once they came: what they moved, and the part file that holds
/// them (none on standard output, or when nothing came).
struct Arrived<'t> {
    moved: Moved,
    part: Option<PartFile<'t>>,
}

impl<'scope, 'env, W> Intake<'scope, 'env, '_, W>
where
    W: Fn(&Job<'env>) -> anyhow::Result<Written> + Sync,
{
    /// Receives every wanted file, then waits for the writer threads whatever happened: the
    /// files queued are whole and checked.
    fn run(mut self) -> anyhow::Result<Landed> {
        let received = self.receive_each();
        let written = self.writer.finish();
        received?;
        let written = written?;
        self.total.calls += written.calls;
        Ok(Landed { moved: self.total, refused: written.refused })
    }

    /// The loop: each wanted file in turn, received and recorded.
    fn receive_each(&mut self) -> anyhow::Result<()> {
        self.inbox.allow(self.turns.ahead[0]);
        for turn in 0..self.turns.wanted.len() {
            let index = self.turns.wanted[turn];
            let file = self.receive_one(turn, index)?;
            self.record(index, file);
        }
        if self.turns.ways.contains(&Way::Batched) && self.cfg.method == Method::Auto {
            self.total.absorb_fallback(batch::recv_reason());
        }
        Ok(())
    }

    /// Receives file `index`, the `turn`th wanted: its FILE_START, then its bytes the way
    /// they come.
    fn receive_one(&mut self, turn: usize, index: usize) -> anyhow::Result<Received> {
        let entry = &self.entries[index];
        let start = self.file_start(index)?;
        let name = String::from_utf8_lossy(&entry.name);
        self.outlets.ui.file(&name);
        self.outlets.ui.begin(index, &name, entry.size, start.offset);
        match self.turns.ways[turn] {
            Way::Batched if start.form == Form::Sparse => {
                let why = format!("{name} comes in the sparse form, but it is batched");
                Err(ProtocolError::Malformed(why).into())
            }
            Way::Batched => {
                let mut file = self.receive_small(index, start.offset)?;
                file.moved.calls += self.batch_reads.charge(self.inbox.calls);
                Ok(file)
            }
            Way::Spliced => self.receive_spliced(turn, index, start),
        }
    }

    /// Counts a received file in, and records its report and verdict.
    fn record(&mut self, index: usize, file: Received) {
        let Received { moved, report, verdict } = file;
        self.outlets.ui.skip(moved.holes);
        self.total.absorb(moved);
        self.outlets.ui.position(self.total.bytes);
        self.outlets.events.file_end(index, &report);
        self.reports[index] = report;
        self.verdicts.push(verdict);
    }

    /// Reads FILE_START (or SPARSE_START) for the file due (`index`): where it starts.
    fn file_start(&mut self, index: usize) -> anyhow::Result<FileStart> {
        let idle = self.cfg.net.idle_timeout;
        let at = |offset, form| Ok(FileStart { offset, form });
        match peer::next_message_from(self.inbox, idle, "the next file")? {
            Message::FileStart { index: i, offset } if i as usize == index => {
                at(offset, Form::Plain)
            }
            Message::SparseStart { index: i, offset } if i as usize == index => {
                at(offset, Form::Sparse)
            }
            Message::FileStart { index: i, .. } | Message::SparseStart { index: i, .. } => {
                Err(ProtocolError::Malformed(format!("file #{i} sent where #{index} was due"))
                    .into())
            }
            other => Err(unexpected("FILE_START", &other)),
        }
    }

    /// Reads the FILE_END that follows a file's bytes.
    fn file_end(&mut self) -> anyhow::Result<protocol::FileEnd> {
        let idle = self.cfg.net.idle_timeout;
        match peer::next_message_from(self.inbox, idle, "the file's checksum")? {
            Message::FileEnd(end) => Ok(end),
            other => Err(unexpected("FILE_END", &other)),
        }
    }

    /// Receives one batched file: its bytes come from the read-ahead and are checked against
    /// its FILE_END digest before anything is written, so a damaged file never touches the
    /// disk; then the writer puts them in a file with one `write`.
    fn receive_small(&mut self, index: usize, offset: u64) -> anyhow::Result<Received> {
        let entries = self.entries;
        let entry = &entries[index];
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        let (Ok(Decision::Receive { target, .. }), 0) = (&self.decisions[index], offset) else {
            let why = format!("{name} was not planned to be sent from offset {offset}");
            return Err(ProtocolError::Malformed(why).into());
        };
        let size = entry.size.unwrap_or(0);
        self.hold(size, &name)?;
        let end = self.file_end()?;
        let xxh3 = crate::checksum::xxh3_128(self.inbox.held());
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
            self.writer.write(Job { target, entry, body: self.inbox.held().to_vec() })?;
            report.saved_as = Some(target.shown().display().to_string());
            Verdict { status: VerdictStatus::Ok, detail: String::new() }
        } else {
            mismatch(&mut report)
        };
        self.inbox.release();
        Ok(Received { moved, report, verdict })
    }

    /// Holds a batched file's `size` bytes in the read-ahead.
    fn hold(&mut self, size: u64, name: &str) -> anyhow::Result<()> {
        let Err(e) = self.inbox.hold(size as usize) else { return Ok(()) };
        Err(match e.kind() {
            io::ErrorKind::UnexpectedEof => SessionError::ConnectionLost {
                received: self.inbox.unread() as u64,
                expected: Some(size),
            }
            .into(),
            _ => anyhow::Error::from(e).context(format!("receiving {name}")),
        })
    }

    /// Receives a spliced file: the read-ahead stops at its bytes, which come straight from
    /// the socket; it takes up again after them, with its FILE_END (and, usually in the same
    /// read, the next batch: that read counts as the batch's).
    fn receive_spliced(
        &mut self,
        turn: usize,
        index: usize,
        start: FileStart,
    ) -> anyhow::Result<Received> {
        let next_ahead = self.turns.ahead[turn + 1];
        self.inbox.allow(next_ahead.map(|a| a + protocol::FILE_END_FRAME as u64));
        let end_from = self.inbox.calls;
        let file = self.receive_file(index, start)?;
        let next = self.turns.ways.get(turn + 1).copied();
        self.batch_reads.after_spliced(end_from, next, self.inbox.calls);
        Ok(file)
    }

    /// Receives one file from its start, checks it and puts it in place (or drops it).
    fn receive_file(&mut self, index: usize, start: FileStart) -> anyhow::Result<Received> {
        let (entries, decisions) = (self.entries, self.decisions);
        let (entry, decision) = (&entries[index], &decisions[index]);
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        if !self.inbox.is_empty() {
            let why = format!("bytes of {name} arrived before its turn");
            return Err(ProtocolError::Malformed(why).into());
        }
        let Arrived { moved, part } = self.receive_bytes(entry, decision, start, &name)?;
        let end = self.file_end()?;
        let mut report = FileReport::new(name, false, Status::Sent);
        (report.bytes, report.data_path, report.resumed_from, report.holes) =
            (moved.bytes, Some(moved.data_path), start.offset, moved.holes);
        let digest = if end.xxh3 == moved.xxh3 { Digest::Matches } else { Digest::Differs };
        if let (Ok(Decision::Compare { target, xxh3, .. }), Digest::Matches) = (decision, digest)
            && let Some(verdict) = self.compared(target, *xxh3, &moved, &mut report)
        {
            return Ok(Received { moved, report, verdict });
        }
        let verdict = self.conclude(entry, digest, part, &mut report)?;
        Ok(Received { moved, report, verdict })
    }

    /// Moves a spliced file's bytes off the socket to where its decision says: its part file
    /// (a new one, or the one resumed), or standard output; nothing when a compared file's
    /// sender found it the same.
    fn receive_bytes(
        &self,
        entry: &Entry,
        decision: &'env Result<Decision, Refusal>,
        start: FileStart,
        name: &str,
    ) -> anyhow::Result<Arrived<'env>> {
        let socket = self.inbox.socket();
        let mut tick = self.tick(name);
        let offset = start.offset;
        let into_part = |target: &'env Target, file: LockedPart, tick: copy::Tick<'_>| match self
            .receive_into(socket, entry, &file, start, tick)
        {
            Ok(moved) => Ok(Arrived { moved, part: Some(PartFile { target, file }) }),
            Err(e) => Err(part_failed(e, target, &file, name)),
        };
        match decision {
            // The sender's file hashes as the one here (FILE_END says so again): nothing came.
            Ok(Decision::Compare { size, xxh3, .. }) if offset == *size => {
                Ok(Arrived { moved: Moved { xxh3: *xxh3, ..Moved::default() }, part: None })
            }
            Ok(Decision::Compare { target, .. }) if offset == 0 => {
                into_part(target, target.part().open_locked(name, 0)?, &mut tick)
            }
            Ok(Decision::Receive { target, offset: planned, lock, .. }) => {
                if offset != 0 && offset != *planned {
                    let why =
                        format!("{name}: sender resumed at {offset}, the plan said {planned}");
                    return Err(ProtocolError::Malformed(why).into());
                }
                into_part(target, target.part().open_planned(name, offset, lock.take())?, &mut tick)
            }
            Ok(Decision::Stdout) if offset == 0 => {
                let out = crate::disk::stdout()?;
                let moved = self
                    .receive_into(socket, entry, &out, start, &mut tick)
                    .with_context(|| format!("writing {name} to standard output"))?;
                Ok(Arrived { moved, part: None })
            }
            _ => {
                let why = format!("{name} was not planned to be sent from offset {offset}");
                Err(ProtocolError::Malformed(why).into())
            }
        }
    }

    /// What a data path calls as a file's bytes move (`n` of them so far, its holes counted
    /// too: as zeros, they are written onto standard output, or they are the file's size all
    /// the same): stops at a signal or past `--max-size`, and moves the bar.
    fn tick<'t>(&'t self, name: &'t str) -> impl FnMut(u64) -> anyhow::Result<()> + 't {
        let (ui, max) = (&*self.outlets.ui, self.cfg.max_size);
        let (base, written) = (self.total.bytes, self.total.bytes + self.total.holes);
        move |n: u64| {
            if let Some(signal) = signals::pending() {
                // The receiver names the signal around this (`Receiver::session`).
                let message = format!("cut off after {}", size(n));
                return Err(SessionError::Interrupted { signal, message }.into());
            }
            ui.position(base + n);
            match max {
                Some(max) if written + n > max => Err(SessionError::Refused {
                    name: name.to_string(),
                    reason: format!("the session passed the receiver's --max-size {}", size(max)),
                }
                .into()),
                _ => Ok(()),
            }
        }
    }

    /// Moves one file's bytes from the socket into `out` (a part file at the start's offset,
    /// or standard output) by the configured method, in the form the sender chose.
    fn receive_into(
        &self,
        socket: Stream<'_>,
        entry: &Entry,
        out: &File,
        start: FileStart,
        tick: copy::Tick<'_>,
    ) -> anyhow::Result<Moved> {
        let offset = start.offset;
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
        match (start.form, entry.size) {
            (Form::Plain, _) => copy::recv(&inc, self.cfg.method, tick),
            (Form::Sparse, Some(size)) => {
                copy::holes::recv_sparse(&inc, self.cfg.method, size, tick)
            }
            (Form::Sparse, None) => {
                let why = "a file of unknown size cannot come in the sparse form";
                Err(ProtocolError::Malformed(why.into()).into())
            }
        }
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

    /// Puts a verified file in place (with `--fsync`: hands it to the barrier that will), or
    /// drops a damaged one, and says which.
    fn conclude(
        &self,
        entry: &Entry,
        digest: Digest,
        part: Option<PartFile<'_>>,
        report: &mut FileReport,
    ) -> anyhow::Result<Verdict> {
        let Some(PartFile { target, file }) = part else {
            return Ok(match digest {
                Digest::Matches => Verdict { status: VerdictStatus::Ok, detail: String::new() },
                Digest::Differs => mismatch(report),
            });
        };
        if digest == Digest::Differs {
            target.part().discard();
            return Ok(mismatch(report));
        }
        match self.outlets.barrier {
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
        Ok(Verdict { status: VerdictStatus::Ok, detail: String::new() })
    }
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
pub(super) fn refuse_written(plan: &mut SessionPlan, refused: Vec<NameTaken>, events: &Events) {
    for NameTaken { target, reason } in refused {
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

#[cfg(test)]
mod tests {
    use super::{BatchReads, Way};

    #[test]
    fn the_reads_that_end_a_spliced_file_count_only_when_a_batch_follows() {
        let mut reads = BatchReads { from: 0 };
        assert_eq!(reads.charge(2), 2, "the first batched file: every read so far");
        assert_eq!(reads.charge(2), 0, "a file already in the read-ahead took no read");
        // A spliced file whose FILE_END came in reads 5 and 6, which also brought a batch.
        reads.after_spliced(5, Some(Way::Batched), 7);
        assert_eq!(reads.charge(7), 2, "the reads that brought the batch are its");
        // One whose FILE_END reads brought only the next spliced file's frame.
        reads.after_spliced(9, Some(Way::Spliced), 10);
        assert_eq!(reads.charge(10), 0, "frames of spliced files are no data calls");
        reads.after_spliced(12, None, 13);
        assert_eq!(reads.charge(13), 0, "nothing follows the last file");
    }
}
