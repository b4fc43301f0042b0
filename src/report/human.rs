//! The human summary for stderr, of a session and of a raw transfer. Text from the peer is
//! shown escaped (`shown`), so it cannot drive the terminal.

use humansize::{BINARY, format_size};

use super::{FileReport, RawReport, Report, Status};
use crate::copy::batch::{self, SMALL_FILE};
use crate::datapath::{DataPath, Encryption, Fallback};
use crate::error::errno_name;
use crate::protocol::SideStats;
use crate::role::Role;
use crate::terminal::shown;

const GIB: f64 = (1u64 << 30) as f64;
/// Refused entries named one per line; the rest are counted (a second run of the same tree
/// would otherwise print a line per file), and `--json` names them all.
const SHOWN_REFUSALS: usize = 3;

impl Report {
    /// The summary for stderr: what moved, how fast and whether it checked out; then both
    /// ends' data paths and CPU; then a line per refusal, note and fallback. Lines stay within
    /// 100 columns for names of ordinary length. Text from the peer is `shown` escaped.
    pub fn human(&self) -> String {
        let what = match self.role {
            Role::Sender => "sent",
            Role::Receiver => "received",
        };
        let mut line = if nothing_moved(self) {
            // Neither sent nor checked: no rate, no paths, no checksum to speak of.
            format!("{what} nothing: {}", what_moved(self).trim_end_matches([':', ' ']))
        } else {
            format!(
                "{what} {}{}{}{} in {:.2} s, {}/s · xxh3 {}\n  send: {} · recv: {} · cpu {}",
                what_moved(self),
                format_size(self.bytes(), BINARY),
                resumed_note(self),
                holes_note(self),
                self.elapsed().as_secs_f64(),
                format_size(self.throughput() as u64, BINARY),
                if self.checksum_ok() { "ok" } else { "MISMATCH" },
                path_summary(&self.send),
                path_summary(&self.recv),
                cpu_summary(self.bytes(), &self.send, &self.recv),
            )
        };
        line.push_str(&encryption_line(&self.encryption));
        if let Some(dir) = &self.created {
            line.push_str(&format!(
                "\n  created directory {} (--output did not exist)",
                shown(dir)
            ));
        }
        if !self.removed.is_empty() {
            let n = self.removed.len();
            let s = if n == 1 { "entry" } else { "entries" };
            line.push_str(&format!("\n  removed {n} {s} not in the offer (--mirror)"));
            for name in self.removed.iter().take(SHOWN_REFUSALS) {
                line.push_str(&format!("\n  removed {}", shown(name)));
            }
            if n > SHOWN_REFUSALS {
                let more = n - SHOWN_REFUSALS;
                line.push_str(&format!("\n  and {more} more removed (--json lists every one)"));
            }
        }
        if self.excluded > 0 {
            let s = if self.excluded == 1 { "entry" } else { "entries" };
            line.push_str(&format!("\n  {} {s} excluded by filters", self.excluded));
        }
        let mut refused = 0;
        for f in &self.files {
            let name = shown(&f.name);
            match (f.status, &f.reason, &f.saved_as) {
                (Status::Refused, Some(r), _) => {
                    refused += 1;
                    if refused <= SHOWN_REFUSALS {
                        line.push_str(&format!("\n  refused {name}: {}", shown(r)))
                    }
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
        if refused > SHOWN_REFUSALS {
            let more = refused - SHOWN_REFUSALS;
            line.push_str(&format!("\n  and {more} more refused (--json lists every one)"));
        }
        if let Some(mix) = mixed_paths(self) {
            let side = match self.role {
                Role::Sender => "send",
                Role::Receiver => "recv",
            };
            line.push_str(&format!("\n  {side}: files took more than one path: {mix}"));
        }
        line.push_str(&batched_line(self));
        line.push_str(&fallback_lines("send", &self.send));
        line.push_str(&fallback_lines("recv", &self.recv));
        line
    }
}

/// `encryption: tls1.3 (user space), CIPHER`, and why not the kernel; nothing for plaintext.
fn encryption_line(e: &Encryption) -> String {
    let Some(cipher) = e.cipher() else { return String::new() };
    let mut line = format!("\n  encryption: {}, {cipher}", e.as_str());
    if let Some(why) = e.fallback() {
        line.push_str(&format!("\n  encryption: {why}"));
    }
    line
}

impl RawReport {
    /// The summary for stderr.
    pub fn human(&self) -> String {
        let (what, side) = match self.role {
            Role::Sender => ("sent", "send"),
            Role::Receiver => ("received", "recv"),
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
}

/// Whether no entry crossed or was created: everything was refused or skipped.
/// Whether the session moved nothing: no bytes, and no file sent or checked. A session of
/// directories alone moved something if it made one; in a session with files, directories found
/// or made on the way do not count.
fn nothing_moved(r: &Report) -> bool {
    let moved = |f: &&FileReport| matches!(f.status, Status::Sent | Status::ChecksumMismatch);
    let (dirs, files): (Vec<&FileReport>, Vec<&FileReport>) = r.files.iter().partition(|f| f.dir);
    let dirs_made = dirs.iter().any(|f| f.status == Status::Created);
    r.bytes() == 0 && !files.iter().any(moved) && (!files.is_empty() || !dirs_made)
}

/// " + 3.94 GiB of holes (not sent)": sparse files' holes, apart from the bytes that crossed.
fn holes_note(r: &Report) -> String {
    match r.hole_bytes() {
        0 => String::new(),
        holes => format!(" + {} of holes (not sent)", format_size(holes, BINARY)),
    }
}

/// " (resumed at 200 MiB)" for one file that carried on from the receiver's partial copy.
fn resumed_note(r: &Report) -> String {
    match r.files.as_slice() {
        [only] if only.resumed_from > 0 => {
            format!(" (resumed at {})", format_size(only.resumed_from, BINARY))
        }
        _ => String::new(),
    }
}

/// One line for the small files that went in batches, in place of each side's "not used"
/// line for them: "312 files up to 64 KiB went in batches, many per write(2) and read(2)".
fn batched_line(r: &Report) -> String {
    let batched = |s: &SideStats| s.fallbacks.iter().any(is_batch_fallback);
    if !batched(&r.send) && !batched(&r.recv) {
        return String::new();
    }
    let n = r
        .files
        .iter()
        .filter(|f| !f.dir && f.data_path == Some(DataPath::Buffered) && f.bytes <= SMALL_FILE)
        .count();
    if n == 0 {
        // This end moved none of them in a batch (the peer may have): nothing true to say.
        return String::new();
    }
    let files = if n == 1 { "1 file".to_string() } else { format!("{n} files") };
    // Why: for small files the calls, not the bytes, are the cost (README, "Many files").
    format!(
        "\n  {files} up to {} went in batches, many per write(2) and read(2)",
        format_size(SMALL_FILE, BINARY)
    )
}

/// "sendfile 3, splice 1" when this end's files did not all take one path.
fn mixed_paths(r: &Report) -> Option<String> {
    let mut counts: Vec<(DataPath, usize)> = Vec::new();
    for path in r.files.iter().filter_map(|f| f.data_path) {
        match counts.iter_mut().find(|(p, _)| *p == path) {
            Some((_, n)) => *n += 1,
            None => counts.push((path, 1)),
        }
    }
    (counts.len() > 1)
        .then(|| counts.iter().map(|(p, n)| format!("{p} {n}")).collect::<Vec<_>>().join(", "))
}

/// "big.iso", or "12 files, 3 dirs (2 skipped, 1 refused, 4 MiB resumed)".
fn what_moved(r: &Report) -> String {
    let files: Vec<&FileReport> = r.files.iter().filter(|f| !f.dir).collect();
    let dirs = r.files.len() - files.len();
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
    let resumed = r.resumed_bytes();
    let mut notes = Vec::new();
    for (status, word) in [(Status::Skipped, "skipped"), (Status::Refused, "refused")] {
        match r.count(status) {
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

fn path_summary(s: &SideStats) -> String {
    match s.data_path {
        Some(path) => format!("{path} ({})", crate::units::counted(s.calls, "call")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_moved_nothing_when_no_file_crossed_whatever_its_directories() {
        let session = |entries: &[(bool, Status)]| Report {
            role: Role::Sender,
            files: entries.iter().map(|&(dir, s)| FileReport::new("e".into(), dir, s)).collect(),
            send: SideStats::default(),
            recv: SideStats::default(),
            created: None,
            encryption: Encryption::default(),
            excluded: 0,
            removed: Vec::new(),
        };
        let (dir, file) = (true, false);
        assert!(nothing_moved(&session(&[(dir, Status::Created), (file, Status::Refused)])));
        assert!(nothing_moved(&session(&[(file, Status::Skipped)])));
        assert!(!nothing_moved(&session(&[(dir, Status::Created), (file, Status::Sent)])));
        assert!(!nothing_moved(&session(&[(file, Status::ChecksumMismatch)])));
        // Directories alone: made (or found) is what the session did.
        assert!(!nothing_moved(&session(&[(dir, Status::Created), (dir, Status::Created)])));
        assert!(nothing_moved(&session(&[(dir, Status::Refused)])));
    }

    #[test]
    fn cpu_is_per_gib_only_from_64_mib() {
        let side = SideStats { user_us: 1_000_000, sys_us: 0, ..SideStats::default() };
        assert_eq!(cpu_summary(4096, &side, &side), "1.00+1.00 s (send+recv)");
        assert_eq!(cpu_summary(1 << 30, &side, &side), "1.00+1.00 s/GiB (send+recv)");
    }
}
