//! Sparse files: a 4 GiB file with 64 MiB of data in several extents crosses as its
//! data only (the sparse form, negotiated by the greeting's SPARSE flag), arrives with the same
//! bytes and about the same allocation, its holes counted apart in the report; a resumed one
//! too; a receiver that did not say SPARSE gets the plain form; a hostile sender's runs past
//! the file, or SPARSE_START where the form cannot be, end the receiver with exit 4 and no file.

use std::fs::File;
use std::net::TcpStream;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use zcp::protocol::{self, Answer, FLAG_NO_AUTH, Hello, Message, Plan};

use crate::util::{
    self, FakeReceiver, Process, Receiver, assert_exit, json_u64, pseudo_random, send,
};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Eight extents of 8 MiB, 512 MiB apart (not block-aligned ends: the last block is partial).
const EXTENTS: [(u64, u64); 8] = [
    (0, 8 * MIB),
    (512 * MIB + 4096, 8 * MIB),
    (1024 * MIB, 8 * MIB + 123),
    (1536 * MIB, 8 * MIB),
    (2048 * MIB + 8192, 8 * MIB),
    (2560 * MIB, 8 * MIB),
    (3072 * MIB, 8 * MIB),
    (4 * GIB - 9 * MIB, 8 * MIB),
];

/// A 4 GiB file with data in `EXTENTS` and holes elsewhere (a trailing one of 1 MiB).
fn sparse_source(path: &Path) {
    let file = File::create(path).expect("creating the source");
    file.set_len(4 * GIB).expect("sizing the source");
    for (i, &(at, len)) in EXTENTS.iter().enumerate() {
        file.write_all_at(&pseudo_random(len as usize, 70 + i as u64), at).expect("an extent");
    }
}

/// Checks `copy` against `source`: the same size, the same bytes in every extent and in the
/// holes around them (zeros), and an allocation within 10% of the source's.
fn assert_same_sparse(source: &Path, copy: &Path) {
    let (src, dst) = (File::open(source).unwrap(), File::open(copy).expect("the copy"));
    let (a, b) = (src.metadata().unwrap(), dst.metadata().unwrap());
    assert_eq!(b.len(), a.len(), "size");
    for &(at, len) in &EXTENTS {
        // Each extent with 4 KiB of hole on either side (none before byte 0).
        let from = at.saturating_sub(4096);
        let to = (at + len + 4096).min(a.len());
        let (mut x, mut y) = (vec![0u8; (to - from) as usize], vec![0u8; (to - from) as usize]);
        src.read_exact_at(&mut x, from).unwrap();
        dst.read_exact_at(&mut y, from).unwrap();
        assert!(x == y, "bytes {from}..{to} differ");
    }
    let (want, got) = (a.blocks() as f64, b.blocks() as f64);
    assert!((got - want).abs() <= want * 0.1, "allocated {got} blocks, the source {want}");
}

/// Sends the source with `extra` to a receiver with `--json`; returns the receiver's report.
fn send_sparse(src: &Path, dst: &Path, extra: &[&str]) -> serde_json::Value {
    let receiver = Receiver::start(dst, &["--json"]);
    let sent = send(src, &receiver.dest(), extra);
    assert_exit(&sent, 0, "sender");
    let received = receiver.wait();
    assert_exit(&received, 0, "receiver");
    assert!(received.stderr.contains("of holes (not sent)"), "summary:\n{}", received.stderr);
    received.json()
}

#[test]
fn a_sparse_file_crosses_as_its_data_and_lands_sparse() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("sparse.img");
    sparse_source(&src);
    let dst = util::subdir(work.path(), "dst");
    let report = send_sparse(&src, &dst, &[]);
    assert_same_sparse(&src, &dst.join("sparse.img"));
    let (bytes, holes) = (json_u64(&report, "/bytes"), json_u64(&report, "/hole_bytes"));
    assert_eq!(bytes + holes, 4 * GIB, "{report:#}");
    // Only the data crossed (extents rounded out to blocks), not the 4 GiB.
    assert!((64 * MIB..65 * MIB).contains(&bytes), "{bytes} bytes crossed");
    assert_eq!(json_u64(&report, "/files/0/hole_bytes"), holes);
    assert_eq!(report["checksum"]["ok"], true);
}

#[test]
fn a_buffered_sender_sends_only_the_data_too() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("sparse.img");
    sparse_source(&src);
    let dst = util::subdir(work.path(), "dst");
    let report = send_sparse(&src, &dst, &["--method", "buffered"]);
    assert_same_sparse(&src, &dst.join("sparse.img"));
    assert!(json_u64(&report, "/bytes") < 65 * MIB, "{report:#}");
    assert_eq!(report["send"]["path"], "buffered");
}

