//! Sparse files: where a source's data lies (`SEEK_DATA`/`SEEK_HOLE`), as the runs
//! of hole and data the sparse wire form sends, and the checksum's view of a hole (zeros that
//! are never read). Which file goes sparse is the session's choice; the data paths move each
//! data range as they move a whole file.

use std::fs::File;
use std::io::{self, Read, Write};

use crate::checksum::Xxh3;
use anyhow::Context;

use super::source::Source;
use super::{Counted, Framing, Incoming, Moved, Tick, Timed, hash_range};
use crate::datapath::{DataPath, Method};
use crate::error::SessionError;
use crate::protocol;

/// Holes shorter than this are sent as data: a run costs a header and a data-path call, and
/// file systems report holes by the block, so a smaller one saves nothing worth that.
pub const MIN_HOLE: u64 = 64 << 10;
/// Runs one file may take at most; a file more fragmented than that is sent plain (whole).
const MAX_RUNS: usize = 1 << 16;
/// Zeros written per `write` where a hole must be written out.
const ZEROS: usize = 64 << 10;
static ZERO_BLOCK: [u8; ZEROS] = [0; ZEROS];
/// Zeros hashed between two ticks where a hole is left unwritten: a few milliseconds' work.
const HASHED_ZEROS: u64 = 16 << 20;

/// One run of the sparse form: `hole` zero bytes, then the `data` bytes at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Zero bytes before the data, not sent.
    pub hole: u64,
    /// Offset of the data in the file.
    pub at: u64,
    /// Length of the data.
    pub data: u64,
}

/// The runs that cover bytes `from..size` of `file`, when the file system reports at least one
/// hole of `MIN_HOLE` or more there; `None` for a dense file, a file system that cannot tell
/// (every byte is then data), or a file too fragmented to be worth it.
pub fn runs(file: &File, from: u64, size: u64) -> io::Result<Option<Vec<Run>>> {
    let Some(extents) = platform_extents(file, from, size)? else { return Ok(None) };
    let runs = runs_of(&extents, from, size);
    let holes = runs.iter().any(|r| r.hole > 0) || runs.last().is_some_and(|r| r.data == 0);
    Ok((holes && runs.len() <= MAX_RUNS).then_some(runs))
}

/// Runs from data extents (`start..end`, in order, within `from..size`): holes shorter than
/// `MIN_HOLE` are folded into the data around them; a trailing hole is a run with no data.
pub fn runs_of(extents: &[(u64, u64)], from: u64, size: u64) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut pos = from;
    for &(start, end) in extents {
        let (start, end) = (start.max(pos), end.min(size));
        if start >= end {
            continue;
        }
        match runs.last_mut() {
            // A short hole (or none): the previous run's data grows over it.
            Some(last) if start - pos < MIN_HOLE => last.data = end - last.at,
            _ if start - pos < MIN_HOLE && pos == from => {
                runs.push(Run { hole: 0, at: pos, data: end - pos });
            }
            _ => runs.push(Run { hole: start - pos, at: start, data: end - start }),
        }
        pos = end;
    }
    if pos < size {
        match runs.last_mut() {
            Some(last) if size - pos < MIN_HOLE => last.data = size - last.at,
            _ => runs.push(Run { hole: size - pos, at: size, data: 0 }),
        }
    }
    runs
}

/// Hashes the first `len` bytes of `file` into `hasher` (the part a resumed transfer skips,
/// at either end): its holes as zeros without reading them, where the file system reports
/// holes, its data by `pread`. Returns the reads it took.
pub fn hash_prefix(file: &File, len: u64, hasher: &mut Xxh3) -> io::Result<u64> {
    if len == 0 {
        // Nothing to hash, and nothing to ask: the file may be a pipe (standard output).
        return Ok(0);
    }
    let Some(runs) = runs(file, 0, len)? else { return hash_range(file, 0, len, hasher) };
    let mut calls = 0;
    for run in runs {
        hasher.update_zeros(run.hole);
        calls += hash_range(file, run.at, run.at + run.data, hasher)?;
    }
    Ok(calls)
}

