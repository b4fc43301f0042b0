//! What the receiver makes of an offer as a whole: modes under its umask, a session refused
//! by `--max-size` leaving no directories behind, a file entry nested under another file entry
//! refused alone, and the per-session bounds on entries, name bytes and depth.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::protocol::{
    Answer, Entry, MAX_DEPTH, MAX_ENTRIES, MAX_NAME, MAX_OFFER_NAMES, Message, RefuseCode,
};
use crate::util::{
    Receiver, assert_exit, assert_says, dir_entry, dir_names, file_entry, finish, offer, send_file,
    send_paths, skip, subdir, tree_listing, try_offer, unusable, write_random_file, zcp_client,
};

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode()
        & 0o7777
}

#[test]
fn the_receivers_umask_applies_to_offered_modes() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let recv = Receiver::start_umask(&dst, &[], 0o022);
    let mut socket = zcp_client(recv.addr());
    let data = b"mode test\n";
    let entries = vec![
        Entry { mode: 0o777, ..dir_entry(b"open") },
        Entry { mode: 0o777, ..file_entry(b"open/any.txt", Some(data.len() as u64)) },
        Entry { mode: 0o7777, ..file_entry(b"open/setuid.txt", Some(data.len() as u64)) },
    ];
    let plan = offer(&mut socket, entries);
    assert!(plan.answers.iter().skip(1).all(|a| matches!(a, Answer::Send { .. })), "{plan:?}");
    send_file(&mut socket, 1, 0, data);
    send_file(&mut socket, 2, 0, data);
    finish(&mut socket);
    assert_exit(&recv.wait(), 0, "receiver");
    let open = dst.join("open");
    assert_eq!(mode_of(&open), 0o755, "directory offered 0777 under umask 022");
    assert_eq!(mode_of(&open.join("any.txt")), 0o755, "file offered 0777 under umask 022");
    assert_eq!(mode_of(&open.join("setuid.txt")), 0o755, "setuid, setgid and sticky dropped");
}

#[test]
fn a_session_over_max_size_leaves_no_directories_behind() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = subdir(work.path(), "src");
    let tree = subdir(&src, "tree");
    write_random_file(&subdir(&subdir(&tree, "a"), "b").join("big.bin"), 2 << 20, 5);
    subdir(&tree, "empty");
    let dst = subdir(work.path(), "dst");
    // A directory that was there before is not this session's to remove.
    subdir(&subdir(&dst, "tree"), "kept");
    let recv = Receiver::start(&dst, &["--max-size", "1M"]);
    let sent = send_paths(&[&tree], &recv.dest(), &[]);
    let received = recv.wait();
    assert_exit(&sent, 5, "sender");
    assert_exit(&received, 5, "receiver");
    assert_says(&received, "--max-size", "receiver");
    assert_eq!(tree_listing(&dst), vec!["tree/", "tree/kept/"], "a refused session left these");
}

/// Offers `entries` (file contents `data` each), sends what the plan asks for, finishes, and
/// returns the answers and the receiver's exit code.
fn offer_files(dst: &Path, entries: Vec<Entry>, data: &[u8]) -> (Vec<Answer>, Option<i32>) {
    offer_files_to(Receiver::start(dst, &[]), entries, data)
}

/// `offer_files` to a receiver already started.
fn offer_files_to(recv: Receiver, entries: Vec<Entry>, data: &[u8]) -> (Vec<Answer>, Option<i32>) {
    let mut socket = zcp_client(recv.addr());
    let plan = offer(&mut socket, entries);
    for (i, answer) in plan.answers.iter().enumerate() {
        if matches!(answer, Answer::Send { .. }) {
            send_file(&mut socket, i as u32, 0, data);
        }
    }
    finish(&mut socket);
    (plan.answers, recv.wait().code())
}

#[track_caller]
fn assert_refused(answer: &Answer, needle: &str) {
    match answer {
        Answer::Refuse { code: RefuseCode::InvalidName, reason } => {
            assert!(reason.contains(needle), "reason {reason:?} should say {needle:?}")
        }
        other => panic!("expected a refusal saying {needle:?}, got {other:?}"),
    }
}

#[test]
fn a_file_nested_under_a_file_of_the_same_offer_is_refused_alone() {
    let data = b"a file\n";
    let size = Some(data.len() as u64);
    let work = tempfile::tempdir().expect("tempdir");

    let dst = subdir(work.path(), "file_first");
    let entries = vec![file_entry(b"a", size), file_entry(b"a/b", size), file_entry(b"c", size)];
    let (answers, code) = offer_files(&dst, entries, data);
    assert_refused(&answers[1], "inside \"a\", which this offer sends as a file");
    assert_eq!(code, Some(5), "a refused entry: exit 5 as for other refusals");
    assert_eq!(fs::read(dst.join("a")).expect("a landed as a file"), data);
    assert_eq!(fs::read(dst.join("c")).expect("c landed"), data);
    assert_eq!(dir_names(&dst), vec!["a", "c"], "no part file, no directory a/");

    let dst = subdir(work.path(), "nested_first");
    let entries = vec![file_entry(b"a/b", size), file_entry(b"a", size)];
    let (answers, code) = offer_files(&dst, entries, data);
    assert_refused(&answers[1], "earlier entries of this offer lie inside it");
    assert_eq!(code, Some(5));
    assert_eq!(fs::read(dst.join("a/b")).expect("a/b landed"), data);
    assert_eq!(tree_listing(&dst), vec!["a/", "a/b"]);
}

