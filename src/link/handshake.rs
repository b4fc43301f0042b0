//! The handshake, for both roles: greetings (magic, version, AUTH flag and nonce), then, when
//! both ends hold a token, the token proofs — the sender's first, checked by the receiver before
//! it proves its own. The whole exchange runs against one deadline (`HANDSHAKE_TIMEOUT`), so a
//! peer trickling bytes cannot stretch it. The protocol module's docs hold the wire format.

use std::net::TcpStream;

use anyhow::Context;

use super::auth::{self, Token};
use super::peer::{self, Deadline, HANDSHAKE_TIMEOUT, unexpected};
use crate::error::SessionError;
use crate::protocol::{self, ErrorCode, Hello, Message, ProtocolError};

/// The greeting of an end that asks for token proofs (`auth`) or not.
pub fn hello(auth: bool, nonce: [u8; 32]) -> Hello {
    if auth { Hello::with_auth(nonce) } else { Hello::ours() }
}

/// The sender's side: greets first, reads the receiver's greeting, proves the token and checks
/// the receiver's proof in turn. `no_auth`: the user said `--no-auth` (the greeting says so).
pub fn sender(socket: &mut TcpStream, token: Option<&Token>, no_auth: bool) -> anyhow::Result<()> {
    let mut deadline = Deadline::new(socket, HANDSHAKE_TIMEOUT)?;
    let nonce = auth::nonce()?;
    let ours = if no_auth { Hello::no_auth() } else { hello(token.is_some(), nonce) };
    protocol::write_hello(socket, ours).context("sending the greeting")?;
    let theirs = protocol::read_hello(&mut deadline)
        .map_err(|e| peer::read_failure(e, "the receiver's greeting", Some(HANDSHAKE_TIMEOUT)))?;
    if theirs.version != protocol::VERSION {
        return Err(ProtocolError::UnsupportedVersion(theirs.version).into());
    }
    match (token, theirs.auth()) {
        // #13: without a token on either end, both must have said --no-auth.
        (None, false) if no_auth && !theirs.said_no_auth() => Err(SessionError::Auth(
            "the receiver did not say --no-auth: both ends must, or both need the token".into(),
        )
        .into()),
        (None, false) => Ok(()),
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
            let proof = token.sender_proof(&nonce, &theirs.nonce);
            protocol::write_message(socket, &Message::Auth { proof })
                .context("sending the token proof")?;
            match deadline.next_message("the receiver's token proof")? {
                Message::Auth { proof } if token.check_receiver(&proof, &nonce, &theirs.nonce) => {
                    Ok(())
                }
                Message::Auth { .. } => Err(SessionError::Auth(
                    "the receiver could not prove the token: its token differs, or it is not \
                     the receiver you meant"
                        .into(),
                )
                .into()),
                other => Err(unexpected("AUTH", &other)),
            }
        }
    }
}

/// The receiver's side: reads the sender's greeting (refusing anything that is not zcp at its
/// first byte), answers, checks the sender's token proof and proves the token in turn. Reads go
/// through `deadline`, which the session goes on using for the offer.
pub fn receiver(
    socket: &mut TcpStream,
    deadline: &mut Deadline,
    token: Option<&Token>,
) -> anyhow::Result<()> {
    let theirs = protocol::read_hello(deadline)
        .map_err(|e| peer::read_failure(e, "the sender's greeting", Some(HANDSHAKE_TIMEOUT)))?;
    let nonce = auth::nonce()?;
    // A receiver without a token runs with --no-auth (it makes one otherwise), and says so.
    let ours = if token.is_some() { Hello::with_auth(nonce) } else { Hello::no_auth() };
    protocol::write_hello(socket, ours).context("sending the greeting")?;
    if theirs.version != protocol::VERSION {
        let err = ProtocolError::UnsupportedVersion(theirs.version);
        peer::fail_with(socket, ErrorCode::UnsupportedVersion, &err.to_string());
        return Err(err.into());
    }
    let refuse = |socket: &mut TcpStream, told: &str, ours: &str| {
        peer::fail_with(socket, ErrorCode::Auth, told);
        Err(SessionError::Auth(ours.to_string()).into())
    };
    match (token, theirs.auth()) {
        // #13: a sender without a token is served only when it said --no-auth too.
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
            let proof = match deadline.next_message("the sender's token proof")? {
                Message::Auth { proof } => proof,
                other => return Err(unexpected("AUTH", &other)),
            };
            if !token.check_sender(&proof, &theirs.nonce, &nonce) {
                return refuse(socket, "wrong token", "the sender's token is wrong");
            }
            let mine = token.receiver_proof(&theirs.nonce, &nonce);
            protocol::write_message(socket, &Message::Auth { proof: mine })
                .context("sending the token proof")
        }
    }
}
