//! The JSON object for stdout, of a session and of a raw transfer, and the one way output for
//! machines and pagers leaves. Its keys are documented in the README and are a contract.

use std::io::{self, Write};

use serde::Serialize;

use super::human::cpu_per_gib;
use super::{FileReport, RawReport, Report, Status};
use crate::datapath::DataPath;
use crate::error::errno_name;
use crate::protocol::SideStats;
use crate::role::Role;

impl Report {
    /// The JSON object for stdout. Its keys are documented in the README and are a contract.
    pub fn json(&self) -> String {
        json_text(&self.view())
    }

    /// The same object as a value, for the `summary` event of `--events`.
    pub fn json_value(&self) -> serde_json::Value {
        serde_json::to_value(self.view())
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }

    fn view(&self) -> JsonReport<'_> {
        JsonReport {
            role: self.role,
            files: self.files.iter().map(JsonFile::of).collect(),
            bytes: self.bytes(),
            resumed_bytes: self.resumed_bytes(),
            hole_bytes: self.hole_bytes(),
            files_sent: self.count(Status::Sent),
            dirs: self.files.iter().filter(|f| f.dir).count(),
            skipped: self.count(Status::Skipped),
            refused: self.count(Status::Refused),
            excluded: self.excluded,
            removed: &self.removed,
            elapsed_s: self.elapsed().as_secs_f64(),
            throughput_bytes_per_s: self.throughput(),
            checksum: JsonChecksum { algorithm: "xxh3-128", ok: self.checksum_ok() },
            send: JsonSide::of(&self.send),
            recv: JsonSide::of(&self.recv),
            created_output: self.created.as_deref(),
            encryption: self.encryption.as_str(),
            cipher: self.encryption.cipher(),
            encryption_fallback: self.encryption.fallback(),
        }
    }
}

impl RawReport {
    /// The JSON object for stdout: the keys of a full report where they apply.
    pub fn json(&self) -> String {
        let side = JsonSide::of(&self.stats);
        let (send, recv) = match self.role {
            Role::Sender => (Some(side), None),
            Role::Receiver => (None, Some(side)),
        };
        let view = JsonRaw {
            role: self.role,
            mode: "raw",
            name: &self.name,
            saved_as: self.saved_as.as_deref(),
            bytes: self.stats.bytes,
            elapsed_s: self.elapsed_s(),
            throughput_bytes_per_s: self.throughput(),
            checksum: None,
            authenticated: false,
            send,
            recv,
        };
        json_text(&view)
    }
}

/// A report object as pretty JSON, the one way every `--json` output is rendered. Our view
/// structs cannot fail to serialize; if one ever did, the output says so as JSON.
pub fn json_text(view: &impl Serialize) -> String {
    serde_json::to_string_pretty(view)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
}

/// Writes bytes to standard output, taking a reader that went away (`zcp … --json | head -c1`,
/// `zcp man | head`) as success: the one place output for machines and pagers leaves.
pub fn to_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `to_stdout` for a line of text (a JSON object).
pub fn line_to_stdout(text: &str) -> io::Result<()> {
    to_stdout(format!("{text}\n").as_bytes())
}

#[derive(Serialize)]
struct JsonReport<'a> {
    role: Role,
    files: Vec<JsonFile<'a>>,
    bytes: u64,
    resumed_bytes: u64,
    hole_bytes: u64,
    files_sent: usize,
    dirs: usize,
    skipped: usize,
    refused: usize,
    excluded: u64,
    removed: &'a [String],
    elapsed_s: f64,
    throughput_bytes_per_s: f64,
    checksum: JsonChecksum,
    send: JsonSide<'a>,
    recv: JsonSide<'a>,
    created_output: Option<&'a str>,
    encryption: &'static str,
    cipher: Option<&'a str>,
    encryption_fallback: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    name: &'a str,
    kind: &'static str,
    status: Status,
    bytes: u64,
    resumed_from: u64,
    hole_bytes: u64,
    path: Option<&'static str>,
    checksum_ok: Option<bool>,
    saved_as: Option<&'a str>,
    reason: Option<&'a str>,
}

impl<'a> JsonFile<'a> {
    fn of(f: &'a FileReport) -> Self {
        let crossed = matches!(f.status, Status::Sent | Status::ChecksumMismatch);
        JsonFile {
            name: &f.name,
            kind: if f.dir { "dir" } else { "file" },
            status: f.status,
            bytes: f.bytes,
            resumed_from: f.resumed_from,
            hole_bytes: f.holes,
            path: f.data_path.map(DataPath::as_str),
            checksum_ok: crossed.then_some(f.status == Status::Sent),
            saved_as: f.saved_as.as_deref(),
            reason: f.reason.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct JsonChecksum {
    algorithm: &'static str,
    ok: bool,
}

#[derive(Serialize)]
struct JsonSide<'a> {
    path: Option<&'static str>,
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
            path: s.data_path.map(DataPath::as_str),
            bytes: s.bytes,
            syscalls: s.calls,
            bytes_per_call: (s.calls > 0).then(|| s.bytes as f64 / s.calls as f64),
            checksum_syscalls: s.checksum_calls,
            pipe_bytes: s.pipe_bytes,
            elapsed_s: s.elapsed_us as f64 / 1e6,
            user_cpu_s: s.user_us as f64 / 1e6,
            sys_cpu_s: s.sys_us as f64 / 1e6,
            cpu_s_per_gib: cpu_per_gib(s.bytes, s),
            peak_rss_bytes: s.peak_rss_kib.saturating_mul(1024),
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

#[derive(Serialize)]
struct JsonRaw<'a> {
    role: Role,
    mode: &'static str,
    name: &'a str,
    saved_as: Option<&'a str>,
    bytes: u64,
    elapsed_s: f64,
    throughput_bytes_per_s: f64,
    checksum: Option<JsonChecksum>,
    authenticated: bool,
    send: Option<JsonSide<'a>>,
    recv: Option<JsonSide<'a>>,
}
