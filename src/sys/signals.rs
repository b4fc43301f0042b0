//! Ctrl-C and SIGTERM as flags that long-running loops poll, so they can stop accepting, tell
//! their peers, keep part files and exit 130 or 143 with a summary instead of dying mid-write.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context;
use nix::sys::signal::Signal;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

static PENDING: AtomicUsize = AtomicUsize::new(0);
/// Set by `restore`: the handlers then run the signal's default action (end the process).
static DEFAULT: AtomicBool = AtomicBool::new(false);
/// Whether the handlers are registered; signal-hook adds an action per call, so only once.
static INSTALLED: Mutex<bool> = Mutex::new(false);
/// Callers of `install` that have not called `restore` yet: the sessions of a star install
/// and restore each on its own thread, and one that ends must not take the flag from the rest.
static USERS: AtomicUsize = AtomicUsize::new(0);

/// Routes SIGINT and SIGTERM to the flag. Blocking calls they interrupt are restarted
/// (signal-hook installs its handler with SA_RESTART), so loops see the flag at their next poll.
pub fn install() -> anyhow::Result<()> {
    USERS.fetch_add(1, Ordering::SeqCst);
    DEFAULT.store(false, Ordering::SeqCst);
    let mut installed = INSTALLED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*installed {
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so after `restore` the process ends before the flag is set.
            flag::register_conditional_default(signal, &DEFAULT)
                .and_then(|_| flag::register_usize(signal, &PENDING, signal as usize))
                .context("routing SIGINT and SIGTERM to the stop flag")?;
        }
        *installed = true;
    }
    Ok(())
}

/// Gives SIGINT and SIGTERM back their default action (end the process), for a process that
/// installed the flag only to wait and now has nothing to stop cleanly: once every caller of
/// `install` has called it.
pub fn restore() {
    let before = USERS.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if before.unwrap_or(0) <= 1 {
        DEFAULT.store(true, Ordering::SeqCst);
    }
}

/// The signal received since `install`, if any.
pub fn pending() -> Option<Signal> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        n => i32::try_from(n).ok().and_then(|n| Signal::try_from(n).ok()),
    }
}