/// Receives a file of `size` bytes in the sparse form into `inc.file` from `inc.offset`:
/// each run's data by the first path of `method` that serves, its hole left unwritten (the
/// file is extended to `size` at the end, so holes stay holes), or written as zeros where the
/// output takes bytes only in order (standard output). The checksum covers the whole file.
pub fn recv_sparse(
    inc: &Incoming<'_>,
    method: Method,
    size: u64,
    tick: Tick<'_>,
) -> anyhow::Result<Moved> {
    let mut hasher = Xxh3::new();
    let mut file = Moved::default();
    file.checksum_calls += hash_prefix(inc.file, inc.offset, &mut hasher)?;
    let mut pos = inc.offset;
    // The buffer of `copy_in_order`, made once for all the runs of a file.
    let mut buf = Vec::new();
    while pos < size {
        let (hole, data) =
            protocol::read_sparse_run(&mut Timed::reading(inc.socket), size - pos)
                .map_err(|e| lost(e.into(), file.bytes + file.holes, size - inc.offset))?;
        let base = file.bytes + file.holes;
        take_hole(inc, hole, &mut hasher, &mut |n| tick(base + n))?;
        (pos, file.holes) = (pos + hole, file.holes + hole);
        if data == 0 {
            continue;
        }
        let base = file.bytes + file.holes;
        let moved = if inc.positioned {
            let range =
                Incoming { framing: Framing::Sized(data), offset: pos, checksum: false, ..*inc };
            let moved = super::recv(&range, method, &mut |n| tick(base + n))?;
            file.checksum_calls += hash_range(inc.file, pos, pos + data, &mut hasher)?;
            moved
        } else {
            copy_in_order(inc, data, (&mut buf, &mut hasher), &mut |n| tick(base + n))?
        };
        file.absorb(moved);
        pos += data;
    }
    if inc.positioned {
        inc.file.set_len(size).context("extending the file over its last hole")?;
    }
    (file.files, file.xxh3) = (1, hasher.digest128());
    Ok(file)
}

/// A connection that ended inside a sparse file is "connection lost", as inside any other.
fn lost(e: anyhow::Error, received: u64, expected: u64) -> anyhow::Error {
    let truncated = e.downcast_ref::<protocol::ProtocolError>().is_some_and(|p| {
        matches!(p, protocol::ProtocolError::Truncated(_) | protocol::ProtocolError::Closed)
    });
    if truncated {
        SessionError::ConnectionLost { received, expected: Some(expected) }.into()
    } else {
        e.context("reading a sparse run")
    }
}

