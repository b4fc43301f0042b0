//! The framed messages of protocol version 2 and their payload layouts (documented in the module
//! above).

use super::wire::{Decoder, Encoder};
use super::{MAX_ENTRIES, MAX_NAME, ProtocolError};
use crate::datapath::{DataPath, Fallback};

const OFFER: u8 = 0x01;
const PLAN: u8 = 0x02;
const FILE_END: u8 = 0x03;
const FINISH: u8 = 0x04;
const SUMMARY: u8 = 0x05;
const AUTH: u8 = 0x06;
const FILE_START: u8 = 0x07;
const PAKE: u8 = 0x08;
const SPARSE_START: u8 = 0x09;
const ERROR: u8 = 0x7F;

const SMALL_LIMIT: u64 = 1 << 20;
/// Limit of the frames that list entries: a million entries with short names fit.
pub(super) const LIST_LIMIT: u64 = 64 << 20;
/// Longest reason or message text we send.
const MAX_TEXT: usize = 1024;
/// Smallest encoded entry: fixed fields plus a one-byte name.
const MIN_ENTRY: usize = 1 + 1 + 8 + 4 + 8 + 4 + 2 + 1;
const XXH3_128: u8 = 1;
/// Smallest encoded answer: action, offset, prefix digest, code, empty reason.
const ANSWER_LEN: usize = 1 + 8 + 16 + 2 + 2;

/// One message of the framed part of a session; the byte layout of each is in
/// `crate::manual::protocol`.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// The sender's manifest of every entry.
    Offer(Offer),
    /// The receiver's answer to each entry of the offer.
    Plan(Plan),
    /// A file's bytes are done: its whole-file checksum.
    FileEnd(FileEnd),
    /// The sender is done: its statistics.
    Finish(SideStats),
    /// The receiver's verdicts and statistics, last.
    Summary(Summary),
    /// Key confirmation: proof that this end holds the session token (see `link::auth`).
    Auth {
        /// HMAC-SHA-256 over the transcript, keyed from the SPAKE2 secret.
        proof: [u8; 32],
    },
    /// This end's SPAKE2 message: a side byte and a point (see `link::auth`).
    Pake {
        /// The side byte and the compressed point.
        message: [u8; 33],
    },
    /// The bytes of entry `index` follow, from `offset` on.
    FileStart {
        /// The entry's position in the offer.
        index: u32,
        /// The first byte that follows.
        offset: u64,
    },
    /// As FILE_START, but the bytes follow in the sparse form (runs of a hole and data),
    /// only to a receiver whose greeting carried `FLAG_SPARSE`.
    SparseStart {
        /// The entry's position in the offer.
        index: u32,
        /// The first byte that follows.
        offset: u64,
    },
    /// This end gives up; the connection closes after it.
    Error {
        /// The class of the failure, which decides the peer's exit code.
        code: ErrorCode,
        /// The failure in words, shown to the peer's user (escaped).
        message: String,
    },
}

/// The sender's manifest: every entry of the session, announced at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Every entry, directories before what they hold.
    pub entries: Vec<Entry>,
}

/// One offered file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// A file or a directory.
    pub kind: EntryKind,
    /// Relative path as raw bytes, `/`-separated.
    pub name: Vec<u8>,
    /// `None` when the source cannot tell its length (a pipe): its bytes come chunked.
    pub size: Option<u64>,
    /// Permission bits as the source has them (the receiver clears setuid/setgid/sticky and
    /// its umask).
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime_sec: i64,
    /// Modification time, the nanoseconds within its second.
    pub mtime_nsec: u32,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file, a stream or a pseudo file: bytes follow.
    File,
    /// A directory: created by the receiver, no bytes follow.
    Dir,
}

/// The receiver's answer to an offer, one per entry, in offer order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// One answer per offered entry.
    pub answers: Vec<Answer>,
}

/// What the receiver wants for one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Send the bytes from this offset on.
    Send {
        /// The first byte to send.
        offset: u64,
    },
    /// The receiver holds the first `offset` bytes, whose xxh3-128 is `prefix_xxh3`: send the
    /// rest if the sender's prefix matches, else everything from 0.
    Resume {
        /// The length of the part the receiver holds.
        offset: u64,
        /// The xxh3-128 of that part.
        prefix_xxh3: u128,
    },
    /// Send nothing; the receiver already has it.
    Skip,
    /// The entry will not be written.
    Refuse {
        /// The class of the refusal.
        code: RefuseCode,
        /// The refusal in words, shown on both ends.
        reason: String,
    },
}

