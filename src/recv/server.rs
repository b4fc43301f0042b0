//! The receiving end as a process: binds `--listen` (or connects, for reverse connections),
//! lets each connection authenticate in a `Lobby` (a failed one is logged and ignored), serves
//! the first authenticated sender or, with `--keep-open`, many at once (each on its own thread,
//! at most `--max-conns`, the rest told "busy"), and stops cleanly on Ctrl-C or SIGTERM,
//! telling every running sender. A one-shot receiver whose sender was cut off waits for it to
//! come back (`crate::manual::comeback`).

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::session::{SHUT_DOWN, Session};
use crate::config::{Link, RecvConfig, Sessions};
use crate::copy::socket::Socket;
use crate::disk::Destination;
use crate::error::ExitCode;
use crate::link::auth::{Direction, Token};
use crate::link::lobby::{Lobby, Ticket};
use crate::link::peer::Deadline;
use crate::link::tls::{self, Channel};
use crate::link::{handshake, net, peer};
use crate::protocol::{self, ErrorCode, Message};
use crate::report::Report;
use crate::role::Role;
use crate::sys::signals;

/// How often the serving loop looks at signals and finished sessions.
const TICK: Duration = Duration::from_millis(100);
/// How long sessions cut short by a signal have to report. Each stops within one write (its
/// data path ticks after every call); one that has not reported by then is stuck in a call no
/// flag reaches, such as a write to a pipe nobody reads.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// A receiver, bound (or about to connect) and ready to serve.
pub struct Receiver {
    listener: Option<TcpListener>,
    dest: Destination,
    cfg: RecvConfig,
    /// One session or many (`--keep-open`).
    sessions: Sessions,
    /// The options of a session that comes back after one was cut off (`--resume-wait`): the
    /// files that arrived whole before the cut are skipped, not refused as existing.
    comeback: RecvConfig,
}

/// How a receiver's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The exit code: the last failed session's (a one-shot receiver's: its last session's, so
    /// a sender that came back and finished makes up for the cut one), or the signal's.
    pub code: ExitCode,
    /// Sessions that authenticated and ran.
    pub served: u64,
    /// Of those, the ones that failed.
    pub failed: u64,
    /// Set when a signal stopped the receiver.
    pub stopped_by: Option<nix::sys::signal::Signal>,
}

/// How the sessions that ended went, while the receiver runs.
#[derive(Default)]
struct Tally {
    outcome: Outcome,
    /// A one-shot receiver's code is its last session's: a sender that came back and finished
    /// makes up for the session that was cut off.
    last_wins: bool,
}

impl Tally {
    /// Counts one finished session and its exit code.
    fn count(&mut self, code: ExitCode) {
        self.outcome.served += 1;
        if code != ExitCode::Success {
            self.outcome.failed += 1;
        }
        if code != ExitCode::Success || self.last_wins {
            self.outcome.code = code;
        }
    }

    /// The outcome; a signal that stopped the receiver decides its exit code.
    fn finish(mut self) -> Outcome {
        if let Some(signal) = self.outcome.stopped_by {
            self.outcome.code = crate::error::ExitCode::stopped_by(signal);
        }
        self.outcome
    }
}

impl Receiver {
    /// Checks `--output` and binds `--listen` (nothing is bound for `--connect`). Signals are
    /// routed to the stop flag from here on, so one that comes right after `listening on` is
    /// handled like any other instead of killing the process.
    pub fn bind(cfg: RecvConfig, sessions: Sessions) -> anyhow::Result<Receiver> {
        signals::install()?;
        let dest = Destination::resolve(&cfg.output)?;
        let listener = match &cfg.net.link {
            Link::Listen(addr) => Some(net::listen(addr)?),
            Link::Connect(_) => None,
        };
        let mut comeback = cfg.clone();
        comeback.policy.skip_existing = true;
        Ok(Receiver { listener, dest, cfg, sessions, comeback })
    }

