//! One child process of the benchmark (a `zcp` end or a peer tool), reaped with `wait4(2)` so
//! that its own resource usage is known: CPU time and context switches, and its peak RSS, which
//! is sampled. Its piped output is collected by helper threads; a child still running when
//! dropped is killed and reaped.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use crate::sys::signals;

/// How often a child's peak RSS is sampled.
const PEAK_SAMPLE: Duration = Duration::from_millis(5);

/// What one child cost, from `wait4(2)`'s rusage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rusage {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Voluntary plus involuntary context switches.
    pub switches: u64,
    /// Peak resident set of the child's own address space, in bytes (see `PeakWatch`).
    pub peak_rss: u64,
}

/// How a child ended, with everything it printed.
#[derive(Debug)]
pub struct Exit {
    pub name: String,
    /// The raw wait status.
    status: i32,
    pub usage: Rusage,
    pub stdout: String,
    pub stderr: String,
}

impl Exit {
    pub fn success(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }

    /// The exit code, when the child exited rather than died of a signal.
    pub fn code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }

    /// `Err` naming the child, how it ended and the last line it printed on stderr.
    pub fn ensure_success(&self) -> anyhow::Result<()> {
        if self.success() {
            return Ok(());
        }
        let how = match self.code() {
            Some(code) => format!("exited with code {code}"),
            None => match Signal::try_from(libc::WTERMSIG(self.status)) {
                Ok(signal) => format!("died of {signal}"),
                Err(_) => format!("died of signal {}", libc::WTERMSIG(self.status)),
            },
        };
        match self.stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => anyhow::bail!("{} {how}: {}", self.name, line.trim()),
            None => anyhow::bail!("{} {how}", self.name),
        }
    }
}

/// A running child. Its stderr is always piped and read; its stdout is read when piped.
pub struct Proc {
    name: String,
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    lines: mpsc::Receiver<String>,
    peak: Option<PeakWatch>,
    reaped: bool,
}

impl Proc {
    /// Spawns `cmd` (whose stdin and stdout the caller has set up) with stderr piped.
    pub fn spawn(name: &str, cmd: &mut Command) -> anyhow::Result<Proc> {
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().map(|out| thread::spawn(move || read_all(out)));
        let stderr = child.stderr.take().map(|err| thread::spawn(move || read_lines(err, tx)));
        let peak = PeakWatch::start(child.id() as i32);
        Ok(Proc { name: name.to_string(), child, stdout, stderr, lines, peak, reaped: false })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The first line the child prints on stderr that starts with `prefix`, without the
    /// prefix; `None` when the child closed stderr or `limit` passed first.
    pub fn line_after(&self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.trim().to_string());
            }
        }
    }

    /// Whether the child has exited (it is not reaped yet).
    pub fn has_ended(&self) -> bool {
        exited(self.pid(), false).unwrap_or(true)
    }

    /// Waits for the child to exit and collects its usage and output.
    pub fn wait(mut self) -> anyhow::Result<Exit> {
        let context = || format!("waiting for {}", self.name);
        exit_passing_on_stop(self.pid()).with_context(context)?;
        let sampled_peak = self.peak.take().map_or(0, PeakWatch::finish);
        let (status, mut usage) = wait4(self.pid()).with_context(context)?;
        self.reaped = true;
        if sampled_peak > 0 {
            usage.peak_rss = sampled_peak;
        }
        let join = |h: Option<JoinHandle<String>>| h.and_then(|h| h.join().ok());
        Ok(Exit {
            name: std::mem::take(&mut self.name),
            status,
            usage,
            stdout: join(self.stdout.take()).unwrap_or_default(),
            stderr: join(self.stderr.take()).unwrap_or_default(),
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped {
            // A shell pipeline leads its own process group (see `peers`): killed with the
            // group, its programs go too; killed after sh alone, they would live on. For any
            // other child there is no such group and this fails harmlessly (ESRCH).
            let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
            let _ = self.child.kill();
            let _ = wait4(self.pid());
        }
        if let Some(peak) = self.peak.take() {
            peak.finish();
        }
    }
}

/// Waits until `pid` has exited, leaving it unreaped. A shell pipeline leads its own process
/// group, out of the terminal's reach: a Ctrl-C or SIGTERM that stops the benchmark meanwhile
/// is passed on to that group, so the pipeline ends now instead of when its transfer is done.
/// (Other children are in the terminal's group; for them `killpg` fails harmlessly.)
fn exit_passing_on_stop(pid: i32) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(exited(pid, true)));
    let mut passed_on = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(exited) => return exited.map(drop),
            Err(RecvTimeoutError::Timeout) => {
                if let Some(signal) = signals::pending().filter(|_| !passed_on) {
                    let _ = killpg(Pid::from_raw(pid), signal);
                    passed_on = true;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other("the thread waiting for the child is gone"));
            }
        }
    }
}

