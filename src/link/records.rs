//! TLS 1.3 application records (RFC 8446 §5.2), sealed and opened in place with the traffic
//! keys of a finished handshake: what the user-space record layer (`pump`) does to every byte,
//! with no copy beyond the one into its buffer. Pure: no I/O. Only application data and alerts
//! are expected after zcp's handshake (no tickets, no key updates: a session ends long before
//! an AES-GCM key's limit of 2^24.5 records, and `Sealer` refuses to go past it).

use std::ops::Range;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::ConnectionTrafficSecrets;

/// Record header: type, legacy version, length.
pub const HEADER: usize = 5;
/// Most plaintext one record carries.
pub const MAX_PLAIN: usize = 1 << 14;
/// AEAD tag of every suite zcp offers.
const TAG: usize = 16;
/// A full record: header, plaintext, inner content type, tag.
pub const MAX_RECORD: usize = HEADER + MAX_PLAIN + 1 + TAG;
/// Largest ciphertext length a peer may announce (RFC 8446 §5.2).
const MAX_CIPHERTEXT: usize = MAX_PLAIN + 256;
/// Records one key may seal: AES-GCM's limit with a margin (RFC 8446 §5.5).
const MAX_RECORDS: u64 = 1 << 24;

/// TLS content types.
pub const APPLICATION_DATA: u8 = 0x17;
pub const ALERT: u8 = 0x15;
const HANDSHAKE: u8 = 0x16;
/// Alerts (level, description; RFC 8446 §6): the end of a stream, and the fatal ones zcp sends
/// when it refuses a record.
pub const CLOSE_NOTIFY: [u8; 2] = [1, 0];
const UNEXPECTED_MESSAGE: [u8; 2] = [2, 10];
const BAD_RECORD_MAC: [u8; 2] = [2, 20];
const RECORD_OVERFLOW: [u8; 2] = [2, 22];
const INTERNAL_ERROR: [u8; 2] = [2, 80];

/// One direction's key, IV and next sequence number.
struct Keys {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Keys {
    fn new(seq: u64, secrets: &ConnectionTrafficSecrets) -> Result<Keys, String> {
        let (alg, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return Err("a cipher suite zcp does not offer".into()),
        };
        let key = UnboundKey::new(alg, key.as_ref()).map_err(|_| "a malformed TLS key")?;
        let iv = <[u8; 12]>::try_from(iv.as_ref()).map_err(|_| "a malformed TLS IV")?;
        Ok(Keys { key: LessSafeKey::new(key), iv, seq })
    }

    /// The per-record nonce: the IV XOR the sequence number, left-padded (RFC 8446 §5.3).
    fn next_nonce(&mut self) -> Result<Nonce, String> {
        if self.seq >= MAX_RECORDS {
            return Err(format!("more than {MAX_RECORDS} records under one key"));
        }
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        Ok(Nonce::assume_unique_for_key(nonce))
    }
}

/// Seals records to send.
pub struct Sealer(Keys);

impl Sealer {
    /// The sealer of a connection's transmit direction, from its extracted secrets.
    pub fn new(seq: u64, secrets: &ConnectionTrafficSecrets) -> Result<Sealer, String> {
        Keys::new(seq, secrets).map(Sealer)
    }

    /// Seals, in place, the record in `slot` whose `len` bytes of plaintext sit after the
    /// header (`slot[HEADER..HEADER + len]`); `slot` has room for the type byte and the tag.
    /// Returns the record's length.
    pub fn seal(&mut self, slot: &mut [u8], len: usize, content_type: u8) -> Result<usize, String> {
        let end = HEADER + len + 1;
        if len > MAX_PLAIN || slot.len() < end + TAG {
            return Err(format!("a record of {len} bytes does not fit"));
        }
        let body = u16::try_from(len + 1 + TAG).map_err(|_| "record too long")?.to_be_bytes();
        let header = [APPLICATION_DATA, 3, 3, body[0], body[1]];
        slot[..HEADER].copy_from_slice(&header);
        slot[end - 1] = content_type;
        let nonce = self.0.next_nonce()?;
        let tag = self
            .0
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(header), &mut slot[HEADER..end])
            .map_err(|_| "sealing a record failed")?;
        slot[end..end + TAG].copy_from_slice(tag.as_ref());
        Ok(end + TAG)
    }
}

