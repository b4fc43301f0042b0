//! Where accepted connections wait until they authenticate: at most `MAX_WAITING` handshakes
//! at once, each on its own thread against the handshake deadline. A full lobby makes room for
//! the next connection at once by pushing out the oldest one that has not greeted (its peer
//! has not sent a greeting's worth of bytes) or has run `GRACE`; a peer that greeted keeps its
//! place for `GRACE`. So idle and trickling connections cannot queue ahead of a real peer,
//! which greets within a round trip; the argument, with its numbers, is `manual::lobby`. A
//! connection that fails costs one line on stderr and nothing else. What an authenticated
//! connection may do is up to the caller (`recv::server`, `net::establish`).

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::HELLO_LEN;
use crate::sys::tcp;

/// Handshakes that may run at once.
pub const MAX_WAITING: usize = 64;
/// How long a handshake whose peer greeted keeps its place in a full lobby while another
/// connection waits: honest handshakes take a few round trips, so peers that greet and then
/// stall cannot hold places for long, and a burst of real peers waits its turn in the
/// kernel's queue instead of pushing each other out.
pub const GRACE: Duration = Duration::from_secs(2);
/// Bytes after which a peer has greeted: the first thing either end of the protocol waits for
/// is a greeting of this length (or, with `--encrypt`, a longer TLS hello).
const GREETED: u64 = HELLO_LEN as u64;

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

/// One connection in its handshake, oldest first in `State::waiting`; `pushed_out` once a
/// newer one took its place, and why.
struct Waiting {
    id: u64,
    socket: TcpStream,
    since: Instant,
    greeted: bool,
    pushed_out: Option<Shed>,
}

/// Why a connection was pushed out of a full lobby.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shed {
    /// Its peer had not greeted.
    Silent,
    /// It had run `GRACE` without authenticating.
    Slow,
}

/// A connection's place in the lobby, from `enter` to the end of its handshake.
pub struct Ticket<'l> {
    lobby: &'l Lobby,
    id: u64,
}

impl State {
    /// The handshakes still running (not pushed out).
    fn running(&self) -> impl Iterator<Item = &Waiting> {
        self.waiting.iter().filter(|w| w.pushed_out.is_none())
    }

    /// Notes the peers that have greeted since last asked (a fact the kernel counts).
    fn listen(&mut self) {
        for w in self.waiting.iter_mut().filter(|w| !w.greeted) {
            w.greeted = tcp::bytes_received(&w.socket).is_some_and(|n| n >= GREETED);
        }
    }

    /// The handshake to push out for a newcomer, and why: the oldest of those whose peer has
    /// not greeted or that have run `GRACE`. A peer that greeted keeps its place for `GRACE`.
    fn victim(&mut self) -> Option<(usize, Shed)> {
        self.listen();
        self.waiting.iter().enumerate().filter(|(_, w)| w.pushed_out.is_none()).find_map(
            |(i, w)| match (w.greeted, w.since.elapsed() >= GRACE) {
                (false, _) => Some((i, Shed::Silent)),
                (true, true) => Some((i, Shed::Slow)),
                (true, false) => None,
            },
        )
    }

    /// How long until the oldest running handshake has run `GRACE`.
    fn until_grace(&self) -> Duration {
        self.running().map(|w| GRACE.saturating_sub(w.since.elapsed())).min().unwrap_or(GRACE)
    }
}

