//! README examples run as a newcomer would, where zcp once did not do what the README says:
//! each test is the README's promise (the README is the contract; the code is what changed).

use std::fs;
use std::path::Path;

use crate::docs::shell;
use crate::util::{
    Finished, Process, Receiver, TOKEN, TOKEN_ENV, assert_exit, run, send_paths, subdir,
    write_random_file,
};

/// Runs the command a listening end printed in `line` (`on the sender: ZCP_TOKEN=T zcp …`) as a
/// user would paste it: with `sh`, in `cwd`, `FILE...` replaced by `path`, and the test token in
/// `ZCP_TOKEN` (as a user who gave the listening end its token has it). Returns the command and
/// how it ended.
pub(crate) fn run_printed(line: &str, marker: &str, path: &Path, cwd: &Path) -> (String, Finished) {
    let (_, printed) = line.split_once(marker).expect("the printed command");
    let printed = printed.to_string();
    let quoted = format!("'{}'", path.display());
    let command = printed.replace("FILE...", &quoted);
    (printed, run(shell(&command, cwd, &[(TOKEN_ENV, TOKEN)])))
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
    recv.process().wait_line("token ");
    let line = recv.process().wait_line("on the sender: ");
    let (printed, sent) = run_printed(&line, "on the sender: ", &file, work.path());
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
    sender.listening();
    sender.wait_line("token ");
    let line = sender.wait_line("on the receiver: ");
    let dst = subdir(work.path(), "dst");
    let (printed, received) = run_printed(&line, "on the receiver: ", &file, &dst);
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

/// A receiver given its token (`ZCP_TOKEN`) prints the sender's command too, with the token
/// left to the same variable, and the address it listens on: pasted, it works.
#[test]
fn the_sender_command_printed_by_a_receiver_with_a_given_token_works_as_pasted() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("notes.txt");
    let data = write_random_file(&file, 5000, 33);
    let dst = subdir(work.path(), "dst");
    let mut recv = Receiver::start(&dst, &[]);
    let line = recv.process().wait_line("on the sender: ");
    let expected = format!("ZCP_TOKEN=$ZCP_TOKEN zcp send FILE... {}", recv.addr());
    assert!(line.ends_with(&expected), "{line:?} should end with {expected:?}");
    let (printed, sent) = run_printed(&line, "on the sender: ", &file, work.path());
    assert_exit(&sent, 0, &format!("the printed command `{printed}`"));
    assert_exit(&recv.wait(), 0, "receiver");
    assert_eq!(fs::read(dst.join("notes.txt")).expect("the received file"), data);
}

/// Reverse mode: a listening sender given its token prints the receiver's command with the
/// address it listens on (once `--connect HOST:7878`, which exits 2 as pasted).
#[test]
fn the_receiver_command_printed_by_a_listening_sender_works_as_pasted() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("notes.txt");
    let data = write_random_file(&file, 5000, 34);
    let file_arg = file.to_string_lossy().into_owned();
    let mut sender = Process::start(&["send", "--listen", "127.0.0.1:0", &file_arg], &[]);
    let addr = sender.listening();
    let line = sender.wait_line("on the receiver: ");
    assert!(line.ends_with(&format!("--connect {addr}")), "{line:?}");
    let dst = subdir(work.path(), "dst");
    let (printed, received) = run_printed(&line, "on the receiver: ", &file, &dst);
    assert_exit(&received, 0, &format!("the printed command `{printed}`"));
    assert_exit(&sender.wait(), 0, "sender");
    assert_eq!(fs::read(dst.join("notes.txt")).expect("the received file"), data);
}

/// A receiver on every address (`0.0.0.0`) prints a command per address of the host that is
/// not loopback, and it works as pasted there. The host is a network namespace this test makes,
/// with one address on a veth pair.
#[test]
fn a_receiver_on_every_address_prints_the_hosts_address_and_it_works_as_pasted() {
    let Some(unshare) = netns_shell() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("notes.txt");
    let data = write_random_file(&file, 5000, 35);
    let dst = subdir(work.path(), "dst");
    let script = format!(
        r#"ip link add zcp0 type veth peer name zcp1
ip addr add {HOST_ADDR}/24 dev zcp0
ip link set zcp0 up; ip link set zcp1 up; ip link set lo up
zcp recv --listen 0.0.0.0:0 --output '{dst}' 2>recv.log &
recv=$!
trap 'kill $recv 2>/dev/null || true' EXIT
for _ in $(seq 200); do grep -q '^on the sender: ' recv.log && break; sleep 0.05; done
line=$(grep '^on the sender: ' recv.log)
echo "$line"
eval "$(printf '%s' "${{line#on the sender: }}" | sed "s|FILE\.\.\.|'{file}'|")"
wait $recv || {{ cat recv.log >&2; exit 1; }}"#,
        dst = dst.display(),
        file = file.display(),
    );
    let mut cmd =
        crate::util::wrapped(&unshare, &shell(&script, work.path(), &[(TOKEN_ENV, TOKEN)]));
    cmd.current_dir(work.path());
    let ran = run(cmd);
    assert_exit(&ran, 0, "the pasted command in the namespace");
    let printed: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(printed.len(), 1, "one address that is not loopback: {printed:?}");
    assert!(printed[0].contains(&format!(" FILE... {HOST_ADDR}:")), "{printed:?}");
    assert_eq!(fs::read(dst.join("notes.txt")).expect("the received file"), data);
}

/// The address the namespace's host has on its veth (a private range, never routed out).
const HOST_ADDR: &str = "10.211.0.1";

/// `unshare -rn` (a user and network namespace), when it and `ip` work here; else `None`
/// after `skip`.
fn netns_shell() -> Option<[&'static str; 2]> {
    let probe = ["-rn", "ip", "link", "add", "zcp0", "type", "veth", "peer", "name", "zcp1"];
    match crate::util::unusable("unshare", &probe) {
        Some(why) => {
            crate::util::skip(&format!("no network namespace with a veth pair here: {why}"));
            None
        }
        None => Some(["unshare", "-rn"]),
    }
}
