//! The handshake, for both roles and both directions: greetings (the sender's first), then,
//! when both ends hold a token, SPAKE2 and the key confirmations, the connecting end proving
//! first and the accepting end only after that proof checks. All of it runs against one
//! deadline (`HANDSHAKE_TIMEOUT`), so a peer trickling bytes cannot stretch it. With
//! `--encrypt` it runs inside the TLS tunnel, and the TLS exporter (`binding`) joins the
//! transcript the proofs cover. `crate::manual::protocol` holds the wire format and the
//! security argument.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::Context;

use super::auth::{self, Direction, End, Pake, Token};
use super::peer::{self, Deadline, HANDSHAKE_TIMEOUT, unexpected};
use crate::copy::socket::Socket;
use crate::error::SessionError;
use crate::protocol::{self, ErrorCode, Hello, Message, ProtocolError, ReadError};
use crate::role::Role;

/// Domain separation for the TLS exporter value in the transcript.
const BINDING_LABEL: &[u8] = b"zcp/2 tls exporter";

/// The greeting of an end that asks for token proofs (`auth`) or not.
pub fn hello(auth: bool, nonce: [u8; 32]) -> Hello {
    if auth { Hello::with_auth(nonce) } else { Hello::ours() }
}

/// The sender's side: greets first, reads the receiver's greeting, then authenticates as the
/// end that connected or accepted (`direction`). `no_auth`: the user said `--no-auth` (the
/// greeting says so). Returns the receiver's greeting (what it takes: `Hello::takes_sparse`).
/// `binding`: the TLS exporter value, inside an `--encrypt` tunnel; `within`: what is left of
/// the handshake deadline (the TLS handshake took the rest).
pub fn sender(
    socket: &mut Socket,
    direction: Direction,
    token: Option<&Token>,
    no_auth: bool,
    (binding, within): (Option<&[u8; 32]>, Duration),
) -> anyhow::Result<Hello> {
    let mut deadline = Deadline::new(socket, within)?;
    let mine = if no_auth { Hello::no_auth() } else { hello(token.is_some(), auth::nonce()?) };
    let mine = if binding.is_some() { mine.encrypting() } else { mine };
    protocol::write_hello(socket, mine).context("sending the greeting")?;
    let theirs = protocol::read_hello(&mut deadline).map_err(greeting_failure)?;
    if theirs.version != protocol::VERSION {
        return Err(ProtocolError::UnsupportedVersion(theirs.version).into());
    }
    same_encryption(theirs, binding, Role::Receiver)?;
    match (token, theirs.auth()) {
        // Without a token on either end, both must have said --no-auth.
        (None, false) if no_auth && !theirs.said_no_auth() => Err(SessionError::Auth(
            "the receiver did not say --no-auth: both ends must, or both need the token".into(),
        )
        .into()),
        (None, false) => Ok(theirs),
        (None, true) => Err(SessionError::Auth(
            "the receiver requires a token: set ZCP_TOKEN, or pass --token-file or --token".into(),
        )
        .into()),
        (Some(_), false) => Err(SessionError::Auth(
            "the receiver runs without authentication (--no-auth) and cannot prove the token; \
             drop the token to send anyway"
                .into(),
        )
        .into()),
        (Some(token), true) => {
            let end = End { role: Role::Sender, direction };
            let transcript = greetings(mine, theirs, binding);
            authenticate(socket, &mut deadline, token, end, &transcript).map(|()| theirs)
        }
    }
}

/// Why the receiver's greeting did not come. A receiver that closes a connection it took
/// without a word is most likely a one-shot one whose listener stopped (its sender came
/// first): say so, since "connection reset" alone reads like a network fault.
fn greeting_failure(e: ReadError) -> anyhow::Error {
    let closed = matches!(&e, ReadError::Io(io) if matches!(
        io.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
    ));
    let e = peer::read_failure(e, "the receiver's greeting", Some(HANDSHAKE_TIMEOUT));
    if closed {
        e.context(
            "the receiver closed the connection before greeting: a receiver without \
             --keep-open takes one sender and stops listening once that one is in",
        )
    } else {
        e
    }
}

