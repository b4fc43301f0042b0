//! Connections that never authenticate: a port scan, idle connections and
//! wrong tokens must not end a one-shot `zcp recv` or `zcp send --listen`, hold off the real
//! peer queued behind them, or fill `--keep-open`'s `--max-conns`; nor can a crowd of idle
//! and trickling connections, re-opened as they are shut, lock the real peer out. (Wrong
//! tokens against `zcp recv`, garbage and silence are in `auth.rs`, `errors.rs` and
//! `faults.rs`.)

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::util::protocol::Hello;
use crate::util::{
    Receiver, SESSION, assert_exit, assert_file_holds, assert_says, connect, hello_bytes, nonce,
    run, send, send_listening, subdir, write_random_file, zcp_command,
};

const NAME: &str = "wanted.bin";
/// Idle connections held open: as many as `--max-conns` allows by default.
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

/// Idle connections a crowd opens before the real peer comes: as many as the lobby runs
/// handshakes at once.
const CROWD: usize = 64;

/// An attacker without the token: `CROWD` idle connections, then one more every 50 ms (20 a
/// second, five times what the lobby used to admit), holding every one open (the newest 512,
/// to stay within a small fd limit) and trickling a real greeting into each, a byte a second.
/// It stops when dropped, or by itself after a minute.
struct Crowd {
    stop: Arc<AtomicBool>,
    reopener: Option<thread::JoinHandle<usize>>,
}

impl Crowd {
    fn gather(addr: SocketAddr) -> Crowd {
        // Each connection with how much of the greeting it has trickled so far.
        let mut held: Vec<(TcpStream, usize)> =
            idle_connections(addr, CROWD).into_iter().map(|s| (s, 0)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let reopener = thread::spawn(move || {
            let (started, mut opened) = (Instant::now(), 0);
            let greeting = hello_bytes(Hello::with_auth(nonce()));
            while !stopped.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                if let Ok(socket) = TcpStream::connect(addr) {
                    held.push((socket, 0));
                    opened += 1;
                }
                if held.len() > 512 {
                    held.remove(0);
                }
                if opened % 20 == 0 {
                    for (socket, sent) in &mut held {
                        if let Some(&byte) = greeting.get(*sent) {
                            *sent += usize::from(socket.write_all(&[byte]).is_ok());
                        }
                    }
                }
                // The attack's pace is the scenario under test, not synchronisation.
                thread::sleep(Duration::from_millis(50));
            }
            opened
        });
        Crowd { stop, reopener: Some(reopener) }
    }

    /// Stops re-opening and says how many connections were re-opened.
    fn disperse(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.reopener.take().map_or(0, |r| r.join().expect("the re-opening attacker"))
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_crowd_of_idle_and_reopened_connections_does_not_lock_a_sender_out() {
    let work = tempfile::tempdir().expect("tempdir");
    for (seed, extra) in [(6, &[][..]), (7, &["--keep-open"][..])] {
        let (src, dst, data) = setup(&subdir(work.path(), &seed.to_string()), seed);
        let mut receiver = Receiver::start(&dst, extra);
        let crowd = Crowd::gather(receiver.addr());
        // Let the re-opener run a while first: the sender comes into a lobby under attack.
        thread::sleep(Duration::from_secs(1));
        let sent = send(&src, &receiver.dest(), &[]);
        let reopened = crowd.disperse();
        assert_exit(&sent, 0, &format!("sender to recv {extra:?} behind a crowd"));
        assert!(reopened >= 10, "the attacker re-opened only {reopened} connections");
        assert_file_holds(&dst.join(NAME), &data, "the file sent behind a crowd");
        if extra.is_empty() {
            assert_exit(&receiver.wait(), 0, "one-shot receiver");
        } else {
            receiver.process().signal(Signal::SIGTERM);
            let received = receiver.wait_for(Duration::from_secs(15));
            assert_says(&received, "served 1 session, 0 failed", "receiver");
        }
    }
}

#[test]
fn a_crowd_of_idle_and_reopened_connections_does_not_lock_out_a_listening_sender() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 8);
    let (sender, addr) = send_listening(&src, &[]);
    let crowd = Crowd::gather(addr);
    thread::sleep(Duration::from_secs(1));
    let received = recv_from(addr, &dst, &[]);
    let reopened = crowd.disperse();
    assert_exit(&received, 0, "receiver behind a crowd");
    assert!(reopened >= 10, "the attacker re-opened only {reopened} connections");
    assert_exit(&sender.wait(), 0, "listening sender");
    assert_file_holds(&dst.join(NAME), &data, "the file received behind a crowd");
}
