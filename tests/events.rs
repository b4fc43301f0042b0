//! `--events`: the NDJSON stream of a real transfer, parsed line by line on both
//! ends: every line a versioned object, a session that starts, files that start or resume,
//! are skipped or refused, and end with their checksum, progress at its interval, the summary
//! holding the `--json` report; failures as `error` events; the stream on another descriptor.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{
    self, ClosedPort, Receiver, TOKEN, TOKEN_ENV, ZCP, assert_exit, assert_says, run, send_paths,
    subdir, write_random_file,
};

/// Every line of `stdout` as a JSON object of schema version 1 (the test fails on any other).
fn events(stdout: &str) -> Vec<Value> {
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    for line in &lines {
        assert_eq!(line["v"], 1, "schema version: {line}");
        assert!(line["event"].is_string() && line["t"].is_f64(), "event and t: {line}");
    }
    lines
}

/// The events named `name`.
fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// The position of the first event named `name` about `file`.
fn at(events: &[Value], name: &str, file: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == name && e["name"] == file)
        .unwrap_or_else(|| panic!("no {name} for {file}: {events:#?}"))
}

/// A tree with a large file (resumed: half of it is already a part file on the receiver), a
/// small one, and a file the receiver has already (refused, no --force).
fn tree(work: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = subdir(work, "t");
    let big = write_random_file(&src.join("big"), 3 << 20, 1);
    write_random_file(&src.join("small"), 1000, 2);
    write_random_file(&src.join("taken"), 10, 3);
    let dst = subdir(work, "dst");
    let landed = subdir(&dst, "t");
    fs::write(landed.join(".big.zcp-part"), &big[..1 << 20]).expect("part file");
    fs::write(landed.join("taken"), b"already here").expect("existing file");
    (src, dst)
}

#[test]
fn both_ends_stream_a_real_transfer() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = tree(work.path());
    let receiver = Receiver::start(&dst, &["--events"]);
    let sent = send_paths(&[&src], &receiver.dest(), &["--events", "--quiet"]);
    let received = receiver.wait();
    // The refused file makes both ends exit 5; the others landed.
    assert_exit(&sent, 5, "sender");
    assert_exit(&received, 5, "receiver");
    util::assert_file_holds(&dst.join("t/big"), &fs::read(src.join("big")).unwrap(), "big");
    for (who, out) in [("send", &sent.stdout), ("recv", &received.stdout)] {
        let mut evs = events(out);
        // The exit code comes last, in an error event of the process (session 0).
        let exit = evs.pop().expect("events");
        assert_eq!(
            (&exit["event"], &exit["session"], &exit["exit_code"]),
            (&"error".into(), &0.into(), &5.into())
        );
        assert_eq!(evs[0]["event"], "session_start", "{who} starts: {evs:#?}");
        assert_eq!(evs[0]["role"], who);
        assert_eq!((evs[0]["entries"].as_u64(), evs[0]["files"].as_u64()), (Some(4), Some(2)));
        assert!(evs.iter().all(|e| e["session"] == evs[0]["session"]), "one session");
        // The big file resumes where the part file ends, the small one starts, each before
        // its end, which carries the checksum result.
        let resume = at(&evs, "file_resume", "t/big");
        assert_eq!(evs[resume]["offset"], 1 << 20, "{who}: {:#}", evs[resume]);
        assert!(resume < at(&evs, "file_end", "t/big"), "{who}: resume before end");
        assert!(at(&evs, "file_start", "t/small") < at(&evs, "file_end", "t/small"));
        for end in named(&evs, "file_end") {
            assert_eq!(end["checksum"], "ok", "{who}: {end:#}");
        }
        assert_eq!(named(&evs, "file_end")[0]["resumed_from"], 1 << 20);
        let refused = &evs[at(&evs, "file_refuse", "t/taken")];
        assert!(refused["reason"].as_str().unwrap().contains("exists"), "{refused:#}");
        // Progress counts up to the session's total; the summary is last and is the report.
        let progress = named(&evs, "progress");
        let last = progress.last().unwrap_or_else(|| panic!("{who}: no progress: {evs:#?}"));
        assert_eq!(last["bytes"], evs[0]["bytes"], "{who}: final progress");
        let summary = evs.last().expect("events");
        assert_eq!(summary["event"], "summary", "{who} ends with the summary");
        assert_eq!(summary["report"]["role"], who);
        assert_eq!(summary["report"]["refused"], 1);
        assert_eq!(summary["report"]["files_sent"], 2);
        assert_eq!(summary["report"]["resumed_bytes"], 1 << 20);
    }
}

