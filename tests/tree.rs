//! Sessions of many entries through the real binary: files and directories named together on
//! the command line arrive as the same tree, with their modes and mtimes; symlinks and FIFOs
//! inside it are skipped with a warning naming them, or followed with `--follow-symlinks`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::util;
use crate::util::{
    FifoWriter, Finished, Receiver, assert_file_holds, json_file, json_u64, parse_json,
    pseudo_random, send_paths, set_mode, set_mtime, subdir, tree_listing, write_random_file,
};
use serde_json::Value;

/// A moment with nanoseconds, `n` seconds after a fixed point, so every entry's mtime differs.
fn moment(n: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_650_000_000 + n * 3600, 100_000_007 * (n as u32 % 9))
}

/// Writes `data` to `path` with `mode` and the mtime `moment(n)`.
fn file(path: &Path, data: &[u8], mode: u32, n: u64) {
    fs::write(path, data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    set_mode(path, mode);
    set_mtime(path, moment(n));
}

/// Builds the source side: two loose files, a tree `top` with nested, empty, private and
/// read-only directories and files of several modes and sizes, and a second tree `other`.
/// Directory mtimes are set last (writing into a directory moves its mtime).
fn build_sources(src: &Path) {
    file(&src.join("one.bin"), &pseudo_random(70_001, 1), 0o644, 1);
    file(&src.join("two.txt"), b"two\n", 0o640, 2);
    let top = subdir(src, "top");
    file(&top.join("a.txt"), b"alpha\n", 0o644, 3);
    file(&top.join("run.sh"), b"#!/bin/sh\necho hi\n", 0o755, 4);
    file(&top.join("empty.bin"), b"", 0o600, 5);
    let deeper = subdir(&subdir(&top, "nested"), "deeper");
    file(&deeper.join("leaf.bin"), &pseudo_random((1 << 20) + 3, 6), 0o604, 6);
    subdir(&top, "empty_dir");
    let private = subdir(&top, "private");
    file(&private.join("key"), &pseudo_random(32, 7), 0o600, 7);
    let frozen = subdir(&top, "frozen");
    file(
        &frozen.join("inside.txt"),
        b"written before the directory was made read-only\n",
        0o444,
        8,
    );
    let other = subdir(src, "other");
    file(&other.join("b.txt"), b"bravo\n", 0o664, 9);

    for (dir, mode, n) in [
        (deeper.as_path(), 0o750, 10),
        (&top.join("nested"), 0o755, 11),
        (&top.join("empty_dir"), 0o711, 12),
        (&private, 0o700, 13),
        (&frozen, 0o555, 14),
        (&top, 0o755, 15),
        (&other, 0o775, 16),
    ] {
        set_mtime(dir, moment(n));
        set_mode(dir, mode);
    }
}

/// Asserts that `received` mirrors `sent` entry by entry: the same names, file contents,
/// permission bits, and mtimes to the nanosecond; directories with their modes and mtimes.
fn assert_same_tree(sent: &Path, received: &Path) {
    let listing = tree_listing(sent);
    assert_eq!(tree_listing(received), listing, "the trees hold different entries");
    for rel in &listing {
        let name = rel.trim_end_matches('/');
        let (a, b) = (sent.join(name), received.join(name));
        let (ma, mb) =
            (fs::metadata(&a).expect("source metadata"), fs::metadata(&b).expect("copy"));
        assert_eq!(
            mb.permissions().mode() & 0o7777,
            ma.permissions().mode() & 0o7777,
            "{rel}: mode differs"
        );
        assert_eq!(
            (mb.mtime(), mb.mtime_nsec()),
            (ma.mtime(), ma.mtime_nsec()),
            "{rel}: mtime differs"
        );
        if ma.is_file() {
            assert_file_holds(&b, &fs::read(&a).expect("reading the source"), rel);
        }
    }
}

/// Runs a receiver into `dst` and `zcp send PATHS… --json` against it; returns both ends.
fn session(paths: &[&Path], dst: &Path, send_args: &[&str]) -> (Finished, Value, String) {
    // Under umask 0 the offered modes land exactly (the umask's part: offers.rs).
    let receiver = Receiver::start_umask(dst, &["--json"], 0);
    let mut args = vec!["--json"];
    args.extend_from_slice(send_args);
    let sent = send_paths(paths, &receiver.dest(), &args);
    let (code, stdout, stderr) = (sent.code(), sent.stdout, sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}\nreceiver:\n{}", received.stderr);
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    (received, parse_json(&stdout, &stderr), stderr)
}

/// Lets a test clean up a tree holding a read-only directory even where that bites (non-root).
fn make_writable(dir: &Path) {
    for rel in tree_listing(dir).iter().filter(|r| r.ends_with('/')) {
        set_mode(&dir.join(rel.trim_end_matches('/')), 0o755);
    }
}

#[test]
fn files_and_directories_round_trip_with_modes_and_mtimes() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    build_sources(&src);
    let names = ["one.bin", "top", "two.txt", "other"];
    let paths: Vec<_> = names.iter().map(|n| src.join(n)).collect();
    let path_refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();

    let (received, sender, stderr) = session(&path_refs, &dst, &[]);
    assert!(stderr.contains("sent 9 files, 7 dirs: "), "sender's summary:\n{stderr}");
    assert_same_tree(&src, &dst);
    make_writable(&src);
    make_writable(&dst);

    let listing = tree_listing(&src);
    let dirs = listing.iter().filter(|r| r.ends_with('/')).count();
    let files: Vec<&String> = listing.iter().filter(|r| !r.ends_with('/')).collect();
    let total: u64 = files.iter().map(|f| fs::metadata(src.join(f)).expect("size").len()).sum();
    assert_eq!((files.len(), dirs), (9, 7), "the source tree: {listing:#?}");
    let receiver = received.json();
    for (end, report) in [("sender", &sender), ("receiver", &receiver)] {
        assert_eq!(report["files_sent"], files.len(), "{end}: files_sent\n{report:#}");
        assert_eq!(report["dirs"], dirs, "{end}: dirs\n{report:#}");
        assert_eq!(report["skipped"], 0, "{end}: skipped\n{report:#}");
        assert_eq!(report["refused"], 0, "{end}: refused\n{report:#}");
        assert_eq!(report["checksum"]["ok"], true, "{end}: checksum.ok\n{report:#}");
        assert_eq!(json_u64(report, "/bytes"), total, "{end}: bytes\n{report:#}");
        // Entries keep the order of the command line, each tree walked in name order.
        let order: Vec<&str> = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(order[..3], ["one.bin", "top", "top/a.txt"], "{end}: order\n{report:#}");
        assert_eq!(order[order.len() - 3..], ["two.txt", "other", "other/b.txt"], "{end}");
        let dir = json_file(report, "top/empty_dir");
        assert_eq!((&dir["kind"], &dir["status"]), (&"dir".into(), &"created".into()), "{end}");
        assert_eq!(dir["checksum_ok"], Value::Null, "{end}: no bytes crossed for a dir");
        let empty = json_file(report, "top/empty.bin");
        assert_eq!((&empty["kind"], &empty["status"]), (&"file".into(), &"sent".into()), "{end}");
        assert_eq!(empty["bytes"], 0, "{end}");
        assert_eq!(empty["checksum_ok"], true, "{end}: an empty file is checked too");
        let leaf = json_file(report, "top/nested/deeper/leaf.bin");
        assert_eq!(leaf["bytes"], (1 << 20) + 3, "{end}: {leaf:#}");
    }
    let leaf = json_file(&receiver, "top/nested/deeper/leaf.bin");
    let saved = dst.join("top/nested/deeper/leaf.bin");
    assert_eq!(leaf["saved_as"], saved.display().to_string(), "{leaf:#}");
}

