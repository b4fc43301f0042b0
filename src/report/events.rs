//! `--events`: the event vocabulary (what happened, as data) and the NDJSON stream it is
//! written to, one object per line, with a schema version (documented in the README beside the
//! `--json` report). Sessions say what happened; this module alone formats and writes it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{FileReport, Report, Status};
use crate::datapath::DataPath;
use crate::error::errno_name;
use crate::role::Role;

/// The version of the event schema, `"v"` in every line. Adding an event or a key keeps it;
/// renaming or removing one, or changing a meaning, bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// Where `--events` go, and how often progress is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsTo {
    /// A descriptor the caller opened (`--events-fd`), or `None` for standard output.
    pub fd: Option<i32>,
    /// The steady interval between `progress` events while bytes move.
    pub interval: Duration,
}

/// One thing that happened in a session. Its fields are the event's JSON keys, each described
/// with its event in `crate::manual::reports`, the schema users read.
#[allow(missing_docs)]
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The plan is agreed: `entries` offered, `files` of them to move, `bytes` in all (null
    /// when a stream's length is unknown).
    SessionStart { role: Role, entries: usize, files: usize, bytes: Option<u64> },
    /// A file's bytes start to move, from its beginning.
    FileStart { index: usize, name: &'a str, size: Option<u64> },
    /// A file's bytes start to move from `offset`: the receiver kept that much.
    FileResume { index: usize, name: &'a str, size: Option<u64>, offset: u64 },
    /// The receiver already has this file (`--skip-existing`).
    FileSkip { index: usize, name: &'a str },
    /// The receiver will not write this entry.
    FileRefuse { index: usize, name: &'a str, reason: &'a str },
    /// A file's bytes crossed; `checksum` is `ok` or `mismatch` (then it was not saved).
    FileEnd {
        index: usize,
        name: &'a str,
        bytes: u64,
        resumed_from: u64,
        hole_bytes: u64,
        path: Option<&'static str>,
        checksum: &'static str,
        saved_as: Option<&'a str>,
    },
    /// `--mirror` removed this entry, which the offer does not hold (a directory ends in `/`).
    FileRemove { name: &'a str },
    /// Bytes moved so far this session, of `total`, and files begun, of `files`.
    Progress { bytes: u64, total: Option<u64>, files_started: u64, files: u64, bytes_per_s: f64 },
    /// A data path of one side gave way to the next, and why.
    Fallback {
        side: Role,
        from: &'static str,
        errno: Option<i32>,
        errno_name: Option<String>,
        reason: &'a str,
    },
    /// The end: the same object `--json` prints.
    Summary { report: serde_json::Value },
    /// The session (or the command) failed: the message and the exit code that follows.
    Error { message: &'a str, exit_code: i32 },
}

/// One line of the stream: the version, the session's number in this process, seconds since
/// the session started, and the event's own keys.
#[derive(Serialize)]
struct Line<'a> {
    v: u32,
    session: u64,
    /// The receiver a session of a star sends to (`--to`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    receiver: Option<&'a str>,
    t: f64,
    #[serde(flatten)]
    event: &'a Event<'a>,
}

/// The process's one event stream, shared by its sessions (one line is written whole).
enum Stream {
    Stdout,
    Fd(File),
}

static STREAM: OnceLock<Option<Mutex<Stream>>> = OnceLock::new();
static SESSIONS: AtomicU64 = AtomicU64::new(0);
static OPENED: OnceLock<Instant> = OnceLock::new();
/// Set when the reader went away: nothing more is written, and that is not an error.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Opens the stream `to` names, once per process: checks a `--events-fd` descriptor is open
/// for writing, so a wrong one is an error before anything runs.
pub fn open(to: EventsTo) -> anyhow::Result<()> {
    let stream = match to.fd {
        None => Stream::Stdout,
        Some(fd) => Stream::Fd(reopen(fd)?),
    };
    let _ = STREAM.set(Some(Mutex::new(stream)));
    let _ = OPENED.set(Instant::now());
    Ok(())
}

/// The caller's descriptor `fd`, reopened for appending through /dev/fd: the descriptor stays
/// the caller's, and no unsafe is needed. An empty root (a chroot, a scratch container) has no
/// /dev, which is said as such rather than as a descriptor that is not open.
fn reopen(fd: i32) -> Result<File, crate::error::SessionError> {
    let usage = |why: String| crate::error::SessionError::Usage(format!("--events-fd {fd}: {why}"));
    OpenOptions::new().append(true).open(format!("/dev/fd/{fd}")).map_err(|e| {
        if std::path::Path::new("/dev/fd").exists() {
            usage(format!("not open for writing ({e})"))
        } else {
            usage("there is no /dev/fd here to reopen it through: use --events (stdout)".into())
        }
    })
}

/// An `error` event for a failure outside any session's own (`session` 0: connecting, a
/// session's error, a refused receiver), when the stream is open.
pub fn failure(message: &str, exit_code: i32) {
    let Some(start) = OPENED.get() else { return };
    write_event((0, None), start.elapsed(), &Event::Error { message, exit_code });
}

/// An `error` event for the session of a star sending to `receiver` that failed (`session` 0
/// when it failed before its plan), when the stream is open.
pub fn receiver_failure(receiver: &str, message: &str, exit_code: i32) {
    let Some(start) = OPENED.get() else { return };
    write_event((0, Some(receiver)), start.elapsed(), &Event::Error { message, exit_code });
}

/// One session's events: numbered, timed from its start, progress rate-limited to the
/// interval. Does nothing when `--events` was not given.
#[derive(Clone)]
pub struct Events {
    on: Option<Arc<Session>>,
}

struct Session {
    number: u64,
    receiver: Option<String>,
    start: Instant,
    interval: Duration,
    last_progress: Mutex<Option<Instant>>,
}

impl Events {
    /// The events of a new session, when `to` asks for them.
    pub fn new(to: Option<EventsTo>) -> Events {
        Events::tagged(to, None)
    }

    /// The events of a new session of a star, each tagged with its `receiver`.
    pub fn for_receiver(to: Option<EventsTo>, receiver: &str) -> Events {
        Events::tagged(to, Some(receiver.to_string()))
    }

    fn tagged(to: Option<EventsTo>, receiver: Option<String>) -> Events {
        let on = to.map(|to| {
            Arc::new(Session {
                number: SESSIONS.fetch_add(1, Ordering::Relaxed) + 1,
                receiver,
                start: Instant::now(),
                interval: to.interval,
                last_progress: Mutex::new(None),
            })
        });
        Events { on }
    }

    /// No events.
    pub fn off() -> Events {
        Events { on: None }
    }

    /// Whether events are written at all (`--events` or `--events-fd`).
    pub fn is_on(&self) -> bool {
        self.on.is_some()
    }

    /// Writes one event.
    pub fn emit(&self, event: &Event<'_>) {
        let Some(session) = &self.on else { return };
        let tag = (session.number, session.receiver.as_deref());
        write_event(tag, session.start.elapsed(), event);
    }

    /// A `progress` event, when `interval` has passed since the last one (or `last` is set:
    /// the session's final count).
    pub fn progress(&self, bytes: u64, total: Option<u64>, files: (u64, u64), last: bool) {
        let Some(session) = &self.on else { return };
        let now = Instant::now();
        {
            let Ok(mut previous) = session.last_progress.lock() else { return };
            let due = previous.is_none_or(|p| now.duration_since(p) >= session.interval);
            if !due && !last {
                return;
            }
            *previous = Some(now);
        }
        let secs = now.duration_since(session.start).as_secs_f64();
        let bytes_per_s = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
        let (files_started, files) = files;
        self.emit(&Event::Progress { bytes, total, files_started, files, bytes_per_s });
    }

    /// The end of each file the report lists as moved (a sender learns the verdicts only
    /// now), when not said already.
    pub fn file_ends(&self, report: &Report) {
        for (index, file) in report.files.iter().enumerate() {
            self.file_end(index, file);
        }
    }

    /// The end of one file that moved (nothing for other entries): `file_end`, or
    /// `file_refuse` for one checked but refused when it was to be put in place (its name was
    /// taken meanwhile).
    pub fn file_end(&self, index: usize, file: &FileReport) {
        let checksum = match file.status {
            Status::Sent => "ok",
            Status::ChecksumMismatch => "mismatch",
            Status::Refused if file.data_path.is_some() => return self.planned(index, file),
            _ => return,
        };
        self.emit(&Event::FileEnd {
            index,
            name: &file.name,
            bytes: file.bytes,
            resumed_from: file.resumed_from,
            hole_bytes: file.holes,
            path: file.data_path.map(DataPath::as_str),
            checksum,
            saved_as: file.saved_as.as_deref(),
        });
    }

    /// The skip or refusal of an entry the plan will not move (nothing for others).
    pub fn planned(&self, index: usize, file: &FileReport) {
        match file.status {
            Status::Skipped => self.emit(&Event::FileSkip { index, name: &file.name }),
            Status::Refused => {
                let reason = file.reason.as_deref().unwrap_or("");
                self.emit(&Event::FileRefuse { index, name: &file.name, reason });
            }
            _ => {}
        }
    }

    /// A file begins: `file_start`, or `file_resume` from a kept prefix.
    pub fn file_begins(&self, index: usize, name: &str, size: Option<u64>, offset: u64) {
        self.emit(&match offset {
            0 => Event::FileStart { index, name, size },
            offset => Event::FileResume { index, name, size, offset },
        });
    }

    /// The end of a session: each side's fallbacks, then the summary.
    pub fn finished(&self, report: &Report) {
        if !self.is_on() {
            return;
        }
        for (side, stats) in [(Role::Sender, &report.send), (Role::Receiver, &report.recv)] {
            for f in &stats.fallbacks {
                self.emit(&Event::Fallback {
                    side,
                    from: f.from.as_str(),
                    errno: f.errno,
                    errno_name: f.errno.map(errno_name),
                    reason: &f.reason,
                });
            }
        }
        self.emit(&Event::Summary { report: report.json_value() });
    }
}

/// Formats one line of the stream and writes it.
fn write_event((session, receiver): (u64, Option<&str>), t: Duration, event: &Event<'_>) {
    let line = Line { v: SCHEMA_VERSION, session, receiver, t: t.as_secs_f64(), event };
    if let Ok(mut text) = serde_json::to_string(&line) {
        text.push('\n');
        write_line(text.as_bytes());
    }
}

fn write_line(bytes: &[u8]) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let Some(Some(stream)) = STREAM.get() else { return };
    let Ok(mut stream) = stream.lock() else { return };
    let written = match &mut *stream {
        Stream::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(bytes).and_then(|_| out.flush())
        }
        Stream::Fd(file) => file.write_all(bytes),
    };
    // A reader that went away (`| head`) ends the stream, not the transfer.
    if written.is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}
