//! How a failure becomes an exit code: typed where code branches on it, raised where the fact
//! is known, classified once. The code is in `error`.
//!
//! ## One type per errno
//!
//! An errno becomes an `io::Error` where the call that returned it returns (nix's `Errno` is
//! converted at the call in the data paths), so no check has to test two types for one errno.
//!
//! ## Facts, not guesses
//!
//! What sessions and the exit code branch on is a `SessionError` variant raised where it is
//! known, never inferred later from an `io::ErrorKind`:
//!
//! - `Idle { stall, timeout }`: a read or write of the blocking socket hit its timeout. The data
//!   paths, the receiver's read-ahead and replies, and the sender's frame writes go through
//!   `copy::Timed`, which asks the socket for its timeout when a call answers `EAGAIN` and
//!   raises `Idle` there (carried in an `io::Error` of kind `TimedOut` through the
//!   `io::Read`/`io::Write` interfaces). The handshake's reads raise it in `link::peer`, and a message that does not
//!   arrive whole in time in `peer::whole_message`. Both ends use the same variant: the
//!   receiver answers the sender `Interrupted` when it sees one, and either end exits 3.
//! - `PeerStopped`: the sender saw the receiver's socket turn readable mid-transfer and no
//!   ERROR frame explained it: the connection was closed or reset (exit 3).
//! - `ThreadRefused { thread, cause }`: the system refused a thread (`EAGAIN`); exit 1, as
//!   it is neither the peer's nor a file's failure.
//! - `Refused`, `ChecksumMismatch`, `ConnectionLost`, `Peer`, `Interrupted`, and the usage,
//!   auth and encryption classes, as before.
//!
//! `io::ErrorKind::WouldBlock` is not read as "idle" by the classifier: an `EAGAIN` that was
//! not raised as `Idle` is not a peer that went quiet, so nothing else has to hide its errors
//! from the classifier by turning them into text.
//!
//! ## Classified once
//!
//! `error::exit_code` walks the chain and the first link with a class decides, looking also
//! inside an `io::Error` that carries a `SessionError`. `error::idle_in` finds an idle timeout
//! the same way, for the receiver's reply to its sender.
