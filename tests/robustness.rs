//! Receiver robustness found in review: duplicate names, a stream past --max-size, existing
//! directories the sender may not re-mode, and a handshake trickled a byte at a time.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::util;
use crate::util::{Receiver, dir_entry, file_entry, offer, send_chunked, send_paths, zcp_client};
use util::protocol::Answer;

#[test]
fn a_name_offered_twice_is_refused_once_and_the_first_lands() {
    let work = tempfile::tempdir().expect("tempdir");
    let (a, b, dst) = (work.path().join("a"), work.path().join("b"), work.path().join("dst"));
    for (dir, text) in [(&a, "first"), (&b, "second")] {
        fs::create_dir(dir).expect("mkdir");
        fs::write(dir.join("x"), text).expect("write");
    }
    fs::create_dir(&dst).expect("mkdir dst");
    let receiver = Receiver::start(&dst, &[]);
    let sent = send_paths(&[&a.join("x"), &b.join("x")], &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(5), "sender:\n{stderr}");
    assert!(stderr.contains("names it twice"), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(5), "receiver:\n{}", received.stderr);
    assert_eq!(fs::read_to_string(dst.join("x")).expect("x landed"), "first");
    let names: Vec<_> =
        fs::read_dir(&dst).expect("ls").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names.len(), 1, "no part file may be left: {names:?}");
}

#[test]
fn a_stream_past_max_size_is_refused_with_exit_5() {
    let work = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(work.path(), &["--max-size", "64K"]);
    let mut socket = zcp_client(receiver.addr());
    assert_eq!(
        offer(&mut socket, vec![file_entry(b"s", None)]).answers,
        [Answer::Send { offset: 0 }]
    );
    send_chunked(&mut socket, 0, &vec![7u8; 256 << 10]);
    drop(socket);
    let received = receiver.wait();
    assert_eq!(received.code(), Some(5), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("--max-size"), "receiver:\n{}", received.stderr);
    assert!(!work.path().join("s").exists(), "nothing under the final name");
}

#[test]
fn an_existing_directory_keeps_its_mode() {
    let work = tempfile::tempdir().expect("tempdir");
    let keep = work.path().join("keep");
    fs::create_dir(&keep).expect("mkdir");
    fs::set_permissions(&keep, fs::Permissions::from_mode(0o750)).expect("chmod");
    let receiver = Receiver::start(work.path(), &[]);
    let mut socket = zcp_client(receiver.addr());
    let mut entry = dir_entry(b"keep");
    entry.mode = 0o000;
    assert_eq!(offer(&mut socket, vec![entry]).answers, [Answer::Skip]);
    util::finish(&mut socket);
    let received = receiver.wait();
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    let mode = fs::metadata(&keep).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o750, "a sender changed the mode of a directory it did not create");
}

#[test]
fn a_trickled_handshake_still_ends_at_the_deadline() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut receiver = Receiver::start(work.path(), &[]);
    let started = Instant::now();
    let socket = std::net::TcpStream::connect(receiver.addr()).expect("connect");
    // One byte of a valid greeting every 1.5 s: each read succeeds well inside a per-read
    // timeout, but the handshake as a whole must still end at 10 s.
    let hello = util::hello_bytes(util::protocol::Hello::with_auth([1; 32]));
    let trickler = util::trickle(socket, hello);
    let line = receiver.process().wait_line_within("ignored a connection", Duration::from_secs(20));
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(12), "the handshake ran {waited:?}, past its deadline");
    assert!(line.contains("greeting"), "{line}");
    assert!(receiver.process().running(), "a trickling sender ended a one-shot receiver");
    trickler.join().expect("trickler");
}

#[test]
fn ctrl_c_stops_a_listening_sender_once_it_is_sending() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("slow.bin");
    fs::write(&src, vec![5u8; 8 << 20]).expect("write");
    let dst = work.path().join("dst");
    fs::create_dir(&dst).expect("mkdir");
    let src_arg = src.to_str().expect("utf-8 path");
    let args = ["send", src_arg, "--listen", "127.0.0.1:0", "--limit-rate", "1M"];
    let mut sender = util::Process::start(&args, &[]);
    let addr = sender.listening().to_string();
    let dst_arg = dst.to_str().expect("utf-8 path");
    let receiver = util::Process::start(&["recv", "--connect", &addr, "--output", dst_arg], &[]);
    // Sending: the first bytes reached the receiver's part file.
    util::wait_for_bytes(&util::part_of(&dst, "slow.bin"), 1);
    let sent_at = Instant::now();
    sender.signal(nix::sys::signal::Signal::SIGINT);
    let sender = sender.wait_for(Duration::from_secs(10));
    assert!(sent_at.elapsed() < Duration::from_secs(3), "Ctrl-C took {:?}", sent_at.elapsed());
    // It stops between calls, says what was kept and exits 130, not killed mid-write.
    assert_eq!(sender.code(), Some(130), "the sender should exit 130: {sender:?}");
    assert!(sender.stderr.contains("run the same command again"), "{}", sender.stderr);
    let received = receiver.wait_for(Duration::from_secs(10));
    assert_ne!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert!(!dst.join("slow.bin").exists(), "a cut transfer must not land under its name");
}

#[test]
fn sizes_that_add_up_past_u64_are_refused_not_wrapped() {
    // The wire allows sizes up to i64::MAX. Three of them wrap to a sum that is still huge;
    // two and 3 bytes wrap to 1, which a wrapping sum would let past --max-size.
    let wide = i64::MAX as u64;
    for sizes in [[wide, wide, wide], [wide, wide, 3]] {
        let work = tempfile::tempdir().expect("tempdir");
        let receiver = Receiver::start(work.path(), &["--max-size", "1K"]);
        let mut socket = zcp_client(receiver.addr());
        let entries = [b"a", b"b", b"c"].iter().zip(sizes);
        let plan = offer(&mut socket, entries.map(|(n, s)| file_entry(*n, Some(s))).collect());
        for answer in &plan.answers {
            assert!(
                matches!(answer, Answer::Refuse { .. }),
                "sizes {sizes:?}: a plan past --max-size was accepted: {plan:?}"
            );
        }
        util::finish(&mut socket);
        let received = receiver.wait();
        assert_eq!(received.code(), Some(5), "sizes {sizes:?}: receiver:\n{}", received.stderr);
        assert!(!received.stderr.contains("panicked"), "receiver:\n{}", received.stderr);
    }
}
