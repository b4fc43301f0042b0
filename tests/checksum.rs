//! `zcp recv --checksum` through the real binary: an existing file of the same size and
//! content is skipped whatever its mtime, and left untouched; one of the same size with other
//! content is refused (exit 5) without `--force` and replaced with it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::util::{
    Finished, Receiver, assert_exit, assert_file_holds, json_file, parse_json, pseudo_random,
    send_paths, set_mtime, subdir, tree_listing,
};
use serde_json::Value;

/// `top/{big.bin,small.txt,other.bin}` on the source and in the destination: `big.bin`
/// (more than a batch) and `small.txt` with the same bytes but an older mtime, `other.bin`
/// with the same size and other bytes.
struct Scene {
    _work: tempfile::TempDir,
    top: PathBuf,
    dst: PathBuf,
}

fn scene() -> Scene {
    let work = tempfile::tempdir().expect("tempdir");
    let top = subdir(&subdir(work.path(), "src"), "top");
    let dst = subdir(work.path(), "dst");
    let here = subdir(&dst, "top");
    let new = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
    let old = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 7);
    for (name, data, theirs) in [
        ("big.bin", pseudo_random(300_001, 1), pseudo_random(300_001, 1)),
        ("small.txt", b"same bytes\n".to_vec(), b"same bytes\n".to_vec()),
        ("other.bin", pseudo_random(200_000, 2), pseudo_random(200_000, 3)),
    ] {
        fs::write(top.join(name), &data).expect("writing a source file");
        set_mtime(&top.join(name), new);
        fs::write(here.join(name), &theirs).expect("writing an existing file");
        set_mtime(&here.join(name), old);
    }
    Scene { _work: work, top, dst }
}

/// Sends `top` to a receiver with `--checksum` and `recv_args`; returns both ends and the
/// sender's report.
fn run(scene: &Scene, recv_args: &[&str], send_args: &[&str]) -> (Finished, Value, Finished) {
    let receiver = Receiver::start(&scene.dst, &[&["--json", "--checksum"], recv_args].concat());
    let sent = send_paths(&[&scene.top], &receiver.dest(), &[&["--json"], send_args].concat());
    let report = parse_json(&sent.stdout, &sent.stderr);
    (sent, report, receiver.wait())
}

fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    json_file(report, &format!("top/{name}"))["status"].as_str().unwrap_or("(none)")
}

/// The inode and mtime of `name` in the destination.
fn identity(dst: &Path, name: &str) -> (u64, i64, i64) {
    let meta = fs::metadata(dst.join("top").join(name)).expect("metadata");
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

#[test]
fn the_same_content_is_skipped_whatever_its_mtime_and_other_content_is_refused() {
    let scene = scene();
    let before = ["big.bin", "small.txt", "other.bin"].map(|n| identity(&scene.dst, n));
    let (sent, report, received) = run(&scene, &[], &[]);
    assert_exit(&sent, 5, "sender");
    assert_exit(&received, 5, "receiver");
    let theirs = received.json();
    for (end, report) in [("sender", &report), ("receiver", &theirs)] {
        let what = format!("{end}: {report:#}");
        assert_eq!(status(report, "big.bin"), "skipped", "{what}");
        assert_eq!(status(report, "small.txt"), "skipped", "{what}");
        assert_eq!(status(report, "other.bin"), "refused", "{what}");
        assert_eq!(report["skipped"], 2, "{what}");
        assert_eq!(json_file(report, "top/big.bin")["bytes"], 0, "nothing crossed: {what}");
        let big = json_file(report, "top/big.bin");
        assert_eq!((&big["resumed_from"], &big["path"]), (&0.into(), &Value::Null), "{what}");
        assert_eq!(report["resumed_bytes"], 0, "a comparison is no resume: {what}");
    }
    let reason = json_file(&report, "top/other.bin")["reason"].as_str().unwrap_or("");
    assert!(reason.contains("other content") && reason.contains("--force"), "{reason}");
    let after = ["big.bin", "small.txt", "other.bin"].map(|n| identity(&scene.dst, n));
    assert_eq!(after, before, "nothing written: the same inodes and mtimes");
    assert_file_holds(&scene.dst.join("top/other.bin"), &pseudo_random(200_000, 3), "kept");
    let listing = tree_listing(&scene.dst);
    assert_eq!(listing, ["top/", "top/big.bin", "top/other.bin", "top/small.txt"], "no part file");
}

#[test]
fn other_content_of_the_same_size_is_replaced_with_force() {
    let scene = scene();
    let before = identity(&scene.dst, "big.bin");
    let (sent, report, received) = run(&scene, &["--force"], &[]);
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver");
    assert_eq!(status(&report, "big.bin"), "skipped", "{report:#}");
    assert_eq!(status(&report, "other.bin"), "sent", "{report:#}");
    assert_eq!(identity(&scene.dst, "big.bin"), before, "the same file is left alone");
    assert_file_holds(&scene.dst.join("top/other.bin"), &pseudo_random(200_000, 2), "replaced");
}

#[test]
fn a_sender_that_sends_whole_still_finds_the_same_content_skipped() {
    let scene = scene();
    let before = identity(&scene.dst, "big.bin");
    let (sent, report, received) = run(&scene, &["--force"], &["--no-resume"]);
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver");
    assert_eq!(status(&received.json(), "big.bin"), "skipped", "{}", received.stdout);
    assert_eq!(status(&report, "big.bin"), "skipped", "{report:#}");
    assert_eq!(identity(&scene.dst, "big.bin"), before, "the same file is left alone");
    assert_eq!(tree_listing(&scene.dst).len(), 4, "no part file left");
}
