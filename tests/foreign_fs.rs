//! Receiving onto file systems that are not ext4 or tmpfs: one that refuses unnamed files
//! (`O_TMPFILE`, as vfat, NFS, CIFS and FUSE do), faked with strace; and a real FAT image through
//! FUSE (`fusefat`): no unnamed files, no hard links, no symlinks, no Unix modes, no
//! `RENAME_NOREPLACE`, names that differ only in case are one name.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use crate::util;
use crate::util::{
    Receiver, assert_file_holds, json_file, pseudo_random, send_paths, skip, subdir,
};

/// Files in `src/tree/d0`: `count` small ones of `len` bytes, `f0000`…, and `big` of 200 KB
/// (above the batch limit, so it goes through its own part file either way).
fn tree(src: &Path, count: usize, len: usize) -> PathBuf {
    let tree = subdir(src, "tree");
    let dir = subdir(&tree, "d0");
    for f in 0..count {
        fs::write(dir.join(format!("f{f:04}")), pseudo_random(len, f as u64)).expect("write");
    }
    fs::write(dir.join("big"), pseudo_random(200_000, 99)).expect("write");
    tree
}

/// Asserts that `dst/tree/d0` holds exactly what `src/tree/d0` does, and no part file.
fn assert_same_tree(src: &Path, dst: &Path) {
    let (from, to) = (src.join("tree").join("d0"), dst.join("tree").join("d0"));
    let names = util::dir_names(&to);
    assert_eq!(names, util::dir_names(&from), "the names that landed");
    for name in &names {
        assert_file_holds(&to.join(name), &fs::read(from.join(name)).expect("source"), name);
    }
}

#[test]
fn small_files_go_through_part_files_where_the_file_system_refuses_unnamed_files() {
    if let Some(why) = util::unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = tree(&src, 100, 1000);
    let log = work.path().join("recv.strace");
    // `-P .`: only calls whose path is "." (or a descriptor of strace's own directory, which
    // the receiver never opens) are traced and refused. The only `openat(dir, ".")` is the
    // unnamed file's (`O_TMPFILE`): the directories here are new, so the plan lists none.
    // The second `-P` follows one small file's part file by its descriptor (its writes),
    // which no `openat` names: that open is neither traced nor refused.
    let dir = fs::canonicalize(&dst).expect("canonical dst").join("tree").join("d0");
    let part = dir.join(".f0042.zcp-part");
    let mut strace: Vec<&OsStr> = ["strace", "-f", "-e", "trace=openat,write", "-P", "."]
        .iter()
        .chain(&["-e", "inject=openat:error=EOPNOTSUPP", "-P"])
        .map(OsStr::new)
        .collect();
    strace.extend([part.as_os_str(), OsStr::new("-o"), log.as_os_str()]);
    let receiver = Receiver::try_start_env(&strace, &dst, &["--json"], &[])
        .unwrap_or_else(|f| panic!("traced receiver did not start: {f:#?}"));
    let sent = send_paths(&[&tree], &receiver.dest(), &[]);
    let received = receiver.wait();
    util::assert_exit(&sent, 0, "sender");
    util::assert_exit(&received, 0, "receiver");
    assert_same_tree(&src, &dst);
    let report = received.json();
    for (name, path) in [("tree/d0/f0042", "buffered"), ("tree/d0/big", "splice")] {
        let file = json_file(&report, name);
        assert_eq!(file["saved_as"], dst.join(name).display().to_string(), "{name}: {file}");
        assert_eq!(file["path"], path, "{name}: {file}");
    }
    let trace = fs::read_to_string(&log).expect("reading the strace log");
    let refused = trace.lines().filter(|l| {
        l.contains("O_TMPFILE") && l.contains("EOPNOTSUPP") && l.ends_with("(INJECTED)")
    });
    // Each writer thread tries once at most; the first refusal turns unnamed files off.
    assert!((1..=2).contains(&refused.count()), "unnamed files refused:\n{trace}");
    let others = trace.lines().filter(|l| l.contains("openat(") && !l.contains("O_TMPFILE"));
    assert_eq!(others.count(), 0, "no other open was traced, so none was refused:\n{trace}");
    let into_part = trace.lines().filter(|l| l.contains("write(") && l.ends_with("= 1000"));
    assert_eq!(into_part.count(), 1, "f0042 written into its part file:\n{trace}");
}
