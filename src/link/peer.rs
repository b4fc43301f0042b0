//! What both ends of a session share: reading the next message the protocol calls for (an ERROR
//! frame from the peer becomes a typed error), the handshake timeout, and ending a session with
//! an ERROR frame the peer can actually read.

use std::io::{self, Read};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::copy::socket::Socket;
use crate::error::{SessionError, Stall};
use crate::protocol::{self, ErrorCode, Message, ProtocolError, ReadError};

/// How long a peer may take to greet and to answer before the data flows.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a failing end keeps reading after its ERROR frame, so that closing does not reset
/// the connection before the peer has read it.
const LINGER: Duration = Duration::from_secs(2);

/// Reads the next message, turning an ERROR frame into `SessionError::Peer`.
pub fn next_message(socket: &mut Socket, waiting_for: &str) -> anyhow::Result<Message> {
    let timeout = socket.read_timeout().ok().flatten();
    from_peer(protocol::read_message(socket), waiting_for, timeout)
}

/// `next_message` from any reader (the receiver's read-ahead), whose socket waits at most
/// `timeout` per read.
pub fn next_message_from(
    reader: &mut impl Read,
    timeout: Option<Duration>,
    waiting_for: &str,
) -> anyhow::Result<Message> {
    from_peer(protocol::read_message(reader), waiting_for, timeout)
}

/// A message read from the peer: an ERROR frame becomes `SessionError::Peer`, a failed read
/// says what was awaited and for how long.
fn from_peer(
    read: Result<Message, ReadError>,
    waiting_for: &str,
    timeout: Option<Duration>,
) -> anyhow::Result<Message> {
    match read {
        Ok(Message::Error { code, message }) => Err(SessionError::Peer { code, message }.into()),
        Ok(msg) => Ok(msg),
        Err(e) => Err(read_failure(e, waiting_for, timeout)),
    }
}

/// Reads an exchange (greeting, token proof, offer) against one deadline: each read may wait
/// only for the time left, so a peer trickling a byte at a time cannot stretch the handshake
/// past `HANDSHAKE_TIMEOUT`, whatever the per-read timeout.
pub struct Deadline {
    socket: Socket,
    until: Instant,
}

impl Deadline {
    /// A deadline `within` from now over a second handle on `socket`.
    pub fn new(socket: &Socket, within: Duration) -> anyhow::Result<Deadline> {
        let socket = socket.try_clone().context("duplicating the socket")?;
        Ok(Deadline::on(socket, within))
    }

    /// A deadline `within` from now over `socket`, a handle of its own.
    pub fn on(socket: Socket, within: Duration) -> Deadline {
        Deadline { socket, until: Instant::now() + within }
    }

    /// The next message, turning an ERROR frame into `SessionError::Peer`.
    pub fn next_message(&mut self, waiting_for: &str) -> anyhow::Result<Message> {
        from_peer(protocol::read_message(self), waiting_for, Some(HANDSHAKE_TIMEOUT))
    }
}

/// Reads the next message, which must arrive whole within `within` (`--idle-timeout`): one
/// deadline for the whole frame, so a peer trickling it a byte at a time cannot stretch the
/// wait, as it could a limit per read. `None` waits as long as it takes. An ERROR frame
/// becomes `SessionError::Peer`; a frame that did not come whole in time, `SessionError::Idle`.
pub fn whole_message(
    socket: &Socket,
    within: Option<Duration>,
    waiting_for: &str,
) -> anyhow::Result<Message> {
    let Some(within) = within else {
        set_timeout(socket, None)?;
        return next_message_from(&mut &*socket, None, waiting_for);
    };
    let mut deadline = Deadline::new(socket, within)?;
    match protocol::read_message(&mut deadline) {
        Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
            let late = SessionError::Idle { stall: Stall::Whole, timeout: within };
            Err(anyhow::Error::from(late).context(format!("waiting for {waiting_for}")))
        }
        read => from_peer(read, waiting_for, Some(within)),
    }
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "handshake deadline passed"));
        }
        self.socket.set_read_timeout(Some(left))?;
        self.socket.read(buf)
    }
}

/// The error for a failed read while `waiting_for` something. A read of the blocking socket
/// that hit its `timeout` (`EAGAIN`, unless the reader already told it as an idle timeout) is
/// `SessionError::Idle`: nothing arrived for that long.
pub fn read_failure(e: ReadError, waiting_for: &str, timeout: Option<Duration>) -> anyhow::Error {
    let context = format!("waiting for {waiting_for}");
    match (e, timeout) {
        (ReadError::Io(e), Some(timeout)) if e.kind() == io::ErrorKind::WouldBlock => {
            anyhow::Error::from(SessionError::Idle { stall: Stall::Handshake, timeout })
                .context(context)
        }
        (e, _) => anyhow::Error::from(e).context(context),
    }
}

/// The error for a message that is not the one the protocol calls for here.
pub fn unexpected(expected: &'static str, got: &Message) -> anyhow::Error {
    ProtocolError::Unexpected { expected, got: got.name() }.into()
}

/// Sets or clears the read timeout.
pub fn set_timeout(socket: &Socket, timeout: Option<Duration>) -> anyhow::Result<()> {
    socket.set_read_timeout(timeout).context("setting the socket read timeout")
}

/// Tells the peer why this end gives up, then reads and discards for a moment so the peer gets
/// to read the frame before the connection closes. Best effort: the peer may be gone already.
pub fn fail_with(socket: &mut Socket, code: ErrorCode, message: &str) {
    let msg = Message::Error { code, message: message.to_string() };
    if protocol::write_message(socket, &msg).is_err() {
        return;
    }
    let _ = socket.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 64 << 10];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match socket.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Whether the peer has sent something (while it should be silent): a sign it is giving up.
#[cfg(unix)]
pub fn peer_has_spoken(socket: &Socket) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}
