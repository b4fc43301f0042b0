//! What a session reports, and all of its printing: the human summary for stderr (`human`) and
//! the JSON object for stdout (`json`), the `--events` stream (`events`), the command a listening end prints for its peer (`advice`). Sessions return a `Report`; this module only formats it.

pub mod advice;
pub mod events;
mod human;
mod json;
pub mod star;

pub use crate::terminal::shown;
pub use human::cpu_per_gib;
pub use json::{json_text, line_to_stdout, to_stdout};

use std::time::Duration;

use serde::Serialize;

use crate::datapath::{DataPath, Encryption};
use crate::error::SessionError;
use crate::protocol::SideStats;

use crate::role::Role;

/// What became of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its bytes crossed and matched.
    Sent,
    /// A directory, created (or already there).
    Created,
    /// The receiver already had it.
    Skipped,
    /// The receiver would not write it.
    Refused,
    /// Its bytes crossed but did not match: nothing was put in place.
    ChecksumMismatch,
}

/// The outcome of one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// Its relative name, as offered.
    pub name: String,
    /// Whether it is a directory.
    pub dir: bool,
    /// What became of it.
    pub status: Status,
    /// Bytes of this file that crossed the wire in this session.
    pub bytes: u64,
    /// Bytes the receiver already held and kept (a resumed transfer).
    pub resumed_from: u64,
    /// Bytes of holes that did not cross (a sparse file), apart from `bytes`.
    pub holes: u64,
    /// The data path that moved it, when bytes moved.
    pub data_path: Option<DataPath>,
    /// Where the receiver put it (receiver's reports only).
    pub saved_as: Option<String>,
    /// Why it was refused, or a note (a resume that had to start over).
    pub reason: Option<String>,
}

impl FileReport {
    /// A report for an entry in the given state, with no bytes moved yet.
    pub fn new(name: String, dir: bool, status: Status) -> FileReport {
        FileReport {
            name,
            dir,
            status,
            bytes: 0,
            resumed_from: 0,
            holes: 0,
            data_path: None,
            saved_as: None,
            reason: None,
        }
    }
}

/// Everything one end knows at the end of a session, its own statistics and the peer's.
#[derive(Debug, Clone)]
pub struct Report {
    /// Which end wrote the report.
    pub role: Role,
    /// One report per offered entry, in offer order.
    pub files: Vec<FileReport>,
    /// The sender's measurements.
    pub send: SideStats,
    /// The receiver's measurements.
    pub recv: SideStats,
    /// The `--output` directory this session created (it did not exist), receiver only.
    pub created: Option<String>,
    /// How this end's bytes crossed the wire (`--encrypt`).
    pub encryption: Encryption,
    /// Entries the sender's filters left out of the offer (sender only).
    pub excluded: u64,
    /// Entries `--mirror` removed because the offer does not hold them (receiver only).
    pub removed: Vec<String>,
}

impl Report {
    /// Bytes moved in this session.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).fold(0, u64::saturating_add)
    }

    /// Bytes of holes that did not cross (sparse files).
    pub fn hole_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.holes).fold(0, u64::saturating_add)
    }

    /// Bytes the receiver already held and kept (offsets come from the receiver: saturating).
    pub fn resumed_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.resumed_from).fold(0, u64::saturating_add)
    }

    /// This end's wall-clock time for the data phase.
    pub fn elapsed(&self) -> Duration {
        let own = match self.role {
            Role::Sender => &self.send,
            Role::Receiver => &self.recv,
        };
        Duration::from_micros(own.elapsed_us)
    }

    /// Bytes per second over this end's data phase.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed().as_secs_f64();
        if secs > 0.0 { self.bytes() as f64 / secs } else { 0.0 }
    }

    /// Whether every file that crossed matched its checksum.
    pub fn checksum_ok(&self) -> bool {
        self.files.iter().all(|f| f.status != Status::ChecksumMismatch)
    }

    fn count(&self, status: Status) -> usize {
        self.files.iter().filter(|f| f.status == status).count()
    }

    /// The error a session ends with although it ran to the end: a file whose checksum
    /// failed, else a refused entry.
    pub fn failure(&self) -> Option<SessionError> {
        if let Some(f) = self.files.iter().find(|f| f.status == Status::ChecksumMismatch) {
            return Some(SessionError::ChecksumMismatch { name: f.name.clone() });
        }
        let refused: Vec<&FileReport> =
            self.files.iter().filter(|f| f.status == Status::Refused).collect();
        let first = refused.first()?;
        let reason = first.reason.clone().unwrap_or_default();
        let name = if refused.len() > 1 {
            format!("{} entries, the first {}", refused.len(), first.name)
        } else {
            first.name.clone()
        };
        Some(SessionError::Refused { name, reason })
    }
}

/// The report of a raw-mode transfer: one end's measurements, nothing from the peer.
#[derive(Debug, Clone)]
pub struct RawReport {
    /// Which end wrote the report.
    pub role: Role,
    /// The name of what crossed (the path sent, or `--output`).
    pub name: String,
    /// This end's measurements.
    pub stats: SideStats,
    /// Where the receiver wrote it (`None` on the sender).
    pub saved_as: Option<String>,
}

impl RawReport {
    fn elapsed_s(&self) -> f64 {
        self.stats.elapsed_us as f64 / 1e6
    }

    fn throughput(&self) -> f64 {
        match self.elapsed_s() {
            s if s > 0.0 => self.stats.bytes as f64 / s,
            _ => 0.0,
        }
    }
}
