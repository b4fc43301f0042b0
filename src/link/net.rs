//! Connecting and listening: resolves `HOST:PORT` (names, IPv4, `[IPv6]`) and tries every
//! address in order, naming each failure when all fail; a one-peer end takes the first peer
//! that passes its handshake.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, anyhow};

use super::auth::Direction;
#[cfg(doc)]
use super::lobby::GRACE;
use super::lobby::{Lobby, Ticket};
use crate::error::SessionError;
use crate::sys::signals;

/// How the ends find each other.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Connect to this `HOST:PORT`.
    Connect(String),
    /// Listen here and take the first peer.
    Listen(String),
}

/// Connection options shared by both ends.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// Connect or listen, and where.
    pub link: Link,
    /// Limit of one connection attempt.
    pub connect_timeout: Duration,
    /// Further attempts after a refused or timed-out connection, a second apart.
    pub retries: u32,
    /// Abort when no bytes move for this long; `None` waits forever.
    pub idle_timeout: Option<Duration>,
    /// TLS 1.3 under the handshake (`--encrypt`).
    pub encrypt: bool,
}

/// How often a listening end waiting for its peer looks at signals and finished handshakes.
const TICK: Duration = Duration::from_millis(50);

/// What `greet` (the handshake, which takes the connection) made of the connection a one-peer
/// end uses: to `--connect`, or the first peer to reach `--listen` that `greet` accepts
/// (`listening` is told the bound address first). Accepted connections run `greet` in a `Lobby`: one that fails is logged and
/// ignored, and the end goes on waiting. While it waits, Ctrl-C and SIGTERM end the wait with
/// `SessionError::Interrupted`; once connected they act as usual.
pub fn establish<T: Send>(
    net: &NetConfig,
    listening: impl FnOnce(SocketAddr),
    greet: impl Fn(TcpStream, Direction) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<T> {
    match &net.link {
        Link::Connect(dest) => {
            let socket = connect(dest, net.connect_timeout, net.retries)?;
            greet(socket, Direction::Connected)
        }
        Link::Listen(addr) => {
            let listener = listen(addr)?;
            signals::install()?;
            listening(listener.local_addr().context("reading the listening address")?);
            let found = first_to_greet(&listener, &greet)?;
            signals::restore();
            Ok(found)
        }
    }
}

/// Accepts connections on `listener`, each greeted on its own thread in a `Lobby`, until one
/// passes `greet`; the others still waiting are then shut.
fn first_to_greet<T: Send>(
    listener: &TcpListener,
    greet: &(impl Fn(TcpStream, Direction) -> anyhow::Result<T> + Sync),
) -> anyhow::Result<T> {
    let lobby = Lobby::default();
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        let found = loop {
            if let Ok(found) = rx.try_recv() {
                break Ok(found);
            }
            if let Some(signal) = signals::pending() {
                let message = format!("stopped by {signal} while waiting for a peer");
                break Err(SessionError::Interrupted { signal, message }.into());
            }
            match accept_into(listener, &lobby, TICK) {
                Ok(Some((socket, peer, ticket))) => {
                    let tx = tx.clone();
                    let started = connection_thread(scope, move || {
                        let accepted = |s| greet(s, Direction::Accepted);
                        if let Some(greeted) = ticket.greet(socket, peer, accepted) {
                            let _ = tx.send(greeted);
                        }
                    });
                    if let Err(e) = started {
                        break Err(e);
                    }
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        lobby.close();
        found
    })
}

/// Connects to the first address of `dest` that answers, each attempt limited to `timeout`;
/// when every address refuses or times out, tries again `retries` times, a second apart.
pub fn connect(dest: &str, timeout: Duration, retries: u32) -> anyhow::Result<TcpStream> {
    let mut attempt = 0;
    loop {
        match connect_once(dest, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) if attempt < retries && retryable(&e) => {
                attempt += 1;
                thread::sleep(Duration::from_secs(1));
            }
            // The last error alone would read as a first try: say that --retry was spent.
            Err(e) if attempt > 0 => {
                let attempts = crate::units::counted(u64::from(attempt) + 1, "attempt");
                return Err(e.context(format!("gave up after {attempts} (--retry {retries})")));
            }
            Err(e) => return Err(e),
        }
    }
}

fn retryable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>().is_some_and(|e| {
        matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::TimedOut)
    })
}

