//! Ctrl-C and SIGTERM as flags that long-running loops poll, so they can stop accepting, tell
//! their peers, keep part files and exit 130 or 143 with a summary instead of dying mid-write.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: nix::libc::c_int) {
    PENDING.store(signal, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to the flag. Blocking calls they interrupt are restarted
/// (SA_RESTART), so loops see the flag at their next poll.
pub fn install() -> anyhow::Result<()> {
    let action = SigAction::new(SigHandler::Handler(record), SaFlags::SA_RESTART, SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// Gives SIGINT and SIGTERM back their default action (end the process), for a process that
/// installed the flag only to wait and now has nothing to stop cleanly.
pub fn restore() {
    let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: restoring the default action installs no handler code.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// The signal received since `install`, if any.
pub fn pending() -> Option<Signal> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// The exit code for a stop by `signal`: 128 + its number (130 for SIGINT, 143 for SIGTERM).
pub fn exit_code(signal: Signal) -> crate::error::ExitCode {
    match signal {
        Signal::SIGTERM => crate::error::ExitCode::Terminated,
        _ => crate::error::ExitCode::Interrupted,
    }
}