#[test]
fn progress_comes_at_the_interval_while_bytes_move() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("paced");
    write_random_file(&src, 4 << 20, 4);
    let dst = subdir(work.path(), "dst");
    let receiver = Receiver::start(&dst, &[]);
    // Paced to 8 MiB/s, the 4 MiB take at least half a second.
    let extra = ["--events", "--events-interval", "0.1", "--limit-rate", "8M"];
    let sent = send_paths(&[&src], &receiver.dest(), &extra);
    assert_exit(&sent, 0, "sender");
    assert_exit(&receiver.wait(), 0, "receiver");
    let evs = events(&sent.stdout);
    let progress = named(&evs, "progress");
    assert!(progress.len() >= 3, "progress every 0.1 s over at least 0.5 s: {progress:#?}");
    let t: Vec<f64> = progress.iter().map(|p| p["t"].as_f64().unwrap()).collect();
    let bytes: Vec<u64> = progress.iter().map(|p| p["bytes"].as_u64().unwrap()).collect();
    // The last one is the final count, whenever it comes; the others keep the interval.
    for pair in t[..t.len() - 1].windows(2) {
        assert!(pair[1] - pair[0] >= 0.1, "progress closer than the interval: {t:?}");
    }
    assert!(bytes.windows(2).all(|b| b[0] <= b[1]), "progress went back: {bytes:?}");
    assert_eq!(bytes.last().copied(), Some(4 << 20));
}

#[test]
fn a_failure_is_an_error_event_with_the_exit_code() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("f");
    write_random_file(&src, 10, 5);
    let port = ClosedPort::new();
    let sent = send_paths(&[&src], &port.dest(), &["--events"]);
    let evs = events(&sent.stdout);
    let error = evs.last().unwrap_or_else(|| panic!("no events:\n{}", sent.stderr));
    assert_eq!(error["event"], "error", "{evs:#?}");
    assert_eq!(error["exit_code"].as_i64(), sent.code().map(i64::from), "{error:#}");
    assert!(error["message"].as_str().unwrap().contains(&port.dest()), "{error:#}");
}

#[test]
fn events_go_to_another_descriptor_and_json_stays_on_stdout() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("f");
    write_random_file(&src, 5000, 6);
    let dst = subdir(work.path(), "dst");
    let receiver = Receiver::start(&dst, &[]);
    let log = work.path().join("events.ndjson");
    let mut sender = Command::new("sh");
    sender
        .arg("-c")
        .arg(r#"exec 3>"$0"; exec "$@""#)
        .arg(&log)
        .args([ZCP, "send"])
        .arg(&src)
        .args([&receiver.dest(), "--json", "--events-fd", "3"])
        .env(TOKEN_ENV, TOKEN);
    let sent = run(sender);
    assert_exit(&sent, 0, "sender");
    assert_exit(&receiver.wait(), 0, "receiver");
    let report = sent.json();
    let evs = events(&fs::read_to_string(&log).expect("the events file"));
    assert_eq!(evs.last().unwrap()["report"], report, "the summary event is the --json report");
}

#[test]
fn events_and_json_on_stdout_together_are_a_usage_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("f");
    write_random_file(&src, 10, 7);
    let sent = send_paths(&[&src], "127.0.0.1:9", &["--events", "--json"]);
    assert_exit(&sent, 2, "sender");
    assert_says(&sent, "--events-fd", "sender");
    let bad_fd = send_paths(&[&src], "127.0.0.1:9", &["--events-fd", "97"]);
    assert_exit(&bad_fd, 2, "sender");
    assert_says(&bad_fd, "--events-fd 97", "sender");
}
