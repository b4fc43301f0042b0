//! The zcp wire protocol, version 2: pure encoding and decoding over `Read`/`Write`. It owns the
//! byte layout and its limits; it does not choose data paths or touch files (see `copy`, `send`,
//! `recv`). The specification, the handshake and its security argument are in
//! [`crate::manual::protocol`].

mod message;
pub mod names;
mod wire;

pub use message::{
    Answer, Entry, EntryKind, ErrorCode, FileEnd, Message, Offer, Plan, RefuseCode, SideStats,
    Summary, Verdict, VerdictStatus,
};

use std::fmt;
use std::io::{self, Read, Write};

/// First bytes of every zcp connection, from the sender and answered by the receiver.
pub const MAGIC: [u8; 8] = *b"\x89ZCP\r\n\x1a\n";
/// The protocol version this build speaks.
pub const VERSION: u16 = 2;
/// Largest chunk in the chunked data form.
pub const MAX_CHUNK: u32 = 16 << 20;
/// Largest number of entries in one offer.
pub const MAX_ENTRIES: u32 = 1_000_000;
/// Longest entry name, in bytes.
pub const MAX_NAME: usize = 4096;
/// Most name bytes one offer may hold, all its names together: a million entries with names
/// of 32 bytes on average fit (a real tree of a million files has shorter relative paths).
pub const MAX_OFFER_NAMES: usize = 32 << 20;
/// Most components in one name (`a/b/c` has 3): deeper than real trees go, and it bounds the
/// directories one name can ask the receiver to walk or create.
pub const MAX_DEPTH: usize = 256;

/// Length of the greeting.
pub const HELLO_LEN: usize = 8 + 2 + 4 + 32;
/// Greeting flag: the sender will prove the token / the receiver requires it.
pub const FLAG_AUTH: u32 = 1;
/// Greeting flag: this end runs with `--no-auth` on purpose (not merely without a token).
pub const FLAG_NO_AUTH: u32 = 2;
/// Greeting flag: this end takes file data in the sparse form (SPARSE_START). Every greeting
/// of this build carries it; a sender uses the form only when the receiver's did.
pub const FLAG_SPARSE: u32 = 4;
/// Greeting flag: this end runs with `--encrypt` (set in the accepting end's plaintext
/// preface and in both greetings inside the tunnel).
pub const FLAG_ENCRYPT: u32 = 8;
/// First byte of a TLS handshake record: what a plaintext end sees from an `--encrypt` peer.
pub const TLS_HANDSHAKE: u8 = 0x16;

/// The opening greeting of either end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the end speaks.
    pub version: u16,
    /// `FLAG_*` bits: what the end requires or takes.
    pub flags: u32,
    /// Fresh random bytes the peer's token proof must cover (zero when not authenticating).
    pub nonce: [u8; 32],
}

impl Hello {
    /// The greeting this build sends, without authentication.
    pub fn ours() -> Self {
        Hello { version: VERSION, flags: FLAG_SPARSE, nonce: [0; 32] }
    }

    /// The greeting this build sends, offering or requiring a token proof over `nonce`.
    pub fn with_auth(nonce: [u8; 32]) -> Self {
        Hello { version: VERSION, flags: FLAG_AUTH | FLAG_SPARSE, nonce }
    }

    /// The greeting of an end that runs with `--no-auth`.
    pub fn no_auth() -> Self {
        Hello { version: VERSION, flags: FLAG_NO_AUTH | FLAG_SPARSE, nonce: [0; 32] }
    }

    /// Whether the end proves (sender) or requires (receiver) a token.
    pub fn auth(&self) -> bool {
        self.flags & FLAG_AUTH != 0
    }

    /// Whether the peer runs with `--encrypt`.
    pub fn encrypts(&self) -> bool {
        self.flags & FLAG_ENCRYPT != 0
    }

    /// This greeting, saying `--encrypt` too.
    pub fn encrypting(self) -> Self {
        Hello { flags: self.flags | FLAG_ENCRYPT, ..self }
    }

    /// Whether the peer said `--no-auth` (and asks for no token proof).
    pub fn said_no_auth(&self) -> bool {
        self.flags & FLAG_NO_AUTH != 0 && !self.auth()
    }

    /// Whether this end takes the sparse data form.
    pub fn takes_sparse(&self) -> bool {
        self.flags & FLAG_SPARSE != 0
    }
}

