//! How the ends find each other: a receiver that connects to a listening sender, IPv6 loopback,
//! a sender that retries until its receiver comes up, and connections that are refused or time
//! out (exit 3, quickly).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{
    ClosedPort, EnvVar, Process, TOKEN_ENV, assert_exit, assert_file_holds, assert_says,
    ipv6_loopback, run, send, send_cmd, skip, subdir, unusable, wrapped, write_random_file,
    zcp_command,
};

const NAME: &str = "hop.bin";

#[test]
fn reverse_connection_round_trips_with_auth() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 300_000, 1);
    let (sender, addr) = listening_sender(src, &[]);
    fetch_from(sender, addr, &dst, &[], &data);
}

#[test]
fn ipv6_loopback_round_trips() {
    if let Err(why) = ipv6_loopback() {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 300_000, 2);
    let mut cmd = zcp_command(&["recv", "--listen", "[::1]:0", "--output"], &[]);
    cmd.arg(&dst);
    let mut recv = Process::spawn(cmd);
    let addr = recv.listening();
    assert!(addr.is_ipv6(), "listening on {addr}");
    let sent = send(&src, &format!("[::1]:{}", addr.port()), &[]);
    let received = recv.wait();
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver");
    assert_file_holds(&dst.join(NAME), &data, "the IPv6 transfer");
}

#[test]
fn retry_waits_for_a_receiver_that_starts_later() {
    // strace shows when the sender retries; zcp itself prints nothing then.
    if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 300_000, 3);
    // Held, not released: the port refuses the sender and stays ours until zcp listens on it.
    let port = ClosedPort::new();
    let dest = port.dest();
    let send = send_cmd(&[&src], &dest, &["--retry", "20"], &[]);
    let mut sender = Process::spawn(wrapped(&["strace", "-f", "-e", "trace=connect"], &send));
    // A second connect(2) is a retry: the first attempt was refused.
    for _ in 0..2 {
        sender.wait_line("connect(");
    }
    let mut cmd = zcp_command(&["recv", "--listen", &dest, "--output"], &[]);
    cmd.arg(&dst);
    let mut recv = Process::spawn(cmd);
    recv.listening();
    drop(port);
    let sent = sender.wait();
    let received = recv.wait();
    assert_exit(&sent, 0, "retrying sender");
    assert_exit(&received, 0, "late receiver");
    assert_file_holds(&dst.join(NAME), &data, "the transfer after retries");
}

#[test]
pub(crate) fn connection_refused_exits_3_on_either_end() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join(NAME);
    write_random_file(&src, 1000, 4);
    let closed = ClosedPort::new();
    let dest = closed.dest();
    let sent = send(&src, &dest, &[]);
    assert_exit(&sent, 3, "sender");
    assert_says(&sent, "refused", "sender");
    assert_says(&sent, &dest, "sender");
    let mut recv = zcp_command(&["recv", "--connect", &dest, "--output"], &[]);
    recv.arg(work.path());
    let received = run(recv);
    assert_exit(&received, 3, "connecting receiver");
    assert_says(&received, "refused", "connecting receiver");
}

#[test]
fn retries_that_all_fail_say_how_many_attempts_were_made() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join(NAME);
    write_random_file(&src, 1000, 5);
    let closed = ClosedPort::new();
    let sent = send(&src, &closed.dest(), &["--retry", "2"]);
    assert_exit(&sent, 3, "sender whose retries were refused");
    assert_says(&sent, "gave up after 3 attempts (--retry 2)", "sender");
    assert_says(&sent, "refused", "sender");
    let once = send(&src, &closed.dest(), &[]);
    assert!(!once.stderr.contains("attempts"), "one attempt is not a retry:\n{}", once.stderr);
}

/// A listener whose accept queue is full, so that a further SYN goes unanswered and a connect
/// hangs until its timeout; `None` where the queue cannot be filled.
fn unanswering_listener() -> Option<(TcpListener, Vec<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
    let backlog = nix::sys::socket::Backlog::new(0).expect("backlog 0");
    nix::sys::socket::listen(&listener, backlog).expect("shrinking the backlog");
    let addr = listener.local_addr().expect("listener address");
    let mut queued = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => queued.push(s),
            Err(_) => return Some((listener, queued)),
        }
    }
    None
}

#[test]
fn connect_timeout_gives_up_with_exit_3() {
    let Some((listener, _queued)) = unanswering_listener() else {
        return skip("could not fill a listener's accept queue to make connect hang");
    };
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join(NAME);
    write_random_file(&src, 1000, 5);
    let dest = listener.local_addr().expect("listener address").to_string();
    let started = Instant::now();
    let sent = send(&src, &dest, &["--connect-timeout", "0.5"]);
    let took = started.elapsed();
    assert_exit(&sent, 3, "sender");
    assert_says(&sent, "timed out", "sender");
    assert!(took < Duration::from_secs(5), "a 0.5 s connect timeout took {took:?}");
}

#[test]
fn listening_sender_without_a_token_makes_one_for_the_receiver() {
    // As `zcp recv` does: the listening end makes the token and says how to use it.
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 10_000, 2);
    let (mut sender, addr) = listening_sender(src, &[(TOKEN_ENV, None)]);
    let line = sender.wait_line("token ");
    let token = line.split_whitespace().nth(1).expect("the token").to_string();
    let line = sender.wait_line("on the receiver: ");
    let advice = format!("ZCP_TOKEN={token} zcp recv --connect {addr}");
    assert!(line.contains(&advice), "the advice names the receiver's command: {line}");
    fetch_from(sender, addr, &dst, &[(TOKEN_ENV, Some(&token))], &data);
}

#[test]
fn connecting_receiver_without_a_token_asks_for_the_senders() {
    let closed = ClosedPort::new();
    let recv = zcp_command(&["recv", "--connect", &closed.dest()], &[(TOKEN_ENV, None)]);
    let received = run(recv);
    assert_exit(&received, 8, "connecting receiver");
    assert_says(&received, "the token the listening sender printed", "connecting receiver");
    let made_up = received.stderr.lines().any(|l| l.starts_with("token "));
    assert!(!made_up, "no token is made up:\n{}", received.stderr);
}

/// `zcp send SRC --listen 127.0.0.1:0` with `env`, and the address it listens on.
fn listening_sender(src: PathBuf, env: &[EnvVar<'_>]) -> (Process, SocketAddr) {
    let mut args = vec!["send".into(), src.into_os_string()];
    args.extend(["--listen", "127.0.0.1:0"].map(Into::into));
    let mut sender = Process::spawn(zcp_command(&args, env));
    let addr = sender.listening();
    (sender, addr)
}

/// Fetches from a listening `sender` with `zcp recv --connect` into `dst` and checks both ends
/// and the file (`data`).
#[track_caller]
fn fetch_from(sender: Process, addr: SocketAddr, dst: &Path, env: &[EnvVar<'_>], data: &[u8]) {
    let mut recv = zcp_command(&["recv", "--connect", &addr.to_string(), "--output"], env);
    recv.arg(dst);
    let received = run(recv);
    let sent = sender.wait();
    assert_exit(&sent, 0, "listening sender");
    assert_exit(&received, 0, "connecting receiver");
    assert_file_holds(&dst.join(NAME), data, "the reverse transfer");
}