/// Why a receiver refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseCode {
    /// The target exists (and neither `--force` nor `--skip-existing` applies).
    Exists,
    /// The name breaks the naming rule (absolute, `..`, empty components, NUL).
    InvalidName,
    /// The receiver cannot write there.
    NotWritable,
    /// The plan does not fit `--max-size` or the free space.
    NoSpace,
    /// The receiver cannot take this kind of entry.
    Unsupported,
    /// Anything else; the reason says what.
    Other,
}

/// Sent after each file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEnd {
    /// xxh3-128 of the whole file, from byte 0.
    pub xxh3: u128,
}

/// The receiver's closing word: one verdict per file that was sent, and its statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// One verdict per file that was sent, in the order they were sent.
    pub verdicts: Vec<Verdict>,
    /// The receiver's measurements.
    pub stats: SideStats,
}

/// The outcome of one received file.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the file matched and was put in place.
    pub status: VerdictStatus,
    /// Why not, in words; empty when it was.
    pub detail: String,
}

/// The detail of an `Ok` verdict on a file the receiver kept as it was, holding the same
/// content already (`--checksum`). An older sender reads it as any `Ok`.
const UNCHANGED: &str = "unchanged";

impl Verdict {
    /// The verdict on a file the receiver kept as it was: its content was the same.
    pub fn unchanged() -> Verdict {
        Verdict { status: VerdictStatus::Ok, detail: UNCHANGED.into() }
    }

    /// Whether the receiver kept its own copy, the same content (see `unchanged`).
    pub fn is_unchanged(&self) -> bool {
        self.status == VerdictStatus::Ok && self.detail == UNCHANGED
    }
}

/// Whether a received file matched and was put in place (wire codes 1, 2, 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictStatus {
    /// It matched and is in place.
    Ok,
    /// Its checksum differed: nothing was put in place.
    ChecksumMismatch,
    /// It matched, but was refused when it was to be put in place (its name was taken).
    Failed,
}

/// Why an end gave up, sent in an ERROR frame before it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The peer broke the protocol.
    Protocol,
    /// The peer speaks another protocol version.
    UnsupportedVersion,
    /// A local file error on the end that sends it.
    Io,
    /// The end that sends it was stopped, or broke the session off (a timeout).
    Interrupted,
    /// The token proof failed or is missing.
    Auth,
    /// The receiver serves as many sessions as it may.
    Busy,
    /// A limit or timeout of the receiver was hit.
    Limit,
}

/// What one end measured over the data phase of a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SideStats {
    /// The data path that moved the bytes; `None` when no data call was made.
    pub data_path: Option<DataPath>,
    /// File bytes this end moved.
    pub bytes: u64,
    /// Data-path system calls (sendfile, splice, read, write).
    pub calls: u64,
    /// System calls spent reading data back for the checksum (pread, tee, read).
    pub checksum_calls: u64,
    /// Capacity of the pipe used by splice, 0 when none.
    pub pipe_bytes: u32,
    /// Wall time of the data phase, in microseconds.
    pub elapsed_us: u64,
    /// User CPU time of the process over the data phase, all threads, in microseconds.
    pub user_us: u64,
    /// System CPU time of the process over the data phase, all threads, in microseconds.
    pub sys_us: u64,
    /// Peak resident memory of the process, in KiB.
    pub peak_rss_kib: u64,
    /// Voluntary context switches over the data phase.
    pub voluntary_switches: u64,
    /// Involuntary context switches over the data phase.
    pub involuntary_switches: u64,
    /// Paths tried before `path`, in order, and why each gave way.
    pub fallbacks: Vec<Fallback>,
}

impl Message {
    /// The name and payload limit of a frame type, or `None` when the type is unknown.
    pub(super) fn limits(kind: u8) -> Option<(&'static str, u64)> {
        Some(match kind {
            OFFER => ("OFFER", LIST_LIMIT),
            PLAN => ("PLAN", LIST_LIMIT),
            FILE_END => ("FILE_END", SMALL_LIMIT),
            FINISH => ("FINISH", SMALL_LIMIT),
            SUMMARY => ("SUMMARY", LIST_LIMIT),
            AUTH => ("AUTH", SMALL_LIMIT),
            FILE_START => ("FILE_START", SMALL_LIMIT),
            SPARSE_START => ("SPARSE_START", SMALL_LIMIT),
            PAKE => ("PAKE", SMALL_LIMIT),
            ERROR => ("ERROR", SMALL_LIMIT),
            _ => return None,
        })
    }

