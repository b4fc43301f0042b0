//! Resuming through the real binary: a sender killed mid-file leaves `.NAME.zcp-part` behind,
//! and the next session sends only the rest when the part file's prefix matches the source,
//! the whole file when it does not or with `--no-resume`; a tree resumes with `--skip-existing`.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util;
use crate::util::{
    Process, Receiver, SESSION, json_file, json_str, json_u64, parse_json, pseudo_random, send_cmd,
    send_paths, subdir, wait_until,
};
use serde_json::Value;

const NAME: &str = "big.bin";
/// The size of the file in the main resume test.
const SIZE: u64 = 200 << 20;
/// The size in the other tests: enough to be still going at the kill, quicker to check.
const SMALLER: u64 = 24 << 20;
/// Bytes of the part file that must exist before the sender is killed.
const MIN_PART: u64 = 64 << 10;

/// A sparse file of `size` bytes with pseudo-random blocks at its start, middle and end, so a
/// misplaced or missing range shows in a comparison, without writing it all.
fn write_source(path: &Path, size: u64) {
    let file = File::create(path).expect("creating the source");
    file.set_len(size).expect("sizing the source");
    for (i, at) in [0, 1 << 20, size / 2 - 5, size - (1 << 20) - 7].into_iter().enumerate() {
        file.write_all_at(&pseudo_random((1 << 20) + 7, 40 + i as u64), at).expect("a block");
    }
}

/// Compares two files in 1 MiB pieces, naming the first differing byte.
fn assert_same_file(a: &Path, b: &Path, what: &str) {
    let (mut fa, mut fb) = (File::open(a).expect("opening a"), File::open(b).expect("opening b"));
    let (la, lb) = (fa.metadata().unwrap().len(), fb.metadata().unwrap().len());
    assert_eq!(lb, la, "{what}: {} is {lb} bytes, {} is {la}", b.display(), a.display());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    while at < la {
        let n = ((la - at) as usize).min(ba.len());
        fa.read_exact(&mut ba[..n]).expect("reading a");
        fb.read_exact(&mut bb[..n]).expect("reading b");
        if ba[..n] != bb[..n] {
            let i = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y).unwrap_or(0);
            panic!(
                "{what}: {} differs from {} at byte {}",
                b.display(),
                a.display(),
                at + i as u64
            );
        }
        at += n as u64;
    }
}

/// What a killed first run left: the source, the destination and the part file's length.
struct Interrupted {
    _work: tempfile::TempDir,
    src: PathBuf,
    dst: PathBuf,
    part: PathBuf,
    part_len: u64,
    size: u64,
}

/// Sends a file of `size` bytes (inside a directory, after a small file, when
/// `with_small_first`) slowly, kills the sender once the big file's part file holds data, and
/// checks the receiver gave up with the part file kept.
fn interrupted(size: u64, with_small_first: bool) -> Interrupted {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_root, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let (src, part) = if with_small_first {
        let tree = subdir(&src_root, "tree");
        fs::write(tree.join("a_small.txt"), b"small and first\n").expect("writing the small file");
        (tree, dst.join("tree").join(format!(".{NAME}.zcp-part")))
    } else {
        (src_root.clone(), dst.join(format!(".{NAME}.zcp-part")))
    };
    write_source(&src.join(NAME), size);
    let what = if with_small_first { src.clone() } else { src.join(NAME) };

    let receiver = Receiver::start(&dst, &[]);
    // Slowed so that it cannot finish before the kill: small buffered writes at a capped rate
    // (at least 3 s for the whole file; the kill comes after the first 64 KiB).
    let rate = (size / 3).to_string();
    // The source is sparse only to be cheap to make: it crosses whole (`--no-sparse`).
    let slow = ["--method", "buffered", "--buffer-size", "4K", "--limit-rate", &rate, "--quiet"];
    let slow = [&slow[..], &["--no-sparse"]].concat();
    let sender = Process::spawn(send_cmd(&[&what], &receiver.dest(), &slow, &[]));
    wait_until(Duration::from_secs(20), "data in the part file", || {
        fs::metadata(&part).map_or(0, |m| m.len()) >= MIN_PART
    });
    let killed = sender.kill();
    assert_eq!(killed.status.signal(), Some(9), "the sender ended before the kill: {killed:#?}");
    let received = receiver.wait();
    assert_eq!(received.code(), Some(3), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("partial data kept"), "receiver:\n{}", received.stderr);
    let part_len = fs::metadata(&part).expect("the part file is kept").len();
    assert!((MIN_PART..size).contains(&part_len), "part file of {part_len} bytes");
    Interrupted { src: what, dst, part, part_len, size, _work: work }
}

