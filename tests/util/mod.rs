//! The one harness of the integration tests: `zcp` children that are killed with their process
//! group on drop (`process`), a peer that speaks the protocol through the library (`client`), a
//! proxy that damages a session (`proxy`), mounts and pids cgroups for one test (`mount`, `cgroup`), test data and checks on
//! disk (`files`), JSON reports, and the single way a test says it cannot run here (`skip`).

mod cgroup;
mod client;
mod files;
mod mount;
mod process;
mod proxy;

use std::ffi::OsStr;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use cgroup::PidsCgroup;
pub use client::*;
pub use files::*;
pub use mount::{ReadOnlyMount, Tmpfs};
pub use process::*;
pub use proxy::{Fault, Proxy, ProxyLog};

// The library items the tests use, in one place: when a module of `src/` moves, only these
// lines change.
pub use zcp::bench::chart::FILLS as CHART_FILLS;
pub use zcp::cli::{Cli, RecvMethod, SendMethod};
pub use zcp::copy::batch::SMALL_FILE;
pub use zcp::error::ExitCode;
pub use zcp::link::{auth, tls};
pub use zcp::protocol;
pub use zcp::role::Role;
pub use zcp::shell::{completion_file, completions};

/// The binary under test.
pub const ZCP: &str = env!("CARGO_BIN_EXE_zcp");
/// How long a child may take to print a line the test waits for (its address, say).
pub const STARTUP: Duration = Duration::from_secs(10);
/// How long one session may take, at either end, before the test kills it and fails.
pub const SESSION: Duration = Duration::from_secs(60);
/// The token every helper gives both ends (through `ZCP_TOKEN`) unless told otherwise.
pub const TOKEN: &str = "zcp-test-token-7f3a-91c2";
/// The environment variable both ends read the token from.
pub const TOKEN_ENV: &str = "ZCP_TOKEN";
/// Set to `1` (CI does), a test that lacks a prerequisite fails instead of skipping.
pub const REQUIRE_ALL: &str = "ZCP_TEST_REQUIRE_ALL";

/// An environment change for a child: `(NAME, Some(value))` sets, `(NAME, None)` removes.
pub type EnvVar<'a> = (&'a str, Option<&'a str>);

/// Says that the running test cannot run here and why, as `SKIPPED <test>: <reason>` on the
/// real standard error, so that `cargo test` shows it even though the test then passes; with
/// `ZCP_TEST_REQUIRE_ALL=1` it fails the test instead. The caller returns right after.
#[track_caller]
pub fn skip(reason: &str) {
    let current = thread::current();
    let test = current.name().unwrap_or("a test");
    if std::env::var_os(REQUIRE_ALL).is_some_and(|v| v == "1") {
        panic!("{test} cannot run here and {REQUIRE_ALL}=1 forbids skipping it: {reason}");
    }
    // libtest captures `eprintln!` (and shows it only for failures); a write to the stderr
    // handle itself is not captured.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Says that the running test cannot run here because the **kernel** lacks a feature (kTLS,
/// say), as `SKIPPED <test>: <reason>`. Unlike `skip`, this one is allowed under
/// `ZCP_TEST_REQUIRE_ALL=1`: CI can install tools and take privileges, but cannot change its
/// kernel. Use it only for a kernel feature, after asserting what the fallback does.
pub fn skip_kernel_feature(reason: &str) {
    let current = thread::current();
    let test = current.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: missing kernel feature: {reason}");
}

/// Why `program ARGS…` cannot be used here (not installed, or failing), if it cannot.
pub fn unusable(program: &str, args: &[&str]) -> Option<String> {
    match Command::new(program).args(args).stdin(Stdio::null()).output() {
        Err(e) => Some(format!("{program} is not installed ({e})")),
        Ok(out) if !out.status.success() => Some(format!(
            "`{program} {}` fails here: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// Whether this machine can listen on the IPv6 loopback.
pub fn ipv6_loopback() -> Result<(), String> {
    TcpListener::bind("[::1]:0").map(drop).map_err(|e| format!("cannot bind [::1] here: {e}"))
}

/// Whether `args` leave the token to the environment, i.e. name none of `--no-auth`,
/// `--token` or `--token-file` (clap refuses those next to a `ZCP_TOKEN` it reads as
/// `--token`).
fn default_auth<S: AsRef<OsStr>>(args: &[S]) -> bool {
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
fn set_auth_env<S: AsRef<OsStr>>(cmd: &mut Command, args: &[S], env: &[EnvVar<'_>]) {
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

/// `zcp ARGS…` with the test token (see `set_auth_env`), ready for `Process::spawn`.
pub fn zcp_command<S: AsRef<OsStr>>(args: &[S], env: &[EnvVar<'_>]) -> Command {
    let mut cmd = Command::new(ZCP);
    cmd.args(args);
    set_auth_env(&mut cmd, args, env);
    cmd
}

/// `PROGRAM… ARGS…` with the test token like `zcp_command`, for a zcp that is not the binary
/// under test or runs behind a wrapper: `["chroot", DIR, "/zcp"]`, say.
pub fn zcp_command_via<S: AsRef<OsStr>>(
    program: &[&OsStr],
    args: &[S],
    env: &[EnvVar<'_>],
) -> Command {
    let (first, rest) = program.split_first().expect("a program");
    let mut cmd = Command::new(first);
    cmd.args(rest).args(args);
    set_auth_env(&mut cmd, args, env);
    cmd
}

/// Waits until `ready` holds, polling every few milliseconds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        // Polling for the event, bounded by the deadline above.
        thread::sleep(Duration::from_millis(2));
    }
}

/// A local TCP port held bound but not listening: a connection to it is refused, and no other
/// program can listen on it meanwhile (unlike a port bound, released and hoped to stay free).
/// `zcp` may still listen on it (std sets `SO_REUSEADDR`, and so does this socket).
pub struct ClosedPort {
    _socket: OwnedFd,
    addr: SocketAddr,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, setsockopt, socket,
            sockopt::ReuseAddr,
        };
        let socket = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
            .expect("a TCP socket");
        setsockopt(&socket, ReuseAddr, &true).expect("SO_REUSEADDR");
        let any_port = SockaddrIn::new(127, 0, 0, 1, 0);
        bind(std::os::fd::AsRawFd::as_raw_fd(&socket), &any_port).expect("binding a port");
        let bound: SockaddrIn =
            getsockname(std::os::fd::AsRawFd::as_raw_fd(&socket)).expect("the bound address");
        let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));
        ClosedPort { _socket: socket, addr }
    }

    /// `127.0.0.1:PORT`, as the destination of `zcp send`.
    pub fn dest(&self) -> String {
        self.addr.to_string()
    }
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