    /// The frame name of this message, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Offer(_) => "OFFER",
            Message::Plan(_) => "PLAN",
            Message::FileEnd(_) => "FILE_END",
            Message::Finish(_) => "FINISH",
            Message::Summary(_) => "SUMMARY",
            Message::Auth { .. } => "AUTH",
            Message::FileStart { .. } => "FILE_START",
            Message::SparseStart { .. } => "SPARSE_START",
            Message::Pake { .. } => "PAKE",
            Message::Error { .. } => "ERROR",
        }
    }

    /// The frame type and payload, apart (tests take frames apart with it).
    #[cfg(test)]
    pub(super) fn encode(&self) -> (u8, Vec<u8>) {
        let mut e = Encoder::new();
        let kind = self.encode_into(&mut e);
        (kind, e.into_inner())
    }

    /// Appends the payload to `e` and returns the frame type.
    pub(super) fn encode_into(&self, e: &mut Encoder) -> u8 {
        match self {
            Message::Offer(offer) => {
                e.u32(offer.entries.len() as u32);
                offer.entries.iter().for_each(|entry| encode_entry(e, entry));
                OFFER
            }
            Message::Plan(plan) => {
                e.reserve(4 + plan.answers.len() * ANSWER_LEN).u32(plan.answers.len() as u32);
                plan.answers.iter().for_each(|answer| encode_answer(e, answer));
                PLAN
            }
            Message::FileEnd(end) => {
                e.u8(XXH3_128).raw(&end.xxh3.to_be_bytes());
                FILE_END
            }
            Message::Finish(stats) => {
                encode_stats(e, stats);
                FINISH
            }
            Message::Summary(summary) => {
                e.u32(summary.verdicts.len() as u32);
                for v in &summary.verdicts {
                    e.u8(v.status.to_wire()).text(&v.detail, MAX_TEXT);
                }
                encode_stats(e, &summary.stats);
                SUMMARY
            }
            Message::Auth { proof } => {
                e.raw(proof);
                AUTH
            }
            Message::FileStart { index, offset } => {
                e.u32(*index).u64(*offset);
                FILE_START
            }
            Message::SparseStart { index, offset } => {
                e.u32(*index).u64(*offset);
                SPARSE_START
            }
            Message::Pake { message } => {
                e.raw(message);
                PAKE
            }
            Message::Error { code, message } => {
                e.u16(code.to_wire()).text(message, MAX_TEXT);
                ERROR
            }
        }
    }

    pub(super) fn decode(kind: u8, payload: &[u8]) -> Result<Message, ProtocolError> {
        let (name, _) = Self::limits(kind).ok_or(ProtocolError::UnknownFrame(kind))?;
        let mut d = Decoder::new(payload, name);
        let msg = match kind {
            OFFER => {
                Message::Offer(Offer { entries: decode_list(&mut d, MIN_ENTRY, decode_entry)? })
            }
            PLAN => {
                Message::Plan(Plan { answers: decode_list(&mut d, ANSWER_LEN, decode_answer)? })
            }
            FILE_END => {
                let algorithm = d.u8()?;
                if algorithm != XXH3_128 {
                    return Err(malformed(format!("unknown checksum algorithm {algorithm}")));
                }
                Message::FileEnd(FileEnd { xxh3: d.u128()? })
            }
            FINISH => Message::Finish(decode_stats(&mut d)?),
            SUMMARY => {
                let verdicts = decode_list(&mut d, 1 + 2, |d| {
                    Ok(Verdict { status: VerdictStatus::from_wire(d.u8()?)?, detail: d.text()? })
                })?;
                Message::Summary(Summary { verdicts, stats: decode_stats(&mut d)? })
            }
            AUTH => {
                let mut proof = [0u8; 32];
                proof.copy_from_slice(d.take(32)?);
                Message::Auth { proof }
            }
            FILE_START => Message::FileStart { index: d.u32()?, offset: d.u64()? },
            SPARSE_START => Message::SparseStart { index: d.u32()?, offset: d.u64()? },
            PAKE => {
                let mut message = [0u8; 33];
                message.copy_from_slice(d.take(33)?);
                Message::Pake { message }
            }
            _ => Message::Error { code: ErrorCode::from_wire(d.u16()?), message: d.text()? },
        };
        d.finish()?;
        Ok(msg)
    }
}

