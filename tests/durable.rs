//! `recv --fsync` against the kernel's account: under strace, every file's data is
//! synced (one `syncfs` for the whole tree) before any final name appears, and the directories
//! that gained names are synced after the last one. Without `--fsync` nothing is synced. Where
//! a held file cannot be linked in, the session fails and names none.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::Path;

use crate::util::{self, Receiver, assert_exit, assert_says, send, skip, unusable};

/// The calls the barrier is made of, in the order strace saw them complete.
pub const CALLS: [&str; 5] = ["syncfs", "fsync", "fdatasync", "renameat2", "linkat"];

/// A tree of `SMALL` 4 KiB files in two directories, and one 3 MiB file (not batched).
const SMALL: usize = 40;

/// Each traced call of `CALLS` (its name and the line it completed on), from an `strace -f` log.
pub fn completed(log: &str) -> Vec<(String, String)> {
    let mut calls = Vec::new();
    for line in log.lines() {
        let body = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
        if body.ends_with("<unfinished ...>") {
            continue;
        }
        let name = match body.strip_prefix("<... ") {
            Some(rest) => rest.split(' ').next().unwrap_or(""),
            None => body.split('(').next().unwrap_or(""),
        };
        if CALLS.contains(&name) {
            calls.push((name.to_string(), body.to_string()));
        }
    }
    calls
}

/// `strace` logging `CALLS` of every thread to `log`, as a wrapper of the receiver.
fn strace(log: &Path) -> Vec<OsString> {
    let trace = format!("trace={}", CALLS.join(","));
    ["strace", "-f", "-o"]
        .map(OsString::from)
        .into_iter()
        .chain([log.into(), "-e".into(), trace.into()])
        .collect()
}

/// Sends a tree to a receiver run under strace with `extra`; returns the trace, checking that
/// every file arrived whole.
fn traced_tree(extra: &[&str]) -> Option<Vec<(String, String)>> {
    if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        skip(&why);
        return None;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tree = util::subdir(work.path(), "tree");
    let mut files = Vec::new();
    let halves = [util::subdir(&tree, "a"), util::subdir(&tree, "b")];
    for i in 0..SMALL {
        let dir = &halves[i % 2];
        let path = dir.join(format!("f{i}"));
        files.push((path.clone(), util::write_random_file(&path, 4096, i as u64)));
    }
    let big = tree.join("big");
    files.push((big.clone(), util::write_random_file(&big, 3 << 20, 77)));
    let dst = util::subdir(work.path(), "dst");
    let log = work.path().join("recv.strace");
    let wrapper = strace(&log);
    let wrapper: Vec<&OsStr> = wrapper.iter().map(OsString::as_os_str).collect();
    let receiver = Receiver::try_start_env(&wrapper, &dst, extra, &[])
        .unwrap_or_else(|f| panic!("traced receiver did not start: {f:#?}"));
    let sent = send(&tree, &receiver.dest(), &[]);
    assert_exit(&sent, 0, "sender");
    assert_exit(&receiver.wait(), 0, "traced receiver");
    for (path, data) in &files {
        let landed = dst.join(path.strip_prefix(work.path()).expect("below work"));
        util::assert_file_holds(&landed, data, "durable tree");
    }
    Some(completed(&fs::read_to_string(&log).expect("reading the strace log")))
}

/// Positions in `calls` of those named `name`.
fn positions(calls: &[(String, String)], names: &[&str]) -> Vec<usize> {
    calls
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| names.contains(&n.as_str()))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn fsync_syncs_the_data_once_before_any_name_and_the_directories_after() {
    let Some(calls) = traced_tree(&["--fsync"]) else { return };
    let shown = || calls.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n");
    let syncs = positions(&calls, &["syncfs"]);
    assert_eq!(syncs.len(), 1, "one barrier for the whole tree:\n{}", shown());
    // Every file gets its name (a rename of its part file, or a link of an unnamed one) after
    // the barrier, and none is synced on its own.
    let names = positions(&calls, &["renameat2", "linkat"]);
    assert_eq!(names.len(), SMALL + 1, "one name per file:\n{}", shown());
    assert!(
        names.iter().all(|&n| n > syncs[0]),
        "a name appeared before the data was synced:\n{}",
        shown()
    );
    assert!(
        positions(&calls, &["fdatasync"]).is_empty(),
        "no file synced on its own:\n{}",
        shown()
    );
    // Then the directories that gained names: the output directory (it gained `tree`), `tree`
    // (`a`, `b`, `big`), `tree/a` and `tree/b`, each once, after the last name.
    let dirs = positions(&calls, &["fsync"]);
    assert_eq!(dirs.len(), 4, "each directory that gained a name, once:\n{}", shown());
    let last_name = names.iter().max().copied().unwrap_or(0);
    assert!(
        dirs.iter().all(|&d| d > last_name),
        "a directory synced before its names:\n{}",
        shown()
    );
}

