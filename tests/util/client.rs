//! A peer that speaks the protocol through the library, as `zcp send` would (greeting, key
//! exchange and token proofs, offer, files, finish), so that tests can also send what `zcp
//! send` never would, and play either end of the handshake as a hostile peer.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::Role;
use super::TOKEN;
use super::auth::{self, Direction, End, PAKE_LEN, Pake, Token};
use super::protocol::{
    self, Entry, EntryKind, FileEnd, Hello, Message, Offer, Plan, ReadError, SideStats, Summary,
};

/// Connects to `addr` with read and write timeouts, greeting nobody yet.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let socket = TcpStream::connect(addr).expect("connecting to the receiver");
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("setting a read timeout");
    socket.set_write_timeout(Some(Duration::from_secs(20))).expect("setting a write timeout");
    socket
}

/// Sends `ours` and reads the receiver's greeting.
pub fn exchange_hellos(socket: &mut TcpStream, ours: Hello) -> Result<Hello, ReadError> {
    protocol::write_hello(socket, ours).map_err(ReadError::Io)?;
    protocol::read_hello(socket)
}

/// A fresh random nonce.
pub fn nonce() -> [u8; 32] {
    auth::nonce().expect("random bytes for a nonce")
}

/// Both greetings as they crossed the wire, the sender's first: where the transcript starts.
pub fn greetings(sender: Hello, receiver: Hello) -> Vec<u8> {
    let mut bytes = Vec::new();
    protocol::write_hello(&mut bytes, sender).expect("writing to a Vec");
    protocol::write_hello(&mut bytes, receiver).expect("writing to a Vec");
    bytes
}

/// Reads the peer's SPAKE2 message; `Err` says what came instead.
pub fn read_pake(socket: &mut TcpStream) -> Result<[u8; PAKE_LEN], String> {
    match protocol::read_message(socket) {
        Ok(Message::Pake { message }) => Ok(message),
        other => Err(format!("expected PAKE, got {other:?}")),
    }
}

/// Reads the peer's token proof; `Err` says what came instead.
pub fn read_proof(socket: &mut TcpStream) -> Result<[u8; 32], String> {
    match protocol::read_message(socket) {
        Ok(Message::Auth { proof }) => Ok(proof),
        other => Err(format!("expected AUTH, got {other:?}")),
    }
}

/// Writes `messages` as frames in one write.
pub fn send_frames(socket: &mut TcpStream, messages: &[Message]) {
    let bytes: Vec<u8> = messages.iter().flat_map(protocol::frame).collect();
    socket.write_all(&bytes).expect("sending frames");
}

/// The connecting end's side of the key exchange, after the greetings: reads the accepting
/// end's SPAKE2 message, sends ours and our proof, and checks the proof that answers it.
/// `end` says which role this client plays; `Err` says where it stopped.
pub fn authenticate_as_connector(
    socket: &mut TcpStream,
    token: &Token,
    end: End,
    greetings: &[u8],
) -> Result<(), String> {
    let pake = Pake::start(token, end);
    let theirs = read_pake(socket)?;
    let mine = pake.message();
    let keys = pake.finish(&theirs, greetings).map_err(|e| format!("key exchange: {e}"))?;
    send_frames(
        socket,
        &[Message::Pake { message: mine }, Message::Auth { proof: keys.connector_proof() }],
    );
    let proof = read_proof(socket)?;
    match keys.check_acceptor(&proof) {
        true => Ok(()),
        false => Err("the accepting end's proof does not verify".into()),
    }
}

/// Connects and runs the handshake as `zcp send` would: greetings, then (with a token) the key
/// exchange and both proofs. Panics when the receiver does not go along. Ready for `offer`.
pub fn zcp_client_token(addr: SocketAddr, token: Option<&str>) -> TcpStream {
    let mut socket = connect(addr);
    let hello = match token {
        Some(_) => Hello::with_auth(nonce()),
        None => Hello::no_auth(),
    };
    let theirs = exchange_hellos(&mut socket, hello).expect("reading the receiver's HELLO");
    assert_eq!(theirs.version, protocol::VERSION, "receiver greeted with another version");
    assert_eq!(theirs.auth(), token.is_some(), "receiver's AUTH flag: {theirs:?}");
    if let Some(token) = token {
        let token = Token::new(token).expect("a valid token");
        let end = End { role: Role::Sender, direction: Direction::Connected };
        authenticate_as_connector(&mut socket, &token, end, &greetings(hello, theirs))
            .unwrap_or_else(|e| panic!("authenticating with the receiver: {e}"));
    }
    socket
}

