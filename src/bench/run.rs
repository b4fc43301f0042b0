//! One timed run: start a receiver, wait until it listens, then spawn the sender and time it
//! from its spawn until both processes exited. Also the run of one zcp method pair, by the real
//! `zcp recv` and `zcp send` of this very binary, read back from their `--json` reports.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::process::{Exit, Proc, Rusage};
use super::stats::{Blocks, Sample, Side};
use super::workspace::Workspace;
use super::{Pair, check_stop};
use crate::link::auth::TOKEN_ENV;

/// How long a receiver may take to be ready, and a failed sender's receiver to exit.
const STARTUP: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_secs(2);
/// /proc/net/tcp's code for the LISTEN state.
const TCP_LISTEN: &str = "0A";

/// What every run needs: the binary, the file, where copies go.
pub struct RunContext<'a> {
    /// This zcp binary, which runs both ends.
    pub zcp: &'a Path,
    /// The file sent, as an absolute path.
    pub source: &'a Path,
    /// Its file name, which zcp gives the received copy.
    pub source_name: &'a str,
    /// Bytes sent per run (all files together for a tree).
    pub size: u64,
    /// For a tree, how many files it holds.
    pub files: Option<u64>,
    pub buffer_size: u64,
    /// The token both zcp ends get through the environment, as users would run them.
    pub token: &'a str,
    pub workspace: &'a Workspace,
}

impl RunContext<'_> {
    /// Fails unless the copy at `path` has exactly the size of the source (for a tree: as
    /// many files, and as many bytes in all).
    pub fn verify_copy(&self, path: &Path) -> anyhow::Result<()> {
        let missing = || format!("no received copy at {}", path.display());
        let Some(files) = self.files else {
            let got = std::fs::metadata(path).with_context(missing)?.len();
            if got != self.size {
                bail!("the received copy has {got} bytes, the file {}", self.size);
            }
            return Ok(());
        };
        let (got_files, got_bytes) = super::workspace::tree_totals(path).with_context(missing)?;
        if (got_files, got_bytes) != (files, self.size) {
            bail!(
                "the received tree has {got_files} files of {got_bytes} bytes, the source {files} \
                 of {}",
                self.size
            );
        }
        Ok(())
    }

    /// Throughput of a run that moved the whole file in `wall`.
    pub fn rate(&self, wall: Duration) -> f64 {
        self.size as f64 / wall.as_secs_f64().max(1e-9)
    }
}

/// How the benchmark learns that a receiver is ready for its sender.
pub enum Ready {
    /// zcp prints `listening on ADDR` on stderr before it accepts.
    Announced,
    /// The peer prints nothing: wait for this port to be in LISTEN state (connecting to check
    /// would use up nc's only accept).
    Listening(u16),
}

/// Both ends of a finished run and the wall time from the sender's spawn until both exited.
pub struct Transfer {
    pub sent: Exit,
    pub received: Exit,
    pub wall: Duration,
}

impl Transfer {
    /// CPU time of both processes: loopback TCP work lands on whichever side triggers it.
    pub fn cpu(&self) -> Duration {
        self.sent.usage.cpu + self.received.usage.cpu
    }
}

