//! Children under test: any command in its own process group, its stderr readable line by line
//! as it comes and its stdout collected, the whole group killed on drop; `zcp recv` on port 0
//! with the address it prints; `zcp send` run to the end; assertions on how a child ended.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::Value;

use super::{EnvVar, SESSION, STARTUP, ZCP, parse_json, set_auth_env, zcp_command};

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

/// A running child. Its stderr is read line by line as it comes (`wait_line`), its stdout
/// collected; its process group is killed when it is dropped unreaped, so it never outlives
/// its test, even when it runs under a wrapper such as strace.
pub struct Process {
    child: Child,
    reaped: bool,
    what: String,
    lines: mpsc::Receiver<String>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<String>>,
}

impl Process {
    /// Spawns `cmd` with stdin from /dev/null.
    pub fn spawn(mut cmd: Command) -> Process {
        Process::spawn_with_stdin(&mut cmd, Stdio::null())
    }

    /// Spawns `cmd` with `stdin` as its standard input, in its own process group so that
    /// killing the group reaches a wrapper's children too.
    pub fn spawn_with_stdin(cmd: &mut Command, stdin: impl Into<Stdio>) -> Process {
        Process::spawn_reading(cmd, stdin.into(), Stdio::piped(), |stdout| {
            let mut out = Vec::new();
            if let Some(stdout) = stdout {
                let _ = BufReader::new(stdout).read_to_end(&mut out);
            }
            out
        })
    }

    /// Spawns `cmd` with stdin from /dev/null and `stdout` as its standard output, which is
    /// not read here (`Finished::stdout_bytes` stays empty).
    pub fn spawn_with_stdout(mut cmd: Command, stdout: impl Into<Stdio>) -> Process {
        Process::spawn_reading(&mut cmd, Stdio::null(), stdout.into(), |_| Vec::new())
    }

    /// Spawns `cmd` with stdin from /dev/null and its standard output read as it comes and
    /// counted in `count`, not kept (`Finished::stdout_bytes` stays empty): for an output too
    /// long to hold.
    pub fn spawn_counting(mut cmd: Command, count: Arc<AtomicU64>) -> Process {
        Process::spawn_reading(&mut cmd, Stdio::null(), Stdio::piped(), move |stdout| {
            let mut buf = vec![0u8; 1 << 20];
            if let Some(mut stdout) = stdout {
                while let Ok(n @ 1..) = stdout.read(&mut buf) {
                    count.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            Vec::new()
        })
    }

    /// Spawns `cmd` with `stdin` and `stdout`; `read` is handed its standard output when that
    /// is piped.
    fn spawn_reading(
        cmd: &mut Command,
        stdin: Stdio,
        stdout: Stdio,
        read: impl FnOnce(Option<ChildStdout>) -> Vec<u8> + Send + 'static,
    ) -> Process {
        let what = format!("{cmd:?}");
        cmd.stdin(stdin).stdout(stdout).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        let stdout = child.stdout.take();
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        Process {
            child,
            reaped: false,
            what,
            lines,
            stdout: Some(thread::spawn(move || read(stdout))),
            stderr: Some(thread::spawn(move || read_lines(stderr, tx))),
        }
    }

    /// Spawns `zcp ARGS…` with the test token (see `zcp_command`).
    pub fn start<S: AsRef<OsStr>>(args: &[S], env: &[EnvVar<'_>]) -> Process {
        Process::spawn(zcp_command(args, env))
    }

    /// The child's standard input, when it was spawned with a piped one.
    pub fn stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Waits for a stderr line that starts with `prefix` and returns it; fails the test with
    /// everything printed when the child exits or `STARTUP` passes first.
    pub fn wait_line(&mut self, prefix: &str) -> String {
        self.wait_line_where(prefix, |line| line.starts_with(prefix))
    }

    /// Waits at most `limit` for a stderr line that contains `needle` and returns it; fails
    /// the test with everything printed when the child exits or `limit` passes first.
    pub fn wait_line_within(&mut self, needle: &str, limit: Duration) -> String {
        match self.try_wait_line_within(limit, |line| line.contains(needle)) {
            Ok(line) => line,
            Err(f) => panic!("{} ended before printing {needle:?}: {f:#?}", self.what),
        }
    }

    /// Waits for a stderr line for which `wanted` holds (described as `what`), as `wait_line`.
    fn wait_line_where(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        match self.try_wait_line(&wanted) {
            Ok(line) => line,
            Err(f) => panic!("{} ended before printing {what:?}: {f:#?}", self.what),
        }
    }

    /// Like `wait_line_where`, but returns how the child ended if it ended first.
    fn try_wait_line(&mut self, wanted: impl Fn(&str) -> bool) -> Result<String, Finished> {
        self.try_wait_line_within(STARTUP, wanted)
    }

    /// Like `try_wait_line`, waiting at most `limit`.
    fn try_wait_line_within(
        &mut self,
        limit: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<String, Finished> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(self.reap(STARTUP)),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let f = self.kill_and_collect();
                    panic!("{} printed no awaited line within {limit:?}: {f:#?}", self.what);
                }
            }
        }
    }

