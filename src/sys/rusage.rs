//! What a session cost this process, from `getrusage(2)`: CPU time and context switches between
//! two snapshots, and peak resident memory. Folded with a copy's counts into `SideStats`.

use std::time::Instant;

use nix::sys::resource::{UsageWho, getrusage};

use crate::copy::Moved;
use crate::protocol::SideStats;

/// Resource counters at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    at: Instant,
    user_us: u64,
    sys_us: u64,
    voluntary: u64,
    involuntary: u64,
}

impl Snapshot {
    /// The process's resource usage and the time, now.
    pub fn now() -> Snapshot {
        let at = Instant::now();
        match getrusage(UsageWho::RUSAGE_SELF) {
            Ok(u) => Snapshot {
                at,
                user_us: micros(u.user_time()),
                sys_us: micros(u.system_time()),
                voluntary: u.voluntary_context_switches() as u64,
                involuntary: u.involuntary_context_switches() as u64,
            },
            Err(_) => Snapshot { at, user_us: 0, sys_us: 0, voluntary: 0, involuntary: 0 },
        }
    }

    /// This end's statistics: what `moved` counted plus what the process spent since `self`.
    pub fn side_stats(&self, moved: &Moved) -> SideStats {
        let now = Snapshot::now();
        SideStats {
            data_path: (moved.files > 0).then_some(moved.data_path),
            bytes: moved.bytes,
            calls: moved.calls,
            checksum_calls: moved.checksum_calls,
            pipe_bytes: moved.pipe_bytes,
            elapsed_us: now.at.duration_since(self.at).as_micros() as u64,
            user_us: now.user_us.saturating_sub(self.user_us),
            sys_us: now.sys_us.saturating_sub(self.sys_us),
            peak_rss_kib: peak_rss_kib(),
            voluntary_switches: now.voluntary.saturating_sub(self.voluntary),
            involuntary_switches: now.involuntary.saturating_sub(self.involuntary),
            fallbacks: moved.fallbacks.clone(),
        }
    }
}

fn micros(t: nix::sys::time::TimeVal) -> u64 {
    (t.tv_sec() as u64).saturating_mul(1_000_000).saturating_add(t.tv_usec() as u64)
}

/// Peak resident set of this process so far, in KiB. On Linux it is read from VmHWM, because
/// `getrusage`'s `ru_maxrss` keeps the peak of the process image before `exec` (a shell's).
pub fn peak_rss_kib() -> u64 {
    #[cfg(target_os = "linux")]
    if let Some(kib) = vm_hwm_kib() {
        return kib;
    }
    let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) else { return 0 };
    let raw = u.max_rss().max(0) as u64;
    // Linux and the BSDs count KiB; macOS counts bytes.
    if cfg!(target_os = "macos") { raw / 1024 } else { raw }
}

#[cfg(target_os = "linux")]
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
