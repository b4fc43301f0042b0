//! Data paths on systems other than Linux: `sendfile` and `splice` are not wired up there yet,
//! so they answer "unsupported" and the chooser falls back to the buffered path, saying why.

use super::{Attempt, Incoming, Moved, Outgoing, Tick};

fn not_here(call: &str) -> Attempt {
    Attempt::Unsupported {
        errno: None,
        reason: format!("{call} is only used on Linux in this build of zcp"),
    }
}

pub(super) fn send_sendfile(_out: &Outgoing<'_>, _tick: Tick<'_>) -> Result<Moved, Attempt> {
    Err(not_here("sendfile"))
}

pub(super) fn send_splice(_out: &Outgoing<'_>, _tick: Tick<'_>) -> Result<Moved, Attempt> {
    Err(not_here("splice"))
}

pub(super) fn recv_splice(_inc: &Incoming<'_>, _tick: Tick<'_>) -> Result<Moved, Attempt> {
    Err(not_here("splice"))
}
