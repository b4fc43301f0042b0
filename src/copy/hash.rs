//! The end-to-end checksum where the data path never shows the bytes to user space: the sender
//! reads its source back from the page cache with `pread` and hashes it with xxh3-128, in a
//! second thread while `sendfile`/`splice` push the same pages (files up to 1 MiB are hashed by
//! the copying thread afterwards: a thread costs more than that). The receiver hashes what it
//! just wrote from a mapping of the file instead (see `mapped.rs`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use crate::checksum::Xxh3;
use crate::error::SessionError;

/// Bytes read per `pread`: large enough to amortise the call, small enough to stay in L2.
const HASH_BUFFER: usize = 256 << 10;
/// Bytes hashed between two looks at whether the copy was abandoned.
const STEP: u64 = 4 << 20;
/// Files up to this size are hashed by the copying thread once their bytes moved.
const INLINE_MAX: u64 = 1 << 20;

/// The checksum of a file being sent on a zero-copy path.
pub enum FileDigest {
    /// A thread hashes the file while the data path sends it.
    Thread(BackgroundHash),
    /// A small file: hashed by `finish`.
    AtEnd,
    /// No checksum wanted (raw mode): `finish` gives 0 and reads nothing.
    Off,
}

impl FileDigest {
    /// Starts the checksum of the first `len` bytes of `file`, if `wanted`.
    pub fn start(file: &File, len: u64, wanted: bool) -> io::Result<FileDigest> {
        if !wanted {
            Ok(FileDigest::Off)
        } else if len <= INLINE_MAX {
            Ok(FileDigest::AtEnd)
        } else {
            BackgroundHash::spawn(file, len).map(FileDigest::Thread)
        }
    }

    /// The digest and the reads it took.
    pub fn finish(self, file: &File, len: u64) -> io::Result<(u128, u64)> {
        match self {
            FileDigest::Thread(hash) => hash.finish(),
            FileDigest::AtEnd => {
                let mut hasher = Xxh3::new();
                let calls = hash_span(file, 0, len, &mut hasher)?;
                Ok((hasher.digest128(), calls))
            }
            FileDigest::Off => Ok((0, 0)),
        }
    }
}

/// A thread hashing the first `len` bytes of a file. Dropped without `finish` (the copy
/// failed), it tells the thread to stop rather than hash on for nothing.
pub struct BackgroundHash {
    abandoned: Arc<AtomicBool>,
    handle: Option<JoinHandle<io::Result<(u128, u64)>>>,
}

impl BackgroundHash {
    fn spawn(file: &File, len: u64) -> io::Result<Self> {
        let file = file.try_clone()?;
        let abandoned = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&abandoned);
        let handle = thread::Builder::new()
            .name("zcp-hash".into())
            .spawn(move || hash_until_stopped(&file, len, &stop))
            .map_err(|cause| {
                io::Error::other(SessionError::ThreadRefused {
                    thread: "the checksum thread",
                    cause,
                })
            })?;
        Ok(Self { abandoned, handle: Some(handle) })
    }

    fn finish(mut self) -> io::Result<(u128, u64)> {
        let handle = self.handle.take().ok_or_else(|| io::Error::other("checksum taken twice"))?;
        handle.join().map_err(|_| io::Error::other("checksum thread panicked"))?
    }
}

impl Drop for BackgroundHash {
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::Release);
    }
}

fn hash_until_stopped(file: &File, len: u64, stop: &AtomicBool) -> io::Result<(u128, u64)> {
    let mut hasher = Xxh3::new();
    let (mut pos, mut calls) = (0, 0);
    while pos < len {
        if stop.load(Ordering::Acquire) {
            return Err(io::Error::other("checksum abandoned"));
        }
        let end = len.min(pos + STEP);
        calls += hash_span(file, pos, end, &mut hasher)?;
        pos = end;
    }
    Ok((hasher.digest128(), calls))
}

/// Feeds bytes `from..to` of `file` to `hasher` (one data range of a sparse file), returning
/// the reads it took.
pub fn hash_range(file: &File, from: u64, to: u64, hasher: &mut Xxh3) -> io::Result<u64> {
    hash_span(file, from, to, hasher)
}

/// Feeds bytes `from..to` of `file` to `hasher` with `pread`, returning the calls it took.
/// (Mapping the pages instead measured no cheaper here: populating and unmapping 4 KiB pages,
/// and the TLB shootdowns of each unmap, cost about what the copy saves.)
fn hash_span(file: &File, from: u64, to: u64, hasher: &mut Xxh3) -> io::Result<u64> {
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