/// Runs the second session (sender `--json` plus `send_args`, receiver plus `recv_args`) and
/// returns both reports, after checking both ends succeeded.
fn second_run(run: &Interrupted, send_args: &[&str], recv_args: &[&str]) -> (Value, Value) {
    let mut recv = vec!["--json"];
    recv.extend_from_slice(recv_args);
    let receiver = Receiver::start(&run.dst, &recv);
    // Byte counts below are the whole file's: the sparse source crosses whole.
    let mut args = vec!["--json", "--no-sparse"];
    args.extend_from_slice(send_args);
    let sent = send_paths(&[&run.src], &receiver.dest(), &args);
    let (code, stdout, stderr) = (sent.code(), &sent.stdout, &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}\nreceiver:\n{}", received.stderr);
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert!(!run.part.exists(), "the part file is gone once the file is in place");
    (parse_json(stdout, stderr), received.json())
}

#[test]
fn a_killed_transfer_resumes_where_it_stopped() {
    let run = interrupted(SIZE, false);
    let (sender, receiver) = second_run(&run, &[], &[]);
    assert_same_file(&run.src, &run.dst.join(NAME), "the resumed file");
    for (end, report) in [("sender", &sender), ("receiver", &receiver)] {
        let what = format!("{end}: {report:#}");
        assert_eq!(json_u64(report, "/files/0/resumed_from"), run.part_len, "{what}");
        assert_eq!(json_u64(report, "/files/0/bytes"), SIZE - run.part_len, "{what}");
        assert_eq!(json_u64(report, "/bytes"), SIZE - run.part_len, "{what}");
        assert_eq!(json_u64(report, "/resumed_bytes"), run.part_len, "{what}");
        assert_eq!(report["files"][0]["status"], "sent", "{what}");
        assert_eq!(report["files"][0]["checksum_ok"], true, "{what}");
        assert_eq!(report["checksum"]["ok"], true, "{what}");
    }
    // Resuming does not cost the zero-copy path.
    assert_eq!(json_str(&sender, "/send/path"), "sendfile", "{sender:#}");
}

#[test]
fn a_part_file_that_differs_from_the_source_is_replaced_whole() {
    let run = interrupted(SMALLER, false);
    // Corrupt one byte inside the prefix the receiver would offer to keep.
    let mut part = fs::OpenOptions::new().read(true).write(true).open(&run.part).expect("part");
    let at = run.part_len / 2;
    let mut byte = [0u8; 1];
    part.seek(SeekFrom::Start(at)).and_then(|_| part.read_exact(&mut byte)).expect("reading");
    part.seek(SeekFrom::Start(at)).and_then(|_| part.write_all(&[!byte[0]])).expect("writing");
    drop(part);

    let (sender, receiver) = second_run(&run, &[], &[]);
    assert_same_file(&run.src, &run.dst.join(NAME), "the file sent whole");
    for (end, report) in [("sender", &sender), ("receiver", &receiver)] {
        let what = format!("{end}: {report:#}");
        assert_eq!(json_u64(report, "/files/0/resumed_from"), 0, "{what}");
        assert_eq!(json_u64(report, "/files/0/bytes"), run.size, "{what}");
        assert_eq!(json_u64(report, "/resumed_bytes"), 0, "{what}");
    }
    let reason = json_str(&sender, "/files/0/reason");
    assert!(reason.contains("differs"), "the sender says why it started over: {reason}");
}

#[test]
fn no_resume_sends_the_whole_file() {
    let run = interrupted(SMALLER, false);
    let (sender, receiver) = second_run(&run, &["--no-resume"], &[]);
    assert_same_file(&run.src, &run.dst.join(NAME), "the file sent whole");
    for (end, report) in [("sender", &sender), ("receiver", &receiver)] {
        let what = format!("{end}: {report:#}");
        assert_eq!(json_u64(report, "/files/0/resumed_from"), 0, "{what}");
        assert_eq!(json_u64(report, "/files/0/bytes"), run.size, "{what}");
        assert_eq!(json_u64(report, "/resumed_bytes"), 0, "{what}");
    }
    let reason = json_str(&sender, "/files/0/reason");
    assert!(reason.contains("--no-resume"), "the sender says why it ignored the part: {reason}");
}

