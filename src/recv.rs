//! The receiving session: listen, accept one sender, check its greeting and offer, answer with a
//! plan, write each accepted file through its part file, verify, and put it in place.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use anyhow::Context;

use crate::config::RecvConfig;
use crate::copy::{self, Framing, Incoming, Moved};
use crate::dest::{Destination, PartFile};
use crate::error::{ExitCode, SessionError, exit_code};
use crate::protocol::{
    self, Answer, Entry, ErrorCode, Hello, Message, Plan, ProtocolError, Summary, Verdict,
    VerdictStatus,
};
use crate::report::{FileReport, Report, Role};
use crate::session::{self, HANDSHAKE_TIMEOUT, next_message, unexpected};
use crate::{net, progress, usage};

/// A listening receiver, bound before anything is accepted so its address can be printed.
pub struct Receiver {
    listener: TcpListener,
    dest: Destination,
}

impl Receiver {
    /// Checks `--output` and binds `--listen`.
    pub fn bind(cfg: &RecvConfig) -> anyhow::Result<Receiver> {
        let dest = Destination::resolve(&cfg.output)?;
        let listener = net::listen(&cfg.listen)?;
        Ok(Receiver { listener, dest })
    }

    /// The address actually bound (the real port when `--listen` asked for port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener.local_addr().context("reading the listening address")
    }

    /// Serves one sender and returns both ends' report.
    pub fn serve_one(&self, cfg: &RecvConfig) -> anyhow::Result<Report> {
        let (mut socket, peer) = self.listener.accept().context("accepting a connection")?;
        serve(&mut socket, &self.dest, cfg).with_context(|| format!("receiving from {peer}"))
    }
}

fn serve(socket: &mut TcpStream, dest: &Destination, cfg: &RecvConfig) -> anyhow::Result<Report> {
    greet(socket)?;
    let offer = match next_message(socket, "the sender's offer")? {
        Message::Offer(offer) => offer,
        other => return Err(unexpected("OFFER", &other)),
    };
    let (plan, parts) = plan(&offer.entries, dest, cfg.force);
    protocol::write_message(socket, &Message::Plan(plan.clone())).context("sending the plan")?;
    if parts.iter().all(Option::is_none) {
        return Err(first_refusal(&offer.entries, &plan));
    }
    session::set_timeout(socket, None)?;
    let start = usage::Snapshot::now();
    let mut total = Moved::default();
    let (mut files, mut verdicts) = (Vec::new(), Vec::new());
    for (entry, part) in offer.entries.iter().zip(parts) {
        let Some(part) = part else { continue };
        let (file, verdict, moved) = match receive_file(socket, entry, part, cfg) {
            Ok(done) => done,
            Err(e) => return Err(tell_peer(socket, e)),
        };
        absorb(&mut total, moved);
        files.push(file);
        verdicts.push(verdict);
    }
    let sender = match next_message(socket, "the sender's statistics")? {
        Message::Finish(stats) => stats,
        other => return Err(unexpected("FINISH", &other)),
    };
    let stats = start.side_stats(&total);
    let summary = Summary { verdicts, stats: stats.clone() };
    protocol::write_message(socket, &Message::Summary(summary)).context("sending the summary")?;
    Ok(Report { role: Role::Recv, files, send: sender, recv: stats })
}

/// Reads the sender's greeting (refusing anything that is not zcp at its first byte) and answers.
fn greet(socket: &mut TcpStream) -> anyhow::Result<()> {
    session::set_timeout(socket, Some(HANDSHAKE_TIMEOUT))?;
    let hello = protocol::read_hello(socket)
        .map_err(|e| session::read_failure(e, "the sender's greeting"))?;
    protocol::write_hello(socket, Hello::ours()).context("sending the greeting")?;
    if hello.version != protocol::VERSION {
        let err = ProtocolError::UnsupportedVersion(hello.version);
        session::fail_with(socket, ErrorCode::UnsupportedVersion, &err.to_string());
        return Err(err.into());
    }
    Ok(())
}