/// Why a received record was refused; each has the alert RFC 8446 prescribes (see `alert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Not what may come after the handshake: another record type or version in the header, a
    /// handshake message, or no content type inside.
    Unexpected(String),
    /// Longer than TLS allows: announced by the header, or once opened.
    Overflow(String),
    /// The AEAD tag did not verify: the record was altered (or is not the next one, or too
    /// short to hold a tag).
    Forged,
    /// More records than one key may open (zcp does not update keys).
    Exhausted(String),
}

impl OpenError {
    /// The fatal alert that tells the peer why: `unexpected_message` (RFC 8446 §5, §5.4),
    /// `record_overflow` (§5.2, §5.4), `bad_record_mac` (§5.2), or `internal_error` for a limit
    /// of zcp's own.
    pub fn alert(&self) -> [u8; 2] {
        match self {
            OpenError::Unexpected(_) => UNEXPECTED_MESSAGE,
            OpenError::Overflow(_) => RECORD_OVERFLOW,
            OpenError::Forged => BAD_RECORD_MAC,
            OpenError::Exhausted(_) => INTERNAL_ERROR,
        }
    }
}

/// Opens received records.
pub struct Opener(Keys);

/// A record opened: its content type and where its plaintext lies in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub content_type: u8,
    pub plain: Range<usize>,
    /// Bytes of the buffer the record took.
    pub len: usize,
}

impl Opener {
    /// The opener of a connection's receive direction, from its extracted secrets.
    pub fn new(seq: u64, secrets: &ConnectionTrafficSecrets) -> Result<Opener, String> {
        Keys::new(seq, secrets).map(Opener)
    }

