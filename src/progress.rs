//! The progress bar on stderr, built in this one place. It is hidden unless stderr is a terminal
//! and neither `--quiet` nor `--json` was given (see `config::Output`).

use indicatif::{ProgressBar, ProgressStyle};

const SIZED: &str =
    "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}";
const UNSIZED: &str = "{prefix} {spinner} {binary_bytes} {binary_bytes_per_sec} {elapsed}";

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
