//! What a user reads when a transfer is cut short: an interrupted sender says what was
//! kept and how to resume, and the rerun says where it resumed; a stopped receiver is reported
//! as stopped; an idle receiver's Ctrl-C prints its summary; a peer's idle timeout is named on
//! both ends.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::util::{
    Process, Receiver, STARTUP, assert_exit, assert_file_holds, assert_says, part_of, send,
    send_cmd, subdir, wait_until, write_random_file,
};

const NAME: &str = "slow.bin";

/// A sender of a 16 MiB file paced at 2 MiB/s, and its receiver, once bytes have landed in
/// the receiver's part file.
fn transfer_in_progress(work: &std::path::Path) -> (Process, Receiver, Vec<u8>) {
    let (src_dir, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 16 << 20, 21);
    let receiver = Receiver::start(&dst, &[]);
    let sender = Process::spawn(send_cmd(&[&src], &receiver.dest(), &["--limit-rate", "2M"], &[]));
    let part = part_of(&dst, NAME);
    wait_until(STARTUP, "bytes in the part file", || {
        std::fs::metadata(&part).is_ok_and(|m| m.len() > 0)
    });
    (sender, receiver, data)
}

#[test]
fn interrupted_sender_says_what_was_kept_and_the_rerun_resumes() {
    let work = tempfile::tempdir().expect("tempdir");
    let (sender, receiver, data) = transfer_in_progress(work.path());
    sender.signal(Signal::SIGINT);
    let sent = sender.wait_for(Duration::from_secs(15));
    receiver.wait_for(Duration::from_secs(15));
    assert_exit(&sent, 130, "interrupted sender");
    assert_says(&sent, "stopped by SIGINT after", "interrupted sender");
    assert_says(&sent, "run the same command again to resume", "interrupted sender");
    let dst = work.path().join("dst");
    assert!(part_of(&dst, NAME).exists(), "the receiver kept the part file");

    let receiver = Receiver::start(&dst, &[]);
    let again = send(&work.path().join("src").join(NAME), &receiver.dest(), &[]);
    receiver.wait();
    assert_exit(&again, 0, "the rerun");
    assert_says(&again, &format!("sent {NAME} "), "the rerun");
    assert_says(&again, "(resumed at ", "the rerun");
    assert_file_holds(&dst.join(NAME), &data, "the resumed file");
}

#[test]
fn sender_stopped_by_sigterm_exits_143_with_the_resume_hint() {
    let work = tempfile::tempdir().expect("tempdir");
    let (sender, receiver, _) = transfer_in_progress(work.path());
    sender.signal(Signal::SIGTERM);
    let sent = sender.wait_for(Duration::from_secs(15));
    receiver.wait_for(Duration::from_secs(15));
    assert_exit(&sent, 143, "sender stopped by SIGTERM");
    assert_says(&sent, "stopped by SIGTERM after", "sender stopped by SIGTERM");
    assert_says(&sent, "run the same command again to resume", "sender stopped by SIGTERM");
}

#[test]
fn receiver_stopped_mid_transfer_is_reported_as_stopped_on_the_sender() {
    let work = tempfile::tempdir().expect("tempdir");
    let (sender, mut receiver, _) = transfer_in_progress(work.path());
    receiver.process().signal(Signal::SIGINT);
    let received = receiver.wait_for(Duration::from_secs(15));
    let sent = sender.wait_for(Duration::from_secs(15));
    assert_exit(&received, 130, "stopped receiver");
    assert_exit(&sent, 3, "sender");
    assert_says(&sent, "receiver shut down", "sender");
    assert!(!sent.stderr.contains("reset by peer"), "sender:\n{}", sent.stderr);
}

#[test]
fn idle_receiver_stopped_by_ctrl_c_prints_its_summary() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut receiver = Receiver::start(work.path(), &[]);
    receiver.process().signal(Signal::SIGINT);
    let received = receiver.wait_for(Duration::from_secs(15));
    assert_exit(&received, 130, "receiver");
    assert_says(&received, "served 0 sessions, 0 failed, stopped by SIGINT", "receiver");
}

