//! Round trips through the real binary on loopback: every sender method against every receiver
//! method, FIFOs and procfs files as sources, and the reports' account of the path taken.

use std::fs::{self, File, FileTimes};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::util;
use crate::util::{
    FifoWriter, Receiver, RecvMethod, SMALL_FILE, SendMethod, assert_file_holds, dir_names,
    json_str, parse_json, pseudo_random, send, subdir, write_random_file,
};
use serde_json::Value;

const SEND_METHODS: [&str; 4] = ["auto", "sendfile", "splice", "buffered"];
const RECV_METHODS: [&str; 3] = ["auto", "splice", "buffered"];
/// Empty, one byte, just under a page, just over a pipe's worth.
const SMALL_SIZES: [usize; 4] = [0, 1, 4095, (1 << 20) + 1];
/// Over one 64 MiB sendfile call, and not a multiple of any buffer.
const LARGE_SIZE: usize = (70 << 20) + 3;
const NAME: &str = "payload.bin";
const MODE: u32 = 0o640;

/// The path a report must name for what was asked: auto prefers sendfile to send a regular
/// file and splice to receive, except for files small enough to go in batches (buffered).
fn expected_path<'a>(method: &'a str, auto: &'a str, bytes: usize) -> &'a str {
    match method {
        "auto" if bytes as u64 <= SMALL_FILE => "buffered",
        "auto" => auto,
        _ => method,
    }
}

/// Sends `data` from a regular file with `--method send_method` to a receiver with
/// `--method recv_method`, and checks the bytes on disk, both exit codes and both reports.
fn round_trip(send_method: &str, recv_method: &str, data: &[u8], parent: &Path) {
    let pair = format!("send {send_method} -> recv {recv_method}, {} bytes", data.len());
    let work = tempfile::tempdir_in(parent).expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let mtime = write_source(&src, data);

    let receiver = Receiver::start(&dst, &["--method", recv_method, "--json"]);
    let sent = send(&src, &receiver.dest(), &["--method", send_method, "--json"]);
    let (code, stdout, stderr) = (sent.code(), sent.stdout, sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "{pair}: sender failed:\n{stderr}\nreceiver:\n{}", received.stderr);
    assert_eq!(received.code(), Some(0), "{pair}: receiver failed:\n{}", received.stderr);

    let saved = dst.join(NAME);
    assert_file_holds(&saved, data, &pair);
    assert_eq!(dir_names(&dst), [NAME], "{pair}: the destination holds more than the file");
    let meta = fs::metadata(&saved).expect("metadata of the received file");
    assert_eq!(meta.permissions().mode() & 0o777, MODE, "{pair}: mode not kept");
    assert_eq!(meta.modified().expect("mtime"), mtime, "{pair}: mtime not kept");

    let expected = Expected {
        pair: &pair,
        send_path: expected_path(send_method, "sendfile", data.len()),
        recv_path: expected_path(recv_method, "splice", data.len()),
        send_method,
        recv_method,
        bytes: data.len(),
    };
    // The human summary still goes to stderr next to the JSON, naming the one file.
    assert!(stderr.contains(&format!("sent {NAME} ")), "{pair}: sender's summary:\n{stderr}");
    let theirs = &received.stderr;
    assert!(theirs.contains(&format!("received {NAME} ")), "{pair}: receiver's summary:\n{theirs}");
    assert!(stderr.contains("xxh3 ok"), "{pair}: sender's summary:\n{stderr}");
    let (sender, receiver) = (parse_json(&stdout, &stderr), received.json());
    expected.check_report("sender", &sender);
    expected.check_report("receiver", &receiver);
    assert_eq!(sender["role"], "send", "{pair}: sender's role");
    assert_eq!(receiver["role"], "recv", "{pair}: receiver's role");
    assert_eq!(json_str(&sender, "/files/0/path"), expected.send_path, "{pair}: sender's file");
    assert_eq!(json_str(&receiver, "/files/0/path"), expected.recv_path, "{pair}: receiver's file");
    assert_eq!(
        json_str(&receiver, "/files/0/saved_as"),
        saved.display().to_string(),
        "{pair}: receiver's files[0].saved_as"
    );
}

