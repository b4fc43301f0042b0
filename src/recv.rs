//! The receiving end: listens (or connects, for reverse connections), serves one session or,
//! with `--keep-open`, many at once, and stops cleanly on Ctrl-C or SIGTERM. One session: check
//! the greeting and the token proof, read the offer, answer with one plan, write each file
//! through its part file, verify, put it in place. Small files come from a read-ahead of many at
//! once and are written by the `writer` threads.

use std::fs::File;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use humansize::{BINARY, format_size};

use crate::auth::{self, Token};
use crate::config::{Link, RecvConfig};
use crate::copy::batch::{self, Inbox, SMALL_FILE};
use crate::copy::{self, DataPath, Framing, Incoming, Method, Moved};
use crate::dest::{Decision, Destination, LockedPart, Refusal, Target};
use crate::error::{ExitCode, SessionError, exit_code};
use crate::progress::Ui;
use crate::protocol::{
    self, Answer, Entry, EntryKind, ErrorCode, Hello, Message, Plan, ProtocolError, RefuseCode,
    Summary, Verdict, VerdictStatus,
};
use crate::report::{FileReport, Report, Role, Status};
use crate::session::{self, HANDSHAKE_TIMEOUT, unexpected};
use crate::writer::{Job, Writer};
use crate::{net, signals, usage};

/// Senders told "busy" at once, at most.
const TURN_AWAY_MAX: usize = 32;
/// How often the serving loop looks at signals and finished sessions.
const TICK: Duration = Duration::from_millis(100);

/// A receiver, bound (or about to connect) and ready to serve.
pub struct Receiver {
    listener: Option<TcpListener>,
    dest: Destination,
    cfg: RecvConfig,
}

/// How a receiver's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub code: ExitCode,
    pub served: u64,
    pub failed: u64,
    /// Set when a signal stopped the receiver.
    pub stopped_by: Option<nix::sys::signal::Signal>,
}

impl Outcome {
    /// Counts one finished session and its exit code.
    fn tally(&mut self, code: ExitCode) {
        self.served += 1;
        if code != ExitCode::Success {
            self.failed += 1;
            self.code = code;
        }
    }
}

impl Receiver {
    /// Checks `--output` and binds `--listen` (nothing is bound for `--connect`). Signals are
    /// routed to the stop flag from here on, so one that comes right after `listening on` is
    /// handled like any other instead of killing the process.
    pub fn bind(cfg: RecvConfig) -> anyhow::Result<Receiver> {
        signals::install()?;
        let dest = Destination::resolve(&cfg.output)?;
        let listener = match &cfg.net.link {
            Link::Listen(addr) => Some(net::listen(addr)?),
            Link::Connect(_) => None,
        };
        Ok(Receiver { listener, dest, cfg })
    }

