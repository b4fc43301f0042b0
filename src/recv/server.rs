//! The receiving end as a process: binds `--listen` (or connects, for reverse connections),
//! serves one session or, with `--keep-open`, many at once (each on its own thread, at most
//! `--max-conns`, the rest told "busy"), and stops cleanly on Ctrl-C or SIGTERM, telling every
//! live sender.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::Context;

use super::session::Session;
use crate::config::{Link, RecvConfig};
use crate::disk::Destination;
use crate::error::ExitCode;
use crate::link::auth::{self, Token};
use crate::link::{handshake, net, peer};
use crate::protocol::{self, ErrorCode, Message};
use crate::report::Report;
use crate::sys::signals;

/// Senders told "busy" at once, at most.
const TURN_AWAY_MAX: usize = 32;
/// How often the serving loop looks at signals and finished sessions.
const TICK: Duration = Duration::from_millis(100);

/// A receiver, bound (or about to connect) and ready to serve.
pub struct Receiver {
    listener: Option<TcpListener>,
    dest: Destination,
    cfg: RecvConfig,
}

/// How a receiver's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub code: ExitCode,
    pub served: u64,
    pub failed: u64,
    /// Set when a signal stopped the receiver.
    pub stopped_by: Option<nix::sys::signal::Signal>,
}

/// Sessions started and how those that ended went, while the receiver runs.
#[derive(Default)]
struct Tally {
    outcome: Outcome,
    started: u64,
}

impl Tally {
    /// Counts one finished session and its exit code.
    fn count(&mut self, code: ExitCode) {
        self.outcome.served += 1;
        if code != ExitCode::Success {
            self.outcome.failed += 1;
            self.outcome.code = code;
        }
    }

    /// The outcome; a signal that stopped the receiver decides its exit code.
    fn finish(mut self) -> Outcome {
        if let Some(signal) = self.outcome.stopped_by {
            self.outcome.code = signals::exit_code(signal);
        }
        self.outcome
    }
}

impl Receiver {
    /// Checks `--output` and binds `--listen` (nothing is bound for `--connect`). Signals are
    /// routed to the stop flag from here on, so one that comes right after `listening on` is
    /// handled like any other instead of killing the process.
    pub fn bind(cfg: RecvConfig) -> anyhow::Result<Receiver> {
        signals::install()?;
        let dest = Destination::resolve(&cfg.output)?;
        let listener = match &cfg.net.link {
            Link::Listen(addr) => Some(net::listen(addr)?),
            Link::Connect(_) => None,
        };
        Ok(Receiver { listener, dest, cfg })
    }

    /// The address actually bound (the real port when `--listen` asked for port 0).
    pub fn local_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        self.listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .context("reading the listening address")
    }

    /// Whether senders must prove a token.
    pub fn authenticates(&self) -> bool {
        self.cfg.token.is_some()
    }

    /// The token a sender needs, when this receiver made it up (and the user must be shown it).
    pub fn generated_token(&self) -> Option<&Token> {
        self.cfg.token.as_ref().filter(|_| self.cfg.token_generated)
    }

    /// Serves one session, or sessions until a signal with `--keep-open`. Each finished
    /// session's report (or error) goes to `done`, which returns its exit code.
    pub fn run(
        &self,
        mut done: impl FnMut(anyhow::Result<Report>) -> ExitCode,
    ) -> anyhow::Result<Outcome> {
        signals::install()?;
        let live = Live::default();
        let (tx, rx) = mpsc::channel::<anyhow::Result<Report>>();
        thread::scope(|scope| {
            let spawn = |socket: TcpStream, peer: String| {
                let tx = tx.clone();
                let id = live.add(&socket);
                let live = &live;
                scope.spawn(move || {
                    let _ = tx.send(self.session(socket, &peer, live, id));
                });
            };
            let mut tally = Tally::default();
            if let Link::Connect(dest) = &self.cfg.net.link {
                let socket =
                    net::connect(dest, self.cfg.net.connect_timeout, self.cfg.net.retries)?;
                spawn(socket, dest.clone());
                tally.started = 1;
            }
            loop {
                while let Ok(result) = rx.try_recv() {
                    tally.count(done(result));
                }
                if let Some(signal) = signals::pending() {
                    live.stop_all();
                    tally.outcome.stopped_by = Some(signal);
                    break;
                }
                let one_shot_over = tally.started > 0 && !self.cfg.keep_open;
                if one_shot_over && live.count() == 0 && tally.outcome.served == tally.started {
                    break;
                }
                match self.listener.as_ref().filter(|_| !one_shot_over) {
                    Some(listener) => {
                        if let Some((socket, peer)) = net::accept_within(listener, TICK)? {
                            if live.count() >= self.cfg.max_conns as usize {
                                turn_away(socket, self.cfg.max_conns);
                            } else {
                                spawn(socket, peer.to_string());
                                tally.started += 1;
                            }
                        }
                    }
                    // Nothing to accept: wait on the sessions, so the end is seen at once.
                    None => {
                        if let Ok(result) = rx.recv_timeout(TICK) {
                            tally.count(done(result));
                        }
                    }
                }
            }
            // Sessions cut short by a signal still report, then the run ends.
            while live.count() > 0 || tally.outcome.served < tally.started {
                let Ok(result) = rx.recv_timeout(Duration::from_secs(5)) else { break };
                tally.count(done(result));
            }
            Ok(tally.finish())
        })
    }

    /// One session on its own thread. A session that panics still ends as a session: counted,
    /// reported, gone from the live list (else a one-shot receiver would wait for it forever).
    fn session(
        &self,
        socket: TcpStream,
        peer: &str,
        live: &Live,
        id: u64,
    ) -> anyhow::Result<Report> {
        let session = Session { cfg: &self.cfg, dest: &self.dest };
        let serve = || session.serve(socket, || live.started_data(id));
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(serve));
        live.remove(id);
        served
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the session failed unexpectedly")))
            .with_context(|| format!("receiving from {peer}"))
    }
}

