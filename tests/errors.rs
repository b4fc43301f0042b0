//! Failures through the real binary: peers that are not zcp, a sender killed mid-transfer,
//! missing sources, refused destinations. Each checks the exit code, the error text, and what
//! is (not) left on disk.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use crate::util;
use crate::util::{
    ClosedPort, Finished, Process, ReadOnlyMount, Receiver, SESSION, TOKEN, TOKEN_ENV,
    assert_file_holds, dir_names, run, send, send_cmd, skip, subdir, wait_until, write_random_file,
};

const NAME: &str = "payload.bin";

/// Connects to a fresh receiver, writes `garbage`, and checks it is ignored as not zcp: the
/// receiver says so in one line and goes on to serve a real sender.
fn receiver_turns_away(garbage: &[u8]) {
    let work = tempfile::tempdir().expect("tempdir");
    let mut receiver = Receiver::start(work.path(), &[]);
    let mut socket = TcpStream::connect(receiver.addr()).expect("connecting");
    socket.write_all(garbage).expect("writing garbage");
    let shown = String::from_utf8_lossy(garbage);
    let line = receiver.process().wait_line_within("ignored a connection", SESSION);
    assert!(line.contains("not a zcp peer"), "after {shown:?}, the receiver should say so: {line}");
    assert!(dir_names(work.path()).is_empty(), "after {shown:?}, files were created");
    let src = tempfile::tempdir().expect("tempdir");
    let data = write_random_file(&src.path().join(NAME), 1000, 9);
    let sent = send(&src.path().join(NAME), &receiver.dest(), &[]);
    let received = receiver.wait();
    assert_eq!(sent.code(), Some(0), "after {shown:?}, sender:\n{}", sent.stderr);
    assert_eq!(received.code(), Some(0), "after {shown:?}, receiver:\n{}", received.stderr);
    assert_file_holds(&work.path().join(NAME), &data, "the file sent after the garbage");
}

#[test]
fn receiver_turns_away_a_line_of_text() {
    receiver_turns_away(b"hello\n");
}

#[test]
fn receiver_turns_away_an_http_request() {
    receiver_turns_away(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

#[test]
pub(crate) fn sender_turns_away_an_http_server() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join(NAME);
    write_random_file(&src, 1000, 1);
    let server = TcpListener::bind("127.0.0.1:0").expect("binding the fake server");
    let dest = server.local_addr().expect("fake server address").to_string();
    let answer = thread::spawn(move || -> std::io::Result<Vec<u8>> {
        let (mut conn, _) = server.accept()?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut magic = [0u8; 8];
        conn.read_exact(&mut magic)?;
        conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")?;
        conn.shutdown(Shutdown::Write)?;
        // Read the rest until the sender hangs up: closing with unread bytes would send a
        // reset, and the sender might see that before the answer.
        let _ = conn.read_to_end(&mut Vec::new());
        Ok(magic.to_vec())
    });
    let sent = send(&src, &dest, &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let greeting = answer.join().expect("fake server thread").expect("fake server I/O");
    assert_eq!(greeting, util::protocol::MAGIC, "the sender greets with the magic first");
    assert_eq!(code, Some(4), "sender:\n{stderr}");
    assert!(stderr.contains("not a zcp peer"), "sender should say so:\n{stderr}");
}

#[test]
fn killed_sender_leaves_nothing_under_the_final_name() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    // Sparse: the content does not matter here, only that it takes a while to send.
    File::create(&src).and_then(|f| f.set_len(200 << 20)).expect("creating the source");
    let receiver = Receiver::start(&dst, &[]);
    // Whole (`--no-sparse`): as a sparse file it would cross in an instant.
    let extra = ["--method", "buffered", "--buffer-size", "4K", "--quiet", "--no-sparse"];
    let sender = Process::spawn(send_cmd(&[&src], &receiver.dest(), &extra, &[]));
    let part = dst.join(format!(".{NAME}.zcp-part"));
    wait_until(Duration::from_secs(10), "data in the part file", || {
        fs::metadata(&part).map_or(0, |m| m.len()) > 0
    });
    let killed = sender.kill();
    assert_eq!(
        killed.status.signal(),
        Some(9),
        "the sender finished before it could be killed: {killed:#?}"
    );

    let received = receiver.wait();
    assert_eq!(received.code(), Some(3), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("connection lost"), "receiver:\n{}", received.stderr);
    assert!(!dst.join(NAME).exists(), "a partial file appeared under the final name");
    let left = dir_names(&dst);
    assert!(
        left.is_empty() || left == [format!(".{NAME}.zcp-part")],
        "only the part file may remain: {left:?}"
    );
}

#[test]
pub(crate) fn missing_source_exits_7_naming_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let missing = work.path().join("no-such-file.bin");
    let sent = send(&missing, &ClosedPort::new().dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    assert_eq!(code, Some(7), "sender:\n{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "the path is named:\n{stderr}");
}

#[test]
pub(crate) fn existing_target_is_refused_without_force() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    write_random_file(&src, 5000, 21);
    fs::write(dst.join(NAME), b"original\n").expect("writing the existing target");

    let receiver = Receiver::start(&dst, &[]);
    let sent = send(&src, &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(5), "sender:\n{stderr}");
    assert!(stderr.contains("exists"), "sender should say the file exists:\n{stderr}");
    assert_eq!(received.code(), Some(5), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("exists"), "receiver:\n{}", received.stderr);
    assert_file_holds(&dst.join(NAME), b"original\n", "the existing target");
    assert_eq!(dir_names(&dst), [NAME], "no part file may be left");
}

#[test]
fn existing_target_is_replaced_with_force() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 5000, 22);
    fs::write(dst.join(NAME), b"original\n").expect("writing the existing target");

    let receiver = Receiver::start(&dst, &["--force"]);
    let sent = send(&src, &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert_file_holds(&dst.join(NAME), &data, "the replaced target");
    assert_eq!(dir_names(&dst), [NAME], "no part file may be left");
}