#[test]
fn a_directory_can_be_sent_alone_and_again_into_the_same_destination_with_force() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = subdir(&src, "tree");
    write_random_file(&tree.join("x.bin"), 5000, 3);
    subdir(&tree, "sub");
    write_random_file(&tree.join("sub").join("y.bin"), 10, 4);

    session(&[&tree], &dst, &[]);
    assert_eq!(tree_listing(&dst), ["tree/", "tree/sub/", "tree/sub/y.bin", "tree/x.bin"]);
    // Existing directories are no obstacle; existing files are, unless forced.
    let y = write_random_file(&tree.join("sub").join("y.bin"), 20, 5);
    let receiver = Receiver::start(&dst, &["--force"]);
    let sent = send_paths(&[&tree], &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert_file_holds(&dst.join("tree/sub/y.bin"), &y, "the replaced file");
}

/// A tree with a regular file, a symlink to it, a symlink to a directory outside the tree, and
/// a FIFO.
fn tree_with_links(root: &Path) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let tree = subdir(root, "tree");
    let target = write_random_file(&tree.join("target.bin"), 3000, 8);
    symlink("target.bin", tree.join("link")).expect("creating the file symlink");
    let elsewhere = subdir(root, "elsewhere");
    let far = write_random_file(&elsewhere.join("far.bin"), 777, 9);
    symlink(&elsewhere, tree.join("linkdir")).expect("creating the directory symlink");
    nix::unistd::mkfifo(&tree.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .expect("mkfifo");
    (tree, target, far)
}

#[test]
fn symlinks_and_fifos_in_a_tree_are_skipped_with_warnings() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (tree, target, _) = tree_with_links(work.path());

    let (_, report, stderr) = session(&[&tree], &dst, &[]);
    assert_eq!(tree_listing(&dst), ["tree/", "tree/target.bin"], "only the regular file lands");
    assert_file_holds(&dst.join("tree/target.bin"), &target, "target.bin");
    for skipped in ["tree/link", "tree/linkdir", "tree/fifo"] {
        assert!(warns_about(&stderr, skipped), "no warning names {skipped}:\n{stderr}");
    }
    assert!(stderr.contains("--follow-symlinks"), "the warning says how to send links:\n{stderr}");
    assert_eq!(report["files"].as_array().map(Vec::len), Some(2), "{report:#}");
}

