//! The report of a star (`zcp send --to A --to B …`): one result per receiver (that session's
//! own report, or its error), the exit code they add up to, and what reading and hashing each
//! file once took. Formatting only; `send::star` fills it in.

use humansize::{BINARY, format_size};
use serde_json::{Value, json};

use super::{Report, json_text, shown};
use crate::error::ExitCode;
use crate::protocol::SideStats;

/// The outcome of a star.
#[derive(Debug)]
pub struct StarReport {
    /// One per receiver, in the order of the `--to` flags.
    pub legs: Vec<LegReport>,
    /// What the checksums shared by every session took.
    pub hashed: HashedOnce,
    /// What the whole star cost this process: wall time, CPU of every session and hash
    /// thread together, peak memory. (Each receiver's own report counts the process's CPU
    /// while that session ran, so those overlap.)
    pub process: SideStats,
}

/// The outcome of the session with one receiver of a star.
#[derive(Debug)]
pub struct LegReport {
    /// The receiver's address, as given.
    pub receiver: String,
    /// Its exit code, as a single `zcp send` to it would have ended.
    pub code: ExitCode,
    /// The session's report, when it ran to the end (a refusal still has one).
    pub report: Option<Report>,
    /// Why it failed, when it did (exactly as the error chain reads; printed escaped).
    pub error: Option<String>,
}

/// The whole-file checksums of a star: each file read back and hashed once, whatever the number
/// of receivers (a hash that failed and was redone counts twice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashedOnce {
    /// Files hashed.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The `pread` calls it took.
    pub calls: u64,
}

impl LegReport {
    /// Whether this receiver got everything (exit 0).
    pub fn succeeded(&self) -> bool {
        self.code == ExitCode::Success
    }
}

impl StarReport {
    /// The star's exit code: the highest of the receivers' codes, so 0 only when every
    /// receiver succeeded, and a stop by a signal (130, 143) or an authentication failure (8)
    /// outranks a refusal (5) or a lost connection (3).
    pub fn code(&self) -> ExitCode {
        self.legs.iter().map(|l| l.code).max_by_key(|c| c.code()).unwrap_or_default()
    }

    /// The summary for stderr: a line per receiver (the first line of its own summary, or
    /// that it failed and with which code), then the total and what hashing once took.
    pub fn human(&self) -> String {
        let mut text = String::new();
        for leg in &self.legs {
            let what = match (&leg.report, leg.succeeded()) {
                (Some(report), true) => first_line(report),
                (Some(report), false) => {
                    format!("{} · exit {}", first_line(report), leg.code.code())
                }
                (None, _) => format!("failed, exit {}", leg.code.code()),
            };
            text.push_str(&format!("to {}: {what}\n", shown(&leg.receiver)));
        }
        let ok = self.legs.iter().filter(|l| l.succeeded()).count();
        let failed = self.legs.len() - ok;
        let receivers = crate::units::counted(self.legs.len() as u64, "receiver");
        text.push_str(&format!("{receivers}: {ok} done, {failed} failed"));
        if failed > 0 {
            text.push_str(&format!(" (exit {})", self.code().code()));
        }
        let h = self.hashed;
        text.push_str(&format!(
            " · read and hashed once for {receivers}: {}, {} in {}",
            crate::units::counted(h.files, "file"),
            format_size(h.bytes, BINARY),
            crate::units::counted(h.calls, "read"),
        ));
        let p = &self.process;
        text.push_str(&format!(
            "\n  in {:.2} s · cpu {:.2} s (user {:.2}, sys {:.2}) · peak rss {}",
            p.elapsed_us as f64 / 1e6,
            p.user_us.saturating_add(p.sys_us) as f64 / 1e6,
            p.user_us as f64 / 1e6,
            p.sys_us as f64 / 1e6,
            format_size(p.peak_rss_kib.saturating_mul(1024), BINARY),
        ));
        text
    }

    /// The JSON object for stdout: the exit code, a `receivers` array (address, exit code,
    /// error, that session's report) and `hashed_once`.
    pub fn json(&self) -> String {
        json_text(&self.json_value())
    }

    fn json_value(&self) -> Value {
        let receivers: Vec<Value> = self
            .legs
            .iter()
            .map(|leg| {
                json!({
                    "address": leg.receiver,
                    "exit_code": leg.code.code(),
                    "error": leg.error,
                    "report": leg.report.as_ref().map(Report::json_value),
                })
            })
            .collect();
        json!({
            "mode": "star",
            "exit_code": self.code().code(),
            "receivers": receivers,
            "hashed_once": {
                "files": self.hashed.files,
                "bytes": self.hashed.bytes,
                "checksum_calls": self.hashed.calls,
            },
            "process": {
                "elapsed_s": self.process.elapsed_us as f64 / 1e6,
                "user_cpu_s": self.process.user_us as f64 / 1e6,
                "sys_cpu_s": self.process.sys_us as f64 / 1e6,
                "peak_rss_bytes": self.process.peak_rss_kib.saturating_mul(1024),
            },
        })
    }
}

/// The first line of a session's summary: what moved, how fast, whether it checked out.
fn first_line(report: &Report) -> String {
    report.human().lines().next().unwrap_or_default().to_string()
}
