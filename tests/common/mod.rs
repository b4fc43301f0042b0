//! Helpers shared by the integration tests: a `zcp recv` child on port 0 that is killed on drop,
//! `zcp send` with a deadline, both holding the shared test token so every session
//! authenticates, deterministic test data, a client that speaks the protocol (greeting, token
//! proofs, offer, files, finish), and assertions on directories and JSON reports. Each test
//! crate uses a subset of them.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use assert_cmd::assert::Assert;
use serde_json::Value;
use zcp::link::auth::Token;
use zcp::protocol::{
    self, Entry, EntryKind, FileEnd, Hello, Message, Offer, Plan, ReadError, SideStats, Summary,
};

/// The binary under test.
pub const ZCP: &str = env!("CARGO_BIN_EXE_zcp");
/// How long a receiver may take to print its address.
pub const STARTUP: Duration = Duration::from_secs(10);
/// How long one session may take, at either end, before the test gives up on it.
pub const SESSION: Duration = Duration::from_secs(60);
/// The token every helper gives both ends (through `ZCP_TOKEN`) unless told otherwise.
pub const TOKEN: &str = "zcp-test-token-7f3a-91c2";
/// The environment variable both ends read the token from.
pub const TOKEN_ENV: &str = "ZCP_TOKEN";

/// An environment change for a child: `(NAME, Some(value))` sets, `(NAME, None)` removes.
pub type EnvVar<'a> = (&'a str, Option<&'a str>);

/// Whether `args` leave the token to the environment, i.e. name none of `--no-auth`,
/// `--token` or `--token-file` (clap refuses those next to a `ZCP_TOKEN` it reads as
/// `--token`).
pub fn default_auth<S: AsRef<OsStr>>(args: &[S]) -> bool {
    !args.iter().any(|a| {
        let a = a.as_ref().to_string_lossy();
        a == "--no-auth"
            || a == "--token"
            || a == "--token-file"
            || a.starts_with("--token=")
            || a.starts_with("--token-file=")
    })
}

