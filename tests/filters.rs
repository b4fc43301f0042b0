//! The sender's filters through the real binary: `--exclude`, `--include` and
//! `--exclude-from` leave names out of the offer by gitignore's rules, an excluded directory is
//! not walked, the summary and `--json` count what was left out, and a bad pattern is a usage
//! error naming it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{
    Receiver, assert_exit, assert_says, json_u64, parse_json, send_paths, subdir, tree_listing,
    write_random_file,
};

/// A project tree: sources, object files, a `target/` and a `.git/` directory, and a file
/// named like the directory pattern (`docs/target`, a file).
fn project(root: &Path) -> PathBuf {
    let proj = subdir(root, "proj");
    let src = subdir(&proj, "src");
    write_random_file(&src.join("main.c"), 300, 1);
    write_random_file(&src.join("main.o"), 200, 2);
    write_random_file(&src.join("keep.o"), 100, 3);
    write_random_file(&proj.join("top.o"), 50, 4);
    let target = subdir(&proj, "target");
    write_random_file(&subdir(&target, "debug").join("zcp"), 4000, 5);
    let git = subdir(&proj, ".git");
    write_random_file(&git.join("HEAD"), 20, 6);
    let docs = subdir(&proj, "docs");
    write_random_file(&docs.join("target"), 10, 7);
    write_random_file(&docs.join("guide.md"), 10, 8);
    proj
}

/// Sends `proj` with `args` to a fresh receiver in `dst`; returns the sender's stderr and
/// its `--json` report.
fn send(proj: &Path, dst: &Path, args: &[&str]) -> (String, serde_json::Value) {
    let receiver = Receiver::start(dst, &[]);
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let sent = send_paths(&[proj], &receiver.dest(), &all);
    let received = receiver.wait();
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver");
    let report = parse_json(&sent.stdout, &sent.stderr);
    (sent.stderr, report)
}

#[test]
fn excluded_names_and_directories_never_reach_the_receiver_and_an_include_wins() {
    let work = tempfile::tempdir().expect("tempdir");
    let proj = project(work.path());
    let dst = subdir(work.path(), "dst");
    let args = ["--exclude", "target/", "--exclude", ".git", "--exclude", "*.o"];
    let (stderr, report) = send(&proj, &dst, &[&args[..], &["--include", "keep.o"]].concat());
    assert_eq!(
        tree_listing(&dst),
        [
            "proj/",
            "proj/docs/",
            "proj/docs/guide.md",
            "proj/docs/target",
            "proj/src/",
            "proj/src/keep.o",
            "proj/src/main.c",
        ],
        "a trailing slash spares the file named target; the include re-includes keep.o"
    );
    // target/, .git/, main.o, top.o: an excluded directory counts once.
    assert_eq!(json_u64(&report, "/excluded"), 4, "{report:#}");
    assert_says_text(&stderr, "4 entries excluded by filters");
    let names = report["files"].as_array().expect("files").len();
    assert_eq!(names, 7, "the offer holds only what was kept: {report:#}");
}

#[test]
fn an_anchored_pattern_matches_from_the_named_directory_only() {
    let work = tempfile::tempdir().expect("tempdir");
    let proj = project(work.path());
    let dst = subdir(work.path(), "dst");
    let (_, report) = send(&proj, &dst, &["--exclude", "/target", "--exclude", "/src/*.o"]);
    let listing = tree_listing(&dst);
    assert!(!listing.contains(&"proj/target/".to_string()), "{listing:#?}");
    assert!(listing.contains(&"proj/docs/target".to_string()), "not anchored there: {listing:#?}");
    assert!(!listing.iter().any(|n| n.starts_with("proj/src/") && n.ends_with(".o")));
    assert!(listing.contains(&"proj/top.o".to_string()), "{listing:#?}");
    assert_eq!(json_u64(&report, "/excluded"), 3, "{report:#}");
}

#[test]
fn an_exclude_from_file_takes_comments_blank_lines_and_negations() {
    let work = tempfile::tempdir().expect("tempdir");
    let proj = project(work.path());
    let dst = subdir(work.path(), "dst");
    let rules = work.path().join("rules");
    fs::write(&rules, "# build output\ntarget/\n\n.git/\n*.o\n!top.o\n   \n").expect("rules");
    let (stderr, _) = send(&proj, &dst, &["--exclude-from", rules.to_str().expect("utf-8")]);
    let listing = tree_listing(&dst);
    assert!(listing.contains(&"proj/top.o".to_string()), "{listing:#?}");
    for gone in ["proj/target/", "proj/.git/", "proj/src/main.o", "proj/src/keep.o"] {
        assert!(!listing.contains(&gone.to_string()), "{gone} sent: {listing:#?}");
    }
    assert_says_text(&stderr, "4 entries excluded by filters");
}

#[test]
fn a_bad_pattern_or_an_unreadable_rules_file_is_a_usage_error_naming_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let proj = project(work.path());
    let closed = crate::util::ClosedPort::new();
    let bad = send_paths(&[&proj], &closed.dest(), &["--exclude", "src/[oops"]);
    assert_exit(&bad, 2, "sender");
    assert_says(&bad, "--exclude \"src/[oops\"", "sender");
    assert_eq!(bad.stderr.lines().count(), 1, "one line: {}", bad.stderr);

    let rules = work.path().join("rules");
    fs::write(&rules, "ok\n*.[ch\n").expect("rules");
    let bad = send_paths(&[&proj], &closed.dest(), &["--exclude-from", rules.to_str().unwrap()]);
    assert_exit(&bad, 2, "sender");
    assert_says(&bad, &format!("{}:2 \"*.[ch\"", rules.display()), "sender");

    let missing = work.path().join("no-such-rules");
    let args = ["--exclude-from", missing.to_str().unwrap()];
    let bad = send_paths(&[&proj], &closed.dest(), &args);
    assert_exit(&bad, 2, "sender");
    assert_says(&bad, "no-such-rules", "sender");
}

fn assert_says_text(stderr: &str, needle: &str) {
    assert!(stderr.contains(needle), "should say {needle:?}:\n{stderr}");
}