/// The receiver's side: reads the sender's greeting (refusing anything that is not zcp at its
/// first byte), answers, then authenticates as the end that connected or accepted
/// (`direction`). Reads go through `deadline`, which the session goes on using for the offer.
pub fn receiver(
    socket: &mut Socket,
    deadline: &mut Deadline,
    direction: Direction,
    token: Option<&Token>,
    binding: Option<&[u8; 32]>,
) -> anyhow::Result<()> {
    // A receiver without a token runs with --no-auth (it makes one otherwise), and says so.
    let mine = match token {
        Some(_) => Hello::with_auth(auth::nonce()?),
        None => Hello::no_auth(),
    };
    let mine = if binding.is_some() { mine.encrypting() } else { mine };
    let theirs = match protocol::read_hello(deadline) {
        Ok(theirs) => theirs,
        Err(ReadError::Protocol(ProtocolError::TlsPeer)) => {
            // Our plaintext greeting tells the --encrypt sender that this end does not encrypt.
            let _ = protocol::write_hello(socket, mine);
            return Err(ProtocolError::TlsPeer.into());
        }
        Err(e) => {
            return Err(peer::read_failure(e, "the sender's greeting", Some(HANDSHAKE_TIMEOUT)));
        }
    };
    protocol::write_hello(socket, mine).context("sending the greeting")?;
    if theirs.version != protocol::VERSION {
        let err = ProtocolError::UnsupportedVersion(theirs.version);
        peer::fail_with(socket, ErrorCode::UnsupportedVersion, &err.to_string());
        return Err(err.into());
    }
    same_encryption(theirs, binding, Role::Sender)?;
    match (token, theirs.auth()) {
        // A sender without a token is served only when it said --no-auth too.
        (None, false) if !theirs.said_no_auth() => refuse(
            socket,
            "this receiver runs with --no-auth: the sender must say --no-auth too",
            "the sender has no token and did not say --no-auth (both ends must)",
        ),
        (None, false) => Ok(()),
        (Some(_), false) => refuse(
            socket,
            "this receiver requires a token: set ZCP_TOKEN or pass --token-file",
            "the sender offered no token (it may need ZCP_TOKEN)",
        ),
        (None, true) => refuse(
            socket,
            "this receiver runs with --no-auth and cannot prove a token; drop the token or give \
             the receiver one",
            "the sender asked for a token proof, but this receiver runs with --no-auth",
        ),
        (Some(token), true) => {
            let end = End { role: Role::Receiver, direction };
            let transcript = greetings(theirs, mine, binding);
            authenticate(socket, deadline, token, end, &transcript)
        }
    }
}

/// Both greetings as they crossed the wire, the sender's first, then (inside a TLS tunnel)
/// the exporter value under its label: the transcript starts here. The greetings have a fixed
/// length, so a transcript with a binding never equals one without.
fn greetings(sender: Hello, receiver: Hello, binding: Option<&[u8; 32]>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(2 * protocol::HELLO_LEN + 64);
    // Writing to a Vec cannot fail.
    let _ = protocol::write_hello(&mut bytes, sender);
    let _ = protocol::write_hello(&mut bytes, receiver);
    if let Some(binding) = binding {
        bytes.extend(BINDING_LABEL);
        bytes.extend(binding);
    }
    bytes
}

/// Both ends must agree on `--encrypt`: a plaintext end reading an `--encrypt` peer's greeting
/// (its plaintext preface) stops here, with a message for the user; inside a tunnel, a greeting
/// without the flag means the peer is confused (or not zcp), and is refused all the same.
fn same_encryption(theirs: Hello, binding: Option<&[u8; 32]>, them: Role) -> anyhow::Result<()> {
    let them = them.name();
    match (theirs.encrypts(), binding.is_some()) {
        (true, false) => Err(SessionError::Encryption(format!(
            "the {them} runs with --encrypt: this end must use --encrypt too"
        ))
        .into()),
        (false, true) => Err(SessionError::Encryption(format!(
            "the {them} does not use --encrypt: use it on both ends, or on neither"
        ))
        .into()),
        _ => Ok(()),
    }
}

