//! The end-to-end checksum for the zero-copy paths, whose bytes never pass through user space:
//! a thread reads the file back from the page cache with `pread` and hashes it with xxh3-128,
//! trailing behind the bytes the data path has already moved.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use xxhash_rust::xxh3::Xxh3;

/// Bytes the trailing thread waits for before it reads: few wake-ups, little lag.
const WINDOW: u64 = 4 << 20;
/// Read size of the `pread` fallback.
const HASH_BUFFER: usize = 256 << 10;

struct Shared {
    /// Bytes from the start of the file that may be read.
    ready: AtomicU64,
    /// No more bytes will become ready.
    done: AtomicBool,
    /// The copy failed: stop without finishing.
    abandoned: AtomicBool,
}

/// A thread hashing a file from byte 0 as its bytes become ready. Dropped without `finish`
/// (the copy failed), it tells the thread to stop rather than hash on for nothing.
pub struct BackgroundHash {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<io::Result<(u128, u64)>>>,
}

impl BackgroundHash {
    /// Starts hashing `file` from byte 0; the first `ready` bytes may be read at once.
    pub fn spawn(file: &File, ready: u64) -> io::Result<Self> {
        let file = file.try_clone()?;
        let shared = Arc::new(Shared {
            ready: AtomicU64::new(ready),
            done: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
        });
        let worker = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name("zcp-hash".into())
            .spawn(move || hash_as_ready(&file, &worker))?;
        Ok(Self { shared, handle: Some(handle) })
    }

    /// Says that the first `ready` bytes of the file are now written.
    pub fn advance(&self, ready: u64) {
        self.shared.ready.store(ready, Ordering::Release);
        if let Some(h) = &self.handle {
            h.thread().unpark();
        }
    }

    /// Says that the file ends at `len` and returns its digest and the reads it took.
    pub fn finish(mut self, len: u64) -> io::Result<(u128, u64)> {
        self.shared.ready.store(len, Ordering::Release);
        self.shared.done.store(true, Ordering::Release);
        let handle =
            self.handle.take().ok_or_else(|| io::Error::other("checksum already taken"))?;
        handle.thread().unpark();
        handle.join().map_err(|_| io::Error::other("checksum thread panicked"))?
    }
}

impl Drop for BackgroundHash {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            self.shared.abandoned.store(true, Ordering::Release);
            h.thread().unpark();
        }
    }
}

fn hash_as_ready(file: &File, shared: &Shared) -> io::Result<(u128, u64)> {
    let mut hasher = Xxh3::new();
    let (mut pos, mut calls) = (0u64, 0u64);
    loop {
        // Read `done` before `ready`: once done is seen, ready holds the final length.
        if shared.abandoned.load(Ordering::Acquire) {
            return Err(io::Error::other("checksum abandoned"));
        }
        let done = shared.done.load(Ordering::Acquire);
        let ready = shared.ready.load(Ordering::Acquire);
        if ready >= pos + WINDOW || (done && pos < ready) {
            let end = ready.min(pos + WINDOW);
            calls += hash_span(file, pos, end, &mut hasher)?;
            pos = end;
        } else if done {
            return Ok((hasher.digest128(), calls));
        } else {
            thread::park_timeout(Duration::from_millis(10));
        }
    }
}

/// Feeds bytes `from..to` of `file` to `hasher` with `pread` into an L2-sized buffer, returning
/// the system calls it took. (Mapping the pages instead measured no cheaper here: populating and
/// unmapping 4 KiB pages, and the TLB shootdowns of each unmap, cost about what the copy saves.)
fn hash_span(file: &File, from: u64, to: u64, hasher: &mut Xxh3) -> io::Result<u64> {
    hash_span_read(file, from, to, hasher)
}

/// `hash_span` with `pread` into a buffer.
fn hash_span_read(file: &File, from: u64, to: u64, hasher: &mut Xxh3) -> io::Result<u64> {
    let mut buf = vec![0u8; HASH_BUFFER.min((to - from) as usize)];
    let (mut pos, mut calls) = (from, 0u64);
    while pos < to {
        let want = (to - pos).min(buf.len() as u64) as usize;
        let n = read_at(file, &mut buf[..want], pos)?;
        hasher.update(&buf[..n]);
        pos += n as u64;
        calls += 1;
    }
    Ok(calls)
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
    let mut calls = 0;
    let mut pos = 0;
    while pos < len {
        let end = len.min(pos + WINDOW);
        calls += hash_span(file, pos, end, hasher)?;
        pos = end;
    }
    Ok(calls)
}

/// Files up to this size are hashed by the copying thread once their bytes moved: starting a
/// thread costs more than hashing them.
const INLINE_MAX: u64 = 1 << 20;

/// The checksum of one file on a zero-copy path: a trailing thread for large files, a read-back
/// by the caller at the end for small ones.
pub enum FileDigest {
    Thread(BackgroundHash),
    AtEnd,
}

impl FileDigest {
    /// Starts the checksum of `file`, whose first `ready` bytes are there and whose final length
    /// is `expected` when known.
    pub fn start(file: &File, ready: u64, expected: Option<u64>) -> io::Result<FileDigest> {
        match expected {
            Some(len) if len <= INLINE_MAX => Ok(FileDigest::AtEnd),
            _ => BackgroundHash::spawn(file, ready).map(FileDigest::Thread),
        }
    }

    /// Says that the first `ready` bytes of the file are now written.
    pub fn advance(&self, ready: u64) {
        if let FileDigest::Thread(hash) = self {
            hash.advance(ready);
        }
    }

    /// The digest of the first `len` bytes of `file`, and the reads it took.
    pub fn finish(self, file: &File, len: u64) -> io::Result<(u128, u64)> {
        match self {
            FileDigest::Thread(hash) => hash.finish(len),
            FileDigest::AtEnd => {
                let mut hasher = Xxh3::new();
                let calls = hash_prefix(file, len, &mut hasher)?;
                Ok((hasher.digest128(), calls))
            }
        }
    }
}
