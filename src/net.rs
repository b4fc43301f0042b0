//! Connecting and listening: resolves `HOST:PORT` (names, IPv4, `[IPv6]`) and tries every
//! address in order, naming each failure when all fail.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};

use anyhow::{Context, anyhow};

/// Connects to the first address of `dest` that answers.
pub fn connect(dest: &str) -> anyhow::Result<TcpStream> {
    let mut failures = Vec::new();
    let mut last = io::Error::other("no address");
    for addr in resolve(dest)? {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                stream.set_nodelay(true).context("setting TCP_NODELAY")?;
                return Ok(stream);
            }
            Err(e) => {
                failures.push(format!("{addr}: {e}"));
                last = e;
            }
        }
    }
    failures.pop();
    let also = if failures.is_empty() {
        String::new()
    } else {
        format!(" (also tried {})", failures.join("; "))
    };
    Err(anyhow::Error::from(last).context(format!("connecting to {dest}{also}")))
}

/// Binds a listener on `addr` (`IP:PORT`, port 0 for any free port).
pub fn listen(addr: &str) -> anyhow::Result<TcpListener> {
    let mut last = io::Error::other("no address");
    for a in resolve(addr)? {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(anyhow::Error::from(last).context(format!("listening on {addr}")))
}

fn resolve(dest: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = dest
        .to_socket_addrs()
        .with_context(|| format!("resolving {dest} (expected HOST:PORT, [IPv6]:PORT)"))?
        .collect();
    if addrs.is_empty() {
        return Err(anyhow!("resolving {dest}: no addresses"));
    }
    Ok(addrs)
}
