//! The sending session: walk the paths into a manifest, prove the token on the connection
//! `net::establish` made (`greet`), offer everything at once, follow the one plan that comes
//! back, and push each file by the chosen data path, resuming where the receiver holds a
//! matching prefix; small files go in batches, many to one write.

mod digests;
pub mod filter;
pub mod manifest;
mod sparse;
pub mod star;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::checksum::Xxh3;
use anyhow::Context;

use crate::config::SendConfig;
use crate::copy::batch;
use crate::copy::pace::Pacer;
use crate::copy::socket::Socket;
use crate::copy::source::{Listed, Source};
use crate::copy::{self, Counted, Framing, Moved, Outgoing, Timed};
use crate::datapath::{DataPath, Method};
use crate::error::SessionError;
use crate::link::auth::Direction;
use crate::link::peer::{self, HANDSHAKE_TIMEOUT, unexpected};
use crate::link::tls::Channel;
use crate::link::{handshake, net, tls};
use crate::progress::Ui;
use crate::protocol::{
    self, Answer, EntryKind, ErrorCode, FileEnd, Hello, Message, Offer, ProtocolError,
    VerdictStatus,
};
use crate::report::events::{Event, Events};
use crate::report::{FileReport, Report, Status};
use crate::role::Role;
use crate::send::digests::Digests;
use crate::send::manifest::{Item, Manifest, Origin};
use crate::sys::{rusage, signals};
use humansize::{BINARY, format_size};

/// How often (in bytes moved) the sender checks whether the receiver has given up.
const WATCH_EVERY: u64 = 64 << 20;

/// Walks `cfg.paths`, prints what was skipped, and refuses option combinations that cannot work
/// before anything is sent.
pub fn prepare(cfg: &SendConfig, ui: &Ui) -> anyhow::Result<Manifest> {
    let filter = filter::Filter::new(&cfg.filters)?;
    let manifest =
        Manifest::build(&cfg.paths, cfg.stdin_name.as_deref(), cfg.follow_symlinks, filter)?;
    manifest.warnings.iter().for_each(|w| ui.warn(w));
    if cfg.method == Method::Only(DataPath::Sendfile)
        && let Some(item) = manifest
            .items
            .iter()
            .find(|i| i.entry.kind == EntryKind::File && i.entry.size.is_none())
    {
        let name = String::from_utf8_lossy(&item.entry.name).into_owned();
        return Err(SessionError::MethodUnavailable {
            path: DataPath::Sendfile,
            errno: None,
            reason: format!(
                "{name} is a stream of unknown length; sendfile needs a file of known size"
            ),
        }
        .into());
    }
    Ok(manifest)
}

/// The whole of `zcp send` after `prepare`: connects (or, with `--listen`, waits and tells
/// `listening` where), greets inside the tunnel `--encrypt` asks for, and runs the session.
pub fn session(
    cfg: &SendConfig,
    manifest: &Manifest,
    listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<Report> {
    connected(cfg, manifest, listening, None)
}

/// One session of a star: what it shares with the others, and whom it sends to.
struct Leg<'a> {
    /// The whole-file checksums, hashed once for every receiver.
    digests: &'a Digests,
    /// The receiver's address as given (`--to`), which tags its events.
    receiver: &'a str,
}

/// `session`, alone or as one `leg` of a star.
fn connected(
    cfg: &SendConfig,
    manifest: &Manifest,
    listening: impl FnOnce(SocketAddr),
    leg: Option<&Leg<'_>>,
) -> anyhow::Result<Report> {
    let greet = |socket, direction| {
        let mut channel = tls::open(socket, direction, cfg.net.encrypt, Role::Receiver)?;
        let hello = greet(cfg, &mut channel, direction)?;
        Ok((channel, hello))
    };
    let (mut channel, hello) = net::establish(&cfg.net, listening, greet)?;
    let ran = run(cfg, manifest, &mut channel, hello, leg);
    channel.close(ran)
}

