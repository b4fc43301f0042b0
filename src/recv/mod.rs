//! The receiving end: `server` binds or connects and runs sessions until done or stopped;
//! `session` serves one sender, start to end, and `intake` is its receive loop; `plan`
//! decides, before any byte arrives, what each offered entry becomes. Files reach the disk
//! through `disk`.

mod intake;
mod mirror;
mod offer;
mod plan;
mod server;
mod session;

pub use server::{Outcome, Receiver, STOP_GRACE};
