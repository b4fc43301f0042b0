//! Targets that already exist, in a session of many files: refused by default (the sender
//! lists each refusal and exits 5, the other files still land), replaced with `--force`,
//! skipped with `--skip-existing` when size and mtime match and refused when they differ.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::util::{
    Finished, Receiver, assert_file_holds, json_file, parse_json, send_paths, set_mtime, subdir,
    tree_listing,
};
use serde_json::Value;

/// The source tree `top` and a destination that already holds some of it.
struct Scene {
    _work: tempfile::TempDir,
    top: PathBuf,
    dst: PathBuf,
}

const MTIME: u64 = 1_600_000_000;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(secs, 250_000_000)
}

/// `top/{same,differs,stale,new}.txt` on the source. In the destination: `same.txt` with the
/// same bytes and mtime, `differs.txt` with other bytes of another size, `stale.txt` with the
/// same size but another mtime; `new.txt` is missing.
fn scene() -> Scene {
    let work = tempfile::tempdir().expect("tempdir");
    let top = subdir(&subdir(work.path(), "src"), "top");
    let dst = subdir(work.path(), "dst");
    let existing = subdir(&dst, "top");
    for (name, data) in [
        ("same.txt", &b"same bytes\n"[..]),
        ("differs.txt", b"new bytes, longer\n"),
        ("stale.txt", b"fresh\n"),
        ("new.txt", b"brand new\n"),
    ] {
        fs::write(top.join(name), data).expect("writing a source file");
        set_mtime(&top.join(name), at(MTIME));
    }
    fs::write(existing.join("same.txt"), b"same bytes\n").expect("writing same.txt");
    set_mtime(&existing.join("same.txt"), at(MTIME));
    fs::write(existing.join("differs.txt"), b"old\n").expect("writing differs.txt");
    set_mtime(&existing.join("differs.txt"), at(MTIME));
    fs::write(existing.join("stale.txt"), b"stale\n").expect("writing stale.txt");
    set_mtime(&existing.join("stale.txt"), at(MTIME - 60));
    Scene { _work: work, top, dst }
}

/// Sends `top` to a receiver with `recv_args`; returns the sender's exit code, stderr and
/// report, and the receiver's end.
fn run(scene: &Scene, recv_args: &[&str]) -> (Option<i32>, String, Value, Finished) {
    let mut args = vec!["--json"];
    args.extend_from_slice(recv_args);
    let receiver = Receiver::start(&scene.dst, &args);
    let sent = send_paths(&[&scene.top], &receiver.dest(), &["--json"]);
    let (code, stdout, stderr) = (sent.code(), &sent.stdout, &sent.stderr);
    let received = receiver.wait();
    (code, stderr.clone(), parse_json(stdout, stderr), received)
}

fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    json_file(report, &format!("top/{name}"))["status"].as_str().unwrap_or("(none)")
}

fn holds(dst: &Path, name: &str, data: &[u8]) {
    assert_file_holds(&dst.join("top").join(name), data, name);
}

#[test]
fn existing_files_are_refused_and_the_others_land() {
    let scene = scene();
    let (code, stderr, report, received) = run(&scene, &[]);
    assert_eq!(code, Some(5), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(5), "receiver:\n{}", received.stderr);
    // Every refusal is listed, each with its reason.
    for name in ["same.txt", "differs.txt", "stale.txt"] {
        let line = format!("refused top/{name}: ");
        let listed = stderr.lines().find(|l| l.contains(&line));
        assert!(listed.is_some_and(|l| l.contains("exists")), "{name} not listed:\n{stderr}");
        assert_eq!(status(&report, name), "refused", "{report:#}");
    }
    assert!(stderr.contains("--force"), "the refusal says how to replace:\n{stderr}");
    assert!(stderr.contains("4 files, 1 dir (3 refused)"), "sender's summary:\n{stderr}");
    assert_eq!(status(&report, "new.txt"), "sent", "{report:#}");
    assert_eq!(report["refused"], 3, "{report:#}");
    assert_eq!(report["files_sent"], 1, "{report:#}");
    let refused = json_file(&report, "top/differs.txt");
    assert_eq!(refused["checksum_ok"], Value::Null, "nothing crossed for it: {refused:#}");
    assert_eq!(refused["bytes"], 0, "{refused:#}");
    holds(&scene.dst, "new.txt", b"brand new\n");
    holds(&scene.dst, "differs.txt", b"old\n");
    holds(&scene.dst, "stale.txt", b"stale\n");
    let listing = tree_listing(&scene.dst);
    let expected = ["top/", "top/differs.txt", "top/new.txt", "top/same.txt", "top/stale.txt"];
    assert_eq!(listing, expected, "no part file may be left");
}

