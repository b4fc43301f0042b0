//! Everything a session shows while it runs: the progress bar (built here only) and warnings.
//! The bar is hidden unless stderr is a terminal and neither `--quiet` nor `--json` was given
//! (see `config::Output`); warnings are printed above it either way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use humansize::{BINARY, format_size};
use indicatif::{FormattedDuration, ProgressBar, ProgressState, ProgressStyle};

use crate::config::Output;
use crate::report::events::Events;
use crate::report::shown;

// The file name takes what the terminal's width leaves (`wide_msg`, cut to fit), so the bar is
// one line: on a terminal that reports no size (a pty of 0x0) indicatif assumes 80 columns, and a
// longer line wrapped into two padded ones (#13).
const SIZED: &str =
    "{prefix} {wide_msg} [{bar:20}] {binary_bytes}/{binary_total_bytes} {rate} ETA {eta}";
const UNSIZED: &str = "{prefix} {wide_msg} {spinner} {binary_bytes} {rate} {elapsed}";

/// What a bar's rate is made of besides its position: the bytes done without moving (a
/// resumed file's prefix, holes), and when bytes began to move (the bar's elapsed time then).
#[derive(Debug, Default)]
struct Flow {
    kept: AtomicU64,
    since: OnceLock<Duration>,
}

impl Flow {
    /// The bytes per second that moved at `elapsed` into a bar at `position`: the position
    /// less what was kept, over the time since bytes began to move. Not before they did.
    fn rate(&self, position: u64, elapsed: Duration) -> Option<f64> {
        let since = *self.since.get()?;
        moved_rate(
            position.saturating_sub(self.kept.load(Ordering::Relaxed)),
            elapsed.saturating_sub(since),
        )
    }
}

/// `moved` bytes over `time`; `None` before any time has passed.
fn moved_rate(moved: u64, time: Duration) -> Option<f64> {
    let seconds = time.as_secs_f64();
    (seconds > 0.0).then(|| moved as f64 / seconds)
}

/// The time left at `rate` for `left` bytes.
fn time_left(left: u64, rate: Option<f64>) -> Option<Duration> {
    rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(left as f64 / r))
}

/// A bar's style with the `{rate}` and `{eta}` of the bytes that moved (indicatif's own count
/// every jump of the position as speed: a resume showed 3.45 GiB/s under a 300 MiB/s limit).
fn style(template: &str, flow: &Arc<Flow>) -> Option<ProgressStyle> {
    let (for_rate, for_eta) = (Arc::clone(flow), Arc::clone(flow));
    let rate = move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let rate = for_rate.rate(s.pos(), s.elapsed());
        let _ = write!(w, "{}/s", format_size(rate.unwrap_or(0.0) as u64, BINARY));
    };
    let eta = move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
        let rate = for_eta.rate(s.pos(), s.elapsed());
        let left = s.len().unwrap_or(0).saturating_sub(s.pos());
        let _ = write!(w, "{}", FormattedDuration(time_left(left, rate).unwrap_or_default()));
    };
    let style = ProgressStyle::with_template(template).ok()?;
    Some(style.with_key("rate", rate).with_key("eta", eta).progress_chars("=> "))
}

/// A bar for `total` bytes (a spinner when the total is unknown), or a hidden one.
pub fn bar(visible: bool, total: Option<u64>, label: &str) -> ProgressBar {
    let flow = Arc::new(Flow::default());
    // A bar of the caller's own work: it moves from the start.
    let _ = flow.since.set(Duration::ZERO);
    bar_with(visible, total, label, &flow)
}

/// `bar`, whose rate counts what moved after `flow.since`, less `flow.kept`.
fn bar_with(visible: bool, total: Option<u64>, label: &str, flow: &Arc<Flow>) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(n) => (ProgressBar::new(n), SIZED),
        None => (ProgressBar::new_spinner(), UNSIZED),
    };
    if let Some(style) = style(template, flow) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_string());
    bar
}

