//! The static binary alone in an empty directory under chroot(2), as on a scratch container or
//! a bare host: no /dev, /proc or /etc. It sends and receives a file and a tree (also with
//! `--encrypt`), serves `--http` to curl outside, runs `doctor`, and says plainly why a host
//! name cannot resolve there and why `--events-fd` cannot work. The binary is the one
//! `ZCP_TEST_STATIC_BIN` names (`.ci/run` builds it); without it the tests skip, saying so.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    Finished, Process, Receiver, STARTUP, TOKEN, assert_exit, assert_file_holds, assert_says, run,
    send_paths, skip, tree_listing, unusable, write_random_file, zcp_command_via,
};

/// Names the static binary under test.
const STATIC_BIN: &str = "ZCP_TEST_STATIC_BIN";

/// Big enough for the zero-copy paths (and their pipes), not only the small-file batches.
const BIG: usize = 3 << 20;

/// A directory holding only the static binary, as `/zcp`, and what a test puts there: the
/// whole file system of a zcp run under `chroot`.
struct EmptyRoot {
    dir: tempfile::TempDir,
}

impl EmptyRoot {
    /// The root, or `None` after `skip` where there is no static binary or no chroot.
    fn new() -> Option<EmptyRoot> {
        let Some(bin) = std::env::var_os(STATIC_BIN) else {
            skip(&format!(
                "{STATIC_BIN} is not set: build the static binary (README \"Install\") and name \
                 it there"
            ));
            return None;
        };
        if !nix::unistd::geteuid().is_root() {
            skip("chroot(2) needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let bin = Path::new(&bin);
        place(bin, &dir.path().join("zcp"))
            .unwrap_or_else(|e| panic!("copying {STATIC_BIN}={}: {e}", bin.display()));
        let root = EmptyRoot { dir };
        if let Some(why) = root.unusable() {
            skip(&why);
            return None;
        }
        Some(root)
    }

    /// Why `chroot ROOT /zcp --version` fails, if it does. A copy's write descriptor, inherited
    /// by a child that another test forks meanwhile, makes exec fail with "Text file busy"
    /// until that child execs: that is waited out.
    fn unusable(&self) -> Option<String> {
        let deadline = Instant::now() + STARTUP;
        loop {
            let why = unusable("chroot", &[self.path_str(), "/zcp", "--version"])?;
            if !why.contains("Text file busy") || Instant::now() > deadline {
                return Some(why);
            }
            // Polling for the other child's exec, bounded by the deadline above.
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn path_str(&self) -> &str {
        self.dir.path().to_str().expect("a UTF-8 temporary directory")
    }

    /// Where `inner` (an absolute path inside the root) is, seen from outside.
    fn outside(&self, inner: &str) -> PathBuf {
        self.dir.path().join(inner.trim_start_matches('/'))
    }

    /// `chroot ROOT /zcp ARGS…` with the test token.
    fn zcp(&self, args: &[&str]) -> Command {
        let program = [OsStr::new("chroot"), self.dir.path().as_os_str(), OsStr::new("/zcp")];
        zcp_command_via(&program, args, &[])
    }

    /// A file of `BIG` bytes at `/data/big` and a small tree at `/data/tree`.
    fn with_data(self) -> EmptyRoot {
        fs::create_dir_all(self.outside("/data/tree/sub")).expect("creating /data/tree");
        write_random_file(&self.outside("/data/big"), BIG, 1);
        write_random_file(&self.outside("/data/tree/a"), 1000, 2);
        write_random_file(&self.outside("/data/tree/sub/b"), 200_000, 3);
        self
    }

    /// Asserts that `dir` holds `/data/big` and a copy of `/data/tree`.
    fn assert_copied_to(&self, dir: &Path) {
        let big = fs::read(self.outside("/data/big")).expect("reading /data/big");
        assert_file_holds(&dir.join("big"), &big, "the big file");
        assert_eq!(tree_listing(&dir.join("tree")), tree_listing(&self.outside("/data/tree")));
        for name in ["a", "sub/b"] {
            let sent = fs::read(self.outside("/data/tree").join(name)).expect("a tree file");
            assert_file_holds(&dir.join("tree").join(name), &sent, name);
        }
    }
}

/// Puts `bin` at `to`: a hard link, which opens nothing for writing, where both are on one file
/// system, else a copy.
fn place(bin: &Path, to: &Path) -> std::io::Result<()> {
    fs::hard_link(bin, to).or_else(|_| fs::copy(bin, to).map(drop))
}

/// Asserts a clean end: `code`, no panic, and no bare errno where a cause should be named.
#[track_caller]
fn assert_clean(f: &Finished, code: i32, who: &str) {
    assert_exit(f, code, who);
    assert!(!f.stderr.contains("OS Error"), "{who} printed a bare errno:\n{}", f.stderr);
}

#[test]
fn version_says_static() {
    let Some(root) = EmptyRoot::new() else { return };
    let f = run(root.zcp(&["--version"]));
    assert_clean(&f, 0, "zcp --version");
    assert!(f.stdout.contains(", static, "), "not a static build: {}", f.stdout);
}

#[test]
fn sends_a_file_and_a_tree_from_an_empty_root() {
    let Some(root) = EmptyRoot::new().map(EmptyRoot::with_data) else { return };
    let out = tempfile::tempdir().expect("a temporary directory");
    let receiver = Receiver::start(out.path(), &[]);
    let dest = receiver.dest();
    let sender = run(root.zcp(&["send", "/data/big", "/data/tree", &dest]));
    assert_clean(&sender, 0, "the chrooted sender");
    assert_says(&sender, "send: sendfile", "the chrooted sender");
    assert_exit(&receiver.wait(), 0, "the receiver");
    root.assert_copied_to(out.path());
}

/// A chrooted receiver into `/in` with `flags`, fed `/data/big` and `/data/tree` by a sender
/// outside with the same flags; returns what the receiver printed.
fn receive_in(root: &EmptyRoot, flags: &[&str]) -> Finished {
    fs::create_dir(root.outside("/in")).expect("creating /in");
    let mut args = vec!["recv", "--listen", "127.0.0.1:0", "--output", "/in"];
    args.extend_from_slice(flags);
    let mut receiver = Process::spawn(root.zcp(&args));
    let dest = receiver.listening().to_string();
    let (big, tree) = (root.outside("/data/big"), root.outside("/data/tree"));
    let sender = send_paths(&[&big, &tree], &dest, flags);
    assert_clean(&sender, 0, "the sender");
    let received = receiver.wait();
    assert_clean(&received, 0, "the chrooted receiver");
    root.assert_copied_to(&root.outside("/in"));
    received
}

#[test]
fn receives_a_file_and_a_tree_by_splice_in_an_empty_root() {
    let Some(root) = EmptyRoot::new().map(EmptyRoot::with_data) else { return };
    // splice(2) moves the bytes through a pipe sized without /proc/sys/fs/pipe-max-size.
    assert_says(&receive_in(&root, &[]), "recv: splice", "the chrooted receiver");
}

#[test]
fn receives_a_file_and_a_tree_encrypted_in_an_empty_root() {
    let Some(root) = EmptyRoot::new().map(EmptyRoot::with_data) else { return };
    assert_says(&receive_in(&root, &["--encrypt"]), "tls1.3", "the chrooted receiver");
}

#[test]
fn serves_http_to_curl_outside_an_empty_root() {
    let Some(root) = EmptyRoot::new().map(EmptyRoot::with_data) else { return };
    if let Some(why) = unusable("curl", &["--version"]) {
        return skip(&why);
    }
    let mut server =
        Process::spawn(root.zcp(&["send", "--http", "/data/big", "--listen", "127.0.0.1:0"]));
    let url = format!("http://{}/big", server.listening());
    let fetched = root.dir.path().join("fetched");
    let out = Command::new("curl")
        .args(["-sS", "-f", "-H", &format!("Authorization: Bearer {TOKEN}"), "-o"])
        .arg(&fetched)
        .arg(&url)
        .output()
        .expect("running curl");
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    assert_clean(&server.wait(), 0, "the chrooted HTTP sender");
    let big = fs::read(root.outside("/data/big")).expect("reading /data/big");
    assert_file_holds(&fetched, &big, "the file curl fetched");
}

#[test]
fn doctor_runs_in_an_empty_root() {
    let Some(root) = EmptyRoot::new().map(EmptyRoot::with_data) else { return };
    let f = run(root.zcp(&["doctor", "/data"]));
    assert_clean(&f, 0, "doctor");
    assert_says(&f, "/data: send by sendfile", "doctor");
}

#[test]
fn a_host_name_without_etc_is_a_clear_usage_error() {
    let Some(root) = EmptyRoot::new().map(EmptyRoot::with_data) else { return };
    let f = run(root.zcp(&["send", "/data/big", "localhost:9"]));
    assert_clean(&f, 2, "a send to localhost");
    assert_says(&f, "cannot resolve host localhost", "a send to localhost");
    assert_says(&f, "give a numeric address", "a send to localhost");
}

#[test]
fn events_fd_without_dev_says_what_is_missing() {
    let Some(root) = EmptyRoot::new().map(EmptyRoot::with_data) else { return };
    // Descriptor 2 is open for writing: what is missing is /dev/fd, not the descriptor.
    let f = run(root.zcp(&["send", "/data/big", "127.0.0.1:9", "--events-fd", "2"]));
    assert_clean(&f, 2, "--events-fd in an empty root");
    assert_says(&f, "--events-fd 2: there is no /dev/fd here", "--events-fd in an empty root");
}