    /// Whether this receiver serves one sender (and one that comes back), not `--keep-open`.
    fn once(&self) -> bool {
        matches!(self.sessions, Sessions::Once { .. })
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

    /// The token a sender needs; `None` with `--no-auth`.
    pub fn token(&self) -> Option<&Token> {
        self.cfg.token.as_ref()
    }

    /// Whether this receiver made its token up (and the user must be shown it).
    pub fn token_generated(&self) -> bool {
        self.cfg.token_generated
    }

    /// Serves one session, or sessions until a signal with `--keep-open`. Each finished
    /// session's report (or error) goes to `done`, which returns its exit code. Connections
    /// wait in a `Lobby` until they authenticate; only then do they count as sessions. A
    /// one-shot receiver whose session was cut off mid-transfer listens again for
    /// `--resume-wait`, for a sender to come back and resume.
    /// `stuck` is called when sessions stopped by a signal have not reported within
    /// `STOP_GRACE` (counted as failed, with how many), before the run waits for them: the
    /// caller may end the process there rather than wait on a call that does not return.
    pub fn run(
        &self,
        mut done: impl FnMut(anyhow::Result<Report>) -> ExitCode,
        stuck: impl FnOnce(Outcome, u64),
    ) -> anyhow::Result<Outcome> {
        signals::install()?;
        let (running, lobby) = (Running::default(), Lobby::default());
        let (tx, rx) = mpsc::channel::<Ended>();
        thread::scope(|scope| {
            let mut serving = Serving::new(self.once());
            if let Link::Connect(dest) = &self.cfg.net.link {
                let socket =
                    net::connect(dest, self.cfg.net.connect_timeout, self.cfg.net.retries)?;
                let connection = socket.try_clone().map(Socket::Tcp);
                let (tx, running, id) = (tx.clone(), &running, running.add(connection.ok()));
                net::connection_thread(scope, move || {
                    let _ = tx.send(self.dialed(socket, dest, running, id));
                })?;
            }
            loop {
                while let Ok(ended) = rx.try_recv() {
                    self.ended(ended, &mut serving, (&running, &lobby), &mut done)?;
                }
                if let Some(signal) = signals::pending() {
                    lobby.close();
                    running.stop_all();
                    serving.tally.outcome.stopped_by = Some(signal);
                    break;
                }
                let one_shot_over = self.once() && running.admitted() >= running.allowed();
                if one_shot_over && !serving.stopped_listening {
                    serving.stopped_listening = true;
                    serving.comeback_until = None;
                    // No more connections: a sender that comes now is refused at once (or
                    // reset, if it was already queued) rather than left waiting for a greeting
                    // until this session ends.
                    if let Some(listener) = serving.listener(self) {
                        net::stop_listening(listener);
                    }
                }
                if one_shot_over {
                    lobby.close();
                    // Every admitted session reports once: when all have, none is left.
                    if serving.tally.outcome.served == running.admitted() {
                        break;
                    }
                }
                if serving.comeback_until.is_some_and(|until| Instant::now() >= until) {
                    crate::terminal::line(
                        "zcp: no sender came back within --resume-wait: giving up",
                    );
                    lobby.close();
                    break;
                }
                match serving.listener(self).filter(|_| !one_shot_over) {
                    Some(listener) => {
                        if let Some((socket, peer, ticket)) =
                            net::accept_into(listener, &lobby, TICK)?
                        {
                            let (tx, running) = (tx.clone(), &running);
                            net::connection_thread(scope, move || {
                                if let Some(ended) = self.welcome(socket, peer, ticket, running) {
                                    let _ = tx.send(ended);
                                }
                            })?;
                        }
                    }
                    // Nothing to accept: wait on the sessions, so the end is seen at once.
                    None => {
                        if let Ok(ended) = rx.recv_timeout(TICK) {
                            self.ended(ended, &mut serving, (&running, &lobby), &mut done)?;
                        }
                    }
                }
            }
            // Sessions cut short by a signal still report, then the run ends.
            let deadline = Instant::now() + STOP_GRACE;
            while serving.tally.outcome.served < running.admitted() {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(ended) = rx.recv_timeout(left) else { break };
                serving.tally.count(done(ended.result));
            }
            let unreported = running.admitted() - serving.tally.outcome.served;
            if unreported > 0 {
                let mut outcome = serving.tally.outcome;
                (outcome.served, outcome.failed) =
                    (outcome.served + unreported, outcome.failed + unreported);
                stuck(Tally { outcome, last_wins: false }.finish(), unreported);
            }
            Ok(serving.tally.finish())
        })
    }

    /// A session ended: `done` reports it. When it was this one-shot receiver's session and
    /// it broke off mid-transfer, the receiver listens again (the first listener was shut) and
    /// admits one more sender, for `--resume-wait`, saying so.
    fn ended(
        &self,
        ended: Ended,
        serving: &mut Serving,
        (running, lobby): (&Running, &Lobby),
        done: &mut impl FnMut(anyhow::Result<Report>) -> ExitCode,
    ) -> anyhow::Result<()> {
        let wait = self.comeback_wait(&ended);
        serving.tally.count(done(ended.result));
        let (Some(wait), Some(bound)) = (wait, self.local_addr()?) else { return Ok(()) };
        // A session cut off at once may end before the loop shut the listener; else the shut
        // one still holds the port, and the new one shares it (SO_REUSEADDR).
        if serving.stopped_listening {
            serving.rebound = None;
            serving.rebound = Some(net::listen(&bound.to_string())?);
            serving.stopped_listening = false;
        }
        serving.comeback_until = Some(Instant::now() + wait);
        running.allow_one_more();
        lobby.reopen();
        let secs = wait.as_secs_f64();
        crate::terminal::line(format!(
            "zcp: waiting {secs:.0} s on {bound} for the sender to run the same command again \
             and resume (the same token; --resume-wait; Ctrl-C to stop)"
        ));
        Ok(())
    }

    /// How long to wait for the sender of `ended` to come back: only for a one-shot receiver
    /// with `--resume-wait` (which only a listening one has), whose session broke off (a
    /// connection failure, exit 3) after file data began to flow, so that something is left to
    /// resume. Not into standard output: what went there cannot be taken back, and a second run
    /// would repeat it.
    fn comeback_wait(&self, ended: &Ended) -> Option<Duration> {
        let Sessions::Once { resume_wait: Some(wait) } = self.sessions else { return None };
        let to_stdout = matches!(self.dest, Destination::Stdout);
        let broke = match &ended.result {
            Err(e) => crate::error::exit_code(e) == ExitCode::Connection,
            Ok(_) => false,
        };
        (!to_stdout && broke && ended.in_data && signals::pending().is_none()).then_some(wait)
    }

    /// An accepted connection: its handshake in the lobby, then, once the sender has
    /// authenticated, a session, or "busy" when this receiver serves all it may. `None` when
    /// it never became a session.
    fn welcome(
        &self,
        socket: TcpStream,
        peer: SocketAddr,
        ticket: Ticket<'_>,
        running: &Running,
    ) -> Option<Ended> {
        let (greeted, channel) =
            ticket.greet(socket, peer, |s| self.handshake(s, Direction::Accepted))?;
        let (limit, busy) = match self.sessions {
            Sessions::KeepOpen { max_conns } => (max_conns as usize, Some(max_conns)),
            Sessions::Once { .. } => (1, None),
        };
        let Some(id) = running.admit(channel.socket(), limit, self.once()) else {
            turn_away(channel, busy);
            return None;
        };
        Some(self.session((greeted, channel), &peer.to_string(), running, id))
    }

    /// The one connection of `--connect`, counted as a session from the start: a failed
    /// handshake fails the run.
    fn dialed(&self, socket: TcpStream, peer: &str, running: &Running, id: u64) -> Ended {
        match self.handshake(socket, Direction::Connected) {
            Ok(greeted) => {
                // A signal now stops the session through the channel's socket, which is not
                // the connection when the record layer runs in user space.
                running.rebind(id, greeted.1.socket());
                self.session(greeted, peer, running, id)
            }
            Err(e) => {
                let in_data = running.remove(id);
                Ended { result: Err(e.context(format!("receiving from {peer}"))), in_data }
            }
        }
    }

    /// The receiver's handshake on the `channel` `tls::open` makes of `socket` (inside TLS
    /// with `--encrypt`); the deadline it ran against goes on to bound the offer.
    fn handshake(
        &self,
        socket: TcpStream,
        direction: Direction,
    ) -> anyhow::Result<(Deadline, Channel)> {
        let mut channel = tls::open(socket, direction, self.cfg.net.encrypt, Role::Sender)?;
        let mut deadline = Deadline::new(channel.socket(), channel.time_left())?;
        let (token, binding) = (self.cfg.token.as_ref(), channel.binding().copied());
        let socket = channel.socket_mut();
        handshake::receiver(socket, &mut deadline, direction, token, binding.as_ref())?;
        Ok((deadline, channel))
    }

    /// One session on its own thread. A session that panics still ends as a session: counted,
    /// reported, off the running list (else a one-shot receiver would wait for it forever).
    fn session(
        &self,
        (greeted, mut channel): (Deadline, Channel),
        peer: &str,
        running: &Running,
        id: u64,
    ) -> Ended {
        // A one-shot receiver's later session is a sender that came back (`--resume-wait`).
        let cfg = if self.once() && id > 0 { &self.comeback } else { &self.cfg };
        let session = Session { cfg, dest: &self.dest, encryption: channel.encryption() };
        let serve = || session.serve(channel.socket_mut(), greeted, || running.started_data(id));
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(serve));
        let in_data = running.remove(id);
        let served =
            served.unwrap_or_else(|_| Err(anyhow::anyhow!("the session failed unexpectedly")));
        // A signal shut the session's socket: what broke is the consequence, the signal the cause.
        let served = match (served, signals::pending()) {
            (Err(e), Some(signal)) => Err(crate::error::stopped(&e, signal)),
            (served, _) => served,
        };
        let result = channel.close(served).with_context(|| format!("receiving from {peer}"));
        Ended { result, in_data }
    }
}