/// The live display of one session: one overall bar (bytes, files, rate, ETA, current file),
/// and the `progress` events of `--events`, at their steady interval.
pub struct Ui {
    bar: ProgressBar,
    files: u64,
    done: u64,
    total: Option<u64>,
    bytes: AtomicU64,
    /// Bytes done without moving (what the receiver kept of resumed files, and holes), which
    /// count in the position, not in the rate; and when bytes began to move.
    flow: Arc<Flow>,
    events: Events,
}

impl Ui {
    /// A display for a session moving `total` bytes in `files` files.
    pub fn new(output: Output, total: Option<u64>, files: u64) -> Ui {
        let flow = Arc::default();
        let bar = bar_with(output.progress, total, "", &flow);
        let bytes = AtomicU64::new(0);
        Ui { bar, files, done: 0, total, bytes, flow, events: Events::off() }
    }

    /// The same display, also reporting progress as events.
    pub fn with_events(mut self, events: Events) -> Ui {
        self.events = events;
        self
    }

    /// The session's `--events` (off unless given `with_events`).
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// A display that shows nothing but warnings.
    pub fn hidden() -> Ui {
        Ui::new(Output { json: false, progress: false, summary: false, events: None }, None, 0)
    }

    /// Prints a warning above the bar.
    pub fn warn(&self, message: &str) {
        self.bar.suspend(|| eprintln!("zcp: warning: {}", shown(message)));
    }

    /// A new file starts; `base` is the session's byte count before it.
    pub fn file(&mut self, name: &str) {
        self.done += 1;
        if self.bar.is_hidden() {
            return;
        }
        self.bar.set_prefix(format!("[{}/{}]", self.done, self.files));
        self.bar.set_message(shown(name).into_owned());
    }

    /// The session has moved `bytes` so far.
    pub fn position(&self, bytes: u64) {
        self.moving();
        self.bytes.store(bytes, Ordering::Relaxed);
        let done = self.done_bytes();
        self.bar.set_position(done);
        self.events.progress(done, self.total, (self.done, self.files), false);
    }

    /// Bytes begin to move now, if they had not yet: the rate counts from here.
    fn moving(&self) {
        self.flow.since.get_or_init(|| self.bar.elapsed());
    }

    /// Bytes moved, and those done without moving.
    fn done_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed) + self.flow.kept.load(Ordering::Relaxed)
    }

    /// `n` bytes of holes did not need to move: they count as done.
    pub fn skip(&self, n: u64) {
        self.flow.kept.fetch_add(n, Ordering::Relaxed);
    }

    /// File `index` begins to move from `offset` (what the receiver kept counts as done).
    pub fn begin(&self, index: usize, name: &str, size: Option<u64>, offset: u64) {
        self.flow.kept.fetch_add(offset, Ordering::Relaxed);
        self.moving();
        self.events.file_begins(index, name, size, offset);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
        self.events.progress(self.done_bytes(), self.total, (self.done, self.files), true);
    }
}

/// A session that fails or is interrupted clears its bar too: the error and the prompt then
/// start on a line of their own.
impl Drop for Ui {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_counts_only_bytes_that_moved_since_they_began_to() {
        let flow = Flow::default();
        assert_eq!(flow.rate(5 << 20, Duration::from_secs(10)), None, "nothing moved yet");
        flow.kept.store(900 << 20, Ordering::Relaxed);
        flow.since.set(Duration::from_secs(4)).expect("unset");
        // 900 MiB kept, 100 MiB moved in the 2 s since moving began: 50 MiB/s.
        let rate = flow.rate(1000 << 20, Duration::from_secs(6)).expect("a rate");
        assert_eq!(rate, f64::from(50 << 20));
        assert_eq!(time_left(100 << 20, Some(rate)), Some(Duration::from_secs(2)));
        assert_eq!(time_left(1, Some(0.0)), None);
    }
}
