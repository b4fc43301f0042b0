//! `recv --fsync`: one barrier for many files instead of a sync per file. Verified files are
//! held open, unnamed, until a barrier: the file system's dirty data is synced once (`syncfs`,
//! one call per file system), then every held file gets its final name, and at the end of the
//! session each directory that gained a name is synced. It does not write file contents.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use super::dirs::Walk;
use super::part::LockedPart;
use super::target::Target;
use super::unnamed;
use super::{Destination, NameTaken};
use crate::protocol::Entry;

/// Files held at most, before any barrier: each holds a descriptor (and its part file's lock).
const HELD_MAX: usize = 16384;
/// Descriptors left for everything else (sockets, directories, the writer threads' files).
const FDS_SPARE: usize = 256;

/// A verified file, complete and with its mode and mtime, waiting for its final name.
enum Held {
    /// A part file, renamed into place at the barrier (its lock held until then).
    Part(LockedPart),
    /// An unnamed small file (`O_TMPFILE`), linked in at the barrier.
    Unnamed(File),
}

/// The files of one session waiting for the barrier, and the directories that gained names.
pub struct Barrier {
    held: Mutex<Vec<(Target, Held)>>,
    /// Directories (paths below the output directory) that gained a name: synced at the end.
    gained: Mutex<BTreeSet<Vec<u8>>>,
    force: bool,
    cap: usize,
    /// Whether any file got its name here (`--output FILE`: its directory is then synced).
    placed: AtomicBool,
    /// Files refused at the barrier (their name was taken meanwhile), and why.
    refused: Mutex<Vec<NameTaken>>,
}

impl Barrier {
    /// A barrier for one session; `sessions` share the process's descriptors (`--max-conns`).
    pub fn new(force: bool, sessions: u32) -> Barrier {
        let cap = (fd_budget() / sessions.max(1) as usize).clamp(16, HELD_MAX);
        Barrier {
            held: Mutex::new(Vec::new()),
            gained: Mutex::new(BTreeSet::new()),
            force,
            cap,
            placed: AtomicBool::new(false),
            refused: Mutex::new(Vec::new()),
        }
    }

    /// Whether any file got its final name at this barrier: a failure after that (syncing the
    /// directories) leaves a file in place, only not known to be durable.
    pub fn placed(&self) -> bool {
        self.placed.load(Ordering::Relaxed)
    }

    /// Holds a verified part file (mode and mtime applied) until the barrier; runs the barrier
    /// first when the session already holds as many files as it may.
    pub fn hold_part(&self, target: &Target, part: LockedPart) -> anyhow::Result<()> {
        self.hold(target, Held::Part(part))
    }

    /// Holds a complete unnamed file (mode and mtime applied) until the barrier.
    pub(super) fn hold_unnamed(&self, target: &Target, file: File) -> anyhow::Result<()> {
        self.hold(target, Held::Unnamed(file))
    }

    fn hold(&self, target: &Target, file: Held) -> anyhow::Result<()> {
        let full = {
            let mut held = self.lock_held()?;
            held.push((target.clone(), file));
            held.len() >= self.cap
        };
        if full { self.flush() } else { Ok(()) }
    }

    /// Notes that `dir` (a path below the output directory) gained a name: a directory the
    /// session created in it.
    pub fn gained_name(&self, dir: &[u8]) {
        if let Ok(mut gained) = self.gained.lock() {
            gained.insert(dir.to_vec());
        }
    }

    /// Notes that the directory `made` (a path below the output directory) was created here:
    /// its parent gained a name.
    pub fn made_dir(&self, made: &[u8]) {
        let parent = made.iter().rposition(|&b| b == b'/').unwrap_or(0);
        self.gained_name(&made[..parent]);
    }

    /// The barrier: syncs the data of every held file (one `syncfs` per file system they are
    /// on), then gives each its final name. A file that cannot be placed fails the session;
    /// those not yet placed stay part files (resumable) or vanish (unnamed small files).
    pub fn flush(&self) -> anyhow::Result<()> {
        let held = std::mem::take(&mut *self.lock_held()?);
        if held.is_empty() {
            return Ok(());
        }
        let mut devices = Vec::new();
        for (target, file) in &held {
            let fd = match file {
                Held::Part(part) => &**part,
                Held::Unnamed(file) => file,
            };
            let dev = nix::sys::stat::fstat(fd)
                .with_context(|| format!("checking {}", target.shown().display()))?
                .st_dev;
            if !devices.contains(&dev) {
                devices.push(dev);
                sync_data(fd)
                    .with_context(|| format!("syncing the data of {}", target.shown().display()))?;
            }
        }
        for (target, file) in held {
            let placed = match file {
                Held::Part(part) => target.part().place(&part, self.force),
                Held::Unnamed(file) => unnamed::place(&target, &file),
            };
            if let Err(e) = placed {
                // A name taken meanwhile refuses that file alone; anything else ends the session.
                let reason = crate::error::refusal_reason(&e).ok_or(e)?;
                self.refused.lock().map_err(|_| poisoned())?.push(NameTaken { target, reason });
                continue;
            }
            self.placed.store(true, Ordering::Relaxed);
            self.gained_name(target.rel());
        }
        Ok(())
    }

