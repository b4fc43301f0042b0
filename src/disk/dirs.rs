//! The output directory held open, and the directories below it reached one component at a
//! time without following links, a few kept open for the files that follow.

use std::ffi::OsStr;
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
    pub(super) writable: Mutex<Option<Vec<u8>>>,
    /// Set once unnamed files (`O_TMPFILE`) turned out not to work here.
    pub(super) no_unnamed: AtomicBool,
    /// Why the file system refused a mode, since the last `modes_refused` (see `modes`).
    modes_refused: Mutex<Option<Errno>>,
}

impl Dirs {
    pub(super) fn new(root: OwnedFd) -> Arc<Dirs> {
        Arc::new(Dirs {
            root: Arc::new(root),
            recent: Mutex::new(Vec::new()),
            writable: Mutex::new(None),
            no_unnamed: AtomicBool::new(false),
            modes_refused: Mutex::new(None),
        })
    }

    /// Notes that the file system refused a mode, with `errno`.
    pub(super) fn note_modes_refused(&self, errno: Errno) {
        if let Ok(mut refused) = self.modes_refused.lock() {
            *refused = Some(errno);
        }
    }

    /// The errno of a mode the file system refused since the last call, if one was.
    pub(super) fn modes_refused(&self) -> Option<Errno> {
        self.modes_refused.lock().ok().and_then(|mut refused| refused.take())
    }

    /// The directory at `rel` below the root, created where missing, reached one component at a
    /// time without following symlinks.
    pub(super) fn get(&self, rel: &[&OsStr]) -> io::Result<Arc<OwnedFd>> {
        self.make(rel, &mut Vec::new())
    }

    /// As `get`, and adds to `made` the length of the path (`/`-joined, parents first; a
    /// prefix of `rel` joined) of every directory it
    /// created. A walk starts from the deepest of `rel` and its parent that is kept open: the
    /// entries of a tree come parent first, so each costs one step, not its whole depth.
    pub(super) fn make(&self, rel: &[&OsStr], made: &mut Vec<usize>) -> io::Result<Arc<OwnedFd>> {
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
        let last = rel[rel.len() - 1].len();
        let parent = &key[..key.len().saturating_sub(last + 1)];
        let (mut fd, mut done) = match recent.iter().find(|(k, _)| rel.len() > 1 && *k == parent) {
            Some((_, fd)) => (Arc::clone(fd), rel.len() - 1),
            None => (Arc::clone(&self.root), 0),
        };
        let mut at = if done > 0 { parent.len() } else { 0 };
        while done < rel.len() {
            let name = rel[done];
            at += name.len() + usize::from(at > 0);
            let (next, created) = make_dir(&fd, name)?;
            if created {
                made.push(at);
            }
            fd = Arc::new(next);
            done += 1;
        }
        if recent.len() >= DIRS_KEPT {
            recent.remove(0);
        }
        recent.push((key, Arc::clone(&fd)));
        Ok(fd)
    }

    /// Removes the directories of `made` (as `make` listed them) that are still empty, deepest
    /// first, and forgets every descriptor kept: a refused plan leaves no tree behind.
    pub(super) fn unmake(&self, made: &[&[u8]]) {
        use nix::unistd::{UnlinkatFlags, unlinkat};
        let mut walk = Walk::default();
        for path in made.iter().rev() {
            let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => (&path[..0], &path[..]),
            };
            let Ok(dir) = walk.reach(self, parent) else { continue };
            // Not empty (another session wrote there meanwhile) or gone: left as it is.
            let _ = unlinkat(dir, OsStr::from_bytes(name), UnlinkatFlags::RemoveDir);
        }
        if let Ok(mut recent) = self.recent.lock() {
            recent.clear();
        }
        if let Ok(mut writable) = self.writable.lock() {
            *writable = None;
        }
    }
}

/// The directories open along the path last reached below the root, so that paths visited in
/// a tree's order (or its reverse) cost one step each, not their depth.
#[derive(Default)]
pub(super) struct Walk<'p> {
    open: Vec<(&'p [u8], OwnedFd)>,
}

impl<'p> Walk<'p> {
    /// The directory `path` (`/`-joined, empty: the root), opened from the deepest open
    /// directory that holds it, without following links or creating anything.
    pub(super) fn reach<'w>(
        &'w mut self,
        dirs: &'w Dirs,
        path: &'p [u8],
    ) -> io::Result<&'w OwnedFd> {
        while self.open.last().is_some_and(|(p, _)| !is_within(path, p)) {
            self.open.pop();
        }
        let mut end = self.open.last().map_or(0, |(p, _)| p.len());
        while end < path.len() {
            let start = if end == 0 { 0 } else { end + 1 };
            let stop =
                path[start..].iter().position(|&b| b == b'/').map_or(path.len(), |i| start + i);
            let name = OsStr::from_bytes(&path[start..stop]);
            let next = match self.open.last() {
                Some((_, fd)) => open_dir(fd, name, false)?,
                None => open_dir(&*dirs.root, name, false)?,
            };
            self.open.push((&path[..stop], next));
            end = stop;
        }
        Ok(self.open.last().map_or(&*dirs.root, |(_, fd)| fd))
    }
}

/// Whether `path` is `dir` or below it (`dir` empty: the root holds everything).
fn is_within(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty()
        || (path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/'))
}

/// Creates directory `name` in `dir` unless it exists, and opens it without following links;
/// says whether it was created here.
fn make_dir(dir: &OwnedFd, name: &OsStr) -> io::Result<(OwnedFd, bool)> {
    let created = match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(e) => return Err(e.into()),
    };
    Ok((open_dir(dir, name, false)?, created))
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