/// Writes the source with a known mode and a sub-second mtime, and returns the mtime.
fn write_source(src: &Path, data: &[u8]) -> SystemTime {
    fs::write(src, data).expect("writing the source");
    let mtime = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    let file = File::options().write(true).open(src).expect("opening the source");
    file.set_times(FileTimes::new().set_modified(mtime)).expect("setting the source mtime");
    file.set_permissions(fs::Permissions::from_mode(MODE)).expect("setting the source mode");
    mtime
}

/// What both ends' reports of one round trip must say.
struct Expected<'a> {
    pair: &'a str,
    send_path: &'a str,
    recv_path: &'a str,
    send_method: &'a str,
    recv_method: &'a str,
    bytes: usize,
}

impl Expected<'_> {
    fn check_report(&self, end: &str, report: &Value) {
        let what = format!("{}: {end}'s report", self.pair);
        assert_eq!(json_str(report, "/send/path"), self.send_path, "{what}: send.path\n{report:#}");
        assert_eq!(json_str(report, "/recv/path"), self.recv_path, "{what}: recv.path\n{report:#}");
        assert_eq!(report["checksum"]["ok"], true, "{what}: checksum.ok\n{report:#}");
        assert_eq!(report["bytes"], self.bytes, "{what}: bytes\n{report:#}");
        assert_eq!(report["files"][0]["bytes"], self.bytes, "{what}: files[0].bytes");
        assert_eq!(report["files"][0]["name"], NAME, "{what}: files[0].name");
        assert_eq!(report["files"][0]["kind"], "file", "{what}: files[0].kind");
        assert_eq!(report["files"][0]["status"], "sent", "{what}: files[0].status");
        assert_eq!(report["files"][0]["resumed_from"], 0, "{what}: files[0].resumed_from");
        assert_eq!(report["files"][0]["checksum_ok"], true, "{what}: files[0].checksum_ok");
        let counts =
            [("files_sent", 1), ("dirs", 0), ("skipped", 0), ("refused", 0), ("resumed_bytes", 0)];
        for (key, count) in counts {
            assert_eq!(report[key], count, "{what}: {key}\n{report:#}");
        }
        let batched = self.bytes as u64 <= SMALL_FILE;
        let sides = [("send", self.send_method, "sendfile"), ("recv", self.recv_method, "splice")];
        for (side, method, zero_copy) in sides {
            assert_eq!(report[side]["bytes"], self.bytes, "{what}: {side}.bytes\n{report:#}");
            let fallbacks = &report[side]["fallbacks"];
            if method == "auto" && batched {
                // A small file goes in a batch, and the report says why zero-copy was not used.
                assert_eq!(fallbacks[0]["from"], zero_copy, "{what}: {side}\n{report:#}");
                assert_eq!(fallbacks[0]["errno"], Value::Null, "{what}: {side}\n{report:#}");
                let reason = json_str(report, &format!("/{side}/fallbacks/0/reason"));
                assert!(reason.contains("in batches"), "{what}: {side}: {reason}");
                assert_eq!(fallbacks.as_array().map(Vec::len), Some(1), "{what}: {side}");
            } else {
                assert_eq!(
                    fallbacks,
                    &Value::Array(vec![]),
                    "{what}: a regular file needs no fallback on {side}\n{report:#}"
                );
            }
        }
    }
}

/// Every receiver method and small size against one sender method.
fn small_matrix(send_method: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    for (i, &size) in SMALL_SIZES.iter().enumerate() {
        let data = pseudo_random(size, 1 + i as u64);
        for recv_method in RECV_METHODS {
            round_trip(send_method, recv_method, &data, work.path());
        }
    }
}

#[test]
fn small_files_round_trip_from_auto_sender() {
    small_matrix("auto");
}

#[test]
fn small_files_round_trip_from_sendfile_sender() {
    small_matrix("sendfile");
}

#[test]
fn small_files_round_trip_from_splice_sender() {
    small_matrix("splice");
}

#[test]
fn small_files_round_trip_from_buffered_sender() {
    small_matrix("buffered");
}

#[test]
fn every_method_pair_is_covered() {
    // The four tests above split the matrix by sender method; this one fails if a method is
    // added to the CLI without a row here.
    use clap::ValueEnum;
    fn names<T: ValueEnum>() -> Vec<String> {
        T::value_variants()
            .iter()
            .filter_map(ValueEnum::to_possible_value)
            .map(|p| p.get_name().to_string())
            .collect()
    }
    let (send, recv) = (names::<SendMethod>(), names::<RecvMethod>());
    assert_eq!(send, SEND_METHODS, "sender methods");
    assert_eq!(recv, RECV_METHODS, "receiver methods");
}

