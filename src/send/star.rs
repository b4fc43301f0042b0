//! One `zcp send` to several receivers at once (`--to`, a star): a session per receiver, each
//! on a thread of its own with its own handshake, plan, resume offsets and refusals, sharing the
//! whole-file checksums (`digests`) so that each file is read and hashed once while every
//! session's `sendfile` reads the same cached pages. A receiver that fails does not stop the
//! others. The design and its costs: `crate::manual::star`.

use std::thread;

use crate::config::{Link, SendConfig};
use crate::copy::Moved;
use crate::error::{ExitCode, exit_code};
use crate::protocol::EntryKind;
use crate::report::events;
use crate::report::star::{LegReport, StarReport};
use crate::send::digests::Digests;
use crate::send::manifest::Manifest;
use crate::send::{Leg, connected};
use crate::sys::{rusage, signals};

/// Sends `manifest` to every one of `receivers` at once and returns one result per receiver.
/// Fails as a whole only before any session starts (a source that can be read once).
pub fn run(
    cfg: &SendConfig,
    receivers: &[String],
    manifest: &Manifest,
) -> anyhow::Result<StarReport> {
    refuse_streams(manifest)?;
    // Held for the whole star, so that one session ending does not give the signals back
    // their default action while the others still run (see `signals::restore`).
    signals::install()?;
    let digests = Digests::new(manifest.items.len());
    let start = rusage::Snapshot::now();
    let legs = thread::scope(|scope| {
        let started: Vec<_> = receivers
            .iter()
            .map(|receiver| {
                let digests = &digests;
                let spawned = thread::Builder::new()
                    .name("zcp-leg".into())
                    .spawn_scoped(scope, move || leg(cfg, manifest, digests, receiver));
                (receiver, spawned)
            })
            .collect();
        started.into_iter().map(|(receiver, spawned)| joined(receiver, spawned)).collect()
    });
    signals::restore();
    let process = start.side_stats(&Moved::default());
    Ok(StarReport { legs, hashed: digests.hashed(), process })
}

/// The session with one `receiver`, run to its end, as a result.
fn leg(cfg: &SendConfig, manifest: &Manifest, digests: &Digests, receiver: &str) -> LegReport {
    let mut cfg = cfg.clone();
    cfg.net.link = Link::Connect(receiver.to_string());
    // Several bars on one terminal would overwrite each other: the summary says it all.
    cfg.print.progress = false;
    let leg = Leg { digests, receiver };
    let result = connected(&cfg, manifest, |_| {}, Some(&leg));
    let (report, error) = match result {
        Ok(report) => {
            let failure = report.failure().map(anyhow::Error::from);
            (Some(report), failure)
        }
        Err(e) => (None, Some(e)),
    };
    let code = error.as_ref().map_or(ExitCode::Success, exit_code);
    let error = error.map(|e| format!("{e:#}"));
    if let Some(message) = &error {
        events::receiver_failure(receiver, message, code.code());
    }
    LegReport { receiver: receiver.to_string(), code, report, error }
}

/// The result of a session's thread: its report, or why the thread did not run or ended
/// without one.
fn joined(
    receiver: &str,
    spawned: std::io::Result<thread::ScopedJoinHandle<'_, LegReport>>,
) -> LegReport {
    let error = match spawned.map(|handle| handle.join()) {
        Ok(Ok(report)) => return report,
        Ok(Err(_)) => "the session's thread panicked".to_string(),
        Err(e) => format!("starting the session's thread: {e}"),
    };
    events::receiver_failure(receiver, &error, ExitCode::Failure.code());
    LegReport {
        receiver: receiver.to_string(),
        code: ExitCode::Failure,
        report: None,
        error: Some(error),
    }
}

/// Refuses a source of unknown length (a FIFO, a procfs file): each session would read its own
/// share of one stream.
fn refuse_streams(manifest: &Manifest) -> anyhow::Result<()> {
    let stream =
        manifest.items.iter().find(|i| i.entry.kind == EntryKind::File && i.entry.size.is_none());
    match stream {
        Some(item) => Err(crate::error::SessionError::Usage(format!(
            "--to sends to several receivers, and {} is a stream that can be read only once",
            crate::report::shown(&String::from_utf8_lossy(&item.entry.name))
        ))
        .into()),
        None => Ok(()),
    }
}
