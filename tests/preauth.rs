//! Connections that never authenticate: a port scan, idle connections and
//! wrong tokens must not end a one-shot `zcp recv` or `zcp send --listen`, hold off the real
//! peer queued behind them, or fill `--keep-open`'s `--max-conns`. (Wrong tokens against
//! `zcp recv`, garbage and silence are in `auth.rs`, `errors.rs` and `faults.rs`.)

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::util::{
    Receiver, SESSION, assert_exit, assert_file_holds, assert_says, connect, run, send,
    send_listening, subdir, write_random_file, zcp_command,
};

const NAME: &str = "wanted.bin";
/// Idle connections held open: as many as `--max-conns` allows by default, and twice the
/// handshakes that may run at once.
const IDLE: usize = 16;

/// A source file in `work/src` and an empty `work/dst`.
fn setup(work: &Path, seed: u64) -> (PathBuf, PathBuf, Vec<u8>) {
    let (src_dir, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 200_000, seed);
    (src, dst, data)
}

/// `count` connections to `addr` that say nothing.
fn idle_connections(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    (0..count).map(|_| connect(addr)).collect()
}

/// `zcp recv --connect ADDR --output DST EXTRA…`, run to the end.
fn recv_from(addr: SocketAddr, dst: &Path, extra: &[&str]) -> crate::util::Finished {
    let mut cmd = zcp_command(&["recv", "--connect", &addr.to_string()], &[]);
    cmd.arg("--output").arg(dst).args(extra);
    run(cmd)
}

#[test]
fn a_port_scan_does_not_end_a_one_shot_receiver() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 1);
    let mut receiver = Receiver::start(&dst, &[]);
    drop(TcpStream::connect(receiver.addr()).expect("connect, then close"));
    let line = receiver.process().wait_line_within("ignored a connection", SESSION);
    assert!(line.contains("connection closed"), "{line}");
    let sent = send(&src, &receiver.dest(), &[]);
    assert_exit(&sent, 0, "sender after a port scan");
    assert_exit(&receiver.wait(), 0, "receiver");
    assert_file_holds(&dst.join(NAME), &data, "the file sent after a port scan");
}

#[test]
fn an_idle_connection_does_not_hold_off_the_sender_behind_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 2);
    let receiver = Receiver::start(&dst, &[]);
    let idle = idle_connections(receiver.addr(), 1);
    let sent = send(&src, &receiver.dest(), &[]);
    assert_exit(&sent, 0, "sender behind an idle connection");
    assert_exit(&receiver.wait(), 0, "receiver");
    assert_file_holds(&dst.join(NAME), &data, "the file sent behind an idle connection");
    drop(idle);
}

#[test]
fn idle_connections_do_not_make_a_keep_open_receiver_busy() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 3);
    let mut receiver = Receiver::start(&dst, &["--keep-open"]);
    let idle = idle_connections(receiver.addr(), IDLE);
    let sent = send(&src, &receiver.dest(), &[]);
    assert_exit(&sent, 0, "sender behind idle connections");
    assert!(!sent.stderr.contains("busy"), "sender:\n{}", sent.stderr);
    assert_file_holds(&dst.join(NAME), &data, "the file sent behind idle connections");
    receiver.process().signal(Signal::SIGTERM);
    let received = receiver.wait_for(Duration::from_secs(15));
    assert_exit(&received, 143, "receiver");
    assert_says(&received, "served 1 session, 0 failed", "receiver");
    drop(idle);
}

#[test]
fn a_listening_sender_ignores_a_port_scan_and_a_wrong_token() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 4);
    let (mut sender, addr) = send_listening(&src, &[]);
    drop(TcpStream::connect(addr).expect("connect, then close"));
    sender.wait_line_within("ignored a connection", SESSION);
    let wrong = recv_from(addr, &dst, &["--token", "not-the-token"]);
    assert_exit(&wrong, 8, "receiver with a wrong token");
    assert_says(&wrong, "wrong token", "receiver with a wrong token");
    let line = sender.wait_line_within("ignored a connection", SESSION);
    assert!(line.contains("token is wrong"), "{line}");
    assert!(sender.running(), "a wrong token ended the listening sender");
    let received = recv_from(addr, &dst, &[]);
    assert_exit(&received, 0, "receiver with the token");
    assert_exit(&sender.wait(), 0, "listening sender");
    assert_file_holds(&dst.join(NAME), &data, "the file sent after a scan and a wrong token");
}

#[test]
fn idle_connections_do_not_hold_off_the_receiver_of_a_listening_sender() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 5);
    let (sender, addr) = send_listening(&src, &[]);
    let idle = idle_connections(addr, IDLE);
    let received = recv_from(addr, &dst, &[]);
    assert_exit(&received, 0, "receiver behind idle connections");
    assert_exit(&sender.wait(), 0, "listening sender");
    assert_file_holds(&dst.join(NAME), &data, "the file sent behind idle connections");
    drop(idle);
}