/// `data` bytes from the socket into an output that takes bytes only in order, hashed on the
/// way (it cannot be read back); `buf` is sized to the buffer on first use.
fn copy_in_order(
    inc: &Incoming<'_>,
    data: u64,
    (buf, hasher): (&mut Vec<u8>, &mut Xxh3),
    tick: Tick<'_>,
) -> anyhow::Result<Moved> {
    buf.resize(inc.buffer_size.max(4096), 0);
    let (mut socket, mut out) = (Counted::new(Timed::reading(inc.socket)), Counted::new(inc.file));
    let mut done = 0u64;
    while done < data {
        let want = (data - done).min(buf.len() as u64) as usize;
        let n = socket.read(&mut buf[..want])?;
        if n == 0 {
            return Err(
                SessionError::ConnectionLost { received: done, expected: Some(data) }.into()
            );
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        done += n as u64;
        tick(done)?;
    }
    let calls = socket.calls + out.calls;
    Ok(Moved { data_path: DataPath::Buffered, bytes: data, calls, files: 1, ..Moved::default() })
}

/// Takes a hole of `len` zeros a piece at a time: hashes it, writes it where the output
/// takes bytes only in order (standard output), and ticks the zeros so far after each piece.
/// A hole counts as the zeros it stands for, so a size bound or a stop signal meets a long
/// hole (hashing 1 TiB of zeros takes minutes) as it meets data.
fn take_hole(
    inc: &Incoming<'_>,
    len: u64,
    hasher: &mut Xxh3,
    tick: Tick<'_>,
) -> anyhow::Result<()> {
    let piece = if inc.positioned { HASHED_ZEROS } else { ZEROS as u64 };
    let mut done = 0;
    while done < len {
        let step = (len - done).min(piece);
        hasher.update_zeros(step);
        if !inc.positioned {
            (&*inc.file)
                .write_all(&ZERO_BLOCK[..step as usize])
                .context("writing a hole as zeros")?;
        }
        done += step;
        tick(done)?;
    }
    Ok(())
}

impl Source {
    /// The same file, ending at `end`: one data range for the data paths, which send from an
    /// offset to the source's size.
    pub fn window(&self, end: u64) -> io::Result<Source> {
        Ok(Source {
            file: self.file.try_clone()?,
            name: self.name.clone(),
            display: self.display.clone(),
            kind: self.kind,
            size: Some(end),
            mode: self.mode,
            mtime_sec: self.mtime_sec,
            mtime_nsec: self.mtime_nsec,
        })
    }
}

/// The data extents of `from..size`, by `SEEK_DATA`/`SEEK_HOLE`; `None` where the file system
/// does not support them (`EINVAL`, `EOPNOTSUPP`).
#[cfg(target_os = "linux")]
fn platform_extents(file: &File, from: u64, size: u64) -> io::Result<Option<Vec<(u64, u64)>>> {
    use nix::unistd::{Whence, lseek};
    // The seeks move the file's position, which the buffered path reads from: put it back.
    let was = lseek(file, 0, Whence::SeekCur)?;
    let extents = seek_extents(file, from, size);
    lseek(file, was, Whence::SeekSet)?;
    extents
}

#[cfg(target_os = "linux")]
fn seek_extents(file: &File, from: u64, size: u64) -> io::Result<Option<Vec<(u64, u64)>>> {
    use nix::errno::Errno;
    use nix::unistd::{Whence, lseek};
    let mut extents = Vec::new();
    let mut pos = from;
    while pos < size {
        let start = match lseek(file, pos as i64, Whence::SeekData) {
            Ok(at) => at as u64,
            // No data from here to the end: the rest is a hole.
            Err(Errno::ENXIO) => break,
            Err(Errno::EINVAL | Errno::EOPNOTSUPP) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if start >= size {
            break;
        }
        let end = match lseek(file, start as i64, Whence::SeekHole) {
            Ok(at) => (at as u64).min(size),
            Err(Errno::ENXIO) => size,
            Err(e) => return Err(e.into()),
        };
        extents.push((start, end));
        if extents.len() > MAX_RUNS {
            return Ok(None);
        }
        pos = end.max(start + 1);
    }
    Ok(Some(extents))
}

#[cfg(not(target_os = "linux"))]
fn platform_extents(_file: &File, _from: u64, _size: u64) -> io::Result<Option<Vec<(u64, u64)>>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resumed prefix of a sparse file hashes as its bytes, and its holes are not read: one
    /// `pread` per data range (each under 256 KiB), where reading all 800 MiB would take
    /// 3,200.
    #[test]
    fn a_prefix_hashes_its_holes_without_reading_them() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("tempdir");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("sparse"))
            .expect("creating the file");
        file.set_len(1 << 30).expect("sizing");
        file.write_all_at(&[7; 5000], 100 << 20).expect("a data range");
        file.write_all_at(&[9; 3000], 700 << 20).expect("another");
        let mut hasher = Xxh3::new();
        let calls = hash_prefix(&file, 800 << 20, &mut hasher).expect("hashing");
        let mut bytes = vec![0u8; 800 << 20];
        bytes[100 << 20..(100 << 20) + 5000].fill(7);
        bytes[700 << 20..(700 << 20) + 3000].fill(9);
        assert_eq!(hasher.digest128(), xxhash_rust::xxh3::xxh3_128(&bytes));
        if runs(&file, 0, 800 << 20).expect("asking for holes").is_some() {
            assert_eq!(calls, 2, "reads of two data ranges");
        }
    }

    fn covered(runs: &[Run]) -> u64 {
        runs.iter().map(|r| r.hole + r.data).sum()
    }

    #[test]
    fn runs_cover_the_file_and_skip_only_long_holes() {
        let mib = 1 << 20;
        // Data at 0..1M, 1M+4K..2M (a 4 KiB hole: folded), 10M..11M, then a hole to 64M.
        let extents = [(0, mib), (mib + 4096, 2 * mib), (10 * mib, 11 * mib)];
        let runs = runs_of(&extents, 0, 64 * mib);
        assert_eq!(
            runs,
            vec![
                Run { hole: 0, at: 0, data: 2 * mib },
                Run { hole: 8 * mib, at: 10 * mib, data: mib },
                Run { hole: 53 * mib, at: 64 * mib, data: 0 },
            ]
        );
        assert_eq!(covered(&runs), 64 * mib);
    }

    #[test]
    fn runs_start_at_a_resume_offset_and_a_leading_hole_is_kept() {
        let mib = 1 << 20;
        let runs = runs_of(&[(4 * mib, 5 * mib)], mib, 5 * mib);
        assert_eq!(runs, vec![Run { hole: 3 * mib, at: 4 * mib, data: mib }]);
        // Resuming inside an extent: the run starts at the offset.
        let runs = runs_of(&[(0, 2 * mib)], mib, 8 * mib);
        assert_eq!(runs[0], Run { hole: 0, at: mib, data: mib });
        assert_eq!(covered(&runs), 7 * mib);
    }

    #[test]
    fn a_file_of_holes_only_is_one_run_without_data() {
        assert_eq!(runs_of(&[], 0, 1 << 30), vec![Run { hole: 1 << 30, at: 1 << 30, data: 0 }]);
    }
}
