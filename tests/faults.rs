//! Things going wrong on the wire and around it: a hostile client speaking the protocol badly, a
//! client that stops talking, a proxy that cuts the connection or flips a byte, and signals
//! stopping a receiver. Each ends with a documented exit code, a clear message, no panic, and
//! nothing under a final name that should not be there.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::util;
use crate::util::protocol::{self, ErrorCode, Message};
use crate::util::{
    Fault, Process, Proxy, Receiver, Rng, assert_exit, assert_file_holds, assert_no_panic,
    assert_says, dir_names, file_entry, final_names, json_u64, offer, part_of, run, send, send_cmd,
    subdir, wait_for_bytes, write_random_file, zcp_client,
};

const NAME: &str = "payload.bin";
const MIB: usize = 1 << 20;

/// Frame type of OFFER.
const OFFER: u8 = 0x01;

/// After `client` wrote something the receiver must refuse: the receiver answers with an ERROR
/// frame (protocol violation), exits 4 saying `why`, and writes nothing.
fn assert_refused_as_protocol_violation(
    mut client: TcpStream,
    recv: Receiver,
    dst: &Path,
    why: &str,
) {
    let answer = protocol::read_message(&mut client);
    // Hanging up ends the receiver's wait for our last bytes at once.
    drop(client);
    let received = recv.wait();
    assert_exit(&received, 4, "receiver");
    assert_says(&received, why, "receiver");
    match answer {
        Ok(Message::Error { code: ErrorCode::Protocol, message }) => {
            assert!(message.contains(why), "the ERROR frame says why: {message:?}")
        }
        other => panic!("expected an ERROR frame (protocol violation), got {other:?}"),
    }
    assert!(dir_names(dst).is_empty(), "nothing may be written: {:?}", dir_names(dst));
}

/// A receiver into a fresh `dst`, and an authenticated protocol client connected to it.
fn hostile_setup(dst: &Path, extra: &[&str]) -> (Receiver, TcpStream) {
    let recv = Receiver::start(dst, extra);
    let addr = recv.addr();
    (recv, zcp_client(addr))
}

#[test]
fn oversized_frame_is_refused_before_allocation() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, mut client) = hostile_setup(work.path(), &[]);
    let mut header = vec![OFFER];
    header.extend_from_slice(&((64u32 << 20) + 1).to_be_bytes());
    client.write_all(&header).expect("sending the frame header");
    assert_refused_as_protocol_violation(client, recv, work.path(), "exceeds the limit");
}

#[test]
fn truncated_frame_is_a_protocol_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, mut client) = hostile_setup(work.path(), &[]);
    let mut frame = vec![OFFER];
    frame.extend_from_slice(&100u32.to_be_bytes());
    frame.extend_from_slice(&[0u8; 10]);
    client.write_all(&frame).expect("sending a short frame");
    client.shutdown(Shutdown::Write).expect("closing our side");
    assert_refused_as_protocol_violation(client, recv, work.path(), "truncated inside OFFER");
}

#[test]
fn manifest_over_the_entry_cap_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, mut client) = hostile_setup(work.path(), &[]);
    let count = protocol::MAX_ENTRIES + 1;
    let mut frame = vec![OFFER];
    frame.extend_from_slice(&4u32.to_be_bytes());
    frame.extend_from_slice(&count.to_be_bytes());
    client.write_all(&frame).expect("sending the offer");
    assert_refused_as_protocol_violation(client, recv, work.path(), "entry count");
}

#[test]
fn silent_connection_times_out_after_the_handshake_timeout() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut recv = Receiver::start(work.path(), &[]);
    let addr = recv.addr();
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).expect("connecting");
    let line = recv.process().wait_line_within("ignored a connection", Duration::from_secs(30));
    let waited = started.elapsed();
    assert!(line.contains("nothing arrived for 10 s"), "{line}");
    assert!(line.contains("greeting"), "{line}");
    assert!(waited >= Duration::from_secs(9), "gave up after {waited:?}, before the timeout");
    // The receiver closed the silent connection, and still runs.
    silent.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    assert_eq!(silent.read(&mut [0u8; 1]).expect("reading the end"), 0);
    assert!(recv.process().running(), "a silent connection ended a one-shot receiver");
    assert!(dir_names(work.path()).is_empty(), "nothing may be written");
}

