//! Test data and the file system: deterministic pseudo-random bytes, files and trees written
//! and checked, part files, a FIFO fed from a thread.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};

use super::{STARTUP, wait_until};

/// A small seeded generator (xorshift64*): the same "random" bytes and offsets on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// `len` deterministic pseudo-random bytes, different for each `seed`.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = vec![0u8; len];
    for chunk in out.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
    }
    out
}

/// Writes `len` pseudo-random bytes to `path` and returns them.
pub fn write_random_file(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let data = pseudo_random(len, seed);
    fs::write(path, &data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    data
}

/// Asserts that `path` holds exactly `expected`, naming the first differing byte if not.
pub fn assert_file_holds(path: &Path, expected: &[u8], what: &str) {
    let actual =
        fs::read(path).unwrap_or_else(|e| panic!("{what}: reading {}: {e}", path.display()));
    if actual != expected {
        let first = actual.iter().zip(expected).position(|(a, b)| a != b);
        panic!(
            "{what}: {} differs from what was sent: {} bytes received, {} expected, first \
             difference at byte {}",
            path.display(),
            actual.len(),
            expected.len(),
            first.map_or("(none: one is a prefix of the other)".into(), |i| i.to_string()),
        );
    }
}

/// The names in `dir`, hidden ones included, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every entry below `dir`, as sorted relative paths: directories end in `/`, symlinks in `@`,
/// anything else that is not a regular file in `|`.
pub fn tree_listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("below the root").display().to_string();
            let ft = entry.file_type().expect("file type");
            if ft.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else if ft.is_symlink() {
                out.push(format!("{rel}@"));
            } else if ft.is_file() {
                out.push(rel);
            } else {
                out.push(format!("{rel}|"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Sets the modification time of `path` (a file or a directory).
pub fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.set_times(fs::FileTimes::new().set_modified(mtime))
        .unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("setting the mode of {}: {e}", path.display()));
}

/// A fresh directory `name` inside `parent`.
pub fn subdir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A FIFO and a thread that writes `data` into it once a reader opens it, then closes it.
pub struct FifoWriter {
    path: PathBuf,
    handle: JoinHandle<io::Result<()>>,
}

impl FifoWriter {
    pub fn create(path: &Path, data: Vec<u8>) -> FifoWriter {
        use nix::sys::stat::Mode;
        nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
            .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
        let fifo = path.to_path_buf();
        let handle = thread::spawn(move || {
            let mut f = fs::OpenOptions::new().write(true).open(&fifo)?;
            f.write_all(&data)
        });
        FifoWriter { path: path.to_path_buf(), handle }
    }

    /// Joins the writer. If no reader ever opened the FIFO, opening one here releases it.
    pub fn finish(self) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if !self.handle.is_finished() {
            let _ = fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&self.path);
        }
        self.handle.join().unwrap_or_else(|_| Err(io::Error::other("FIFO writer panicked")))
    }
}

/// The names in `dir` that are not hidden part files.
pub fn final_names(dir: &Path) -> Vec<String> {
    dir_names(dir).into_iter().filter(|n| !n.ends_with(".zcp-part")).collect()
}

/// The part file `zcp recv` writes `name` through, in `dir`.
pub fn part_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.zcp-part"))
}

/// Waits until `path` holds at least `len` bytes (failing after `STARTUP`).
pub fn wait_for_bytes(path: &Path, len: u64) {
    let what = format!("{} to hold {len} bytes", path.display());
    wait_until(STARTUP, &what, || fs::metadata(path).map_or(0, |m| m.len()) >= len);
}