/// Tells the peer why (`told`) and fails with an authentication error (`ours`).
fn refuse(socket: &mut Socket, told: &str, ours: &str) -> anyhow::Result<()> {
    peer::fail_with(socket, ErrorCode::Auth, told);
    Err(SessionError::Auth(ours.to_string()).into())
}

/// SPAKE2 and the key confirmations, connecting end first.
fn authenticate(
    socket: &mut Socket,
    deadline: &mut Deadline,
    token: &Token,
    end: End,
    greetings: &[u8],
) -> anyhow::Result<()> {
    let pake = Pake::start(token, end);
    match end.direction {
        Direction::Accepted => accept_proof(socket, deadline, pake, end.role.peer(), greetings),
        Direction::Connected => prove_first(socket, deadline, pake, end.role.peer(), greetings),
    }
}

/// The accepting end: sends its SPAKE2 message (which proves nothing and shows nothing), then
/// proves itself only once the connecting end's proof checks; else tells it "wrong token".
fn accept_proof(
    socket: &mut Socket,
    deadline: &mut Deadline,
    pake: Pake,
    them: Role,
    greetings: &[u8],
) -> anyhow::Result<()> {
    let them = them.name();
    let ours = Message::Pake { message: pake.message() };
    protocol::write_message(socket, &ours).context("sending the key exchange")?;
    let theirs = read_pake(deadline, them)?;
    let keys = match pake.finish(&theirs, greetings) {
        Ok(keys) => keys,
        Err(e) => {
            return refuse(socket, "wrong token", &format!("the {them} cannot be trusted: {e}"));
        }
    };
    let proof = read_proof(deadline, them)?;
    if !keys.check_connector(&proof) {
        return refuse(socket, "wrong token", &format!("the {them}'s token is wrong"));
    }
    protocol::write_message(socket, &Message::Auth { proof: keys.acceptor_proof() })
        .context("sending the token proof")
}

/// The connecting end: answers the accepting end's SPAKE2 message with its own and its proof,
/// in one write, then checks the accepting end's proof.
fn prove_first(
    socket: &mut Socket,
    deadline: &mut Deadline,
    pake: Pake,
    them: Role,
    greetings: &[u8],
) -> anyhow::Result<()> {
    let them = them.name();
    let theirs = read_pake(deadline, them)?;
    let mine = pake.message();
    let keys = pake
        .finish(&theirs, greetings)
        .map_err(|e| SessionError::Auth(format!("the {them} cannot be trusted: {e}")))?;
    let mut both = protocol::frame(&Message::Pake { message: mine });
    both.extend(protocol::frame(&Message::Auth { proof: keys.connector_proof() }));
    socket.write_all(&both).context("sending the key exchange and the token proof")?;
    let proof = read_proof(deadline, them)?;
    if keys.check_acceptor(&proof) {
        return Ok(());
    }
    Err(SessionError::Auth(format!(
        "the {them} could not prove the token: its token differs, or it is not the {them} you \
         meant"
    ))
    .into())
}

fn read_pake(deadline: &mut Deadline, them: &str) -> anyhow::Result<[u8; auth::PAKE_LEN]> {
    match deadline.next_message(&format!("the {them}'s key exchange"))? {
        Message::Pake { message } => Ok(message),
        other => Err(unexpected("PAKE", &other)),
    }
}

fn read_proof(deadline: &mut Deadline, them: &str) -> anyhow::Result<[u8; auth::PROOF_LEN]> {
    match deadline.next_message(&format!("the {them}'s token proof"))? {
        Message::Auth { proof } => Ok(proof),
        other => Err(unexpected("AUTH", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection closed before the greeting says why that usually happens; a timeout or a
    /// stranger's bytes keep their own message.
    #[test]
    fn a_greeting_cut_off_points_at_a_one_shot_receiver() {
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::UnexpectedEof] {
            let e = greeting_failure(ReadError::Io(kind.into()));
            assert!(format!("{e:#}").contains("takes one sender and stops listening"), "{e:#}");
        }
        let e = greeting_failure(ReadError::Io(io::ErrorKind::WouldBlock.into()));
        assert!(!format!("{e:#}").contains("one sender"), "{e:#}");
        assert!(format!("{e:#}").contains("nothing arrived"), "{e:#}");
    }
}
