//! Failure classes and their exit codes, kept in one place, and the typed errors that sessions
//! branch on, raised where the fact is known (`crate::manual::failures`). Every other failure
//! is an `anyhow` chain, classified here by its root cause.

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use humansize::{BINARY, format_size};

use crate::datapath::DataPath;
use crate::protocol::{ErrorCode, ProtocolError};

/// The exit codes of `zcp`, one per failure class. Stable: scripts rely on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExitCode {
    #[default]
    /// Everything was done.
    Success = 0,
    /// Anything not classified below.
    Failure = 1,
    /// Bad command line, or a `--method` that cannot serve this input.
    Usage = 2,
    /// Could not connect or listen, or the connection broke or timed out.
    Connection = 3,
    /// The peer is not zcp, speaks another version, or sent something malformed or truncated.
    Protocol = 4,
    /// The receiver refused the file (it exists, its name is unsafe, it cannot be written).
    Refused = 5,
    /// The data arrived but its checksum did not match: nothing was put in place.
    Checksum = 6,
    /// A local file could not be read or written (not found, permission, disk full).
    Io = 7,
    /// The token proof failed or is missing, on either side.
    Auth = 8,
    /// One end uses `--encrypt` and the other does not, or the encrypted stream failed.
    Encryption = 9,
    /// Interrupted by SIGINT (Ctrl-C).
    Interrupted = 130,
    /// Stopped by SIGTERM.
    Terminated = 143,
}

impl ExitCode {
    /// Every code with a one-line meaning, for `--help` and the README.
    pub const TABLE: &[(ExitCode, &str)] = &[
        (ExitCode::Success, "success"),
        (ExitCode::Failure, "unexpected failure"),
        (ExitCode::Usage, "usage error, or a --method that cannot serve this input"),
        (ExitCode::Connection, "connection failed, broke or timed out"),
        (ExitCode::Protocol, "peer is not zcp, or sent a malformed or truncated stream"),
        (ExitCode::Refused, "receiver refused the file (exists, unsafe name, not writable)"),
        (ExitCode::Checksum, "checksum mismatch: nothing was put in place"),
        (ExitCode::Io, "local file error (not found, permission, disk full), or nothing to send"),
        (ExitCode::Auth, "authentication failed: wrong or missing token"),
        (ExitCode::Encryption, "--encrypt on one end only, or the encrypted stream was damaged"),
        (ExitCode::Interrupted, "interrupted (Ctrl-C)"),
        (ExitCode::Terminated, "stopped by SIGTERM"),
    ];

    /// The code for a stop by `signal`: 128 + its number (130 for SIGINT, 143 for SIGTERM).
    pub fn stopped_by(signal: nix::sys::signal::Signal) -> ExitCode {
        match signal {
            nix::sys::signal::Signal::SIGTERM => ExitCode::Terminated,
            _ => ExitCode::Interrupted,
        }
    }

    /// The number the process exits with.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Which wait ran out in an idle timeout, as its error names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// The peer's next handshake message did not come within the handshake's timeout.
    Handshake,
    /// No byte arrived within `--idle-timeout`.
    Read,
    /// The receiver took no byte within `--idle-timeout`.
    Write,
    /// The sender took none of the receiver's reply (its plan, its summary) within
    /// `--idle-timeout`.
    Reply,
    /// The peer's next message did not arrive whole within `--idle-timeout`, however it
    /// trickled.
    Whole,
}

