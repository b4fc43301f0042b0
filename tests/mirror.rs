//! `zcp recv --mirror` through the real binary: entries of the offered directories that the
//! offer does not hold are removed once every file landed, listed in the summary, `--json` and
//! `--events`; the rest of the output directory, the part files of offered files, and anything
//! a symlink points to are left alone; a session that fails or refuses removes nothing.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::util::{
    Fault, Finished, Proxy, Receiver, assert_exit, assert_says, parse_json, send_paths, subdir,
    tree_listing, write_random_file,
};

/// The source tree `t/{a.bin, big.bin, sub/b.bin}`, and a destination that holds an older copy
/// of it with entries the source no longer has, plus entries outside `t`.
struct Scene {
    work: tempfile::TempDir,
    t: PathBuf,
    dst: PathBuf,
}

fn scene() -> Scene {
    let work = tempfile::tempdir().expect("tempdir");
    let t = subdir(&subdir(work.path(), "src"), "t");
    write_random_file(&t.join("a.bin"), 100, 1);
    write_random_file(&t.join("big.bin"), 2 << 20, 2);
    write_random_file(&subdir(&t, "sub").join("b.bin"), 10, 3);
    let dst = subdir(work.path(), "dst");
    let old = subdir(&dst, "t");
    write_random_file(&old.join("old.txt"), 5, 4);
    write_random_file(&old.join(".old.txt.zcp-part"), 3, 5);
    let gone = subdir(&subdir(&old, "gone"), "deeper");
    write_random_file(&gone.join("x"), 7, 6);
    write_random_file(&subdir(&old, "sub").join("stale.bin"), 9, 7);
    write_random_file(&dst.join("outside.txt"), 4, 8);
    write_random_file(&subdir(&dst, "other").join("o.txt"), 4, 9);
    Scene { work, t, dst }
}

/// The destination as the scene laid it, less what `--mirror` removes.
const OUTSIDE: [&str; 3] = ["other/", "other/o.txt", "outside.txt"];

/// Sends `t` to a `--mirror` receiver with `recv_args`, through `fault` when given.
fn run(scene: &Scene, recv_args: &[&str], fault: Option<Fault>) -> (Finished, Finished) {
    let args = [&["--mirror", "--force"], recv_args].concat();
    let receiver = Receiver::start(&scene.dst, &args);
    let sent = match fault {
        Some(fault) => {
            let proxy = Proxy::start(receiver.addr(), fault);
            let sent = send_paths(&[&scene.t], &proxy.dest(), &[]);
            proxy.finish();
            sent
        }
        None => send_paths(&[&scene.t], &receiver.dest(), &[]),
    };
    (sent, receiver.wait())
}

fn with_outside(names: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = OUTSIDE.iter().chain(names).map(|s| s.to_string()).collect();
    all.sort();
    all
}

#[test]
fn entries_the_offer_does_not_hold_are_removed_and_listed() {
    let scene = scene();
    let (sent, received) = run(&scene, &["--json"], None);
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver");
    let expected = ["t/", "t/a.bin", "t/big.bin", "t/sub/", "t/sub/b.bin"];
    assert_eq!(tree_listing(&scene.dst), with_outside(&expected), "only the offer is left in t");
    let report = parse_json(&received.stdout, &received.stderr);
    let removed: Vec<&str> =
        report["removed"].as_array().expect("removed").iter().filter_map(|v| v.as_str()).collect();
    let gone = [
        "t/.old.txt.zcp-part",
        "t/gone/deeper/x",
        "t/gone/deeper/",
        "t/gone/",
        "t/old.txt",
        "t/sub/stale.bin",
    ];
    assert_eq!(removed, gone, "each removal, a directory after its contents: {report:#}");
    assert_says(&received, "removed 6 entries not in the offer", "receiver");
    assert_says(&received, "removed t/gone/deeper/x", "receiver");
}

#[test]
fn the_part_file_of_an_offered_file_is_kept() {
    let scene = scene();
    // The same a.bin is skipped (--skip-existing), so its part file is not used either.
    fs::copy(scene.t.join("a.bin"), scene.dst.join("t/a.bin")).expect("copying a.bin");
    let mtime = fs::metadata(scene.t.join("a.bin")).and_then(|m| m.modified()).expect("mtime");
    crate::util::set_mtime(&scene.dst.join("t/a.bin"), mtime);
    write_random_file(&scene.dst.join("t/.a.bin.zcp-part"), 30, 10);
    let receiver = Receiver::start(&scene.dst, &["--mirror", "--skip-existing"]);
    let sent = send_paths(&[&scene.t], &receiver.dest(), &[]);
    let received = receiver.wait();
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver");
    let listing = tree_listing(&scene.dst);
    assert!(listing.contains(&"t/.a.bin.zcp-part".to_string()), "{listing:#?}");
    assert!(!listing.contains(&"t/.old.txt.zcp-part".to_string()), "{listing:#?}");
}

