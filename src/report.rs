//! What a session reports, and all of its printing: the human summary for stderr and the JSON
//! object for stdout. Sessions return a `Report`; this module only formats it.

use std::time::Duration;

use humansize::{BINARY, format_size};
use serde::Serialize;

use crate::copy::DataPath;
use crate::error::{SessionError, errno_name};
use crate::protocol::SideStats;

const GIB: f64 = (1u64 << 30) as f64;

/// Which end wrote the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Send,
    Recv,
}

/// The outcome of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    pub name: String,
    /// Bytes of this file that crossed the wire in this session.
    pub bytes: u64,
    pub path: DataPath,
    pub checksum_ok: bool,
    /// Where the receiver put it (receiver's reports only).
    pub saved_as: Option<String>,
}

/// Everything one end knows at the end of a session, its own statistics and the peer's.
#[derive(Debug, Clone)]
pub struct Report {
    pub role: Role,
    pub files: Vec<FileReport>,
    pub send: SideStats,
    pub recv: SideStats,
}

impl Report {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// This end's wall-clock time for the data phase.
    pub fn elapsed(&self) -> Duration {
        let own = match self.role {
            Role::Send => &self.send,
            Role::Recv => &self.recv,
        };
        Duration::from_micros(own.elapsed_us)
    }

    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed().as_secs_f64();
        if secs > 0.0 { self.bytes() as f64 / secs } else { 0.0 }
    }

    pub fn checksum_ok(&self) -> bool {
        self.files.iter().all(|f| f.checksum_ok)
    }

    /// The error a session ends with although it ran to the end: a file whose checksum failed.
    pub fn failure(&self) -> Option<SessionError> {
        self.files
            .iter()
            .find(|f| !f.checksum_ok)
            .map(|f| SessionError::ChecksumMismatch { name: f.name.clone() })
    }

    /// The summary for stderr: one line, plus one line per fallback taken.
    pub fn human(&self) -> String {
        let names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
        let what = match self.role {
            Role::Send => "sent",
            Role::Recv => "received",
        };
        let mut line = format!(
            "{what} {} {} in {:.2} s, {}/s · send: {} · recv: {} · cpu {} · xxh3 {}",
            names.join(", "),
            format_size(self.bytes(), BINARY),
            self.elapsed().as_secs_f64(),
            format_size(self.throughput() as u64, BINARY),
            path_summary(&self.send),
            path_summary(&self.recv),
            cpu_summary(self.bytes(), &self.send, &self.recv),
            if self.checksum_ok() { "ok" } else { "MISMATCH" },
        );
        for f in self.files.iter().filter_map(|f| f.saved_as.as_ref()) {
            line.push_str(&format!("\n  saved as {f}"));
        }
        for (side, stats) in [("send", &self.send), ("recv", &self.recv)] {
            for fb in &stats.fallbacks {
                let errno = fb.errno.map(|e| format!(" ({})", errno_name(e))).unwrap_or_default();
                line.push_str(&format!("\n  {side}: {} not used: {}{errno}", fb.from, fb.reason));
            }
        }
        line
    }

    /// The JSON object for stdout. Its keys are documented in the README and are a contract.
    pub fn json(&self) -> String {
        let view = JsonReport {
            role: self.role,
            files: self
                .files
                .iter()
                .map(|f| JsonFile {
                    name: &f.name,
                    bytes: f.bytes,
                    path: f.path.as_str(),
                    checksum_ok: f.checksum_ok,
                    saved_as: f.saved_as.as_deref(),
                })
                .collect(),
            bytes: self.bytes(),
            elapsed_s: self.elapsed().as_secs_f64(),
            throughput_bytes_per_s: self.throughput(),
            checksum: JsonChecksum { algorithm: "xxh3-128", ok: self.checksum_ok() },
            send: JsonSide::of(&self.send),
            recv: JsonSide::of(&self.recv),
        };
        serde_json::to_string_pretty(&view).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn path_summary(s: &SideStats) -> String {
    let calls = if s.calls == 1 { "call" } else { "calls" };
    format!("{} ({} {calls})", s.path, s.calls)
}

fn cpu_summary(bytes: u64, send: &SideStats, recv: &SideStats) -> String {
    match (cpu_per_gib(bytes, send), cpu_per_gib(bytes, recv)) {
        (Some(s), Some(r)) => format!("{s:.2}+{r:.2} s/GiB (send+recv)"),
        _ => "n/a for 0 bytes".into(),
    }
}

/// CPU seconds (user + system) per GiB moved, `None` when nothing moved.
pub fn cpu_per_gib(bytes: u64, s: &SideStats) -> Option<f64> {
    (bytes > 0).then(|| (s.user_us + s.sys_us) as f64 / 1e6 / (bytes as f64 / GIB))
}

#[derive(Serialize)]
struct JsonReport<'a> {
    role: Role,
    files: Vec<JsonFile<'a>>,
    bytes: u64,
    elapsed_s: f64,
    throughput_bytes_per_s: f64,
    checksum: JsonChecksum,
    send: JsonSide<'a>,
    recv: JsonSide<'a>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    name: &'a str,
    bytes: u64,
    path: &'static str,
    checksum_ok: bool,
    saved_as: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonChecksum {
    algorithm: &'static str,
    ok: bool,
}

#[derive(Serialize)]
struct JsonSide<'a> {
    path: &'static str,
    bytes: u64,
    syscalls: u64,
    bytes_per_call: Option<f64>,
    checksum_syscalls: u64,
    pipe_bytes: u32,
    elapsed_s: f64,
    user_cpu_s: f64,
    sys_cpu_s: f64,
    cpu_s_per_gib: Option<f64>,
    peak_rss_bytes: u64,
    voluntary_context_switches: u64,
    involuntary_context_switches: u64,
    fallbacks: Vec<JsonFallback<'a>>,
}

impl<'a> JsonSide<'a> {
    fn of(s: &'a SideStats) -> Self {
        JsonSide {
            path: s.path.as_str(),
            bytes: s.bytes,
            syscalls: s.calls,
            bytes_per_call: (s.calls > 0).then(|| s.bytes as f64 / s.calls as f64),
            checksum_syscalls: s.checksum_calls,
            pipe_bytes: s.pipe_bytes,
            elapsed_s: s.elapsed_us as f64 / 1e6,
            user_cpu_s: s.user_us as f64 / 1e6,
            sys_cpu_s: s.sys_us as f64 / 1e6,
            cpu_s_per_gib: cpu_per_gib(s.bytes, s),
            peak_rss_bytes: s.peak_rss_kib * 1024,
            voluntary_context_switches: s.voluntary_switches,
            involuntary_context_switches: s.involuntary_switches,
            fallbacks: s
                .fallbacks
                .iter()
                .map(|f| JsonFallback {
                    from: f.from.as_str(),
                    errno: f.errno,
                    errno_name: f.errno.map(errno_name),
                    reason: &f.reason,
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct JsonFallback<'a> {
    from: &'static str,
    errno: Option<i32>,
    errno_name: Option<String>,
    reason: &'a str,
}