#[test]
fn force_replaces_existing_files() {
    let scene = scene();
    let (code, stderr, report, received) = run(&scene, &["--force"]);
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    for name in ["same.txt", "differs.txt", "stale.txt", "new.txt"] {
        assert_eq!(status(&report, name), "sent", "{report:#}");
        holds(&scene.dst, name, &fs::read(scene.top.join(name)).expect("reading the source"));
    }
    assert_eq!(report["refused"], 0, "{report:#}");
    assert_eq!(tree_listing(&scene.dst).len(), 5, "no part file may be left");
}

#[test]
fn skip_existing_skips_matching_files_and_refuses_differing_ones() {
    let scene = scene();
    let (code, stderr, report, received) = run(&scene, &["--skip-existing"]);
    assert_eq!(code, Some(5), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(5), "receiver:\n{}", received.stderr);
    let theirs = received.json();
    for (end, report) in [("sender", &report), ("receiver", &theirs)] {
        let what = format!("{end}: {report:#}");
        assert_eq!(status(report, "same.txt"), "skipped", "{what}");
        assert_eq!(status(report, "differs.txt"), "refused", "{what}");
        assert_eq!(status(report, "stale.txt"), "refused", "{what}");
        assert_eq!(status(report, "new.txt"), "sent", "{what}");
        assert_eq!(report["skipped"], 1, "{what}");
        assert_eq!(report["refused"], 2, "{what}");
        assert_eq!(report["files_sent"], 1, "{what}");
        let skipped = json_file(report, "top/same.txt");
        assert_eq!((&skipped["bytes"], &skipped["checksum_ok"]), (&0.into(), &Value::Null));
    }
    let reason = json_file(&report, "top/stale.txt")["reason"].as_str().unwrap_or("");
    assert!(reason.contains("differs"), "a differing file is refused as such: {reason}");
    assert!(stderr.contains("(1 skipped, 2 refused)"), "sender's summary:\n{stderr}");
    holds(&scene.dst, "same.txt", b"same bytes\n");
    holds(&scene.dst, "differs.txt", b"old\n");
    holds(&scene.dst, "stale.txt", b"stale\n");
    holds(&scene.dst, "new.txt", b"brand new\n");
}

#[test]
fn skip_existing_with_force_skips_matching_files_and_replaces_the_rest() {
    let scene = scene();
    let (code, stderr, report, received) = run(&scene, &["--skip-existing", "--force"]);
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert_eq!(status(&report, "same.txt"), "skipped", "{report:#}");
    for name in ["differs.txt", "stale.txt", "new.txt"] {
        assert_eq!(status(&report, name), "sent", "{report:#}");
        holds(&scene.dst, name, &fs::read(scene.top.join(name)).expect("reading the source"));
    }
}

#[test]
fn a_directory_in_the_way_of_a_file_is_refused() {
    let scene = scene();
    fs::remove_file(scene.dst.join("top/differs.txt")).expect("removing differs.txt");
    subdir(&scene.dst.join("top"), "differs.txt");
    let (code, stderr, report, _) = run(&scene, &["--force"]);
    assert_eq!(code, Some(5), "sender:\n{stderr}");
    assert_eq!(status(&report, "differs.txt"), "refused", "{report:#}");
    let reason = json_file(&report, "top/differs.txt")["reason"].as_str().unwrap_or("");
    assert!(reason.contains("directory"), "{reason}");
    assert!(scene.dst.join("top/differs.txt").is_dir(), "the directory was replaced");
    holds(&scene.dst, "new.txt", b"brand new\n");
}