#[test]
fn receivers_idle_timeout_is_named_on_both_ends() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let receiver = Receiver::start(&dst, &["--idle-timeout", "1"]);
    let mut cmd = send_cmd(&[std::path::Path::new("-")], &receiver.dest(), &["--name", "s"], &[]);
    let mut sender = Process::spawn_with_stdin(&mut cmd, Stdio::piped());
    let mut stdin = sender.stdin().expect("the sender's stdin");
    stdin.write_all(b"first bytes").expect("feeding the sender");
    // The sender now waits on its input; the receiver gives up after a second.
    let received = receiver.wait_for(Duration::from_secs(15));
    let _ = stdin.write_all(b"more, too late");
    drop(stdin);
    let sent = sender.wait_for(Duration::from_secs(15));
    assert_exit(&received, 3, "receiver");
    assert_says(&received, "--idle-timeout", "receiver");
    assert!(!received.stderr.contains("os error 11"), "receiver:\n{}", received.stderr);
    assert_exit(&sent, 3, "sender");
    assert_says(&sent, "--idle-timeout", "sender");
    assert!(!sent.stderr.contains("Broken pipe"), "sender:\n{}", sent.stderr);
}

#[test]
fn summary_lines_fit_100_columns() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join("big.iso");
    write_random_file(&src, 1 << 20, 22);
    let receiver = Receiver::start(&dst, &[]);
    let sent = send(&src, &receiver.dest(), &[]);
    let received = receiver.wait();
    assert_exit(&sent, 0, "sender");
    for (who, f) in [("sender", &sent), ("receiver", &received)] {
        for line in f.stderr.lines().filter(|l| !l.starts_with("zcp: warning")) {
            let width = line.chars().count();
            assert!(width <= 100, "{who}'s line is {width} columns:\n{line}");
        }
    }
    assert_says(&sent, "xxh3 ok", "sender");
}

#[test]
fn progress_bar_on_a_terminal_of_no_size_stays_on_one_line() {
    // `script` runs the sender on a pseudo-terminal that reports 0x0: indicatif assumes 80
    // columns, and every redraw must fit them (a longer bar wrapped into two padded lines).
    if let Some(why) = crate::util::unusable("script", &["--version"]) {
        return crate::util::skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join("a-file-with-a-rather-long-name-to-show-in-the-bar.bin");
    write_random_file(&src, 4 << 20, 23);
    let receiver = Receiver::start(&dst, &[]);
    let send =
        format!("{} send --limit-rate 4M {} {}", crate::util::ZCP, src.display(), receiver.dest());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qfec", &send, "/dev/null"]).env(crate::util::TOKEN_ENV, crate::util::TOKEN);
    let sent = crate::util::run(cmd);
    receiver.wait();
    assert_exit(&sent, 0, "sender on a pty");
    assert!(sent.stdout.contains("ETA"), "the bar was drawn:\n{:?}", sent.stdout);
    // The bar's redraws; the summary after it may wrap like any text.
    for segment in sent.stdout.split(['\r', '\n']).filter(|s| s.contains("ETA")) {
        let text = strip_escapes(segment);
        let width = text.trim_end().chars().count();
        assert!(width <= 80, "a {width}-column line on an 80-column terminal: {text:?}");
    }
}

/// `text` without its CSI escape sequences (`ESC [ … letter`).
fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn receivers_file_counter_follows_batched_small_files_on_a_terminal() {
    // `script` gives the receiver a terminal, so it draws its bar; the sender is slowed so the
    // bar redraws while the batched files land. Each redraw names `[done/total]`.
    if let Some(why) = crate::util::unusable("script", &["--version"]) {
        return crate::util::skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "tree"), subdir(work.path(), "dst"));
    for i in 0..200 {
        write_random_file(&src.join(format!("f{i:03}")), 8 << 10, 100 + i);
    }
    let recv = format!("{} recv --listen 127.0.0.1:0 --output {}", crate::util::ZCP, dst.display());
    let mut cmd = std::process::Command::new("sh");
    // The terminal's output goes to stderr, where the harness reads it line by line.
    cmd.args(["-c", &format!("script -qfec '{recv}' /dev/null >&2")])
        .env(crate::util::TOKEN_ENV, crate::util::TOKEN);
    let mut receiver = crate::util::Process::spawn(cmd);
    let addr = receiver.listening();
    let sent = crate::util::send_paths(&[&src], &addr.to_string(), &["--limit-rate", "400K"]);
    let received = receiver.wait();
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver on a pty");
    let counts: Vec<u32> = received
        .stderr
        .split(['\r', '\n'])
        .filter_map(|s| {
            let text = strip_escapes(s);
            let (_, rest) = text.split_once('[')?;
            let (done, total) = rest.split_once(']')?.0.split_once('/')?;
            (total == "200").then(|| done.parse().ok()).flatten()
        })
        .collect();
    assert!(!counts.is_empty(), "the bar was drawn:\n{:?}", received.stderr);
    let most = counts.iter().max().copied().unwrap_or(0);
    assert!(most > 100, "the counter stopped at {most} of 200 batched files: {counts:?}");
}
