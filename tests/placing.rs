//! Putting a checked file in place when the world changed meanwhile: a name taken during the
//! transfer (by a new file, or by a case twin on exFAT, ASCII or not) is refused for that file
//! alone, with or without `--fsync`; EFBIG is blamed on a file size limit only where the part
//! reached it; `--skip-existing` takes a coarse mtime as the same only where the file system
//! keeps coarse mtimes.

use std::ffi::OsStr;
use std::fs;
use std::time::{Duration, SystemTime};

use crate::foreign_fs::Exfat;
use crate::util::{
    self, Receiver, assert_file_holds, file_entry, finish, offer, pseudo_random, send_file,
    send_paths, set_mtime, subdir, try_finish, zcp_client,
};
use util::protocol::{Message, ReadError, VerdictStatus};

/// On exFAT, `c/BIG` and `c/Big` are one name. The README and commit 015a112 promise that a
/// file whose name is taken when it is put in place "is refused alone and the session goes
/// on"; this sends `c/BIG`, `c/Big` and `c/other` with the given sizes and receiver options.
fn case_twins_on_exfat(
    len: usize,
    recv_args: &[&str],
) -> Option<(Exfat, util::Finished, util::Finished)> {
    let exfat = Exfat::mount()?;
    let work = tempfile::tempdir().expect("tempdir");
    let dir = subdir(&subdir(work.path(), "src"), "c");
    fs::write(dir.join("BIG"), pseudo_random(len, 1)).expect("write");
    fs::write(dir.join("Big"), pseudo_random(len, 2)).expect("write");
    fs::write(dir.join("other"), pseudo_random(len, 3)).expect("write");
    let receiver = Receiver::start(&exfat.mnt, recv_args);
    let sent = send_paths(&[&dir], &receiver.dest(), &[]);
    let received = receiver.wait();
    Some((exfat, sent, received))
}

/// The per-file refusal the session is promised to go on past: both ends exit 5 naming it,
/// the sender's report says the session finished (a summary came), and `other` landed.
fn assert_refused_alone(
    exfat: &Exfat,
    sent: &util::Finished,
    received: &util::Finished,
    len: usize,
) {
    let why = "c/Big: a file exists under that name: BIG";
    for (end, who) in [(sent, "sender"), (received, "receiver")] {
        util::assert_exit(end, 5, who);
        util::assert_says(end, why, who);
    }
    // Refused alone, the file is in the sender's report; a session that ended is "peer reported".
    assert!(!sent.stderr.contains("peer reported"), "the session ended:\n{}", sent.stderr);
    assert_file_holds(&exfat.mnt.join("c/other"), &pseudo_random(len, 3), "the file after it");
}

#[test]
fn a_small_file_whose_name_is_taken_at_commit_is_refused_alone() {
    let Some((exfat, sent, received)) = case_twins_on_exfat(1000, &[]) else { return };
    assert_refused_alone(&exfat, &sent, &received, 1000);
}

#[test]
fn with_fsync_a_file_whose_name_is_taken_at_commit_is_refused_alone() {
    for len in [200_000, 1000] {
        let Some((exfat, sent, received)) = case_twins_on_exfat(len, &["--fsync"]) else { return };
        assert_refused_alone(&exfat, &sent, &received, len);
    }
}

/// `--skip-existing` on a file system that keeps nanoseconds (the temporary directory: ext4,
/// tmpfs, overlayfs): a destination file of the same size whose mtime is a whole (even) second
/// is not the sender's file when the sender's is 1.5 s later with other bytes; the README's
/// contract is "skip files whose size and mtime already match; others that exist are still
/// refused".
#[test]
fn skip_existing_on_a_nanosecond_file_system_refuses_a_file_whose_mtime_differs_by_a_second() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = subdir(work.path(), "src");
    let dst = subdir(work.path(), "dst");
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    fs::write(src.join("conf"), b"version=2\n").expect("write");
    set_mtime(&src.join("conf"), base + Duration::from_millis(1500));
    fs::write(dst.join("conf"), b"version=1\n").expect("write");
    set_mtime(&dst.join("conf"), base);
    let receiver = Receiver::start(&dst, &["--skip-existing"]);
    let sent = send_paths(&[&src.join("conf")], &receiver.dest(), &[]);
    let received = receiver.wait();
    util::assert_exit(&sent, 5, "sender");
    util::assert_exit(&received, 5, "receiver");
    util::assert_says(&sent, "differs; the receiver's --force overwrites it", "sender");
    assert_file_holds(&dst.join("conf"), b"version=1\n", "the existing file, untouched");
}

