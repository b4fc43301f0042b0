//! Hostile entry names from a hand-written peer: each unsafe name (`..`, absolute, empty or `.`
//! components, NUL) and each path through a symlink planted in the destination is refused,
//! entry by entry, while the safe entries of the same offer land; nothing is written outside
//! the destination, and the receiver exits 5.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::util;
use crate::util::{
    Receiver, dir_entry, file_entry, offer, send_file, subdir, tree_listing, zcp_client,
};
use util::protocol::{Answer, Entry, Message, RefuseCode, VerdictStatus};

/// Names no receiver may write: `..` components, absolute paths, empty and `.` components, NUL.
const HOSTILE: [&[u8]; 12] = [
    b"../x",
    b"..",
    b".",
    b"/abs",
    b"/tmp/zcp-test-evil",
    b"a/../b",
    b"a//b",
    b"./a",
    b"a/.",
    b"trailing/",
    b"x\0y",
    b"ok/../../x",
];

/// One entry of an offer and what the test expects for it.
struct Case {
    entry: Entry,
    data: Vec<u8>,
    safe: bool,
}

fn safe(name: &str, data: &[u8]) -> Case {
    Case {
        entry: file_entry(name.as_bytes(), Some(data.len() as u64)),
        data: data.to_vec(),
        safe: true,
    }
}

fn hostile(name: &[u8]) -> Case {
    Case { entry: file_entry(name, Some(4)), data: b"evil".to_vec(), safe: false }
}

/// Offers `cases` in one session to a receiver writing into `dst` (with `recv_args`), sends the
/// files it accepts, and returns the plan's answers and the receiver's exit code and stderr.
fn offer_cases(
    dst: &Path,
    recv_args: &[&str],
    cases: &[Case],
) -> (Vec<Answer>, Option<i32>, String) {
    let receiver = Receiver::start(dst, recv_args);
    let mut socket = zcp_client(receiver.addr());
    let plan = offer(&mut socket, cases.iter().map(|c| c.entry.clone()).collect());
    let mut sent = 0;
    for (index, (case, answer)) in cases.iter().zip(&plan.answers).enumerate() {
        if matches!(answer, Answer::Send { .. }) {
            send_file(&mut socket, index as u32, 0, &case.data);
            sent += 1;
        }
    }
    let summary = match util::try_finish(&mut socket) {
        Ok(Message::Summary(summary)) => summary,
        other => panic!("expected a SUMMARY, got {other:?}\nreceiver:\n{}", receiver.wait().stderr),
    };
    assert_eq!(summary.verdicts.len(), sent, "one verdict per file sent: {summary:?}");
    assert!(summary.verdicts.iter().all(|v| v.status == VerdictStatus::Ok), "{summary:?}");
    let received = receiver.wait();
    (plan.answers, received.code(), received.stderr)
}

#[test]
fn hostile_names_are_refused_and_safe_ones_in_the_same_offer_land() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let mut cases = vec![safe("first.txt", b"first\n")];
    cases.extend(HOSTILE.iter().map(|name| hostile(name)));
    // Hostile directory entries too: refused, and no reason to fail the rest of the session.
    for name in [&b"../d"[..], b"/absdir", b"d/../..", b"d\0"] {
        cases.push(Case { entry: dir_entry(name), data: Vec::new(), safe: false });
    }
    cases.push(Case { entry: dir_entry(b"sub"), data: Vec::new(), safe: true });
    cases.push(safe("sub/last.txt", b"last\n"));

    let (answers, code, stderr) = offer_cases(&dst, &[], &cases);
    for (case, answer) in cases.iter().zip(&answers) {
        let shown = String::from_utf8_lossy(&case.entry.name);
        match (case.safe, answer) {
            (true, Answer::Send { offset: 0 } | Answer::Skip) => {}
            (false, Answer::Refuse { code: RefuseCode::InvalidName, reason }) => {
                assert!(!reason.is_empty(), "{shown:?}: a refusal says why");
            }
            (safe, other) => panic!("{shown:?} (safe: {safe}): unexpected answer {other:?}"),
        }
    }
    assert_eq!(code, Some(5), "receiver:\n{stderr}");
    assert!(stderr.contains("refused"), "receiver:\n{stderr}");
    assert_eq!(tree_listing(&dst), ["first.txt", "sub/", "sub/last.txt"]);
    assert_eq!(fs::read(dst.join("sub/last.txt")).expect("last.txt"), b"last\n");
    assert_eq!(
        tree_listing(work.path()),
        ["dst/", "dst/first.txt", "dst/sub/", "dst/sub/last.txt"]
    );
    assert!(!Path::new("/tmp/zcp-test-evil").exists(), "an absolute name was written");
}

