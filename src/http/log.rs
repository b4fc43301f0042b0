//! One line per request: on stderr for people (`GET /big.iso 200 to 127.0.0.1:5432: 1 GiB by
//! sendfile (16 calls) in 0.62 s`, with each fallback's reason), and with `--json` one object
//! per request on stdout. Names that came from the client are shown escaped.

use std::net::SocketAddr;
use std::time::Duration;

use humansize::{BINARY, format_size};
use serde::Serialize;

use crate::config::Output;
use crate::copy::Moved;
use crate::report::{self, shown};
use crate::terminal;

/// What one request did.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// `send` (`zcp send --http`) or `recv` (`zcp recv --http`).
    pub role: &'static str,
    pub peer: String,
    pub method: String,
    /// The request target as sent.
    pub target: String,
    pub status: u16,
    /// Body bytes moved (a file's, or part of it).
    pub bytes: u64,
    /// `FIRST-LAST` of a `206` answer.
    pub range: Option<String>,
    /// The data path that moved the body; `null` when none moved.
    pub path: Option<&'static str>,
    pub syscalls: u64,
    pub elapsed_s: f64,
    /// Where an upload was saved.
    pub saved_as: Option<String>,
    /// Why the request was refused or failed, or a note.
    pub reason: Option<String>,
    pub fallbacks: Vec<Fallback>,
}

/// A path that gave way, as in the session reports.
#[derive(Debug, Serialize)]
pub struct Fallback {
    pub from: &'static str,
    pub errno_name: Option<String>,
    pub reason: String,
}

impl Entry {
    /// An entry for a request of `method` on `target` from `peer` answered `status`.
    pub fn new(role: &'static str, peer: SocketAddr, method: &str, target: &str) -> Entry {
        Entry {
            role,
            peer: peer.to_string(),
            method: method.to_string(),
            target: target.to_string(),
            status: 0,
            bytes: 0,
            range: None,
            path: None,
            syscalls: 0,
            elapsed_s: 0.0,
            saved_as: None,
            reason: None,
            fallbacks: Vec::new(),
        }
    }

    /// Records what the data path moved, and how long the request took.
    pub fn moved(&mut self, moved: &Moved, elapsed: Duration) {
        self.bytes = moved.bytes;
        self.path = (moved.files > 0).then(|| moved.data_path.as_str());
        self.syscalls = moved.calls;
        self.elapsed_s = elapsed.as_secs_f64();
        self.fallbacks = moved
            .fallbacks
            .iter()
            .map(|f| Fallback {
                from: f.from.as_str(),
                errno_name: f.errno.map(crate::error::errno_name),
                reason: f.reason.clone(),
            })
            .collect();
    }

    /// The line for people.
    pub fn human(&self) -> String {
        let toward = if self.role == "send" { "to" } else { "from" };
        let mut line =
            format!("{} {} {} {toward} {}", self.method, self.target, self.status, self.peer);
        if let Some(path) = self.path {
            let size = format_size(self.bytes, BINARY);
            let calls = crate::units::counted(self.syscalls, "call");
            line.push_str(&format!(": {size} by {path} ({calls}) in {:.2} s", self.elapsed_s));
        }
        if let Some(range) = &self.range {
            line.push_str(&format!(", bytes {range}"));
        }
        if let Some(saved) = &self.saved_as {
            line.push_str(&format!(", saved as {saved}"));
        }
        if let Some(reason) = &self.reason {
            line.push_str(&format!(": {reason}"));
        }
        for f in &self.fallbacks {
            let errno = f.errno_name.as_deref().map_or_else(String::new, |e| format!(" ({e})"));
            line.push_str(&format!("\n  {} not used: {}{errno}", f.from, f.reason));
        }
        shown(&line).into_owned()
    }

    /// Prints the entry as `output` asks.
    pub fn print(&self, output: Output) {
        if output.summary {
            terminal::lines(&self.human());
        }
        if output.json
            && let Ok(line) = serde_json::to_string(self)
        {
            let _ = report::line_to_stdout(&line);
        }
    }
}

/// A line about a connection that made no request worth an entry.
pub fn note(text: &str) {
    terminal::line(format!("zcp: {text}"));
}
