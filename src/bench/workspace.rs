//! The benchmark's scratch space: one private directory under `--dir` that holds the test file
//! and each run's received copy, removed on drop (after success, failure or Ctrl-C alike). The
//! test file is filled with random bytes from a fast PRNG; a `--file` of the user's is only read.

use std::fs::{self, File, Permissions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use humansize::{BINARY, format_size};
use indicatif::ProgressBar;
use tempfile::TempDir;

use super::check_stop;

/// Bytes generated and written per step.
const BLOCK: usize = 1 << 20;
/// The name of the generated test file (and so of every received copy).
pub const TEST_FILE: &str = "zcp-bench.bin";
/// The name of the generated test tree, and how many files each of its directories holds.
pub const TEST_TREE: &str = "zcp-bench-tree";
/// The name of the generated sparse file of `--sparse`, and how many extents of data it holds.
pub const SPARSE_FILE: &str = "zcp-bench-sparse.bin";
pub const SPARSE_EXTENTS: u64 = 8;
/// Its apparent size is this many times its data (4 GiB for the default 64 MiB).
pub const SPARSE_RATIO: u64 = 64;
const FILES_PER_DIR: u32 = 500;

/// A private directory removed with everything in it when dropped.
#[derive(Debug)]
pub struct Workspace {
    dir: TempDir,
}

impl Workspace {
    /// Creates `PARENT/zcp-bench-PID-RANDOM`, readable by the owner only.
    pub fn create(parent: &Path) -> anyhow::Result<Workspace> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("zcp-bench-{}-", std::process::id()))
            .permissions(Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .with_context(|| format!("creating a scratch directory in {}", parent.display()))?;
        Ok(Workspace { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh empty directory `run-N` for one run's received copy, removed when the guard drops.
    pub fn run_dir(&self, run: usize) -> anyhow::Result<Workspace> {
        let name = format!("run-{run}");
        let dir = tempfile::Builder::new()
            .prefix(&name)
            .rand_bytes(0)
            .tempdir_in(self.path())
            .with_context(|| format!("creating {}", self.path().join(&name).display()))?;
        Ok(Workspace { dir })
    }

    /// Writes `size` random bytes to the test file, advancing `bar`, and returns its path.
    pub fn write_test_file(&self, size: u64, bar: &ProgressBar) -> anyhow::Result<PathBuf> {
        let path = self.path().join(TEST_FILE);
        let mut random = Random::new(BLOCK);
        let file = random.write_file(&path, size, |written| {
            bar.set_position(written);
            check_stop()
        })?;
        file.sync_data().with_context(|| format!("flushing {}", path.display()))?;
        Ok(path)
    }

    /// Writes the sparse test file: `data` random bytes in `SPARSE_EXTENTS` equal extents spread
    /// evenly over `data * SPARSE_RATIO` bytes, holes between them; returns its path.
    pub fn write_sparse_file(&self, data: u64, bar: &ProgressBar) -> anyhow::Result<PathBuf> {
        let path = self.path().join(SPARSE_FILE);
        let mut file =
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let apparent = data.saturating_mul(SPARSE_RATIO);
        file.set_len(apparent).with_context(|| format!("sizing {}", path.display()))?;
        let mut random = Random::new(BLOCK);
        let extent = data / SPARSE_EXTENTS;
        for i in 0..SPARSE_EXTENTS {
            let len = if i + 1 == SPARSE_EXTENTS { data - extent * i } else { extent };
            file.seek(SeekFrom::Start(i * (apparent / SPARSE_EXTENTS)))
                .with_context(|| format!("seeking in {}", path.display()))?;
            random.write_to(&mut file, &path, len, |_| check_stop())?;
            bar.inc(len);
        }
        file.sync_data().with_context(|| format!("flushing {}", path.display()))?;
        Ok(path)
    }

    /// Writes a tree of `files` files of `size` random bytes, `FILES_PER_DIR` to a directory,
    /// advancing `bar` by bytes, and returns its path.
    pub fn write_test_tree(
        &self,
        files: u32,
        size: u64,
        bar: &ProgressBar,
    ) -> anyhow::Result<PathBuf> {
        let root = self.path().join(TEST_TREE);
        let mut random = Random::new(size.min(BLOCK as u64) as usize);
        for i in 0..files {
            if i % 64 == 0 {
                check_stop()?;
            }
            let dir = root.join(format!("d{:04}", i / FILES_PER_DIR));
            if i % FILES_PER_DIR == 0 {
                fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            random.write_file(&dir.join(format!("f{i:07}")), size, |_| Ok(()))?;
            bar.inc(size);
        }
        Ok(root)
    }
}

/// Random bytes for test files, generated a block at a time.
struct Random {
    rng: SplitMix64,
    block: Vec<u8>,
}

impl Random {
    fn new(block: usize) -> Random {
        let rng = SplitMix64::seeded(nanos() ^ u64::from(std::process::id()));
        Random { rng, block: vec![0u8; block.max(1)] }
    }

    /// Creates `path` with `size` random bytes; `step` hears the bytes written after each block.
    fn write_file(
        &mut self,
        path: &Path,
        size: u64,
        step: impl FnMut(u64) -> anyhow::Result<()>,
    ) -> anyhow::Result<File> {
        let mut file =
            File::create(path).with_context(|| format!("creating {}", path.display()))?;
        self.write_to(&mut file, path, size, step)?;
        Ok(file)
    }

    /// Writes `size` random bytes at `file`'s position; `step` as in `write_file`.
    fn write_to(
        &mut self,
        file: &mut File,
        path: &Path,
        size: u64,
        mut step: impl FnMut(u64) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut written = 0u64;
        while written < size {
            let n = (size - written).min(self.block.len() as u64) as usize;
            self.rng.fill(&mut self.block[..n]);
            file.write_all(&self.block[..n])
                .with_context(|| format!("writing {}", path.display()))?;
            written += n as u64;
            step(written)?;
        }
        Ok(())
    }
}

/// The number of regular files below `dir` and their total size.
pub fn tree_totals(dir: &Path) -> std::io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (f, b) = tree_totals(&entry.path())?;
            (files, bytes) = (files + f, bytes + b);
        } else if meta.is_file() {
            (files, bytes) = (files + 1, bytes + meta.len());
        }
    }
    Ok((files, bytes))
}

/// Fails early, with the numbers, when `dir` cannot hold `needed` bytes.
pub fn ensure_space(dir: &Path, needed: u64) -> anyhow::Result<()> {
    let stat = nix::sys::statvfs::statvfs(dir)
        .with_context(|| format!("reading the free space of {}", dir.display()))?;
    let free = (stat.blocks_available() as u64).saturating_mul(stat.fragment_size() as u64);
    if free < needed {
        bail!(
            "{} has {} free, the benchmark needs {} (the test file and one received copy); \
             pick another --dir or a smaller --size",
            dir.display(),
            format_size(free, BINARY),
            format_size(needed, BINARY)
        );
    }
    Ok(())
}

fn nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// splitmix64: a few instructions per 8 bytes, so the disk, not the generator, sets the pace.
struct SplitMix64(u64);

impl SplitMix64 {
    fn seeded(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_fills_partial_words() {
        let mut rng = SplitMix64::seeded(1);
        let mut buf = [0u8; 13];
        rng.fill(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
        let mut again = SplitMix64::seeded(1);
        let mut same = [0u8; 13];
        again.fill(&mut same);
        assert_eq!(buf, same);
    }
}
