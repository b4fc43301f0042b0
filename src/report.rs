//! What a session reports, and all of its printing: the human summary for stderr and the JSON
//! object for stdout. Sessions return a `Report`; this module only formats it.

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::Duration;

use humansize::{BINARY, format_size};
use serde::Serialize;

use crate::copy::batch::{self, SMALL_FILE};
use crate::datapath::{DataPath, Fallback};
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
    pub name: String,
    pub dir: bool,
    pub status: Status,
    /// Bytes of this file that crossed the wire in this session.
    pub bytes: u64,
    /// Bytes the receiver already held and kept (a resumed transfer).
    pub resumed_from: u64,
    /// The data path that moved it, when bytes moved.
    pub path: Option<DataPath>,
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
            path: None,
            saved_as: None,
            reason: None,
        }
    }
}

/// Everything one end knows at the end of a session, its own statistics and the peer's.
#[derive(Debug, Clone)]
pub struct Report {
    pub role: Role,
    pub files: Vec<FileReport>,
    pub send: SideStats,
    pub recv: SideStats,
    /// The `--output` directory this session created (it did not exist), receiver only.
    pub created: Option<String>,
}

impl Report {
    /// Bytes moved in this session.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).fold(0, u64::saturating_add)
    }

    /// Bytes the receiver already held and kept (offsets come from the receiver: saturating).
    pub fn resumed_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.resumed_from).fold(0, u64::saturating_add)
    }

    /// This end's wall-clock time for the data phase.
    pub fn elapsed(&self) -> Duration {
        let own = match self.role {
            Role::Send => &self.send,
            Role::Recv => &self.recv,
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

    /// The summary for stderr: what moved, how fast and whether it checked out; then both
    /// ends' data paths and CPU; then a line per refusal, note and fallback. Lines stay within
    /// 100 columns for names of ordinary length. Text from the peer is `shown` escaped.
    pub fn human(&self) -> String {
        let what = match self.role {
            Role::Send => "sent",
            Role::Recv => "received",
        };
        let mut line = if self.nothing_moved() {
            // Neither sent nor checked: no rate, no paths, no checksum to speak of.
            format!("{what} nothing: {}", self.what_moved().trim_end_matches([':', ' ']))
        } else {
            format!(
                "{what} {}{}{} in {:.2} s, {}/s · xxh3 {}\n  send: {} · recv: {} · cpu {}",
                self.what_moved(),
                format_size(self.bytes(), BINARY),
                self.resumed_note(),
                self.elapsed().as_secs_f64(),
                format_size(self.throughput() as u64, BINARY),
                if self.checksum_ok() { "ok" } else { "MISMATCH" },
                path_summary(&self.send),
                path_summary(&self.recv),
                cpu_summary(self.bytes(), &self.send, &self.recv),
            )
        };
        if let Some(dir) = &self.created {
            line.push_str(&format!(
                "\n  created directory {} (--output did not exist)",
                shown(dir)
            ));
        }
        for f in &self.files {
            let name = shown(&f.name);
            match (f.status, &f.reason, &f.saved_as) {
                (Status::Refused, Some(r), _) => {
                    line.push_str(&format!("\n  refused {name}: {}", shown(r)))
                }
                (Status::ChecksumMismatch, _, _) => {
                    line.push_str(&format!("\n  checksum mismatch: {name} (not saved)"))
                }
                (_, Some(note), _) => line.push_str(&format!("\n  {name}: {}", shown(note))),
                (Status::Sent, None, Some(saved)) if self.files.len() == 1 => {
                    line.push_str(&format!("\n  saved as {}", shown(saved)))
                }
                _ => {}
            }
        }
        if let Some(mix) = self.mixed_paths() {
            let side = match self.role {
                Role::Send => "send",
                Role::Recv => "recv",
            };
            line.push_str(&format!("\n  {side}: files took more than one path: {mix}"));
        }
        line.push_str(&self.batched_line());
        line.push_str(&fallback_lines("send", &self.send));
        line.push_str(&fallback_lines("recv", &self.recv));
        line
    }

    /// Whether no entry crossed or was created: everything was refused or skipped.
    fn nothing_moved(&self) -> bool {
        self.bytes() == 0
            && !self.files.iter().any(|f| {
                matches!(f.status, Status::Sent | Status::ChecksumMismatch | Status::Created)
            })
    }

    /// " (resumed at 200 MiB)" for one file that carried on from the receiver's partial copy.
    fn resumed_note(&self) -> String {
        match self.files.as_slice() {
            [only] if only.resumed_from > 0 => {
                format!(" (resumed at {})", format_size(only.resumed_from, BINARY))
            }
            _ => String::new(),
        }
    }

    /// One line for the small files that went in batches, in place of each side's "not used"
    /// line for them: "312 files up to 64 KiB went in batches, many per write(2) and read(2)".
    fn batched_line(&self) -> String {
        let batched = |s: &SideStats| s.fallbacks.iter().any(is_batch_fallback);
        if !batched(&self.send) && !batched(&self.recv) {
            return String::new();
        }
        let n = self
            .files
            .iter()
            .filter(|f| !f.dir && f.path == Some(DataPath::Buffered) && f.bytes <= SMALL_FILE)
            .count();
        let files = if n == 1 { "1 file".to_string() } else { format!("{n} files") };
        // Why: for small files the calls, not the bytes, are the cost (README, "Many files").
        format!(
            "\n  {files} up to {} went in batches, many per write(2) and read(2)",
            format_size(SMALL_FILE, BINARY)
        )
    }

    /// "sendfile 3, splice 1" when this end's files did not all take one path.
    fn mixed_paths(&self) -> Option<String> {
        let mut counts: Vec<(DataPath, usize)> = Vec::new();
        for path in self.files.iter().filter_map(|f| f.path) {
            match counts.iter_mut().find(|(p, _)| *p == path) {
                Some((_, n)) => *n += 1,
                None => counts.push((path, 1)),
            }
        }
        (counts.len() > 1)
            .then(|| counts.iter().map(|(p, n)| format!("{p} {n}")).collect::<Vec<_>>().join(", "))
    }

    /// "big.iso", or "12 files, 3 dirs (2 skipped, 1 refused, 4 MiB resumed)".
    fn what_moved(&self) -> String {
        let files: Vec<&FileReport> = self.files.iter().filter(|f| !f.dir).collect();
        let dirs = self.files.len() - files.len();
        if let ([only], 0) = (files.as_slice(), dirs)
            && (only.status == Status::Sent || only.status == Status::ChecksumMismatch)
        {
            return format!("{} ", shown(&only.name));
        }
        let mut text = match files.len() {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        };
        match dirs {
            0 => {}
            1 => text.push_str(", 1 dir"),
            n => text.push_str(&format!(", {n} dirs")),
        }
        let resumed = self.resumed_bytes();
        let mut notes = Vec::new();
        for (status, word) in [(Status::Skipped, "skipped"), (Status::Refused, "refused")] {
            match self.count(status) {
                0 => {}
                n => notes.push(format!("{n} {word}")),
            }
        }
        if resumed > 0 {
            notes.push(format!("{} resumed", format_size(resumed, BINARY)));
        }
        if !notes.is_empty() {
            text.push_str(&format!(" ({})", notes.join(", ")));
        }
        text.push_str(": ");
        text
    }

    /// The JSON object for stdout. Its keys are documented in the README and are a contract.
    pub fn json(&self) -> String {
        let view = JsonReport {
            role: self.role,
            files: self.files.iter().map(JsonFile::of).collect(),
            bytes: self.bytes(),
            resumed_bytes: self.resumed_bytes(),
            files_sent: self.count(Status::Sent),
            dirs: self.files.iter().filter(|f| f.dir).count(),
            skipped: self.count(Status::Skipped),
            refused: self.count(Status::Refused),
            elapsed_s: self.elapsed().as_secs_f64(),
            throughput_bytes_per_s: self.throughput(),
            checksum: JsonChecksum { algorithm: "xxh3-128", ok: self.checksum_ok() },
            send: JsonSide::of(&self.send),
            recv: JsonSide::of(&self.recv),
            created_output: self.created.as_deref(),
        };
        json_text(&view)
    }
}

/// One line per fallback a side took, each starting on a new line.
/// Batched small files are told in one line of their own (`Report::batched_line`).
fn fallback_lines(side: &str, stats: &SideStats) -> String {
    stats
        .fallbacks
        .iter()
        .filter(|fb| !is_batch_fallback(fb))
        .map(|fb| {
            let errno = fb.errno.map(|e| format!(" ({})", errno_name(e))).unwrap_or_default();
            format!("\n  {side}: {} not used: {}{errno}", fb.from, shown(&fb.reason))
        })
        .collect()
}

/// Whether a fallback is the one every batch of small files records.
fn is_batch_fallback(fb: &Fallback) -> bool {
    *fb == batch::send_reason() || *fb == batch::recv_reason()
}

/// Text that came from the peer (names, refusal and fallback reasons, ERROR messages), fit for
/// a terminal: control characters are shown escaped (`\e`, `\r`, `\n`, `\t`, `\x07`,
/// `\u{9b}`), so that they cannot move the cursor, set the title or draw a fake line
/// (#11). `--json` keeps the exact text.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\x1b' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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

fn path_summary(s: &SideStats) -> String {
    let calls = if s.calls == 1 { "call" } else { "calls" };
    match s.path {
        Some(path) => format!("{path} ({} {calls})", s.calls),
        None => "none (no data call)".into(),
    }
}

/// Below this many bytes, CPU per GiB extrapolates start-up costs into nonsense
/// (`29885.81 s/GiB` for a few tiny files): the summary shows CPU seconds instead.
const CPU_PER_GIB_FROM: u64 = 64 << 20;

fn cpu_summary(bytes: u64, send: &SideStats, recv: &SideStats) -> String {
    let secs = |s: &SideStats| s.user_us.saturating_add(s.sys_us) as f64 / 1e6;
    match (cpu_per_gib(bytes, send), cpu_per_gib(bytes, recv)) {
        (Some(s), Some(r)) if bytes >= CPU_PER_GIB_FROM => {
            format!("{s:.2}+{r:.2} s/GiB (send+recv)")
        }
        _ => format!("{:.2}+{:.2} s (send+recv)", secs(send), secs(recv)),
    }
}

/// CPU seconds (user + system) per GiB moved, `None` when nothing moved.
pub fn cpu_per_gib(bytes: u64, s: &SideStats) -> Option<f64> {
    (bytes > 0).then(|| s.user_us.saturating_add(s.sys_us) as f64 / 1e6 / (bytes as f64 / GIB))
}

#[derive(Serialize)]
struct JsonReport<'a> {
    role: Role,
    files: Vec<JsonFile<'a>>,
    bytes: u64,
    resumed_bytes: u64,
    files_sent: usize,
    dirs: usize,
    skipped: usize,
    refused: usize,
    elapsed_s: f64,
    throughput_bytes_per_s: f64,
    checksum: JsonChecksum,
    send: JsonSide<'a>,
    recv: JsonSide<'a>,
    created_output: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    name: &'a str,
    kind: &'static str,
    status: Status,
    bytes: u64,
    resumed_from: u64,
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
            path: f.path.map(DataPath::as_str),
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
            path: s.path.map(DataPath::as_str),
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

/// The report of a raw-mode transfer: one end's measurements, nothing from the peer.
#[derive(Debug, Clone)]
pub struct RawReport {
    pub role: Role,
    pub name: String,
    pub stats: SideStats,
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

    /// The summary for stderr.
    pub fn human(&self) -> String {
        let (what, side) = match self.role {
            Role::Send => ("sent", "send"),
            Role::Recv => ("received", "recv"),
        };
        let secs = self.stats.user_us.saturating_add(self.stats.sys_us) as f64 / 1e6;
        let cpu = match cpu_per_gib(self.stats.bytes, &self.stats) {
            Some(c) if self.stats.bytes >= CPU_PER_GIB_FROM => format!("{c:.2} s/GiB"),
            _ => format!("{secs:.2} s"),
        };
        let mut line = format!(
            "{what} {} {} in {:.2} s, {}/s · {side}: {} · cpu {cpu} · raw: no checksum, no authentication",
            shown(&self.name),
            format_size(self.stats.bytes, BINARY),
            self.elapsed_s(),
            format_size(self.throughput() as u64, BINARY),
            path_summary(&self.stats),
        );
        if let Some(saved) = &self.saved_as {
            line.push_str(&format!("\n  saved as {}", shown(saved)));
        }
        line.push_str(&fallback_lines(side, &self.stats));
        line
    }

    /// The JSON object for stdout: the keys of a full report where they apply.
    pub fn json(&self) -> String {
        let side = JsonSide::of(&self.stats);
        let (send, recv) = match self.role {
            Role::Send => (Some(side), None),
            Role::Recv => (None, Some(side)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_shown_with_control_characters_escaped() {
        assert_eq!(shown("big.iso"), "big.iso");
        assert!(matches!(shown("plain name"), Cow::Borrowed(_)));
        assert_eq!(shown("a\x1b]0;t\x07\r\n\tz"), "a\\e]0;t\\x07\\r\\n\\tz");
        assert_eq!(shown("del\x7f c1\u{9b}"), "del\\x7f c1\\u{9b}");
        assert_eq!(shown("naïve 日本"), "naïve 日本");
    }

    #[test]
    fn cpu_is_per_gib_only_from_64_mib() {
        let side = SideStats { user_us: 1_000_000, sys_us: 0, ..SideStats::default() };
        assert_eq!(cpu_summary(4096, &side, &side), "1.00+1.00 s (send+recv)");
        assert_eq!(cpu_summary(1 << 30, &side, &side), "1.00+1.00 s/GiB (send+recv)");
    }
}
