//! The checksum of a file read from a read-only shared mapping of it, window by window, with no
//! copy into a buffer. The splice receiver hashes each run right after splicing it into the
//! file, while its pages are still in cache from that write: the bytes' only read.
//! A window is unmapped once hashed, so the mapping never adds more than `WINDOW` to the RSS.

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use crate::checksum::Xxh3;
use nix::errno::Errno;
use nix::sys::mman::{MapFlags, MmapAdvise, ProtFlags, madvise, mmap, munmap};

/// Bytes mapped at once: a multiple of every page size, and the most the mapping adds to RSS.
const WINDOW: u64 = 4 << 20;
/// Granularity of the ranges asked to be populated: the smallest page size.
const PAGE: u64 = 4 << 10;

/// An xxh3-128 of a file's bytes from byte 0, fed as they become available.
pub(super) struct MappedDigest<'a> {
    file: &'a File,
    hasher: Box<Xxh3>,
    /// Bytes of the file hashed so far, from byte 0.
    hashed: u64,
    window: Option<Window>,
    /// mmap, madvise and munmap calls made.
    pub calls: u64,
}

impl<'a> MappedDigest<'a> {
    /// A digest of `file` of which nothing is hashed yet.
    pub fn new(file: &'a File) -> Self {
        Self { file, hasher: Box::new(Xxh3::new()), hashed: 0, window: None, calls: 0 }
    }

    /// Hashes the file's bytes up to offset `to`, all of which must already be in the file
    /// (reading a mapped page past the end of a file raises SIGBUS).
    pub fn hash_to(&mut self, to: u64) -> io::Result<()> {
        while self.hashed < to {
            let window = match self.window.take() {
                Some(window) if self.hashed < window.end() => window,
                _ => {
                    self.calls += 1;
                    Window::map(self.file, self.hashed - self.hashed % WINDOW)?
                }
            };
            let end = to.min(window.end());
            self.calls += 1;
            window.populate(self.hashed, end);
            self.hasher.update(window.bytes(self.hashed, end));
            self.hashed = end;
            if end < window.end() {
                self.window = Some(window);
            } else {
                self.calls += 1;
            }
        }
        Ok(())
    }

    /// The digest of the bytes hashed, and the calls it took.
    pub fn finish(mut self) -> (u128, u64) {
        if self.window.take().is_some() {
            self.calls += 1;
        }
        (self.hasher.digest128(), self.calls)
    }
}

/// `WINDOW` bytes of a file from `start`, mapped read-only and shared; unmapped on drop.
struct Window {
    start: u64,
    ptr: NonNull<c_void>,
}

impl Window {
    fn map(file: &File, start: u64) -> io::Result<Window> {
        let len = NonZeroUsize::new(WINDOW as usize).ok_or(Errno::EINVAL)?;
        let offset = i64::try_from(start).map_err(|_| Errno::EOVERFLOW)?;
        // SAFETY: a new mapping at an address of the kernel's choosing aliases no Rust memory.
        // It may reach past the end of the file; `bytes` is only asked for bytes in the file.
        let ptr =
            unsafe { mmap(None, len, ProtFlags::PROT_READ, MapFlags::MAP_SHARED, file, offset) }?;
        Ok(Window { start, ptr })
    }

    fn end(&self) -> u64 {
        self.start + WINDOW
    }

    /// Maps the pages of `from..to` in one call rather than a fault per few pages. Only a
    /// hint: where the kernel cannot (before Linux 5.14), the reads fault them in.
    fn populate(&self, from: u64, to: u64) {
        let first = (from - self.start) / PAGE * PAGE;
        let last = (to - self.start).div_ceil(PAGE) * PAGE;
        // SAFETY: `first..last` lies inside this mapping (page-aligned, at most WINDOW long);
        // populating page tables changes no bytes.
        let at = unsafe { self.ptr.byte_add(first as usize) };
        let len = (last.min(WINDOW) - first) as usize;
        // SAFETY: as above; the advice only populates page tables.
        let _ = unsafe { madvise(at, len, MmapAdvise::MADV_POPULATE_READ) };
    }

    /// Bytes `from..to` of the file, which must lie in this window and in the file.
    fn bytes(&self, from: u64, to: u64) -> &[u8] {
        debug_assert!(self.start <= from && from <= to && to <= self.end());
        // SAFETY: the range lies in this live mapping (checked above) and below the end of the
        // file (the caller's contract), so every page is readable. The bytes may change
        // under us only if another process writes the file; zcp's part files are locked, and
        // a change would at worst give a wrong digest, i.e. a checksum mismatch.
        unsafe {
            let at = self.ptr.byte_add((from - self.start) as usize).cast::<u8>();
            std::slice::from_raw_parts(at.as_ptr(), (to - from) as usize)
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and no slice of it outlives `bytes`' borrow of self.
        let _ = unsafe { munmap(self.ptr, WINDOW as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn windows_hash_like_one_pass_whatever_the_steps() {
        let len = (2 * WINDOW + 12_345) as usize;
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&data).expect("write");
        for step in [1 << 20, 3 * 4096 + 7, WINDOW as usize, len] {
            let mut digest = MappedDigest::new(&file);
            let mut to = 0;
            while to < len {
                to = (to + step).min(len);
                digest.hash_to(to as u64).expect("hash");
            }
            let (got, calls) = digest.finish();
            assert_eq!(got, xxhash_rust::xxh3::xxh3_128(&data), "step {step}");
            assert!(calls >= 6, "three windows mapped and unmapped: {calls}");
        }
    }
}
