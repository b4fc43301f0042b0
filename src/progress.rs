//! Everything a session shows while it runs: the progress bar (built here only) and warnings.
//! The bar is hidden unless stderr is a terminal and neither `--quiet` nor `--json` was given
//! (see `config::Output`); warnings are printed above it either way.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Output;
use crate::report::events::Events;
use crate::report::shown;
use crate::terminal;

// The file name takes what the terminal's width leaves (`wide_msg`, cut to fit), so the bar is
// one line: on a terminal that reports no size (a pty of 0x0) indicatif assumes 80 columns, and a
// longer line wrapped into two padded ones.
const SIZED: &str = "{prefix} {wide_msg} [{bar:20}] {binary_bytes}/{binary_total_bytes} \
                     {binary_bytes_per_sec} ETA {eta}";
const UNSIZED: &str =
    "{prefix} {wide_msg} {spinner} {binary_bytes} {binary_bytes_per_sec} {elapsed}";

/// A bar for `total` bytes (a spinner when the total is unknown), or a hidden one.
pub fn bar(visible: bool, total: Option<u64>, label: &str) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(n) => (ProgressBar::new(n), SIZED),
        None => (ProgressBar::new_spinner(), UNSIZED),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
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
    /// Bytes done without moving: what the receiver kept of resumed files, and holes.
    resumed: AtomicU64,
    events: Events,
}

impl Ui {
    /// A display for a session moving `total` bytes in `files` files.
    pub fn new(output: Output, total: Option<u64>, files: u64) -> Ui {
        let bar = bar(output.progress, total, "");
        let (bytes, resumed) = (AtomicU64::new(0), AtomicU64::new(0));
        Ui { bar, files, done: 0, total, bytes, resumed, events: Events::off() }
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
        self.bar.suspend(|| terminal::line(format!("zcp: warning: {message}")));
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
        self.bytes.store(bytes, Ordering::Relaxed);
        let done = self.done_bytes();
        self.bar.set_position(done);
        self.events.progress(done, self.total, (self.done, self.files), false);
    }

    /// Bytes moved, and those done without moving.
    fn done_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed) + self.resumed.load(Ordering::Relaxed)
    }

    /// `n` bytes of holes did not need to move: they count as done.
    pub fn skip(&self, n: u64) {
        self.resumed.fetch_add(n, Ordering::Relaxed);
    }

    /// File `index` begins to move from `offset` (what the receiver kept counts as done).
    pub fn begin(&self, index: usize, name: &str, size: Option<u64>, offset: u64) {
        self.resumed.fetch_add(offset, Ordering::Relaxed);
        self.events.file_begins(index, name, size, offset);
    }

    /// Clears the bar from the terminal.
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
