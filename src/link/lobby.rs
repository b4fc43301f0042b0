//! Where accepted connections wait until they authenticate: at most `MAX_WAITING` handshakes
//! at once, each on its own thread against the handshake deadline; when full and another
//! connection is queued, the oldest is pushed out once it has run `GRACE`. A connection that
//! fails costs one line on stderr and nothing else. What an authenticated connection may do is
//! up to the caller (`recv::server`, `net::establish`).

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Handshakes that may run at once.
pub const MAX_WAITING: usize = 8;
/// How long a handshake keeps its place in a full lobby while another connection is queued:
/// honest handshakes take milliseconds, so idle connections cannot lock real peers out, and a
/// burst of real peers waits its turn in the kernel's queue instead of pushing each other out.
pub const GRACE: Duration = Duration::from_secs(2);

/// The connections whose handshakes run now.
#[derive(Default)]
pub struct Lobby {
    state: Mutex<State>,
    /// Signalled whenever a connection leaves.
    left: Condvar,
    next: AtomicU64,
}

#[derive(Default)]
struct State {
    waiting: Vec<Waiting>,
    closed: bool,
}

/// One connection in its handshake; `pushed_out` once a newer one took its place.
struct Waiting {
    id: u64,
    socket: TcpStream,
    since: Instant,
    pushed_out: bool,
}

/// A connection's place in the lobby, from `enter` to the end of its handshake.
pub struct Ticket<'l> {
    lobby: &'l Lobby,
    id: u64,
}

impl Lobby {
    /// Waits at most `timeout` until one more connection may come in: fewer than
    /// `MAX_WAITING` handshakes run, or the oldest has run for `GRACE` and is pushed out.
    /// Whether one may; never once the lobby is closed.
    pub fn make_room(&self, timeout: Duration) -> bool {
        let Ok(mut state) = self.state.lock() else { return false };
        let until = Instant::now() + timeout;
        loop {
            if state.closed {
                return false;
            }
            if state.waiting.iter().filter(|w| !w.pushed_out).count() < MAX_WAITING {
                return true;
            }
            let Some(oldest) = state.waiting.iter_mut().find(|w| !w.pushed_out) else {
                return true;
            };
            let grace_left = GRACE.saturating_sub(oldest.since.elapsed());
            if grace_left.is_zero() {
                oldest.pushed_out = true;
                let _ = oldest.socket.shutdown(Shutdown::Both);
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.left.wait_timeout(state, left.min(grace_left)) {
                Ok((state, _)) => state,
                Err(_) => return false,
            };
        }
    }

    /// Lets a connection in (call `make_room` first); `None`, and the connection shut, once
    /// the lobby is closed.
    pub fn enter(&self, socket: &TcpStream) -> Option<Ticket<'_>> {
        let mut state = self.state.lock().ok()?;
        if state.closed {
            let _ = socket.shutdown(Shutdown::Both);
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let socket = socket.try_clone().ok()?;
        state.waiting.push(Waiting { id, socket, since: Instant::now(), pushed_out: false });
        Some(Ticket { lobby: self, id })
    }

    /// Ends every handshake still running, and any that would start: the end found its peer,
    /// or is stopping.
    pub fn close(&self) {
        let Ok(mut state) = self.state.lock() else { return };
        state.closed = true;
        for w in &state.waiting {
            let _ = w.socket.shutdown(Shutdown::Both);
        }
        self.left.notify_all();
    }

    /// Lets connections in again after `close`: a one-shot receiver awaiting a sender that
    /// was cut off.
    pub fn reopen(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = false;
        }
    }

    fn leave(&self, id: u64) -> Exit {
        let Ok(mut state) = self.state.lock() else { return Exit::Closed };
        let pushed_out = state.waiting.iter().any(|w| w.id == id && w.pushed_out);
        state.waiting.retain(|w| w.id != id);
        self.left.notify_all();
        match (state.closed, pushed_out) {
            (true, _) => Exit::Closed,
            (false, true) => Exit::PushedOut,
            (false, false) => Exit::Done,
        }
    }
}

impl Ticket<'_> {
    /// Runs `handshake` on the connection from `peer` and returns what it returns once the
    /// peer authenticated. A peer that fails (closes, idles past the deadline, proves a wrong
    /// token, is not zcp) or is pushed out is logged as ignored and gives `None`; so does any
    /// connection once the lobby is closed.
    pub fn greet<T>(
        self,
        socket: &mut TcpStream,
        peer: SocketAddr,
        handshake: impl FnOnce(&mut TcpStream) -> anyhow::Result<T>,
    ) -> Option<T> {
        let result = handshake(socket);
        match (result, self.lobby.leave(self.id)) {
            (Ok(greeted), Exit::Done) => Some(greeted),
            (_, Exit::Closed) => None,
            (_, Exit::PushedOut) => {
                let why = format!(
                    "pushed out after {} s by newer connections ({MAX_WAITING} handshakes at once)",
                    GRACE.as_secs()
                );
                ignored(peer, &anyhow::anyhow!(why));
                None
            }
            (Err(e), Exit::Done) => {
                ignored(peer, &e);
                None
            }
        }
    }
}

impl Drop for Ticket<'_> {
    /// A ticket dropped unused (its thread never ran) gives its place back.
    fn drop(&mut self) {
        if let Ok(mut state) = self.lobby.state.lock() {
            state.waiting.retain(|w| w.id != self.id);
            self.lobby.left.notify_all();
        }
    }
}

/// How a connection left the lobby.
enum Exit {
    Done,
    PushedOut,
    Closed,
}

/// The one line an ignored connection costs. It goes to stderr directly: the lobby runs below
/// the printing layer, and the line is a log, not part of any session's report.
fn ignored(peer: SocketAddr, why: &anyhow::Error) {
    eprintln!("zcp: ignored a connection from {peer}: {why:#}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn a_full_lobby_pushes_out_its_oldest_connection_after_the_grace() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let lobby = Lobby::default();
        let mut held = Vec::new();
        for _ in 0..MAX_WAITING {
            assert!(lobby.make_room(Duration::ZERO));
            let (client, server) = pair(&listener);
            held.push((client, lobby.enter(&server).unwrap()));
        }
        // Full, and every handshake young: no room at once, room within the grace.
        assert!(!lobby.make_room(Duration::ZERO));
        let started = Instant::now();
        assert!(lobby.make_room(GRACE * 3));
        assert!(started.elapsed() < GRACE * 2, "room after {:?}", started.elapsed());
        // The first connection was shut: its peer reads the end at once.
        let mut buf = [0u8; 1];
        assert_eq!(held[0].0.read(&mut buf).unwrap(), 0);
        assert!(matches!(lobby.leave(held[0].1.id), Exit::PushedOut));
        assert!(matches!(lobby.leave(held[1].1.id), Exit::Done));
    }

    #[test]
    fn a_connection_that_leaves_makes_room_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let lobby = Lobby::default();
        let mut held = Vec::new();
        for _ in 0..MAX_WAITING {
            let (client, server) = pair(&listener);
            held.push((client, lobby.enter(&server).unwrap()));
        }
        assert!(!lobby.make_room(Duration::ZERO));
        drop(held.pop());
        assert!(lobby.make_room(Duration::ZERO));
    }

    #[test]
    fn a_closed_lobby_lets_nobody_in() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let lobby = Lobby::default();
        let (_client, server) = pair(&listener);
        lobby.close();
        assert!(!lobby.make_room(Duration::ZERO));
        assert!(lobby.enter(&server).is_none());
    }
}