/// Answers every entry, creating the part file of each accepted one.
fn plan(entries: &[Entry], dest: &Destination, force: bool) -> (Plan, Vec<Option<PartFile>>) {
    let single_target = matches!(dest, Destination::File { .. });
    let mut answers = Vec::with_capacity(entries.len());
    let mut parts = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let decided = if single_target && i > 0 {
            Err(crate::dest::Refusal {
                code: protocol::RefuseCode::Unsupported,
                reason: "--output names one file, and it is taken by the first entry".into(),
            })
        } else {
            dest.target(entry).and_then(|t| PartFile::create(t, force))
        };
        match decided {
            Ok(part) => {
                answers.push(Answer::Send { offset: 0 });
                parts.push(Some(part));
            }
            Err(refusal) => {
                answers.push(Answer::Refuse { code: refusal.code, reason: refusal.reason });
                parts.push(None);
            }
        }
    }
    (Plan { answers }, parts)
}

fn first_refusal(entries: &[Entry], plan: &Plan) -> anyhow::Error {
    let refused = entries.iter().zip(&plan.answers).find_map(|(e, a)| match a {
        Answer::Refuse { reason, .. } => Some((String::from_utf8_lossy(&e.name), reason)),
        _ => None,
    });
    match refused {
        Some((name, reason)) => {
            SessionError::Refused { name: name.into_owned(), reason: reason.clone() }.into()
        }
        None => anyhow::anyhow!("the sender offered no files"),
    }
}

/// Receives one file into its part file, checks its checksum, and puts it in place or drops it.
fn receive_file(
    socket: &mut TcpStream,
    entry: &Entry,
    part: PartFile,
    cfg: &RecvConfig,
) -> anyhow::Result<(FileReport, Verdict, Moved)> {
    let name = String::from_utf8_lossy(&entry.name).into_owned();
    let part_path = part.target.part_path();
    let bar = progress::bar(cfg.print.progress, entry.size, &name);
    let mut tick = |n: u64| -> io::Result<()> {
        bar.set_position(n);
        Ok(())
    };
    let framing = entry.size.map_or(Framing::Chunked, Framing::Sized);
    let inc =
        Incoming { socket, file: &part.file, framing, offset: 0, buffer_size: cfg.buffer_size };
    let moved = copy::recv(&inc, cfg.method, &mut tick);
    bar.finish_and_clear();
    let moved = moved.with_context(|| {
        format!("writing {name} (partial data kept in {})", part_path.display())
    })?;
    let end = match next_message(socket, "the file's checksum")? {
        Message::FileEnd(end) => end,
        other => return Err(unexpected("FILE_END", &other)),
    };
    let mut report = FileReport {
        name,
        bytes: moved.bytes,
        path: moved.path,
        checksum_ok: false,
        saved_as: None,
    };
    let verdict = if end.xxh3 == moved.xxh3 {
        let saved = part.commit(entry)?;
        report.checksum_ok = true;
        report.saved_as = Some(saved.display().to_string());
        Verdict { status: VerdictStatus::Ok, detail: String::new() }
    } else {
        part.discard();
        Verdict { status: VerdictStatus::ChecksumMismatch, detail: "xxh3-128 differs".into() }
    };
    Ok((report, verdict, moved))
}

/// Tells the sender why this end gives up, when it is this end's fault and the sender can still
/// hear it, and passes the error on.
fn tell_peer(socket: &mut TcpStream, err: anyhow::Error) -> anyhow::Error {
    let code = match exit_code(&err) {
        ExitCode::Io => Some(ErrorCode::Io),
        ExitCode::Protocol => Some(ErrorCode::Protocol),
        _ => None,
    };
    if let Some(code) = code {
        session::fail_with(socket, code, &format!("receiver: {err:#}"));
    }
    err
}

/// Adds one file's counts to the session's.
fn absorb(total: &mut Moved, moved: Moved) {
    if total.calls == 0 && total.bytes == 0 {
        total.path = moved.path;
        total.fallbacks = moved.fallbacks;
    }
    total.bytes += moved.bytes;
    total.calls += moved.calls;
    total.checksum_calls += moved.checksum_calls;
    total.pipe_bytes = total.pipe_bytes.max(moved.pipe_bytes);
}
