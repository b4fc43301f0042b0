//! The user-space TLS record layer, for `--encrypt` where the kernel cannot seal records: the
//! session keeps a TCP socket (the end of a private loopback connection), so every data path
//! works unchanged, and two threads move its bytes through rustls and the network socket, one
//! each way. Records carry up to 16 KiB (the TLS maximum), each direction reads 256 KiB per
//! call. A record that does not authenticate ends both directions and is remembered, so the
//! session's error can name it (`Tunnel::conclude`).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, anyhow};
use rustls::Connection;

/// Bytes read per call from either socket.
const BATCH: usize = 256 << 10;
/// How long `finish` waits for the session's last bytes to be sealed and sent.
const FLUSH: Duration = Duration::from_secs(30);
/// How long `finish` then waits for the peer to close its side of the stream.
const LINGER: Duration = Duration::from_secs(2);

/// What both threads share: the TLS state, an order lock that keeps records on the wire in
/// the order rustls numbered them, and the first failure.
struct Shared {
    conn: Mutex<Connection>,
    wire_order: Mutex<()>,
    failure: Mutex<Option<Failure>>,
}

/// Why the record layer stopped: the TLS stream itself failed (a record that did not
/// authenticate, an alert, a cut without close_notify: the session cannot know, so this says
/// why), or a socket did (the session sees that on its own socket: nothing to add).
#[derive(Debug)]
pub enum Failure {
    Tls(String),
    Io,
}

impl From<String> for Failure {
    fn from(_socket_error: String) -> Failure {
        Failure::Io
    }
}

/// The two running threads of one connection.
pub struct Pump {
    shared: Arc<Shared>,
    wire: TcpStream,
    outbound: JoinHandle<()>,
    inbound: JoinHandle<()>,
    done: Receiver<Way>,
}

/// Which thread: session to network, or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Out,
    In,
}

impl Pump {
    /// Starts the record layer for `conn`, whose handshake is over, on the network socket
    /// `wire`; `wire` is replaced by the session's end of a new loopback connection.
    pub fn start(mut conn: Connection, wire: &mut TcpStream) -> anyhow::Result<Pump> {
        // The outbound thread seals each read whole; what it seals it writes at once.
        conn.set_buffer_limit(None);
        let (session, inner) = loopback_pair()?;
        let wire = std::mem::replace(wire, session);
        // The handshake's deadline must not outlive it: a peer may rightly be silent for a
        // long time (a receiver during the data). Idle limits apply to the session's socket.
        wire.set_read_timeout(None).context("clearing the socket's read timeout")?;
        wire.set_write_timeout(None).context("clearing the socket's write timeout")?;
        let shared = Arc::new(Shared {
            conn: Mutex::new(conn),
            wire_order: Mutex::new(()),
            failure: Mutex::default(),
        });
        let (tx, done) = mpsc::channel();
        let outbound = spawn(Way::Out, &shared, &inner, &wire, &tx)?;
        let inbound = spawn(Way::In, &shared, &inner, &wire, &tx)?;
        Ok(Pump { shared, wire, outbound, inbound, done })
    }

    /// Waits until what the session wrote is on the wire (the session must have closed its
    /// socket) and, briefly, for the peer to close its side; then stops both threads. Returns
    /// the failure of the encrypted stream, if there was one.
    pub fn finish(self) -> Option<Failure> {
        let mut out_done = false;
        let mut in_done = false;
        let mut wait = FLUSH;
        while !(out_done && in_done) {
            match self.done.recv_timeout(wait) {
                Ok(Way::Out) => out_done = true,
                Ok(Way::In) => in_done = true,
                Err(_) => break,
            }
            if out_done {
                wait = LINGER;
            }
        }
        let _ = self.wire.shutdown(Shutdown::Both);
        let _ = self.outbound.join();
        let _ = self.inbound.join();
        lock(&self.shared.failure).take()
    }
}

fn spawn(
    way: Way,
    shared: &Arc<Shared>,
    inner: &TcpStream,
    wire: &TcpStream,
    done: &Sender<Way>,
) -> anyhow::Result<JoinHandle<()>> {
    let (shared, done) = (shared.clone(), done.clone());
    let inner = inner.try_clone().context("duplicating the loopback socket")?;
    let wire = wire.try_clone().context("duplicating the socket")?;
    let name = match way {
        Way::Out => "tls-out",
        Way::In => "tls-in",
    };
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let ended = match way {
                Way::Out => outbound(&shared, inner.try_clone(), &wire),
                Way::In => inbound(&shared, inner.try_clone(), &wire),
            };
            if let Err(why) = ended {
                let mut failure = lock(&shared.failure);
                failure.get_or_insert(why);
                drop(failure);
                let _ = inner.shutdown(Shutdown::Both);
                let _ = wire.shutdown(Shutdown::Both);
            }
            let _ = done.send(way);
        })
        .context("starting the TLS thread")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Session → network: reads what the session wrote, seals it into records and writes them