/// The sender's handshake on a connection made in `direction`: what `net::establish` runs.
/// A connection this end made names its peer; an accepted one is logged with it already.
/// Returns the receiver's greeting (whether it takes the sparse form). With `--encrypt` it runs
/// inside the TLS `channel`, which `tls::open` made first.
fn greet(cfg: &SendConfig, channel: &mut Channel, direction: Direction) -> anyhow::Result<Hello> {
    let (token, binding, within) =
        (cfg.token.as_ref(), channel.binding().copied(), channel.time_left());
    let socket = channel.socket_mut();
    let greeted =
        handshake::sender(socket, direction, token, cfg.no_auth, (binding.as_ref(), within));
    match direction {
        Direction::Connected => greeted.with_context(|| format!("greeting {}", channel.peer())),
        Direction::Accepted => greeted,
    }
}

/// Runs one session over `channel`, greeted already (see `greet`; `hello` is the receiver's
/// greeting, saying what it takes), and returns both ends' report.
fn run(
    cfg: &SendConfig,
    manifest: &Manifest,
    channel: &mut Channel,
    hello: Hello,
    leg: Option<&Leg<'_>>,
) -> anyhow::Result<Report> {
    let (receiver, encryption) = (channel.peer(), channel.encryption());
    let socket = channel.socket_mut();
    let answers = offer(socket, manifest, cfg)?;
    peer::set_timeout(socket, cfg.net.idle_timeout)?;
    socket.set_write_timeout(cfg.net.idle_timeout).context("setting the socket write timeout")?;
    let start = rusage::Snapshot::now();
    let mut reports: Vec<FileReport> =
        manifest.items.iter().zip(&answers).map(|(i, a)| initial_report(i, a)).collect();
    let idle = cfg.net.idle_timeout;
    // Ctrl-C now stops the transfer between calls, so the user learns what was kept.
    signals::install()?;
    let events = match leg {
        Some(leg) => Events::for_receiver(cfg.print.events, leg.receiver),
        None => Events::new(cfg.print.events),
    };
    let sparse = cfg.sparse && hello.takes_sparse();
    let shared = Shared { events: &events, sparse, digests: leg.map(|l| l.digests) };
    let pushed = push_all(socket, cfg, manifest, &answers, &mut reports, shared);
    signals::restore();
    let (total, mut pending) =
        pushed.with_context(|| format!("sending to {receiver}")).map_err(explain_interrupt)?;
    let stats = start.side_stats(&total);
    pending.extend(protocol::frame(&Message::Finish(stats.clone())));
    if let Err(e) = Timed::writing(socket.stream()).write_all(&pending) {
        let e = anyhow::Error::from(e).context("sending statistics");
        return Err(peer_reason(socket).unwrap_or(e));
    }
    let summary = match peer::whole_message(socket, idle, "the receiver's summary")? {
        Message::Summary(s) => s,
        other => return Err(unexpected("SUMMARY", &other)),
    };
    let sent: Vec<&mut FileReport> = reports.iter_mut().filter(|r| r.data_path.is_some()).collect();
    if sent.len() != summary.verdicts.len() {
        return Err(ProtocolError::Malformed(format!(
            "{} verdicts for {} files sent",
            summary.verdicts.len(),
            sent.len()
        ))
        .into());
    }
    for (report, verdict) in sent.into_iter().zip(&summary.verdicts) {
        match verdict.status {
            // The receiver holds the same content (`zcp recv --checksum`): nothing was sent.
            VerdictStatus::Ok if verdict.is_unchanged() => {
                (report.status, report.resumed_from) = (Status::Skipped, 0);
                report.data_path = report.data_path.filter(|_| report.bytes > 0);
            }
            VerdictStatus::Ok => {}
            VerdictStatus::ChecksumMismatch => report.status = Status::ChecksumMismatch,
            // Checked, but not put in place (its name was taken meanwhile): refused.
            VerdictStatus::Failed => {
                report.status = Status::Refused;
                report.reason = Some(verdict.detail.clone());
            }
        }
    }
    let report = Report {
        role: Role::Sender,
        files: reports,
        send: stats,
        recv: summary.stats,
        created: None,
        encryption,
        excluded: manifest.excluded,
        removed: Vec::new(),
    };
    events.file_ends(&report);
    events.finished(&report);
    Ok(report)
}

