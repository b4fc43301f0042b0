//! Authentication through the real binary: the token from each of its three places, a generated
//! token, wrong and missing tokens, ends that disagree about `--no-auth`, and a recorded session
//! replayed to a fresh receiver. A refused session must write nothing at all, and a one-shot
//! receiver goes on waiting for a sender that authenticates.

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util;

use crate::util::{
    EnvVar, Fault, Finished, Proxy, Receiver, SESSION, TOKEN, TOKEN_ENV, assert_exit,
    assert_file_holds, assert_says, dir_names, run, send, send_cmd, subdir, write_in_background,
    write_random_file,
};
use util::protocol::{self, Message};

const NAME: &str = "secret.bin";

/// A source file of `len` bytes in `work/src`, and an empty `work/dst`.
fn setup(work: &Path, len: usize, seed: u64) -> (PathBuf, PathBuf, Vec<u8>) {
    let (src_dir, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, len, seed);
    (src, dst, data)
}

/// Starts `zcp recv --listen 127.0.0.1:0 --output DST RECV_ARGS…` with `recv_env`, runs
/// `zcp send SRC ADDR SEND_ARGS…` with `send_env` against it, and returns both ends' outcomes.
fn session(
    dst: &Path,
    (recv_args, recv_env): (&[&str], &[EnvVar<'_>]),
    src: &Path,
    (send_args, send_env): (&[&str], &[EnvVar<'_>]),
) -> (Finished, Finished) {
    let receiver = Receiver::start_env(dst, recv_args, recv_env);
    let sent = run(send_cmd(&[src], &receiver.dest(), send_args, send_env));
    (sent, receiver.wait())
}

fn assert_round_trip(sent: &Finished, received: &Finished, dst: &Path, data: &[u8]) {
    assert_exit(sent, 0, "sender");
    assert_exit(received, 0, "receiver");
    assert_file_holds(&dst.join(NAME), data, "the authenticated transfer");
}

fn assert_nothing_written(dst: &Path) {
    assert!(dir_names(dst).is_empty(), "nothing may be written, found {:?}", dir_names(dst));
}

#[test]
pub(crate) fn token_from_the_environment_on_both_ends() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 100_000, 1);
    let env: &[EnvVar<'_>] = &[(TOKEN_ENV, Some(TOKEN))];
    let (sent, received) = session(&dst, (&[], env), &src, (&[], env));
    assert_round_trip(&sent, &received, &dst, &data);
    assert!(
        !received.stderr.contains(TOKEN),
        "a given token is never printed:\n{}",
        received.stderr
    );
}

#[test]
fn token_from_a_file_on_both_ends() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 100_000, 2);
    // Only the first line counts, trimmed: files that differ after it hold the same token.
    let (recv_file, send_file) = (work.path().join("recv-token"), work.path().join("send-token"));
    fs::write(&recv_file, format!("  {TOKEN}  \nthe receiver's notes\n")).expect("token file");
    fs::write(&send_file, format!("{TOKEN}\nthe sender's notes\nand more\n")).expect("token file");
    let arg = |file: &Path| ["--token-file".to_string(), file.display().to_string()];
    let (recv_args, send_args) = (arg(&recv_file), arg(&send_file));
    let recv_args: Vec<&str> = recv_args.iter().map(String::as_str).collect();
    let send_args: Vec<&str> = send_args.iter().map(String::as_str).collect();
    let (sent, received) = session(&dst, (&recv_args, &[]), &src, (&send_args, &[]));
    assert_round_trip(&sent, &received, &dst, &data);
}

#[test]
fn token_from_the_command_line_on_both_ends() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 100_000, 3);
    let args = ["--token", TOKEN];
    let (sent, received) = session(&dst, (&args, &[]), &src, (&args, &[]));
    assert_round_trip(&sent, &received, &dst, &data);
}

#[test]
fn generated_token_is_printed_and_works() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 100_000, 4);
    let mut receiver = Receiver::start_env(&dst, &[], &[(TOKEN_ENV, None)]);
    let line = receiver.process().wait_line("token ");
    let token = line.split_whitespace().nth(1).expect("a token after `token `").to_string();
    let advice = receiver.process().wait_line("on the sender: ");
    assert!(
        advice.contains(&format!("ZCP_TOKEN={token} zcp send")),
        "the next line tells the sender what to set: {advice:?}"
    );
    let sent = run(send_cmd(&[&src], &receiver.dest(), &[], &[(TOKEN_ENV, Some(&token))]));
    let received = receiver.wait();
    assert_round_trip(&sent, &received, &dst, &data);
    let warned = received.stderr.contains("authentication is off");
    assert!(!warned, "a receiver with a token warned it has none:\n{}", received.stderr);
}

/// Waits until `receiver` logs that it ignored a connection, for a reason that says `why`, and
/// returns that line: the receiver goes on waiting for a sender that authenticates.
pub(crate) fn ignored_line(receiver: &mut Receiver, why: &str) -> String {
    let line = receiver.process().wait_line_within("ignored a connection from", SESSION);
    assert!(line.contains(why), "the receiver should say {why:?}: {line:?}");
    line
}

/// A sender with the right token, after a refused one: the receiver serves it and exits 0.
fn the_right_sender_is_served(receiver: Receiver, src: &Path, dst: &Path, data: &[u8]) {
    let sent = run(send_cmd(&[src], &receiver.dest(), &["--token", TOKEN], &[]));
    let received = receiver.wait();
    assert_round_trip(&sent, &received, dst, data);
}

