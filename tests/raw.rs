//! Raw mode against real netcat (OpenBSD `nc`): plain bytes both ways, byte-identical, with the
//! data path named in the report and the missing checksum and authentication said out loud.
//! Skipped, with the reason printed, where no OpenBSD netcat is installed.

use std::fs::File;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::util::{
    Process, STARTUP, assert_exit, assert_file_holds, assert_says, json_str, run, send_cmd, skip,
    write_random_file, zcp_command,
};

const MIB: usize = 1 << 20;

/// Why OpenBSD netcat (the one with `-N`) cannot be used here, if it cannot.
fn no_openbsd_nc() -> Option<String> {
    match Command::new("nc").arg("-h").output() {
        Ok(out) => {
            let help = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (!help.contains("OpenBSD")).then(|| format!("`nc` is not OpenBSD netcat: {help}"))
        }
        Err(e) => Some(format!("no `nc` to test raw mode against ({e})")),
    }
}

#[test]
fn raw_send_into_netcat_is_identical_and_says_unchecked() {
    if let Some(why) = no_openbsd_nc() {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("raw.bin");
    let data = write_random_file(&src, 4 * MIB, 1);
    let mut listen = Command::new("nc");
    listen.args(["-lv", "127.0.0.1", "0"]);
    let mut nc = Process::spawn(listen);
    // `Listening on HOST PORT`, with the port the kernel chose for port 0.
    let line = nc.wait_line("Listening on");
    let port = line.rsplit(' ').next().expect("a port after `Listening on HOST`");
    let dest = format!("127.0.0.1:{port}");
    let sent = run(send_cmd(&[&src], &dest, &["--raw", "--json"], &[]));
    let got = nc.wait();
    assert_exit(&sent, 0, "zcp send --raw");
    assert_eq!(got.code(), Some(0), "nc -l:\n{}", got.stderr);
    assert!(got.stdout_bytes == data, "nc received {} bytes, not the file", got.stdout_bytes.len());
    let report = sent.json();
    assert_eq!(json_str(&report, "/mode"), "raw");
    assert_eq!(json_str(&report, "/send/path"), "sendfile", "report:\n{report:#}");
    assert!(report["checksum"].is_null(), "raw mode has no checksum: {report:#}");
    assert_eq!(report["authenticated"], false, "raw mode has no authentication");
    assert_says(&sent, "no checksum, no authentication", "zcp send --raw");
}

#[test]
fn netcat_into_raw_recv_is_identical_and_spliced() {
    if let Some(why) = no_openbsd_nc() {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("from-nc.bin");
    let data = write_random_file(&src, 4 * MIB, 2);
    let out = work.path().join("out.bin");
    let args = ["recv", "--raw", "--listen", "127.0.0.1:0", "--json", "--output"];
    let mut cmd = zcp_command(&args, &[]);
    cmd.arg(&out);
    let mut recv = Process::spawn(cmd);
    let addr = recv.listening();

    let mut nc = Command::new("nc");
    nc.args(["-N", "127.0.0.1", &addr.port().to_string()]);
    let source = File::open(&src).expect("opening the source for nc");
    let sent = Process::spawn_with_stdin(&mut nc, source).wait();
    let received = recv.wait();
    assert_eq!(sent.code(), Some(0), "nc -N:\n{}", sent.stderr);
    assert_exit(&received, 0, "zcp recv --raw");
    assert_file_holds(&out, &data, "what nc sent");
    let report = received.json();
    assert_eq!(json_str(&report, "/recv/path"), "splice", "report:\n{report:#}");
    assert!(report["checksum"].is_null(), "raw mode has no checksum: {report:#}");
    assert_says(&received, "no checksum, no authentication", "zcp recv --raw");
}

/// `--output DIR/` says a directory, and raw mode has no name to put in it: refused before
/// listening (exit 2), nothing made, rather than a file named `DIR`.
#[test]
fn raw_recv_into_a_path_ending_in_a_slash_is_refused_and_makes_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = format!("{}/rr/", work.path().display());
    let args = ["recv", "--raw", "--listen", "127.0.0.1:0", "--output", &out];
    let done = Process::start(&args, &[]).wait();
    assert_exit(&done, 2, "zcp recv --raw --output DIR/");
    assert_says(&done, "names a directory", "zcp recv --raw --output DIR/");
    assert_eq!(done.stderr.trim().lines().count(), 1, "one line: {}", done.stderr);
    assert!(!work.path().join("rr").exists(), "rr was made");
}

/// A raw receiver takes the bytes of whoever connects first: it says so at start, after the
/// `listening on` line, as `--no-auth` does.
#[test]
fn a_raw_receiver_warns_at_start_that_anyone_may_write() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("out.bin");
    let args = ["recv", "--raw", "--listen", "127.0.0.1:0", "--output"];
    let mut cmd = zcp_command(&args, &[]);
    cmd.arg(&out);
    let mut recv = Process::spawn(cmd);
    recv.listening();
    let line = recv.wait_line_within("anyone who can connect may write here", STARTUP);
    assert!(line.starts_with("zcp: warning: "), "{line}");
    recv.kill();
}

/// A raw receiver whose sender goes quiet gives up at `--idle-timeout` and names it, as a
/// protocol session does, instead of the socket's bare "resource temporarily unavailable";
/// nothing lands under the final name.
#[test]
fn a_raw_sender_gone_quiet_is_named_an_idle_timeout() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("out.bin");
    let args = ["recv", "--raw", "--listen", "127.0.0.1:0", "--idle-timeout", "1", "--output"];
    let mut cmd = zcp_command(&args, &[]);
    cmd.arg(&out);
    let mut recv = Process::spawn(cmd);
    let mut quiet = TcpStream::connect(recv.listening()).expect("connecting");
    quiet.write_all(b"first bytes, then nothing").expect("sending the first bytes");
    let received = recv.wait_for(Duration::from_secs(20));
    drop(quiet);
    assert_exit(&received, 3, "raw receiver");
    assert_says(&received, "no data for 1 s (--idle-timeout)", "raw receiver");
    assert!(!received.stderr.contains("os error"), "raw receiver:\n{}", received.stderr);
    assert!(!out.exists(), "a stalled stream landed under the final name");
}
