//! Who may write through a receiver: the shared token, where it comes from, and the mutual
//! challenge-response that proves both ends hold it without sending it. HMAC-SHA256 over both
//! ends' fresh nonces, a different label per direction (no reflection), compared in constant
//! time. It owns no I/O beyond reading a token file; `send`/`recv` carry the proofs.

use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Length of each end's nonce.
pub const NONCE_LEN: usize = 32;
/// Length of a proof (an HMAC-SHA256 tag).
pub const PROOF_LEN: usize = 32;
/// The environment variable both ends read the token from.
pub const TOKEN_ENV: &str = "ZCP_TOKEN";

const SENDER_LABEL: &[u8] = b"zcp/1 sender proof";
const RECEIVER_LABEL: &[u8] = b"zcp/1 receiver proof";
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
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("reading random bytes: {e}"))?;
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

    /// The sender's proof: it knows the token and answers this very session's nonces.
    pub fn sender_proof(&self, sender_nonce: &[u8], receiver_nonce: &[u8]) -> [u8; PROOF_LEN] {
        self.proof(SENDER_LABEL, receiver_nonce, sender_nonce)
    }

    /// The receiver's proof, bound to the same nonces under another label.
    pub fn receiver_proof(&self, sender_nonce: &[u8], receiver_nonce: &[u8]) -> [u8; PROOF_LEN] {
        self.proof(RECEIVER_LABEL, sender_nonce, receiver_nonce)
    }

    /// Checks the peer's sender proof in constant time.
    pub fn check_sender(&self, proof: &[u8], sender_nonce: &[u8], receiver_nonce: &[u8]) -> bool {
        self.mac(SENDER_LABEL, receiver_nonce, sender_nonce).verify_slice(proof).is_ok()
    }

    /// Checks the peer's receiver proof in constant time.
    pub fn check_receiver(&self, proof: &[u8], sender_nonce: &[u8], receiver_nonce: &[u8]) -> bool {
        self.mac(RECEIVER_LABEL, sender_nonce, receiver_nonce).verify_slice(proof).is_ok()
    }

    fn proof(&self, label: &[u8], first: &[u8], second: &[u8]) -> [u8; PROOF_LEN] {
        self.mac(label, first, second).finalize().into_bytes().into()
    }

    fn mac(&self, label: &[u8], first: &[u8], second: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        for part in [label, first, second] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// A fresh nonce for one session.
pub fn nonce() -> anyhow::Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::fill(&mut n).map_err(|e| anyhow::anyhow!("reading random bytes: {e}"))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_with_the_same_token_and_nonces_only() {
        let t = Token::new("correct horse").unwrap();
        let (s, r) = ([1u8; 32], [2u8; 32]);
        assert!(t.check_sender(&t.sender_proof(&s, &r), &s, &r));
        assert!(t.check_receiver(&t.receiver_proof(&s, &r), &s, &r));
        let wrong = Token::new("battery staple").unwrap();
        assert!(!t.check_sender(&wrong.sender_proof(&s, &r), &s, &r));
        // A proof from another session (other nonces) does not replay.
        assert!(!t.check_sender(&t.sender_proof(&[3u8; 32], &r), &s, &r));
        assert!(!t.check_sender(&t.sender_proof(&s, &[4u8; 32]), &s, &r));
    }

    #[test]
    fn a_proof_cannot_be_reflected_to_the_other_direction() {
        let t = Token::new("secret").unwrap();
        let (s, r) = ([5u8; 32], [6u8; 32]);
        assert!(!t.check_receiver(&t.sender_proof(&s, &r), &s, &r));
        assert!(!t.check_sender(&t.receiver_proof(&s, &r), &s, &r));
        // Swapping the nonces does not turn one proof into the other either.
        assert!(!t.check_receiver(&t.sender_proof(&r, &s), &s, &r));
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