    /// The address of the `listening on IP:PORT` line.
    pub fn listening(&mut self) -> SocketAddr {
        parse_listening(&self.wait_line("listening on "))
    }

    /// Whether the child still runs.
    pub fn running(&mut self) -> bool {
        !self.reaped && matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` to the child alone (not its group); only while it has not been reaped
    /// (its pid could name another process after that).
    pub fn signal(&self, signal: Signal) {
        assert!(!self.reaped, "signalling {} after it was reaped", self.what);
        kill(self.pid(), signal)
            .unwrap_or_else(|e| panic!("sending {signal} to {}: {e}", self.what));
    }

    /// How many of the child's threads are named `name` (`/proc/PID/task/*/comm`).
    pub fn threads_named(&self, name: &str) -> usize {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return 0;
        };
        let named = |t: &std::fs::DirEntry| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        };
        tasks.flatten().filter(named).count()
    }

    /// Waits for the child to exit (killing it and failing after `SESSION`) and collects what
    /// it printed.
    pub fn wait(self) -> Finished {
        self.wait_for(SESSION)
    }

    /// Waits at most `limit` for the child to exit; fails the test (after killing it) past that.
    pub fn wait_for(mut self, limit: Duration) -> Finished {
        self.reap(limit)
    }

    /// Kills the child's group with SIGKILL and collects what it printed.
    pub fn kill(mut self) -> Finished {
        self.kill_and_collect()
    }

    fn reap(&mut self, limit: Duration) -> Finished {
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
                // Polling for the exit, bounded by the deadline above.
                None => thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn kill_and_collect(&mut self) -> Finished {
        self.kill_group();
        let status = self.child.wait().expect("reaping a child");
        self.reaped = true;
        self.collect(status)
    }

    fn collect(&mut self, status: ExitStatus) -> Finished {
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

impl Drop for Process {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

/// Reads stderr to the end, handing over each line (without its newline) as it completes.
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

fn parse_listening(line: &str) -> SocketAddr {
    let addr = line.trim_start_matches("listening on ").trim();
    addr.parse().unwrap_or_else(|e| panic!("unparsable address in {line:?}: {e}"))
}

/// A `zcp recv --listen 127.0.0.1:0` child holding the test token (unless its arguments name
/// their own authentication), with the address it printed, that exits when its one sender is
/// cut off (`--resume-wait 0`, unless its arguments say otherwise). Killed on drop.
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

    /// Like `start`, under `umask` (set by `sh`, which then execs the receiver).
    pub fn start_umask(output: &Path, extra: &[&str], umask: u32) -> Receiver {
        let script = format!(r#"umask {umask:03o}; exec "$0" "$@""#);
        let shell: [&OsStr; 3] = ["sh".as_ref(), "-c".as_ref(), script.as_ref()];
        Receiver::try_start_env(&shell, output, extra, &[])
            .unwrap_or_else(|f| panic!("receiver under umask {umask:03o} exited: {f:#?}"))
    }

    /// Like `start`, but returns how the receiver ended if it exited before listening.
    pub fn try_start(output: &Path, extra: &[&str]) -> Result<Receiver, Finished> {
        Receiver::try_start_env(&[], output, extra, &[])
    }

    /// The most general start: the receiver run as the last argument of `wrapper` (e.g.
    /// strace; may be empty), with extra arguments and environment.
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
        // A one-shot receiver whose sender is cut off exits at once, as the tests of a broken
        // session expect, instead of waiting for the sender to come back; the tests of that
        // wait give their own --resume-wait.
        let waits = ["--resume-wait", "--keep-open", "--http"];
        if !extra.iter().any(|a| waits.iter().any(|w| a.starts_with(w))) {
            args.extend(["--resume-wait", "0"].map(OsString::from));
        }
        let cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(ZCP).args(&args);
                set_auth_env(&mut cmd, &args, env);
                cmd
            }
            None => zcp_command(&args, env),
        };
        let mut process = Process::spawn(cmd);
        let line = process.try_wait_line(|line| line.starts_with("listening on "))?;
        Ok(Receiver { addr: parse_listening(&line), process })
    }

    /// A receiver whose system calls meet a fault: run under `strace -f -e INJECT` (say
    /// `inject=fsync:error=EIO`), with `extra` arguments. `None`, after `skip`, when strace is
    /// not usable here.
    pub fn faulted(inject: &str, output: &Path, extra: &[&str]) -> Option<Receiver> {
        if let Some(why) = super::unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
            super::skip(&why);
            return None;
        }
        let wrapper = ["strace", "-f", "-o", "/dev/null", "-e", inject].map(OsStr::new);
        let started = Receiver::try_start_env(&wrapper, output, extra, &[]);
        Some(started.unwrap_or_else(|f| panic!("receiver under {inject} did not start: {f:#?}")))
    }

    /// The address the receiver listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address as the `HOST:PORT` argument of `zcp send`.
    pub fn dest(&self) -> String {
        self.addr.to_string()
    }

    /// The receiver's process, to signal it, read its lines or ask whether it runs.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Waits for the receiver to exit (failing after `SESSION`) and collects its output.
    pub fn wait(self) -> Finished {
        self.process.wait()
    }

    /// Waits at most `limit` for the receiver to exit; fails (after killing it) past that.
    pub fn wait_for(self, limit: Duration) -> Finished {
        self.process.wait_for(limit)
    }

    /// Kills a receiver that is not expected to finish by itself and collects its output.
    pub fn kill(self) -> Finished {
        self.process.kill()
    }
}

/// `zcp send PATHS… DEST EXTRA…` with the test token unless `extra` names its own
/// authentication, then `env` applied.
pub fn send_cmd(paths: &[&Path], dest: &str, extra: &[&str], env: &[EnvVar<'_>]) -> Command {
    let mut args: Vec<OsString> = vec!["send".into()];
    args.extend(paths.iter().map(OsString::from));
    args.push(dest.into());
    args.extend(extra.iter().map(OsString::from));
    zcp_command(&args, env)
}

/// `cmd` run as the last arguments of `wrapper` (e.g. strace), with the same environment.
pub fn wrapped(wrapper: &[&str], cmd: &Command) -> Command {
    let (program, rest) = wrapper.split_first().expect("a wrapper program");
    let mut outer = Command::new(program);
    outer.args(rest).arg(cmd.get_program()).args(cmd.get_args());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(v) => outer.env(name, v),
            None => outer.env_remove(name),
        };
    }
    outer
}

/// Runs `cmd` to the end (failing after `SESSION`).
pub fn run(cmd: Command) -> Finished {
    Process::spawn(cmd).wait()
}

/// Runs `zcp send FILE DEST EXTRA…` with the test token to the end.
pub fn send(file: &Path, dest: &str, extra: &[&str]) -> Finished {
    send_paths(&[file], dest, extra)
}

/// Runs `zcp send PATHS… DEST EXTRA…` with the test token to the end.
pub fn send_paths(paths: &[&Path], dest: &str, extra: &[&str]) -> Finished {
    run(send_cmd(paths, dest, extra, &[]))
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

/// Starts `zcp send SRC --listen 127.0.0.1:0 EXTRA…` with the test token (unless `extra` names
/// its own authentication) and returns it with the address it listens on.
pub fn send_listening(src: &Path, extra: &[&str]) -> (Process, SocketAddr) {
    let mut args: Vec<OsString> = vec!["send".into(), src.into()];
    args.extend(["--listen", "127.0.0.1:0"].map(OsString::from));
    args.extend(extra.iter().map(OsString::from));
    let mut sender = Process::spawn(zcp_command(&args, &[]));
    let addr = sender.listening();
    (sender, addr)
}