fn malformed(why: String) -> ProtocolError {
    ProtocolError::Malformed(why)
}

/// A `u32` count then that many items, refusing counts the payload cannot hold before allocating.
fn decode_list<'a, T>(
    d: &mut Decoder<'a>,
    min_item: usize,
    item: impl Fn(&mut Decoder<'a>) -> Result<T, ProtocolError>,
) -> Result<Vec<T>, ProtocolError> {
    let count = d.u32()?;
    if count > MAX_ENTRIES {
        return Err(ProtocolError::TooLarge {
            what: "entry count",
            len: count as u64,
            max: MAX_ENTRIES as u64,
        });
    }
    if (count as usize).saturating_mul(min_item) > d.remaining() {
        return Err(malformed(format!("{count} items cannot fit in {} bytes", d.remaining())));
    }
    (0..count).map(|_| item(d)).collect()
}

fn encode_entry(e: &mut Encoder, entry: &Entry) {
    let kind = match entry.kind {
        EntryKind::File => 1,
        EntryKind::Dir => 2,
    };
    e.u8(kind)
        .u8(u8::from(entry.size.is_some()))
        .u64(entry.size.unwrap_or(0))
        .u32(entry.mode)
        .i64(entry.mtime_sec)
        .u32(entry.mtime_nsec)
        .bytes16(&entry.name);
}

fn decode_entry(d: &mut Decoder<'_>) -> Result<Entry, ProtocolError> {
    let kind = match d.u8()? {
        1 => EntryKind::File,
        2 => EntryKind::Dir,
        k => return Err(malformed(format!("unknown entry kind {k}"))),
    };
    let flags = d.u8()?;
    if flags & !1 != 0 {
        return Err(malformed(format!("unknown entry flags 0x{flags:02x}")));
    }
    let size = d.u64()?;
    let (mode, mtime_sec, mtime_nsec) = (d.u32()?, d.i64()?, d.u32()?);
    if mtime_nsec >= 1_000_000_000 {
        return Err(malformed(format!("mtime nanoseconds {mtime_nsec} out of range")));
    }
    let name = d.bytes16()?;
    if name.is_empty() {
        return Err(malformed("empty entry name".into()));
    }
    if name.len() > MAX_NAME {
        return Err(ProtocolError::TooLarge {
            what: "entry name",
            len: name.len() as u64,
            max: MAX_NAME as u64,
        });
    }
    if size > i64::MAX as u64 {
        return Err(malformed(format!("entry size {size} is larger than any file can be")));
    }
    let size = (flags & 1 == 1).then_some(size);
    Ok(Entry { kind, name: name.to_vec(), size, mode, mtime_sec, mtime_nsec })
}

/// Appends a PLAN payload made of `answers`, one at a time: the same bytes as
/// `Message::Plan`, without a list of a million answers held first.
pub(super) fn encode_plan(e: &mut Encoder, answers: impl ExactSizeIterator<Item = Answer>) -> u8 {
    e.reserve(4 + answers.len() * ANSWER_LEN).u32(answers.len() as u32);
    answers.for_each(|answer| encode_answer(e, &answer));
    PLAN
}

fn encode_answer(e: &mut Encoder, answer: &Answer) {
    let (action, offset, prefix, code, reason) = match answer {
        Answer::Send { offset } => (1, *offset, 0, 0, ""),
        Answer::Skip => (2, 0, 0, 0, ""),
        Answer::Refuse { code, reason } => (3, 0, 0, code.to_wire(), reason.as_str()),
        Answer::Resume { offset, prefix_xxh3 } => (4, *offset, *prefix_xxh3, 0, ""),
    };
    e.u8(action).u64(offset).raw(&prefix.to_be_bytes()).u16(code).text(reason, MAX_TEXT);
}

fn decode_answer(d: &mut Decoder<'_>) -> Result<Answer, ProtocolError> {
    let (action, offset, prefix_xxh3) = (d.u8()?, d.u64()?, d.u128()?);
    let (code, reason) = (d.u16()?, d.text()?);
    Ok(match action {
        1 => Answer::Send { offset },
        2 => Answer::Skip,
        3 => Answer::Refuse { code: RefuseCode::from_wire(code), reason },
        4 => Answer::Resume { offset, prefix_xxh3 },
        a => return Err(malformed(format!("unknown plan action {a}"))),
    })
}