/// Offers `entries` and expects the whole session refused with an ERROR naming `bound`, the
/// receiver exiting 5 with nothing written.
fn assert_session_refused(entries: Vec<Entry>, bound: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let recv = Receiver::start(&dst, &[]);
    let mut socket = zcp_client(recv.addr());
    match try_offer(&mut socket, entries) {
        Ok(Message::Error { message, .. }) => assert!(message.contains(bound), "{message}"),
        other => panic!("an offer past {bound} was answered {other:?}"),
    }
    let received = recv.wait();
    assert_exit(&received, 5, "receiver");
    assert_says(&received, bound, "receiver");
    assert!(dir_names(&dst).is_empty(), "a refused offer left {:?}", dir_names(&dst));
}

#[test]
fn an_offer_deeper_than_max_depth_is_refused_whole() {
    let deep = [b"d/".repeat(MAX_DEPTH).as_slice(), b"f"].concat();
    assert_session_refused(vec![dir_entry(b"d"), file_entry(&deep, Some(1))], "MAX_DEPTH");
}

#[test]
fn an_offer_past_max_offer_names_is_refused_whole() {
    let count = MAX_OFFER_NAMES / MAX_NAME + 1;
    let entries = (0..count)
        .map(|i| {
            let mut name = format!("{i:08}").into_bytes();
            name.resize(MAX_NAME, b'n');
            file_entry(&name, Some(0))
        })
        .collect();
    assert_session_refused(entries, "MAX_OFFER_NAMES");
}

/// A chain as deep as a session takes, every level offered as a directory, then 64 files at
/// the bottom: each entry's directory is one step from the one before. Returns the entries
/// and the bottom directory's name.
fn deep_chain() -> (Vec<Entry>, String) {
    let mut entries = Vec::new();
    let mut path = String::new();
    for level in 0..MAX_DEPTH - 1 {
        if level > 0 {
            path.push('/');
        }
        path.push_str(&level.to_string());
        entries.push(dir_entry(path.as_bytes()));
    }
    for i in 0..64 {
        entries.push(file_entry(format!("{path}/f{i}").as_bytes(), Some(2)));
    }
    (entries, path)
}

#[test]
fn deep_distinct_paths_plan_and_land() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (entries, bottom) = deep_chain();
    let (answers, code) = offer_files(&dst, entries, b"ok");
    assert!(answers.iter().all(|a| !matches!(a, Answer::Refuse { .. })), "{answers:?}");
    assert_eq!(code, Some(0));
    assert_eq!(fs::read(dst.join(bottom).join("f63")).expect("the last file"), b"ok");
}

#[test]
fn a_deep_tree_costs_the_receiver_a_few_directory_opens_an_entry() {
    if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let log = work.path().join("trace.log");
    let strace: [&OsStr; 6] = [
        "strace".as_ref(),
        "-f".as_ref(),
        "-o".as_ref(),
        log.as_ref(),
        "-e".as_ref(),
        "trace=openat,mkdirat".as_ref(),
    ];
    let recv = Receiver::try_start_env(&strace, &dst, &[], &[])
        .unwrap_or_else(|f| panic!("receiver under strace: {f:#?}"));
    let (entries, _) = deep_chain();
    let count = entries.len();
    let (_, code) = offer_files_to(recv, entries, b"ok");
    assert_eq!(code, Some(0));
    let trace = fs::read_to_string(&log).expect("the trace");
    let opens = trace.lines().filter(|l| l.contains("openat(") || l.contains("mkdirat(")).count();
    eprintln!("{opens} openat/mkdirat calls for {count} entries");
    // Walking each entry's chain from the output directory cost ~135,000 calls here.
    assert!(opens < 8 * count, "{opens} openat/mkdirat calls for {count} entries");
}

#[test]
fn an_offer_past_max_entries_is_refused_whole() {
    // The count field is checked before anything is allocated: a malformed offer (exit 4).
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let recv = Receiver::start(&dst, &[]);
    let mut socket = zcp_client(recv.addr());
    let entries = vec![file_entry(b"f", Some(0)); MAX_ENTRIES as usize + 1];
    match try_offer(&mut socket, entries) {
        Ok(Message::Error { message, .. }) => {
            assert!(message.contains(&MAX_ENTRIES.to_string()), "{message}")
        }
        other => panic!("an offer past MAX_ENTRIES was answered {other:?}"),
    }
    let received = recv.wait();
    assert_exit(&received, 4, "receiver");
    assert!(dir_names(&dst).is_empty(), "a refused offer left {:?}", dir_names(&dst));
}
