//! Unit and property tests of the wire protocol: every message round trips, the greeting tells a
//! stranger apart at its first byte and carries the nonce and AUTH flag, each limit holds before
//! anything is allocated, and no input (arbitrary, truncated or corrupted) makes the decoder
//! panic.

use std::fmt::Debug;
use std::io::{self, Cursor, Read};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use super::wire::Encoder;
use super::*;
use crate::datapath::{DataPath, Fallback};

/// Frame types, names and payload limits as the module documentation specifies them.
const FRAME_TYPES: [(u8, &str, u64); 10] = [
    (0x01, "OFFER", 64 << 20),
    (0x02, "PLAN", 64 << 20),
    (0x03, "FILE_END", 1 << 20),
    (0x04, "FINISH", 1 << 20),
    (0x05, "SUMMARY", 64 << 20),
    (0x06, "AUTH", 1 << 20),
    (0x07, "FILE_START", 1 << 20),
    (0x08, "PAKE", 1 << 20),
    (0x09, "SPARSE_START", 1 << 20),
    (0x7F, "ERROR", 1 << 20),
];
const OFFER: u8 = 0x01;
const PLAN: u8 = 0x02;
const FILE_END: u8 = 0x03;
const FINISH: u8 = 0x04;
const SUMMARY: u8 = 0x05;
const AUTH: u8 = 0x06;
const FILE_START: u8 = 0x07;
const PAKE: u8 = 0x08;
const ERROR: u8 = 0x7F;
/// Every error code with its documented wire value.
const ERROR_CODES: [(ErrorCode, u16); 7] = [
    (ErrorCode::Protocol, 1),
    (ErrorCode::UnsupportedVersion, 2),
    (ErrorCode::Io, 3),
    (ErrorCode::Interrupted, 4),
    (ErrorCode::Auth, 5),
    (ErrorCode::Busy, 6),
    (ErrorCode::Limit, 7),
];
/// Every refusal code with its documented wire value.
const REFUSE_CODES: [(RefuseCode, u16); 6] = [
    (RefuseCode::Exists, 1),
    (RefuseCode::InvalidName, 2),
    (RefuseCode::NotWritable, 3),
    (RefuseCode::NoSpace, 4),
    (RefuseCode::Unsupported, 5),
    (RefuseCode::Other, 6),
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Hands out at most one byte per `read`, like a slow socket.
struct OneByte<'a>(&'a [u8]);

impl Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&byte, rest)), Some(slot)) => {
                *slot = byte;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// Yields `data` one byte per read, then fails every later read: a caller that decides from
/// those bytes alone never sees the failure.
struct ThenFail<'a>(&'a [u8]);

impl Read for ThenFail<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::other("read past the bytes the caller needed"));
        }
        OneByte(self.0).read(buf).inspect(|&n| self.0 = &self.0[n..])
    }
}

/// Fails every other read with `Interrupted`, which callers must retry.
struct Interrupting<R> {
    inner: R,
    interrupt_next: bool,
}

impl<R: Read> Read for Interrupting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt_next = !self.interrupt_next;
        if self.interrupt_next {
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.inner.read(buf)
    }
}

fn interrupting(bytes: &[u8]) -> Interrupting<OneByte<'_>> {
    Interrupting { inner: OneByte(bytes), interrupt_next: false }
}

/// One message as it travels: header and payload.
fn frame(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    write_message(&mut out, msg).expect("writing to a Vec cannot fail");
    out
}

/// A frame with any type byte and payload, its length field matching the payload.
fn raw_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn read_bytes(bytes: &[u8]) -> Result<Message, ReadError> {
    read_message(&mut Cursor::new(bytes))
}

/// Writes `msg`, reads it back both in one piece and one byte at a time, and checks that the
/// reader stopped exactly at the end of the frame.
fn round_trip(msg: &Message) -> Message {
    let bytes = frame(msg);
    let mut cursor = Cursor::new(bytes.as_slice());
    let back = read_message(&mut cursor).expect("a frame we wrote reads back");
    assert_eq!(cursor.position() as usize, bytes.len(), "read exactly one frame");
    let slow = read_message(&mut OneByte(&bytes)).expect("one byte per read");
    assert_eq!(slow, back, "read size does not change the result");
    back
}