    /// The address actually bound (the real port when `--listen` asked for port 0).
    pub fn local_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        self.listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .context("reading the listening address")
    }

    /// Whether senders must prove a token.
    pub fn authenticates(&self) -> bool {
        self.cfg.token.is_some()
    }

    /// The token a sender needs, when this receiver made it up (and the user must be shown it).
    pub fn generated_token(&self) -> Option<&Token> {
        self.cfg.token.as_ref().filter(|_| self.cfg.token_generated)
    }

    /// Serves one session, or sessions until a signal with `--keep-open`. Each finished
    /// session's report (or error) goes to `done`, which returns its exit code.
    pub fn run(
        &self,
        mut done: impl FnMut(anyhow::Result<Report>) -> ExitCode,
    ) -> anyhow::Result<Outcome> {
        signals::install()?;
        let live = Live::default();
        let (tx, rx) = mpsc::channel::<anyhow::Result<Report>>();
        thread::scope(|scope| {
            let spawn = |socket: TcpStream, peer: String| {
                let tx = tx.clone();
                let id = live.add(&socket);
                let live = &live;
                scope.spawn(move || {
                    let _ = tx.send(self.session(socket, &peer, live, id));
                });
            };
            let mut outcome =
                Outcome { code: ExitCode::Success, served: 0, failed: 0, stopped_by: None };
            let mut started = 0u64;
            if let Link::Connect(dest) = &self.cfg.net.link {
                let socket =
                    net::connect(dest, self.cfg.net.connect_timeout, self.cfg.net.retries)?;
                spawn(socket, dest.clone());
                started = 1;
            }
            loop {
                while let Ok(result) = rx.try_recv() {
                    outcome.tally(done(result));
                }
                if let Some(signal) = signals::pending() {
                    live.stop_all();
                    outcome.stopped_by = Some(signal);
                    break;
                }
                if !self.cfg.keep_open
                    && started > 0
                    && live.count() == 0
                    && outcome.served == started
                {
                    break;
                }
                match &self.listener {
                    Some(l) if self.cfg.keep_open || started == 0 => {
                        if let Some((socket, peer)) = net::accept_within(l, TICK)? {
                            started += 1;
                            if live.count() >= self.cfg.max_conns as usize {
                                turn_away(socket, self.cfg.max_conns);
                                started -= 1;
                            } else {
                                spawn(socket, peer.to_string());
                            }
                        }
                    }
                    // Nothing to accept: wait on the sessions, so the end is seen at once.
                    _ => {
                        if let Ok(result) = rx.recv_timeout(TICK) {
                            outcome.tally(done(result));
                        }
                    }
                }
            }
            // Sessions cut short by a signal still report, then the run ends.
            while live.count() > 0 || outcome.served < started {
                let Ok(result) = rx.recv_timeout(Duration::from_secs(5)) else { break };
                outcome.tally(done(result));
            }
            if let Some(signal) = outcome.stopped_by {
                outcome.code = signals::exit_code(signal);
            }
            Ok(outcome)
        })
    }

    /// One session on its own thread. A session that panics still ends as a session: counted,
    /// reported, gone from the live list (else a one-shot receiver would wait for it forever).
    fn session(
        &self,
        socket: TcpStream,
        peer: &str,
        live: &Live,
        id: u64,
    ) -> anyhow::Result<Report> {
        let served =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.serve(socket, live, id)));
        live.remove(id);
        served
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the session failed unexpectedly")))
            .with_context(|| format!("receiving from {peer}"))
    }

    /// One session, start to end.
    fn serve(&self, mut socket: TcpStream, live: &Live, id: u64) -> anyhow::Result<Report> {
        // Writes may stall too (a sender that stops reading): bound them like idle reads.
        socket.set_write_timeout(self.cfg.net.idle_timeout).context("setting the write timeout")?;
        let mut handshake = session::Deadline::new(&socket, HANDSHAKE_TIMEOUT)?;
        greet(&mut socket, &mut handshake, self.cfg.token.as_ref())?;
        let offer = match handshake.next_message("the sender's offer") {
            Ok(Message::Offer(offer)) => offer,
            Ok(other) => return Err(tell_peer(&mut socket, unexpected("OFFER", &other))),
            Err(e) => return Err(tell_peer(&mut socket, e)),
        };
        let mut plan = self.plan(&offer.entries);
        protocol::write_message(&mut socket, &Message::Plan(plan.wire()))
            .context("sending the plan")?;
        session::set_timeout(&socket, self.cfg.net.idle_timeout)?;
        live.started_data(id);
        let start = usage::Snapshot::now();
        let mut inbox = Inbox::new(&socket);
        let total = match self.receive_all(&mut inbox, &offer.entries, &mut plan) {
            Ok(total) => total,
            Err(e) => return Err(tell_peer(&mut socket, self.explain_idle(e))),
        };
        // Only the directories this session created or found: a refused one (unsafe name, a
        // symlink in the way) has nothing to finish, and must not fail the session.
        let dirs = offer.entries.iter().zip(&plan.decisions).rev();
        for (entry, _) in dirs.filter(|(_, d)| matches!(d, Ok(Decision::Dir { created: true }))) {
            self.dest.finish_dir(entry).with_context(|| {
                format!("setting mode and mtime of {}", String::from_utf8_lossy(&entry.name))
            })?;
        }
        let idle = self.cfg.net.idle_timeout;
        let sender = match session::next_message_from(&mut inbox, idle, "the sender's statistics")?
        {
            Message::Finish(stats) => stats,
            other => return Err(unexpected("FINISH", &other)),
        };
        let stats = start.side_stats(&total);
        let summary = Summary { verdicts: plan.verdicts.clone(), stats: stats.clone() };
        protocol::write_message(&mut socket, &Message::Summary(summary))
            .context("sending the summary")?;
        Ok(Report { role: Role::Recv, files: plan.reports, send: sender, recv: stats })
    }

    /// Decides every entry, then refuses the lot when it would not fit.
    fn plan(&self, entries: &[Entry]) -> SessionPlan {
        let policy = self.cfg.policy;
        let mut plan = SessionPlan::default();
        let mut names = std::collections::HashSet::new();
        let mut listing = crate::dest::Listing::default();
        for (i, entry) in entries.iter().enumerate() {
            let decision = if self.dest.single() && i > 0 {
                Err(Refusal::new(
                    RefuseCode::Unsupported,
                    "--output names one file, taken by the first entry",
                ))
            } else if !names.insert(entry.name.as_slice()) {
                Err(Refusal::new(RefuseCode::Exists, "the offer names it twice"))
            } else {
                self.dest.decide(entry, policy, &mut listing)
            };
            plan.push(entry, decision);
        }
        if let Some(why) = self.too_big(&plan, entries) {
            plan.refuse_all_receives(RefuseCode::NoSpace, &why);
        }
        plan
    }

    /// Why a plan cannot be taken: over `--max-size`, or more than the disk has free.
    fn too_big(&self, plan: &SessionPlan, entries: &[Entry]) -> Option<String> {
        let needed: u64 = plan
            .decisions
            .iter()
            .zip(entries)
            .filter_map(|(d, e)| match d {
                Ok(Decision::Receive { offset, .. }) => {
                    Some(e.size.unwrap_or(0).saturating_sub(*offset))
                }
                _ => None,
            })
            .fold(0u64, u64::saturating_add);
        if let Some(max) = self.cfg.max_size.filter(|&max| needed > max) {
            return Some(format!(
                "session needs {}, more than --max-size {}",
                size(needed),
                size(max)
            ));
        }
        let free = self.dest.free_space()?;
        (needed > free).then(|| format!("session needs {}, {} free", size(needed), size(free)))
    }

    /// Receives every file the plan asked for, in order: small files from the read-ahead,
    /// written on a second thread, the others by the configured data path straight from the
    /// socket. Returns once every file is written.
    fn receive_all(
        &self,
        inbox: &mut Inbox<'_>,
        entries: &[Entry],
        plan: &mut SessionPlan,
    ) -> anyhow::Result<Moved> {
        let wanted: Vec<usize> = plan.wanted();
        let known =
            wanted.iter().try_fold(0u64, |sum, &i| entries[i].size.map(|s| sum.saturating_add(s)));
        let mut ui = if self.cfg.keep_open {
            Ui::hidden()
        } else {
            Ui::new(self.cfg.print, known, wanted.len() as u64)
        };
        let write = |job: &Job<'_>| self.write_whole(job.target, &job.body, job.entry);
        let total = thread::scope(|scope| {
            let mut writer = Writer::new(scope, &write);
            let received = self.receive_each(inbox, entries, &wanted, plan, &mut writer, &mut ui);
            // Wait for the queued files whatever happened: they are whole and checked.
            let written = writer.finish();
            let mut total = received?;
            total.calls += written?;
            anyhow::Ok(total)
        })?;
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
        ui: &mut Ui,
    ) -> anyhow::Result<Moved> {
        let SessionPlan { decisions, reports, verdicts } = plan;
        let small: Vec<bool> =
            wanted.iter().map(|&i| self.batched(&entries[i], &decisions[i])).collect();
        let ahead = read_ahead(wanted, &small, entries);
        let mut total = Moved::default();
        inbox.allow(ahead[0]);
        // Reads of the read-ahead that may have carried small files' bytes start here: a read
        // that brings only a spliced file's frames is not a data call, one that brings a batch
        // is, whichever file's frame asked for it.
        let mut data_reads_from = inbox.calls;
        for (k, &index) in wanted.iter().enumerate() {
            let entry = &entries[index];
            let offset = self.file_start(inbox, index)?;
            ui.file(&String::from_utf8_lossy(&entry.name));
            let decision = &decisions[index];
            let (moved, report, verdict) = if small[k] {
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
                let file = self.receive_file(inbox, entry, decision, offset, &total, ui)?;
                let next_small = small.get(k + 1).copied().unwrap_or(false);
                data_reads_from = if next_small { before_end } else { inbox.calls };
                file
            };
            total.absorb(moved);
            ui.position(total.bytes);
            reports[index] = report;
            verdicts.push(verdict);
        }
        if small.contains(&true) && self.cfg.method == Method::Auto {
            total.absorb_fallback(batch::recv_reason());
        }
        Ok(total)
    }

    /// Whether a file comes batched: small, of known size, new (no part file of an earlier
    /// transfer to reuse or remove), and `--method` does not insist on splice.
    fn batched(&self, entry: &Entry, decision: &Result<Decision, Refusal>) -> bool {
        matches!(self.cfg.method, Method::Auto | Method::Only(DataPath::Buffered))
            && entry.size.is_some_and(|s| s <= SMALL_FILE)
            && matches!(decision, Ok(Decision::Receive { offset: 0, part: false, .. }))
    }

    /// Reads FILE_START for the file due (`index`) and returns the offset it is sent from.
    fn file_start(&self, inbox: &mut Inbox<'_>, index: usize) -> anyhow::Result<u64> {
        match session::next_message_from(inbox, self.cfg.net.idle_timeout, "the next file")? {
            Message::FileStart { index: i, offset } if i as usize == index => Ok(offset),
            Message::FileStart { index: i, .. } => {
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
        let end = match session::next_message_from(inbox, idle, "the file's checksum")? {
            Message::FileEnd(end) => end,
            other => return Err(unexpected("FILE_END", &other)),
        };
        let xxh3 = xxhash_rust::xxh3::xxh3_128(inbox.held());
        let moved =
            Moved { path: DataPath::Buffered, bytes: size, files: 1, xxh3, ..Moved::default() };
        let mut report = FileReport::new(name, false, Status::Sent);
        (report.bytes, report.path) = (size, Some(DataPath::Buffered));
        let verdict = if xxh3 == end.xxh3 {
            writer.write(Job { target, entry, body: inbox.held().to_vec() })?;
            report.saved_as = Some(target.shown.display().to_string());
            Verdict { status: VerdictStatus::Ok, detail: String::new() }
        } else {
            mismatch(&mut report)
        };
        inbox.release();
        Ok((moved, report, verdict))
    }

    /// Writes a verified small file: as an unnamed file linked into place where the file system
    /// allows, else through its part file like any other. Returns the `write` calls made.
    fn write_whole(&self, target: &Target, body: &[u8], entry: &Entry) -> anyhow::Result<u64> {
        let force = self.cfg.policy.force;
        if let Some(calls) = target.write_unnamed(body, entry, force)? {
            return Ok(calls);
        }
        let name = String::from_utf8_lossy(&entry.name);
        let part = self.open_part(target, &name, 0, 0)?;
        let mut out = copy::Counted::new(&*part);
        out.write_all(body).with_context(|| {
            format!("writing {name} (partial data kept in {})", target.part_shown().display())
        })?;
        let calls = out.calls;
        target.commit(&part, entry, force)?;
        Ok(calls)
    }

    /// Receives one file from `offset`, checks it and puts it in place (or drops it).
    fn receive_file(
        &self,
        inbox: &mut Inbox<'_>,
        entry: &Entry,
        decision: &Result<Decision, Refusal>,
        offset: u64,
        before: &Moved,
        ui: &Ui,
    ) -> anyhow::Result<(Moved, FileReport, Verdict)> {
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        if !inbox.is_empty() {
            let why = format!("bytes of {name} arrived before its turn");
            return Err(ProtocolError::Malformed(why).into());
        }
        let socket = inbox.socket();
        let (base, max) = (before.bytes, self.cfg.max_size);
        let mut tick = |n: u64| -> io::Result<()> {
            ui.position(base + n);
            match max {
                Some(max) if base + n > max => Err(io::Error::other(SessionError::Refused {
                    name: name.clone(),
                    reason: format!("the session passed --max-size {}", size(max)),
                })),
                _ => Ok(()),
            }
        };
        let (moved, part) = match decision {
            Ok(Decision::Receive { target, offset: planned, .. }) => {
                let part = self.open_part(target, &name, offset, *planned)?;
                let moved = self
                    .receive_into(socket, entry, &part, offset, &mut tick)
                    .with_context(|| {
                        format!(
                            "writing {name} (partial data kept in {})",
                            target.part_shown().display()
                        )
                    })?;
                (moved, Some((target, part)))
            }
            Ok(Decision::Stdout) if offset == 0 => {
                let out = crate::dest::stdout()?;
                let moved = self
                    .receive_into(socket, entry, &out, 0, &mut tick)
                    .with_context(|| format!("writing {name} to standard output"))?;
                (moved, None)
            }
            _ => {
                let why = format!("{name} was not planned to be sent from offset {offset}");
                return Err(ProtocolError::Malformed(why).into());
            }
        };
        let idle = self.cfg.net.idle_timeout;
        let end = match session::next_message_from(inbox, idle, "the file's checksum")? {
            Message::FileEnd(end) => end,
            other => return Err(unexpected("FILE_END", &other)),
        };
        let mut report = FileReport::new(name, false, Status::Sent);
        (report.bytes, report.path, report.resumed_from) = (moved.bytes, Some(moved.path), offset);
        let verdict = self.conclude(entry, end.xxh3 == moved.xxh3, part, &mut report)?;
        Ok((moved, report, verdict))
    }

    /// Opens and locks a file's part file, cut to the offset the sender resumes from (which
    /// must be 0 or the planned one).
    fn open_part(
        &self,
        target: &Target,
        name: &str,
        offset: u64,
        planned: u64,
    ) -> anyhow::Result<LockedPart> {
        if offset != 0 && offset != planned {
            let why = format!("{name}: sender resumed at {offset}, the plan said {planned}");
            return Err(ProtocolError::Malformed(why).into());
        }
        let busy = || SessionError::Refused {
            name: name.to_string(),
            reason: "another session is writing it".to_string(),
        };
        // Usually the file is new: created here, it is empty and nobody else's.
        if offset == 0
            && let Some(part) = target.create_part().map_err(|r| anyhow::anyhow!(r.reason))?
        {
            return crate::dest::lock(part)?.ok_or_else(|| busy().into());
        }
        // Lock before touching the contents: another session may be writing this file.
        let part = target.open_part(false).map_err(|r| anyhow::anyhow!(r.reason))?;
        let part = crate::dest::lock(part)?.ok_or_else(busy)?;
        part.set_len(offset)
            .with_context(|| format!("truncating {}", target.part_shown().display()))?;
        Ok(part)
    }

    /// Moves one file's bytes from the socket into `out` (a part file at `offset`, or standard
    /// output) by the configured method.
    fn receive_into(
        &self,
        socket: &TcpStream,
        entry: &Entry,
        out: &File,
        offset: u64,
        tick: copy::Tick<'_>,
    ) -> anyhow::Result<Moved> {
        let framing =
            entry.size.map_or(Framing::Chunked, |size| Framing::Sized(size.saturating_sub(offset)));
        let positioned =
            matches!(self.dest, Destination::Directory { .. } | Destination::File { .. });
        let inc = Incoming {
            socket,
            file: out,
            framing,
            offset,
            positioned,
            buffer_size: self.cfg.buffer_size,
        };
        copy::recv(&inc, self.cfg.method, tick)
    }

    /// Puts a verified file in place, or drops a damaged one, and says which.
    fn conclude(
        &self,
        entry: &Entry,
        matched: bool,
        part: Option<(&Target, LockedPart)>,
        report: &mut FileReport,
    ) -> anyhow::Result<Verdict> {
        if !matched {
            if let Some((target, _)) = part {
                target.discard();
            }
            return Ok(mismatch(report));
        }
        if let Some((target, file)) = part {
            target.commit(&file, entry, self.cfg.policy.force)?;
            report.saved_as = Some(target.shown.display().to_string());
        }
        Ok(Verdict { status: VerdictStatus::Ok, detail: String::new() })
    }

    /// Names an idle timeout as such instead of "resource temporarily unavailable".
    fn explain_idle(&self, err: anyhow::Error) -> anyhow::Error {
        match (is_idle(&err), self.cfg.net.idle_timeout) {
            (true, Some(t)) => err.context(format!(
                "no data for {} s (--idle-timeout); partial files kept",
                t.as_secs_f64()
            )),
            _ => err,
        }
    }
}

/// The verdict on a file whose checksum differs; it was not saved.
fn mismatch(report: &mut FileReport) -> Verdict {
    report.status = Status::ChecksumMismatch;
    Verdict { status: VerdictStatus::ChecksumMismatch, detail: "xxh3-128 differs".into() }
}

/// For each wanted file, from its FILE_START on, how many bytes the read-ahead may take: the
/// frames and bytes of the run of batched files it starts, then the FILE_START of the next
/// file that is spliced (whose bytes must stay in the socket); `None` when none follows.
fn read_ahead(wanted: &[usize], small: &[bool], entries: &[Entry]) -> Vec<Option<u64>> {
    let frames = (protocol::FILE_START_FRAME + protocol::FILE_END_FRAME) as u64;
    let mut ahead = vec![None; wanted.len() + 1];
    for k in (0..wanted.len()).rev() {
        ahead[k] = if small[k] {
            let size = entries[wanted[k]].size.unwrap_or(0);
            ahead[k + 1].map(|a| a + frames + size)
        } else {
            Some(protocol::FILE_START_FRAME as u64)
        };
    }
    ahead
}

fn size(bytes: u64) -> String {
    format_size(bytes, BINARY)
}

/// The decisions, answers, reports and verdicts of one session, entry by entry.
#[derive(Default)]
struct SessionPlan {
    decisions: Vec<Result<Decision, Refusal>>,
    reports: Vec<FileReport>,
    verdicts: Vec<Verdict>,
}

impl SessionPlan {
    fn push(&mut self, entry: &Entry, decision: Result<Decision, Refusal>) {
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        let dir = entry.kind == EntryKind::Dir;
        let mut report = FileReport::new(name, dir, Status::Sent);
        match &decision {
            Ok(Decision::Dir { .. }) => report.status = Status::Created,
            Ok(Decision::Skip) => report.status = Status::Skipped,
            Err(r) => {
                report.status = Status::Refused;
                report.reason = Some(r.reason.clone());
            }
            Ok(Decision::Receive { .. } | Decision::Stdout) => {}
        }
        self.reports.push(report);
        self.decisions.push(decision);
    }

    fn refuse_all_receives(&mut self, code: RefuseCode, why: &str) {
        for (d, r) in self.decisions.iter_mut().zip(&mut self.reports) {
            if matches!(d, Ok(Decision::Receive { .. } | Decision::Stdout)) {
                *d = Err(Refusal::new(code, why));
                r.status = Status::Refused;
                r.reason = Some(why.to_string());
            }
        }
    }

    /// Indices of the entries whose bytes must come, in order.
    fn wanted(&self) -> Vec<usize> {
        self.decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| matches!(d, Ok(Decision::Receive { .. } | Decision::Stdout)))
            .map(|(i, _)| i)
            .collect()
    }

    /// The PLAN frame.
    fn wire(&self) -> Plan {
        let answers = self
            .decisions
            .iter()
            .map(|d| match d {
                Ok(Decision::Receive { offset: 0, .. } | Decision::Stdout) => {
                    Answer::Send { offset: 0 }
                }
                Ok(Decision::Receive { offset, prefix_xxh3, .. }) => {
                    Answer::Resume { offset: *offset, prefix_xxh3: *prefix_xxh3 }
                }
                Ok(Decision::Dir { .. } | Decision::Skip) => Answer::Skip,
                Err(r) => Answer::Refuse { code: r.code, reason: r.reason.clone() },
            })
            .collect();
        Plan { answers }
    }
}