#[test]
fn idle_timeout_during_data_keeps_the_part_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, mut client) = hostile_setup(work.path(), &["--idle-timeout", "1"]);
    let data = util::pseudo_random(MIB, 11);
    offer(&mut client, vec![file_entry(NAME.as_bytes(), Some(data.len() as u64))]);
    protocol::write_message(&mut client, &Message::FileStart { index: 0, offset: 0 })
        .expect("sending FILE_START");
    client.write_all(&data[..1000]).expect("sending the first bytes");
    // Then nothing: the receiver must give up on its own, with the connection still open.
    let received = recv.wait_for(Duration::from_secs(20));
    assert_exit(&received, 3, "receiver");
    assert_says(&received, "--idle-timeout", "receiver");
    let part = part_of(work.path(), NAME);
    assert_file_holds(&part, &data[..1000], "the part file left by the idle timeout");
    assert!(final_names(work.path()).is_empty(), "nothing under the final name");
    // The sender end hears why (when it still listens).
    match protocol::read_message(&mut client) {
        Ok(Message::Error { message, .. }) => assert!(message.contains("idle"), "{message:?}"),
        other => panic!("expected an ERROR frame naming the idle timeout, got {other:?}"),
    }
}

/// A sender that stops reading while the receiver writes its plan (here a long one: every
/// entry refused for want of space, each with its reason) leaves the receiver at
/// `--idle-timeout`, told as the idle timeout it is: exit 3, named, nothing written.
#[test]
fn a_sender_that_does_not_read_the_plan_is_an_idle_timeout() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, mut client) = hostile_setup(work.path(), &["--idle-timeout", "1"]);
    let entries: Vec<_> =
        (0..300_000).map(|i| file_entry(format!("f{i:06}").as_bytes(), Some(1 << 50))).collect();
    let offer = Message::Offer(protocol::Offer { entries });
    protocol::write_message(&mut client, &offer).expect("sending the offer");
    // Then nothing is read: the plan, tens of MiB, fills both socket buffers.
    let received = recv.wait_for(Duration::from_secs(60));
    drop(client);
    assert_exit(&received, 3, "receiver");
    assert_says(&received, "sending the plan: the sender took no data for 1 s", "receiver");
    assert!(dir_names(work.path()).is_empty(), "nothing may be written");
}

/// A 16 MiB source and an empty destination below `work`.
fn big_source(work: &Path, seed: u64) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let (src_dir, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 16 * MIB, seed);
    (src, dst, data)
}

/// Runs one session through a proxy applying `fault`; returns both ends and the proxy's log.
fn through_proxy(
    src: &Path,
    dst: &Path,
    fault: Fault,
) -> (util::Finished, util::Finished, util::ProxyLog) {
    let recv = Receiver::start(dst, &[]);
    let addr = recv.addr();
    let proxy = Proxy::start(addr, fault);
    let sent = send(src, &proxy.dest(), &[]);
    let received = recv.wait();
    (sent, received, proxy.finish())
}

#[test]
fn cut_connection_fails_both_ends_then_resumes() {
    const SEED: u64 = 0x5eed_0001;
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = big_source(work.path(), 21);
    let cut = Rng::new(SEED).range(2 * MIB as u64, 14 * MIB as u64);
    eprintln!("cutting after {cut} bytes from the sender (seed {SEED:#x})");

    let (sent, received, log) = through_proxy(&src, &dst, Fault::CutAt(cut));
    assert!(log.cut, "the proxy never reached offset {cut}");
    // Exit 3 on both ends: the connection broke (not 1, "unexpected failure").
    assert_exit(&sent, 3, "sender over a cut connection");
    assert_exit(&received, 3, "receiver over a cut connection");
    assert_says(&received, "connection lost", "receiver");
    assert_says(&sent, "if it still runs, waits for this sender: run the same command", "sender");
    assert!(final_names(&dst).is_empty(), "a cut file appeared under its final name");
    let kept = std::fs::metadata(part_of(&dst, NAME)).map_or(0, |m| m.len());
    assert!(kept > 0, "no partial data kept after {cut} bytes");

    let recv = Receiver::start(&dst, &[]);
    let addr = recv.addr();
    let resumed = run(send_cmd(&[&src], &addr.to_string(), &["--json"], &[]));
    let received = recv.wait();
    assert_exit(&resumed, 0, "resuming sender");
    assert_exit(&received, 0, "resuming receiver");
    assert_eq!(json_u64(&resumed.json(), "/resumed_bytes"), kept, "resumed from the part file");
    assert_file_holds(&dst.join(NAME), &data, "the resumed file");
    assert_eq!(dir_names(&dst), [NAME], "the part file is gone");
}

