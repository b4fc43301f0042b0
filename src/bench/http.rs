//! The HTTP rows of `--compare`: the file fetched by `curl -o` from `zcp send --http`, by
//! the same curl from `python3 -m http.server`, and as many bytes from a server that sends one
//! buffer over and over (curl's ceiling). The server is the sending side of the row, curl the
//! receiving one; the wall time runs from starting curl until it exited (and, for zcp, until the
//! one-shot server ended too; python's server is stopped with SIGTERM after).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::process::{Exit, Proc};
use super::run::{Ready, RunContext, Transfer, await_ready, free_port};
use crate::link::auth::TOKEN_ENV;

/// Where curl writes the copy, inside the run's directory.
const COPY: &str = "copy";
/// The name python's server finds the file by: a link to it in the run's directory.
const SOURCE_LINK: &str = "source";

/// `zcp send --http FILE` (one-shot) fetched by `curl -o copy`.
pub fn zcp_curl(curl: &Path, ctx: &RunContext<'_>, dir: &Path) -> anyhow::Result<Transfer> {
    let mut server = Command::new(ctx.zcp);
    server.args(["send", "--http", "--quiet", "--listen", "127.0.0.1:0"]).arg(ctx.source);
    server.env(TOKEN_ENV, ctx.token).stdout(Stdio::null());
    let name = ctx.source.file_name().map(|n| n.to_string_lossy().into_owned());
    let path = crate::http::url_path(name.as_deref().unwrap_or_default());
    let header = format!("Authorization: Bearer {}", ctx.token);
    fetch(
        "zcp send --http",
        &mut server,
        Ready::Announced,
        |addr| {
            let mut cmd = Command::new(curl);
            cmd.args(["-sSf", "-H", &header, "-o"]).arg(dir.join(COPY));
            cmd.arg(format!("http://{addr}/{path}"));
            cmd
        },
        false,
    )
}

/// `python3 -m http.server` in the run's directory, fetched by the same `curl -o copy`.
pub fn python_curl(
    python: &Path,
    curl: &Path,
    ctx: &RunContext<'_>,
    dir: &Path,
) -> anyhow::Result<Transfer> {
    std::os::unix::fs::symlink(ctx.source, dir.join(SOURCE_LINK))
        .with_context(|| format!("linking {} into {}", ctx.source.display(), dir.display()))?;
    let port = free_port()?;
    let mut server = Command::new(python);
    server.args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"]);
    server.arg(dir).stdout(Stdio::null());
    fetch(
        "python3 -m http.server",
        &mut server,
        Ready::Listening(port),
        |addr| {
            let mut cmd = Command::new(curl);
            cmd.args(["-sSf", "-o"]).arg(dir.join(COPY));
            cmd.arg(format!("http://{addr}/{SOURCE_LINK}"));
            cmd
        },
        true,
    )
}

/// A one-shot HTTP server in Python (argv: port, size): answers the first request with `size`
/// bytes cut from one 1 MiB buffer, written once so it stays in the CPU caches, in 1 MiB
/// `send`s. It reads no file and copies nothing but into the socket: the least a server can
/// leave curl to do, so curl's rate from it is the ceiling of any server on this machine.
const MEMORY_SERVER: &str = r#"
import socket, sys
port, size = int(sys.argv[1]), int(sys.argv[2])
block = memoryview(bytes(range(256)) * 4096)
with socket.create_server(("127.0.0.1", port)) as server:
    conn, _ = server.accept()
    with conn:
        head = b""
        while b"\r\n\r\n" not in head:
            more = conn.recv(16384)
            if not more:
                sys.exit("the client sent no request")
            head += more
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
        while size:
            n = min(size, len(block))
            conn.sendall(block[:n])
            size -= n
"#;

/// The ceiling: as many bytes as the file has, from `MEMORY_SERVER`, fetched by the same
/// `curl -o copy` (the copy has the file's size, not its bytes).
pub fn memory_curl(
    python: &Path,
    curl: &Path,
    ctx: &RunContext<'_>,
    dir: &Path,
) -> anyhow::Result<Transfer> {
    let port = free_port()?;
    let mut server = Command::new(python);
    server.args(["-c", MEMORY_SERVER, &port.to_string(), &ctx.size.to_string()]);
    server.stdout(Stdio::null());
    fetch(
        "python3 memory server",
        &mut server,
        Ready::Listening(port),
        |addr| {
            let mut cmd = Command::new(curl);
            cmd.args(["-sSf", "-o"]).arg(dir.join(COPY));
            cmd.arg(format!("http://{addr}/"));
            cmd
        },
        false,
    )
}

/// Runs `server`, then `client(address)` once it is ready; a server that serves on (`stop`)
/// is ended with SIGTERM once the client is done.
fn fetch(
    name: &str,
    server: &mut Command,
    ready: Ready,
    client: impl FnOnce(std::net::SocketAddr) -> Command,
    stop: bool,
) -> anyhow::Result<Transfer> {
    let (proc, addr) =
        await_ready(Proc::spawn(&format!("{name} server"), server.stdin(Stdio::null()))?, ready)?;
    let clock = Instant::now();
    let mut client = client(addr);
    client.stdin(Stdio::null()).stdout(Stdio::null());
    let fetched = Proc::spawn("curl", &mut client)?.wait()?;
    // What the user waits for: curl's download (zcp's one-shot server ends right after).
    let wall = clock.elapsed();
    if stop || !fetched.success() {
        let _ = kill(Pid::from_raw(proc.pid()), Signal::SIGTERM);
    }
    let served: Exit = proc.wait()?;
    fetched.ensure_success()?;
    if !stop {
        served.ensure_success()?;
    }
    Ok(Transfer { sent: served, received: fetched, wall })
}