/// A destination holding `evil -> OUTSIDE` (a directory elsewhere) and `evil_file -> a file
/// elsewhere`, and the outside directory, which must stay as it is.
struct Planted {
    work: tempfile::TempDir,
    outside: std::path::PathBuf,
    dst: std::path::PathBuf,
}

fn planted() -> Planted {
    let work = tempfile::tempdir().expect("tempdir");
    let outside = subdir(work.path(), "outside");
    let dst = subdir(work.path(), "dst");
    symlink(&outside, dst.join("evil")).expect("planting the directory link");
    fs::write(outside.join("victim.txt"), b"untouched\n").expect("writing the victim");
    symlink(outside.join("victim.txt"), dst.join("evil_file")).expect("planting the file link");
    Planted { work, outside, dst }
}

fn assert_outside_untouched(p: &Planted) {
    assert_eq!(tree_listing(&p.outside), ["victim.txt"], "something was written outside");
    assert_eq!(fs::read(p.outside.join("victim.txt")).expect("victim"), b"untouched\n");
}

#[test]
fn paths_through_a_planted_symlink_are_refused() {
    let p = planted();
    let cases = [
        safe("good.txt", b"good\n"),
        safe("evil/file", b"evil\n"),
        safe("evil/deeper/file", b"evil\n"),
        Case { entry: dir_entry(b"evil"), data: Vec::new(), safe: false },
        Case { entry: dir_entry(b"evil/sub"), data: Vec::new(), safe: false },
        safe("evil_file", b"evil\n"),
        safe("evil_file/x", b"evil\n"),
    ];
    let (answers, code, stderr) = offer_cases(&p.dst, &[], &cases);
    assert_eq!(answers[0], Answer::Send { offset: 0 }, "good.txt");
    for (case, answer) in cases.iter().zip(&answers).skip(1) {
        let shown = String::from_utf8_lossy(&case.entry.name);
        let Answer::Refuse { reason, .. } = answer else {
            panic!("{shown}: expected a refusal, got {answer:?}");
        };
        let why = ["symlink", "exists", "not a directory"];
        assert!(why.iter().any(|w| reason.contains(w)), "{shown}: refused, but why? {reason}");
    }
    assert_eq!(code, Some(5), "receiver:\n{stderr}");
    assert_outside_untouched(&p);
    assert_eq!(tree_listing(&p.dst), ["evil@", "evil_file@", "good.txt"]);
    let everything =
        ["dst/", "dst/evil@", "dst/evil_file@", "dst/good.txt", "outside/", "outside/victim.txt"];
    assert_eq!(tree_listing(p.work.path()), everything, "nothing was written beside dst");
}

#[test]
fn force_replaces_a_planted_symlink_without_following_it() {
    // With --force, a file offered under the link's own name replaces the link itself; the
    // file it pointed to stays as it was.
    let p = planted();
    let cases = [safe("evil_file", b"replacement\n"), safe("evil/file", b"evil\n")];
    let (answers, code, stderr) = offer_cases(&p.dst, &["--force"], &cases);
    assert_eq!(answers[0], Answer::Send { offset: 0 }, "evil_file");
    assert!(matches!(answers[1], Answer::Refuse { .. }), "evil/file: {:?}", answers[1]);
    assert_eq!(code, Some(5), "receiver:\n{stderr}");
    assert_outside_untouched(&p);
    let replaced = fs::symlink_metadata(p.dst.join("evil_file")).expect("evil_file");
    assert!(replaced.file_type().is_file(), "evil_file is still a link");
    assert_eq!(fs::read(p.dst.join("evil_file")).expect("evil_file"), b"replacement\n");
}