/// Connects with the test token and authenticates, as `zcp send` would.
pub fn zcp_client(addr: SocketAddr) -> TcpStream {
    zcp_client_token(addr, Some(TOKEN))
}

/// Sends an OFFER of `entries` and returns what came back (a PLAN, an ERROR, a failure).
pub fn try_offer(socket: &mut TcpStream, entries: Vec<Entry>) -> Result<Message, ReadError> {
    protocol::write_message(socket, &Message::Offer(Offer { entries })).map_err(ReadError::Io)?;
    protocol::read_message(socket)
}

/// Offers `entries` and returns the receiver's plan, checked to hold one answer per entry.
pub fn offer(socket: &mut TcpStream, entries: Vec<Entry>) -> Plan {
    let count = entries.len();
    match try_offer(socket, entries) {
        Ok(Message::Plan(plan)) => {
            assert_eq!(plan.answers.len(), count, "one answer per entry: {plan:?}");
            plan
        }
        other => panic!("expected a PLAN, got {other:?}"),
    }
}

/// Sends entry `index` as `zcp send` would: FILE_START at `offset`, `data[offset..]` raw,
/// FILE_END with the digest of all of `data`.
pub fn send_file(socket: &mut TcpStream, index: u32, offset: u64, data: &[u8]) {
    let start = Message::FileStart { index, offset };
    protocol::write_message(socket, &start).expect("sending FILE_START");
    socket.write_all(&data[offset as usize..]).expect("sending the file's bytes");
    end_file(socket, data);
}

/// Sends entry `index` of unknown size: FILE_START at 0, `data` as one chunk, the end chunk,
/// FILE_END.
pub fn send_chunked(socket: &mut TcpStream, index: u32, data: &[u8]) {
    let start = Message::FileStart { index, offset: 0 };
    protocol::write_message(socket, &start).expect("sending FILE_START");
    if !data.is_empty() {
        socket.write_all(&protocol::chunk_header(data.len() as u32)).expect("chunk header");
        socket.write_all(data).expect("chunk bytes");
    }
    socket.write_all(&protocol::chunk_header(0)).expect("end chunk");
    end_file(socket, data);
}

/// FILE_END with the xxh3-128 of `data`.
pub fn end_file(socket: &mut TcpStream, data: &[u8]) {
    let end = FileEnd { xxh3: xxhash_rust::xxh3::xxh3_128(data) };
    protocol::write_message(socket, &Message::FileEnd(end)).expect("sending FILE_END");
}

/// Sends FINISH and returns whatever answers it (a SUMMARY, an ERROR, a failure).
pub fn try_finish(socket: &mut TcpStream) -> Result<Message, ReadError> {
    protocol::write_message(socket, &Message::Finish(SideStats::default()))
        .map_err(ReadError::Io)?;
    protocol::read_message(socket)
}

/// Sends FINISH and returns the receiver's SUMMARY.
pub fn finish(socket: &mut TcpStream) -> Summary {
    match try_finish(socket) {
        Ok(Message::Summary(summary)) => summary,
        other => panic!("expected a SUMMARY, got {other:?}"),
    }
}

/// A regular-file entry as `zcp send` would offer it.
pub fn file_entry(name: &[u8], size: Option<u64>) -> Entry {
    Entry {
        kind: EntryKind::File,
        name: name.to_vec(),
        size,
        mode: 0o644,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 0,
    }
}

/// A directory entry as `zcp send` would offer it.
pub fn dir_entry(name: &[u8]) -> Entry {
    Entry {
        kind: EntryKind::Dir,
        name: name.to_vec(),
        size: None,
        mode: 0o755,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 0,
    }
}

/// Writes all of `bytes` to `socket` in a thread, ignoring a peer that hangs up.
pub fn write_in_background(socket: &TcpStream, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    let mut s = socket.try_clone().expect("cloning a socket");
    std::thread::spawn(move || {
        let _ = s.write_all(&bytes);
    })
}

