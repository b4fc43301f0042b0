//! Every documented exit code has a scenario that produces it from the real binary: the table
//! below names one test per code (a function, so a test that is renamed or removed fails the
//! build), and the scenarios no other topic holds live here. Code 1, "unexpected failure", is
//! left out: no correct scenario should reach it.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::util::{ExitCode, Process, Receiver, assert_exit, assert_says, run, zcp_command};
use crate::{auth, connect, encrypt, errors, faults};

/// For each documented code, the test whose scenario exits with it.
const COVERED: &[(i32, fn())] = &[
    (0, auth::token_from_the_environment_on_both_ends),
    (2, code_2_usage),
    (3, connect::connection_refused_exits_3_on_either_end),
    (4, errors::sender_turns_away_an_http_server),
    (5, errors::existing_target_is_refused_without_force),
    (6, faults::flipped_byte_is_a_checksum_mismatch_on_both_ends),
    (7, errors::missing_source_exits_7_naming_it),
    (8, auth::wrong_token_exits_8_and_the_receiver_serves_the_right_one),
    (9, encrypt::a_flipped_byte_in_a_record_fails_the_session_and_saves_nothing),
    (130, code_130_sigint),
    (143, faults::sigterm_stops_a_keep_open_receiver_with_143_and_a_summary),
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
            "exit code {code} ({meaning}) is documented but no scenario produces it"
        );
    }
    for (code, _) in COVERED {
        assert!(
            ExitCode::TABLE.iter().any(|(c, _)| c.code() == *code),
            "exit code {code} has a scenario but is not documented"
        );
    }
}

#[test]
fn code_2_usage() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("usage.bin");
    std::fs::write(&src, b"0123456789").expect("a source");
    let no_address = run(zcp_command(&["send".into(), src.into_os_string()], &[]));
    assert_exit(&no_address, 2, "sender without an address");
    assert_says(&no_address, "HOST:PORT", "sender without an address");
    let unknown = run(zcp_command(&["recv", "--no-such-flag"], &[]));
    assert_exit(&unknown, 2, "receiver with an unknown flag");
}

#[test]
fn code_130_sigint() {
    // A receiver waiting for its first sender.
    let work = tempfile::tempdir().expect("tempdir");
    let mut recv = Receiver::start(work.path(), &[]);
    recv.process().signal(Signal::SIGINT);
    assert_exit(&recv.wait_for(Duration::from_secs(15)), 130, "receiver");

    // A sender waiting for its receiver (`--listen`) stops the same way.
    let src = work.path().join("waiting.bin");
    std::fs::write(&src, b"0123456789").expect("a source");
    let args = [Path::new("send"), &src, Path::new("--listen"), Path::new("127.0.0.1:0")];
    let mut sender = Process::start(&args, &[]);
    sender.listening();
    sender.signal(Signal::SIGINT);
    let sent = sender.wait_for(Duration::from_secs(15));
    assert_exit(&sent, 130, "listening sender");
    assert_says(&sent, "stopped by SIGINT", "listening sender");
}

/// Raw mode refuses an existing `--output` file as a zcp session does (exit 5, the reason
/// named), before it listens: a typed refusal, not a bare text that exits 1.
#[test]
fn raw_receiver_refuses_an_existing_output_with_5() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("kept.bin");
    std::fs::write(&out, b"already here").expect("an existing file");
    let args = ["recv", "--raw", "--listen", "127.0.0.1:0", "--output", out.to_str().unwrap()];
    let refused = run(zcp_command(&args, &[]));
    assert_exit(&refused, 5, "raw receiver");
    assert_says(&refused, "kept.bin", "raw receiver");
    assert_says(&refused, "--force", "raw receiver");
    assert_eq!(std::fs::read(&out).expect("still there"), b"already here");
}
