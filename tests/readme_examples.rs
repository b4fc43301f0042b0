//! README examples run as a newcomer would, where zcp once did not do what the README says:
//! each test is the README's promise (the README is the contract; the code is what changed).

use std::fs;
use std::path::Path;

use crate::util::{
    Finished, Process, Receiver, TOKEN_ENV, assert_exit, run, send_paths, subdir,
    write_random_file, zcp_command,
};

/// Runs the command a listening end printed in `line` (`… (on the sender: ZCP_TOKEN=T zcp …)`)
/// as a user would: in `cwd`, with `PATH` and `HOST:` filled in. Returns it and how it ended.
fn run_printed(line: &str, marker: &str, path: &Path, port: u16, cwd: &Path) -> (String, Finished) {
    let (_, printed) = line.split_once(marker).expect("the printed command");
    let printed = printed.trim_end_matches(')').to_string();
    let (assignment, command) = printed.split_once(' ').expect("ZCP_TOKEN=… zcp …");
    let token = assignment.strip_prefix("ZCP_TOKEN=").expect("the token assignment");
    let args: Vec<String> = command
        .split_whitespace()
        .skip(1) // `zcp`
        .map(|word| match word {
            "PATH" => path.to_string_lossy().into_owned(),
            w if w.starts_with("HOST:") => format!("127.0.0.1:{port}"),
            w => w.to_string(),
        })
        .collect();
    let mut cmd = zcp_command(&args, &[(TOKEN_ENV, Some(token))]);
    cmd.current_dir(cwd);
    (printed, run(cmd))
}

/// "zcp recv --encrypt --output ./incoming/   # prints the token and the sender's command"
/// (Encryption): the printed command, run as printed (PATH and HOST filled in), must work.
#[test]
fn the_sender_command_printed_by_an_encrypting_receiver_works() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("big.iso");
    let data = write_random_file(&file, 100_000, 31);
    let dst = work.path().join("incoming/"); // as the README writes it: a directory
    let mut recv = Receiver::start_env(&dst, &["--encrypt"], &[(TOKEN_ENV, None)]);
    let line = recv.process().wait_line("token ");
    let port = recv.addr().port();
    let (printed, sent) = run_printed(&line, "(on the sender: ", &file, port, work.path());
    assert_exit(&sent, 0, &format!("the printed command `{printed}`"));
    assert_exit(&recv.wait(), 0, "receiver");
    assert_eq!(fs::read(dst.join("big.iso")).expect("the received file"), data);
}

/// Reverse mode under `--encrypt` (Authentication, Encryption: "also `send --listen` / `recv
/// --connect`"): the receiver's command a listening sender prints must work as printed.
#[test]
fn the_receiver_command_printed_by_an_encrypting_listening_sender_works() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("big.iso");
    let data = write_random_file(&file, 100_000, 32);
    let file_arg = file.to_string_lossy().into_owned();
    let args = ["send", "--listen", "127.0.0.1:0", "--encrypt", &file_arg];
    let mut sender = Process::start(&args, &[(TOKEN_ENV, None)]);
    let port = sender.listening().port();
    let line = sender.wait_line("token ");
    let dst = subdir(work.path(), "dst");
    let (printed, received) = run_printed(&line, "(on the receiver: ", &file, port, &dst);
    assert_exit(&received, 0, &format!("the printed command `{printed}`"));
    assert_exit(&sender.wait(), 0, "sender");
    assert_eq!(fs::read(dst.join("big.iso")).expect("the received file"), data);
}

/// "a session that moved nothing says so (`sent nothing: 1 file (1 refused)`)" (Use): also
/// when the one file offered sits in a directory the receiver already has.
#[test]
fn a_session_that_moved_nothing_says_so_when_its_directory_exists() {
    let work = tempfile::tempdir().expect("tempdir");
    let top = subdir(&subdir(work.path(), "src"), "top");
    fs::write(top.join("taken.txt"), b"new\n").expect("writing the source");
    let dst = subdir(work.path(), "dst");
    fs::write(subdir(&dst, "top").join("taken.txt"), b"old\n").expect("writing the target");
    let recv = Receiver::start(&dst, &[]);
    let sent = send_paths(&[&top], &recv.dest(), &[]);
    assert_exit(&sent, 5, "sender");
    assert_exit(&recv.wait(), 5, "receiver");
    let summary = sent.stderr.lines().next().unwrap_or_default();
    assert!(summary.starts_with("sent nothing: 1 file"), "{}", sent.stderr);
}