/// On a file system that tells names apart by case (the temporary directory), a file that
/// appears under the name during the transfer is what took it. The refusal must not blame
/// case folding because an unrelated file whose name differs in case (`big`) sits beside it.
#[test]
fn a_name_taken_during_the_transfer_is_not_blamed_on_case_folding_where_case_is_kept() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    fs::write(dst.join("big"), b"unrelated").expect("write");
    let data = pseudo_random(200_000, 7);
    let receiver = Receiver::start(&dst, &["--json"]);
    let mut socket = zcp_client(receiver.addr());
    let size = Some(data.len() as u64);
    offer(&mut socket, vec![file_entry(b"Big", size), file_entry(b"other", size)]);
    // After the plan, before the bytes: someone else creates the name.
    fs::write(dst.join("Big"), b"came meanwhile").expect("write");
    send_file(&mut socket, 0, 0, &data);
    send_file(&mut socket, 1, 0, &data);
    let summary = finish(&mut socket);
    let received = receiver.wait();
    let statuses: Vec<VerdictStatus> = summary.verdicts.iter().map(|v| v.status).collect();
    assert_eq!(statuses, [VerdictStatus::Failed, VerdictStatus::Ok], "{summary:?}");
    assert_file_holds(&dst.join("Big"), b"came meanwhile", "the file that came meanwhile");
    let detail = &summary.verdicts[0].detail;
    assert!(
        detail.starts_with("a file appeared under that name during the transfer"),
        "the refusal sent to the sender: {detail}\nreceiver:\n{}",
        received.stderr
    );
}

/// A receiver with a file size limit far above the file (`ulimit -f` of 1 TiB, as a
/// distribution's limits.conf may set) writing onto a file system that stops at 4 GiB (vfat's
/// EFBIG, injected by strace as in `foreign_fs`): the cause is the file system, not the limit,
/// and a resume could never finish the part file.
#[test]
fn a_file_systems_efbig_is_not_blamed_on_a_file_size_limit_the_file_is_far_below() {
    for (program, args) in [
        ("strace", &["-f", "-o", "/dev/null", "true"][..]),
        ("prlimit", &["--fsize=1099511627776", "true"]),
    ] {
        if let Some(why) = util::unusable(program, args) {
            return util::skip(&why);
        }
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    fs::write(src.join("huge"), pseudo_random(8 << 20, 3)).expect("write");
    let wrapper = [
        "prlimit",
        "--fsize=1099511627776",
        "strace",
        "-f",
        "-o",
        "/dev/null",
        "-e",
        "inject=splice:error=EFBIG:when=3",
    ];
    let wrapper: Vec<&OsStr> = wrapper.iter().map(OsStr::new).collect();
    let receiver = Receiver::try_start_env(&wrapper, &dst, &[], &[])
        .unwrap_or_else(|f| panic!("wrapped receiver did not start: {f:#?}"));
    let sent = util::send(&src.join("huge"), &receiver.dest(), &[]);
    let received = receiver.wait();
    let why = "writing huge: the file system takes no file this large";
    for (end, who) in [(&sent, "sender"), (&received, "receiver")] {
        util::assert_exit(end, 7, who);
        util::assert_says(end, why, who);
    }
    assert!(util::dir_names(&dst).is_empty(), "left in dst: {:?}", util::dir_names(&dst));
}

/// The same race on ext4/tmpfs for a small file (batched, written as an unnamed file and
/// linked in): the name that came meanwhile must make it a refusal of that file alone, as for
/// a large one (verdict Failed), not end the session with the raw errno.
#[test]
fn a_small_file_whose_name_appears_during_the_transfer_is_refused_alone() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (answer, received) = small_file_taken_meanwhile(&dst);
    let Ok(Message::Summary(summary)) = answer else {
        panic!("no SUMMARY but {answer:?}\nreceiver ({:?}):\n{}", received.code(), received.stderr)
    };
    let statuses: Vec<VerdictStatus> = summary.verdicts.iter().map(|v| v.status).collect();
    assert_eq!(statuses, [VerdictStatus::Failed, VerdictStatus::Ok], "{summary:?}");
    assert_file_holds(&dst.join("small"), b"came meanwhile", "the file that came meanwhile");
    assert_file_holds(&dst.join("other"), b"next\n", "the file after it");
}

/// exFAT folds case beyond ASCII (its up-case table): `c/É` and `c/é` are one name too. The
/// refusal must name the twin and case folding, as it does for `BIG` and `Big`, not say that
/// a file appeared during the transfer (nothing did).
#[test]
fn a_non_ascii_case_twin_on_exfat_is_named_as_such() {
    let Some(exfat) = Exfat::mount() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let dir = subdir(&subdir(work.path(), "src"), "c");
    fs::write(dir.join("\u{c9}"), pseudo_random(200_000, 1)).expect("write");
    fs::write(dir.join("\u{e9}"), pseudo_random(200_000, 2)).expect("write");
    let receiver = Receiver::start(&exfat.mnt, &[]);
    let sent = send_paths(&[&dir], &receiver.dest(), &[]);
    let received = receiver.wait();
    for (end, who) in [(&sent, "sender"), (&received, "receiver")] {
        util::assert_exit(end, 5, who);
        util::assert_says(end, "this file system does not tell names apart by case", who);
    }
}

/// Offers two small files to a receiver into `dst`, creates the first one's name after the
/// plan, sends both and finishes: the receiver's answer and how it ended.
fn small_file_taken_meanwhile(
    dst: &std::path::Path,
) -> (Result<Message, ReadError>, util::Finished) {
    let receiver = Receiver::start(dst, &[]);
    let mut socket = zcp_client(receiver.addr());
    offer(&mut socket, vec![file_entry(b"small", Some(5)), file_entry(b"other", Some(5))]);
    fs::write(dst.join("small"), b"came meanwhile").expect("write");
    send_file(&mut socket, 0, 0, b"mine\n");
    send_file(&mut socket, 1, 0, b"next\n");
    let answer = try_finish(&mut socket);
    (answer, receiver.wait())
}
