//! Standard input and standard output as ends of a session: a pipe on stdin is spliced (after
//! sendfile refuses it), a file redirected to stdin goes by sendfile, and `zcp recv --output -`
//! writes the bytes to its stdout by splice with the report on stderr.

use std::fs::File;
use std::io::Write;
use std::process::Stdio;
use std::thread;

use crate::util;
use crate::util::{
    Process, Receiver, SESSION, assert_file_holds, dir_names, json_str, parse_json, pseudo_random,
    run, send_cmd, subdir, write_random_file, zcp_command,
};
use serde_json::Value;

const NAME: &str = "from-stdin.bin";

/// `zcp send - DEST --name NAME --json EXTRA…` with stdin from `stdin`, killed after SESSION.
fn send_stdin(dest: &str, stdin: Stdio, extra: &[&str]) -> Process {
    let mut args = vec!["send", "-", dest, "--name", NAME, "--json"];
    args.extend_from_slice(extra);
    Process::spawn_with_stdin(&mut zcp_command(&args, &[]), stdin)
}

/// Starts `send_stdin` with a pipe on stdin and feeds it `data` from a thread, as `cat file |`
/// would.
fn send_from_pipe(dest: &str, data: Vec<u8>, extra: &[&str]) -> util::Finished {
    let mut sender = send_stdin(dest, Stdio::piped(), extra);
    let mut stdin = sender.stdin().expect("the sender's stdin is piped");
    let feeder = thread::spawn(move || stdin.write_all(&data));
    let finished = sender.wait_for(SESSION);
    feeder.join().expect("the feeder thread").expect("the sender read all of stdin");
    finished
}

fn fallback_froms(report: &Value) -> Vec<&str> {
    let fallbacks = report["send"]["fallbacks"].as_array().expect("send.fallbacks is an array");
    fallbacks.iter().map(|f| f["from"].as_str().expect("fallback.from")).collect()
}

#[test]
fn a_pipe_on_stdin_is_spliced_after_sendfile_refuses() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = pseudo_random((3 << 20) + 11, 31);
    let receiver = Receiver::start(work.path(), &["--json"]);
    let sent = send_from_pipe(&receiver.dest(), data.clone(), &[]);
    let received = receiver.wait();
    assert_eq!(sent.code(), Some(0), "sender:\n{}", sent.stderr);
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert_file_holds(&work.path().join(NAME), &data, "stdin through a pipe");

    let report = sent.json();
    assert_eq!(json_str(&report, "/send/path"), "splice", "{report:#}");
    assert_eq!(fallback_froms(&report), ["sendfile"], "{report:#}");
    assert_eq!(report["send"]["fallbacks"][0]["errno_name"], "EINVAL", "{report:#}");
    assert_eq!(json_str(&report, "/files/0/name"), NAME, "{report:#}");
    assert_eq!(report["files"][0]["bytes"], data.len(), "{report:#}");
    assert_eq!(report["checksum"]["ok"], true, "{report:#}");
    let theirs = received.json();
    assert_eq!(json_str(&theirs, "/files/0/path"), "splice", "{theirs:#}");
}

#[test]
fn a_file_redirected_to_stdin_goes_by_sendfile() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join("source.bin");
    let data = write_random_file(&src, (2 << 20) + 5, 32);
    let receiver = Receiver::start(&dst, &[]);
    let stdin = File::open(&src).expect("opening the source");
    let sent = send_stdin(&receiver.dest(), Stdio::from(stdin), &[]).wait();
    let received = receiver.wait();
    assert_eq!(sent.code(), Some(0), "sender:\n{}", sent.stderr);
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert_file_holds(&dst.join(NAME), &data, "stdin from a file");
    assert_eq!(dir_names(&dst), [NAME]);

    let report = sent.json();
    assert_eq!(json_str(&report, "/send/path"), "sendfile", "{report:#}");
    assert_eq!(report["send"]["fallbacks"], Value::Array(vec![]), "{report:#}");
    assert_eq!(report["files"][0]["bytes"], data.len(), "{report:#}");
}

#[test]
fn recv_output_dash_writes_the_file_to_stdout() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("payload.bin");
    let data = write_random_file(&src, (5 << 20) + 3, 33);
    let receiver = Receiver::start(std::path::Path::new("-"), &[]);
    let sent = util::send(&src, &receiver.dest(), &["--json"]);
    let (code, stdout, stderr) = (sent.code(), &sent.stdout, &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert!(received.stdout_bytes == data, "stdout differs from the file sent");
    assert_eq!(dir_names(work.path()), ["payload.bin"], "nothing was written beside it");
    // The report goes to stderr, never into the data.
    assert!(received.stderr.contains("recv: splice"), "receiver:\n{}", received.stderr);
    let report = parse_json(stdout, stderr);
    assert_eq!(json_str(&report, "/recv/path"), "splice", "{report:#}");
    assert_eq!(report["checksum"]["ok"], true, "{report:#}");
}

#[test]
fn a_pipe_can_cross_from_stdin_to_stdout() {
    let data = pseudo_random((1 << 20) + 99, 34);
    let receiver = Receiver::start(std::path::Path::new("-"), &[]);
    let sent = send_from_pipe(&receiver.dest(), data.clone(), &[]);
    let received = receiver.wait();
    assert_eq!(sent.code(), Some(0), "sender:\n{}", sent.stderr);
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert!(received.stdout_bytes == data, "stdout differs from what went into stdin");
    let report = sent.json();
    assert_eq!(json_str(&report, "/send/path"), "splice", "{report:#}");
    assert_eq!(json_str(&report, "/recv/path"), "splice", "{report:#}");
}

#[test]
fn recv_output_dash_takes_one_file_only() {
    let work = tempfile::tempdir().expect("tempdir");
    let (a, b) = (work.path().join("a.bin"), work.path().join("b.bin"));
    let data = write_random_file(&a, 1000, 35);
    write_random_file(&b, 1000, 36);
    let receiver = Receiver::start(std::path::Path::new("-"), &[]);
    let sent = util::send_paths(&[&a, &b], &receiver.dest(), &["--json"]);
    let (code, stdout, stderr) = (sent.code(), &sent.stdout, &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(5), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(5), "receiver:\n{}", received.stderr);
    assert!(received.stdout_bytes == data, "stdout holds the first file, and only it");
    let report = parse_json(stdout, stderr);
    assert_eq!(report["files"][1]["status"], "refused", "{report:#}");
}

#[test]
fn stdin_needs_a_safe_name() {
    for extra in [&["--name", "../escape"][..], &["--name", "/abs"], &[]] {
        let sent = run(send_cmd(&[std::path::Path::new("-")], "127.0.0.1:9", extra, &[]));
        let (code, stderr) = (sent.code(), &sent.stderr);
        assert_eq!(code, Some(2), "{extra:?}: sender:\n{stderr}");
        assert!(stderr.contains("--name"), "{extra:?}: the error names --name:\n{stderr}");
    }
}