    /// The files refused at the barriers so far (see `flush`), and why.
    pub fn take_refused(&self) -> Vec<NameTaken> {
        self.refused.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
    }

    /// The end of a session's writes: the last barrier, then every directory that gained a
    /// name is synced (its own entry, and its mode and mtime when set), deepest first.
    pub fn finish(&self, dest: &Destination) -> anyhow::Result<()> {
        self.flush()?;
        let Destination::Directory { dirs, path } = dest else {
            return self.sync_file_parent(dest);
        };
        let gained = std::mem::take(&mut *self.gained.lock().map_err(|_| poisoned())?);
        let mut walk = Walk::default();
        for dir in gained.iter().rev() {
            let shown = path.join(std::ffi::OsStr::new(&*String::from_utf8_lossy(dir)));
            let fd =
                walk.reach(dirs, dir).with_context(|| format!("opening {}", shown.display()))?;
            nix::unistd::fsync(fd).with_context(|| format!("syncing {}", shown.display()))?;
        }
        Ok(())
    }

    /// `--output FILE`: the one directory that gained a name is the file's.
    fn sync_file_parent(&self, dest: &Destination) -> anyhow::Result<()> {
        if let Destination::File { dirs, path, .. } = dest
            && self.placed.load(Ordering::Relaxed)
        {
            nix::unistd::fsync(&*dirs.root)
                .with_context(|| format!("syncing the directory of {}", path.display()))?;
        }
        Ok(())
    }

    fn lock_held(&self) -> anyhow::Result<std::sync::MutexGuard<'_, Vec<(Target, Held)>>> {
        self.held.lock().map_err(|_| poisoned())
    }
}

fn poisoned() -> anyhow::Error {
    anyhow::anyhow!("the files waiting for --fsync were poisoned by a failed writer")
}

/// Syncs the parent of the `--output` directory a session created, so its name survives too.
pub fn sync_parent_of(path: &std::path::Path) -> anyhow::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let dir = File::open(parent).with_context(|| format!("opening {}", parent.display()))?;
    dir.sync_all().with_context(|| format!("syncing {}", parent.display()))
}

/// `write_small` for `--fsync`: the file is written and held by `barrier`, which names it
/// after syncing. Returns the `write` calls made.
pub fn hold_small(
    target: &Target,
    body: &[u8],
    entry: &Entry,
    force: bool,
    barrier: &Barrier,
) -> anyhow::Result<u64> {
    if let Some((file, calls)) = unnamed::fill(target, body, entry, force)? {
        barrier.hold_unnamed(target, file)?;
        return Ok(calls);
    }
    let (part, calls) = unnamed::write_part(target, body, entry)?;
    target.part().prepare(&part, entry)?;
    barrier.hold_part(target, part)?;
    Ok(calls)
}

/// How many files a barrier may hold open: the descriptor limit less a margin. The soft limit
/// is raised to the hard one first (once; the default soft 1024 would make small barriers).
fn fd_budget() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    static RAISED: std::sync::Once = std::sync::Once::new();
    RAISED.call_once(|| {
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
            && soft < hard
        {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(1 << 20), hard);
        }
    });
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => (soft as usize).saturating_sub(FDS_SPARE) / 2,
        Err(_) => 16,
    }
}

/// Makes the data of every file on `fd`'s file system durable: one `syncfs(2)`.
#[cfg(target_os = "linux")]
fn sync_data(fd: &File) -> io::Result<()> {
    nix::unistd::syncfs(fd).map_err(io::Error::from)
}

/// Without `syncfs`, `sync(2)` is the one call that covers every file.
#[cfg(not(target_os = "linux"))]
fn sync_data(_fd: &File) -> io::Result<()> {
    nix::unistd::sync();
    Ok(())
}