/// Reads the sender's greeting (refusing anything that is not zcp at its first byte), answers,
/// and checks its token proof, proving ours in turn.
fn greet(
    socket: &mut TcpStream,
    handshake: &mut session::Deadline,
    token: Option<&Token>,
) -> anyhow::Result<()> {
    let theirs = protocol::read_hello(handshake)
        .map_err(|e| session::read_failure(e, "the sender's greeting", Some(HANDSHAKE_TIMEOUT)))?;
    let nonce = auth::nonce()?;
    let ours = if token.is_some() { Hello::with_auth(nonce) } else { Hello::ours() };
    protocol::write_hello(socket, ours).context("sending the greeting")?;
    if theirs.version != protocol::VERSION {
        let err = ProtocolError::UnsupportedVersion(theirs.version);
        session::fail_with(socket, ErrorCode::UnsupportedVersion, &err.to_string());
        return Err(err.into());
    }
    let refuse = |socket: &mut TcpStream, told: &str, ours: &str| {
        session::fail_with(socket, ErrorCode::Auth, told);
        Err(SessionError::Auth(ours.to_string()).into())
    };
    match (token, theirs.auth()) {
        (None, false) => Ok(()),
        (Some(_), false) => refuse(
            socket,
            "this receiver requires a token: set ZCP_TOKEN or pass --token-file",
            "the sender offered no token (it may need ZCP_TOKEN)",
        ),
        (None, true) => refuse(
            socket,
            "this receiver runs with --no-auth and cannot prove a token; drop the token or give the receiver one",
            "the sender asked for a token proof, but this receiver runs with --no-auth",
        ),
        (Some(token), true) => {
            let proof = match handshake.next_message("the sender's token proof")? {
                Message::Auth { proof } => proof,
                other => return Err(unexpected("AUTH", &other)),
            };
            if !token.check_sender(&proof, &theirs.nonce, &nonce) {
                return refuse(socket, "wrong token", "the sender's token is wrong");
            }
            let mine = token.receiver_proof(&theirs.nonce, &nonce);
            protocol::write_message(socket, &Message::Auth { proof: mine })
                .context("sending the token proof")
        }
    }
}