/// Failures that sessions and the exit code need to tell apart.
#[derive(Debug)]
pub enum SessionError {
    /// Options that cannot work together or for this input.
    Usage(String),
    /// The token proof failed or is missing.
    Auth(String),
    /// One end uses `--encrypt` and the other does not, or the TLS layer failed (a record
    /// that does not authenticate: tampering).
    Encryption(String),
    /// This end was stopped by `signal` (SIGINT, SIGTERM) before it was done.
    Interrupted {
        /// The signal that stopped it.
        signal: nix::sys::signal::Signal,
        /// What was done, and what was kept.
        message: String,
    },
    /// `--method` named a path that cannot serve this source or destination.
    MethodUnavailable {
        /// The path asked for.
        path: DataPath,
        /// The errno the kernel answered, when it did.
        errno: Option<i32>,
        /// Why it cannot serve.
        reason: String,
    },
    /// The source is a directory.
    IsADirectory(String),
    /// Everything named on the command line was skipped: there is nothing to offer.
    NothingToSend(String),
    /// The receiver refused an entry.
    Refused {
        /// The entry's name.
        name: String,
        /// Why, in the receiver's words.
        reason: String,
    },
    /// The file's checksum did not match.
    ChecksumMismatch {
        /// The file's name.
        name: String,
    },
    /// The peer closed the connection before all of a file's bytes arrived.
    ConnectionLost {
        /// Bytes of the file that arrived.
        received: u64,
        /// Bytes the file has, when known.
        expected: Option<u64>,
    },
    /// The receiver went away mid-transfer (its socket turned readable: closed or reset)
    /// without saying why in an ERROR frame.
    PeerStopped,
    /// The system refused to start a thread (`EAGAIN`: out of tasks or memory).
    ThreadRefused {
        /// Which thread, as the error names it ("the checksum thread").
        thread: &'static str,
        /// What the system answered.
        cause: io::Error,
    },
    /// A read or write on the socket hit its timeout: the peer moved nothing for that long.
    Idle {
        /// Which wait ran out.
        stall: Stall,
        /// How long it waited.
        timeout: Duration,
    },
    /// The peer sent an ERROR frame.
    Peer {
        /// The class the peer gave, which decides the exit code.
        code: ErrorCode,
        /// The peer's words (shown escaped).
        message: String,
    },
}

