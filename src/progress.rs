//! Everything a session shows while it runs: the progress bar (built here only) and warnings.
//! The bar is hidden unless stderr is a terminal and neither `--quiet` nor `--json` was given
//! (see `config::Output`); warnings are printed above it either way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use humansize::{BINARY, format_size};
use indicatif::{
    FormattedDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle,
};

use crate::config::Output;
use crate::report::events::Events;
use crate::report::shown;
use crate::terminal;

/// Columns the file name (`wide_msg`, cut to fit) keeps at least before a field goes.
const NAME_MIN: u16 = 12;

/// The templates of a bar of known size, widest first, each with the width it needs: its
/// fields at their widest (`[99/999]`, `1023.99 MiB/1023.99 MiB`, `1023.99 MiB/s`,
/// `ETA 99:59:59`, spaces) and `NAME_MIN` for the name. A line wider than the terminal wraps
/// into two, and each redraw then leaves one behind; the name would be cut to nothing first.
/// So on a narrow terminal the bar goes, then the ETA, then the sizes for a percentage.
const SIZED: [(u16, &str); 4] = [
    (
        84 + NAME_MIN,
        "{prefix} {wide_msg} [{bar:20}] {binary_bytes}/{binary_total_bytes} {rate} ETA {eta}",
    ),
    (61 + NAME_MIN, "{prefix} {wide_msg} {binary_bytes}/{binary_total_bytes} {rate} ETA {eta}"),
    (48 + NAME_MIN, "{prefix} {wide_msg} {binary_bytes}/{binary_total_bytes} {rate}"),
    (0, "{prefix} {wide_msg} {percent:>3}% {rate}"),
];
/// The same for a stream of unknown size (a spinner, the bytes so far, the time so far).
const UNSIZED: [(u16, &str); 2] = [
    (46 + NAME_MIN, "{prefix} {wide_msg} {spinner} {binary_bytes} {rate} {elapsed_precise}"),
    (0, "{prefix} {wide_msg} {binary_bytes} {rate}"),
];

/// The template for a bar on a terminal `columns` wide: the widest that fits.
fn template(sized: bool, columns: u16) -> &'static str {
    let tiers: &[(u16, &'static str)] = if sized { &SIZED } else { &UNSIZED };
    tiers.iter().find(|(needs, _)| columns >= *needs).map_or(tiers[0].1, |(_, t)| t)
}

/// The width of the terminal on stderr as indicatif sees it (80 when it reports none).
fn columns() -> u16 {
    console::Term::stderr().size().1
}

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

/// How long bytes move before a rate is shown: the first burst (a socket buffer's worth, in a
/// few milliseconds) is not a rate.
const RATE_AFTER: Duration = Duration::from_millis(500);

/// `moved` bytes over `time`; `None` before `RATE_AFTER`.
fn moved_rate(moved: u64, time: Duration) -> Option<f64> {
    (time >= RATE_AFTER).then(|| moved as f64 / time.as_secs_f64())
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

/// The bars of this process, drawn together: a `--keep-open` receiver runs sessions at once,
/// each with its own bar, stacked rather than fighting over one line.
fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// Prints a line on stderr above the bars drawn now (a session's report while others run).
pub fn above_bars(line: &str) {
    bars().suspend(|| terminal::lines(line));
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
    // Drawn only once in `bars()`: a line drawn on its own before would stay behind.
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
    if let Some(style) = style(template(total.is_some(), columns()), flow) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_string());
    bars().add(bar)
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

    /// Prints a warning above the bars.
    pub fn warn(&self, message: &str) {
        above_bars(&format!("zcp: warning: {}", shown(message)));
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

    /// Clears the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        bars().remove(&self.bar);
        self.events.progress(self.done_bytes(), self.total, (self.done, self.files), true);
    }
}

/// A session that fails or is interrupted clears its bar too: the error and the prompt then
/// start on a line of their own.
impl Drop for Ui {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
            bars().remove(&self.bar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `template` with each field at its widest and the name empty: the columns it needs
    /// besides the name.
    fn widest(template: &str) -> usize {
        let mut line = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            line.push_str(&rest[..open]);
            let close = rest[open..].find('}').expect("a closed key") + open;
            let key = rest[open + 1..close].split(':').next().unwrap_or_default();
            line.push_str(match key {
                "prefix" => "[99/999]",
                "wide_msg" => "",
                "bar" => "[12345678901234567890]",
                "binary_bytes" | "binary_total_bytes" => "1023.99 MiB",
                "rate" => "1023.99 MiB/s",
                "eta" | "elapsed_precise" => "99:59:59",
                "percent" => "100",
                "spinner" => "-",
                other => panic!("no widest value for {{{other}}}"),
            });
            rest = &rest[close + 1..];
        }
        line.push_str(rest);
        // `[{bar:20}]` has its brackets in the template: count the bar's 20 once.
        line.chars().count() - if template.contains("[{bar") { 2 } else { 0 }
    }

    #[test]
    fn each_template_fits_the_width_it_is_chosen_for_with_room_for_the_name() {
        for (tiers, sized) in [(&SIZED[..], true), (&UNSIZED[..], false)] {
            for (needs, t) in tiers.iter().filter(|(needs, _)| *needs > 0) {
                let room = usize::from(*needs) - widest(t);
                assert!(room >= usize::from(NAME_MIN), "{t}: {room} columns left for the name");
                assert_eq!(template(sized, *needs), *t, "chosen at {needs} columns");
            }
            let narrowest = tiers.last().expect("a tier").1;
            assert!(widest(narrowest) + usize::from(NAME_MIN) <= 48, "{narrowest}");
            assert_eq!(template(sized, 20), narrowest);
        }
        assert!(template(true, 60).contains("{wide_msg}"), "the name stays at 60 columns");
        assert!(!template(true, 60).contains("{bar"), "the bar goes first");
        assert!(template(true, 120).contains("{bar"), "a wide terminal has it all");
    }

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
        // 400 KiB in the first 3 ms is a burst into the socket's buffer, not 130 MiB/s.
        assert_eq!(flow.rate((900 << 20) + (400 << 10), Duration::from_millis(4003)), None);
    }
}