fn initial_report(item: &Item, answer: &Answer) -> FileReport {
    let name = String::from_utf8_lossy(&item.entry.name).into_owned();
    let dir = item.entry.kind == EntryKind::Dir;
    match answer {
        Answer::Refuse { reason, .. } => FileReport {
            reason: Some(reason.clone()),
            ..FileReport::new(name, dir, Status::Refused)
        },
        Answer::Skip if dir => FileReport::new(name, dir, Status::Created),
        Answer::Skip => FileReport::new(name, dir, Status::Skipped),
        Answer::Send { .. } | Answer::Resume { .. } => FileReport::new(name, dir, Status::Sent),
    }
}

/// Offers the whole manifest and returns the receiver's answer for each entry.
fn offer(
    socket: &mut Socket,
    manifest: &Manifest,
    cfg: &SendConfig,
) -> anyhow::Result<Vec<Answer>> {
    let entries = manifest.items.iter().map(|i| i.entry.clone()).collect();
    protocol::write_message(socket, &Message::Offer(Offer { entries }))
        .context("sending the offer")?;
    // Deciding resumes hashes partial files: allow the idle timeout for the answer, and at
    // least the handshake's.
    let within = cfg.net.idle_timeout.map(|t| t.max(HANDSHAKE_TIMEOUT));
    let plan = match peer::whole_message(socket, within, "the receiver's plan")? {
        Message::Plan(plan) if plan.answers.len() == manifest.items.len() => plan,
        other => return Err(unexpected("PLAN with one answer per entry", &other)),
    };
    for (item, answer) in manifest.items.iter().zip(&plan.answers) {
        let size = item.entry.size;
        let bad = match answer {
            Answer::Send { offset } => *offset != 0,
            Answer::Resume { offset, .. } => size.is_none_or(|s| *offset > s) || *offset == 0,
            _ => false,
        };
        if bad
            || (item.entry.kind == EntryKind::Dir
                && !matches!(answer, Answer::Skip | Answer::Refuse { .. }))
        {
            return Err(ProtocolError::Malformed(format!(
                "receiver's answer {answer:?} does not fit its entry"
            ))
            .into());
        }
    }
    Ok(plan.answers)
}

/// Sends every file the plan asked for, in manifest order. Small files are gathered with their
/// frames and written in batches; before any other file, what was gathered leaves in one write
/// with that file's FILE_START. What is still gathered at the end is returned for the caller to
/// send along with FINISH.
fn push_all(
    socket: &mut Socket,
    cfg: &SendConfig,
    manifest: &Manifest,
    answers: &[Answer],
    reports: &mut [FileReport],
    Shared { events, sparse, digests }: Shared<'_>,
) -> anyhow::Result<(Moved, Vec<u8>)> {
    let wanted: Vec<usize> = (0..answers.len())
        .filter(|&i| matches!(answers[i], Answer::Send { .. } | Answer::Resume { .. }))
        .collect();
    let known = wanted
        .iter()
        .try_fold(0u64, |sum, &i| manifest.items[i].entry.size.map(|s| sum.saturating_add(s)));
    let mut push = Push {
        socket,
        cfg,
        pending: Vec::new(),
        ui: Ui::new(cfg.print, known, wanted.len() as u64).with_events(events.clone()),
        pacer: Pacer::new(cfg.limit_rate),
        opener: batch::Opener::new(cfg.follow_symlinks),
        total: Moved::default(),
        holds_data: false,
        sparse,
        digests,
    };
    let (entries, files) = (answers.len(), wanted.len());
    events.emit(&Event::SessionStart { role: Role::Sender, entries, files, bytes: known });
    reports.iter().enumerate().for_each(|(i, r)| events.planned(i, r));
    let mut batched = false;
    for index in wanted {
        if let Some(signal) = signals::pending() {
            // The small files gathered so far are whole and checked: let them land.
            if push.holds_data {
                let _ = push.send_pending();
            }
            return Err(stopped(signal, push.total.bytes, known).into());
        }
        let item = &manifest.items[index];
        let report = &mut reports[index];
        push.ui.file(&report.name);
        let mark = push.pending.len();
        let moved = match small_file(cfg, item, &answers[index]) {
            Some((path, size)) => {
                batched = true;
                push.ui.begin(index, &report.name, Some(size), 0);
                push.small(index, path, size)
            }
            None => push.whole(index, item, &answers[index], report),
        };
        let moved = match moved {
            Ok(moved) => moved,
            Err(e) => {
                // The files gathered before this one are whole and checked: let them land.
                push.pending.truncate(mark);
                if push.holds_data {
                    let _ = push.send_pending();
                }
                return Err(e);
            }
        };
        report.bytes = moved.bytes;
        report.data_path = Some(moved.data_path);
        push.total.absorb(moved);
    }
    if batched && cfg.method == Method::Auto {
        push.total.absorb_fallback(batch::send_reason());
    }
    // Small files still gathered leave now, so that the statistics count the call.
    if push.holds_data {
        push.send_pending()?;
    }
    push.ui.finish();
    Ok((push.total, push.pending))
}