#[test]
fn a_sparse_file_resumes_from_its_part_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("sparse.img");
    sparse_source(&src);
    let dst = util::subdir(work.path(), "dst");
    // The receiver kept the first 1 GiB + 4 MiB (into the third extent), holes and all.
    let kept = GIB + 4 * MIB;
    let part = File::create(dst.join(".sparse.img.zcp-part")).expect("part file");
    part.set_len(kept).unwrap();
    let source = File::open(&src).unwrap();
    for &(at, len) in EXTENTS.iter().filter(|(at, _)| *at < kept) {
        let mut buf = vec![0u8; (len.min(kept - at)) as usize];
        source.read_exact_at(&mut buf, at).unwrap();
        part.write_all_at(&buf, at).unwrap();
    }
    drop(part);
    let report = send_sparse(&src, &dst, &[]);
    assert_same_sparse(&src, &dst.join("sparse.img"));
    assert_eq!(json_u64(&report, "/resumed_bytes"), kept, "{report:#}");
    let (bytes, holes) = (json_u64(&report, "/bytes"), json_u64(&report, "/hole_bytes"));
    assert_eq!(bytes + holes, 4 * GIB - kept, "{report:#}");
    assert!(bytes < 61 * MIB, "only the data after the kept part crossed: {bytes}");
}

#[test]
fn a_receiver_that_did_not_say_sparse_gets_the_plain_form() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("sparse.img");
    let file = File::create(&src).unwrap();
    file.set_len(64 * MIB).unwrap();
    file.write_all_at(b"data", 32 * MIB).unwrap();
    let fake = std::net::TcpListener::bind("127.0.0.1:0").expect("binding loopback");
    let dest = fake.local_addr().unwrap().to_string();
    let mut sender = Command::new(util::ZCP);
    sender.args(["send", "--no-auth", "--idle-timeout", "5"]).arg(&src).arg(&dest);
    let sender = Process::spawn(sender);
    let (mut socket, _) = fake.accept().expect("the sender");
    let first = first_file_frame(&mut socket, FLAG_NO_AUTH);
    assert!(matches!(first, Message::FileStart { index: 0, offset: 0 }), "{first:?}");
    drop(socket);
    let _ = sender.kill();
    // The same, greeted with the flag: the sparse form.
    let fake = FakeReceiver::new();
    let mut sender = Command::new(util::ZCP);
    sender.args(["send", "--no-auth", "--idle-timeout", "5"]).arg(&src).arg(fake.dest());
    let sender = Process::spawn(sender);
    let (mut socket, _offer) = fake.accept();
    protocol::write_plan(&mut socket, [Answer::Send { offset: 0 }].into_iter()).unwrap();
    let first = protocol::read_message(&mut socket).expect("the first file");
    assert!(matches!(first, Message::SparseStart { index: 0, offset: 0 }), "{first:?}");
    let _ = sender.kill();
}

/// Greets a sender with `flags`, takes its offer, asks for its one file and returns the frame
/// that starts it.
fn first_file_frame(socket: &mut TcpStream, flags: u32) -> Message {
    protocol::read_hello(socket).expect("the sender's HELLO");
    let hello = Hello { version: protocol::VERSION, flags, nonce: [0; 32] };
    protocol::write_hello(&mut *socket, hello).expect("HELLO");
    let offer = protocol::read_message(socket).expect("the offer");
    assert!(matches!(offer, Message::Offer(_)), "{offer:?}");
    let plan = Plan { answers: vec![Answer::Send { offset: 0 }] };
    protocol::write_message(&mut *socket, &Message::Plan(plan)).expect("PLAN");
    protocol::read_message(socket).expect("the first file")
}

#[test]
fn onto_standard_output_the_holes_arrive_as_zeros() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("sparse.img");
    let file = File::create(&src).unwrap();
    file.set_len(48 * MIB).unwrap();
    let data = pseudo_random(MIB as usize, 9);
    file.write_all_at(&data, 20 * MIB).unwrap();
    let receiver = Receiver::start(Path::new("-"), &[]);
    let sent = send(&src, &receiver.dest(), &["--json"]);
    assert_exit(&sent, 0, "sender");
    let received = receiver.wait();
    assert_exit(&received, 0, "receiver");
    let mut expected = vec![0u8; 48 * MIB as usize];
    expected[20 * MIB as usize..21 * MIB as usize].copy_from_slice(&data);
    assert!(received.stdout_bytes == expected, "stdout differs from the sparse file");
    assert_eq!(json_u64(&sent.json(), "/hole_bytes"), 47 * MIB);
}

