//! Connections whose request head is still arriving. They hold none of the slots (16, or
//! `--max-conns`) that requests take: a slot goes only to a request whose whole head arrived
//! within `HEAD_TIME`. At most `MAX_HEADS` heads arrive at once; a newcomer past that shuts
//! the oldest, which is the slowest, since a real client sends its head in one write. So
//! connections trickling a head cannot turn away a complete request, however many they are
//! (the numbers: `manual::lobby`).

use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Heads that may be arriving at once, each on its own thread.
pub const MAX_HEADS: usize = 64;

/// The connections whose heads are arriving now, oldest first.
#[derive(Default)]
pub struct Heads {
    arriving: Mutex<Vec<Arriving>>,
    next: AtomicU64,
}

struct Arriving {
    id: u64,
    socket: TcpStream,
    pushed_out: bool,
}

/// A connection's place among the arriving heads, from `enter` until dropped.
pub struct Place<'h> {
    heads: &'h Heads,
    id: u64,
}

impl Heads {
    /// Lets a connection in to send its head; when `MAX_HEADS` are arriving, the oldest is
    /// shut first. `None` when the connection cannot be watched (it is then shut).
    pub fn enter(&self, socket: &TcpStream) -> Option<Place<'_>> {
        let Ok(mut arriving) = self.arriving.lock() else { return None };
        let Ok(watched) = socket.try_clone() else {
            let _ = socket.shutdown(Shutdown::Both);
            return None;
        };
        if arriving.iter().filter(|a| !a.pushed_out).count() >= MAX_HEADS
            && let Some(oldest) = arriving.iter_mut().find(|a| !a.pushed_out)
        {
            oldest.pushed_out = true;
            let _ = oldest.socket.shutdown(Shutdown::Both);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        arriving.push(Arriving { id, socket: watched, pushed_out: false });
        Some(Place { heads: self, id })
    }

    /// Shuts every connection whose head is still arriving: the server is done.
    pub fn close(&self) {
        if let Ok(arriving) = self.arriving.lock() {
            arriving.iter().for_each(|a| drop(a.socket.shutdown(Shutdown::Both)));
        }
    }
}

impl Place<'_> {
    /// Whether a newer connection pushed this one out.
    pub fn pushed_out(&self) -> bool {
        let Ok(arriving) = self.heads.arriving.lock() else { return true };
        arriving.iter().any(|a| a.id == self.id && a.pushed_out)
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if let Ok(mut arriving) = self.heads.arriving.lock() {
            arriving.retain(|a| a.id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn a_newcomer_past_the_bound_shuts_the_oldest_head() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let heads = Heads::default();
        let mut held = Vec::new();
        for _ in 0..=MAX_HEADS {
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            held.push((client, heads.enter(&server).unwrap()));
        }
        let mut buf = [0u8; 1];
        assert_eq!(held[0].0.read(&mut buf).unwrap(), 0, "the oldest was shut");
        assert!(held[0].1.pushed_out());
        assert!(!held[1].1.pushed_out(), "only the oldest");
        assert!(!held[MAX_HEADS].1.pushed_out(), "the newest keeps its place");
        drop(held.remove(1));
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        held.push((client, heads.enter(&server).unwrap()));
        assert!(!held[1].1.pushed_out(), "a place given back made room");
    }
}