#[test]
fn a_session_with_a_damaged_file_removes_nothing() {
    let scene = scene();
    let before = tree_listing(&scene.dst);
    // Far past the greeting, the proofs and the offer: inside big.bin's bytes.
    let (sent, received) = run(&scene, &[], Some(Fault::FlipAt(1 << 20)));
    assert_exit(&sent, 6, "sender");
    assert_exit(&received, 6, "receiver");
    assert_says(&received, "--mirror: nothing removed", "receiver");
    let after: Vec<String> =
        tree_listing(&scene.dst).into_iter().filter(|n| before.contains(n)).collect();
    assert_eq!(after, before, "every entry that was there is still there");
}

#[test]
fn a_session_cut_short_removes_nothing() {
    let scene = scene();
    let before = tree_listing(&scene.dst);
    let (sent, received) = run(&scene, &[], Some(Fault::CutAt(1 << 20)));
    // However the sender learns of the cut (a reset, a closed socket), it is a connection.
    assert_exit(&sent, 3, "sender");
    assert_exit(&received, 3, "receiver");
    let after: Vec<String> =
        tree_listing(&scene.dst).into_iter().filter(|n| before.contains(n)).collect();
    assert_eq!(after, before, "every entry that was there is still there");
}

#[test]
fn a_session_with_a_refused_file_removes_nothing() {
    let scene = scene();
    write_random_file(&scene.dst.join("t/a.bin"), 1, 11);
    let before = tree_listing(&scene.dst);
    let receiver = Receiver::start(&scene.dst, &["--mirror"]);
    let sent = send_paths(&[&scene.t], &receiver.dest(), &[]);
    let received = receiver.wait();
    assert_exit(&sent, 5, "sender");
    assert_exit(&received, 5, "receiver");
    assert_says(&received, "--mirror: nothing removed: 1 entry did not land", "receiver");
    let after: Vec<String> =
        tree_listing(&scene.dst).into_iter().filter(|n| before.contains(n)).collect();
    assert_eq!(after, before);
}

/// A directory outside the destination with a file in it, for links to point at.
fn victim(root: &Path) -> PathBuf {
    let victim = subdir(root, "victim");
    write_random_file(&victim.join("precious"), 64, 12);
    victim
}

#[test]
fn a_planted_symlink_is_removed_as_itself_and_what_it_points_to_is_left() {
    let scene = scene();
    let victim = victim(scene.work.path());
    // A link to a directory outside, where a removal would descend, and one inside a
    // directory being removed whole.
    symlink(&victim, scene.dst.join("t/escape")).expect("planting a link");
    symlink(&victim, scene.dst.join("t/gone/deeper/escape")).expect("planting a link");
    symlink(victim.join("precious"), scene.dst.join("t/sub/file-link")).expect("planting");
    let (sent, received) = run(&scene, &["--events"], None);
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver");
    let listing = tree_listing(&scene.dst);
    assert!(!listing.iter().any(|n| n.contains("escape") || n.contains("link")), "{listing:#?}");
    assert_eq!(tree_listing(&victim), ["precious"], "the outside directory is untouched");
    let removes: Vec<serde_json::Value> = received
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "file_remove")
        .collect();
    let names: Vec<&str> = removes.iter().filter_map(|e| e["name"].as_str()).collect();
    for link in ["t/escape", "t/gone/deeper/escape", "t/sub/file-link"] {
        assert!(names.contains(&link), "no file_remove event for {link}: {names:?}");
    }
}

#[test]
fn mirror_needs_a_directory_output() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("file");
    fs::write(&file, b"x").expect("writing a file");
    for output in ["-", file.to_str().expect("utf-8")] {
        let args = ["recv", "--no-auth", "--listen", "127.0.0.1:0", "--mirror", "--output", output];
        let done = crate::util::run(crate::util::zcp_command(&args, &[]));
        assert_exit(&done, 2, "receiver");
        assert_says(&done, "--mirror", "receiver");
    }
}