/// Starts a receiver that must fail before listening, and returns its exit code and stderr.
fn fails_before_listening(output: &Path) -> (Option<i32>, String) {
    match Receiver::try_start(output, &[]) {
        Ok(r) => panic!("receiver listens on {} with --output {}", r.addr(), output.display()),
        Err(finished) => {
            assert!(
                !finished.stderr.contains("listening on"),
                "printed an address before failing:\n{}",
                finished.stderr
            );
            (finished.code(), finished.stderr)
        }
    }
}

#[test]
fn output_in_a_missing_directory_fails_before_listening() {
    let work = tempfile::tempdir().expect("tempdir");
    let missing_dir = work.path().join("missing");
    let (code, stderr) = fails_before_listening(&missing_dir.join("sub").join("out.bin"));
    assert_ne!(code, Some(0), "receiver:\n{stderr}");
    assert_eq!(code, Some(7), "a missing directory is a local file error:\n{stderr}");
    assert!(stderr.contains("missing"), "the directory is named:\n{stderr}");
    assert!(!missing_dir.exists(), "the receiver created the directory");
}

#[test]
fn output_under_a_regular_file_fails_before_listening() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("plain.txt");
    fs::write(&file, b"not a directory\n").expect("writing the file");
    let (code, stderr) = fails_before_listening(&file.join("out.bin"));
    assert_eq!(code, Some(7), "a file in the way is a local file error:\n{stderr}");
    assert!(stderr.to_lowercase().contains("not a directory"), "receiver:\n{stderr}");
    assert_file_holds(&file, b"not a directory\n", "the regular file");
}

#[test]
fn read_only_destination_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    write_random_file(&src, 1000, 3);
    let _mount = match ReadOnlyMount::new(&dst) {
        Ok(m) => m,
        Err(why) => {
            return skip(&format!("no read-only bind mount: {why}"));
        }
    };
    // Root ignores permission bits, not a read-only mount: check that it really bites.
    if File::create(dst.join("probe")).is_ok() {
        return skip("the read-only bind mount is still writable");
    }
    let receiver = Receiver::start(&dst, &[]);
    let sent = send(&src, &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(5), "sender:\n{stderr}");
    assert!(stderr.contains("cannot create"), "sender should say why:\n{stderr}");
    assert_eq!(received.code(), Some(5), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("cannot create"), "receiver:\n{}", received.stderr);
    assert!(dir_names(&dst).is_empty(), "files appeared in a read-only directory");
}