/// Runs `receiver` (stdin from /dev/null), then `sender(address)` once the receiver is ready.
pub fn transfer(
    name: &str,
    receiver: &mut Command,
    ready: Ready,
    sender: impl FnOnce(SocketAddr) -> Command,
) -> anyhow::Result<Transfer> {
    let recv = Proc::spawn(&format!("{name} receiver"), receiver.stdin(Stdio::null()))?;
    let (recv, addr) = await_ready(recv, ready)?;
    check_stop()?;
    let clock = Instant::now();
    let send = Proc::spawn(&format!("{name} sender"), &mut sender(addr))?;
    let sent = send.wait()?;
    if !sent.success() && !ends_within(&recv, GRACE) {
        // The receiver would wait for a sender forever: drop kills it.
        sent.ensure_success()?;
    }
    let received = recv.wait()?;
    let wall = clock.elapsed();
    match (received.ensure_success(), sent.ensure_success()) {
        (Ok(()), Ok(())) => Ok(Transfer { sent, received, wall }),
        (Err(r), Err(s)) => Err(anyhow::anyhow!("{s:#}; {r:#}")),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Waits until the listening end `recv` is `ready`; its address.
pub fn await_ready(recv: Proc, ready: Ready) -> anyhow::Result<(Proc, SocketAddr)> {
    match ready {
        Ready::Announced => announced(recv),
        Ready::Listening(port) => {
            Ok((listening(recv, port)?, SocketAddr::from(([127, 0, 0, 1], port))))
        }
    }
}

/// Reads the address from the receiver's `listening on ADDR` line.
fn announced(recv: Proc) -> anyhow::Result<(Proc, SocketAddr)> {
    match recv.line_after("listening on ", STARTUP).map(|a| a.parse::<SocketAddr>()) {
        Some(Ok(addr)) => Ok((recv, addr)),
        Some(Err(e)) => bail!("the receiver announced an address that does not parse: {e}"),
        None if ends_within(&recv, GRACE) => {
            recv.wait()?.ensure_success()?;
            bail!("the receiver exited without announcing its address")
        }
        None => bail!("the receiver announced no address within {} s", STARTUP.as_secs()),
    }
}

/// Waits until `port` is in LISTEN state, or the receiver has exited.
fn listening(recv: Proc, port: u16) -> anyhow::Result<Proc> {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        check_stop()?;
        if is_listening(port) {
            return Ok(recv);
        }
        if recv.has_ended() {
            let exit = recv.wait()?;
            exit.ensure_success()?;
            bail!("{} exited before listening on port {port}", exit.name);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    bail!("nothing listened on port {port} within {} s", STARTUP.as_secs())
}

fn ends_within(proc: &Proc, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if proc.has_ended() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Whether a socket listens on `port` (any address, IPv4 or IPv6), per /proc/net/tcp{,6}.
fn is_listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .any(|table| lists_listener(&table, port))
}

/// Whether a /proc/net/tcp table has a row in LISTEN state whose local port is `port`.
fn lists_listener(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|row| {
        let mut fields = row.split_whitespace();
        let local = fields.nth(1).and_then(|addr| addr.rsplit_once(':'));
        let state = fields.nth(1);
        matches!((local, state), (Some((_, p)), Some(TCP_LISTEN))
            if u16::from_str_radix(p, 16) == Ok(port))
    })
}

/// A loopback port free right now, for a peer tool that cannot pick its own.
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free loopback port")?;
    Ok(listener.local_addr().context("reading a free port")?.port())
}

/// What sets a zcp row apart beyond its method pair: flags for either end (`--fsync`,
/// `--no-sparse`), and a file of its own to send instead of the run's.
#[derive(Debug, Clone, Default)]
pub struct Variant {
    pub send_args: &'static [&'static str],
    pub recv_args: &'static [&'static str],
    /// The sparse file of `--sparse` and its apparent size.
    pub source: Option<(PathBuf, u64)>,
    /// Count the blocks allocated to the source and the copy (`--sparse`).
    pub blocks: bool,
    /// The receiver's `--output` names the copy itself, as `--raw` needs (no name travels).
    pub output_file: bool,
}

/// One run of a zcp method pair; the copy lands in `out`.
pub fn zcp(
    ctx: &RunContext<'_>,
    pair: &Pair,
    variant: &Variant,
    out: &Path,
) -> anyhow::Result<Sample> {
    let buffer = ctx.buffer_size.to_string();
    let mut common = vec!["--buffer-size", buffer.as_str(), "--json", "--quiet"];
    if pair.encrypt {
        common.push("--encrypt");
    }
    let copy = out.join(ctx.source_name);
    let mut receiver = Command::new(ctx.zcp);
    receiver
        .args(["recv", "--listen", "127.0.0.1:0", "--output"])
        .arg(if variant.output_file { copy.as_path() } else { out })
        .args(no_comeback(ctx.zcp))
        .args(["--method", pair.recv])
        .args(variant.recv_args)
        .args(&common)
        .env(TOKEN_ENV, ctx.token)
        .stdout(Stdio::piped());
    let run = transfer("zcp", &mut receiver, Ready::Announced, |addr| {
        let mut sender = Command::new(ctx.zcp);
        sender.arg("send").arg(ctx.source).arg(addr.to_string()).args(["--method", pair.send]);
        sender.args(variant.send_args).args(common).env(TOKEN_ENV, ctx.token);
        sender.stdin(Stdio::null()).stdout(Stdio::piped());
        sender
    })?;
    ctx.verify_copy(&copy)?;
    let blocks = variant.blocks.then(|| allocated(ctx.source, &copy)).transpose()?;
    let (mut send, mut recv) =
        (reported_side(&run.sent, "send")?, reported_side(&run.received, "recv")?);
    if pair.encrypt {
        send.fallbacks.extend(encryption_note(&run.sent, "send")?);
        recv.fallbacks.extend(encryption_note(&run.received, "recv")?);
    }
    Ok(Sample { throughput: ctx.rate(run.wall), cpu: run.cpu(), send, recv, blocks })
}

