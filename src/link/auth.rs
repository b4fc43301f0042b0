//! Who may write through a receiver: the shared token, where it comes from, and the key
//! exchange that proves both ends hold it without sending it or anything an eavesdropper or an
//! impostor could test guesses against: SPAKE2 (the `spake2` crate) with identities naming each
//! end's role and which end connected, then key-confirmation MACs over the whole transcript. It
//! owns no I/O beyond reading a token file; `handshake` carries the messages.

use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};

/// Length of each end's greeting nonce.
pub const NONCE_LEN: usize = 32;
/// Length of a key confirmation (an HMAC-SHA256 tag).
pub const PROOF_LEN: usize = 32;
/// Length of a SPAKE2 message: a side byte and an Ed25519 point.
pub const PAKE_LEN: usize = 33;
/// The environment variable both ends read the token from.
pub const TOKEN_ENV: &str = "ZCP_TOKEN";

const TRANSCRIPT_LABEL: &[u8] = b"zcp/2 handshake transcript";
const CONNECTOR_KEY: &[u8] = b"zcp/2 connector confirmation";
const ACCEPTOR_KEY: &[u8] = b"zcp/2 acceptor confirmation";
/// Base32 without look-alikes, for tokens people type.
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A shared secret. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from user input, trimmed; empty input is refused.
    pub fn new(text: &str) -> anyhow::Result<Token> {
        let t = text.trim();
        if t.is_empty() {
            bail!("the token is empty");
        }
        Ok(Token(t.to_string()))
    }

    /// A fresh random token: 20 characters of base32 (100 bits) in groups of four.
    pub fn generate() -> anyhow::Result<Token> {
        let mut raw = [0u8; 20];
        crate::sys::random::fill(&mut raw).context("reading random bytes for a token")?;
        let chars: Vec<char> = raw.iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect();
        let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
        Ok(Token(groups.join("-")))
    }

    /// Reads a token from the first line of a file.
    pub fn from_file(path: &Path) -> anyhow::Result<Token> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        Token::new(text.lines().next().unwrap_or(""))
            .with_context(|| format!("token file {}", path.display()))
    }

    /// The token itself, for printing the command a user should run.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

use crate::role::Role;

/// Which end of the TCP connection this is: the one that connected, or the one that accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This end connected to the other.
    Connected,
    /// This end accepted the other's connection.
    Accepted,
}

/// This end's place in a session: its role and which way the connection was made. Both ends of
/// an honest connection agree on who is the connecting sender (or receiver) and who accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    /// Sender or receiver.
    pub role: Role,
    /// Whether this end connected or accepted.
    pub direction: Direction,
}

impl End {
    /// The role of the end that connected, as this end sees the connection.
    fn connector(self) -> Role {
        match self.direction {
            Direction::Connected => self.role,
            Direction::Accepted => self.role.peer(),
        }
    }

    /// SPAKE2's two identities: A is the connecting end, B the accepting one, each named with
    /// its role. Two ends that disagree about the direction (both accepted: a relay) or the
    /// roles use different identities, and different SPAKE2 sides.
    fn identities(self) -> (Identity, Identity) {
        let connector = self.connector();
        let a = format!("zcp/2 {} connected", connector.name());
        let b = format!("zcp/2 {} accepted", connector.peer().name());
        (Identity::new(a.as_bytes()), Identity::new(b.as_bytes()))
    }
}

/// Why a peer's SPAKE2 message could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PakeError {
    /// The message comes from the same side as ours: both ends connected, or both accepted.
    WrongSide,
    /// The message is not a valid group element, or has the wrong length.
    Corrupt,
}

impl fmt::Display for PakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PakeError::WrongSide => {
                "its key exchange comes from the wrong side (both ends accepted the connection, \
                 or both connected: a relay)"
            }
            PakeError::Corrupt => "its key exchange message is corrupt",
        })
    }
}

impl std::error::Error for PakeError {}

/// One end's SPAKE2 exchange, started: `message` goes to the peer.
pub struct Pake {
    state: Spake2<Ed25519Group>,
    end: End,
    message: [u8; PAKE_LEN],
}

impl Pake {
    /// Starts the exchange for `end` with the token as SPAKE2's password.
    pub fn start(token: &Token, end: End) -> Pake {
        let password = Password::new(token.0.as_bytes());
        let (a, b) = end.identities();
        let (state, bytes) = match end.direction {
            Direction::Connected => Spake2::<Ed25519Group>::start_a(&password, &a, &b),
            Direction::Accepted => Spake2::<Ed25519Group>::start_b(&password, &a, &b),
        };
        let mut message = [0u8; PAKE_LEN];
        // spake2 always makes a side byte and a 32-byte point.
        message.copy_from_slice(&bytes[..PAKE_LEN]);
        Pake { state, end, message }
    }