/// How a session ended, as the serving loop needs it.
struct Ended {
    result: anyhow::Result<Report>,
    /// Whether file data had begun to flow: a break after that left something to resume.
    in_data: bool,
}

/// The serving loop's state between ticks.
struct Serving {
    tally: Tally,
    stopped_listening: bool,
    /// The listener bound again while a sender cut off is awaited (the first one was shut).
    rebound: Option<TcpListener>,
    /// Until when a sender cut off mid-transfer may come back.
    comeback_until: Option<Instant>,
}

impl Serving {
    fn new(one_shot: bool) -> Serving {
        let tally = Tally { last_wins: one_shot, ..Tally::default() };
        Serving { tally, stopped_listening: false, rebound: None, comeback_until: None }
    }

    /// The listener that takes connections now.
    fn listener<'a>(&'a self, receiver: &'a Receiver) -> Option<&'a TcpListener> {
        self.rebound.as_ref().or(receiver.listener.as_ref())
    }
}

/// Tells an authenticated sender that came while this receiver serves all it may (`max`
/// sessions with `--keep-open`, else its one sender) that it must try later.
fn turn_away(mut channel: Channel, max: Option<u32>) {
    let why = match max {
        Some(max) => {
            let running = crate::units::counted(u64::from(max), "session");
            format!("receiver busy: {running} running, try again later")
        }
        None => "receiver busy: it serves another sender and then exits".to_string(),
    };
    peer::fail_with(channel.socket_mut(), ErrorCode::Busy, &why);
}