#[test]
fn without_fsync_nothing_is_synced() {
    let Some(calls) = traced_tree(&[]) else { return };
    let synced = positions(&calls, &["syncfs", "fsync", "fdatasync"]);
    assert!(synced.is_empty(), "syncs without --fsync: {calls:?}");
}

#[test]
fn fsync_with_standard_output_is_a_usage_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let out =
        util::zcp_command(&["recv", "--output", "-", "--fsync", "--listen", "127.0.0.1:0"], &[]);
    let finished = util::run(out);
    assert_exit(&finished, 2, "receiver");
    assert_says(&finished, "--fsync", "receiver");
    assert!(Path::new(work.path()).read_dir().expect("tempdir").next().is_none());
}

#[test]
fn fsync_into_a_named_file_syncs_its_directory_after_the_rename() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src.bin");
    let data = util::write_random_file(&src, 300_000, 5);
    let out = util::subdir(work.path(), "out").join("named.bin");
    let log = work.path().join("recv.strace");
    let wrapper = strace(&log);
    let wrapper: Vec<&OsStr> = wrapper.iter().map(OsString::as_os_str).collect();
    let receiver = Receiver::try_start_env(&wrapper, &out, &["--fsync"], &[])
        .unwrap_or_else(|f| panic!("traced receiver did not start: {f:#?}"));
    assert_exit(&send(&src, &receiver.dest(), &[]), 0, "sender");
    assert_exit(&receiver.wait(), 0, "traced receiver");
    util::assert_file_holds(&out, &data, "named file");
    let calls = completed(&fs::read_to_string(&log).expect("reading the strace log"));
    let names: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["syncfs", "renameat2", "fsync"], "{calls:#?}");
}

#[test]
fn fsync_into_an_output_directory_it_creates_syncs_its_parent_too() {
    let work = tempfile::tempdir().expect("tempdir");
    // `--output new` relative to the receiver's directory (its parent is `.`), and an absolute
    // one below a directory of its own: each parent must gain the new name durably too.
    let absolute = util::subdir(work.path(), "sub").join("new");
    for (output, parent) in
        [(Path::new("new"), work.path()), (&absolute, &*work.path().join("sub"))]
    {
        let fsynced = fsyncs_creating(work.path(), output);
        let last = fsynced.last().expect("an fsync");
        assert!(last.contains(&format!("<{}>", parent.display())), "{output:?}: {fsynced:#?}");
    }
}

/// Sends two small files to `--fsync --output OUTPUT` (which does not exist yet), run from
/// `work` under `strace -y`; checks the call order and returns the `fsync` lines.
fn fsyncs_creating(work: &Path, output: &Path) -> Vec<String> {
    let (a, b) = (work.join("a.bin"), work.join("b.bin"));
    let (data_a, data_b) =
        (util::write_random_file(&a, 5000, 1), util::write_random_file(&b, 9, 2));
    let log = work.join("recv.strace");
    let script = format!(
        r#"cd "{}" && exec strace -y -f -o "{}" -e trace={} "$0" "$@""#,
        work.display(),
        log.display(),
        CALLS.join(",")
    );
    let shell: [&OsStr; 3] = ["sh".as_ref(), "-c".as_ref(), script.as_ref()];
    let receiver = Receiver::try_start_env(&shell, output, &["--fsync"], &[])
        .unwrap_or_else(|f| panic!("traced receiver did not start: {f:#?}"));
    let sent = util::send_paths(&[&a, &b], &receiver.dest(), &[]);
    assert_exit(&sent, 0, "sender");
    assert_exit(&receiver.wait(), 0, "traced receiver");
    let landed = work.join(output);
    util::assert_file_holds(&landed.join("a.bin"), &data_a, "first file");
    util::assert_file_holds(&landed.join("b.bin"), &data_b, "second file");
    let calls = completed(&fs::read_to_string(&log).expect("reading the strace log"));
    let names: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
    // The data, the two names, then the output directory (it gained them) and its parent.
    assert_eq!(names, ["syncfs", "linkat", "linkat", "fsync", "fsync"], "{calls:#?}");
    calls.into_iter().filter(|(n, _)| n == "fsync").map(|(_, line)| line).collect()
}