fn connect_once(dest: &str, timeout: Duration) -> anyhow::Result<TcpStream> {
    let mut failures = Vec::new();
    let mut last = io::Error::other("no address");
    for addr in resolve(dest)? {
        match TcpStream::connect_timeout(&addr, timeout) {
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

/// The addresses a peer can reach a listener bound to `bound` at, for the command printed for
/// it: `bound` itself, or for a wildcard address each non-loopback address of an interface that
/// is up (IPv4; IPv6 too on `[::]`, less link-local ones, which need a scope), in the kernel's
/// order; the loopback address when the host has no other.
pub fn reachable(bound: SocketAddr) -> Vec<SocketAddr> {
    use nix::net::if_::InterfaceFlags;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let wanted = |ip: &IpAddr| match ip {
        IpAddr::V4(ip) => !ip.is_loopback(),
        IpAddr::V6(ip) => bound.is_ipv6() && !ip.is_loopback() && !ip.is_unicast_link_local(),
    };
    let mut found: Vec<SocketAddr> = nix::ifaddrs::getifaddrs()
        .into_iter()
        .flatten()
        .filter(|i| i.flags.contains(InterfaceFlags::IFF_UP))
        .filter_map(|i| {
            let a = i.address?;
            let ip = a.as_sockaddr_in().map(|a| IpAddr::V4(a.ip()));
            ip.or_else(|| a.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
        })
        .filter(wanted)
        .map(|ip| SocketAddr::new(ip, bound.port()))
        .collect();
    found.dedup();
    if found.is_empty() {
        let loopback = match bound {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        found.push(SocketAddr::new(loopback, bound.port()));
    }
    found
}

/// Waits up to `timeout` for a connection on `listener`; `None` when none came.
pub fn accept_within(
    listener: &TcpListener,
    timeout: Duration,
) -> anyhow::Result<Option<(TcpStream, SocketAddr)>> {
    if !readable(listener, timeout)? {
        return Ok(None);
    }
    match listener.accept() {
        Ok((stream, peer)) => {
            stream.set_nodelay(true).context("setting TCP_NODELAY")?;
            Ok(Some((stream, peer)))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(anyhow::Error::from(e).context("accepting a connection")),
    }
}

/// Waits up to `timeout` for a connection `lobby` has room for, accepts it and lets it in. A
/// full lobby makes room at once unless every handshake in it greeted less than `GRACE` ago;
/// only then do connections wait in the kernel's queue.
pub fn accept_into<'l>(
    listener: &TcpListener,
    lobby: &'l Lobby,
    timeout: Duration,
) -> anyhow::Result<Option<(TcpStream, SocketAddr, Ticket<'l>)>> {
    if !readable(listener, timeout)? || !lobby.make_room(timeout) {
        return Ok(None);
    }
    let Some((socket, peer)) = accept_within(listener, Duration::ZERO)? else { return Ok(None) };
    Ok(lobby.enter(&socket).map(|ticket| (socket, peer, ticket)))
}

/// Stops `listener` taking connections while it stays open: the kernel resets the ones queued
/// and refuses new ones (`shutdown` of a listening socket), so a peer learns at once.
pub fn stop_listening(listener: &TcpListener) {
    use nix::sys::socket::{Shutdown, shutdown};
    use std::os::fd::AsRawFd;
    let _ = shutdown(listener.as_raw_fd(), Shutdown::Read);
}

/// Starts the thread of one connection. A system out of threads refuses it (EAGAIN): that ends
/// the caller's run with a one-line error (exit 1) instead of the panic of `Scope::spawn`;
/// threads already running finish first.
pub fn connection_thread<'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    work: impl FnOnce() + Send + 'scope,
) -> anyhow::Result<()> {
    match thread::Builder::new().name("zcp-conn".into()).spawn_scoped(scope, work) {
        Ok(_) => Ok(()),
        Err(cause) => {
            Err(SessionError::ThreadRefused { thread: "a thread for a connection", cause }.into())
        }
    }
}

/// Whether a connection waits on `listener`, waiting up to `timeout` for one.
fn readable(listener: &TcpListener, timeout: Duration) -> anyhow::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, ms) {
        Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) => Err(anyhow::Error::from(e).context("waiting for a connection")),
    }
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

/// Checks that `addr`, given as `arg` (`--listen`, "the receiver's address"), has the shape
/// `HOST:PORT`, `IP:PORT` or `[IPv6]:PORT` with a port in 0..=65535, before anything is read
/// or resolved: a mistake there is a usage error (exit 2) that names the argument.
pub fn check_addr(arg: &str, addr: &str) -> Result<(), SessionError> {
    let bad = |why: String| {
        SessionError::Usage(format!(
            "{arg} takes HOST:PORT, IP:PORT or [IPv6]:PORT (e.g. 127.0.0.1:7878), got {addr:?}: \
             {why}"
        ))
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(bad("no port".into()));
    };
    if host.is_empty() {
        return Err(bad("no host".into()));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad("an IPv6 address goes in brackets".into()));
    }
    match port.parse::<u32>() {
        Ok(p) if p <= u32::from(u16::MAX) => Ok(()),
        Ok(p) => Err(bad(format!("port {p} is out of range (0 to 65535)"))),
        Err(_) => Err(bad(format!("{port:?} is not a port number"))),
    }
}

/// The addresses of `dest`. A name that does not resolve is a usage error naming the host
/// (exit 2): the command line is the likeliest culprit, though a resolver that is down looks
/// the same from here.
fn resolve(dest: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = match dest.to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            let host = dest.rsplit_once(':').map_or(dest, |(h, _)| h);
            return Err(SessionError::Usage(format!(
                "cannot resolve host {host} (in {dest}): {e}{}",
                no_resolver_hint()
            ))
            .into());
        }
    };
    if addrs.is_empty() {
        return Err(anyhow!("resolving {dest}: no addresses"));
    }
    Ok(addrs)
}

/// The reason a lookup fails on a system with no resolver files at all (an empty chroot, a
/// scratch container), where only numeric addresses can work; empty elsewhere.
fn no_resolver_hint() -> &'static str {
    let missing = |path: &str| !std::path::Path::new(path).exists();
    if missing("/etc/hosts") && missing("/etc/resolv.conf") {
        " (there is no /etc/hosts or /etc/resolv.conf here: give a numeric address)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::check_addr;

    #[test]
    fn addresses_are_host_colon_port() {
        for good in ["127.0.0.1:7878", "[::1]:0", "host.example:65535", "0.0.0.0:7878"] {
            assert!(check_addr("--listen", good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("127.0.0.1", "no port"),
            ("7878", "no port"),
            (":7878", "no host"),
            ("127.0.0.1:80000", "out of range"),
            ("::1:7878", "brackets"),
            ("host:http", "not a port number"),
        ] {
            let err = check_addr("--listen", bad).expect_err(bad).to_string();
            assert!(err.contains(why) && err.contains("--listen"), "{bad}: {err}");
        }
    }
}
