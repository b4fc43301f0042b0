//! Helpers of the auth, limits, faults, raw, connect and exit-code tests, beside `common`: any
//! `zcp` child with its stderr readable line by line and its process group killed on drop, a TCP
//! proxy that records and damages what a sender writes, and a small tmpfs mounted for one test.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::common::{EnvVar, Finished, zcp_command};

/// How long a child may take to print a line the test waits for.
pub const LINE_WAIT: Duration = Duration::from_secs(10);
/// How long any one child may run before the test kills it and fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(40);

/// A running child. Its stderr is read line by line as it comes (`wait_line`), its stdout
/// collected; its process group is killed when the value is dropped unreaped.
pub struct Proc {
    child: Child,
    reaped: bool,
    lines: mpsc::Receiver<String>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<String>>,
    what: String,
}

impl Proc {
    /// Spawns `cmd` in its own process group, with stdin from /dev/null.
    pub fn spawn(mut cmd: Command) -> Proc {
        Self::spawn_with_stdin(&mut cmd, Stdio::null())
    }

    /// Spawns `cmd` with `stdin` as its standard input.
    pub fn spawn_with_stdin(cmd: &mut Command, stdin: impl Into<Stdio>) -> Proc {
        let what = format!("{cmd:?}");
        cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        Proc {
            child,
            reaped: false,
            lines,
            stdout: Some(thread::spawn(move || {
                let mut out = Vec::new();
                let _ = BufReader::new(stdout).read_to_end(&mut out);
                out
            })),
            stderr: Some(thread::spawn(move || read_lines(stderr, tx))),
            what,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for a stderr line that starts with `prefix` and returns it; fails the test with
    /// everything printed when the child exits or `LINE_WAIT` passes first.
    pub fn wait_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + LINE_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let f = self.finish();
                    panic!("{} ended before printing {prefix:?}: {f:#?}", self.what);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let f = self.kill_and_collect();
                    panic!("{} printed no {prefix:?} within {LINE_WAIT:?}: {f:#?}", self.what);
                }
            }
        }
    }

    /// The address of the `listening on IP:PORT` line.
    pub fn listening(&mut self) -> SocketAddr {
        let line = self.wait_line("listening on ");
        let addr = line.trim_start_matches("listening on ").trim();
        addr.parse().unwrap_or_else(|e| panic!("unparsable address in {line:?}: {e}"))
    }

    /// Whether the child is still running.
    pub fn running(&mut self) -> bool {
        !self.reaped && matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` to the child alone; only while it has not been reaped (its pid could
    /// name another process after that).
    pub fn signal(&self, signal: Signal) {
        assert!(!self.reaped, "signalling {} after it was reaped", self.what);
        kill(self.pid(), signal)
            .unwrap_or_else(|e| panic!("sending {signal} to {}: {e}", self.what));
    }

    /// Waits for the child to exit (killing it and failing after `RUN_LIMIT`) and collects
    /// what it printed.
    pub fn finish(&mut self) -> Finished {
        self.finish_within(RUN_LIMIT)
    }

    pub fn finish_within(&mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait().expect("polling a child") {
                Some(status) => {
                    self.reaped = true;
                    return self.collect(status);
                }
                None if Instant::now() >= deadline => {
                    let f = self.kill_and_collect();
                    panic!("{} still running after {limit:?}, killed: {f:#?}", self.what);
                }
                None => thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn kill_and_collect(&mut self) -> Finished {
        self.kill_group();
        let status = self.child.wait().expect("reaping a child");
        self.reaped = true;
        self.collect(status)
    }

    fn collect(&mut self, status: std::process::ExitStatus) -> Finished {
        let stdout_bytes = self.stdout.take().and_then(|h| h.join().ok()).unwrap_or_default();
        Finished {
            status,
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stderr: self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default(),
            stdout_bytes,
        }
    }

    /// Only before the leader is reaped: until then its pid, the group id, names our group.
    fn kill_group(&self) {
        if !self.reaped {
            let _ = killpg(self.pid(), Signal::SIGKILL);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

/// Reads stderr to the end, handing over each line as it completes.
fn read_lines(stderr: impl Read, tx: mpsc::Sender<String>) -> String {
    let mut reader = BufReader::new(stderr);
    let mut all = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return all,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                all.push_str(&text);
                let _ = tx.send(text.trim_end().to_string());
            }
        }
    }
}

/// Runs `cmd` to the end (bounded by `RUN_LIMIT`).
pub fn run(cmd: Command) -> Finished {
    Proc::spawn(cmd).finish()
}

/// `zcp ARGS…` with the test token unless `args` name their own authentication (see
/// `common::set_auth_env`), then `env` applied.
pub fn zcp<S: AsRef<OsStr>>(args: &[S], env: &[EnvVar<'_>]) -> Command {
    zcp_command(args, env)
}

/// `zcp recv --listen 127.0.0.1:0 --output OUTPUT EXTRA…` (see `zcp`).
pub fn recv_cmd(output: &Path, extra: &[&str], env: &[EnvVar<'_>]) -> Command {
    let mut args: Vec<OsString> =
        ["recv", "--listen", "127.0.0.1:0", "--output"].map(OsString::from).to_vec();
    args.push(output.into());
    args.extend(extra.iter().map(OsString::from));
    zcp(&args, env)
}

/// Starts `recv_cmd(output, extra, [])` and returns it with its address.
pub fn receiver(output: &Path, extra: &[&str]) -> (Proc, SocketAddr) {
    let mut proc = Proc::spawn(recv_cmd(output, extra, &[]));
    let addr = proc.listening();
    (proc, addr)
}

/// `zcp send FILE DEST EXTRA…` (see `zcp`).
pub fn send_cmd(file: &Path, dest: &str, extra: &[&str], env: &[EnvVar<'_>]) -> Command {
    let mut args: Vec<OsString> = vec!["send".into(), file.into(), dest.into()];
    args.extend(extra.iter().map(OsString::from));
    zcp(&args, env)
}

/// Runs `zcp send FILE DEST EXTRA…` with the test token to the end.
pub fn send(file: &Path, dest: &str, extra: &[&str]) -> Finished {
    run(send_cmd(file, dest, extra, &[]))
}

/// Asserts that a run ended with `code` and did not panic, showing its output otherwise.
#[track_caller]
pub fn assert_exit(f: &Finished, code: i32, who: &str) {
    assert_eq!(f.code(), Some(code), "{who} exit code:\n{}", f.stderr);
    assert_no_panic(f, who);
}

#[track_caller]
pub fn assert_no_panic(f: &Finished, who: &str) {
    assert!(!f.stderr.contains("panicked"), "{who} panicked:\n{}", f.stderr);
}

/// Asserts that `f`'s stderr contains `needle`.
#[track_caller]
pub fn assert_says(f: &Finished, needle: &str, who: &str) {
    assert!(f.stderr.contains(needle), "{who} should say {needle:?}:\n{}", f.stderr);
}

/// A free local port: bound, then released.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a throwaway listener");
    l.local_addr().expect("throwaway listener address").port()
}

/// What the proxy does to the sender's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything unchanged.
    Pass,
    /// Forward this many sender bytes, then cut both connections.
    CutAt(u64),
    /// Invert the sender byte at this offset of the stream.
    FlipAt(u64),
}

/// What the proxy saw.
#[derive(Debug, Default)]
pub struct ProxyLog {
    /// Every byte the sender wrote, as the sender wrote it (before any fault).
    pub from_sender: Vec<u8>,
    /// Whether a `CutAt` fault fired.
    pub cut: bool,
    /// Whether a `FlipAt` fault fired.
    pub flipped: bool,
}

/// A one-connection TCP proxy between a sender and `upstream`, forwarding both ways in threads.
pub struct Proxy {
    addr: SocketAddr,
    handle: Option<JoinHandle<io::Result<ProxyLog>>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let handle = thread::spawn(move || serve(listener, upstream, fault));
        Proxy { addr, handle: Some(handle) }
    }

    /// The address senders should connect to.
    pub fn dest(&self) -> String {
        self.addr.to_string()
    }

    /// Waits for the session through the proxy to end and returns what it saw.
    pub fn finish(mut self) -> ProxyLog {
        let handle = self.handle.take().expect("proxy thread");
        handle.join().expect("proxy thread panicked").expect("proxy I/O")
    }
}

/// Accepts one client (waiting at most `RUN_LIMIT`), connects upstream and forwards.
fn serve(listener: TcpListener, upstream: SocketAddr, fault: Fault) -> io::Result<ProxyLog> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + RUN_LIMIT;
    let client = loop {
        match listener.accept() {
            Ok((client, _)) => break client,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(e),
        }
    };
    client.set_nonblocking(false)?;
    let server = TcpStream::connect(upstream)?;
    for s in [&client, &server] {
        s.set_read_timeout(Some(RUN_LIMIT))?;
        s.set_nodelay(true)?;
    }
    let (mut back_from, mut back_to) = (server.try_clone()?, client.try_clone()?);
    let back = thread::spawn(move || {
        let _ = io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Write);
    });
    let log = forward(&client, &server, fault);
    let _ = back.join();
    log
}

/// Forwards sender → receiver, applying `fault` and recording what the sender wrote.
fn forward(mut client: &TcpStream, mut server: &TcpStream, fault: Fault) -> io::Result<ProxyLog> {
    let mut log = ProxyLog::default();
    let mut buf = vec![0u8; 64 << 10];
    let mut at = 0u64;
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        log.from_sender.extend_from_slice(&buf[..n]);
        let chunk = &mut buf[..n];
        let end = at + n as u64;
        match fault {
            Fault::FlipAt(off) if (at..end).contains(&off) => {
                chunk[(off - at) as usize] ^= 0xFF;
                log.flipped = true;
            }
            Fault::CutAt(off) if end >= off => {
                let keep = (off - at.min(off)) as usize;
                let _ = server.write_all(&chunk[..keep]);
                log.cut = true;
                // Both ends see the connection end mid-stream; closing with unread bytes
                // makes it a reset for the sender.
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return Ok(log);
            }
            _ => {}
        }
        if server.write_all(chunk).is_err() {
            break;
        }
        at = end;
    }
    let _ = server.shutdown(Shutdown::Write);
    Ok(log)
}

/// A tmpfs of a given size mounted on a directory for one test, unmounted on drop.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `1m`) on `path`; the error says why it could not.
    pub fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs on {} failed ({}): {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !ok {
            // Something still holds it open (a child killed a moment ago): detach it.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// A small seeded generator (xorshift64*), so a "random" offset is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// The names in `dir` that are not hidden part files.
pub fn final_names(dir: &Path) -> Vec<String> {
    crate::common::dir_names(dir).into_iter().filter(|n| !n.ends_with(".zcp-part")).collect()
}

/// The part file `zcp recv` writes `name` through, in `dir`.
pub fn part_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.zcp-part"))
}

/// Waits until `path` holds at least `len` bytes (failing after `LINE_WAIT`).
pub fn wait_for_bytes(path: &Path, len: u64) {
    let deadline = Instant::now() + LINE_WAIT;
    while std::fs::metadata(path).map_or(0, |m| m.len()) < len {
        assert!(Instant::now() < deadline, "{} never reached {len} bytes", path.display());
        thread::sleep(Duration::from_millis(5));
    }
}

/// Writes all of `bytes` to `socket` in a thread, ignoring a peer that hangs up.
pub fn write_in_background(socket: &TcpStream, bytes: Vec<u8>) -> JoinHandle<()> {
    let mut s = socket.try_clone().expect("cloning a socket");
    thread::spawn(move || {
        let _ = s.write_all(&bytes);
    })
}