#[test]
pub(crate) fn flipped_byte_is_a_checksum_mismatch_on_both_ends() {
    flipped_byte_is_caught(2 * MIB, MIB as u64);
}

/// The receiver hashes what it wrote window by window (4 MiB): a byte flipped in a later
/// window, and in the last partial one, is caught all the same.
#[test]
fn flipped_byte_windows_after_the_first_is_caught() {
    flipped_byte_is_caught(13 * MIB + 4321, 9 * MIB as u64 + 77);
    flipped_byte_is_caught(13 * MIB + 4321, 13 * MIB as u64);
}

fn flipped_byte_is_caught(size: usize, at: u64) {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    write_random_file(&src, size, 31);
    // Far past the greeting, proofs, offer and FILE_START: inside the file's bytes.
    let (sent, received, log) = through_proxy(&src, &dst, Fault::FlipAt(at));
    assert!(log.flipped, "the proxy never flipped a byte");
    assert_exit(&sent, 6, "sender");
    assert_exit(&received, 6, "receiver");
    assert_says(&sent, "checksum mismatch", "sender");
    assert_says(&received, "checksum mismatch", "receiver");
    assert!(dir_names(&dst).is_empty(), "damaged data was kept: {:?}", dir_names(&dst));
}

#[test]
pub(crate) fn sigterm_stops_a_keep_open_receiver_with_143_and_a_summary() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 100_000, 41);
    let mut recv = Receiver::start(&dst, &["--keep-open"]);
    let addr = recv.addr();
    let sent = send(&src, &addr.to_string(), &[]);
    assert_exit(&sent, 0, "sender");
    // The same file again is refused (it exists): a session that failed, and is counted so.
    let refused = send(&src, &addr.to_string(), &[]);
    assert_exit(&refused, 5, "second sender");
    assert!(recv.process().running(), "a --keep-open receiver stopped after two sessions");
    recv.process().signal(Signal::SIGTERM);
    let received = recv.wait_for(Duration::from_secs(15));
    assert_exit(&received, 143, "receiver");
    assert_says(&received, "served 2 sessions, 1 failed, stopped by SIGTERM", "receiver");
    assert_file_holds(&dst.join(NAME), &data, "the file received before SIGTERM");
}

/// Starts a rate-limited sender of 8 MiB to a fresh receiver and waits until data arrives.
fn slow_session(work: &Path) -> (Receiver, Process, std::path::PathBuf) {
    let (src_dir, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let src = src_dir.join(NAME);
    write_random_file(&src, 8 * MIB, 51);
    let recv = Receiver::start(&dst, &[]);
    let addr = recv.addr();
    let sender = Process::spawn(send_cmd(&[&src], &addr.to_string(), &["--limit-rate", "4M"], &[]));
    wait_for_bytes(&part_of(&dst, NAME), 256 << 10);
    (recv, sender, dst)
}

#[test]
fn sigint_mid_transfer_exits_130_and_tells_the_sender() {
    let work = tempfile::tempdir().expect("tempdir");
    let (mut recv, sender, dst) = slow_session(work.path());
    recv.process().signal(Signal::SIGINT);
    let received = recv.wait_for(Duration::from_secs(15));
    let sent = sender.wait_for(Duration::from_secs(15));
    assert_exit(&received, 130, "receiver");
    // The session cut short still reports before the receiver exits, and is counted.
    assert_says(&received, "served 1 session, 1 failed, stopped by SIGINT", "receiver");
    // The signal is the cause of the cut, not a lost connection.
    assert_says(&received, "stopped by SIGINT", "receiver");
    assert_says(&received, "while writing payload.bin (partial data kept in", "receiver");
    assert_no_panic(&sent, "sender");
    assert_ne!(sent.code(), Some(0), "sender:\n{}", sent.stderr);
    assert_says(&sent, "receiver shut down", "sender");
    // The sender learns how to resume: the receiver's end is where something must run.
    let how = "start it again with the same token, --output and --skip-existing, then run this \
               same command to resume";
    assert_says(&sent, how, "sender");
    let kept = std::fs::metadata(part_of(&dst, NAME)).map_or(0, |m| m.len());
    assert!(kept > 0, "the part file is kept for a resume");
    assert!(final_names(&dst).is_empty(), "an interrupted file appeared under its final name");
}
