//! A hand-written peer that speaks the protocol through the library, to send what `zcp send`
//! never would: a wrong checksum, bytes for an entry the receiver refused, a stream cut at a
//! chosen byte. (Hostile names are in `names.rs`.)

use std::fs;
use std::io::Write;
use std::net::{Shutdown, TcpStream};

use crate::util;
use crate::util::{
    Receiver, dir_names, end_file, file_entry, finish, offer, pseudo_random, subdir, try_offer,
    zcp_client,
};
use util::protocol::{self, Answer, FileEnd, Message, RefuseCode, VerdictStatus};

/// Offers one entry named `name` and returns the receiver's answer.
fn offer_one(socket: &mut TcpStream, name: &[u8], size: Option<u64>) -> Answer {
    let plan = offer(socket, vec![file_entry(name, size)]);
    plan.answers.into_iter().next().expect("one answer")
}

/// Announces entry `index` from byte 0.
fn file_start(socket: &mut TcpStream, index: u32) {
    let start = Message::FileStart { index, offset: 0 };
    protocol::write_message(socket, &start).expect("sending FILE_START");
}

#[test]
fn bytes_for_a_refused_entry_are_a_protocol_error() {
    // A sender that ignores a refusal and sends anyway must not get anything written.
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let receiver = Receiver::start(&dst, &[]);
    let mut socket = zcp_client(receiver.addr());
    let answer = offer_one(&mut socket, b"../evil", Some(4));
    assert!(
        matches!(answer, Answer::Refuse { code: RefuseCode::InvalidName, .. }),
        "expected a refusal as an invalid name, got {answer:?}"
    );
    file_start(&mut socket, 0);
    let _ = socket.write_all(b"evil");
    end_file(&mut socket, b"evil");
    let received = receiver.wait();
    assert_eq!(received.code(), Some(4), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("FILE_START"), "receiver:\n{}", received.stderr);
    assert!(dir_names(&dst).is_empty(), "files appeared in the destination");
    assert_eq!(dir_names(work.path()), ["dst"], "files appeared beside it");
}

#[test]
fn empty_name_is_a_malformed_offer() {
    // Names are 1 to 4096 bytes on the wire: an empty one is not refused, the offer is malformed.
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let receiver = Receiver::start(&dst, &[]);
    let mut socket = zcp_client(receiver.addr());
    let answer = try_offer(&mut socket, vec![file_entry(b"", Some(4))]);
    assert!(!matches!(answer, Ok(Message::Plan(_))), "a malformed offer got a plan: {answer:?}");
    let received = receiver.wait();
    assert_eq!(received.code(), Some(4), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("malformed"), "receiver:\n{}", received.stderr);
    assert!(dir_names(&dst).is_empty(), "files appeared in the destination");
    assert_eq!(dir_names(work.path()), ["dst"], "files appeared beside it");
}

#[test]
fn wrong_checksum_is_rejected_and_nothing_kept() {
    for method in ["splice", "buffered"] {
        let work = tempfile::tempdir().expect("tempdir");
        let receiver = Receiver::start(work.path(), &["--method", method]);
        let mut socket = zcp_client(receiver.addr());
        let answer = offer_one(&mut socket, b"ten.bin", Some(10));
        assert_eq!(answer, Answer::Send { offset: 0 }, "recv {method}");
        file_start(&mut socket, 0);
        socket.write_all(b"0123456789").expect("sending the data");
        let wrong = FileEnd { xxh3: 0x0123_4567_89ab_cdef };
        protocol::write_message(&mut socket, &Message::FileEnd(wrong)).expect("sending FILE_END");
        let summary = finish(&mut socket);
        assert_eq!(summary.verdicts.len(), 1, "recv {method}: {summary:?}");
        assert_eq!(
            summary.verdicts[0].status,
            VerdictStatus::ChecksumMismatch,
            "recv {method}: {summary:?}"
        );
        assert_eq!(summary.stats.bytes, 10, "recv {method}: the receiver counts what it took");
        let received = receiver.wait();
        assert_eq!(received.code(), Some(6), "recv {method}: receiver:\n{}", received.stderr);
        assert!(
            received.stderr.contains("checksum mismatch"),
            "recv {method}: receiver:\n{}",
            received.stderr
        );
        assert!(dir_names(work.path()).is_empty(), "recv {method}: a file or part file was kept");
    }
}

#[test]
fn right_checksum_from_a_handwritten_peer_is_accepted() {
    // The control for the test above: the same exchange with the right digest succeeds.
    let work = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(work.path(), &[]);
    let mut socket = zcp_client(receiver.addr());
    let data = b"0123456789";
    assert_eq!(offer_one(&mut socket, b"ten.bin", Some(10)), Answer::Send { offset: 0 });
    util::send_file(&mut socket, 0, 0, data);
    let summary = finish(&mut socket);
    assert_eq!(summary.verdicts.len(), 1, "{summary:?}");
    assert_eq!(summary.verdicts[0].status, VerdictStatus::Ok, "{summary:?}");
    let received = receiver.wait();
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert_eq!(fs::read(work.path().join("ten.bin")).expect("reading ten.bin"), data);
}

/// Offers a file of unknown length, sends `chunks` (header and bytes each), then `tail` raw
/// bytes, closes, and returns the receiver's exit code and stderr.
fn cut_chunked_stream(chunks: &[&[u8]], tail: &[u8]) -> (Option<i32>, String, Vec<String>) {
    let work = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(work.path(), &[]);
    let mut socket = zcp_client(receiver.addr());
    assert_eq!(offer_one(&mut socket, b"piped", None), Answer::Send { offset: 0 });
    file_start(&mut socket, 0);
    for chunk in chunks {
        socket.write_all(&protocol::chunk_header(chunk.len() as u32)).expect("chunk header");
        socket.write_all(chunk).expect("chunk bytes");
    }
    socket.write_all(tail).expect("tail");
    socket.shutdown(Shutdown::Both).expect("closing");
    let received = receiver.wait();
    (received.code(), received.stderr, dir_names(work.path()))
}

#[test]
fn chunked_stream_cut_inside_a_chunk_is_connection_lost() {
    let data = pseudo_random(1000, 5);
    let mut tail = protocol::chunk_header(1000).to_vec();
    tail.extend_from_slice(&data[..400]);
    let (code, stderr, left) = cut_chunked_stream(&[&data], &tail);
    assert_eq!(code, Some(3), "receiver:\n{stderr}");
    assert!(stderr.contains("connection lost"), "receiver:\n{stderr}");
    assert!(!left.contains(&"piped".to_string()), "a cut stream was put in place: {left:?}");
}

#[test]
fn chunked_stream_cut_between_chunks_is_connection_lost() {
    let data = pseudo_random(1000, 6);
    let (code, stderr, left) = cut_chunked_stream(&[&data], &[]);
    assert_eq!(code, Some(3), "receiver:\n{stderr}");
    assert!(stderr.contains("connection lost"), "receiver:\n{stderr}");
    assert!(!left.contains(&"piped".to_string()), "a cut stream was put in place: {left:?}");
}

#[test]
fn a_sender_quiet_after_the_plan_is_named_an_idle_timeout() {
    let work = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(work.path(), &["--idle-timeout", "1"]);
    let mut socket = zcp_client(receiver.addr());
    assert_eq!(offer_one(&mut socket, b"f", Some(10)), Answer::Send { offset: 0 });
    let received = receiver.wait();
    assert_eq!(received.code(), Some(3), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("--idle-timeout"), "receiver:\n{}", received.stderr);
    assert!(!received.stderr.contains("10 s"), "receiver:\n{}", received.stderr);
}
