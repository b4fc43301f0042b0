//! A one-connection TCP proxy between a sender and a receiver that records what the sender
//! wrote and can cut the connection or flip a byte on the way.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::SESSION;

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

/// Accepts one client (waiting at most `SESSION`), connects upstream and forwards.
fn serve(listener: TcpListener, upstream: SocketAddr, fault: Fault) -> io::Result<ProxyLog> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + SESSION;
    let client = loop {
        match listener.accept() {
            Ok((client, _)) => break client,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                // Polling for the sender, bounded by the deadline above.
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(e),
        }
    };
    client.set_nonblocking(false)?;
    let server = TcpStream::connect(upstream)?;
    for s in [&client, &server] {
        s.set_read_timeout(Some(SESSION))?;
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