/// What `push_all` is given besides the plan: the events, whether the receiver takes the
/// sparse form, and in a star the checksums the sessions share.
struct Shared<'a> {
    events: &'a Events,
    sparse: bool,
    digests: Option<&'a Digests>,
}

/// Where `push_all` is: the socket, what waits to be written, the display, the pace.
struct Push<'a> {
    socket: &'a mut Socket,
    cfg: &'a SendConfig,
    /// Frames and small files gathered for the next write.
    pending: Vec<u8>,
    ui: Ui,
    pacer: Pacer,
    opener: batch::Opener,
    total: Moved,
    /// Whether `pending` holds small files' bytes (its write is then a data call).
    holds_data: bool,
    /// Whether the receiver takes the sparse form (its greeting said so).
    sparse: bool,
    /// In a star: the whole-file checksums, hashed once for every session.
    digests: Option<&'a Digests>,
}

impl Push<'_> {
    /// Gathers one small file, with its frames, and writes the batch once it is large enough.
    fn small(&mut self, index: usize, path: &Path, size: u64) -> anyhow::Result<Moved> {
        let display = path.display().to_string();
        let file = self.opener.open(path)?;
        let start = Message::FileStart { index: index as u32, offset: 0 };
        self.pending.extend(protocol::frame(&start));
        let moved = batch::append(&file, &display, size, &mut self.pending)?;
        self.pending.extend(protocol::frame(&Message::FileEnd(FileEnd { xxh3: moved.xxh3 })));
        self.holds_data = true;
        // Under --limit-rate a batch is at most one paced call's worth, so the pace stays smooth.
        let full = self.pacer.max_call().map_or(batch::BATCH, |m| m.min(batch::BATCH));
        if self.pending.len() >= full {
            self.send_pending()?;
        }
        self.ui.position(self.total.bytes + moved.bytes);
        self.pacer.pace(self.total.bytes + moved.bytes);
        Ok(moved)
    }

    /// Writes what was gathered (counted as data calls when it holds small files). A receiver
    /// that has given up (it spoke) stops the session with its reason. Whatever happens, nothing
    /// gathered is written twice.
    fn send_pending(&mut self) -> anyhow::Result<()> {
        if self.holds_data && peer::peer_has_spoken(self.socket) {
            return Err(peer_reason(self.socket).unwrap_or(SessionError::PeerStopped.into()));
        }
        let mut counted = Counted::new(Timed::writing(self.socket.stream()));
        let written = counted.write_all(&self.pending);
        if self.holds_data {
            self.total.calls += counted.calls;
        }
        self.pending.clear();
        self.holds_data = false;
        if let Err(e) = written {
            let e = anyhow::Error::from(e).context("sending to the receiver");
            return Err(peer_reason(self.socket).unwrap_or(e));
        }
        Ok(())
    }

    /// Sends one file by the configured data path, from where the receiver's copy ends when it
    /// holds a matching prefix.
    fn whole(
        &mut self,
        index: usize,
        item: &Item,
        answer: &Answer,
        report: &mut FileReport,
    ) -> anyhow::Result<Moved> {
        let mut source = open(item, self.cfg.follow_symlinks)?;
        let offset = resume_offset(&source, answer, self.cfg.resume, report)?;
        report.resumed_from = offset;
        self.ui.begin(index, &report.name, item.entry.size, offset);
        source.size = item.entry.size;
        if let Some(runs) = self.runs(&source, offset)? {
            return self.sparse(index, &source, offset, &runs, report);
        }
        self.pending.extend(protocol::frame(&Message::FileStart { index: index as u32, offset }));
        self.send_pending()?;
        let shared = self.digests.zip(source.size);
        if let Some((digests, size)) = shared {
            digests.start(index, &source.file, size);
        }
        let mut moved = self
            .push(&source, offset, self.total.bytes, shared.is_none())
            .with_context(|| format!("sending {}", source.display))?;
        if let Some((digests, size)) = shared {
            moved.xxh3 = self.shared_digest(digests, index, &source, size)?;
        }
        self.pending.extend(protocol::frame(&Message::FileEnd(FileEnd { xxh3: moved.xxh3 })));
        Ok(moved)
    }
}