/// Why bytes from the peer could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The first bytes were not the zcp magic.
    NotZcpPeer,
    /// The first byte opens a TLS handshake: the peer runs with `--encrypt`, this end does not.
    TlsPeer,
    /// The peer speaks another protocol version.
    UnsupportedVersion(u16),
    /// The connection ended cleanly where a message should start.
    Closed,
    /// The connection ended inside a message.
    Truncated(&'static str),
    /// A length field is larger than this end accepts.
    TooLarge {
        /// What the length is of.
        what: &'static str,
        /// The length the peer sent.
        len: u64,
        /// The most this end accepts.
        max: u64,
    },
    /// A frame type this version does not know.
    UnknownFrame(u8),
    /// A well-formed frame that does not belong here.
    Unexpected {
        /// The frame the protocol calls for here.
        expected: &'static str,
        /// The frame that came.
        got: &'static str,
    },
    /// A field holds a value the protocol does not allow.
    Malformed(String),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::NotZcpPeer => write!(f, "not a zcp peer (unexpected greeting)"),
            ProtocolError::TlsPeer => write!(
                f,
                "the peer runs with --encrypt (it opened with TLS): this end must use --encrypt too"
            ),
            ProtocolError::UnsupportedVersion(v) => {
                write!(f, "peer speaks zcp protocol version {v}, this build speaks {VERSION}")
            }
            ProtocolError::Closed => write!(f, "connection closed by peer"),
            ProtocolError::Truncated(what) => write!(f, "stream truncated inside {what}"),
            ProtocolError::TooLarge { what, len, max } => {
                write!(f, "{what} of {len} bytes exceeds the limit of {max}")
            }
            ProtocolError::UnknownFrame(t) => write!(f, "unknown frame type 0x{t:02x}"),
            ProtocolError::Unexpected { expected, got } => {
                write!(f, "expected {expected}, got {got}")
            }
            ProtocolError::Malformed(why) => write!(f, "malformed message: {why}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// An I/O failure or a protocol violation while reading from the peer.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed.
    Io(io::Error),
    /// The bytes broke the protocol.
    Protocol(ProtocolError),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<ProtocolError> for ReadError {
    fn from(e: ProtocolError) -> Self {
        ReadError::Protocol(e)
    }
}

impl From<ReadError> for anyhow::Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => e.into(),
            ReadError::Protocol(e) => e.into(),
        }
    }
}

/// Writes our greeting.
pub fn write_hello(w: &mut impl Write, hello: Hello) -> io::Result<()> {
    let mut buf = [0u8; HELLO_LEN];
    buf[..8].copy_from_slice(&MAGIC);
    buf[8..10].copy_from_slice(&hello.version.to_be_bytes());
    buf[10..14].copy_from_slice(&hello.flags.to_be_bytes());
    buf[14..].copy_from_slice(&hello.nonce);
    w.write_all(&buf)
}