#[test]
fn large_file_round_trips_on_selected_pairs() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = pseudo_random(LARGE_SIZE, 70);
    for (send_method, recv_method) in
        [("auto", "auto"), ("sendfile", "splice"), ("buffered", "buffered"), ("splice", "buffered")]
    {
        round_trip(send_method, recv_method, &data, work.path());
    }
}

/// How both ends of one send from a FIFO ended.
struct FifoRun {
    sender_code: Option<i32>,
    sender_stdout: String,
    sender_stderr: String,
    receiver: util::Finished,
    dst: PathBuf,
    _work: tempfile::TempDir,
}

/// Sends `data` through a FIFO fed by a writer thread to a fresh receiver; returns how both
/// ends ended and how the writer did.
fn send_from_fifo(data: &[u8], send_args: &[&str]) -> (FifoRun, io::Result<()>) {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let fifo = work.path().join("stream");
    let writer = FifoWriter::create(&fifo, data.to_vec());
    let receiver = Receiver::start(&dst, &["--json"]);
    let mut args = vec!["--json"];
    args.extend_from_slice(send_args);
    let sent = send(&fifo, &receiver.dest(), &args);
    let (sender_code, sender_stdout, sender_stderr) = (sent.code(), sent.stdout, sent.stderr);
    // A sender that fails before connecting leaves the receiver waiting for nobody.
    let receiver = if sender_code == Some(0) { receiver.wait() } else { receiver.kill() };
    let written = writer.finish();
    let run = FifoRun { sender_code, sender_stdout, sender_stderr, receiver, dst, _work: work };
    (run, written)
}

#[test]
fn auto_from_fifo_splices_after_sendfile_refuses() {
    let data = pseudo_random((300 << 10) + 7, 11);
    let (run, written) = send_from_fifo(&data, &[]);
    assert_eq!(run.sender_code, Some(0), "sender failed:\n{}", run.sender_stderr);
    assert_eq!(run.receiver.code(), Some(0), "receiver failed:\n{}", run.receiver.stderr);
    written.expect("the FIFO writer should have written everything");
    assert_file_holds(&run.dst.join("stream"), &data, "auto from a FIFO");
    assert_eq!(dir_names(&run.dst), ["stream"]);

    let report = parse_json(&run.sender_stdout, &run.sender_stderr);
    assert_eq!(json_str(&report, "/send/path"), "splice", "{report:#}");
    assert_eq!(report["files"][0]["bytes"], data.len(), "{report:#}");
    assert_eq!(report["checksum"]["ok"], true, "{report:#}");
    let fallbacks = report["send"]["fallbacks"].as_array().expect("send.fallbacks is an array");
    assert_eq!(fallbacks.len(), 1, "one fallback, from sendfile: {report:#}");
    assert_eq!(fallbacks[0]["from"], "sendfile", "{report:#}");
    assert_eq!(fallbacks[0]["errno"], 22, "sendfile refuses a pipe with EINVAL: {report:#}");
    assert_eq!(fallbacks[0]["errno_name"], "EINVAL", "{report:#}");
    assert!(
        !json_str(&report, "/send/fallbacks/0/reason").is_empty(),
        "a fallback says why: {report:#}"
    );
    // The receiver's report carries the sender's statistics too.
    let theirs = run.receiver.json();
    assert_eq!(theirs["send"]["fallbacks"], report["send"]["fallbacks"], "{theirs:#}");
}

#[test]
fn buffered_from_fifo_works() {
    let data = pseudo_random((200 << 10) + 1, 12);
    let (run, written) = send_from_fifo(&data, &["--method", "buffered"]);
    assert_eq!(run.sender_code, Some(0), "sender failed:\n{}", run.sender_stderr);
    assert_eq!(run.receiver.code(), Some(0), "receiver failed:\n{}", run.receiver.stderr);
    written.expect("the FIFO writer should have written everything");
    assert_file_holds(&run.dst.join("stream"), &data, "buffered from a FIFO");
    let report = parse_json(&run.sender_stdout, &run.sender_stderr);
    assert_eq!(json_str(&report, "/send/path"), "buffered", "{report:#}");
    assert_eq!(report["send"]["fallbacks"], Value::Array(vec![]), "{report:#}");
    assert_eq!(report["checksum"]["ok"], true, "{report:#}");
}