/// Runs a wait call until it answers, retrying on EINTR.
fn retrying<T>(mut call: impl FnMut() -> Option<T>) -> std::io::Result<T> {
    loop {
        if let Some(done) = call() {
            return Ok(done);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether `pid` has exited, leaving it unreaped (`waitid` with `WNOWAIT`); with `block`,
/// waits until it has.
fn exited(pid: i32, block: bool) -> std::io::Result<bool> {
    let mut flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    if !block {
        flags |= WaitPidFlag::WNOHANG;
    }
    loop {
        match waitid(Id::Pid(Pid::from_raw(pid)), flags) {
            Ok(WaitStatus::StillAlive) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// `wait4(2)` for one pid: reaps it and returns its wait status and resource usage. nix has
/// no wait4, and `getrusage(RUSAGE_CHILDREN)` sums all reaped children, where the sender and
/// the receiver each need their own.
fn wait4(pid: i32) -> std::io::Result<(i32, Rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; all-zero bytes is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    retrying(|| {
        // SAFETY: both pointers are to locals that outlive the call.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        (got == pid).then(|| (status, usage_of(&ru)))
    })
}

/// Samples a child's VmHWM, the peak resident set of its own address space, until stopped.
/// `wait4`'s ru_maxrss cannot tell that on Linux: exec keeps the spawning process's peak in it,
/// so every child would report at least the benchmark's own memory.
struct PeakWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<u64>,
}

impl PeakWatch {
    fn start(pid: i32) -> Option<PeakWatch> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name("zcp-bench-rss".into())
            .spawn(move || {
                let mut peak = 0;
                while !stopped.load(Ordering::Acquire) {
                    peak = vm_hwm(pid).map_or(peak, |now| now.max(peak));
                    thread::sleep(PEAK_SAMPLE);
                }
                peak
            })
            .ok()?;
        Some(PeakWatch { stop, handle })
    }

    /// Stops sampling; the peak in bytes, 0 when none was seen.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or(0)
    }
}

/// VmHWM of a live process, in bytes (a zombie has none).
fn vm_hwm(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

fn usage_of(ru: &libc::rusage) -> Rusage {
    let micros = |t: libc::timeval| t.tv_sec.max(0) as u64 * 1_000_000 + t.tv_usec.max(0) as u64;
    let max_rss = ru.ru_maxrss.max(0) as u64;
    Rusage {
        cpu: Duration::from_micros(micros(ru.ru_utime) + micros(ru.ru_stime)),
        switches: (ru.ru_nvcsw.max(0) + ru.ru_nivcsw.max(0)) as u64,
        // Linux and the BSDs count KiB; macOS counts bytes.
        peak_rss: if cfg!(target_os = "macos") { max_rss } else { max_rss * 1024 },
    }
}

fn read_all(mut pipe: impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Reads stderr to the end, handing over each line as soon as it is complete.
fn read_lines(pipe: impl Read, lines: mpsc::Sender<String>) -> String {
    let mut reader = BufReader::new(pipe);
    let (mut all, mut line) = (String::new(), Vec::new());
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let text = String::from_utf8_lossy(&line);
        let _ = lines.send(text.trim_end().to_string());
        all.push_str(&text);
        line.clear();
    }
    all
}