/// Reads the peer's greeting, failing with `NotZcpPeer` at the first byte that differs from the
/// magic, without waiting for the rest (a netcat user may never send more).
pub fn read_hello(r: &mut impl Read) -> Result<Hello, ReadError> {
    let mut buf = [0u8; HELLO_LEN];
    let mut got = 0;
    while got < buf.len() {
        let n = match r.read(&mut buf[got..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let magic_seen = (got + n).min(MAGIC.len());
        if got == 0 && n > 0 && buf[0] == TLS_HANDSHAKE {
            return Err(ProtocolError::TlsPeer.into());
        }
        if buf[..magic_seen] != MAGIC[..magic_seen] {
            return Err(ProtocolError::NotZcpPeer.into());
        }
        if n == 0 {
            return Err(if got == 0 {
                ProtocolError::Closed
            } else if got < MAGIC.len() {
                ProtocolError::NotZcpPeer
            } else {
                ProtocolError::Truncated("greeting")
            }
            .into());
        }
        got += n;
    }
    let mut nonce = [0u8; 32];
    nonce.copy_from_slice(&buf[14..]);
    Ok(Hello {
        version: u16::from_be_bytes([buf[8], buf[9]]),
        flags: u32::from_be_bytes([buf[10], buf[11], buf[12], buf[13]]),
        nonce,
    })
}

/// Writes one framed message in a single `write_all`.
pub fn write_message(w: &mut impl Write, msg: &Message) -> io::Result<()> {
    w.write_all(&frame(msg))
}

/// Writes a PLAN frame of `answers`, encoded as they come (the bytes of `Message::Plan`).
pub fn write_plan(
    w: &mut impl Write,
    answers: impl ExactSizeIterator<Item = Answer>,
) -> io::Result<()> {
    let mut e = wire::Encoder::after_header(FRAME_HEADER);
    let kind = message::encode_plan(&mut e, answers);
    w.write_all(&with_header(kind, e.into_inner()))
}

/// Fills in the header of a frame built behind room for it.
fn with_header(kind: u8, mut frame: Vec<u8>) -> Vec<u8> {
    let len = (frame.len() - FRAME_HEADER) as u32;
    frame[0] = kind;
    frame[1..FRAME_HEADER].copy_from_slice(&len.to_be_bytes());
    frame
}

/// One framed message as bytes, for callers that gather several frames into one write.
pub fn frame(msg: &Message) -> Vec<u8> {
    // Built in place behind room for the header: a 30 MB PLAN is not copied once more.
    let mut e = wire::Encoder::after_header(FRAME_HEADER);
    let kind = msg.encode_into(&mut e);
    with_header(kind, e.into_inner())
}

/// Reads one framed message. The payload buffer grows only as bytes arrive, and never past the
/// frame type's limit.
pub fn read_message(r: &mut impl Read) -> Result<Message, ReadError> {
    let mut header = [0u8; FRAME_HEADER];
    read_full(r, &mut header, "frame header", true)?;
    let kind = header[0];
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as u64;
    let (name, max) = Message::limits(kind).ok_or(ProtocolError::UnknownFrame(kind))?;
    if len > max {
        return Err(ProtocolError::TooLarge { what: name, len, max }.into());
    }
    let mut payload = Vec::new();
    r.take(len).read_to_end(&mut payload)?;
    if payload.len() as u64 != len {
        return Err(ProtocolError::Truncated(name).into());
    }
    Ok(Message::decode(kind, &payload)?)
}

/// Length of a frame's header: type and payload length.
pub const FRAME_HEADER: usize = 1 + 4;
/// Length of a whole FILE_START frame: the receiver knows where each file's bytes begin.
pub const FILE_START_FRAME: usize = FRAME_HEADER + 4 + 8;
/// Length of a whole FILE_END frame.
pub const FILE_END_FRAME: usize = FRAME_HEADER + 1 + 16;

/// Length of the header of one run of the sparse data form.
pub const SPARSE_RUN_HEADER: usize = 8 + 8;

/// The header of one run of the sparse data form: `hole` bytes of zeros (not sent), then
/// `data` bytes that follow raw.
pub fn sparse_run_header(hole: u64, data: u64) -> [u8; SPARSE_RUN_HEADER] {
    let mut header = [0u8; SPARSE_RUN_HEADER];
    header[..8].copy_from_slice(&hole.to_be_bytes());
    header[8..].copy_from_slice(&data.to_be_bytes());
    header
}

/// Reads the header of the next run of a sparse file that has `remaining` bytes to go: a run
/// covers at least one byte and never goes past the file's end.
pub fn read_sparse_run(r: &mut impl Read, remaining: u64) -> Result<(u64, u64), ReadError> {
    let mut buf = [0u8; SPARSE_RUN_HEADER];
    read_full(r, &mut buf, "sparse run header", false)?;
    let hole = u64::from_be_bytes([buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]]);
    let data =
        u64::from_be_bytes([buf[8], buf[9], buf[10], buf[11], buf[12], buf[13], buf[14], buf[15]]);
    match hole.checked_add(data) {
        Some(0) => Err(ProtocolError::Malformed("an empty sparse run".into()).into()),
        Some(len) if len <= remaining => Ok((hole, data)),
        _ => Err(ProtocolError::Malformed(format!(
            "a sparse run of {hole} + {data} bytes where {remaining} remain"
        ))
        .into()),
    }
}

/// Writes the header of one chunk of the chunked data form.
pub fn chunk_header(len: u32) -> [u8; 4] {
    len.to_be_bytes()
}

/// Reads the header of one chunk of the chunked data form; 0 ends the file. A connection that
/// ends cleanly where a header should start is `Closed`: the peer went away between chunks.
pub fn read_chunk_header(r: &mut impl Read) -> Result<u32, ReadError> {
    let mut buf = [0u8; 4];
    read_full(r, &mut buf, "chunk header", true)?;
    let len = u32::from_be_bytes(buf);
    if len > MAX_CHUNK {
        return Err(ProtocolError::TooLarge {
            what: "chunk",
            len: len as u64,
            max: MAX_CHUNK as u64,
        }
        .into());
    }
    Ok(len)
}

/// `read_exact` that tells a clean close (nothing read, when `boundary`) from a truncation.
fn read_full(
    r: &mut impl Read,
    buf: &mut [u8],
    what: &'static str,
    boundary: bool,
) -> Result<(), ReadError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 && boundary => return Err(ProtocolError::Closed.into()),
            Ok(0) => return Err(ProtocolError::Truncated(what).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
