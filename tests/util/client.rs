//! A peer that speaks the protocol through the library, as `zcp send` would (greeting, token
//! proofs, offer, files, finish), so that tests can also send what `zcp send` never would.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::TOKEN;
use super::auth::{self, Token};
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

/// Sends the sender's token proof over both greetings' nonces.
pub fn send_proof(socket: &mut TcpStream, token: &Token, ours: &[u8; 32], theirs: &[u8; 32]) {
    let proof = token.sender_proof(ours, theirs);
    protocol::write_message(socket, &Message::Auth { proof }).expect("sending AUTH");
}

/// Reads the receiver's answer to our proof and checks it proves `token` for these nonces;
/// `Err` says what came instead.
pub fn read_receiver_proof(
    socket: &mut TcpStream,
    token: &Token,
    ours: &[u8; 32],
    theirs: &[u8; 32],
) -> Result<(), String> {
    match protocol::read_message(socket) {
        Ok(Message::Auth { proof }) if token.check_receiver(&proof, ours, theirs) => Ok(()),
        Ok(Message::Auth { .. }) => Err("the receiver's proof does not verify".into()),
        Ok(other) => Err(format!("expected AUTH, got {other:?}")),
        Err(e) => Err(format!("expected AUTH, got {e:?}")),
    }
}

/// Connects and runs the handshake as `zcp send` would: greetings, then (with a token) both
/// proofs. Panics when the receiver does not go along. Ready for `offer`.
pub fn zcp_client_token(addr: SocketAddr, token: Option<&str>) -> TcpStream {
    let mut socket = connect(addr);
    let ours = nonce();
    let hello = match token {
        Some(_) => Hello::with_auth(ours),
        None => Hello::no_auth(),
    };
    let theirs = exchange_hellos(&mut socket, hello).expect("reading the receiver's HELLO");
    assert_eq!(theirs.version, protocol::VERSION, "receiver greeted with another version");
    assert_eq!(theirs.auth(), token.is_some(), "receiver's AUTH flag: {theirs:?}");
    if let Some(token) = token {
        let token = Token::new(token).expect("a valid token");
        send_proof(&mut socket, &token, &ours, &theirs.nonce);
        read_receiver_proof(&mut socket, &token, &ours, &theirs.nonce)
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
