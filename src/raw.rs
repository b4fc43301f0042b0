//! Raw mode (`--raw`): plain bytes over TCP, no protocol, so zcp can talk to `nc` and `socat`.
//! The same data paths and the same honest path report, but no checksum (nothing travels to
//! compare it with) and no authentication; reports say so.

use std::net::{Shutdown, SocketAddr};

use anyhow::Context;

use crate::config::{RecvConfig, SendConfig};
use crate::copy::pace::Pacer;
use crate::copy::source::Source;
use crate::copy::{self, Framing, Incoming, Outgoing};
use crate::disk::{Decision, Destination};
use crate::error::SessionError;
use crate::link::net;
use crate::progress::Ui;
use crate::protocol::{Entry, EntryKind};
use crate::report::RawReport;
use crate::role::Role;
use crate::sys::rusage;

/// Sends the one path as plain bytes, then closes the write side (the peer's end of file).
pub fn send(cfg: &SendConfig, listening: impl FnOnce(SocketAddr)) -> anyhow::Result<RawReport> {
    let path = &cfg.paths[0];
    let mut source = if path.as_os_str() == "-" {
        Source::stdin(cfg.stdin_name.as_deref().unwrap_or("stdin"))?
    } else {
        Source::open(path)?
    };
    source.name = source.display.clone().into_bytes();
    let socket = net::establish(&cfg.net, listening, |socket, _| Ok(socket))?;
    socket.set_write_timeout(cfg.net.idle_timeout).context("setting the socket write timeout")?;
    let start = rusage::Snapshot::now();
    let mut pacer = Pacer::new(cfg.limit_rate);
    let max_call = pacer.max_call();
    let mut tick = |n: u64| -> anyhow::Result<()> {
        pacer.pace(n);
        Ok(())
    };
    let out = Outgoing {
        source: &source,
        socket: (&socket).into(),
        offset: 0,
        buffer_size: cfg.buffer_size,
        max_call,
        framing: Framing::of(source.size, 0, true),
        // A raw report shows no checksum: take none.
        checksum: false,
    };
    let moved = copy::send(&out, cfg.method, &mut tick)
        .with_context(|| format!("sending {}", source.display))?;
    socket.shutdown(Shutdown::Write).context("closing the connection")?;
    Ok(RawReport {
        role: Role::Sender,
        name: source.display.clone(),
        stats: start.side_stats(&moved),
        saved_as: None,
    })
}

/// Receives plain bytes until the peer closes, into `--output FILE` (through a part file) or
/// standard output.
pub fn recv(cfg: &RecvConfig, listening: impl FnOnce(SocketAddr)) -> anyhow::Result<RawReport> {
    let dest = Destination::resolve(&cfg.output)?;
    if !dest.single() {
        return Err(SessionError::Usage(
            "--raw needs --output FILE or --output - (no file name travels in raw mode)".into(),
        )
        .into());
    }
    let name =
        cfg.output.file_name().map_or_else(|| "-".into(), |n| n.to_string_lossy().into_owned());
    let entry = Entry {
        kind: EntryKind::File,
        name: name.clone().into_bytes(),
        size: None,
        mode: 0o644,
        mtime_sec: 0,
        mtime_nsec: 0,
    };
    let decision = dest
        .decide(&entry, cfg.policy, &mut crate::disk::Listing::default())
        .map_err(|r| SessionError::Refused { name: name.clone(), reason: r.reason })?;
    let listening = |addr| {
        listening(addr);
        // As `--no-auth` says: a raw receiver takes the bytes of whoever connects first.
        Ui::hidden()
            .warn("raw mode (--raw) has no authentication: anyone who can connect may write here");
    };
    let socket = net::establish(&cfg.net, listening, |socket, _| Ok(socket))?;
    socket.set_read_timeout(cfg.net.idle_timeout).context("setting the socket read timeout")?;
    let start = rusage::Snapshot::now();
    let max = cfg.max_size;
    let mut tick = |n: u64| -> anyhow::Result<()> {
        match max {
            Some(max) if n > max => Err(SessionError::Refused {
                name: name.clone(),
                reason: format!("the stream passed --max-size ({max} bytes)"),
            }
            .into()),
            _ => Ok(()),
        }
    };
    let (moved, saved_as) = match decision {
        Decision::Receive { target, lock, .. } => {
            // The same part file, lock and commit as a protocol session's file; raw mode does
            // not resume, so it takes the plan's lock (if any) to write from the start.
            let part = target.part().open_planned(&name, 0, lock.take())?;
            let inc = Incoming {
                socket: (&socket).into(),
                file: &part,
                framing: Framing::UntilClose,
                offset: 0,
                positioned: true,
                buffer_size: cfg.buffer_size,
                checksum: false,
            };
            let moved = copy::recv(&inc, cfg.method, &mut tick).with_context(|| {
                format!(
                    "writing {} (partial data kept in {})",
                    target.shown().display(),
                    target.part().shown().display()
                )
            })?;
            let entry = Entry { mode: 0o644, ..entry };
            target.part().commit(&part, &entry, cfg.policy.force)?;
            (moved, Some(target.shown().display().to_string()))
        }
        _ => {
            let out = crate::disk::stdout()?;
            let inc = Incoming {
                socket: (&socket).into(),
                file: &out,
                framing: Framing::UntilClose,
                offset: 0,
                positioned: false,
                buffer_size: cfg.buffer_size,
                checksum: false,
            };
            (copy::recv(&inc, cfg.method, &mut tick).context("writing to standard output")?, None)
        }
    };
    Ok(RawReport { role: Role::Receiver, name, stats: start.side_stats(&moved), saved_as })
}