/// A receiver played by the test, to answer `zcp send` as `zcp recv` never would: listens on
/// loopback, greets one sender without a token (the sender runs with `--no-auth`) and hands
/// over the socket with the sender's offer.
pub struct FakeReceiver {
    listener: std::net::TcpListener,
}

impl FakeReceiver {
    pub fn new() -> FakeReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding loopback");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        FakeReceiver { listener }
    }

    /// `127.0.0.1:PORT`, for `zcp send`.
    pub fn dest(&self) -> String {
        self.listener.local_addr().expect("the listening address").to_string()
    }

    /// Takes the sender (waiting at most `STARTUP`), greets it and reads its offer.
    pub fn accept(&self) -> (TcpStream, Offer) {
        let mut taken = None;
        super::wait_until(super::STARTUP, "the sender to connect", || {
            taken = self.listener.accept().ok();
            taken.is_some()
        });
        let (mut socket, _) = taken.expect("a connection");
        socket.set_nonblocking(false).expect("a blocking socket");
        socket.set_read_timeout(Some(Duration::from_secs(20))).expect("setting a read timeout");
        socket.set_write_timeout(Some(Duration::from_secs(20))).expect("setting a write timeout");
        protocol::read_hello(&mut socket).expect("the sender's HELLO");
        protocol::write_hello(&mut socket, Hello::no_auth()).expect("sending HELLO");
        match protocol::read_message(&mut socket) {
            Ok(Message::Offer(offer)) => (socket, offer),
            other => panic!("expected an OFFER, got {other:?}"),
        }
    }
}

/// A greeting as bytes on the wire.
pub fn hello_bytes(hello: Hello) -> Vec<u8> {
    let mut bytes = Vec::new();
    protocol::write_hello(&mut bytes, hello).expect("writing to a Vec");
    bytes
}

/// Writes `bytes` to `socket` one at a time, 1.5 s apart, in a thread; it stops once the peer
/// closed the connection (or after 30 s).
pub fn trickle(socket: TcpStream, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut socket = socket;
        for byte in bytes {
            if socket.write_all(&[byte]).is_err() || started.elapsed() > Duration::from_secs(30) {
                return;
            }
            // Not synchronisation: the pace of the trickle is the scenario under test.
            std::thread::sleep(Duration::from_millis(1500));
            if peer_closed(&socket) {
                return;
            }
        }
    })
}

/// Whether the peer has closed `socket` (a read would return end of file now).
pub fn peer_closed(socket: &TcpStream) -> bool {
    if socket.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match socket.peek(&mut [0u8; 1]) {
        Ok(n) => n == 0,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = socket.set_nonblocking(false);
    closed
}

/// Forwards bytes between `a` and `b` both ways, as a relay between two ends would, until `a`
/// closes; returns everything `a` wrote.
pub fn ferry(a: TcpStream, b: TcpStream) -> std::thread::JoinHandle<Vec<u8>> {
    let (mut a_in, mut b_out) = (a.try_clone().expect("clone"), b.try_clone().expect("clone"));
    let (mut b_in, mut a_out) = (b, a);
    std::thread::spawn(move || {
        let back = std::thread::spawn(move || {
            let _ = std::io::copy(&mut b_in, &mut a_out);
            let _ = a_out.shutdown(std::net::Shutdown::Write);
        });
        let mut seen = Vec::new();
        let mut buf = [0u8; 64 << 10];
        while let Ok(n) = std::io::Read::read(&mut a_in, &mut buf) {
            if n == 0 || b_out.write_all(&buf[..n]).is_err() {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        let _ = b_out.shutdown(std::net::Shutdown::Both);
        let _ = back.join();
        seen
    })
}

/// The frames in `bytes`, up to the first that does not parse.
pub fn frames(mut bytes: &[u8]) -> Vec<Message> {
    std::iter::from_fn(|| protocol::read_message(&mut bytes).ok()).collect()
}

/// The frames in `bytes` after a greeting, up to the first that does not parse.
pub fn frames_after_hello(bytes: &[u8]) -> Vec<Message> {
    frames(bytes.get(protocol::HELLO_LEN..).unwrap_or_default())
}