/// The protocol error of a failed read; any other outcome fails the test.
fn protocol_error<T: Debug>(result: Result<T, ReadError>) -> ProtocolError {
    match result {
        Err(ReadError::Protocol(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// A read's outcome in comparable form: I/O errors collapse to `None`.
fn outcome<T>(result: Result<T, ReadError>) -> Result<T, Option<ProtocolError>> {
    result.map_err(|e| match e {
        ReadError::Protocol(e) => Some(e),
        ReadError::Io(_) => None,
    })
}

fn is_malformed(e: &ProtocolError, needle: &str) -> bool {
    matches!(e, ProtocolError::Malformed(why) if why.contains(needle))
}

fn entry(name: &[u8], size: Option<u64>) -> Entry {
    Entry {
        kind: EntryKind::File,
        name: name.to_vec(),
        size,
        mode: 0o644,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 123_456_789,
    }
}

fn dir(name: &[u8]) -> Entry {
    Entry { kind: EntryKind::Dir, mode: 0o755, ..entry(name, None) }
}

fn stats_with_fallbacks() -> SideStats {
    SideStats {
        data_path: Some(DataPath::Buffered),
        bytes: 1 << 40,
        calls: 7,
        checksum_calls: 3,
        pipe_bytes: 1 << 20,
        elapsed_us: 1_500_000,
        user_us: 20,
        sys_us: 30,
        peak_rss_kib: 4096,
        voluntary_switches: 5,
        involuntary_switches: u64::MAX,
        fallbacks: vec![
            Fallback {
                from: DataPath::Sendfile,
                errno: Some(22),
                reason: "sendfile: EINVAL on this file system".into(),
            },
            Fallback {
                from: DataPath::Splice,
                errno: None,
                reason: "source is not a regular file".into(),
            },
            Fallback { from: DataPath::Splice, errno: Some(-1), reason: String::new() },
        ],
    }
}

/// The fixed fields of an entry with the given flags, nanoseconds and name.
fn raw_entry<'e>(e: &'e mut Encoder, flags: u8, nsec: u32, name: &[u8]) -> &'e mut Encoder {
    e.u8(1).u8(flags).u64(10).u32(0o644).i64(0).u32(nsec).bytes16(name)
}

/// A statistics block of zeros announcing `fallbacks` fallbacks (which the caller appends).
fn raw_stats(e: &mut Encoder, fallbacks: u16) -> &mut Encoder {
    e.u8(1);
    for _ in 0..3 {
        e.u64(0);
    }
    e.u32(0);
    for _ in 0..6 {
        e.u64(0);
    }
    e.u16(fallbacks)
}

fn decode_payload(kind: u8, fill: impl FnOnce(&mut Encoder)) -> Result<Message, ProtocolError> {
    let mut e = Encoder::new();
    fill(&mut e);
    outcome(read_bytes(&raw_frame(kind, &e.into_inner())))
        .map_err(|e| e.expect("a slice reader has no I/O errors"))
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn offer_round_trips_with_known_and_unknown_sizes() {
    let offer = Message::Offer(Offer {
        entries: vec![
            entry(b"big.iso", Some(4 << 30)),
            entry(b"stdin", None),
            entry(b"empty", Some(0)),
            Entry {
                name: vec![0xff, 0xfe, b'x'],
                size: Some(i64::MAX as u64),
                mode: u32::MAX,
                mtime_sec: i64::MIN,
                mtime_nsec: 999_999_999,
                ..entry(b"", None)
            },
            entry(&[b'n'; MAX_NAME], Some(1)),
        ],
    });
    assert_eq!(round_trip(&offer), offer);
}

#[test]
fn offer_round_trips_a_tree_of_directories_and_files() {
    let offer = Message::Offer(Offer {
        entries: vec![
            dir(b"top"),
            entry(b"top/a.txt", Some(3)),
            dir(b"top/empty"),
            Entry { mode: 0o700, ..dir(b"top/private") },
            Entry { mode: 0o600, ..entry(b"top/private/key", Some(32)) },
            // A directory with its size flag set still reads back as it was sent.
            Entry { size: Some(4096), ..dir(b"top/sized") },
        ],
    });
    assert_eq!(round_trip(&offer), offer);
}

#[test]
fn empty_offer_round_trips() {
    let offer = Message::Offer(Offer { entries: Vec::new() });
    assert_eq!(round_trip(&offer), offer);
}

#[test]
fn plan_round_trips_send_skip_resume_and_every_refusal() {
    let mut answers = vec![
        Answer::Send { offset: 0 },
        Answer::Send { offset: u64::MAX },
        Answer::Skip,
        Answer::Resume { offset: 1, prefix_xxh3: 0 },
        Answer::Resume {
            offset: 200 << 20,
            prefix_xxh3: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        },
        Answer::Resume { offset: u64::MAX, prefix_xxh3: u128::MAX },
    ];
    for (code, _) in REFUSE_CODES {
        answers.push(Answer::Refuse { code, reason: format!("because {code:?} ✓") });
    }
    answers.push(Answer::Refuse { code: RefuseCode::Exists, reason: String::new() });
    let plan = Message::Plan(Plan { answers });
    assert_eq!(round_trip(&plan), plan);
}

#[test]
fn auth_round_trips() {
    for proof in [[0u8; 32], [0xff; 32], core::array::from_fn(|i| i as u8)] {
        let auth = Message::Auth { proof };
        assert_eq!(round_trip(&auth), auth);
    }
    for message in [[0u8; 33], [0xff; 33], core::array::from_fn(|i| i as u8)] {
        let pake = Message::Pake { message };
        assert_eq!(round_trip(&pake), pake);
    }
}

#[test]
fn file_start_round_trips() {
    for (index, offset) in [(0, 0), (1, 4096), (MAX_ENTRIES - 1, 200 << 20), (u32::MAX, u64::MAX)] {
        let start = Message::FileStart { index, offset };
        assert_eq!(round_trip(&start), start);
        let sparse = Message::SparseStart { index, offset };
        assert_eq!(round_trip(&sparse), sparse);
        // The same 17 bytes as FILE_START (the read-ahead counts on it), under type 0x09.
        let (plain, sparse) = (frame(&start), frame(&sparse));
        assert_eq!((sparse.len(), sparse[0], &sparse[1..]), (FILE_START_FRAME, 0x09, &plain[1..]));
    }
}

#[test]
fn sparse_runs_read_back_and_must_fit_the_file() {
    let header = sparse_run_header(0x0102, 0x0304);
    assert_eq!(header, [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 3, 4]);
    assert_eq!(outcome(read_sparse_run(&mut &header[..], 0x0406)), Ok((0x0102, 0x0304)));
    // One byte past the file's end, an empty run, a sum that overflows: malformed.
    let past = outcome(read_sparse_run(&mut &header[..], 0x0405)).unwrap_err().unwrap();
    assert!(is_malformed(&past, "where 1029 remain"), "{past:?}");
    let empty = sparse_run_header(0, 0);
    let empty = outcome(read_sparse_run(&mut &empty[..], 10)).unwrap_err().unwrap();
    assert!(is_malformed(&empty, "empty sparse run"), "{empty:?}");
    let huge = sparse_run_header(u64::MAX, 1);
    assert!(read_sparse_run(&mut &huge[..], u64::MAX).is_err());
    // A header cut short is truncated, even at its first byte (data was due).
    for cut in 0..SPARSE_RUN_HEADER {
        let e = protocol_error(read_sparse_run(&mut &header[..cut], u64::MAX));
        assert_eq!(e, ProtocolError::Truncated("sparse run header"), "cut at {cut}");
    }
}

#[test]
fn every_greeting_of_this_build_says_sparse() {
    assert_eq!(FLAG_SPARSE, 4, "bit 2");
    for hello in [Hello::ours(), Hello::with_auth([1; 32]), Hello::no_auth()] {
        assert!(hello.takes_sparse(), "{hello:?}");
    }
    // An older build's greeting (no bit 2) does not.
    assert!(!Hello { version: VERSION, flags: FLAG_AUTH, nonce: [0; 32] }.takes_sparse());
}

#[test]
fn file_end_round_trips() {
    for xxh3 in [0, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
        let end = Message::FileEnd(FileEnd { xxh3 });
        assert_eq!(round_trip(&end), end);
    }
}

#[test]
fn finish_round_trips_with_and_without_fallbacks() {
    let with = Message::Finish(stats_with_fallbacks());
    assert_eq!(round_trip(&with), with);
    for path in [None, Some(DataPath::Sendfile), Some(DataPath::Splice), Some(DataPath::Buffered)] {
        let plain = Message::Finish(SideStats { data_path: path, ..SideStats::default() });
        assert_eq!(round_trip(&plain), plain);
    }
}

#[test]
fn summary_round_trips_every_verdict() {
    let summary = Message::Summary(Summary {
        verdicts: vec![
            Verdict { status: VerdictStatus::Ok, detail: String::new() },
            Verdict {
                status: VerdictStatus::ChecksumMismatch,
                detail: "xxh3 differs: expected 01…, got 02…".into(),
            },
            Verdict { status: VerdictStatus::Failed, detail: "disk full".into() },
        ],
        stats: stats_with_fallbacks(),
    });
    assert_eq!(round_trip(&summary), summary);
    let empty = Message::Summary(Summary { verdicts: Vec::new(), stats: SideStats::default() });
    assert_eq!(round_trip(&empty), empty);
}

#[test]
fn error_round_trips_every_code() {
    for (code, _) in ERROR_CODES {
        let err = Message::Error { code, message: format!("{code:?}: peer hung up") };
        assert_eq!(round_trip(&err), err);
    }
}

#[test]
fn codes_have_their_documented_wire_values() {
    for (code, wire) in ERROR_CODES {
        let (kind, payload) = Message::Error { code, message: String::new() }.encode();
        assert_eq!((kind, &payload[..2]), (ERROR, &wire.to_be_bytes()[..]), "{code:?}");
    }
    for (code, wire) in REFUSE_CODES {
        let refuse = Answer::Refuse { code, reason: String::new() };
        let (_, payload) = Message::Plan(Plan { answers: vec![refuse] }).encode();
        // count, action, offset, prefix digest, then the code.
        assert_eq!(payload[4], 3, "{code:?}: refuse is action 3");
        assert_eq!(&payload[4 + 1 + 8 + 16..][..2], &wire.to_be_bytes(), "{code:?}");
    }
}

#[test]
fn consecutive_frames_read_in_order_then_closed() {
    let messages = [
        Message::Auth { proof: [1; 32] },
        Message::Offer(Offer { entries: vec![dir(b"d"), entry(b"d/a", Some(3))] }),
        Message::Plan(Plan {
            answers: vec![Answer::Skip, Answer::Resume { offset: 1, prefix_xxh3: 2 }],
        }),
        Message::FileStart { index: 1, offset: 1 },
        Message::FileEnd(FileEnd { xxh3: 42 }),
        Message::Finish(SideStats::default()),
    ];
    let bytes: Vec<u8> = messages.iter().flat_map(frame).collect();
    let mut cursor = Cursor::new(bytes.as_slice());
    for msg in &messages {
        assert_eq!(&read_message(&mut cursor).unwrap(), msg);
    }
    assert_eq!(protocol_error(read_message(&mut cursor)), ProtocolError::Closed);
}

#[test]
fn reads_retry_interrupted_calls() {
    let msg = Message::Summary(Summary { verdicts: Vec::new(), stats: stats_with_fallbacks() });
    let bytes = frame(&msg);
    assert_eq!(read_message(&mut interrupting(&bytes)).unwrap(), msg);

    let mut hello = Vec::new();
    write_hello(&mut hello, Hello::ours()).unwrap();
    assert_eq!(read_hello(&mut interrupting(&hello)).unwrap(), Hello::ours());

    assert_eq!(read_chunk_header(&mut interrupting(&chunk_header(9))).unwrap(), 9);
}

#[test]
fn io_errors_pass_through_as_io() {
    assert!(matches!(read_message(&mut ThenFail(&[])), Err(ReadError::Io(_))));
    assert!(matches!(read_hello(&mut ThenFail(&[])), Err(ReadError::Io(_))));
    assert!(matches!(read_chunk_header(&mut ThenFail(&[])), Err(ReadError::Io(_))));
    // Inside the payload too, not only in the header.
    let bytes = frame(&Message::FileEnd(FileEnd { xxh3: 7 }));
    assert!(matches!(read_message(&mut ThenFail(&bytes[..10])), Err(ReadError::Io(_))));
}

#[test]
fn frame_bytes_match_the_documented_layout() {
    let end = frame(&Message::FileEnd(FileEnd { xxh3: 0x0102 }));
    let mut expected = vec![0x03, 0, 0, 0, 17, 1];
    expected.extend_from_slice(&0x0102u128.to_be_bytes());
    assert_eq!(end, expected);

    let offer = frame(&Message::Offer(Offer { entries: vec![entry(b"ab", None)] }));
    let mut expected = vec![0x01, 0, 0, 0, 34, 0, 0, 0, 1, 1, 0];
    expected.extend_from_slice(&0u64.to_be_bytes());
    expected.extend_from_slice(&0o644u32.to_be_bytes());
    expected.extend_from_slice(&1_700_000_000i64.to_be_bytes());
    expected.extend_from_slice(&123_456_789u32.to_be_bytes());
    expected.extend_from_slice(&[0, 2, b'a', b'b']);
    assert_eq!(offer, expected);

    let err = frame(&Message::Error { code: ErrorCode::Interrupted, message: "hi".into() });
    assert_eq!(err, [0x7F, 0, 0, 0, 6, 0, 4, 0, 2, b'h', b'i']);

    let start = frame(&Message::FileStart { index: 0x0102_0304, offset: 0x0506 });
    assert_eq!(start, [0x07, 0, 0, 0, 12, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 5, 6]);

    let auth = frame(&Message::Auth { proof: [0xAB; 32] });
    let mut expected = vec![0x06, 0, 0, 0, 32];
    expected.extend_from_slice(&[0xAB; 32]);
    assert_eq!(auth, expected);
}

#[test]
fn directory_entries_are_kind_2() {
    let offer = frame(&Message::Offer(Offer { entries: vec![dir(b"d")] }));
    // header (5), count (4), then the entry's kind and flags (size not known).
    assert_eq!(&offer[9..11], &[2, 0]);
    let file = frame(&Message::Offer(Offer { entries: vec![entry(b"f", Some(1))] }));
    assert_eq!(&file[9..11], &[1, 1]);
}

#[test]
fn answer_bytes_match_the_documented_layout() {
    let prefix = 0x1112_1314_1516_1718_191a_1b1c_1d1e_1f20u128;
    let answers = [
        (Answer::Send { offset: 0 }, 1u8, 0u64, 0u128, 0u16, &b""[..]),
        (Answer::Skip, 2, 0, 0, 0, b""),
        (Answer::Refuse { code: RefuseCode::InvalidName, reason: "no".into() }, 3, 0, 0, 2, b"no"),
        (Answer::Resume { offset: 0x0102, prefix_xxh3: prefix }, 4, 0x0102, prefix, 0, b""),
    ];
    for (answer, action, offset, digest, code, reason) in answers {
        let plan = frame(&Message::Plan(Plan { answers: vec![answer.clone()] }));
        let mut expected = vec![0x02];
        let len = 4 + 1 + 8 + 16 + 2 + 2 + reason.len();
        expected.extend_from_slice(&(len as u32).to_be_bytes());
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.push(action);
        expected.extend_from_slice(&offset.to_be_bytes());
        expected.extend_from_slice(&digest.to_be_bytes());
        expected.extend_from_slice(&code.to_be_bytes());
        expected.extend_from_slice(&(reason.len() as u16).to_be_bytes());
        expected.extend_from_slice(reason);
        assert_eq!(plan, expected, "{answer:?}");
    }
}

#[test]
fn every_message_frames_under_its_own_name_and_limit() {
    let messages = [
        Message::Offer(Offer { entries: Vec::new() }),
        Message::Plan(Plan { answers: Vec::new() }),
        Message::FileEnd(FileEnd { xxh3: 0 }),
        Message::Finish(SideStats::default()),
        Message::Summary(Summary { verdicts: Vec::new(), stats: SideStats::default() }),
        Message::Auth { proof: [0; 32] },
        Message::FileStart { index: 0, offset: 0 },
        Message::Pake { message: [0; 33] },
        Message::SparseStart { index: 0, offset: 0 },
        Message::Error { code: ErrorCode::Io, message: String::new() },
    ];
    assert_eq!(messages.len(), FRAME_TYPES.len());
    for (msg, (kind, name, _)) in messages.iter().zip(FRAME_TYPES) {
        assert_eq!(msg.encode().0, kind);
        assert_eq!(msg.name(), name);
    }
}

#[test]
fn limits_match_the_documented_table() {
    for kind in 0..=u8::MAX {
        let documented = FRAME_TYPES.iter().find(|(k, _, _)| *k == kind);
        assert_eq!(Message::limits(kind), documented.map(|&(_, name, max)| (name, max)));
    }
}

#[test]
fn fallback_errno_zero_reads_as_none() {
    let mut stats = SideStats::default();
    stats.fallbacks.push(Fallback { from: DataPath::Splice, errno: Some(0), reason: "x".into() });
    let Message::Finish(back) = round_trip(&Message::Finish(stats)) else {
        panic!("FINISH reads back as FINISH");
    };
    assert_eq!(back.fallbacks[0].errno, None);
}

#[test]
fn unknown_codes_read_as_the_catch_all() {
    for code in [0, 7, 999, u16::MAX] {
        let plan = decode_payload(PLAN, |e| {
            e.u32(1).u8(3).u64(0).raw(&[0; 16]).u16(code).bytes16(b"why");
        });
        let refused = Answer::Refuse { code: RefuseCode::Other, reason: "why".into() };
        assert_eq!(plan, Ok(Message::Plan(Plan { answers: vec![refused] })), "refusal {code}");
    }
    for code in [0, 8, u16::MAX] {
        let err = decode_payload(ERROR, |e| {
            e.u16(code).bytes16(b"?");
        });
        let expected = Message::Error { code: ErrorCode::Protocol, message: "?".into() };
        assert_eq!(err, Ok(expected), "error {code}");
    }
}

#[test]
fn fields_an_action_does_not_use_are_ignored() {
    // Skip and refuse carry no offset or digest, send no digest: whatever those bytes hold,
    // the answer reads the same (and re-encodes as zeros).
    let plan = decode_payload(PLAN, |e| {
        e.u32(3);
        e.u8(1).u64(0).raw(&[0xff; 16]).u16(5).bytes16(b"");
        e.u8(2).u64(9).raw(&[9; 16]).u16(9).bytes16(b"ignored");
        e.u8(3).u64(9).raw(&[9; 16]).u16(1).bytes16(b"exists");
    });
    let answers = vec![
        Answer::Send { offset: 0 },
        Answer::Skip,
        Answer::Refuse { code: RefuseCode::Exists, reason: "exists".into() },
    ];
    assert_eq!(plan, Ok(Message::Plan(Plan { answers })));
}

#[test]
fn long_text_is_cut_at_a_character_boundary() {
    // 600 two-byte characters: 1200 bytes, cut to at most 1024 without splitting one.
    let err = Message::Error { code: ErrorCode::Io, message: "é".repeat(600) };
    let Message::Error { message, .. } = round_trip(&err) else {
        panic!("ERROR reads back as ERROR");
    };
    assert_eq!(message, "é".repeat(512));
}

#[test]
fn invalid_utf8_text_is_replaced_not_refused() {
    let err = decode_payload(ERROR, |e| {
        e.u16(3).bytes16(b"a\xffb");
    });
    assert_eq!(err, Ok(Message::Error { code: ErrorCode::Io, message: "a\u{fffd}b".into() }));
}

#[test]
fn unset_size_flag_ignores_the_size_field() {
    let offer = decode_payload(OFFER, |e| {
        e.u32(1);
        raw_entry(e, 0, 0, b"pipe");
    });
    let Ok(Message::Offer(offer)) = offer else { panic!("valid OFFER: {offer:?}") };
    assert_eq!(offer.entries[0].size, None);
}

// ---------------------------------------------------------------------------------------------
// Greeting
// ---------------------------------------------------------------------------------------------

fn hello_bytes(hello: Hello) -> Vec<u8> {
    let mut out = Vec::new();
    write_hello(&mut out, hello).unwrap();
    out
}

#[test]
fn hello_round_trips() {
    for hello in [
        Hello::ours(),
        Hello::with_auth([0x5a; 32]),
        Hello::with_auth(core::array::from_fn(|i| i as u8)),
        Hello { version: u16::MAX, flags: 0xdead_beef, nonce: [7; 32] },
    ] {
        let bytes = hello_bytes(hello);
        assert_eq!(bytes.len(), HELLO_LEN);
        assert_eq!(read_hello(&mut bytes.as_slice()).unwrap(), hello);
    }
}

#[test]
fn hello_bytes_match_the_documented_layout() {
    assert_eq!(HELLO_LEN, 46);
    // Flags: bit 2, SPARSE, in every greeting of this build.
    let mut expected = vec![0x89, b'Z', b'C', b'P', 0x0D, 0x0A, 0x1A, 0x0A, 0, 2, 0, 0, 0, 4];
    expected.extend_from_slice(&[0; 32]);
    assert_eq!(hello_bytes(Hello::ours()), expected);

    let nonce: [u8; 32] = core::array::from_fn(|i| 0xA0 + i as u8);
    let mut expected = vec![0x89, b'Z', b'C', b'P', 0x0D, 0x0A, 0x1A, 0x0A, 0, 2, 0, 0, 0, 5];
    expected.extend_from_slice(&nonce);
    assert_eq!(hello_bytes(Hello::with_auth(nonce)), expected);
}

#[test]
fn auth_is_bit_0_of_the_flags_alone() {
    assert!(!Hello::ours().auth());
    assert!(Hello::with_auth([0; 32]).auth());
    assert_eq!(Hello::with_auth([3; 32]).flags, FLAG_AUTH | FLAG_SPARSE);
    // Other bits are ignored, set or not.
    let other_bits = Hello { version: VERSION, flags: !FLAG_AUTH, nonce: [0; 32] };
    assert!(!other_bits.auth());
    let all_bits = Hello { flags: u32::MAX, ..other_bits };
    assert!(all_bits.auth());
}

#[test]
fn hello_stops_at_the_greeting() {
    let mut bytes = hello_bytes(Hello::ours());
    let msg = Message::FileEnd(FileEnd { xxh3: 5 });
    bytes.extend(frame(&msg));
    let mut cursor = Cursor::new(bytes.as_slice());
    assert_eq!(read_hello(&mut cursor).unwrap(), Hello::ours());
    assert_eq!(cursor.position(), HELLO_LEN as u64);
    assert_eq!(read_message(&mut cursor).unwrap(), msg);
}

#[test]
fn netcat_text_is_not_a_zcp_peer() {
    let err = protocol_error(read_hello(&mut &b"hello\n"[..]));
    assert_eq!(err, ProtocolError::NotZcpPeer);
}

#[test]
fn http_request_is_not_a_zcp_peer() {
    let err = protocol_error(read_hello(&mut &b"GET / HTTP/1.1\r\n"[..]));
    assert_eq!(err, ProtocolError::NotZcpPeer);
}

#[test]
fn hello_on_empty_stream_is_closed() {
    assert_eq!(protocol_error(read_hello(&mut &b""[..])), ProtocolError::Closed);
}

#[test]
fn magic_then_eof_is_truncated() {
    let err = protocol_error(read_hello(&mut &MAGIC[..]));
    assert_eq!(err, ProtocolError::Truncated("greeting"));
    let bytes = hello_bytes(Hello::with_auth([1; 32]));
    // Inside the version and flags, and inside the nonce.
    for cut in [13, 14, HELLO_LEN - 1] {
        let err = protocol_error(read_hello(&mut &bytes[..cut]));
        assert_eq!(err, ProtocolError::Truncated("greeting"), "cut at {cut}");
    }
}

#[test]
fn part_of_the_magic_then_eof_is_not_a_zcp_peer() {
    for cut in 1..MAGIC.len() {
        let err = protocol_error(read_hello(&mut &MAGIC[..cut]));
        assert_eq!(err, ProtocolError::NotZcpPeer, "cut at {cut}");
    }
}

#[test]
fn hello_read_one_byte_at_a_time() {
    let hello = Hello { version: 1, flags: 0x8000_0001, nonce: [0; 32] };
    let bytes = hello_bytes(hello);
    assert_eq!(read_hello(&mut OneByte(&bytes)).unwrap(), hello);
    let err = protocol_error(read_hello(&mut OneByte(b"hello\n")));
    assert_eq!(err, ProtocolError::NotZcpPeer);
}

#[test]
fn stranger_is_told_apart_without_reading_on() {
    // A netcat user may type one line and wait: the verdict must come from the bytes at hand.
    for first in [&b"h"[..], b"G", b"\x89ZCX", b"\x89ZCP\r\n\x1a\x00"] {
        let err = protocol_error(read_hello(&mut ThenFail(first)));
        assert_eq!(err, ProtocolError::NotZcpPeer, "after {first:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Limits and malformed frames
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_stream_is_closed_and_partial_header_truncated() {
    assert_eq!(protocol_error(read_bytes(&[])), ProtocolError::Closed);
    for cut in 1..5 {
        let err = protocol_error(read_bytes(&[0x03, 0, 0, 0, 17][..cut]));
        assert_eq!(err, ProtocolError::Truncated("frame header"));
    }
}

#[test]
fn length_over_the_type_limit_is_refused_before_the_payload() {
    for (kind, name, max) in FRAME_TYPES {
        for len in [max + 1, u32::MAX as u64] {
            let mut header = vec![kind];
            header.extend_from_slice(&(len as u32).to_be_bytes());
            // Reading one byte past the header fails the test with an I/O error.
            let err = protocol_error(read_message(&mut ThenFail(&header)));
            assert_eq!(err, ProtocolError::TooLarge { what: name, len, max });
        }
    }
}

#[test]
fn length_at_the_type_limit_is_accepted() {
    for (kind, name, max) in FRAME_TYPES {
        let mut header = vec![kind];
        header.extend_from_slice(&(max as u32).to_be_bytes());
        let err = protocol_error(read_bytes(&header));
        assert_eq!(err, ProtocolError::Truncated(name), "{name} at its limit");
    }
    // With the payload present the limit is inclusive: the frame reaches the decoder.
    let mut payload = vec![0u8; 1 << 20];
    payload[2..4].copy_from_slice(&[0, 1]);
    let err = protocol_error(read_bytes(&raw_frame(ERROR, &payload)));
    assert!(is_malformed(&err, "trailing"), "{err:?}");
}

#[test]
fn unknown_frame_type_is_refused() {
    for kind in [0x00, 0x0A, 0x10, 0x7E, 0x80, 0xFF] {
        let err = protocol_error(read_message(&mut ThenFail(&[kind, 0, 0, 0, 0])));
        assert_eq!(err, ProtocolError::UnknownFrame(kind));
    }
}

#[test]
fn count_over_the_entry_limit_is_too_large() {
    for kind in [OFFER, PLAN, SUMMARY] {
        for count in [MAX_ENTRIES + 1, u32::MAX] {
            let err = decode_payload(kind, |e| {
                e.u32(count);
            });
            let expected = ProtocolError::TooLarge {
                what: "entry count",
                len: count as u64,
                max: MAX_ENTRIES as u64,
            };
            assert_eq!(err, Err(expected));
        }
    }
}

#[test]
fn count_that_cannot_fit_is_malformed_before_decoding_items() {
    for kind in [OFFER, PLAN, SUMMARY] {
        // A million items announced in a few bytes: refused up front rather than decoded (and
        // allocated for) until the payload runs out.
        let err = decode_payload(kind, |e| {
            e.u32(MAX_ENTRIES).raw(&[1; 64]);
        });
        assert!(matches!(&err, Err(e) if is_malformed(e, "cannot fit")), "{err:?}");
    }
    // Two entries announced, one present.
    let err = decode_payload(OFFER, |e| {
        raw_entry(e.u32(2), 1, 0, b"only");
    });
    assert!(matches!(&err, Err(e) if is_malformed(e, "cannot fit")), "{err:?}");
}

#[test]
fn trailing_bytes_are_malformed() {
    let messages = [
        Message::Offer(Offer { entries: vec![entry(b"a", Some(1))] }),
        Message::Offer(Offer { entries: vec![dir(b"d")] }),
        Message::Plan(Plan { answers: vec![Answer::Skip] }),
        Message::Plan(Plan { answers: vec![Answer::Resume { offset: 5, prefix_xxh3: 6 }] }),
        Message::FileEnd(FileEnd { xxh3: 1 }),
        Message::Finish(stats_with_fallbacks()),
        Message::Summary(Summary { verdicts: Vec::new(), stats: SideStats::default() }),
        Message::Auth { proof: [7; 32] },
        Message::FileStart { index: 3, offset: 4 },
        Message::Pake { message: [8; 33] },
        Message::Error { code: ErrorCode::Io, message: "x".into() },
    ];
    for msg in messages {
        let (kind, mut payload) = msg.encode();
        payload.push(0);
        let err = protocol_error(read_bytes(&raw_frame(kind, &payload)));
        assert!(is_malformed(&err, "1 trailing bytes"), "{}: {err:?}", msg.name());
    }
}

#[test]
fn mtime_nanoseconds_of_a_second_or_more_are_malformed() {
    for nsec in [1_000_000_000, u32::MAX] {
        let err = decode_payload(OFFER, |e| {
            raw_entry(e.u32(1), 1, nsec, b"f");
        });
        assert!(matches!(&err, Err(e) if is_malformed(e, "nanoseconds")), "{err:?}");
    }
    let ok = decode_payload(OFFER, |e| {
        raw_entry(e.u32(1), 1, 999_999_999, b"f");
    });
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn name_over_max_name_is_too_large() {
    let err = decode_payload(OFFER, |e| {
        raw_entry(e.u32(1), 1, 0, &[b'n'; MAX_NAME + 1]);
    });
    let expected = ProtocolError::TooLarge {
        what: "entry name",
        len: MAX_NAME as u64 + 1,
        max: MAX_NAME as u64,
    };
    assert_eq!(err, Err(expected));
}

#[test]
fn empty_name_is_malformed() {
    // A name is 1 to MAX_NAME bytes, whatever else the offer holds.
    let alone = decode_payload(OFFER, |e| {
        raw_entry(e.u32(1), 1, 0, b"");
    });
    assert!(matches!(alone, Err(ProtocolError::Malformed(_))), "{alone:?}");
    let among_others = decode_payload(OFFER, |e| {
        raw_entry(e.u32(2), 1, 0, b"");
        raw_entry(e, 1, 0, b"a-long-enough-name");
    });
    // Before the decoder checked names, this offer was accepted: the count check alone only
    // refused an empty name when no other entry left room for it.
    let empty = matches!(&among_others, Err(e) if is_malformed(e, "empty entry name"));
    assert!(empty, "{among_others:?}");
}

fn assert_malformed(kind: u8, needle: &str, fill: impl FnOnce(&mut Encoder)) {
    let err = decode_payload(kind, fill);
    assert!(matches!(&err, Err(e) if is_malformed(e, needle)), "{needle}: {err:?}");
}

#[test]
fn unknown_enum_values_are_malformed() {
    for kind in [0, 3, u8::MAX] {
        assert_malformed(OFFER, "entry kind", |e| {
            e.u32(1).u8(kind).u8(1).u64(0).u32(0).i64(0).u32(0).bytes16(b"f");
        });
    }
    assert_malformed(OFFER, "entry flags", |e| {
        raw_entry(e.u32(1), 0b10, 0, b"f");
    });
    for action in [0, 5, u8::MAX] {
        assert_malformed(PLAN, "plan action", |e| {
            e.u32(1).u8(action).u64(0).raw(&[0; 16]).u16(0).u16(0);
        });
    }
    assert_malformed(SUMMARY, "verdict status", |e| {
        raw_stats(e.u32(1).u8(0).u16(0), 0);
    });
    assert_malformed(FINISH, "data path", |e| {
        e.u8(4).raw(&[0; 76]).u16(0);
    });
    assert_malformed(FINISH, "data path", |e| {
        raw_stats(e, 1).u8(9).i32(0).u16(0);
    });
    assert_malformed(FILE_END, "checksum algorithm", |e| {
        e.u8(2).raw(&[0; 16]);
    });
}

#[test]
fn auth_and_file_start_payloads_have_exact_sizes() {
    // A proof is exactly 32 bytes; FILE_START is an index and an offset, 12 bytes.
    for len in [0, 31, 33, 64] {
        let err = decode_payload(AUTH, |e| {
            e.raw(&vec![1; len]);
        });
        assert!(matches!(err, Err(ProtocolError::Malformed(_))), "AUTH of {len} bytes: {err:?}");
    }
    for len in [0, 32, 34, 66] {
        let err = decode_payload(PAKE, |e| {
            e.raw(&vec![1; len]);
        });
        assert!(matches!(err, Err(ProtocolError::Malformed(_))), "PAKE of {len} bytes: {err:?}");
    }
    for len in [0, 4, 11, 13] {
        let err = decode_payload(FILE_START, |e| {
            e.raw(&vec![0; len]);
        });
        let what = format!("FILE_START of {len} bytes: {err:?}");
        assert!(matches!(err, Err(ProtocolError::Malformed(_))), "{what}");
    }
    let ok = decode_payload(FILE_START, |e| {
        e.u32(2).u64(3);
    });
    assert_eq!(ok, Ok(Message::FileStart { index: 2, offset: 3 }));
}

#[test]
fn payload_shorter_than_its_length_is_truncated() {
    let bytes = frame(&Message::Error { code: ErrorCode::Io, message: "gone".into() });
    let err = protocol_error(read_bytes(&bytes[..bytes.len() - 1]));
    assert_eq!(err, ProtocolError::Truncated("ERROR"));
}

#[test]
fn chunk_header_round_trips_up_to_max_chunk() {
    for len in [0, 1, 4096, MAX_CHUNK] {
        assert_eq!(read_chunk_header(&mut &chunk_header(len)[..]).unwrap(), len);
    }
}

#[test]
fn chunk_header_over_max_chunk_is_too_large() {
    for len in [MAX_CHUNK + 1, u32::MAX] {
        let err = protocol_error(read_chunk_header(&mut ThenFail(&chunk_header(len))));
        let expected =
            ProtocolError::TooLarge { what: "chunk", len: len as u64, max: MAX_CHUNK as u64 };
        assert_eq!(err, expected);
    }
}

#[test]
fn missing_chunk_header_is_closed_and_a_cut_one_truncated() {
    // Nothing where a header should start: the peer went away between chunks (the copy paths
    // report that as a lost connection); part of a header is a truncation.
    let err = protocol_error(read_chunk_header(&mut &chunk_header(5)[..0]));
    assert_eq!(err, ProtocolError::Closed);
    for cut in 1..4 {
        let err = protocol_error(read_chunk_header(&mut &chunk_header(5)[..cut]));
        assert_eq!(err, ProtocolError::Truncated("chunk header"));
    }
}

#[test]
fn errors_read_as_lowercase_phrases() {
    let errors = [
        ProtocolError::NotZcpPeer,
        ProtocolError::UnsupportedVersion(7),
        ProtocolError::Closed,
        ProtocolError::Truncated("OFFER"),
        ProtocolError::TooLarge { what: "chunk", len: 9, max: 8 },
        ProtocolError::UnknownFrame(0xab),
        ProtocolError::Unexpected { expected: "PLAN", got: "OFFER" },
        ProtocolError::Malformed("bad".into()),
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
    assert_eq!(ProtocolError::UnknownFrame(0xab).to_string(), "unknown frame type 0xab");
}

#[test]
fn read_errors_keep_their_kind_through_anyhow() {
    let e: anyhow::Error = ReadError::Protocol(ProtocolError::Closed).into();
    assert_eq!(e.downcast_ref::<ProtocolError>(), Some(&ProtocolError::Closed));
    let e: anyhow::Error = ReadError::Io(io::ErrorKind::ConnectionReset.into()).into();
    let io = e.downcast_ref::<io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Text short enough to cross unchanged (well under the 1024-byte cut).
fn arb_text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn arb_entry_kind() -> impl Strategy<Value = EntryKind> {
    prop_oneof![Just(EntryKind::File), Just(EntryKind::Dir)]
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        arb_entry_kind(),
        vec(any::<u8>(), 1..64),
        proptest::option::of(0..=i64::MAX as u64),
        any::<u32>(),
        any::<i64>(),
        0..1_000_000_000u32,
    )
        .prop_map(|(kind, name, size, mode, mtime_sec, mtime_nsec)| Entry {
            kind,
            name,
            size,
            mode,
            mtime_sec,
            mtime_nsec,
        })
}

fn arb_offer() -> impl Strategy<Value = Offer> {
    vec(arb_entry(), 0..8).prop_map(|entries| Offer { entries })
}

fn arb_refuse_code() -> impl Strategy<Value = RefuseCode> {
    proptest::sample::select(REFUSE_CODES.map(|(code, _)| code).to_vec())
}

fn arb_answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        any::<u64>().prop_map(|offset| Answer::Send { offset }),
        Just(Answer::Skip),
        (any::<u64>(), any::<u128>())
            .prop_map(|(offset, prefix_xxh3)| Answer::Resume { offset, prefix_xxh3 }),
        (arb_refuse_code(), arb_text()).prop_map(|(code, reason)| Answer::Refuse { code, reason }),
    ]
}

fn arb_plan() -> impl Strategy<Value = Plan> {
    vec(arb_answer(), 0..8).prop_map(|answers| Plan { answers })
}

fn arb_data_path() -> impl Strategy<Value = DataPath> {
    prop_oneof![Just(DataPath::Sendfile), Just(DataPath::Splice), Just(DataPath::Buffered)]
}

fn arb_fallback() -> impl Strategy<Value = Fallback> {
    // errno 0 means "none" on the wire, so `Some(0)` is not a value that can cross.
    let errno = proptest::option::of(any::<i32>().prop_filter("0 is none", |&e| e != 0));
    (arb_data_path(), errno, arb_text()).prop_map(|(from, errno, reason)| Fallback {
        from,
        errno,
        reason,
    })
}

fn arb_stats() -> impl Strategy<Value = SideStats> {
    (
        proptest::option::of(arb_data_path()),
        [any::<u64>(); 3],
        any::<u32>(),
        [any::<u64>(); 6],
        vec(arb_fallback(), 0..4),
    )
        .prop_map(|(path, [bytes, calls, checksum_calls], pipe_bytes, rest, fallbacks)| {
            let [elapsed_us, user_us, sys_us, peak_rss_kib, voluntary, involuntary] = rest;
            SideStats {
                data_path: path,
                bytes,
                calls,
                checksum_calls,
                pipe_bytes,
                elapsed_us,
                user_us,
                sys_us,
                peak_rss_kib,
                voluntary_switches: voluntary,
                involuntary_switches: involuntary,
                fallbacks,
            }
        })
}

fn arb_verdict() -> impl Strategy<Value = Verdict> {
    let status = prop_oneof![
        Just(VerdictStatus::Ok),
        Just(VerdictStatus::ChecksumMismatch),
        Just(VerdictStatus::Failed),
    ];
    (status, arb_text()).prop_map(|(status, detail)| Verdict { status, detail })
}

fn arb_summary() -> impl Strategy<Value = Summary> {
    (vec(arb_verdict(), 0..8), arb_stats())
        .prop_map(|(verdicts, stats)| Summary { verdicts, stats })
}

fn arb_error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ERROR_CODES.map(|(code, _)| code).to_vec())
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        arb_offer().prop_map(Message::Offer),
        arb_plan().prop_map(Message::Plan),
        any::<u128>().prop_map(|xxh3| Message::FileEnd(FileEnd { xxh3 })),
        arb_stats().prop_map(Message::Finish),
        arb_summary().prop_map(Message::Summary),
        any::<[u8; 32]>().prop_map(|proof| Message::Auth { proof }),
        prop::array::uniform32(any::<u8>())
            .prop_map(|m| Message::Pake { message: core::array::from_fn(|i| m[i % 32]) }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(index, offset)| Message::FileStart { index, offset }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(index, offset)| Message::SparseStart { index, offset }),
        (arb_error_code(), arb_text()).prop_map(|(code, message)| Message::Error { code, message }),
    ]
}

/// A frame of a known type whose payload is arbitrary, so the bytes reach the payload decoder.
/// Payloads stay under 256 bytes so that decoded text (at most 3 bytes per input byte after
/// lossy UTF-8 replacement) stays under the 1024-byte cut and can be re-encoded unchanged.
fn arb_known_frame() -> impl Strategy<Value = Vec<u8>> {
    let kinds: Vec<u8> = FRAME_TYPES.iter().map(|&(kind, _, _)| kind).collect();
    (proptest::sample::select(kinds), vec(any::<u8>(), 0..256))
        .prop_map(|(kind, payload)| raw_frame(kind, &payload))
}

/// Bytes that begin with some prefix of the magic, so greetings get past the first byte.
fn arb_greeting_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..32),
        // Long enough tails to hold a whole greeting (and more) after the full magic.
        (0..=MAGIC.len(), vec(any::<u8>(), 0..HELLO_LEN + 8)).prop_map(|(n, tail)| [
            &MAGIC[..n],
            &tail[..]
        ]
        .concat()),
    ]
}