    /// Our SPAKE2 message. It is a random group element to anyone without the token, and
    /// says nothing about the token to anyone who only receives it.
    pub fn message(&self) -> [u8; PAKE_LEN] {
        self.message
    }

    /// Finishes with the peer's message; `greetings` are both greetings as sent, the sender's
    /// first. The keys are bound to the identities, both SPAKE2 messages and the greetings.
    pub fn finish(self, theirs: &[u8; PAKE_LEN], greetings: &[u8]) -> Result<Keys, PakeError> {
        let (a, b) = self.end.identities();
        let (connector_msg, acceptor_msg) = match self.end.direction {
            Direction::Connected => (self.message, *theirs),
            Direction::Accepted => (*theirs, self.message),
        };
        let key = self.state.finish(theirs).map_err(|e| match e {
            spake2::Error::BadSide => PakeError::WrongSide,
            _ => PakeError::Corrupt,
        })?;
        let mut transcript = Sha256::new();
        for part in
            [TRANSCRIPT_LABEL, a.as_slice(), b.as_slice(), greetings, &connector_msg, &acceptor_msg]
        {
            transcript.update((part.len() as u32).to_be_bytes());
            transcript.update(part);
        }
        Ok(Keys {
            connector: mac(&key, &[CONNECTOR_KEY]),
            acceptor: mac(&key, &[ACCEPTOR_KEY]),
            transcript: transcript.finalize().into(),
        })
    }
}

/// The confirmation keys of one finished exchange and the hash of its transcript.
pub struct Keys {
    connector: [u8; 32],
    acceptor: [u8; 32],
    transcript: [u8; 32],
}

impl Keys {
    /// The connecting end's proof, sent first: a MAC of the transcript under its own key.
    pub fn connector_proof(&self) -> [u8; PROOF_LEN] {
        mac(&self.connector, &[&self.transcript])
    }

    /// The accepting end's proof, sent only after the connector's checked: a MAC of the
    /// transcript and the connector's proof under the acceptor's key.
    pub fn acceptor_proof(&self) -> [u8; PROOF_LEN] {
        mac(&self.acceptor, &[&self.transcript, &self.connector_proof()])
    }

    /// Checks the connector's proof in constant time.
    pub fn check_connector(&self, proof: &[u8]) -> bool {
        mac_of(&self.connector, &[&self.transcript]).verify_slice(proof).is_ok()
    }