impl Push<'_> {
    /// The checksum a star's sessions share for entry `index`, once its thread is done; a
    /// signal stops the wait.
    fn shared_digest(
        &self,
        digests: &Digests,
        index: usize,
        source: &Source,
        size: u64,
    ) -> anyhow::Result<u128> {
        let sent = self.total.bytes;
        let mut check = || match signals::pending() {
            Some(signal) => Err(stopped(signal, sent, None).into()),
            None => Ok(()),
        };
        digests
            .wait(index, &source.file, size, &mut check)
            .with_context(|| format!("hashing {}", source.display))
    }
}

/// A file that goes batched, and its size: a small regular file from the walk (not standard
/// input), sent whole, and `--method` does not insist on a zero-copy path. The receiver reads
/// such files in batches whatever this end does (it knows them by size), so `--limit-rate`
/// paces the batches rather than sending these files one call each.
fn small_file<'a>(cfg: &SendConfig, item: &'a Item, answer: &Answer) -> Option<(&'a Path, u64)> {
    let size = item.entry.size.filter(|&s| s <= batch::SMALL_FILE)?;
    let Origin::Path(path) = &item.origin else { return None };
    let allowed = matches!(cfg.method, Method::Auto | Method::Only(DataPath::Buffered));
    (allowed && matches!(answer, Answer::Send { offset: 0 })).then_some((path.as_path(), size))
}

/// Opens an item's source when its turn comes (`follow`: `--follow-symlinks`).
fn open(item: &Item, follow: bool) -> anyhow::Result<Source> {
    match &item.origin {
        Origin::Path(path) => {
            let listed = if item.entry.size.is_some() { Listed::Regular } else { Listed::Stream };
            Source::open_listed(path, listed, follow)
        }
        Origin::Stdin => Source::stdin(&String::from_utf8_lossy(&item.entry.name)),
        Origin::Dir => Err(anyhow::anyhow!("a directory has no bytes to send")),
    }
}

/// The offset to send from: the receiver's, when resuming is on and its prefix matches ours.
fn resume_offset(
    source: &Source,
    answer: &Answer,
    resume: bool,
    report: &mut FileReport,
) -> anyhow::Result<u64> {
    let Answer::Resume { offset, prefix_xxh3 } = *answer else { return Ok(0) };
    if !resume {
        report.reason = Some("partial copy on the receiver ignored (--no-resume)".into());
        return Ok(0);
    }
    let mut hasher = Xxh3::new();
    copy::hash_prefix(&source.file, offset, &mut hasher)
        .with_context(|| format!("hashing the first {offset} bytes of {}", source.display))?;
    if hasher.digest128() == prefix_xxh3 {
        Ok(offset)
    } else {
        report.reason = Some(format!(
            "the receiver's partial copy ({offset} bytes) differs from the source; sent whole"
        ));
        Ok(0)
    }
}