/// Tells a sender that came while all `max` sessions run that it must wait. The greeting echoes
/// the sender's AUTH flag, so that a sender with a token reads on to "busy" instead of stopping
/// at a flag mismatch.
fn turn_away(mut socket: TcpStream, max: u32) {
    // At most this many answers at once; past that a sender is just closed on (it sees the
    // connection end): a flood of connections must not become a flood of threads.
    static ANSWERING: AtomicUsize = AtomicUsize::new(0);
    if ANSWERING.fetch_add(1, Ordering::AcqRel) >= TURN_AWAY_MAX {
        ANSWERING.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let spawned = thread::Builder::new().name("zcp-busy".into()).spawn(move || {
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                ANSWERING.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _done = Done;
        let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
        let Ok(theirs) = protocol::read_hello(&mut socket) else { return };
        let ours = match theirs.auth() {
            true => Hello::with_auth(auth::nonce().unwrap_or_default()),
            false => Hello::ours(),
        };
        if protocol::write_hello(&mut socket, ours).is_ok() {
            session::fail_with(
                &mut socket,
                ErrorCode::Busy,
                &format!("receiver busy: {max} sessions running, try again later"),
            );
        }
    });
    if spawned.is_err() {
        ANSWERING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Tells the sender why this end gives up, when the sender can still hear it, and passes the
/// error on.
fn tell_peer(socket: &mut TcpStream, err: anyhow::Error) -> anyhow::Error {
    let code = match exit_code(&err) {
        ExitCode::Io => Some(ErrorCode::Io),
        ExitCode::Protocol => Some(ErrorCode::Protocol),
        ExitCode::Refused => Some(ErrorCode::Limit),
        ExitCode::Connection if is_idle(&err) => Some(ErrorCode::Limit),
        _ => None,
    };
    if let Some(code) = code {
        session::fail_with(socket, code, &format!("receiver: {err:#}"));
    }
    err
}

fn is_idle(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::WouldBlock)
    })
}

