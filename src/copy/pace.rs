//! The sending rate cap (`--limit-rate`): how large one data call may be, and how long to wait
//! after it.

use std::thread;
use std::time::{Duration, Instant};

/// Holds the sending rate to `--limit-rate`: each data call moves at most a tenth of a
/// second's worth, and after each the sender sleeps until the average is back under the limit.
pub struct Pacer {
    rate: Option<u64>,
    start: Instant,
}

impl Pacer {
    /// A pacer for `rate` bytes per second, from now; `None` never waits.
    pub fn new(rate: Option<u64>) -> Pacer {
        Pacer { rate, start: Instant::now() }
    }

    /// The largest single call that keeps the pace smooth.
    pub fn max_call(&self) -> Option<usize> {
        self.rate.map(|r| (r / 10).clamp(4096, 64 << 20) as usize)
    }

    /// Sleeps until `bytes` are no longer ahead of the allowed rate.
    pub fn pace(&mut self, bytes: u64) {
        let Some(rate) = self.rate else { return };
        let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            thread::sleep(ahead);
        }
    }
}