    /// Opens, in place, the record at the start of `buf`; `None` until all of it is there.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<Option<Opened>, OpenError> {
        let Some(header) = buf.get(..HEADER) else { return Ok(None) };
        let header: [u8; HEADER] = [header[0], header[1], header[2], header[3], header[4]];
        let body = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if header[0] != APPLICATION_DATA || header[1..3] != [3, 3] {
            let why = format!("a record of type {:#04x}, version {:?}", header[0], &header[1..3]);
            return Err(OpenError::Unexpected(why));
        }
        if body > MAX_CIPHERTEXT {
            return Err(OpenError::Overflow(format!("a record of {body} bytes")));
        }
        // Too short for a tag and a content type: it cannot authenticate.
        if body <= TAG {
            return Err(OpenError::Forged);
        }
        let Some(record) = buf.get_mut(HEADER..HEADER + body) else { return Ok(None) };
        let nonce = self.0.next_nonce().map_err(OpenError::Exhausted)?;
        let inner = self
            .0
            .key
            .open_in_place(nonce, Aad::from(header), record)
            .map_err(|_| OpenError::Forged)?;
        // Padding included, however much room the ciphertext's bound leaves (RFC 8446 §5.4).
        if inner.len() > MAX_PLAIN + 1 {
            let why = format!("a record of {} bytes of plaintext", inner.len());
            return Err(OpenError::Overflow(why));
        }
        // The content type is the last byte that is not zero padding.
        let Some(at) = inner.iter().rposition(|&b| b != 0) else {
            return Err(OpenError::Unexpected("a record with no content type".into()));
        };
        let content_type = inner[at];
        if content_type == HANDSHAKE {
            return Err(OpenError::Unexpected("a handshake message after the handshake".into()));
        }
        Ok(Some(Opened { content_type, plain: HEADER..HEADER + at, len: HEADER + body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> ConnectionTrafficSecrets {
        ConnectionTrafficSecrets::Aes256Gcm {
            key: rustls::crypto::cipher::AeadKey::from([7u8; 32]),
            iv: rustls::crypto::cipher::Iv::from([9u8; 12]),
        }
    }

    fn sealed(seq: u64, plain: &[u8], content_type: u8) -> Vec<u8> {
        let mut slot = vec![0u8; MAX_RECORD];
        slot[HEADER..HEADER + plain.len()].copy_from_slice(plain);
        let len = Sealer::new(seq, &secrets()).unwrap().seal(&mut slot, plain.len(), content_type);
        slot.truncate(len.unwrap());
        slot
    }

    #[test]
    fn a_sealed_record_opens_to_its_plaintext() {
        let mut record = sealed(3, b"zcp data", APPLICATION_DATA);
        assert_eq!(&record[..HEADER], &[0x17, 3, 3, 0, 8 + 1 + 16]);
        assert!(!record.windows(8).any(|w| w == b"zcp data"), "the plaintext shows");
        let opened = Opener::new(3, &secrets()).unwrap().open(&mut record).unwrap().unwrap();
        assert_eq!(opened.content_type, APPLICATION_DATA);
        assert_eq!(&record[opened.plain], b"zcp data");
        assert_eq!(opened.len, record.len());
    }

    #[test]
    fn a_flipped_bit_a_wrong_sequence_number_or_a_partial_record_do_not_open() {
        let good = sealed(0, b"payload", APPLICATION_DATA);
        // (A changed length only makes the record look longer or shorter: it then fails to
        // open, or waits for bytes that never come and the stream ends cut short.)
        for at in [0, 1, 2, HEADER, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            assert!(Opener::new(0, &secrets()).unwrap().open(&mut bad).is_err(), "flip at {at}");
        }
        let mut replayed = good.clone();
        assert_eq!(Opener::new(1, &secrets()).unwrap().open(&mut replayed), Err(OpenError::Forged));
        let mut partial = good[..good.len() - 1].to_vec();
        assert_eq!(Opener::new(0, &secrets()).unwrap().open(&mut partial), Ok(None));
    }

    #[test]
    fn alerts_keep_their_content_type_and_handshake_messages_are_refused() {
        let mut alert = sealed(0, &CLOSE_NOTIFY, ALERT);
        let opened = Opener::new(0, &secrets()).unwrap().open(&mut alert).unwrap().unwrap();
        assert_eq!((opened.content_type, &alert[opened.plain]), (ALERT, &CLOSE_NOTIFY[..]));
        let mut handshake = sealed(0, &[24, 0, 0, 1, 0], HANDSHAKE);
        let refused = Opener::new(0, &secrets()).unwrap().open(&mut handshake).unwrap_err();
        assert_eq!(refused.alert(), UNEXPECTED_MESSAGE, "{refused:?}");
    }

    #[test]
    fn each_refusal_names_its_alert() {
        let open = |seq: u64, mut record: Vec<u8>| {
            Opener::new(seq, &secrets()).unwrap().open(&mut record).unwrap_err()
        };
        // RFC 8446 §5.4: all padding, no content type.
        let empty = open(0, sealed_raw(&[0; 8]));
        assert_eq!(
            (empty.alert(), &empty),
            (UNEXPECTED_MESSAGE, &OpenError::Unexpected("a record with no content type".into()))
        );
        let mut altered = sealed(0, b"payload", APPLICATION_DATA);
        altered[HEADER] ^= 1;
        assert_eq!(open(0, altered).alert(), BAD_RECORD_MAC);
        let spent = open(MAX_RECORDS, sealed(0, b"payload", APPLICATION_DATA));
        assert!(matches!(spent, OpenError::Exhausted(_)), "{spent:?}");
        assert_eq!(spent.alert(), INTERNAL_ERROR);
    }

    /// A record sealed by hand, past `Sealer`'s checks: `inner` is its whole TLSInnerPlaintext.
    fn sealed_raw(inner: &[u8]) -> Vec<u8> {
        let mut keys = Keys::new(0, &secrets()).unwrap();
        let len = u16::try_from(inner.len() + TAG).unwrap().to_be_bytes();
        let header = [APPLICATION_DATA, 3, 3, len[0], len[1]];
        let mut body = inner.to_vec();
        let nonce = keys.next_nonce().unwrap();
        let tag = keys.key.seal_in_place_separate_tag(nonce, Aad::from(header), &mut body);
        [&header[..], &body, tag.unwrap().as_ref()].concat()
    }

    #[test]
    fn an_inner_plaintext_past_2_14_plus_1_bytes_is_refused_padding_included() {
        // RFC 8446 §5.4: even where the ciphertext's bound (2^14 + 256) leaves room.
        let inner = |content: usize, padding: usize| {
            let mut inner = vec![b'x'; content];
            inner.push(APPLICATION_DATA);
            inner.resize(content + 1 + padding, 0);
            sealed_raw(&inner)
        };
        let open = |mut record: Vec<u8>| Opener::new(0, &secrets()).unwrap().open(&mut record);
        let full = open(inner(MAX_PLAIN, 0)).unwrap().unwrap();
        assert_eq!(full.plain, HEADER..HEADER + MAX_PLAIN);
        for (content, padding) in [(MAX_PLAIN + 1, 0), (MAX_PLAIN, 1), (10, MAX_PLAIN)] {
            let refused = open(inner(content, padding)).unwrap_err();
            assert!(matches!(refused, OpenError::Overflow(_)), "{content}+{padding}: {refused:?}");
            assert_eq!(refused.alert(), RECORD_OVERFLOW, "record_overflow (RFC 8446 §5.4)");
        }
        assert!(open(inner(10, MAX_PLAIN - 10)).unwrap().is_some(), "padding within the bound");
    }

    #[test]
    fn a_header_announcing_too_long_or_too_short_a_record_is_refused_at_once() {
        // Refused from the header alone: the reader does not wait for (or buffer) the body.
        let refused = |mut header: [u8; HEADER]| {
            let opened = Opener::new(0, &secrets()).unwrap().open(&mut header);
            opened.expect_err("refused from the header").alert()
        };
        for (len, alert) in [
            (0, BAD_RECORD_MAC),
            (TAG, BAD_RECORD_MAC),
            (MAX_CIPHERTEXT + 1, RECORD_OVERFLOW),
            (usize::from(u16::MAX), RECORD_OVERFLOW),
        ] {
            let [hi, lo] = u16::try_from(len).unwrap().to_be_bytes();
            assert_eq!(refused([APPLICATION_DATA, 3, 3, hi, lo]), alert, "a record of {len} bytes");
        }
        // The longest and shortest records allowed wait for their bodies.
        for len in [MAX_CIPHERTEXT, TAG + 1] {
            let [hi, lo] = u16::try_from(len).unwrap().to_be_bytes();
            let mut header = [APPLICATION_DATA, 3, 3, hi, lo];
            let opened = Opener::new(0, &secrets()).unwrap().open(&mut header);
            assert_eq!(opened, Ok(None), "a record of {len} bytes");
        }
        assert_eq!(refused([APPLICATION_DATA, 3, 1, 0, 40]), UNEXPECTED_MESSAGE, "version 3.1");
        assert_eq!(refused([ALERT, 3, 3, 0, 2]), UNEXPECTED_MESSAGE, "a plaintext alert");
    }

    #[test]
    fn the_nonce_is_the_iv_xor_the_sequence_number() {
        let mut keys = Keys::new(0x0102, &secrets()).unwrap();
        let nonce = keys.next_nonce().unwrap();
        let mut want = [9u8; 12];
        (want[10], want[11]) = (9 ^ 1, 9 ^ 2);
        assert_eq!(nonce.as_ref(), &want);
        assert_eq!(keys.seq, 0x0103);
    }
}