/// Tells a sender that came while all `max` sessions run that it must wait. The greeting echoes
/// the sender's AUTH flag, so that a sender with a token reads on to "busy" instead of stopping
/// at a flag mismatch.
fn turn_away(mut socket: TcpStream, max: u32) {
    // At most this many answers at once; past that a sender is just closed on (it sees the
    // connection end): a flood of connections must not become a flood of threads.
    static ANSWERING: AtomicUsize = AtomicUsize::new(0);
    if ANSWERING.fetch_add(1, Ordering::AcqRel) >= TURN_AWAY_MAX {
        ANSWERING.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let spawned = thread::Builder::new().name("zcp-busy".into()).spawn(move || {
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                ANSWERING.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _done = Done;
        let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
        let Ok(theirs) = protocol::read_hello(&mut socket) else { return };
        let ours = handshake::hello(theirs.auth(), auth::nonce().unwrap_or_default());
        if protocol::write_hello(&mut socket, ours).is_ok() {
            peer::fail_with(
                &mut socket,
                ErrorCode::Busy,
                &format!("receiver busy: {max} sessions running, try again later"),
            );
        }
    });
    if spawned.is_err() {
        ANSWERING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The sessions running now, so a signal can tell each sender and unblock its thread.
#[derive(Default)]
struct Live {
    sessions: Mutex<Vec<LiveSession>>,
    next: AtomicU64,
}

/// A running session's socket, and whether file data flows on it yet.
struct LiveSession {
    id: u64,
    socket: TcpStream,
    in_data: bool,
}

impl Live {
    fn add(&self, socket: &TcpStream) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let (Ok(socket), Ok(mut list)) = (socket.try_clone(), self.sessions.lock()) {
            list.push(LiveSession { id, socket, in_data: false });
        }
        id
    }

    fn started_data(&self, id: u64) {
        if let Ok(mut list) = self.sessions.lock() {
            list.iter_mut().filter(|s| s.id == id).for_each(|s| s.in_data = true);
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut list) = self.sessions.lock() {
            list.retain(|s| s.id != id);
        }
    }

    fn count(&self) -> usize {
        self.sessions.lock().map_or(0, |l| l.len())
    }

    /// Tells every sender that the receiver shuts down and unblocks the session threads;
    /// their part files stay for a later resume.
    fn stop_all(&self) {
        // Handles are taken out of the lock first: a write to a peer that stopped reading may
        // block (up to a second), and session threads must still be able to leave the list.
        let sockets: Vec<(TcpStream, bool)> = match self.sessions.lock() {
            Ok(list) => {
                list.iter().filter_map(|s| Some((s.socket.try_clone().ok()?, s.in_data))).collect()
            }
            Err(_) => return,
        };
        for (socket, in_data) in sockets {
            if in_data {
                let msg = Message::Error {
                    code: ErrorCode::Interrupted,
                    message: "receiver shut down".into(),
                };
                let _ = socket.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = protocol::write_message(&mut &socket, &msg);
            }
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}