fn encode_stats(e: &mut Encoder, s: &SideStats) {
    e.u8(s.data_path.map_or(0, path_code))
        .u64(s.bytes)
        .u64(s.calls)
        .u64(s.checksum_calls)
        .u32(s.pipe_bytes)
        .u64(s.elapsed_us)
        .u64(s.user_us)
        .u64(s.sys_us)
        .u64(s.peak_rss_kib)
        .u64(s.voluntary_switches)
        .u64(s.involuntary_switches)
        .u16(s.fallbacks.len().min(u16::MAX as usize) as u16);
    for f in s.fallbacks.iter().take(u16::MAX as usize) {
        e.u8(path_code(f.from)).i32(f.errno.unwrap_or(0)).text(&f.reason, MAX_TEXT);
    }
}

fn decode_stats(d: &mut Decoder<'_>) -> Result<SideStats, ProtocolError> {
    let path = match d.u8()? {
        0 => None,
        v => Some(path_from_code(v)?),
    };
    let mut s = SideStats {
        data_path: path,
        bytes: d.u64()?,
        calls: d.u64()?,
        checksum_calls: d.u64()?,
        pipe_bytes: d.u32()?,
        elapsed_us: d.u64()?,
        user_us: d.u64()?,
        sys_us: d.u64()?,
        peak_rss_kib: d.u64()?,
        voluntary_switches: d.u64()?,
        involuntary_switches: d.u64()?,
        fallbacks: Vec::new(),
    };
    for _ in 0..d.u16()? {
        let from = path_from_code(d.u8()?)?;
        let errno = Some(d.i32()?).filter(|&e| e != 0);
        s.fallbacks.push(Fallback { from, errno, reason: d.text()? });
    }
    Ok(s)
}

/// A data path's code in SUMMARY and FINISH (0 stands for "none" and is not a path).
fn path_code(path: DataPath) -> u8 {
    match path {
        DataPath::Sendfile => 1,
        DataPath::Splice => 2,
        DataPath::Buffered => 3,
    }
}

fn path_from_code(code: u8) -> Result<DataPath, ProtocolError> {
    Ok(match code {
        1 => DataPath::Sendfile,
        2 => DataPath::Splice,
        3 => DataPath::Buffered,
        _ => return Err(malformed("unknown data path".into())),
    })
}

impl RefuseCode {
    fn to_wire(self) -> u16 {
        match self {
            RefuseCode::Exists => 1,
            RefuseCode::InvalidName => 2,
            RefuseCode::NotWritable => 3,
            RefuseCode::NoSpace => 4,
            RefuseCode::Unsupported => 5,
            RefuseCode::Other => 6,
        }
    }

    fn from_wire(v: u16) -> Self {
        match v {
            1 => RefuseCode::Exists,
            2 => RefuseCode::InvalidName,
            3 => RefuseCode::NotWritable,
            4 => RefuseCode::NoSpace,
            5 => RefuseCode::Unsupported,
            _ => RefuseCode::Other,
        }
    }
}

impl VerdictStatus {
    fn to_wire(self) -> u8 {
        match self {
            VerdictStatus::Ok => 1,
            VerdictStatus::ChecksumMismatch => 2,
            VerdictStatus::Failed => 3,
        }
    }

    fn from_wire(v: u8) -> Result<Self, ProtocolError> {
        Ok(match v {
            1 => VerdictStatus::Ok,
            2 => VerdictStatus::ChecksumMismatch,
            3 => VerdictStatus::Failed,
            _ => return Err(malformed(format!("unknown verdict status {v}"))),
        })
    }
}

impl ErrorCode {
    fn to_wire(self) -> u16 {
        match self {
            ErrorCode::Protocol => 1,
            ErrorCode::UnsupportedVersion => 2,
            ErrorCode::Io => 3,
            ErrorCode::Interrupted => 4,
            ErrorCode::Auth => 5,
            ErrorCode::Busy => 6,
            ErrorCode::Limit => 7,
        }
    }

    /// Unknown codes read as protocol errors: the message text still says what happened.
    fn from_wire(v: u16) -> Self {
        match v {
            2 => ErrorCode::UnsupportedVersion,
            3 => ErrorCode::Io,
            4 => ErrorCode::Interrupted,
            5 => ErrorCode::Auth,
            6 => ErrorCode::Busy,
            7 => ErrorCode::Limit,
            _ => ErrorCode::Protocol,
        }
    }
}
