//! The handshake against a hostile peer that speaks the protocol: reflected
//! messages, a relay between two listening ends, a listening end asked for something to guess
//! the token against, an old protocol version, and peers that trickle their greeting. Replay
//! is in `auth.rs`. Each class must fail at both ends, write nothing and send no file.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::Role;
use crate::util::auth::{Direction, End, PAKE_LEN, Pake, Token};
use crate::util::protocol::{self, ErrorCode, Hello, Message};
use crate::util::{
    Process, Receiver, SESSION, assert_exit, assert_file_holds, assert_says, connect, dir_names,
    exchange_hellos, ferry, frames, frames_after_hello, greetings, hello_bytes, nonce, read_pake,
    read_proof, run, send_cmd, send_frames, send_listening, subdir, trickle, write_random_file,
    zcp_command,
};

const NAME: &str = "secret.bin";

/// A source file in `work/src` and an empty `work/dst`.
fn setup(work: &Path, seed: u64) -> (PathBuf, PathBuf, Vec<u8>) {
    let (src_dir, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 100_000, seed);
    (src, dst, data)
}

/// A listener for a fake receiver, and `zcp send SRC` connecting to it with the test token.
fn sender_to_a_fake_receiver(src: &Path) -> (Process, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fake receiver");
    let dest = listener.local_addr().expect("its address").to_string();
    let sender = Process::spawn(send_cmd(&[src], &dest, &[], &[]));
    let (socket, _) = listener.accept().expect("the sender connects");
    socket.set_read_timeout(Some(SESSION)).expect("read timeout");
    (sender, socket)
}

/// Reads the sender's greeting.
fn read_greeting(socket: &mut TcpStream) -> Hello {
    protocol::read_hello(socket).expect("the sender's greeting")
}

/// Everything the peer sends until it closes.
fn rest_of(socket: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let _ = socket.read_to_end(&mut rest);
    rest
}

#[test]
fn a_connecting_sender_refuses_its_own_proof_reflected() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _, data) = setup(work.path(), 1);
    let (sender, mut socket) = sender_to_a_fake_receiver(&src);
    // Greet the sender with its own greeting, and send a key exchange made up without the
    // token (a reflector has nothing else: the sender's own comes only after it).
    let theirs = read_greeting(&mut socket);
    protocol::write_hello(&mut socket, theirs).expect("reflecting the greeting");
    let guess = Token::new("a guess").expect("token");
    let ours = Pake::start(&guess, End { role: Role::Receiver, direction: Direction::Accepted });
    send_frames(&mut socket, &[Message::Pake { message: ours.message() }]);
    // The sender proves first (it connected); send its proof straight back as ours.
    let _its_pake = read_pake(&mut socket).expect("the sender's key exchange");
    let its_proof = read_proof(&mut socket).expect("the sender's proof");
    send_frames(&mut socket, &[Message::Auth { proof: its_proof }]);
    let after = rest_of(&mut socket);
    let sent = sender.wait();
    assert_exit(&sent, 8, "sender");
    assert_says(&sent, "could not prove the token", "sender");
    assert!(!contains(&after, &data[..64]), "the sender sent its file to a reflector");
}

#[test]
fn a_receiver_never_proves_first_so_nothing_can_be_reflected_to_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut receiver = Receiver::start(work.path(), &[]);
    let mut socket = connect(receiver.addr());
    let hello = Hello::with_auth(nonce());
    exchange_hellos(&mut socket, hello).expect("the receiver's greeting");
    // All the receiver gives before the peer proved anything is its key exchange message.
    let its_pake = read_pake(&mut socket).expect("the receiver's key exchange");
    assert_eq!(its_pake[0], b'B', "the accepting end is SPAKE2's side B");
    // Reflect it, with a proof copied from nowhere: both are refused, and no proof comes back.
    send_frames(
        &mut socket,
        &[
            Message::Pake { message: its_pake },
            Message::Auth { proof: its_pake[1..].try_into().expect("32 bytes") },
        ],
    );
    let answer = frames(&rest_of(&mut socket));
    assert!(
        matches!(&answer[..], [Message::Error { code: ErrorCode::Auth, .. }]),
        "expected only ERROR (authentication), got {answer:?}"
    );
    let line = receiver.process().wait_line_within("ignored a connection", SESSION);
    assert!(line.contains("wrong side"), "{line}");
    assert!(receiver.process().running(), "a reflector ended a one-shot receiver");
    assert!(dir_names(work.path()).is_empty(), "nothing may be written");
}

#[test]
fn a_relay_between_two_listening_ends_fails_on_both() {
    // The relay attack: `send --listen` and `recv --listen` with the same token, both
    // connected to by someone without it who ferries every byte between them.
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 2);
    let (mut sender, sender_addr) = send_listening(&src, &[]);
    let mut receiver = Receiver::start(&dst, &[]);
    let to_sender = connect(sender_addr);
    let to_receiver = connect(receiver.addr());
    let relay = ferry(to_sender, to_receiver);
    let said = sender.wait_line_within("ignored a connection", SESSION);
    let heard = receiver.process().wait_line_within("ignored a connection", SESSION);
    let from_sender = relay.join().expect("relay");
    for line in [&said, &heard] {
        assert!(line.contains("wrong side") || line.contains("token"), "{line}");
    }
    assert!(dir_names(&dst).is_empty(), "the relay wrote {:?}", dir_names(&dst));
    assert!(!contains(&from_sender, &data[..64]), "the sender's file crossed the relay");
    let frames = frames_after_hello(&from_sender);
    assert!(!frames.iter().any(|m| matches!(m, Message::Offer(_) | Message::Auth { .. })));
    assert!(sender.running(), "the relay ended the listening sender");
    assert!(receiver.process().running(), "the relay ended the receiver");
}

