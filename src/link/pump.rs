//! The user-space TLS record layer, for `--encrypt` where the kernel cannot seal records: the
//! session gets its end of a private Unix stream pair (`Socket::Local`), on which every data
//! path works unchanged, and two threads seal and open its records (`records`) between the
//! pair's other end and the network socket, one each way. Records carry 16 KiB (the TLS maximum); the sender reads up to 16 of
//! them with one `readv` straight into their slots, seals them in place and writes them with one
//! `write`; the receiver opens what one `read` brought in place and hands the plaintext over
//! with one `writev`. A record that does not authenticate ends both directions and is
//! remembered, so the session's error can name it (`Channel::close`).

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Range;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, anyhow};
use rustls::ExtractedSecrets;

use super::records::{
    ALERT, APPLICATION_DATA, CLOSE_NOTIFY, HEADER, MAX_PLAIN, MAX_RECORD, OpenError, Opener, Sealer,
};
use crate::error::SessionError;

/// Send buffer of each end of the session's socket pair.
const PAIR_BUFFER: usize = 1 << 20;
/// How long `finish` waits for the session's last bytes to be sealed and sent.
const FLUSH: Duration = Duration::from_secs(30);
/// How long `finish` then waits for the peer to close its side of the stream.
const LINGER: Duration = Duration::from_secs(2);

/// What both threads share: the sealer (the inbound thread seals an alert with it; holding it
/// while writing keeps records on the wire in sequence order) and the first failure.
struct Shared {
    sealer: Mutex<Sealer>,
    failure: Mutex<Option<Failure>>,
}

/// Why the record layer stopped: the TLS stream itself failed (a record that did not
/// authenticate, an alert: the session cannot know, so this says why), or a socket did, or the
/// peer went away without close_notify (the session sees that on its own socket: nothing to
/// add).
#[derive(Debug)]
pub enum Failure {
    Tls(String),
    Io,
}

impl From<io::Error> for Failure {
    fn from(_socket_error: io::Error) -> Failure {
        Failure::Io
    }
}

/// The two running threads of one connection.
pub struct Pump {
    shared: Arc<Shared>,
    wire: Wire,
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
    /// Starts the record layer with the keys of a finished handshake on the network socket
    /// `wire`, which it takes; returns it with the session's end of its socket pair.
    pub fn start(
        secrets: &ExtractedSecrets,
        wire: TcpStream,
    ) -> anyhow::Result<(Pump, UnixStream)> {
        let sealer = Sealer::new(secrets.tx.0, &secrets.tx.1).map_err(|e| anyhow!(e))?;
        let opener = Opener::new(secrets.rx.0, &secrets.rx.1).map_err(|e| anyhow!(e))?;
        let (session, inner) = socket_pair()?;
        // The handshake's deadline must not outlive it: a peer may rightly be silent for a
        // long time (a receiver during the data). Idle limits apply to the session's socket.
        wire.set_read_timeout(None).context("clearing the socket's read timeout")?;
        wire.set_write_timeout(None).context("clearing the socket's write timeout")?;
        let shared = Arc::new(Shared { sealer: Mutex::new(sealer), failure: Mutex::default() });
        let (tx, done) = mpsc::channel();
        let outbound = spawn(Way::Out, &shared, &inner, &wire, &tx, None)?;
        let inbound = spawn(Way::In, &shared, &inner, &wire, &tx, Some(opener))?;
        Ok((Pump { shared, wire: Wire(wire), outbound, inbound, done }, session))
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
        let _ = self.wire.0.shutdown(Shutdown::Both);
        let _ = self.outbound.join();
        let _ = self.inbound.join();
        lock(&self.shared.failure).take()
    }
}

/// The network socket, shut down both ways when the pump goes without `finish` (a tunnel
/// dropped because the handshake inside it failed): else its threads would wait, with no
/// deadline, on a peer that never closes, and keep the connection open past the pre-auth budget.
struct Wire(TcpStream);

impl Drop for Wire {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

fn spawn(
    way: Way,
    shared: &Arc<Shared>,
    inner: &UnixStream,
    wire: &TcpStream,
    done: &Sender<Way>,
    opener: Option<Opener>,
) -> anyhow::Result<JoinHandle<()>> {
    let (shared, done) = (shared.clone(), done.clone());
    let inner = inner.try_clone().context("duplicating the record layer's socket")?;
    let wire = wire.try_clone().context("duplicating the socket")?;
    let name = match way {
        Way::Out => "tls-out",
        Way::In => "tls-in",
    };
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let ended = match (way, opener) {
                (Way::In, Some(opener)) => inbound(&shared, opener, &inner, &wire),
                _ => outbound(&shared, &inner, &wire),
            };
            if let Err(why) = ended {
                remember(&shared.failure, why);
                let _ = inner.shutdown(Shutdown::Both);
                let _ = wire.shutdown(Shutdown::Both);
            }
            let _ = done.send(way);
        })
        .map_err(|cause| SessionError::ThreadRefused { thread: "the TLS thread", cause }.into())
}