#[test]
fn a_tree_resumes_with_skip_existing() {
    // The small file landed before the kill: without --skip-existing it would be refused as
    // existing; with it, it is skipped and the big one resumes.
    let run = interrupted(SMALLER, true);
    let (sender, receiver) = second_run(&run, &[], &["--skip-existing"]);
    assert_same_file(&run.src.join(NAME), &run.dst.join("tree").join(NAME), "the resumed file");
    for (end, report) in [("sender", &sender), ("receiver", &receiver)] {
        let what = format!("{end}: {report:#}");
        assert_eq!(json_file(report, "tree/a_small.txt")["status"], "skipped", "{what}");
        let big = json_file(report, &format!("tree/{NAME}"));
        assert_eq!(big["resumed_from"], run.part_len, "{what}");
        assert_eq!(big["bytes"], run.size - run.part_len, "{what}");
        assert_eq!(report["skipped"], 1, "{what}");
        assert_eq!(report["files_sent"], 1, "{what}");
    }
}

#[test]
fn a_part_file_longer_than_the_source_is_started_over() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let data = util::write_random_file(&src.join("f.bin"), 1000, 3);
    fs::write(dst.join(".f.bin.zcp-part"), pseudo_random(5000, 3)).expect("a stale part file");
    let receiver = Receiver::start(&dst, &["--json"]);
    let sent = send_paths(&[&src.join("f.bin")], &receiver.dest(), &["--json"]);
    let (code, stdout, stderr) = (sent.code(), &sent.stdout, &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    util::assert_file_holds(&dst.join("f.bin"), &data, "the file");
    assert_eq!(util::dir_names(&dst), ["f.bin"], "the stale part file is gone");
    let report = parse_json(stdout, stderr);
    assert_eq!(report["files"][0]["resumed_from"], 0, "{report:#}");
    assert_eq!(report["files"][0]["bytes"], 1000, "{report:#}");
}

/// Sends `what` slowly to `dest` (at least 3 s for `size` bytes, in small buffered writes),
/// the same command each time it is called.
fn slow_send(what: &Path, dest: &str, size: u64) -> std::process::Command {
    let rate = (size / 3).to_string();
    let slow = ["--method", "buffered", "--buffer-size", "4K", "--limit-rate", &rate];
    send_cmd(&[what], dest, &[&slow[..], &["--no-sparse"]].concat(), &[])
}

#[test]
fn a_one_shot_receiver_waits_for_its_killed_sender_and_the_same_command_resumes() {
    comeback(|sender| {
        let killed = sender.kill();
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "the sender ended before the kill: {killed:#?}"
        );
    });
}

#[test]
fn a_sender_stopped_by_ctrl_c_says_to_run_the_same_command_and_it_resumes() {
    comeback(|sender| {
        sender.signal(nix::sys::signal::Signal::SIGINT);
        let stopped = sender.wait();
        util::assert_exit(&stopped, 130, "the interrupted sender");
        util::assert_says(&stopped, "waits for this sender", "the interrupted sender");
        util::assert_says(&stopped, "run the same command again to resume", "the sender");
    });
}