/// Gives `cmd` the test token in `ZCP_TOKEN` (or no `ZCP_TOKEN` at all when `args` name their
/// own authentication), then applies `env`.
pub fn set_auth_env<S: AsRef<OsStr>>(cmd: &mut Command, args: &[S], env: &[EnvVar<'_>]) {
    if default_auth(args) {
        cmd.env(TOKEN_ENV, TOKEN);
    } else {
        cmd.env_remove(TOKEN_ENV);
    }
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
}

/// `zcp ARGS…` with the test token (see `set_auth_env`), in its own process group, with
/// stdin closed and stdout and stderr piped, ready for `Process::spawn`.
pub fn zcp_command<S: AsRef<OsStr>>(args: &[S], env: &[EnvVar<'_>]) -> Command {
    let mut cmd = Command::new(ZCP);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.process_group(0);
    set_auth_env(&mut cmd, args, env);
    cmd
}

/// A finished process: how it ended and everything it printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// Standard output as text (lossy: see `stdout_bytes` for the exact bytes).
    pub stdout: String,
    pub stderr: String,
    /// Standard output, byte for byte (`zcp recv --output -` writes the file there).
    pub stdout_bytes: Vec<u8>,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The JSON report on stdout; panics with the whole output when it is not JSON.
    pub fn json(&self) -> Value {
        parse_json(&self.stdout, &self.stderr)
    }
}

/// A `zcp` child whose output is collected in the background. Its process group is killed on
/// drop, so it never outlives its test, even when it runs under a wrapper such as strace.
pub struct Process {
    child: Child,
    reaped: bool,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<String>>,
    first_line: Option<mpsc::Receiver<String>>,
}

impl Process {
    /// Spawns `cmd`, which must pipe stdout and stderr (`zcp_command` does), in its own
    /// process group so that killing the group reaches a wrapper's children too.
    pub fn spawn(mut cmd: Command) -> Process {
        let mut child = cmd.process_group(0).spawn().expect("spawning zcp");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (first_line, first_line_rx) = mpsc::channel();
        Process {
            child,
            reaped: false,
            stdout: Some(thread::spawn(move || read_bytes(stdout))),
            stderr: Some(thread::spawn(move || read_stderr(stderr, first_line))),
            first_line: Some(first_line_rx),
        }
    }

    /// Spawns `zcp ARGS…` (see `zcp_command`).
    pub fn start<S: AsRef<OsStr>>(args: &[S], env: &[EnvVar<'_>]) -> Process {
        Process::spawn(zcp_command(args, env))
    }

    /// The child's standard input, when the command piped it.
    pub fn stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line of stderr, without its newline, once complete; `Err` when stderr
    /// closed first or nothing came within `limit`. Only the first call gets it.
    pub fn first_line(&mut self, limit: Duration) -> Result<String, mpsc::RecvTimeoutError> {
        match &self.first_line {
            Some(rx) => {
                let line = rx.recv_timeout(limit);
                self.first_line = None;
                line
            }
            None => Err(mpsc::RecvTimeoutError::Disconnected),
        }
    }

    /// Whether the child still runs.
    pub fn running(&mut self) -> bool {
        !self.reaped && matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` to the child alone (not its group), while it has not been reaped.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        use nix::unistd::Pid;
        if !self.reaped {
            let _ = nix::sys::signal::kill(Pid::from_raw(self.child.id() as i32), signal);
        }
    }

    /// Waits for the child to exit (panicking after `SESSION`) and collects its output.
    pub fn wait(self) -> Finished {
        self.wait_for(SESSION)
    }

    /// Waits at most `limit` for the child to exit; panics (after killing it) past that.
    pub fn wait_for(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait().expect("polling zcp") {
                Some(status) => {
                    self.reaped = true;
                    return self.collect(status);
                }
                None if Instant::now() >= deadline => {
                    let finished = self.kill();
                    panic!("zcp still running after {limit:?}, killed: {finished:#?}");
                }
                None => thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Kills the child's group with SIGKILL and collects what it printed.
    pub fn kill(&mut self) -> Finished {
        self.kill_group();
        let status = self.child.wait().expect("reaping zcp");
        self.reaped = true;
        self.collect(status)
    }

    fn collect(&mut self, status: ExitStatus) -> Finished {
        let stdout_bytes = self.stdout.take().map(|h| h.join().unwrap_or_default());
        let stdout_bytes = stdout_bytes.unwrap_or_default();
        Finished {
            status,
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stderr: self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default(),
            stdout_bytes,
        }
    }

    /// Kills the child and anything it started (a wrapper's child). Only before the leader
    /// is reaped: until then its pid, the group id, cannot name another group.
    fn kill_group(&self) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        if !self.reaped {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

/// A `zcp recv --listen 127.0.0.1:0` child holding the test token (unless its arguments name
/// their own authentication). Killed on drop.
pub struct Receiver {
    process: Process,
    addr: SocketAddr,
}

impl Receiver {
    /// Starts `zcp recv --listen 127.0.0.1:0 --output OUTPUT EXTRA…` and waits for its address.
    pub fn start(output: &Path, extra: &[&str]) -> Receiver {
        Receiver::start_env(output, extra, &[])
    }

    /// Like `start`, with changes to the receiver's environment (applied after the token).
    pub fn start_env(output: &Path, extra: &[&str], env: &[EnvVar<'_>]) -> Receiver {
        Receiver::try_start_env(&[], output, extra, env)
            .unwrap_or_else(|f| panic!("receiver exited before listening: {f:#?}"))
    }

    /// Like `start`, but returns how the receiver ended if it exited before listening.
    pub fn try_start(output: &Path, extra: &[&str]) -> Result<Receiver, Finished> {
        Receiver::try_start_env(&[], output, extra, &[])
    }

    /// Like `try_start`, with the receiver run as the last argument of `wrapper` (e.g. strace).
    pub fn try_start_wrapped(
        wrapper: &[&OsStr],
        output: &Path,
        extra: &[&str],
    ) -> Result<Receiver, Finished> {
        Receiver::try_start_env(wrapper, output, extra, &[])
    }

    /// The most general start: a wrapper (may be empty), extra arguments and environment.
    pub fn try_start_env(
        wrapper: &[&OsStr],
        output: &Path,
        extra: &[&str],
        env: &[EnvVar<'_>],
    ) -> Result<Receiver, Finished> {
        let mut args: Vec<OsString> =
            ["recv", "--listen", "127.0.0.1:0", "--output"].map(OsString::from).to_vec();
        args.push(output.into());
        args.extend(extra.iter().map(OsString::from));
        let cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(ZCP).args(&args);
                cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
                set_auth_env(&mut cmd, &args, env);
                cmd
            }
            None => zcp_command(&args, env),
        };
        let mut process = Process::spawn(cmd);
        match process.first_line(STARTUP) {
            Ok(line) => match line.strip_prefix("listening on ") {
                Some(addr) => {
                    let addr = addr.trim().parse().unwrap_or_else(|e| {
                        panic!("receiver printed an unparsable address {line:?}: {e}")
                    });
                    Ok(Receiver { process, addr })
                }
                // The first line is an error: the receiver is on its way out.
                None => Err(process.wait_for(STARTUP)),
            },
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(process.wait_for(STARTUP)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let finished = process.kill();
                panic!("receiver printed nothing within {STARTUP:?}: {finished:#?}")
            }
        }
    }

    /// The address the receiver listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address as the `HOST:PORT` argument of `zcp send`.
    pub fn dest(&self) -> String {
        self.addr.to_string()
    }

    /// The receiver's process, to signal it or ask whether it runs.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Waits for the receiver to exit (panicking after `SESSION`) and collects its output.
    pub fn wait(self) -> Finished {
        self.process.wait()
    }

    /// Waits at most `limit` for the receiver to exit; panics (after killing it) past that.
    pub fn wait_for(self, limit: Duration) -> Finished {
        self.process.wait_for(limit)
    }

    /// Kills a receiver that is not expected to finish by itself (no sender ever came) and
    /// collects what it printed.
    pub fn kill(mut self) -> Finished {
        self.process.kill()
    }
}

/// Reads stderr to the end, handing its first line over as soon as it is complete.
fn read_stderr(stderr: impl Read, first_line: mpsc::Sender<String>) -> String {
    let mut reader = BufReader::new(stderr);
    let mut all = String::new();
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) > 0 {
        all.push_str(&line);
        let _ = first_line.send(line.trim_end().to_string());
    }
    drop(first_line);
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    all.push_str(&String::from_utf8_lossy(&rest));
    all
}

fn read_bytes(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = r.read_to_end(&mut out);
    out
}

/// `zcp send PATHS… DEST EXTRA…` holding the test token (unless `extra` names its own
/// authentication), killed after `SESSION`. Add `.env(…)`, `.write_stdin(…)` and so on
/// before `.assert()`.
pub fn send_command(paths: &[&Path], dest: &str, extra: &[&str]) -> assert_cmd::Command {
    let mut args: Vec<OsString> = vec!["send".into()];
    args.extend(paths.iter().map(OsString::from));
    args.push(dest.into());
    args.extend(extra.iter().map(OsString::from));
    let mut cmd = assert_cmd::Command::new(ZCP);
    cmd.args(&args).timeout(SESSION);
    if default_auth(&args) {
        cmd.env(TOKEN_ENV, TOKEN);
    } else {
        cmd.env_remove(TOKEN_ENV);
    }
    cmd
}

/// `zcp send PATHS… DEST EXTRA…` started in the background with the test token, to be
/// waited for, signalled or killed (it is killed on drop).
pub fn spawn_send(paths: &[&Path], dest: &str, extra: &[&str]) -> Process {
    let mut args: Vec<OsString> = vec!["send".into()];
    args.extend(paths.iter().map(OsString::from));
    args.push(dest.into());
    args.extend(extra.iter().map(OsString::from));
    Process::start(&args, &[])
}

/// Runs `zcp send FILE DEST EXTRA…` to the end (killing it after `SESSION`).
pub fn send(file: &Path, dest: &str, extra: &[&str]) -> Assert {
    send_command(&[file], dest, extra).assert()
}

/// Runs `zcp send PATHS… DEST EXTRA…` to the end (killing it after `SESSION`).
pub fn send_paths(paths: &[&Path], dest: &str, extra: &[&str]) -> Assert {
    send_command(paths, dest, extra).assert()
}

/// Like `send`, with changes to the sender's environment (applied after the token).
pub fn send_env(file: &Path, dest: &str, extra: &[&str], env: &[EnvVar<'_>]) -> Assert {
    let mut cmd = send_command(&[file], dest, extra);
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd.assert()
}

/// The exit code, stdout and stderr of a finished `Assert`, for messages and JSON.
pub fn outcome(assert: &Assert) -> (Option<i32>, String, String) {
    let out = assert.get_output();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parses a JSON report, showing the output it came with when it does not parse.
pub fn parse_json(stdout: &str, stderr: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{stderr}")
    })
}

/// A string field of a JSON report, by `/`-separated pointer such as `/send/path`.
pub fn json_str<'a>(report: &'a Value, pointer: &str) -> &'a str {
    report
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {report:#}"))
}

/// A number field of a JSON report, by pointer such as `/files/0/resumed_from`.
pub fn json_u64(report: &Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no unsigned number at {pointer} in {report:#}"))
}

/// The entry of a report's `files` whose `name` is `name`.
pub fn json_file<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["name"] == name))
        .unwrap_or_else(|| panic!("no entry {name:?} in files of {report:#}"))
}

/// Connects to `addr` with read and write timeouts, greeting nobody yet.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let socket = TcpStream::connect(addr).expect("connecting to the receiver");
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("setting a read timeout");
    socket.set_write_timeout(Some(Duration::from_secs(20))).expect("setting a write timeout");
    socket
}

/// Sends `ours` and reads the receiver's greeting.
pub fn exchange_hellos(socket: &mut TcpStream, ours: Hello) -> Result<Hello, ReadError> {
    protocol::write_hello(socket, ours).map_err(ReadError::Io)?;
    protocol::read_hello(socket)
}

/// A fresh random nonce.
pub fn nonce() -> [u8; 32] {
    zcp::link::auth::nonce().expect("random bytes for a nonce")
}

/// Sends the sender's token proof over both greetings' nonces.
pub fn send_proof(socket: &mut TcpStream, token: &Token, ours: &[u8; 32], theirs: &[u8; 32]) {
    let proof = token.sender_proof(ours, theirs);
    protocol::write_message(socket, &Message::Auth { proof }).expect("sending AUTH");
}

/// Reads the receiver's answer to our proof and checks it proves `token` for these nonces;
/// `Err` says what came instead.
pub fn read_receiver_proof(
    socket: &mut TcpStream,
    token: &Token,
    ours: &[u8; 32],
    theirs: &[u8; 32],
) -> Result<(), String> {
    match protocol::read_message(socket) {
        Ok(Message::Auth { proof }) if token.check_receiver(&proof, ours, theirs) => Ok(()),
        Ok(Message::Auth { .. }) => Err("the receiver's proof does not verify".into()),
        Ok(other) => Err(format!("expected AUTH, got {other:?}")),
        Err(e) => Err(format!("expected AUTH, got {e:?}")),
    }
}

/// Connects and runs the handshake as `zcp send` would: greetings, then (with a token) both
/// proofs. Panics when the receiver does not go along. Ready for `offer`.
pub fn zcp_client_token(addr: SocketAddr, token: Option<&str>) -> TcpStream {
    let mut socket = connect(addr);
    let ours = nonce();
    let hello = match token {
        Some(_) => Hello::with_auth(ours),
        None => Hello::ours(),
    };
    let theirs = exchange_hellos(&mut socket, hello).expect("reading the receiver's HELLO");
    assert_eq!(theirs.version, protocol::VERSION, "receiver greeted with another version");
    assert_eq!(theirs.auth(), token.is_some(), "receiver's AUTH flag: {theirs:?}");
    if let Some(token) = token {
        let token = Token::new(token).expect("a valid token");
        send_proof(&mut socket, &token, &ours, &theirs.nonce);
        read_receiver_proof(&mut socket, &token, &ours, &theirs.nonce)
            .unwrap_or_else(|e| panic!("authenticating with the receiver: {e}"));
    }
    socket
}

/// Connects with the test token and authenticates, as `zcp send` would.
pub fn zcp_client(addr: SocketAddr) -> TcpStream {
    zcp_client_token(addr, Some(TOKEN))
}

/// Sends an OFFER of `entries` and returns what came back (a PLAN, an ERROR, a failure).
pub fn try_offer(socket: &mut TcpStream, entries: Vec<Entry>) -> Result<Message, ReadError> {
    protocol::write_message(socket, &Message::Offer(Offer { entries })).map_err(ReadError::Io)?;
    protocol::read_message(socket)
}

/// Offers `entries` and returns the receiver's plan, checked to hold one answer per entry.
pub fn offer(socket: &mut TcpStream, entries: Vec<Entry>) -> Plan {
    let count = entries.len();
    match try_offer(socket, entries) {
        Ok(Message::Plan(plan)) => {
            assert_eq!(plan.answers.len(), count, "one answer per entry: {plan:?}");
            plan
        }
        other => panic!("expected a PLAN, got {other:?}"),
    }
}

/// Sends entry `index` as `zcp send` would: FILE_START at `offset`, `data[offset..]` raw,
/// FILE_END with the digest of all of `data`.
pub fn send_file(socket: &mut TcpStream, index: u32, offset: u64, data: &[u8]) {
    let start = Message::FileStart { index, offset };
    protocol::write_message(socket, &start).expect("sending FILE_START");
    socket.write_all(&data[offset as usize..]).expect("sending the file's bytes");
    end_file(socket, data);
}

/// Sends entry `index` of unknown size: FILE_START at 0, `data` as one chunk, the end chunk,
/// FILE_END.
pub fn send_chunked(socket: &mut TcpStream, index: u32, data: &[u8]) {
    let start = Message::FileStart { index, offset: 0 };
    protocol::write_message(socket, &start).expect("sending FILE_START");
    if !data.is_empty() {
        socket.write_all(&protocol::chunk_header(data.len() as u32)).expect("chunk header");
        socket.write_all(data).expect("chunk bytes");
    }
    socket.write_all(&protocol::chunk_header(0)).expect("end chunk");
    end_file(socket, data);
}

/// FILE_END with the xxh3-128 of `data`.
pub fn end_file(socket: &mut TcpStream, data: &[u8]) {
    let end = FileEnd { xxh3: xxhash_rust::xxh3::xxh3_128(data) };
    protocol::write_message(socket, &Message::FileEnd(end)).expect("sending FILE_END");
}

/// Sends FINISH and returns whatever answers it (a SUMMARY, an ERROR, a failure).
pub fn try_finish(socket: &mut TcpStream) -> Result<Message, ReadError> {
    protocol::write_message(socket, &Message::Finish(SideStats::default()))
        .map_err(ReadError::Io)?;
    protocol::read_message(socket)
}

/// Sends FINISH and returns the receiver's SUMMARY.
pub fn finish(socket: &mut TcpStream) -> Summary {
    match try_finish(socket) {
        Ok(Message::Summary(summary)) => summary,
        other => panic!("expected a SUMMARY, got {other:?}"),
    }
}

/// A regular-file entry as `zcp send` would offer it.
pub fn file_entry(name: &[u8], size: Option<u64>) -> Entry {
    Entry {
        kind: EntryKind::File,
        name: name.to_vec(),
        size,
        mode: 0o644,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 0,
    }
}

/// A directory entry as `zcp send` would offer it.
pub fn dir_entry(name: &[u8]) -> Entry {
    Entry {
        kind: EntryKind::Dir,
        name: name.to_vec(),
        size: None,
        mode: 0o755,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 0,
    }
}

/// Waits until `ready` holds, polling every few milliseconds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// `len` deterministic pseudo-random bytes (xorshift64), different for each `seed`.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = vec![0u8; len];
    for chunk in out.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    out
}

/// Writes `len` pseudo-random bytes to `path` and returns them.
pub fn write_random_file(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let data = pseudo_random(len, seed);
    fs::write(path, &data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    data
}

/// Asserts that `path` holds exactly `expected`, naming the first differing byte if not.
pub fn assert_file_holds(path: &Path, expected: &[u8], what: &str) {
    let actual =
        fs::read(path).unwrap_or_else(|e| panic!("{what}: reading {}: {e}", path.display()));
    if actual != expected {
        let first = actual.iter().zip(expected).position(|(a, b)| a != b);
        panic!(
            "{what}: {} differs from what was sent: {} bytes received, {} expected, first \
             difference at byte {}",
            path.display(),
            actual.len(),
            expected.len(),
            first.map_or("(none: one is a prefix of the other)".into(), |i| i.to_string()),
        );
    }
}

/// The names in `dir`, hidden ones included, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every entry below `dir`, as sorted relative paths: directories end in `/`, symlinks in `@`,
/// anything else that is not a regular file in `|`.
pub fn tree_listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("below the root").display().to_string();
            let ft = entry.file_type().expect("file type");
            if ft.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else if ft.is_symlink() {
                out.push(format!("{rel}@"));
            } else if ft.is_file() {
                out.push(rel);
            } else {
                out.push(format!("{rel}|"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Sets the modification time of `path` (a file or a directory).
pub fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.set_times(fs::FileTimes::new().set_modified(mtime))
        .unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("setting the mode of {}: {e}", path.display()));
}

/// A fresh directory `name` inside `parent`.
pub fn subdir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A local port nothing listens on (bound, then released).
pub fn closed_port_dest() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a throwaway listener");
    let addr = listener.local_addr().expect("throwaway listener address");
    drop(listener);
    addr.to_string()
}

/// A FIFO and a thread that writes `data` into it once a reader opens it, then closes it.
pub struct FifoWriter {
    path: PathBuf,
    handle: JoinHandle<io::Result<()>>,
}

impl FifoWriter {
    pub fn create(path: &Path, data: Vec<u8>) -> FifoWriter {
        use nix::sys::stat::Mode;
        nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
            .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
        let fifo = path.to_path_buf();
        let handle = thread::spawn(move || {
            let mut f = fs::OpenOptions::new().write(true).open(&fifo)?;
            f.write_all(&data)
        });
        FifoWriter { path: path.to_path_buf(), handle }
    }

    /// Joins the writer. If no reader ever opened the FIFO, opening one here releases it.
    pub fn finish(self) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if !self.handle.is_finished() {
            let _ = fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&self.path);
        }
        self.handle.join().unwrap_or_else(|_| Err(io::Error::other("FIFO writer panicked")))
    }
}