/// The reason of a refusal (`SessionError::Refused`) anywhere in `e`'s chain: a file refused
/// when it was to be put in place, which the session survives.
pub fn refusal_reason(e: &anyhow::Error) -> Option<String> {
    match e.downcast_ref::<SessionError>() {
        Some(SessionError::Refused { reason, .. }) => Some(reason.clone()),
        _ => None,
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Usage(m)
            | SessionError::Auth(m)
            | SessionError::Encryption(m)
            | SessionError::NothingToSend(m)
            | SessionError::Interrupted { message: m, .. } => f.write_str(m),
            SessionError::MethodUnavailable { path, errno, reason } => {
                write!(f, "--method {path} cannot be used: {reason}")?;
                match errno {
                    Some(e) => write!(f, " ({})", errno_name(*e)),
                    None => Ok(()),
                }
            }
            SessionError::IsADirectory(p) => {
                write!(
                    f,
                    "{p} is a directory, not a file (--raw sends one file; without --raw a directory goes as a tree)"
                )
            }
            SessionError::Refused { name, reason } => {
                write!(f, "receiver refused {name}: {reason}")
            }
            SessionError::ChecksumMismatch { name } => {
                write!(
                    f,
                    "checksum mismatch for {name}: the data was damaged on the way, nothing was saved"
                )
            }
            SessionError::ConnectionLost { received, expected } => {
                write!(f, "connection lost after {}", how_far(*received, *expected))
            }
            SessionError::PeerStopped => f.write_str("the receiver stopped the transfer"),
            SessionError::ThreadRefused { thread, cause } => {
                write!(f, "starting {thread}: {cause}")
            }
            SessionError::Idle { stall, timeout } => {
                let secs = timeout.as_secs_f64();
                match stall {
                    Stall::Handshake => write!(f, "nothing arrived for {secs} s"),
                    Stall::Read => write!(f, "no data for {secs} s (--idle-timeout)"),
                    Stall::Write => {
                        write!(f, "the receiver took no data for {secs} s (--idle-timeout)")
                    }
                    Stall::Reply => {
                        write!(f, "the sender took no data for {secs} s (--idle-timeout)")
                    }
                    Stall::Whole => {
                        write!(f, "it did not arrive whole within {secs} s (--idle-timeout)")
                    }
                }
            }
            SessionError::Peer { message, .. } => write!(f, "peer reported: {message}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl SessionError {
    /// `e`, from a read (`Stall::Read`) or a write (`Stall::Write`) on the blocking `socket`:
    /// a call that hit the socket's timeout (`EAGAIN`) is `SessionError::Idle`, carried in an
    /// `io::Error` of kind `TimedOut`; any other error is returned as it was.
    pub fn idle_on(e: io::Error, socket: BorrowedFd<'_>, stall: Stall) -> io::Error {
        use nix::sys::socket::{getsockopt, sockopt};
        use nix::sys::time::TimeValLike;
        if e.kind() != io::ErrorKind::WouldBlock {
            return e;
        }
        // The socket's own timeout (SO_SNDTIMEO or SO_RCVTIMEO), a TCP connection's or the
        // session's end of the record layer's Unix pair alike.
        let timeout = match stall {
            Stall::Write | Stall::Reply => getsockopt(&socket, sockopt::SendTimeout),
            Stall::Handshake | Stall::Read | Stall::Whole => {
                getsockopt(&socket, sockopt::ReceiveTimeout)
            }
        };
        match timeout.map(|t| Duration::from_micros(t.num_microseconds().max(0) as u64)) {
            Ok(timeout) if !timeout.is_zero() => {
                io::Error::new(io::ErrorKind::TimedOut, SessionError::Idle { stall, timeout })
            }
            _ => e,
        }
    }
}

/// The idle timeout anywhere in `err`'s chain, raised where a read or write hit it.
pub fn idle_in(err: &anyhow::Error) -> Option<&SessionError> {
    err.chain().filter_map(session_error).find(|e| matches!(e, SessionError::Idle { .. }))
}

/// `cause` as a `SessionError`, also when an `io::Error` carries it (a data path's read or
/// write that hit the socket's timeout).
fn session_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a SessionError> {
    cause
        .downcast_ref::<SessionError>()
        .or_else(|| cause.downcast_ref::<io::Error>()?.get_ref()?.downcast_ref::<SessionError>())
}

/// How far a file got: `780.00 MiB of 1.91 GiB`, or `780.00 MiB` when its size is unknown.
fn how_far(received: u64, expected: Option<u64>) -> String {
    let got = format_size(received, BINARY);
    match expected {
        Some(total) => format!("{got} of {}", format_size(total, BINARY)),
        None => got,
    }
}

/// `err`, which a signal on this end caused by shutting the session's socket, told as what it
/// is: stopped by `signal`, how far the file got when that is known, and what was being done.
/// The broken connection `err` reports is the consequence, not the cause, and is left out.
pub fn stopped(err: &anyhow::Error, signal: nix::sys::signal::Signal) -> anyhow::Error {
    let lost = err.chain().find_map(|cause| match cause.downcast_ref::<SessionError>() {
        Some(SessionError::ConnectionLost { received, expected }) => Some((*received, *expected)),
        _ => None,
    });
    let texts: Vec<String> = err.chain().map(ToString::to_string).collect();
    let doing = texts[..texts.len().saturating_sub(1)].join(": ");
    let mut message = format!("stopped by {signal}");
    if let Some((received, expected)) = lost {
        message.push_str(&format!(" after {}", how_far(received, expected)));
    }
    if !doing.is_empty() {
        message.push_str(&format!(" while {doing}"));
    }
    SessionError::Interrupted { signal, message }.into()
}

/// `EINVAL`-style name of an errno value.
pub fn errno_name(errno: i32) -> String {
    format!("{:?}", nix::errno::Errno::from_raw(errno))
}

/// The exit code for an error chain: the first link that has a class decides.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    err.chain().find_map(classify).unwrap_or(ExitCode::Failure)
}

fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<ExitCode> {
    if let Some(e) = session_error(cause) {
        return Some(match e {
            SessionError::Usage(_) => ExitCode::Usage,
            SessionError::Auth(_) => ExitCode::Auth,
            SessionError::Encryption(_) => ExitCode::Encryption,
            SessionError::Interrupted { signal, .. } => ExitCode::stopped_by(*signal),
            SessionError::MethodUnavailable { .. } => ExitCode::Usage,
            SessionError::IsADirectory(_) | SessionError::NothingToSend(_) => ExitCode::Io,
            SessionError::Refused { .. } => ExitCode::Refused,
            // Not one of the documented classes: the machine, not the peer or a file.
            SessionError::ThreadRefused { .. } => ExitCode::Failure,
            SessionError::ChecksumMismatch { .. } => ExitCode::Checksum,
            SessionError::ConnectionLost { .. }
            | SessionError::PeerStopped
            | SessionError::Idle { .. } => ExitCode::Connection,
            SessionError::Peer { code: ErrorCode::Io, .. } => ExitCode::Io,
            SessionError::Peer { code: ErrorCode::Interrupted | ErrorCode::Busy, .. } => {
                ExitCode::Connection
            }
            SessionError::Peer { code: ErrorCode::Auth, .. } => ExitCode::Auth,
            SessionError::Peer { code: ErrorCode::Limit, .. } => ExitCode::Refused,
            SessionError::Peer { .. } => ExitCode::Protocol,
        });
    }
    if let Some(e) = cause.downcast_ref::<ProtocolError>() {
        return Some(match e {
            ProtocolError::Closed => ExitCode::Connection,
            ProtocolError::TlsPeer => ExitCode::Encryption,
            _ => ExitCode::Protocol,
        });
    }
    if let Some(errno) = cause.downcast_ref::<nix::errno::Errno>() {
        // The data paths convert their errnos to `io::Error` where the call returns; some of
        // the destination's code (`disk`) still passes nix's errno up as it is.
        return Some(classify_io(&io::Error::from(*errno)));
    }
    cause.downcast_ref::<io::Error>().map(classify_io)
}

fn classify_io(e: &io::Error) -> ExitCode {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected
        | TimedOut | HostUnreachable | NetworkUnreachable | AddrInUse | AddrNotAvailable => {
            ExitCode::Connection
        }
        _ => ExitCode::Io,
    }
}