/// Runs one session from `src` into a fresh directory below `work`, each end with its own
/// arguments and `ZCP_TOKEN` (or none), and returns both ends and the directory.
fn session_with_tokens(
    work: &Path,
    src: &Path,
    (recv_args, recv_token): (&[&str], Option<&str>),
    (send_args, send_token): (&[&str], Option<&str>),
) -> (Finished, Finished, PathBuf) {
    let dst = tempfile::tempdir_in(work).expect("a destination").keep();
    let receiver = Receiver::start_env(&dst, recv_args, &[(TOKEN_ENV, recv_token)]);
    let sent = run(send_cmd(&[src], &receiver.dest(), send_args, &[(TOKEN_ENV, send_token)]));
    (sent, receiver.wait(), dst)
}

#[test]
fn no_auth_and_token_file_override_a_token_in_the_environment() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join(NAME);
    let data = write_random_file(&src, 10_000, 4);
    let token_file = work.path().join("token");
    fs::write(&token_file, "from-the-file\n").expect("writing the token file");
    let file_arg = token_file.to_str().expect("a UTF-8 temp path");
    let (no_auth, file, from_file) =
        (&["--no-auth"][..], &["--token-file", file_arg][..], &["--token", "from-the-file"][..]);
    // Each case gives one end ZCP_TOKEN beside the option that must win over it; the other end
    // holds what that option means. Were ZCP_TOKEN to win, the ends would disagree (exit 8).
    let cases = [
        ("receiver --no-auth", (no_auth, Some(TOKEN)), (no_auth, None)),
        ("sender --no-auth", (no_auth, None), (no_auth, Some(TOKEN))),
        ("receiver --token-file", (file, Some(TOKEN)), (from_file, None)),
        ("sender --token-file", (from_file, None), (file, Some(TOKEN))),
    ];
    for (case, recv, send) in cases {
        let (sent, received, dst) = session_with_tokens(work.path(), &src, recv, send);
        assert_eq!(sent.code(), Some(0), "{case} with ZCP_TOKEN set: sender:\n{}", sent.stderr);
        assert_eq!(received.code(), Some(0), "{case}: receiver:\n{}", received.stderr);
        assert_file_holds(&dst.join(NAME), &data, case);
    }
}

/// A receiver under a file size limit (`ulimit -f`; here `prlimit --fsize`) that a file passes:
/// the write fails with EFBIG (SIGXFSZ is ignored, so the process is not killed), both ends say
/// which limit, exit 7, and the part file is kept for a resume under a higher limit.
#[test]
fn a_file_past_the_receivers_file_size_limit_names_the_limit_and_keeps_the_part() {
    if let Some(why) = util::unusable("prlimit", &["--fsize=1048576", "true"]) {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let data = write_random_file(&src.join(NAME), 3 << 20, 61);
    let limited = [std::ffi::OsStr::new("prlimit"), std::ffi::OsStr::new("--fsize=1048576")];
    let receiver = Receiver::try_start_env(&limited, &dst, &[], &[])
        .unwrap_or_else(|f| panic!("limited receiver did not start: {f:#?}"));
    let sent = send(&src.join(NAME), &receiver.dest(), &[]);
    let received = receiver.wait();
    let part = util::part_of(&dst, NAME);
    let why = format!(
        "writing {NAME}: past this process's file size limit (ulimit -f: 1048576 bytes); partial data kept in {}",
        part.display()
    );
    for (end, who) in [(&sent, "sender"), (&received, "receiver")] {
        util::assert_exit(end, 7, who);
        util::assert_says(end, &why, who);
    }
    assert_eq!(dir_names(&dst), [format!(".{NAME}.zcp-part")], "only the part file");
    let kept = fs::read(&part).expect("the part file");
    assert_eq!(kept, data[..kept.len()], "the part file holds the file's first bytes");
    assert_eq!(kept.len(), 1 << 20, "up to the limit");
}