/// The sessions running now, so a signal can tell each sender and unblock its thread.
#[derive(Default)]
struct Live {
    sockets: Mutex<Vec<(u64, TcpStream, bool)>>,
    next: std::sync::atomic::AtomicU64,
}

impl Live {
    fn add(&self, socket: &TcpStream) -> u64 {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let (Ok(clone), Ok(mut list)) = (socket.try_clone(), self.sockets.lock()) {
            list.push((id, clone, false));
        }
        id
    }

    fn started_data(&self, id: u64) {
        if let Ok(mut list) = self.sockets.lock() {
            list.iter_mut().filter(|(i, ..)| *i == id).for_each(|s| s.2 = true);
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut list) = self.sockets.lock() {
            list.retain(|(i, ..)| *i != id);
        }
    }

    fn count(&self) -> usize {
        self.sockets.lock().map_or(0, |l| l.len())
    }

    /// Tells every sender that the receiver shuts down and unblocks the session threads;
    /// their part files stay for a later resume.
    fn stop_all(&self) {
        // Handles are taken out of the lock first: a write to a peer that stopped reading may
        // block (up to a second), and session threads must still be able to leave the list.
        let sockets: Vec<(TcpStream, bool)> = match self.sockets.lock() {
            Ok(list) => {
                list.iter().filter_map(|(_, s, d)| Some((s.try_clone().ok()?, *d))).collect()
            }
            Err(_) => return,
        };
        for (socket, in_data) in sockets {
            if in_data {
                let msg = Message::Error {
                    code: ErrorCode::Interrupted,
                    message: "receiver shut down".into(),
                };
                let _ = socket.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = protocol::write_message(&mut &socket, &msg);
            }
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}