/// Whether a warning on stderr names `path` (as `…/tree/link`, followed by a space, a colon
/// or the end of the line, so that `tree/link` does not match `tree/linkdir`).
fn warns_about(stderr: &str, path: &str) -> bool {
    stderr.lines().filter(|l| l.contains("warning")).any(|line| {
        line.match_indices(path).any(|(i, _)| {
            let after = line[i + path.len()..].chars().next();
            matches!(after, None | Some(' ' | ':'))
        })
    })
}

#[test]
fn follow_symlinks_sends_what_they_point_to() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (tree, target, far) = tree_with_links(work.path());

    let (_, report, stderr) = session(&[&tree], &dst, &["--follow-symlinks"]);
    assert_eq!(
        tree_listing(&dst),
        ["tree/", "tree/link", "tree/linkdir/", "tree/linkdir/far.bin", "tree/target.bin"],
        "links arrive as what they point to; the FIFO is still skipped"
    );
    assert_file_holds(&dst.join("tree/link"), &target, "the followed file link");
    assert_file_holds(&dst.join("tree/linkdir/far.bin"), &far, "a file behind the directory link");
    assert!(
        warns_about(&stderr, "tree/fifo"),
        "the FIFO is still skipped with a warning:\n{stderr}"
    );
    assert!(!stderr.contains("symlink"), "no symlink was skipped:\n{stderr}");
    assert_eq!(json_file(&report, "tree/linkdir")["kind"], "dir", "{report:#}");
}

#[test]
fn symlinks_named_on_the_command_line_are_followed_as_cp_does() {
    // `cp -H`: a link the user names is what it points to, under the link's name; the links
    // met inside the tree it leads to keep the tree's rule (skipped without -L).
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (tree, target, _) = tree_with_links(work.path());
    let file_link = work.path().join("file-link");
    symlink(tree.join("target.bin"), &file_link).expect("a link to a file");
    let small_link = work.path().join("small-link");
    fs::write(work.path().join("small.txt"), b"small\n").expect("a small file");
    symlink("small.txt", &small_link).expect("a relative link to a small file");
    let tree_link = work.path().join("tree-link");
    symlink(&tree, &tree_link).expect("a link to a directory");

    let (_, report, stderr) = session(&[&file_link, &small_link, &tree_link], &dst, &[]);
    assert_file_holds(&dst.join("file-link"), &target, "the named link to a file");
    assert_file_holds(&dst.join("small-link"), b"small\n", "the named link to a small file");
    assert_file_holds(&dst.join("tree-link/target.bin"), &target, "the tree behind a named link");
    assert!(fs::symlink_metadata(dst.join("file-link")).expect("landed").is_file());
    assert!(!dst.join("tree-link/link").exists(), "a link inside the tree is still skipped");
    assert!(warns_about(&stderr, "tree/link"), "the link inside is named:\n{stderr}");
    assert!(!warns_about(&stderr, "file-link"), "the named link is not skipped:\n{stderr}");
    assert_eq!(json_file(&report, "tree-link")["kind"], "dir", "{report:#}");
}

#[test]
fn a_send_that_has_nothing_to_offer_fails_and_leaves_the_receiver_waiting() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let socket_path = work.path().join("sock");
    let _socket = std::os::unix::net::UnixListener::bind(&socket_path).expect("a unix socket");
    let mut receiver = Receiver::start(&dst, &[]);
    let sent = send_paths(&[&socket_path], &receiver.dest(), &[]);
    util::assert_exit(&sent, 7, "a sender with nothing to send");
    util::assert_says(&sent, "nothing to send", "sender");
    util::assert_says(&sent, "sock", "sender");
    assert!(receiver.process().running(), "the one-shot receiver was used up by nothing");
    let file = work.path().join("real.bin");
    let data = write_random_file(&file, 5000, 11);
    let sent = send_paths(&[&file], &receiver.dest(), &[]);
    util::assert_exit(&sent, 0, "the next sender");
    util::assert_exit(&receiver.wait(), 0, "the receiver");
    assert_file_holds(&dst.join("real.bin"), &data, "the next sender's file");
}

#[test]
fn a_fifo_named_on_the_command_line_is_still_sent_as_a_stream() {
    // Inside a tree a FIFO is skipped (it may never end); named explicitly, it is read.
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let data = pseudo_random(10_000, 10);
    let fifo = work.path().join("pipe");
    let writer = FifoWriter::create(&fifo, data.clone());
    let other = work.path().join("plain.txt");
    fs::write(&other, b"plain\n").expect("writing plain.txt");
    let (_, report, _) = session(&[&other, &fifo], &dst, &[]);
    writer.finish().expect("the FIFO writer wrote everything");
    assert_file_holds(&dst.join("pipe"), &data, "the FIFO's bytes");
    assert_file_holds(&dst.join("plain.txt"), b"plain\n", "the regular file");
    assert_eq!(report["files_sent"], 2, "{report:#}");
}