    /// Checks the acceptor's proof in constant time.
    pub fn check_acceptor(&self, proof: &[u8]) -> bool {
        let ours = self.connector_proof();
        mac_of(&self.acceptor, &[&self.transcript, &ours]).verify_slice(proof).is_ok()
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    mac_of(key, parts).finalize().into_bytes().into()
}

fn mac_of(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    for part in parts {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// A fresh nonce for one session.
pub fn nonce() -> anyhow::Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    crate::sys::random::fill(&mut n).context("reading random bytes for a nonce")?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDS: End = End { role: Role::Sender, direction: Direction::Connected };
    const RECEIVES: End = End { role: Role::Receiver, direction: Direction::Accepted };

    /// Runs both ends' exchanges over `greetings` and returns both ends' keys.
    fn exchange(
        (t1, e1): (&Token, End),
        (t2, e2): (&Token, End),
    ) -> (Result<Keys, PakeError>, Result<Keys, PakeError>) {
        let (p1, p2) = (Pake::start(t1, e1), Pake::start(t2, e2));
        let (m1, m2) = (p1.message(), p2.message());
        (p1.finish(&m2, b"greetings"), p2.finish(&m1, b"greetings"))
    }

    #[test]
    fn both_ends_confirm_with_the_same_token() {
        let t = Token::new("correct horse").unwrap();
        let (c, a) = exchange((&t, SENDS), (&t, RECEIVES));
        let (c, a) = (c.unwrap(), a.unwrap());
        assert!(a.check_connector(&c.connector_proof()));
        assert!(c.check_acceptor(&a.acceptor_proof()));
        // The reverse direction works too: a listening sender and a connecting receiver.
        let listening = End { role: Role::Sender, direction: Direction::Accepted };
        let connecting = End { role: Role::Receiver, direction: Direction::Connected };
        let (s, r) = exchange((&t, listening), (&t, connecting));
        let (s, r) = (s.unwrap(), r.unwrap());
        assert!(s.check_connector(&r.connector_proof()));
        assert!(r.check_acceptor(&s.acceptor_proof()));
    }

    #[test]
    fn a_wrong_token_fails_both_confirmations() {
        let (t, wrong) = (Token::new("correct horse").unwrap(), Token::new("battery").unwrap());
        let (c, a) = exchange((&wrong, SENDS), (&t, RECEIVES));
        let (c, a) = (c.unwrap(), a.unwrap());
        assert!(!a.check_connector(&c.connector_proof()));
        assert!(!c.check_acceptor(&a.acceptor_proof()));
    }

    #[test]
    fn a_proof_does_not_verify_in_the_other_direction() {
        let t = Token::new("secret").unwrap();
        let (c, a) = exchange((&t, SENDS), (&t, RECEIVES));
        let (c, a) = (c.unwrap(), a.unwrap());
        assert!(!c.check_acceptor(&c.connector_proof()), "reflected connector proof");
        assert!(!a.check_connector(&a.acceptor_proof()), "reflected acceptor proof");
    }

    #[test]
    fn two_accepting_ends_or_two_connecting_ends_never_agree() {
        // The relay attack: a listening sender and a listening receiver, both connected
        // to by someone who ferries their messages.
        let t = Token::new("secret").unwrap();
        let listening_sender = End { role: Role::Sender, direction: Direction::Accepted };
        let (s, r) = exchange((&t, listening_sender), (&t, RECEIVES));
        assert_eq!(s.err(), Some(PakeError::WrongSide));
        assert_eq!(r.err(), Some(PakeError::WrongSide));
        let connecting_receiver = End { role: Role::Receiver, direction: Direction::Connected };
        let (s, r) = exchange((&t, SENDS), (&t, connecting_receiver));
        assert_eq!(s.err(), Some(PakeError::WrongSide));
        assert_eq!(r.err(), Some(PakeError::WrongSide));
    }

    #[test]
    fn a_relay_that_rewrites_the_side_byte_gets_no_agreement_either() {
        let t = Token::new("secret").unwrap();
        let sender = Pake::start(&t, End { role: Role::Sender, direction: Direction::Accepted });
        let receiver = Pake::start(&t, RECEIVES);
        let (mut to_receiver, mut to_sender) = (sender.message(), receiver.message());
        (to_receiver[0], to_sender[0]) = (b'A', b'A');
        let s = sender.finish(&to_sender, b"greetings").unwrap();
        let r = receiver.finish(&to_receiver, b"greetings").unwrap();
        // Each waits for a connector's proof; neither key makes one the other accepts.
        assert!(!s.check_connector(&r.connector_proof()));
        assert!(!r.check_connector(&s.connector_proof()));
    }

    #[test]
    fn ends_that_disagree_about_roles_do_not_confirm() {
        // Two senders (or a side byte rewritten on the way): the identities differ.
        let t = Token::new("secret").unwrap();
        let also_sender = End { role: Role::Sender, direction: Direction::Accepted };
        let (c, a) = exchange((&t, SENDS), (&t, also_sender));
        let (c, a) = (c.unwrap(), a.unwrap());
        assert!(!a.check_connector(&c.connector_proof()));
    }

    #[test]
    fn keys_are_bound_to_the_greetings() {
        let t = Token::new("secret").unwrap();
        let (p1, p2) = (Pake::start(&t, SENDS), Pake::start(&t, RECEIVES));
        let (m1, m2) = (p1.message(), p2.message());
        let c = p1.finish(&m2, b"greetings as sent").unwrap();
        let a = p2.finish(&m1, b"greetings as received").unwrap();
        assert!(!a.check_connector(&c.connector_proof()));
    }

    #[test]
    fn a_message_that_is_no_point_is_refused() {
        // About half of all 32-byte strings are not a point's encoding; some of these are not.
        let t = Token::new("secret").unwrap();
        let corrupt = (0..64u8).filter(|&y| {
            let mut bad = [0u8; PAKE_LEN];
            (bad[0], bad[1]) = (b'A', y);
            Pake::start(&t, RECEIVES).finish(&bad, b"").err() == Some(PakeError::Corrupt)
        });
        assert!(corrupt.count() > 0);
    }

    #[test]
    fn generated_tokens_are_fresh_and_typeable() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.reveal().len(), 24);
        assert!(a.reveal().chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
    }

    #[test]
    fn tokens_are_trimmed_and_never_printed() {
        assert_eq!(Token::new("  x \n").unwrap().reveal(), "x");
        assert!(Token::new(" \n").is_err());
        assert_eq!(format!("{:?}", Token::new("hunter2").unwrap()), "Token(…)");
    }
}
