//! Mistakes on the command line: each address mistake exits 2 before anything is read or
//! sent, with a message that names the argument at fault.

use crate::util::{Finished, assert_exit, assert_says, run, zcp_command};

/// `zcp send a.txt ARGS…` from a directory holding `a.txt`.
fn send_from_a_dir(args: &[&str]) -> Finished {
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("a.txt"), b"hello\n").expect("a source");
    let mut cmd = zcp_command(args, &[]);
    cmd.current_dir(work.path());
    run(cmd)
}

#[track_caller]
fn assert_usage(f: &Finished, names: &[&str], who: &str) {
    assert_exit(f, 2, who);
    for needle in names {
        assert_says(f, needle, who);
    }
}

#[test]
fn address_without_a_port_exits_2() {
    let f = send_from_a_dir(&["send", "a.txt", "127.0.0.1"]);
    assert_usage(&f, &["receiver's address", "\"127.0.0.1\"", "no port"], "send to 127.0.0.1");
}

#[test]
fn listen_with_a_bare_port_exits_2() {
    let f = send_from_a_dir(&["send", "--listen", "7878", "a.txt"]);
    assert_usage(&f, &["--listen", "\"7878\""], "send --listen 7878");
    let f = run(zcp_command(&["recv", "--listen", "7878"], &[]));
    assert_usage(&f, &["--listen", "\"7878\""], "recv --listen 7878");
}

#[test]
fn port_out_of_range_exits_2() {
    let f = send_from_a_dir(&["send", "a.txt", "127.0.0.1:80000"]);
    assert_usage(&f, &["port 80000 is out of range"], "send to port 80000");
    let f = run(zcp_command(&["recv", "--connect", "127.0.0.1:80000"], &[]));
    assert_usage(&f, &["--connect", "port 80000"], "recv --connect port 80000");
}

#[test]
fn unknown_host_exits_2_naming_it() {
    // `.invalid` never resolves (RFC 2606); with no resolver at all it fails the same way.
    let f = send_from_a_dir(&["send", "a.txt", "no-such-host.invalid:7878"]);
    assert_usage(&f, &["cannot resolve host no-such-host.invalid"], "send to an unknown host");
}

#[test]
fn swapped_arguments_point_at_the_order() {
    let f = send_from_a_dir(&["send", "127.0.0.1:7878", "a.txt"]);
    assert_usage(&f, &["127.0.0.1:7878 looks like the receiver's address", "goes last"], "swapped");
    assert!(!f.stderr.contains("No such file"), "swapped arguments:\n{}", f.stderr);
}

/// Each mode refuses the options it cannot honour: exit 2, the first line naming both flags,
/// before anything listens or connects.
#[test]
fn a_mode_refuses_the_options_it_cannot_honour() {
    for (args, named) in [
        (&["send", "--http", "a.txt", "--events"][..], ["'--http'", "'--events'"]),
        (&["send", "--http", "a.txt", "--encrypt"], ["'--http'", "'--encrypt'"]),
        (&["send", "--http", "a.txt", "--no-sparse"], ["'--http'", "'--no-sparse'"]),
        (&["recv", "--http", "--events-fd", "3"], ["'--http'", "'--events-fd <FD>'"]),
        (&["recv", "--http", "--encrypt"], ["'--http'", "'--encrypt'"]),
        (&["send", "--raw", "a.txt", "127.0.0.1:1", "--events"], ["'--raw'", "'--events'"]),
        (&["recv", "--raw", "--keep-open"], ["'--raw'", "'--keep-open'"]),
        (&["recv", "--raw", "--fsync", "-o", "f"], ["'--fsync'", "'--raw'"]),
    ] {
        let f = send_from_a_dir(args);
        let first = f.stderr.lines().next().unwrap_or_default();
        assert_exit(&f, 2, &format!("{args:?}"));
        assert!(named.iter().all(|flag| first.contains(flag)), "{args:?}:\n{}", f.stderr);
    }
}

/// `--http` serves files of known length: standard input is refused for what it is, not
/// with advice (`--name`) that `--http` refuses in turn.
#[test]
fn http_refuses_standard_input_for_what_it_is() {
    let f = send_from_a_dir(&["send", "--http", "--listen", "127.0.0.1:0", "-"]);
    assert_usage(&f, &["--http serves files of known length, not standard input (-)"], "stdin");
    assert!(!f.stderr.contains("--name"), "advice --http refuses:\n{}", f.stderr);
}