#[test]
fn no_sparse_sends_the_holes_as_zeros() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("sparse.img");
    let file = File::create(&src).unwrap();
    file.set_len(8 * MIB).unwrap();
    file.write_all_at(&pseudo_random(4096, 3), 4 * MIB).unwrap();
    let dst = util::subdir(work.path(), "dst");
    let receiver = Receiver::start(&dst, &[]);
    let sent = send(&src, &receiver.dest(), &["--json", "--no-sparse"]);
    assert_exit(&sent, 0, "sender");
    assert_exit(&receiver.wait(), 0, "receiver");
    let report = sent.json();
    assert_eq!((json_u64(&report, "/bytes"), json_u64(&report, "/hole_bytes")), (8 * MIB, 0));
    util::assert_file_holds(&dst.join("sparse.img"), &std::fs::read(&src).unwrap(), "whole");
}

#[test]
fn events_count_the_holes_as_done() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("sparse.img");
    let file = File::create(&src).unwrap();
    file.set_len(48 * MIB).unwrap();
    file.write_all_at(&pseudo_random(MIB as usize, 4), 8 * MIB).unwrap();
    let dst = util::subdir(work.path(), "dst");
    let receiver = Receiver::start(&dst, &["--events"]);
    let sent = send(&src, &receiver.dest(), &["--events"]);
    assert_exit(&sent, 0, "sender");
    let received = receiver.wait();
    assert_exit(&received, 0, "receiver");
    for (who, out) in [("send", &sent.stdout), ("recv", &received.stdout)] {
        let events: Vec<serde_json::Value> =
            out.lines().map(|l| serde_json::from_str(l).expect("an event")).collect();
        let end = events.iter().find(|e| e["event"] == "file_end").expect("file_end");
        assert_eq!(
            (end["bytes"].as_u64(), end["hole_bytes"].as_u64()),
            (Some(MIB), Some(47 * MIB))
        );
        let last = events.iter().rfind(|e| e["event"] == "progress").expect("progress");
        assert_eq!(last["bytes"].as_u64(), Some(48 * MIB), "{who}: holes count as done: {last}");
    }
}

/// A hostile authenticated sender: after the plan, it starts file 0 (of `size` bytes) with
/// SPARSE_START at `offset` and sends `after` raw. The receiver (into `--output OUTPUT`) must end with exit 4
/// (malformed stream) and one line naming `cause`, with no panic and nothing under a final
/// name.
fn hostile_sparse(output: &str, size: Option<u64>, offset: u64, after: &[u8], cause: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = util::subdir(work.path(), "dst");
    let out = if output == "-" { Path::new("-").to_path_buf() } else { dst.clone() };
    let receiver = Receiver::start(&out, &[]);
    let mut socket = util::zcp_client(receiver.addr());
    util::offer(&mut socket, vec![util::file_entry(b"victim.img", size)]);
    util::send_frames(&mut socket, &[Message::SparseStart { index: 0, offset }]);
    std::io::Write::write_all(&mut socket, after).expect("sending the runs");
    let received = receiver.wait();
    util::assert_no_panic(&received, "receiver");
    assert_exit(&received, 4, "receiver");
    util::assert_says(&received, cause, "receiver");
    let lines: Vec<&str> = received.stderr.lines().filter(|l| l.starts_with("zcp:")).collect();
    assert_eq!(lines.len(), 1, "one error line:\n{}", received.stderr);
    assert!(util::final_names(&dst).is_empty(), "a final name: {:?}", util::final_names(&dst));
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 1, "only dst/ in the work dir");
}

#[test]
fn a_sparse_run_past_the_end_of_the_file_is_refused() {
    let past = [protocol::sparse_run_header(MIB, 3 * MIB + 1), [0; 16]].concat();
    hostile_sparse("dst", Some(4 * MIB), 0, &past, "sparse run of 1048576 + 3145729 bytes");
    // The hole and the data together wrap around 2^64: still past the end, not a tiny run.
    let wraps = protocol::sparse_run_header(u64::MAX, 2);
    hostile_sparse("dst", Some(4 * MIB), 0, &wraps, "where 4194304 remain");
    let empty = protocol::sparse_run_header(0, 0);
    hostile_sparse("dst", Some(4 * MIB), 0, &empty, "an empty sparse run");
    // Onto standard output, where holes are written as zeros, the same bound holds.
    hostile_sparse("-", Some(4 * MIB), 0, &wraps, "where 4194304 remain");
}

#[test]
fn sparse_start_where_the_sparse_form_cannot_be_is_refused() {
    let run = protocol::sparse_run_header(0, 10);
    hostile_sparse("dst", Some(100), 0, &run, "comes in the sparse form, but it is batched");
    hostile_sparse("dst", None, 0, &run, "a file of unknown size cannot come in the sparse");
    hostile_sparse("dst", Some(4 * MIB), MIB, &run, "sender resumed at 1048576, the plan said 0");
    hostile_sparse("-", Some(4 * MIB), MIB, &run, "was not planned to be sent from offset");
}