#[cfg(test)]
mod tests {
    use nix::sys::signal::Signal;

    use super::*;

    #[test]
    fn a_connection_shut_by_our_own_signal_reads_as_stopped_with_sizes() {
        let lost = SessionError::ConnectionLost { received: 817_889_280, expected: Some(2 << 30) };
        let err = anyhow::Error::from(lost).context("receiving big.iso");
        let interrupted = stopped(&err, Signal::SIGINT);
        assert_eq!(
            interrupted.to_string(),
            "stopped by SIGINT after 780 MiB of 2 GiB while receiving big.iso"
        );
        assert_eq!(exit_code(&interrupted), ExitCode::Interrupted);
        let reset = anyhow::Error::from(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(stopped(&reset, Signal::SIGTERM).to_string(), "stopped by SIGTERM");
    }

    #[test]
    fn only_a_raised_idle_timeout_reads_as_a_broken_connection() {
        // EAGAIN from anything but a socket's timeout (a refused thread, say) is no idle peer.
        let eagain = anyhow::Error::from(io::Error::from(io::ErrorKind::WouldBlock));
        assert_eq!(exit_code(&eagain), ExitCode::Io);
        assert!(idle_in(&eagain).is_none());
        let timeout = std::time::Duration::from_secs(30);
        let idle = SessionError::Idle { stall: Stall::Write, timeout };
        let carried = anyhow::Error::from(io::Error::new(io::ErrorKind::TimedOut, idle))
            .context("sendfile")
            .context("sending to host");
        assert_eq!(exit_code(&carried), ExitCode::Connection);
        assert!(idle_in(&carried).is_some());
        assert_eq!(
            format!("{carried:#}"),
            "sending to host: sendfile: the receiver took no data for 30 s (--idle-timeout)"
        );
    }
}