/// The sessions running now, so a signal can tell each sender and unblock its thread.
#[derive(Default)]
struct Running {
    sessions: Mutex<Vec<RunningSession>>,
    next: AtomicU64,
    /// Sessions ever admitted: a one-shot receiver ends once its one has.
    admitted: AtomicU64,
    /// More sessions a one-shot receiver may admit than its first: senders that come back.
    comebacks: AtomicU64,
}

/// A running session's socket, and whether file data flows on it yet.
struct RunningSession {
    id: u64,
    socket: Socket,
    in_data: bool,
}

impl Running {
    /// Counts a session in unconditionally (the one of `--connect`, on its `connection`).
    fn add(&self, connection: Option<Socket>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let (Some(socket), Ok(mut list)) = (connection, self.sessions.lock()) {
            list.push(RunningSession { id, socket, in_data: false });
        }
        self.admitted.fetch_add(1, Ordering::AcqRel);
        id
    }

    /// Counts a session in when fewer than `limit` run (and, `once`, none ran before).
    fn admit(&self, socket: &Socket, limit: usize, once: bool) -> Option<u64> {
        let socket = socket.try_clone().ok()?;
        let mut list = self.sessions.lock().ok()?;
        if list.len() >= limit || (once && self.admitted() >= self.allowed()) {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        list.push(RunningSession { id, socket, in_data: false });
        self.admitted.fetch_add(1, Ordering::AcqRel);
        Some(id)
    }

    /// Points session `id`, counted in on its connection, at `socket`, the channel's socket
    /// its frames go through (the record layer's Unix socket when it runs in user space).
    fn rebind(&self, id: u64, socket: &Socket) {
        if let (Ok(socket), Ok(mut list)) = (socket.try_clone(), self.sessions.lock())
            && let Some(session) = list.iter_mut().find(|s| s.id == id)
        {
            session.socket = socket;
        }
    }

    fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Acquire)
    }

    /// How many sessions a one-shot receiver may admit in all.
    fn allowed(&self) -> u64 {
        1 + self.comebacks.load(Ordering::Acquire)
    }

    /// Lets a one-shot receiver admit one more session: its sender coming back.
    fn allow_one_more(&self) {
        self.comebacks.fetch_add(1, Ordering::AcqRel);
    }

    fn started_data(&self, id: u64) {
        if let Ok(mut list) = self.sessions.lock() {
            list.iter_mut().filter(|s| s.id == id).for_each(|s| s.in_data = true);
        }
    }

    /// Takes session `id` off the list; whether file data had begun to flow in it.
    fn remove(&self, id: u64) -> bool {
        let Ok(mut list) = self.sessions.lock() else { return false };
        let in_data = list.iter().any(|s| s.id == id && s.in_data);
        list.retain(|s| s.id != id);
        in_data
    }

    /// Tells every sender that the receiver shuts down and unblocks the session threads;
    /// their part files stay for a later resume.
    fn stop_all(&self) {
        // Handles are taken out of the lock first: a write to a peer that stopped reading may
        // block (up to a second), and session threads must still be able to leave the list.
        let sockets: Vec<(Socket, bool)> = match self.sessions.lock() {
            Ok(list) => {
                list.iter().filter_map(|s| Some((s.socket.try_clone().ok()?, s.in_data))).collect()
            }
            Err(_) => return,
        };
        for (socket, in_data) in sockets {
            if in_data {
                let msg =
                    Message::Error { code: ErrorCode::Interrupted, message: SHUT_DOWN.into() };
                let _ = socket.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = protocol::write_message(&mut &socket, &msg);
            }
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}