/// `--resume-wait 0` where `zcp` takes it: a failed sender fails the round, and nothing is to
/// come back and resume. A build from before the option (`--against` an older binary) is
/// asked once, by its `recv --help`, and gets nothing.
fn no_comeback(zcp: &Path) -> &'static [&'static str] {
    static TAKES: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());
    let Ok(mut known) = TAKES.lock() else { return &[] };
    let takes = match known.iter().find(|(path, _)| path == zcp) {
        Some(&(_, takes)) => takes,
        None => {
            let help = Command::new(zcp).args(["recv", "--help"]).output();
            let takes =
                help.is_ok_and(|h| String::from_utf8_lossy(&h.stdout).contains("--resume-wait"));
            known.push((zcp.to_path_buf(), takes));
            takes
        }
    };
    if takes { &["--resume-wait", "0"] } else { &[] }
}

/// For an `--encrypt` run: why the kernel did not seal records, if it did not; an error when
/// the report says the session was not encrypted at all.
fn encryption_note(exit: &Exit, side: &str) -> anyhow::Result<Option<String>> {
    let report: Value = serde_json::from_str(&exit.stdout)
        .with_context(|| format!("{} printed no JSON report", exit.name))?;
    let encryption = report["encryption"].as_str().unwrap_or("none");
    if !encryption.starts_with("tls1.3") {
        anyhow::bail!("{} ran with --encrypt but reports encryption {encryption}", exit.name);
    }
    let why = report["encryption_fallback"].as_str();
    Ok(why.map(|why| format!("{side}: {encryption}, {why}")))
}

/// The 512-byte blocks allocated to `source` and to `copy`.
fn allocated(source: &Path, copy: &Path) -> anyhow::Result<Blocks> {
    let blocks = |path: &Path| {
        std::fs::metadata(path).map(|m| m.blocks()).with_context(|| format!("{}", path.display()))
    };
    Ok(Blocks { source: blocks(source)?, copy: blocks(copy)? })
}

/// One end's numbers from its own zcp JSON report (`send.path`, `send.syscalls`, …).
fn reported_side(exit: &Exit, side: &str) -> anyhow::Result<Side> {
    let report: Value = serde_json::from_str(&exit.stdout)
        .with_context(|| format!("{} printed no JSON report", exit.name))?;
    let own = &report[side];
    let fallbacks = own["fallbacks"].as_array().map_or_else(Vec::new, |list| {
        list.iter()
            .map(|f| {
                let (from, why) = (f["from"].as_str(), f["reason"].as_str());
                format!("{side}: {} not used: {}", from.unwrap_or("?"), why.unwrap_or("?"))
            })
            .collect()
    });
    Ok(Side {
        path: own["path"].as_str().map(str::to_string),
        syscalls: own["syscalls"].as_u64(),
        bytes_per_call: own["bytes_per_call"].as_f64(),
        usage: exit.usage,
        fallbacks,
    })
}

/// A side of a peer tool: only what wait4 knows.
pub fn unreported_side(usage: Rusage) -> Side {
    Side { path: None, syscalls: None, bytes_per_call: None, usage, fallbacks: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000
   1: 0100007F:0016 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000
";

    #[test]
    fn listeners_are_found_by_port_and_state() {
        assert!(lists_listener(TABLE, 8080));
        assert!(!lists_listener(TABLE, 22), "an established socket is not a listener");
        assert!(!lists_listener(TABLE, 9999));
        assert!(!lists_listener("", 8080));
    }
}