#[test]
fn sendfile_from_fifo_is_a_usage_error() {
    let data = pseudo_random(64 << 10, 13);
    let (run, _written) = send_from_fifo(&data, &["--method", "sendfile"]);
    assert_eq!(run.sender_code, Some(2), "sender should refuse:\n{}", run.sender_stderr);
    assert!(
        run.sender_stderr.contains("sendfile"),
        "the error should name sendfile:\n{}",
        run.sender_stderr
    );
    assert!(
        run.sender_stderr.contains("unknown length"),
        "the error should say why:\n{}",
        run.sender_stderr
    );
    // The sender refuses before it connects: the receiver never saw a session.
    assert!(!run.receiver.stderr.contains("receiving from"), "receiver:\n{}", run.receiver.stderr);
    assert!(dir_names(&run.dst).is_empty(), "nothing may appear in the destination");
}

/// `zcp send PATH` with `--method auto` to a fresh receiver; returns the sender's report and
/// the received bytes.
fn send_pseudo_file(path: &str) -> (Value, Vec<u8>) {
    let work = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(work.path(), &[]);
    let sent = send(Path::new(path), &receiver.dest(), &["--json"]);
    let (code, stdout, stderr) = (sent.code(), sent.stdout, sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sending {path} failed:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiving {path} failed:\n{}", received.stderr);
    let name = Path::new(path).file_name().expect("a file name");
    let bytes = fs::read(work.path().join(name)).expect("reading the received file");
    (parse_json(&stdout, &stderr), bytes)
}

fn fallback_sources(report: &Value) -> Vec<&str> {
    let fallbacks = report["send"]["fallbacks"].as_array().expect("send.fallbacks is an array");
    fallbacks.iter().map(|f| f["from"].as_str().expect("fallback.from")).collect()
}

#[test]
fn proc_self_status_falls_back_to_buffered() {
    let (report, bytes) = send_pseudo_file("/proc/self/status");
    assert_eq!(json_str(&report, "/send/path"), "buffered", "{report:#}");
    assert_eq!(fallback_sources(&report), ["sendfile", "splice"], "{report:#}");
    assert_eq!(
        report["send"]["fallbacks"][1]["errno"], 22,
        "procfs refuses splice for this file with EINVAL: {report:#}"
    );
    let text = String::from_utf8_lossy(&bytes);
    // /proc/self is the sender's own status.
    assert!(text.starts_with("Name:\tzcp\n"), "unexpected content:\n{text}");
    assert_eq!(report["files"][0]["bytes"], bytes.len(), "{report:#}");
}

#[test]
fn proc_cpuinfo_arrives_intact() {
    let (report, bytes) = send_pseudo_file("/proc/cpuinfo");
    let local = fs::read("/proc/cpuinfo").expect("reading /proc/cpuinfo");
    let path = json_str(&report, "/send/path");
    assert!(path == "splice" || path == "buffered", "send.path {path}: {report:#}");
    assert_eq!(fallback_sources(&report).first(), Some(&"sendfile"), "{report:#}");
    assert!(!bytes.is_empty(), "nothing received");
    // The clock speed may move between the two reads; every other line is fixed.
    let steady = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .lines()
            .filter(|l| !l.starts_with("cpu MHz"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(steady(&bytes), steady(&local), "received cpuinfo differs from the local one");
    assert_eq!(report["files"][0]["bytes"], bytes.len(), "{report:#}");
}

#[test]
fn output_may_name_the_file_to_write() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join(NAME);
    let data = write_random_file(&src, 3000, 23);
    let dst = subdir(work.path(), "dst");
    let target = dst.join("renamed.bin");

    let receiver = Receiver::start(&target, &["--json"]);
    let sent = send(&src, &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert_file_holds(&target, &data, "--output naming a file");
    assert_eq!(dir_names(&dst), ["renamed.bin"]);
    let report = received.json();
    assert_eq!(json_str(&report, "/files/0/saved_as"), target.display().to_string());
}