/// A tree (a small file that lands whole, then a large one) sent slowly to a one-shot receiver
/// and cut off by `cut` once the large file's part holds data; then the same command again,
/// which must find the receiver waiting and resume.
fn comeback(cut: impl FnOnce(Process)) {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_root, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = subdir(&src_root, "tree");
    fs::write(tree.join("a_small.txt"), b"small and first\n").expect("writing the small file");
    write_source(&tree.join(NAME), SMALLER);
    let part = dst.join("tree").join(format!(".{NAME}.zcp-part"));
    let mut receiver = Receiver::start(&dst, &["--resume-wait", "120"]);
    let sender = Process::spawn(slow_send(&tree, &receiver.dest(), SMALLER));
    wait_until(Duration::from_secs(20), "data in the part file", || {
        fs::metadata(&part).map_or(0, |m| m.len()) >= MIN_PART
    });
    cut(sender);
    let waiting = receiver.process().wait_line_within("run the same command again", SESSION);
    assert!(waiting.contains("--resume-wait"), "{waiting}");
    assert!(receiver.process().running(), "the receiver exited instead of waiting");

    let again = util::run(slow_send(&tree, &receiver.dest(), SMALLER));
    let received = receiver.wait();
    util::assert_exit(&again, 0, "the same command again");
    util::assert_exit(&received, 0, "the receiver the sender came back to");
    util::assert_says(&again, "resumed", "the sender that came back");
    assert_same_file(&tree.join(NAME), &dst.join("tree").join(NAME), "the resumed file");
    let small = fs::read(dst.join("tree/a_small.txt")).expect("the small file");
    assert_eq!(small, b"small and first\n");
    assert!(!part.exists(), "the part file is gone once the file is in place");
}

#[test]
fn a_one_shot_receiver_gives_up_waiting_after_resume_wait() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    write_source(&src.join(NAME), SMALLER);
    let part = dst.join(format!(".{NAME}.zcp-part"));
    let mut receiver = Receiver::start(&dst, &["--resume-wait", "1"]);
    let sender = Process::spawn(slow_send(&src.join(NAME), &receiver.dest(), SMALLER));
    wait_until(Duration::from_secs(20), "data in the part file", || {
        fs::metadata(&part).map_or(0, |m| m.len()) >= MIN_PART
    });
    drop(sender.kill());
    receiver.process().wait_line_within("run the same command again", SESSION);
    let received = receiver.wait();
    util::assert_exit(&received, 3, "a receiver no sender came back to");
    util::assert_says(&received, "no sender came back within --resume-wait", "receiver");
    assert!(part.exists(), "the part file stays for a later resume");
}

#[test]
fn a_receiver_writing_to_standard_output_does_not_wait_for_its_sender() {
    // What went to standard output cannot be taken back: a second run would repeat it.
    let work = tempfile::tempdir().expect("tempdir");
    let src = subdir(work.path(), "src").join(NAME);
    write_source(&src, SMALLER);
    let receiver = Receiver::start(Path::new("-"), &["--resume-wait", "120"]);
    let sender = Process::spawn(slow_send(&src, &receiver.dest(), SMALLER));
    // At least 3 s for the whole file: a second in, it is mid-transfer.
    std::thread::sleep(Duration::from_secs(1));
    drop(sender.kill());
    let received = receiver.wait_for(Duration::from_secs(30));
    util::assert_exit(&received, 3, "a receiver into standard output cut off");
    assert!(!received.stderr.contains("--resume-wait"), "it waited:\n{}", received.stderr);
    assert!(!received.stdout_bytes.is_empty(), "no data had arrived before the cut");
}

#[test]
fn a_receiver_that_fetched_does_not_wait_for_its_sender_to_come_back() {
    // It has no port a sender could come back to: --resume-wait is for a listening receiver.
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    write_source(&src.join(NAME), SMALLER);
    let part = dst.join(format!(".{NAME}.zcp-part"));
    let rate = (SMALLER / 3).to_string();
    let slow = ["--method", "buffered", "--buffer-size", "4K", "--limit-rate", &rate];
    let mut listening = util::zcp_command(&["send", "--listen", "127.0.0.1:0", "--no-sparse"], &[]);
    listening.args(slow).arg(src.join(NAME));
    let mut sender = Process::spawn(listening);
    let addr = sender.listening().to_string();
    let mut fetch = util::zcp_command(&["recv", "--connect", &addr, "--output"], &[]);
    fetch.arg(&dst);
    let receiver = Process::spawn(fetch);
    wait_until(Duration::from_secs(20), "data in the part file", || {
        fs::metadata(&part).map_or(0, |m| m.len()) >= MIN_PART
    });
    drop(sender.kill());
    let received = receiver.wait_for(Duration::from_secs(30));
    util::assert_exit(&received, 3, "a fetching receiver cut off");
    assert!(!received.stderr.contains("--resume-wait"), "it waited:\n{}", received.stderr);
    assert!(part.exists(), "the part file stays for a later resume");
}