/// What `read_hello` must answer for `bytes`, worked out from the specification.
fn expected_hello(bytes: &[u8]) -> Result<Hello, ProtocolError> {
    let seen = bytes.len().min(MAGIC.len());
    if bytes.first() == Some(&TLS_HANDSHAKE) {
        // An --encrypt peer's ClientHello.
        Err(ProtocolError::TlsPeer)
    } else if bytes[..seen] != MAGIC[..seen] {
        Err(ProtocolError::NotZcpPeer)
    } else if bytes.is_empty() {
        Err(ProtocolError::Closed)
    } else if bytes.len() < MAGIC.len() {
        Err(ProtocolError::NotZcpPeer)
    } else if bytes.len() < HELLO_LEN {
        Err(ProtocolError::Truncated("greeting"))
    } else {
        let mut nonce = [0u8; 32];
        nonce.copy_from_slice(&bytes[14..HELLO_LEN]);
        Ok(Hello {
            version: u16::from_be_bytes([bytes[8], bytes[9]]),
            flags: u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]),
            nonce,
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sparse_runs_round_trip_or_are_refused(hole in any::<u64>(), data in any::<u64>(), remaining in any::<u64>()) {
        let header = sparse_run_header(hole, data);
        let fits = hole.checked_add(data).is_some_and(|len| len > 0 && len <= remaining);
        match outcome(read_sparse_run(&mut &header[..], remaining)) {
            Ok(run) => prop_assert!(fits && run == (hole, data)),
            Err(Some(ProtocolError::Malformed(_))) => prop_assert!(!fits),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn arbitrary_sparse_run_bytes_never_panic(bytes in vec(any::<u8>(), 0..40), remaining in any::<u64>()) {
        let _ = read_sparse_run(&mut bytes.as_slice(), remaining);
    }

    #[test]
    fn offers_round_trip(offer in arb_offer()) {
        let msg = Message::Offer(offer);
        prop_assert_eq!(round_trip(&msg), msg);
    }

    #[test]
    fn plans_round_trip(plan in arb_plan()) {
        let msg = Message::Plan(plan);
        prop_assert_eq!(round_trip(&msg), msg);
    }

    #[test]
    fn summaries_round_trip(summary in arb_summary()) {
        let msg = Message::Summary(summary);
        prop_assert_eq!(round_trip(&msg), msg);
    }

    #[test]
    fn any_message_round_trips(msg in arb_message()) {
        prop_assert_eq!(round_trip(&msg), msg);
    }

    #[test]
    fn any_hello_round_trips(
        version in any::<u16>(),
        flags in any::<u32>(),
        nonce in any::<[u8; 32]>(),
    ) {
        let hello = Hello { version, flags, nonce };
        prop_assert_eq!(read_hello(&mut hello_bytes(hello).as_slice()).unwrap(), hello);
    }

    #[test]
    fn arbitrary_bytes_never_panic_read_message(bytes in vec(any::<u8>(), 0..512)) {
        let mut cursor = Cursor::new(bytes.as_slice());
        // Each frame read consumes at least its 5-byte header, so this ends.
        let end = loop {
            if let Err(e) = read_message(&mut cursor) {
                break e;
            }
        };
        prop_assert!(matches!(end, ReadError::Protocol(_)), "{:?}", end);
        let first = outcome(read_bytes(&bytes));
        prop_assert_eq!(outcome(read_message(&mut OneByte(&bytes))), first);
    }

    #[test]
    fn arbitrary_payloads_never_panic_and_reencode(bytes in arb_known_frame()) {
        let result = outcome(read_bytes(&bytes));
        prop_assert_eq!(&outcome(read_message(&mut OneByte(&bytes))), &result);
        if let Ok(msg) = result {
            // Anything accepted is a value we can send back unchanged.
            prop_assert_eq!(round_trip(&msg), msg);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_read_hello(bytes in arb_greeting_bytes()) {
        let expected = expected_hello(&bytes);
        prop_assert_eq!(outcome(read_hello(&mut bytes.as_slice())), expected.clone().map_err(Some));
        prop_assert_eq!(outcome(read_hello(&mut OneByte(&bytes))), expected.map_err(Some));
    }

    #[test]
    fn arbitrary_bytes_never_panic_read_chunk_header(bytes in vec(any::<u8>(), 0..8)) {
        let result = outcome(read_chunk_header(&mut bytes.as_slice()));
        let expected = match <[u8; 4]>::try_from(bytes.get(..4).unwrap_or(&[])) {
            Err(_) if bytes.is_empty() => Err(ProtocolError::Closed),
            Err(_) => Err(ProtocolError::Truncated("chunk header")),
            Ok(raw) => match u32::from_be_bytes(raw) {
                len if len <= MAX_CHUNK => Ok(len),
                len => Err(ProtocolError::TooLarge {
                    what: "chunk",
                    len: len as u64,
                    max: MAX_CHUNK as u64,
                }),
            },
        };
        prop_assert_eq!(result, expected.map_err(Some));
    }

    #[test]
    fn truncated_frames_are_errors(msg in arb_message()) {
        let bytes = frame(&msg);
        for cut in 0..bytes.len() {
            let err = protocol_error(read_bytes(&bytes[..cut]));
            let expected = match cut {
                0 => ProtocolError::Closed,
                1..=4 => ProtocolError::Truncated("frame header"),
                _ => ProtocolError::Truncated(msg.name()),
            };
            prop_assert_eq!(err, expected, "cut at {}", cut);
        }
    }

    #[test]
    fn shortened_payloads_are_malformed(msg in arb_message()) {
        // The length field agrees with the shortened payload, so the decoder itself must notice.
        let (kind, payload) = msg.encode();
        for cut in 0..payload.len() {
            let err = protocol_error(read_bytes(&raw_frame(kind, &payload[..cut])));
            prop_assert!(matches!(err, ProtocolError::Malformed(_)), "cut at {}: {:?}", cut, err);
        }
    }

    #[test]
    fn truncated_hellos_are_errors(version in any::<u16>(), flags in any::<u32>()) {
        let bytes = hello_bytes(Hello { version, flags, nonce: [0; 32] });
        for cut in 0..bytes.len() {
            prop_assert!(read_hello(&mut &bytes[..cut]).is_err(), "cut at {}", cut);
        }
    }

    #[test]
    fn flipped_bytes_never_panic(
        msg in arb_message(),
        flips in vec((any::<Index>(), 1..=u8::MAX), 1..8),
    ) {
        let mut bytes = frame(&msg);
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        let result = outcome(read_bytes(&bytes));
        prop_assert!(!matches!(result, Err(None)), "a slice reader has no I/O errors");
        prop_assert_eq!(outcome(read_message(&mut OneByte(&bytes))), result);
    }

    #[test]
    fn flipped_hello_bytes_never_panic(
        at in any::<Index>(),
        mask in 1..=u8::MAX,
        nonce in any::<[u8; 32]>(),
    ) {
        let mut bytes = hello_bytes(Hello::with_auth(nonce));
        let i = at.index(bytes.len());
        bytes[i] ^= mask;
        let expected = expected_hello(&bytes).map_err(Some);
        prop_assert_eq!(outcome(read_hello(&mut bytes.as_slice())), expected);
    }
}

#[test]
fn entry_sizes_past_what_a_file_can_hold_are_malformed() {
    let mut entry = Entry {
        kind: EntryKind::File,
        name: b"big".to_vec(),
        size: Some(u64::MAX),
        mode: 0o644,
        mtime_sec: 0,
        mtime_nsec: 0,
    };
    let err =
        protocol_error(read_bytes(&frame(&Message::Offer(Offer { entries: vec![entry.clone()] }))));
    assert!(
        matches!(err, ProtocolError::Malformed(ref why) if why.contains("larger than any file")),
        "{err:?}"
    );
    entry.size = Some(i64::MAX as u64);
    let msg = Message::Offer(Offer { entries: vec![entry] });
    assert_eq!(round_trip(&msg), msg);
}

#[test]
fn file_frames_have_the_fixed_lengths_the_receiver_plans_its_reads_by() {
    let start = frame(&Message::FileStart { index: u32::MAX, offset: u64::MAX });
    assert_eq!(start.len(), FILE_START_FRAME);
    let end = frame(&Message::FileEnd(FileEnd { xxh3: u128::MAX }));
    assert_eq!(end.len(), FILE_END_FRAME);
}

#[test]
fn a_plan_written_as_it_is_made_is_the_plan_frame() {
    let answers = vec![
        Answer::Send { offset: 0 },
        Answer::Resume { offset: 7, prefix_xxh3: u128::MAX - 3 },
        Answer::Skip,
        Answer::Refuse { code: RefuseCode::Exists, reason: "there".into() },
    ];
    let mut streamed = Vec::new();
    write_plan(&mut streamed, answers.clone().into_iter()).expect("writing to a Vec");
    assert_eq!(streamed, frame(&Message::Plan(Plan { answers })));
}

#[test]
fn a_tls_client_hello_is_told_apart_from_other_strangers() {
    // The first bytes of a TLS 1.x handshake record: what an --encrypt peer sends first.
    let client_hello = [0x16, 0x03, 0x01, 0x00, 0xf4, 0x01];
    assert!(matches!(
        read_hello(&mut client_hello.as_slice()),
        Err(ReadError::Protocol(ProtocolError::TlsPeer))
    ));
    let text = b"GET / HTTP/1.1\r\n";
    assert!(matches!(
        read_hello(&mut text.as_slice()),
        Err(ReadError::Protocol(ProtocolError::NotZcpPeer))
    ));
}