#[test]
fn a_listening_sender_gives_nothing_to_guess_against_before_its_peer_proves() {
    // The token oracle: v1 sent an HMAC of the token to whoever connected.
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 3);
    let (mut sender, addr) = send_listening(&src, &[]);
    let mut socket = connect(addr);
    let theirs = read_greeting(&mut socket);
    let ours = Hello::with_auth(nonce());
    protocol::write_hello(&mut socket, ours).expect("greeting");
    // Before this end proves anything, the sender sends exactly one SPAKE2 message: a random
    // point that no token guess can be checked against.
    let its_pake = read_pake(&mut socket).expect("the sender's key exchange");
    assert_eq!(its_pake.len(), PAKE_LEN);
    assert_eq!(its_pake[0], b'B', "the accepting end is SPAKE2's side B");
    // A guess, proved properly: refused with "wrong token", and still no proof from the sender.
    let guess = Token::new("a guess").expect("token");
    let end = End { role: Role::Receiver, direction: Direction::Connected };
    let pake = Pake::start(&guess, end);
    let mine = pake.message();
    let keys = pake.finish(&its_pake, &greetings(theirs, ours)).expect("a valid point");
    send_frames(
        &mut socket,
        &[Message::Pake { message: mine }, Message::Auth { proof: keys.connector_proof() }],
    );
    let answer = frames(&rest_of(&mut socket));
    match &answer[..] {
        [Message::Error { code: ErrorCode::Auth, message }] => assert_eq!(message, "wrong token"),
        other => panic!("expected only ERROR \"wrong token\", got {other:?}"),
    }
    let line = sender.wait_line_within("ignored a connection", SESSION);
    assert!(line.contains("token is wrong"), "{line}");
    // The sender still waits, and serves a receiver that holds the token.
    let mut recv = zcp_command(&["recv", "--connect", &addr.to_string(), "--output"], &[]);
    recv.arg(&dst);
    let received = run(recv);
    assert_exit(&received, 0, "receiver");
    assert_exit(&sender.wait(), 0, "listening sender");
    assert_file_holds(&dst.join(NAME), &data, "the file sent after a wrong guess");
}

#[test]
fn an_old_sender_is_told_both_versions() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut receiver = Receiver::start(work.path(), &[]);
    let mut socket = connect(receiver.addr());
    let old = Hello { version: 1, ..Hello::with_auth(nonce()) };
    let theirs = exchange_hellos(&mut socket, old).expect("the receiver's greeting");
    assert_eq!(theirs.version, 2);
    let answer = frames(&rest_of(&mut socket));
    match &answer[..] {
        [Message::Error { code: ErrorCode::UnsupportedVersion, message }] => {
            assert!(message.contains("version 1") && message.contains("speaks 2"), "{message}");
        }
        other => panic!("expected ERROR (unsupported version), got {other:?}"),
    }
    let line = receiver.process().wait_line_within("ignored a connection", SESSION);
    assert!(line.contains("version 1"), "{line}");
    assert!(receiver.process().running(), "an old sender ended a one-shot receiver");
}

#[test]
fn an_old_receiver_is_named_with_both_versions() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _, _) = setup(work.path(), 4);
    let (sender, mut socket) = sender_to_a_fake_receiver(&src);
    read_greeting(&mut socket);
    let old = Hello { version: 1, ..Hello::with_auth(nonce()) };
    protocol::write_hello(&mut socket, old).expect("an old greeting");
    let sent = sender.wait();
    assert_exit(&sent, 4, "sender");
    assert_says(&sent, "version 1, this build speaks 2", "sender");
}

#[test]
fn a_receiver_trickling_its_greeting_stops_the_sender_at_the_deadline() {
    // A trickling peer: one byte every 1.5 s; every read succeeds, the handshake must not.
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _, _) = setup(work.path(), 5);
    let (sender, mut socket) = sender_to_a_fake_receiver(&src);
    let started = Instant::now();
    read_greeting(&mut socket);
    let trickler = trickle(socket, hello_bytes(Hello::with_auth(nonce())));
    let sent = sender.wait_for(Duration::from_secs(30));
    let waited = started.elapsed();
    assert_exit(&sent, 3, "sender");
    assert_says(&sent, "greeting", "sender");
    assert!(waited < Duration::from_secs(12), "the sender waited {waited:?}");
    trickler.join().expect("trickler");
}

#[test]
fn a_receiver_trickling_its_greeting_is_ignored_by_a_listening_sender() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _, _) = setup(work.path(), 6);
    let (mut sender, addr) = send_listening(&src, &[]);
    let started = Instant::now();
    let mut socket = connect(addr);
    read_greeting(&mut socket);
    let trickler = trickle(socket, hello_bytes(Hello::with_auth(nonce())));
    let line = sender.wait_line_within("ignored a connection", Duration::from_secs(30));
    let waited = started.elapsed();
    assert!(line.contains("greeting"), "{line}");
    assert!(waited < Duration::from_secs(12), "the sender waited {waited:?}");
    assert!(sender.running(), "a trickling peer ended the listening sender");
    trickler.join().expect("trickler");
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