impl Push<'_> {
    /// Moves one file's bytes from `offset` (`base`: the session's bytes before), watching for
    /// the receiver giving up; if it did, its reason is the error.
    fn push(
        &mut self,
        source: &Source,
        offset: u64,
        base: u64,
        checksum: bool,
    ) -> anyhow::Result<Moved> {
        let (cfg, ui, pacer) = (self.cfg, &self.ui, &mut self.pacer);
        push(self.socket, cfg, source, (offset, base, checksum), ui, pacer)
    }
}

/// Moves one file's bytes, watching for the receiver giving up; if it did, its reason is the error.
fn push(
    socket: &mut Socket,
    cfg: &SendConfig,
    source: &Source,
    (offset, base, checksum): (u64, u64, bool),
    ui: &Ui,
    pacer: &mut Pacer,
) -> anyhow::Result<Moved> {
    let mut next_watch = WATCH_EVERY;
    let watched: &Socket = socket;
    let max_call = pacer.max_call();
    let total = source.size.map(|s| base + s.saturating_sub(offset));
    let mut tick = |moved: u64| -> anyhow::Result<()> {
        if let Some(signal) = signals::pending() {
            return Err(stopped(signal, base + moved, total).into());
        }
        ui.position(base + moved);
        pacer.pace(base + moved);
        if moved >= next_watch {
            next_watch = moved + WATCH_EVERY;
            if peer::peer_has_spoken(watched) {
                return Err(SessionError::PeerStopped.into());
            }
        }
        Ok(())
    };
    let out = Outgoing {
        source,
        socket: watched.stream(),
        offset,
        buffer_size: cfg.buffer_size,
        max_call,
        framing: Framing::of(source.size, offset, false),
        checksum,
    };
    let result = copy::send(&out, cfg.method, &mut tick);
    result.map_err(|e| match signals::pending() {
        Some(_) => e,
        None => peer_reason(socket).unwrap_or(e),
    })
}

/// The error of a transfer stopped by `signal` after `sent` bytes (of `total`, when known).
fn stopped(signal: nix::sys::signal::Signal, sent: u64, total: Option<u64>) -> SessionError {
    let of = total.map_or_else(String::new, |t| format!(" of {}", format_size(t, BINARY)));
    let message = format!("stopped by {signal} after {}{of}", format_size(sent, BINARY));
    SessionError::Interrupted { signal, message }
}

/// Tells a user whose transfer was stopped, at this end or the receiver's, or cut off, what
/// was kept and what to run to resume it.
fn explain_interrupt(err: anyhow::Error) -> anyhow::Error {
    use crate::error::ExitCode;
    let receiver_stopped = matches!(
        err.downcast_ref::<SessionError>(),
        Some(SessionError::Peer { code: ErrorCode::Interrupted, .. })
    );
    if receiver_stopped {
        return err.context(
            "the receiver was stopped and keeps what arrived: start it again with the same \
             token, --output and --skip-existing, then run this same command to resume",
        );
    }
    match crate::error::exit_code(&err) {
        ExitCode::Interrupted | ExitCode::Terminated => err.context(
            "interrupted: the receiver keeps what arrived and waits for this sender (unless it \
             runs with --resume-wait 0): run the same command again to resume",
        ),
        ExitCode::Connection => err.context(
            "the connection broke: the receiver keeps what arrived and, if it still runs, waits \
             for this sender: run the same command again to resume",
        ),
        _ => err,
    }
}

/// How long a failed send looks for the receiver's reason, all reads together: a receiver that
/// sends frames forever must not hold the sender.
const REASON_WITHIN: Duration = Duration::from_secs(2);

/// After a failed send, the receiver's ERROR frame if it sent one within `REASON_WITHIN` (it
/// explains the failure better than "broken pipe").
pub fn peer_reason(socket: &mut Socket) -> Option<anyhow::Error> {
    let mut deadline = peer::Deadline::new(socket, REASON_WITHIN).ok()?;
    loop {
        match protocol::read_message(&mut deadline) {
            Ok(Message::Error { code, message }) => {
                return Some(SessionError::Peer { code, message }.into());
            }
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}
