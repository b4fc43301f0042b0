//! The sending session: open the source, connect, greet, offer, follow the receiver's plan,
//! push the bytes by the chosen data path, and collect both ends' statistics.

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context;

use crate::config::SendConfig;
use crate::copy::{self, Moved, Outgoing};
use crate::error::SessionError;
use crate::protocol::{self, Answer, Entry, EntryKind, FileEnd, Hello, Message, Offer};
use crate::report::{FileReport, Report, Role};
use crate::session::{self, HANDSHAKE_TIMEOUT, next_message, unexpected};
use crate::source::Source;
use crate::{net, progress, usage};

/// How often (in bytes moved) the sender checks whether the receiver has given up.
const WATCH_EVERY: u64 = 64 << 20;

/// Sends `cfg.file` to `cfg.dest` and returns both ends' report.
pub fn run(cfg: &SendConfig) -> anyhow::Result<Report> {
    let source = Source::open(&cfg.file)?;
    let mut socket = net::connect(&cfg.dest)?;
    greet(&mut socket).with_context(|| format!("greeting {}", cfg.dest))?;
    let entry = entry_for(&source);
    let offset = offer(&mut socket, &entry, &source)?;
    let start = usage::Snapshot::now();
    let moved = push(&mut socket, cfg, &source, offset)
        .with_context(|| format!("sending {} to {}", source.display, cfg.dest))?;
    let stats = start.side_stats(&moved);
    protocol::write_message(&mut socket, &Message::FileEnd(FileEnd { xxh3: moved.xxh3 }))
        .context("sending the checksum")?;
    protocol::write_message(&mut socket, &Message::Finish(stats.clone()))
        .context("sending statistics")?;
    let summary = match next_message(&mut socket, "the receiver's summary")? {
        Message::Summary(s) if s.verdicts.len() == 1 => s,
        other => return Err(unexpected("SUMMARY with one verdict", &other)),
    };
    let verdict = &summary.verdicts[0];
    let file = FileReport {
        name: String::from_utf8_lossy(&entry.name).into_owned(),
        bytes: moved.bytes,
        path: moved.path,
        checksum_ok: verdict.status == protocol::VerdictStatus::Ok,
        saved_as: None,
    };
    Ok(Report { role: Role::Send, files: vec![file], send: stats, recv: summary.stats })
}

/// Exchanges greetings; the receiver must answer within the handshake timeout.
fn greet(socket: &mut TcpStream) -> anyhow::Result<()> {
    session::set_timeout(socket, Some(HANDSHAKE_TIMEOUT))?;
    protocol::write_hello(socket, Hello::ours()).context("sending the greeting")?;
    let hello = protocol::read_hello(socket)
        .map_err(|e| session::read_failure(e, "the receiver's greeting"))?;
    if hello.version != protocol::VERSION {
        return Err(protocol::ProtocolError::UnsupportedVersion(hello.version).into());
    }
    Ok(())
}

fn entry_for(source: &Source) -> Entry {
    Entry {
        kind: EntryKind::File,
        name: source.name.clone(),
        size: source.size,
        mode: source.mode,
        mtime_sec: source.mtime_sec,
        mtime_nsec: source.mtime_nsec,
    }
}

/// Offers the entry and returns the offset the receiver wants the bytes from.
fn offer(socket: &mut TcpStream, entry: &Entry, source: &Source) -> anyhow::Result<u64> {
    let offer = Message::Offer(Offer { entries: vec![entry.clone()] });
    protocol::write_message(socket, &offer).context("sending the offer")?;
    let plan = match next_message(socket, "the receiver's plan")? {
        Message::Plan(plan) if plan.answers.len() == 1 => plan,
        other => return Err(unexpected("PLAN with one answer", &other)),
    };
    session::set_timeout(socket, None)?;
    match plan.answers.into_iter().next() {
        Some(Answer::Send { offset }) if offset <= entry.size.unwrap_or(0) => Ok(offset),
        Some(Answer::Send { offset }) => Err(protocol::ProtocolError::Malformed(format!(
            "receiver asked for bytes from offset {offset}, past the end of {}",
            source.display
        ))
        .into()),
        Some(Answer::Refuse { reason, .. }) => {
            Err(SessionError::Refused { name: source.display.clone(), reason }.into())
        }
        Some(Answer::Skip) | None => {
            Err(protocol::ProtocolError::Malformed("receiver skipped the only file offered".into())
                .into())
        }
    }
}

/// Moves the bytes, watching for the receiver giving up; if it did, its reason is the error.
fn push(
    socket: &mut TcpStream,
    cfg: &SendConfig,
    source: &Source,
    offset: u64,
) -> anyhow::Result<Moved> {
    let bar = progress::bar(cfg.output.progress, source.size, &source.display);
    let mut next_watch = WATCH_EVERY;
    let watched: &TcpStream = socket;
    let mut tick = |moved: u64| -> io::Result<()> {
        bar.set_position(offset + moved);
        if moved >= next_watch {
            next_watch = moved + WATCH_EVERY;
            if session::peer_has_spoken(watched) {
                return Err(io::Error::other("the receiver stopped the transfer"));
            }
        }
        Ok(())
    };
    let out = Outgoing { source, socket: watched, offset, buffer_size: cfg.buffer_size };
    let result = copy::send(&out, cfg.method, &mut tick);
    bar.finish_and_clear();
    result.map_err(|e| peer_reason(socket).unwrap_or(e))
}

/// After a failed send, the receiver's ERROR frame if it sent one (it explains the failure
/// better than "broken pipe").
fn peer_reason(socket: &mut TcpStream) -> Option<anyhow::Error> {
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    loop {
        match protocol::read_message(socket) {
            Ok(Message::Error { code, message }) => {
                return Some(SessionError::Peer { code, message }.into());
            }
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}
