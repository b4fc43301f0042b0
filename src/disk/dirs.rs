//! The output directory held open, and the directories below it reached one component at a
//! time without following links, a few kept open for the files that follow.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, mkdirat};

/// How many directory descriptors `Dirs` keeps open.
const DIRS_KEPT: usize = 64;

/// The output directory, held open, and descriptors of the directories below it by relative
/// path. Consecutive files mostly share a directory, so each is walked once rather than once
/// per file; the few kept open bound the descriptors a tree of many directories costs.
#[derive(Debug)]
pub struct Dirs {
    pub(super) root: Arc<OwnedFd>,
    recent: Mutex<Vec<(Vec<u8>, Arc<OwnedFd>)>>,
    /// The directory last found writable: files in one directory ask once.
    pub(super) writable: Mutex<Option<Vec<OsString>>>,
    /// Set once unnamed files (`O_TMPFILE`) turned out not to work here.
    pub(super) no_unnamed: AtomicBool,
}

impl Dirs {
    pub(super) fn new(root: OwnedFd) -> Arc<Dirs> {
        Arc::new(Dirs {
            root: Arc::new(root),
            recent: Mutex::new(Vec::new()),
            writable: Mutex::new(None),
            no_unnamed: AtomicBool::new(false),
        })
    }

    /// Whether the directory at `rel` is already there (reached without following links).
    pub(super) fn exists(&self, rel: &[&OsStr]) -> bool {
        let mut fd = match rel.first() {
            Some(first) => open_dir(&*self.root, first, false),
            None => return true,
        };
        for name in rel.iter().skip(1) {
            fd = fd.and_then(|parent| open_dir(&parent, name, false));
        }
        fd.is_ok()
    }

    /// The directory at `rel` below the root, created where missing, reached one component at a
    /// time without following symlinks.
    pub(super) fn get(&self, rel: &[&OsStr]) -> io::Result<Arc<OwnedFd>> {
        if rel.is_empty() {
            return Ok(Arc::clone(&self.root));
        }
        let key = rel.iter().map(|c| c.as_bytes()).collect::<Vec<_>>().join(&b'/');
        let mut recent =
            self.recent.lock().map_err(|_| io::Error::other("directory cache poisoned"))?;
        if let Some(i) = recent.iter().position(|(k, _)| *k == key) {
            let hit = recent.remove(i);
            let fd = Arc::clone(&hit.1);
            recent.push(hit);
            return Ok(fd);
        }
        let mut fd = open_dir(&*self.root, rel[0], true)?;
        for name in &rel[1..] {
            fd = open_dir(&fd, name, true)?;
        }
        let fd = Arc::new(fd);
        if recent.len() >= DIRS_KEPT {
            recent.remove(0);
        }
        recent.push((key, Arc::clone(&fd)));
        Ok(fd)
    }
}

/// Opens directory `name` in `dir` without following links, creating it first when asked.
pub(super) fn open_dir(dir: impl AsFd, name: &OsStr, create: bool) -> io::Result<OwnedFd> {
    if create {
        match mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(openat(dir, name, flags, Mode::empty())?)
}
