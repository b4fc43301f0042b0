//! Every documented exit code, produced by the real binary in one small scenario each, and a
//! check that the scenarios cover the documented table (`zcp::error::ExitCode::TABLE`) but for
//! 1, "unexpected failure", which no correct scenario should reach.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::util;
use crate::util::{
    ClosedPort, ExitCode, Fault, Process, Proxy, Receiver, assert_exit, assert_file_holds,
    assert_says, dir_names, run, send, subdir, write_random_file, zcp_command,
};

const NAME: &str = "coded.bin";

/// The codes the scenarios below produce, each with its test's name.
const COVERED: &[(i32, &str)] = &[
    (0, "code_0_success"),
    (2, "code_2_usage"),
    (3, "code_3_connection_refused"),
    (4, "code_4_not_a_zcp_peer"),
    (5, "code_5_refused_existing_file"),
    (6, "code_6_checksum_mismatch"),
    (7, "code_7_missing_source"),
    (8, "code_8_wrong_token"),
    (130, "code_130_sigint"),
    (143, "code_143_sigterm"),
];

#[test]
fn every_documented_code_has_a_scenario() {
    for (code, meaning) in ExitCode::TABLE {
        let code = code.code();
        if code == ExitCode::Failure.code() {
            continue;
        }
        assert!(
            COVERED.iter().any(|(c, _)| *c == code),
            "exit code {code} ({meaning}) is documented but no scenario here produces it"
        );
    }
}

/// A source of `len` bytes in `work/src` and an empty `work/dst`.
fn setup(work: &Path, len: usize) -> (PathBuf, PathBuf, Vec<u8>) {
    let (src_dir, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, len, len as u64);
    (src, dst, data)
}

#[test]
fn code_0_success() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 50_000);
    let recv = Receiver::start(&dst, &[]);
    let addr = recv.addr();
    let sent = send(&src, &addr.to_string(), &[]);
    assert_exit(&sent, 0, "sender");
    assert_exit(&recv.wait(), 0, "receiver");
    assert_file_holds(&dst.join(NAME), &data, "the transfer");
}

#[test]
fn code_2_usage() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _, _) = setup(work.path(), 10);
    let no_address = run(zcp_command(&["send".into(), src.into_os_string()], &[]));
    assert_exit(&no_address, 2, "sender without an address");
    assert_says(&no_address, "HOST:PORT", "sender without an address");
    let unknown = run(zcp_command(&["recv", "--no-such-flag"], &[]));
    assert_exit(&unknown, 2, "receiver with an unknown flag");
}

#[test]
fn code_3_connection_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _, _) = setup(work.path(), 10);
    let sent = send(&src, &ClosedPort::new().dest(), &[]);
    assert_exit(&sent, 3, "sender");
    assert_says(&sent, "refused", "sender");
}

#[test]
fn code_4_not_a_zcp_peer() {
    let work = tempfile::tempdir().expect("tempdir");
    let recv = Receiver::start(work.path(), &[]);
    let addr = recv.addr();
    let mut socket = TcpStream::connect(addr).expect("connecting");
    socket.write_all(b"hello\n").expect("writing a line of text");
    let received = recv.wait();
    assert_exit(&received, 4, "receiver");
    assert_says(&received, "not a zcp peer", "receiver");
}

#[test]
fn code_5_refused_existing_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), 1000);
    std::fs::write(dst.join(NAME), b"keep me").expect("an existing target");
    let recv = Receiver::start(&dst, &[]);
    let addr = recv.addr();
    let sent = send(&src, &addr.to_string(), &[]);
    assert_exit(&sent, 5, "sender");
    assert_exit(&recv.wait(), 5, "receiver");
    assert_file_holds(&dst.join(NAME), b"keep me", "the existing target");
}

#[test]
fn code_6_checksum_mismatch() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), 1 << 20);
    let recv = Receiver::start(&dst, &[]);
    let addr = recv.addr();
    let proxy = Proxy::start(addr, Fault::FlipAt(512 << 10));
    let sent = send(&src, &proxy.dest(), &[]);
    let received = recv.wait();
    assert!(proxy.finish().flipped, "the proxy flipped no byte");
    assert_exit(&sent, 6, "sender");
    assert_exit(&received, 6, "receiver");
    assert!(dir_names(&dst).is_empty(), "damaged data was kept: {:?}", dir_names(&dst));
}

#[test]
fn code_7_missing_source() {
    let work = tempfile::tempdir().expect("tempdir");
    let missing = work.path().join("no-such-file");
    let sent = send(&missing, &ClosedPort::new().dest(), &[]);
    assert_exit(&sent, 7, "sender");
    assert_says(&sent, "no-such-file", "sender");
}

#[test]
fn code_8_wrong_token() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), 1000);
    let recv = Receiver::start(&dst, &[]);
    let addr = recv.addr();
    let sent = send(&src, &addr.to_string(), &["--token", "wrong"]);
    assert_exit(&sent, 8, "sender");
    assert_exit(&recv.wait(), 8, "receiver");
    assert!(dir_names(&dst).is_empty(), "nothing may be written");
}

/// A receiver waiting for its first sender, stopped by `signal`.
fn stopped_by(signal: Signal, extra: &[&str]) -> util::Finished {
    let work = tempfile::tempdir().expect("tempdir");
    let mut recv = Receiver::start(work.path(), extra);
    recv.process().signal(signal);
    recv.wait_for(Duration::from_secs(15))
}

#[test]
fn code_130_sigint() {
    let received = stopped_by(Signal::SIGINT, &[]);
    assert_exit(&received, 130, "receiver");

    // A sender waiting for its receiver (`--listen`) stops the same way.
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _, _) = setup(work.path(), 10);
    let args = ["send".into(), src.into_os_string(), "--listen".into(), "127.0.0.1:0".into()];
    let mut sender = Process::spawn(zcp_command(&args, &[]));
    sender.listening();
    sender.signal(Signal::SIGINT);
    let sent = sender.wait_for(Duration::from_secs(15));
    assert_exit(&sent, 130, "listening sender");
    assert_says(&sent, "stopped by SIGINT", "listening sender");
}

#[test]
fn code_143_sigterm() {
    let received = stopped_by(Signal::SIGTERM, &["--keep-open"]);
    assert_exit(&received, 143, "receiver");
    assert_says(&received, "served 0 sessions", "receiver");
}
