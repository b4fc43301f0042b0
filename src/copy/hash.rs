//! The end-to-end checksum for the zero-copy paths, whose bytes never pass through user space:
//! a thread reads the file back with `pread` (from the page cache) and hashes it with xxh3-128,
//! trailing behind the bytes the data path has already moved.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use xxhash_rust::xxh3::Xxh3;

/// Read size of the hashing thread: large enough to amortise the call, small enough for L2.
const HASH_BUFFER: usize = 256 << 10;

struct Shared {
    /// Bytes from the start of the file that may be read.
    ready: AtomicU64,
    /// No more bytes will become ready.
    done: AtomicBool,
}

/// A thread hashing a file from byte 0 as its bytes become ready.
pub struct BackgroundHash {
    shared: Arc<Shared>,
    handle: JoinHandle<io::Result<(u128, u64)>>,
}

impl BackgroundHash {
    /// Starts hashing `file` from byte 0; the first `ready` bytes may be read at once.
    pub fn spawn(file: &File, ready: u64) -> io::Result<Self> {
        let file = file.try_clone()?;
        let shared =
            Arc::new(Shared { ready: AtomicU64::new(ready), done: AtomicBool::new(false) });
        let worker = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name("zcp-hash".into())
            .spawn(move || hash_as_ready(&file, &worker))?;
        Ok(Self { shared, handle })
    }

    /// Says that the first `ready` bytes of the file are now written.
    pub fn advance(&self, ready: u64) {
        self.shared.ready.store(ready, Ordering::Release);
        self.handle.thread().unpark();
    }

    /// Says that the file ends at `len` and returns its digest and the reads it took.
    pub fn finish(self, len: u64) -> io::Result<(u128, u64)> {
        self.shared.ready.store(len, Ordering::Release);
        self.shared.done.store(true, Ordering::Release);
        self.handle.thread().unpark();
        self.handle.join().map_err(|_| io::Error::other("checksum thread panicked"))?
    }
}

fn hash_as_ready(file: &File, shared: &Shared) -> io::Result<(u128, u64)> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    let (mut pos, mut calls) = (0u64, 0u64);
    loop {
        // Read `done` before `ready`: once done is seen, ready holds the final length.
        let done = shared.done.load(Ordering::Acquire);
        let ready = shared.ready.load(Ordering::Acquire);
        if pos < ready {
            let want = (ready - pos).min(HASH_BUFFER as u64) as usize;
            let n = read_at(file, &mut buf[..want], pos)?;
            calls += 1;
            hasher.update(&buf[..n]);
            pos += n as u64;
        } else if done {
            return Ok((hasher.digest128(), calls));
        } else {
            thread::park_timeout(Duration::from_millis(10));
        }
    }
}

fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, pos) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ended at byte {pos} while computing its checksum"),
                ));
            }
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Hashes the first `len` bytes of `file` into `hasher` (the part a resumed transfer skips).
pub fn hash_prefix(file: &File, len: u64, hasher: &mut Xxh3) -> io::Result<u64> {
    let mut buf = vec![0u8; HASH_BUFFER.min(len as usize)];
    let (mut pos, mut calls) = (0u64, 0u64);
    while pos < len {
        let want = (len - pos).min(buf.len() as u64) as usize;
        let n = read_at(file, &mut buf[..want], pos)?;
        hasher.update(&buf[..n]);
        pos += n as u64;
        calls += 1;
    }
    Ok(calls)
}