/// Keeps the first failure, except that a failure of the TLS stream replaces a socket error:
/// the socket errors follow from it (the inbound thread lingers after a bad record or an
/// alert, and the outbound one meanwhile finds the wire closed), and only it says why.
fn remember(failure: &Mutex<Option<Failure>>, why: Failure) {
    let mut failure = lock(failure);
    if !matches!(*failure, Some(Failure::Tls(_))) {
        *failure = Some(why);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Records of one batch.
const SLOTS: usize = 16;

/// Session → network: reads what the session wrote straight into the plaintext parts of up to
/// `SLOTS` record slots, seals them in place and writes them at once (full records are as long
/// as their slots, so the batch is contiguous). The session closing its socket sends
/// close_notify and half-closes the wire.
fn outbound(shared: &Shared, inner: &UnixStream, mut wire: &TcpStream) -> Result<(), Failure> {
    let mut batch = vec![0u8; SLOTS * MAX_RECORD];
    loop {
        let n = match read_into_slots(inner, &mut batch) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The session's socket was reset (it failed): close the stream all the same.
            Err(_) => 0,
        };
        let mut sealer = lock(&shared.sealer);
        if n == 0 {
            batch[HEADER..HEADER + 2].copy_from_slice(&CLOSE_NOTIFY);
            let len = sealer.seal(&mut batch, 2, ALERT).map_err(Failure::Tls)?;
            wire.write_all(&batch[..len])?;
            let _ = wire.shutdown(Shutdown::Write);
            return Ok(());
        }
        let mut sealed = 0;
        for (slot, start) in batch.chunks_mut(MAX_RECORD).zip((0..n).step_by(MAX_PLAIN)) {
            let len = (n - start).min(MAX_PLAIN);
            sealed += sealer.seal(slot, len, APPLICATION_DATA).map_err(Failure::Tls)?;
        }
        wire.write_all(&batch[..sealed])?;
    }
}

/// One `readv` into the plaintext part of every slot of `batch`.
fn read_into_slots(inner: &UnixStream, batch: &mut [u8]) -> io::Result<usize> {
    let mut slices: Vec<IoSliceMut<'_>> = batch
        .chunks_mut(MAX_RECORD)
        .map(|slot| IoSliceMut::new(&mut slot[HEADER..HEADER + MAX_PLAIN]))
        .collect();
    let mut reader = inner;
    reader.read_vectored(&mut slices)
}

/// Network → session: reads records, opens each in place, hands the plaintext of all of them
/// to the session with one `writev`. A record refused sends the peer the alert that says why
/// (`bad_record_mac` for one that does not authenticate) and fails; the peer's close_notify
/// half-closes the session's socket.
fn inbound(
    shared: &Shared,
    mut opener: Opener,
    mut inner: &UnixStream,
    wire: &TcpStream,
) -> Result<(), Failure> {
    let mut buf = vec![0u8; SLOTS * MAX_RECORD + MAX_RECORD];
    let mut filled = 0;
    loop {
        let n = match (&*wire).read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            // A cut without close_notify (a network failure, or a forged FIN: a reset would do
            // the same) can only stop the session, whose own framing tells it from an end; it
            // sees its socket end and says "connection lost", as without TLS.
            return Err(Failure::Io);
        }
        filled += n;
        let (plain, used, closed) = match open_all(&mut opener, &mut buf[..filled]) {
            Ok(opened) => opened,
            Err(stop) => return Err(Failure::Tls(refuse(shared, wire, stop))),
        };
        let mut slices: Vec<IoSlice<'_>> =
            plain.iter().map(|r| IoSlice::new(&buf[r.clone()])).collect();
        write_all_vectored(&mut inner, &mut slices)?;
        buf.copy_within(used..filled, 0);
        filled -= used;
        if closed {
            let _ = inner.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

/// Why the inbound stream stopped before its close_notify.
#[derive(Debug)]
enum Stop {
    /// A record zcp refused: the peer is told with the alert that fits.
    Refused(OpenError),
    /// The peer sent a fatal alert (level, description): nothing to tell it.
    Alerted(Vec<u8>),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Refused(OpenError::Forged) => f.write_str(
                "a TLS record did not authenticate: the data was altered on the way (nothing \
                 more was accepted)",
            ),
            Stop::Refused(
                OpenError::Unexpected(what)
                | OpenError::Overflow(what)
                | OpenError::Exhausted(what),
            ) => write!(f, "the encrypted stream is corrupt: {what}"),
            Stop::Alerted(alert) => write!(
                f,
                "the peer ended the encrypted stream with a TLS alert ({alert:?}): it received \
                 data that was altered on the way, or failed"
            ),
        }
    }
}

/// Opens every whole record at the start of `buf`: the plaintext ranges, the bytes they took,
/// and whether the peer ended the stream (close_notify).
fn open_all(opener: &mut Opener, buf: &mut [u8]) -> Result<(Vec<Range<usize>>, usize, bool), Stop> {
    let mut plain = Vec::with_capacity(SLOTS + 1);
    let mut at = 0;
    while let Some(opened) = opener.open(&mut buf[at..]).map_err(Stop::Refused)? {
        let range = at + opened.plain.start..at + opened.plain.end;
        at += opened.len;
        match opened.content_type {
            APPLICATION_DATA => plain.push(range),
            ALERT if buf[range.clone()] == CLOSE_NOTIFY => return Ok((plain, at, true)),
            ALERT => return Err(Stop::Alerted(buf[range].to_vec())),
            other => {
                let why = format!("a TLS record of content type {other:#04x}");
                return Err(Stop::Refused(OpenError::Unexpected(why)));
            }
        }
    }
    Ok((plain, at, false))
}

/// Writes all of `slices` to `to`.
fn write_all_vectored(to: &mut &UnixStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match to.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Tells the peer why its record was refused (the alert `OpenError::alert` names), when the
/// failure is ours to report, and returns why as text.
fn refuse(shared: &Shared, wire: &TcpStream, stop: Stop) -> String {
    if let Stop::Refused(refused) = &stop {
        let mut alert = [0u8; HEADER + 2 + 1 + 16];
        alert[HEADER..HEADER + 2].copy_from_slice(&refused.alert());
        let mut sealer = lock(&shared.sealer);
        if let Ok(len) = sealer.seal(&mut alert, 2, ALERT) {
            let _ = (&*wire).write_all(&alert[..len]);
        }
    }
    linger(wire);
    stop.to_string()
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

/// The session's socket and the record layer's, connected: an `AF_UNIX` stream pair, which
/// costs less per byte than loopback TCP. Every call the data paths and the session make on
/// their end (read, write, `sendfile`, `splice`, `poll`, timeouts, `shutdown`) works the same
/// on a Unix stream socket as on TCP.
fn socket_pair() -> anyhow::Result<(UnixStream, UnixStream)> {
    use nix::sys::socket::{setsockopt, sockopt::SndBuf};
    let (session, inner) = UnixStream::pair().context("making the record layer's socket pair")?;
    for end in [&session, &inner] {
        // A Unix socket's send buffer bounds what is in flight: a batch or two of records, so
        // that neither side blocks after every write (the kernel caps it at wmem_max).
        setsockopt(end, SndBuf, &PAIR_BUFFER).context("sizing the record layer's socket")?;
    }
    Ok((session, inner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::records::Sealer;

    /// The TLS stream's reason survives the socket error that its own linger caused, whichever
    /// thread got there first; else the first failure stays.
    #[test]
    fn a_tls_failure_outranks_a_socket_error() {
        let failure = Mutex::new(None);
        remember(&failure, Failure::Io);
        remember(&failure, Failure::Tls("altered".into()));
        remember(&failure, Failure::Io);
        remember(&failure, Failure::Tls("later".into()));
        assert!(matches!(lock(&failure).take(), Some(Failure::Tls(why)) if why == "altered"));
        remember(&failure, Failure::Io);
        assert!(matches!(lock(&failure).take(), Some(Failure::Io)));
    }

    fn secrets() -> rustls::ConnectionTrafficSecrets {
        rustls::ConnectionTrafficSecrets::Aes256Gcm {
            key: rustls::crypto::cipher::AeadKey::from([3u8; 32]),
            iv: rustls::crypto::cipher::Iv::from([5u8; 12]),
        }
    }

    /// The records `(plaintext, content type)` sealed in order from sequence number 0.
    fn stream(records: &[(&[u8], u8)]) -> Vec<u8> {
        let mut sealer = Sealer::new(0, &secrets()).unwrap();
        let mut out = Vec::new();
        for (plain, content_type) in records {
            let mut slot = vec![0u8; MAX_RECORD];
            slot[HEADER..HEADER + plain.len()].copy_from_slice(plain);
            let len = sealer.seal(&mut slot, plain.len(), *content_type).unwrap();
            out.extend_from_slice(&slot[..len]);
        }
        out
    }

    fn opened(mut bytes: Vec<u8>) -> Result<(Vec<Vec<u8>>, usize, bool), String> {
        let mut opener = Opener::new(0, &secrets()).unwrap();
        let (plain, used, closed) = open_all(&mut opener, &mut bytes).map_err(|e| e.to_string())?;
        Ok((plain.into_iter().map(|r| bytes[r].to_vec()).collect(), used, closed))
    }

    #[test]
    fn records_open_in_order_and_a_partial_one_waits_for_the_rest() {
        let bytes = stream(&[(b"one", APPLICATION_DATA), (b"", APPLICATION_DATA), (b"3", 0x17)]);
        let whole = opened(bytes.clone()).unwrap();
        assert_eq!(whole, (vec![b"one".to_vec(), vec![], b"3".to_vec()], bytes.len(), false));
        // Cut inside the last record: the first two open, the rest stays for the next read.
        let (plain, used, closed) = opened(bytes[..bytes.len() - 1].to_vec()).unwrap();
        assert_eq!((plain.len(), used, closed), (2, bytes.len() - (HEADER + 1 + 1 + 16), false));
    }

    #[test]
    fn close_notify_ends_the_stream_and_what_follows_it_is_ignored() {
        let mut bytes = stream(&[(b"last", APPLICATION_DATA), (&CLOSE_NOTIFY, ALERT)]);
        let end = bytes.len();
        bytes.extend_from_slice(b"garbage after the end");
        assert_eq!(opened(bytes).unwrap(), (vec![b"last".to_vec()], end, true));
    }

    /// The network end of a loopback TCP connection, and the peer's.
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, peer)
    }

    /// What the inbound thread answers a peer that sent `bytes`: its error, and the records it
    /// sent back, opened.
    fn answer_to(bytes: &[u8]) -> (String, Vec<(u8, Vec<u8>)>) {
        let (wire, mut peer) = tcp_pair();
        let (_session, inner) = socket_pair().unwrap();
        let shared = Shared {
            sealer: Mutex::new(Sealer::new(0, &secrets()).unwrap()),
            failure: Mutex::new(None),
        };
        peer.write_all(bytes).unwrap();
        let opener = Opener::new(0, &secrets()).unwrap();
        let why = std::thread::scope(|s| {
            let inbound = s.spawn(|| inbound(&shared, opener, &inner, &wire));
            // The inbound thread half-closes after its alert; reading to the end, then
            // closing, ends its linger.
            let mut back = Vec::new();
            peer.read_to_end(&mut back).unwrap();
            drop(peer);
            match inbound.join().unwrap() {
                Err(Failure::Tls(why)) => (why, back),
                other => panic!("not a TLS failure: {other:?}"),
            }
        });
        let (why, mut back) = why;
        let mut opener = Opener::new(0, &secrets()).unwrap();
        let mut records = Vec::new();
        let mut at = 0;
        while let Some(opened) = opener.open(&mut back[at..]).unwrap() {
            let plain = back[at + opened.plain.start..at + opened.plain.end].to_vec();
            records.push((opened.content_type, plain));
            at += opened.len;
        }
        (why, records)
    }

    #[test]
    fn a_refused_record_is_answered_with_the_alert_that_says_why() {
        // RFC 8446 §5.2: too long a record is record_overflow (22), not bad_record_mac (20).
        let (why, back) = answer_to(&[APPLICATION_DATA, 3, 3, 0xff, 0xff]);
        assert!(why.contains("a record of 65535 bytes"), "{why}");
        assert_eq!(back, [(ALERT, vec![2, 22])]);
        let mut altered = stream(&[(b"data", APPLICATION_DATA)]);
        altered[HEADER + 1] ^= 1;
        let (why, back) = answer_to(&altered);
        assert!(why.contains("did not authenticate"), "{why}");
        assert_eq!(back, [(ALERT, vec![2, 20])]);
        let (why, back) = answer_to(&stream(&[(&[1], 0x14)]));
        assert!(why.contains("content type 0x14"), "{why}");
        assert_eq!(back, [(ALERT, vec![2, 10])]);
        // The peer's own alert is not answered.
        let (why, back) = answer_to(&stream(&[(&[2, 40], ALERT)]));
        assert!(why.contains("TLS alert ([2, 40])"), "{why}");
        assert_eq!(back, []);
    }

    #[test]
    fn an_alert_another_content_type_or_a_reordered_record_ends_the_stream() {
        let alert = stream(&[(b"data", APPLICATION_DATA), (&[2, 80], ALERT)]);
        assert!(opened(alert).unwrap_err().contains("TLS alert ([2, 80])"));
        let change_cipher_spec = stream(&[(&[1], 0x14)]);
        assert!(opened(change_cipher_spec).unwrap_err().contains("content type 0x14"));
        let two = stream(&[(b"first", APPLICATION_DATA), (b"second", APPLICATION_DATA)]);
        let first_len = HEADER + 5 + 1 + 16;
        let swapped = [&two[first_len..], &two[..first_len]].concat();
        assert!(opened(swapped).unwrap_err().contains("did not authenticate"));
        let replayed = [&two[..first_len], &two[..first_len]].concat();
        assert!(opened(replayed).unwrap_err().contains("did not authenticate"));
    }
}