impl Lobby {
    /// Waits at most `timeout` until one more connection may come in: fewer than
    /// `MAX_WAITING` handshakes run, or one may be pushed out for it (see `State::victim`).
    /// Whether one may; never once the lobby is closed.
    pub fn make_room(&self, timeout: Duration) -> bool {
        let Ok(mut state) = self.state.lock() else { return false };
        let until = Instant::now() + timeout;
        loop {
            if state.closed {
                return false;
            }
            if state.running().count() < MAX_WAITING || state.victim().is_some() {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // No victim: every handshake greeted and is young. Room comes when one leaves
            // (signalled) or the oldest reaches its grace.
            let wait = left.min(state.until_grace());
            state = match self.left.wait_timeout(state, wait) {
                Ok((state, _)) => state,
                Err(_) => return false,
            };
        }
    }

    /// Lets a connection in, pushing one out first when the lobby is full (call `make_room`
    /// first); `None`, and the connection shut, once the lobby is closed.
    pub fn enter(&self, socket: &TcpStream) -> Option<Ticket<'_>> {
        let mut state = self.state.lock().ok()?;
        if state.closed {
            let _ = socket.shutdown(Shutdown::Both);
            return None;
        }
        if state.running().count() >= MAX_WAITING
            && let Some((i, why)) = state.victim()
        {
            let out = &mut state.waiting[i];
            out.pushed_out = Some(why);
            let _ = out.socket.shutdown(Shutdown::Both);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let socket = socket.try_clone().ok()?;
        let since = Instant::now();
        state.waiting.push(Waiting { id, socket, since, greeted: false, pushed_out: None });
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
        let pushed_out = state.waiting.iter().find(|w| w.id == id).and_then(|w| w.pushed_out);
        state.waiting.retain(|w| w.id != id);
        self.left.notify_all();
        match (state.closed, pushed_out) {
            (true, _) => Exit::Closed,
            (false, Some(why)) => Exit::PushedOut(why),
            (false, None) => Exit::Done,
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
        socket: TcpStream,
        peer: SocketAddr,
        handshake: impl FnOnce(TcpStream) -> anyhow::Result<T>,
    ) -> Option<T> {
        let result = handshake(socket);
        match (result, self.lobby.leave(self.id)) {
            (Ok(greeted), Exit::Done) => Some(greeted),
            (_, Exit::Closed) => None,
            (_, Exit::PushedOut(why)) => {
                let why = match why {
                    Shed::Silent => "it had not greeted",
                    Shed::Slow => &format!("it ran {} s", GRACE.as_secs()),
                };
                let why = format!(
                    "pushed out by a newer connection: {why} and {MAX_WAITING} handshakes were \
                     running"
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
    PushedOut(Shed),
    Closed,
}

/// The one line an ignored connection costs. It goes to stderr directly: the lobby runs below
/// the printing layer, and the line is a log, not part of any session's report.
fn ignored(peer: SocketAddr, why: &anyhow::Error) {
    crate::terminal::line(format!("zcp: ignored a connection from {peer}: {why:#}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    /// A lobby full of connections whose clients say nothing.
    fn full_of_silence(listener: &TcpListener, lobby: &Lobby) -> Vec<(TcpStream, u64)> {
        (0..MAX_WAITING)
            .map(|_| {
                assert!(lobby.make_room(Duration::ZERO));
                let (client, server) = pair(listener);
                let ticket = lobby.enter(&server).unwrap();
                let id = ticket.id;
                std::mem::forget(ticket);
                (client, id)
            })
            .collect()
    }

    fn greet(client: &mut TcpStream, server_side: &Lobby, id: u64) {
        client.write_all(&[0u8; HELLO_LEN]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let mut state = server_side.state.lock().unwrap();
            state.listen();
            if state.waiting.iter().any(|w| w.id == id && w.greeted) {
                return;
            }
            drop(state);
            std::thread::yield_now();
        }
        panic!("the greeting was never counted");
    }

    #[test]
    fn a_full_lobby_pushes_out_its_oldest_silent_connection_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let lobby = Lobby::default();
        let mut held = full_of_silence(&listener, &lobby);
        // The first greets: the second is the oldest silent one, and goes at once.
        let (first, first_id) = &mut held[0];
        greet(first, &lobby, *first_id);
        assert!(lobby.make_room(Duration::ZERO));
        let (_client, server) = pair(&listener);
        let ticket = lobby.enter(&server).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(held[1].0.read(&mut buf).unwrap(), 0, "the second was shut");
        assert!(matches!(lobby.leave(held[1].1), Exit::PushedOut(Shed::Silent)));
        assert!(matches!(lobby.leave(held[0].1), Exit::Done), "the one that greeted stays");
        drop(ticket);
    }

    #[test]
    fn a_lobby_full_of_greeted_connections_pushes_out_the_oldest_after_the_grace() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let lobby = Lobby::default();
        let mut held = full_of_silence(&listener, &lobby);
        for (client, id) in &mut held {
            greet(client, &lobby, *id);
        }
        assert!(!lobby.make_room(Duration::ZERO));
        let started = Instant::now();
        assert!(lobby.make_room(GRACE * 3));
        assert!(started.elapsed() < GRACE * 2, "room after {:?}", started.elapsed());
        let (_client, server) = pair(&listener);
        let _ticket = lobby.enter(&server).unwrap();
        assert!(matches!(lobby.leave(held[0].1), Exit::PushedOut(Shed::Slow)));
        assert!(matches!(lobby.leave(held[1].1), Exit::Done));
    }

    #[test]
    fn a_connection_that_leaves_makes_room_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let lobby = Lobby::default();
        let mut held = full_of_silence(&listener, &lobby);
        for (client, id) in &mut held {
            greet(client, &lobby, *id);
        }
        assert!(!lobby.make_room(Duration::ZERO));
        let (_, id) = held.pop().unwrap();
        drop(Ticket { lobby: &lobby, id });
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