#[test]
fn fsync_holds_no_more_files_than_the_descriptor_limit_allows() {
    // 400 small files, each held open (an unnamed file) until its barrier, under a limit of
    // 300 descriptors: the receiver must sync and name them in batches, not run out.
    let work = tempfile::tempdir().expect("tempdir");
    let tree = util::subdir(work.path(), "many");
    let files: Vec<_> = (0..400)
        .map(|i| {
            let path = tree.join(format!("f{i:03}"));
            let data = util::write_random_file(&path, 100, i);
            (path, data)
        })
        .collect();
    let dst = util::subdir(work.path(), "dst");
    let script = r#"ulimit -n 300 && exec "$0" "$@""#;
    let shell: [&OsStr; 3] = ["sh".as_ref(), "-c".as_ref(), script.as_ref()];
    let receiver = Receiver::try_start_env(&shell, &dst, &["--fsync"], &[])
        .unwrap_or_else(|f| panic!("receiver under ulimit -n 300 did not start: {f:#?}"));
    let sent = send(&tree, &receiver.dest(), &[]);
    assert_exit(&sent, 0, "sender");
    assert_exit(&receiver.wait(), 0, "receiver under ulimit -n 300");
    for (path, data) in &files {
        let landed = dst.join(path.strip_prefix(work.path()).expect("below work"));
        util::assert_file_holds(&landed, data, "a file of the batched barrier");
    }
}

#[test]
fn fsync_where_no_unnamed_file_can_be_linked_fails_and_names_no_file() {
    if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tree = util::subdir(work.path(), "tree");
    for i in 0..10 {
        util::write_random_file(&tree.join(format!("f{i}")), 1000, i);
    }
    let dst = util::subdir(work.path(), "dst");
    // No CAP_DAC_READ_SEARCH and no /proc: every link of a held unnamed file fails.
    let Some(receiver) = Receiver::faulted("inject=linkat:error=ENOENT", &dst, &["--fsync"]) else {
        return;
    };
    let sent = send(&tree, &receiver.dest(), &[]);
    let received = receiver.wait();
    assert_ne!(sent.code(), Some(0), "sender:\n{}", sent.stderr);
    assert_exit(&received, 1, "receiver");
    assert_says(
        &received,
        "linking an unnamed file needs /proc or CAP_DAC_READ_SEARCH",
        "receiver",
    );
    let landed = dst.join("tree");
    let landed = if landed.exists() { util::dir_names(&landed) } else { Vec::new() };
    assert!(landed.is_empty(), "names put in place by a session that failed: {landed:?}");
}

/// A directory sync that fails after every file got its name (strace injects EIO into `fsync`)
/// leaves the files in place, whole: both ends exit 7 and say that they are in place but not
/// known to be durable, never that nothing was saved.
#[test]
fn fsync_whose_directory_sync_fails_keeps_the_files_and_says_not_durable() {
    if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tree = util::subdir(work.path(), "tree");
    let files: Vec<_> = (0..3)
        .map(|i| {
            let path = tree.join(format!("f{i}"));
            (path.clone(), util::write_random_file(&path, 5000, i))
        })
        .collect();
    let dst = util::subdir(work.path(), "dst");
    let Some(receiver) = Receiver::faulted("inject=fsync:error=EIO", &dst, &["--fsync"]) else {
        return;
    };
    let sent = send(&tree, &receiver.dest(), &[]);
    let received = receiver.wait();
    for (end, out) in [("receiver", &received), ("sender", &sent)] {
        assert_exit(out, 7, end);
        assert_says(out, "the files are in place, but not known to be durable (--fsync)", end);
        assert_says(out, "EIO", end);
    }
    for (path, data) in &files {
        let landed = dst.join(path.strip_prefix(work.path()).expect("below work"));
        util::assert_file_holds(&landed, data, "a file placed before the failed sync");
    }
}