#[test]
pub(crate) fn wrong_token_exits_8_and_the_receiver_serves_the_right_one() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 100_000, 5);
    let mut receiver = Receiver::start(&dst, &["--token", TOKEN]);
    let wrong = ["--token", "not-the-token"];
    let sent = run(send_cmd(&[&src], &receiver.dest(), &wrong, &[]));
    assert_exit(&sent, 8, "sender");
    assert_says(&sent, "wrong token", "sender");
    ignored_line(&mut receiver, "token is wrong");
    assert_nothing_written(&dst);
    assert!(receiver.process().running(), "a wrong token ended a one-shot receiver");
    the_right_sender_is_served(receiver, &src, &dst, &data);
}

#[test]
fn missing_token_exits_8_telling_how_to_set_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 100_000, 6);
    let mut receiver = Receiver::start(&dst, &["--token", TOKEN]);
    let sent = run(send_cmd(&[&src], &receiver.dest(), &[], &[(TOKEN_ENV, None)]));
    assert_exit(&sent, 8, "sender");
    assert_says(&sent, "requires a token", "sender");
    assert_says(&sent, "ZCP_TOKEN", "sender");
    assert_says(&sent, "--token-file", "sender");
    ignored_line(&mut receiver, "offered no token");
    assert_nothing_written(&dst);
    the_right_sender_is_served(receiver, &src, &dst, &data);
}

#[test]
fn token_against_a_no_auth_receiver_exits_8() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), 100_000, 7);
    let mut receiver = Receiver::start(&dst, &["--no-auth"]);
    let sent = run(send_cmd(&[&src], &receiver.dest(), &[], &[]));
    assert_exit(&sent, 8, "sender");
    assert_says(&sent, "--no-auth", "sender");
    ignored_line(&mut receiver, "--no-auth");
    assert_nothing_written(&dst);
}

#[test]
fn no_auth_on_both_ends_works_with_a_warning() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 100_000, 8);
    let no_auth = ["--no-auth"];
    let (sent, received) = session(&dst, (&no_auth, &[]), &src, (&no_auth, &[]));
    assert_round_trip(&sent, &received, &dst, &data);
    assert_says(&sent, "authentication is off", "sender");
    assert_says(&received, "authentication is off", "receiver");
    assert!(!received.stderr.contains("token "), "no token is made up:\n{}", received.stderr);
}

#[test]
fn replayed_session_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 64 << 10, 9);

    // Record what a real sender writes through a proxy, in a session that succeeds.
    let first = Receiver::start(&dst, &[]);
    let addr = first.addr();
    let proxy = Proxy::start(addr, Fault::Pass);
    let sent = send(&src, &proxy.dest(), &[]);
    let received = first.wait();
    let log = proxy.finish();
    assert_round_trip(&sent, &received, &dst, &data);
    assert!(log.from_sender.len() > 64 << 10, "the recording holds the whole session");

    // Replay it byte for byte to a fresh receiver with the same token.
    let replay_dst = subdir(work.path(), "replay");
    let mut second = Receiver::start(&replay_dst, &["--token", TOKEN]);
    let addr = second.addr();
    let mut socket = TcpStream::connect(addr).expect("connecting to the second receiver");
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    let writer = write_in_background(&socket, log.from_sender);
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    ignored_line(&mut second, "token is wrong");
    drop(socket);
    writer.join().expect("replay writer");
    assert_nothing_written(&replay_dst);
    // What the replay got back: the receiver's greeting and key exchange, then "wrong token";
    // never a proof of its own.
    let mut answer = &answer[protocol::HELLO_LEN..];
    assert!(matches!(protocol::read_message(&mut answer), Ok(Message::Pake { .. })));
    match protocol::read_message(&mut answer) {
        Ok(Message::Error { message, .. }) => assert_eq!(message, "wrong token"),
        other => panic!("expected ERROR \"wrong token\", got {other:?}"),
    }
    the_right_sender_is_served(second, &src, &replay_dst, &data);
}

#[test]
fn no_auth_receiver_refuses_a_sender_that_did_not_say_no_auth() {
    // A sender with no token at all is not a sender that said --no-auth.
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), 100_000, 10);
    let no_token: &[EnvVar<'_>] = &[(TOKEN_ENV, None)];
    let mut receiver = Receiver::start(&dst, &["--no-auth"]);
    let sent = run(send_cmd(&[&src], &receiver.dest(), &[], no_token));
    assert_exit(&sent, 8, "sender");
    assert_says(&sent, "the sender must say --no-auth too", "sender");
    ignored_line(&mut receiver, "did not say --no-auth");
    assert_nothing_written(&dst);
}

#[test]
fn random_bytes_come_from_dev_urandom_where_getrandom_is_refused() {
    if let Some(why) = util::unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return util::skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), 100_000, 9);
    // A seccomp filter that refuses getrandom(2) looks like this to the process.
    let refused = ["strace", "-f", "-o", "/dev/null", "-e", "inject=getrandom:error=EPERM"];
    let no_token: [EnvVar<'_>; 1] = [(TOKEN_ENV, None)];
    let wrapper = refused.map(std::ffi::OsStr::new);
    let mut receiver = Receiver::try_start_env(&wrapper, &dst, &[], &no_token)
        .unwrap_or_else(|f| panic!("receiver without getrandom(2) did not start: {f:#?}"));
    let line = receiver.process().wait_line("token ");
    let token = line.split_whitespace().nth(1).expect("a token after `token `").to_string();
    let sent = run(send_cmd(&[&src], &receiver.dest(), &[], &[(TOKEN_ENV, Some(&token))]));
    assert_round_trip(&sent, &receiver.wait(), &dst, &data);
}
