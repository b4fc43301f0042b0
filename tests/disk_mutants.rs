//! The receiver's disk code where `cargo mutants` found it untested: how many files a
//! `--fsync` barrier holds under a given descriptor limit (the soft limit raised to the hard
//! one first), counted in `syncfs` calls under strace.

use std::ffi::OsStr;
use std::fs;

use crate::durable::completed;
use crate::util::{self, Receiver, assert_exit, send, skip, unusable};

/// Small files in the tree of the barrier tests: more than one barrier holds at a limit of 300.
const MANY: usize = 400;

/// Sends `MANY` small files to `zcp recv --fsync` run by `sh -c "ulimit LIMIT && exec strace
/// … zcp recv …"`; checks every file arrived whole and returns how many `syncfs` calls (one
/// per barrier: the tree is on one file system) the receiver made.
fn barriers_under(limit: &str) -> Option<usize> {
    if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        skip(&why);
        return None;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tree = util::subdir(work.path(), "many");
    let files: Vec<_> = (0..MANY)
        .map(|i| {
            let path = tree.join(format!("f{i:03}"));
            let data = util::write_random_file(&path, 100, i as u64);
            (path, data)
        })
        .collect();
    let dst = util::subdir(work.path(), "dst");
    let log = work.path().join("recv.strace");
    let script = format!(
        r#"ulimit {limit} && exec strace -f -o '{}' -e trace=syncfs "$0" "$@""#,
        log.display()
    );
    let shell: [&OsStr; 3] = ["sh".as_ref(), "-c".as_ref(), script.as_ref()];
    let receiver = Receiver::try_start_env(&shell, &dst, &["--fsync"], &[])
        .unwrap_or_else(|f| panic!("receiver under ulimit {limit} did not start: {f:#?}"));
    let sent = send(&tree, &receiver.dest(), &[]);
    assert_exit(&sent, 0, "sender");
    assert_exit(&receiver.wait(), 0, &format!("receiver under ulimit {limit}"));
    for (path, data) in &files {
        let landed = dst.join(path.strip_prefix(work.path()).expect("below work"));
        util::assert_file_holds(&landed, data, "a file of the barrier");
    }
    let log = fs::read_to_string(&log).expect("reading the strace log");
    Some(completed(&log).iter().filter(|(name, _)| name == "syncfs").count())
}

#[test]
fn fsync_barriers_hold_half_the_descriptors_left_after_256_spare() {
    // Soft and hard limit 300: a barrier holds (300 - 256) / 2 = 22 files, so 400 files take
    // 18 full barriers and a last one of 4.
    let Some(barriers) = barriers_under("-n 300") else { return };
    assert_eq!(barriers, MANY.div_ceil(22), "barriers of 22 files each");
}

#[test]
fn fsync_raises_the_soft_descriptor_limit_to_the_hard_one() {
    // Soft 300 under hard 4096: raised to 4096, a barrier may hold (4096 - 256) / 2 = 1920
    // files, so the whole tree takes one.
    let Some(barriers) = barriers_under("-Sn 300 && ulimit -Hn 4096") else { return };
    assert_eq!(barriers, 1, "one barrier for the tree once the soft limit was raised");
}