/// straight from rustls's buffers to the wire (one copy in user space, into the record being
/// sealed). The session closing its socket sends TLS close_notify and half-closes the wire.
/// The TLS state stays locked while the records are written: zcp's protocol never has both
/// ends sending bulk data at once, so the inbound thread waits at most for one batch.
fn outbound(
    shared: &Shared,
    inner: io::Result<TcpStream>,
    wire: &TcpStream,
) -> Result<(), Failure> {
    let mut inner = inner.map_err(|e| format!("duplicating the loopback socket: {e}"))?;
    let mut plain = vec![0u8; BATCH];
    loop {
        let n = match inner.read(&mut plain) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The session's socket was reset (it failed): close the stream all the same.
            Err(_) => 0,
        };
        let mut conn = lock(&shared.conn);
        match n {
            0 => conn.send_close_notify(),
            n => conn.writer().write_all(&plain[..n]).map_err(|e| format!("sealing: {e}"))?,
        }
        let _order = lock(&shared.wire_order);
        while conn.wants_write() {
            conn.write_tls(&mut &*wire).map_err(|e| format!("sending: {e}"))?;
        }
        if n == 0 {
            let _ = wire.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

/// Network → session: reads records, opens them, hands the plaintext to the session. A record
/// that does not authenticate sends the peer an alert and fails; the peer's close_notify
/// half-closes the session's socket (it reads the end of the stream).
fn inbound(shared: &Shared, inner: io::Result<TcpStream>, wire: &TcpStream) -> Result<(), Failure> {
    let mut inner = inner.map_err(|e| format!("duplicating the loopback socket: {e}"))?;
    let mut sealed = vec![0u8; BATCH];
    // Opened records are never longer than sealed ones; one more record's room to spare.
    let mut plain = vec![0u8; BATCH + (64 << 10)];
    loop {
        let n = match (&*wire).read(&mut sealed) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Failure::Io),
        };
        let (opened, closed) = open(shared, &sealed[..n], &mut plain, wire)?;
        inner
            .write_all(&plain[..opened])
            .map_err(|e| format!("handing data to the session: {e}"))?;
        if closed {
            let _ = inner.shutdown(Shutdown::Write);
            return Ok(());
        }
        if n == 0 {
            return Err(Failure::Tls(
                "the peer closed the connection without ending the encrypted stream: the data \
                 may be cut short"
                    .into(),
            ));
        }
    }
}

/// Feeds `sealed` (empty: the peer closed TCP) to rustls and opens its records into `plain`.
/// How many bytes were opened, and whether the peer ended the stream (close_notify).
fn open(
    shared: &Shared,
    mut sealed: &[u8],
    plain: &mut [u8],
    wire: &TcpStream,
) -> Result<(usize, bool), Failure> {
    let mut conn = lock(&shared.conn);
    let mut opened = 0;
    loop {
        // An empty read tells rustls the connection ended.
        conn.read_tls(&mut sealed).map_err(|e| format!("receiving: {e}"))?;
        let state = match conn.process_new_packets() {
            Ok(state) => state,
            Err(e) => return Err(Failure::Tls(refuse(conn, shared, wire, &e))),
        };
        let (more, ended) = drain(&mut conn, &mut plain[opened..]).map_err(Failure::from)?;
        opened += more;
        if sealed.is_empty() {
            return Ok((opened, ended || state.peer_has_closed()));
        }
    }
}

/// Moves the plaintext rustls holds into `plain`: how much, and whether the stream ended.
fn drain(conn: &mut Connection, plain: &mut [u8]) -> Result<(usize, bool), String> {
    let mut filled = 0;
    loop {
        if filled == plain.len() {
            return Err("more plaintext than records could hold".into());
        }
        match conn.reader().read(&mut plain[filled..]) {
            Ok(0) => return Ok((filled, true)),
            Ok(k) => filled += k,
            // WouldBlock: nothing more for now; UnexpectedEof: the caller sees the TCP end.
            Err(_) => return Ok((filled, false)),
        }
    }
}

/// Sends the alert rustls queued for a record it refused, and says what went wrong.
fn refuse(
    mut conn: MutexGuard<'_, Connection>,
    shared: &Shared,
    wire: &TcpStream,
    e: &rustls::Error,
) -> String {
    let mut alert = Vec::new();
    while conn.wants_write() && conn.write_tls(&mut alert).is_ok() {}
    let order = lock(&shared.wire_order);
    drop(conn);
    let _ = (&*wire).write_all(&alert);
    drop(order);
    linger(wire);
    match e {
        rustls::Error::DecryptError => {
            "a TLS record did not authenticate: the data was altered on the way (nothing more \
             was accepted)"
                .to_string()
        }
        rustls::Error::AlertReceived(alert) => {
            format!(
                "the peer ended the encrypted stream with a TLS alert ({alert:?}): it received data that was altered on the way, or failed"
            )
        }
        other => format!("the encrypted stream failed: {other}"),
    }
}

/// Half-closes `wire` and reads what the peer still sends, for up to `LINGER`, so that the
/// alert reaches it before the close (closing with unread bytes would reset the connection,
/// and a reset can overtake the alert).
fn linger(wire: &TcpStream) {
    let _ = wire.shutdown(Shutdown::Write);
    let until = std::time::Instant::now() + LINGER;
    let mut sink = [0u8; 64 << 10];
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        if left.is_zero() || wire.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&*wire).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// A connected pair of loopback TCP sockets: the session's end and the record layer's. The
/// listener takes only the connection this function made.
fn loopback_pair() -> anyhow::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .or_else(|_| TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))))
        .context("listening on loopback for the TLS record layer")?;
    let addr = listener.local_addr().context("reading the loopback address")?;
    let session = TcpStream::connect(addr).context("connecting over loopback")?;
    let ours = session.local_addr().context("reading the loopback address")?;
    for _ in 0..16 {
        let (inner, from) = listener.accept().context("accepting over loopback")?;
        if from == ours {
            for s in [&session, &inner] {
                s.set_nodelay(true).context("setting TCP_NODELAY")?;
            }
            return Ok((session, inner));
        }
    }
    Err(anyhow!("another process kept connecting to the TLS record layer's loopback port"))
}
