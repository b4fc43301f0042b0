//! One file to be written, and how it gets there: its part file (`.NAME.zcp-part`, created
//! exclusively, locked while written, renamed into place once verified, never replacing a file
//! without `--force`), or for a small verified file an unnamed file linked in under its name.

use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::Mode;

use super::dirs::Dirs;
use super::{Refusal, code_of};
use crate::copy::Counted;
use crate::error::SessionError;
use crate::protocol::{Entry, RefuseCode};

/// What stands under a target name already.
#[derive(Debug)]
pub(super) struct Existing {
    pub is_dir: bool,
    pub is_file: bool,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
}

/// A file to be written: its directory (relative to the output directory), final name, and the
/// path shown to users. It holds no descriptor: many targets wait in a plan at once.
#[derive(Debug)]
pub struct Target {
    pub(super) dirs: Arc<Dirs>,
    pub(super) rel: Vec<OsString>,
    pub(super) name: OsString,
    /// The path as users see it, for messages only; never opened.
    pub shown: PathBuf,
}

impl Target {
    pub(super) fn dir(&self) -> io::Result<Arc<OwnedFd>> {
        let rel: Vec<&OsStr> = self.rel.iter().map(OsString::as_os_str).collect();
        self.dirs.get(&rel)
    }

    pub(super) fn part_name(&self) -> OsString {
        let mut part = b".".to_vec();
        part.extend_from_slice(self.name.as_bytes());
        part.extend_from_slice(b".zcp-part");
        OsString::from_vec(part)
    }

    /// The part file's path as users see it.
    pub fn part_shown(&self) -> PathBuf {
        self.shown.with_file_name(self.part_name())
    }

    /// What already stands under the target name (a final symlink is not followed).
    pub(super) fn existing(&self) -> Result<Option<Existing>, Refusal> {
        use nix::sys::stat::{SFlag, fstatat};
        let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        let dir = self.dir().map_err(|e| self.refusal(e))?;
        let st = match fstatat(&*dir, self.name.as_os_str(), flags) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(self.refusal(e.into())),
        };
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        Ok(Some(Existing {
            is_dir: kind == SFlag::S_IFDIR,
            is_file: kind == SFlag::S_IFREG,
            size: st.st_size as u64,
            mtime_sec: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec,
        }))
    }

    /// The part file a previous transfer left, if any (opened, never created).
    pub(super) fn existing_part(&self) -> Result<Option<File>, Refusal> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let dir = self.dir().map_err(|e| self.refusal(e))?;
        match openat(&*dir, self.part_name().as_os_str(), flags, Mode::empty()) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(self.refusal(e.into())),
        }
    }

    /// Refuses early when the target's directory cannot be written (read-only, no permission),
    /// without creating anything.
    pub(super) fn check_writable(&self) -> Result<(), Refusal> {
        use nix::unistd::{AccessFlags, faccessat};
        let mut last = self
            .dirs
            .writable
            .lock()
            .map_err(|_| Refusal::new(RefuseCode::Other, "directory cache poisoned"))?;
        if last.as_ref() == Some(&self.rel) {
            return Ok(());
        }
        let dir = self.dir().map_err(|e| self.refusal(e))?;
        faccessat(&*dir, ".", AccessFlags::W_OK, nix::fcntl::AtFlags::empty()).map_err(|e| {
            let shown = self.shown.parent().unwrap_or(Path::new(".")).display();
            Refusal::new(code_of(&e.into()), format!("cannot create files in {shown}: {e}"))
        })?;
        *last = Some(self.rel.clone());
        Ok(())
    }

    /// Creates the part file, `None` when one exists already (another session's, or one left
    /// since the plan).
    pub fn create_part(&self) -> Result<Option<File>, Refusal> {
        let flags =
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let dir = self.dir().map_err(|e| self.refusal(e))?;
        match openat(&*dir, self.part_name().as_os_str(), flags, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::EEXIST) => Ok(None),
            Err(e) => Err(self.refusal(e.into())),
        }
    }

    /// Opens (creating) the part file; `truncate` starts it over.
    pub fn open_part(&self, truncate: bool) -> Result<File, Refusal> {
        let mut flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        if truncate {
            flags |= OFlag::O_TRUNC;
        }
        let dir = self.dir().map_err(|e| self.refusal(e))?;
        openat(&*dir, self.part_name().as_os_str(), flags, Mode::from_bits_truncate(0o600))
            .map(File::from)
            .map_err(|e| self.refusal(e.into()))
    }

    pub(super) fn refusal(&self, e: io::Error) -> Refusal {
        Refusal::new(code_of(&e), format!("cannot write {}: {e}", self.part_shown().display()))
    }

    /// Applies the offered mode (and mtime, for files of known size) to the part file and
    /// renames it into place. Without `force` an existing target is never replaced, even one
    /// that appeared during the transfer.
    pub fn commit(&self, part: &File, entry: &Entry, force: bool) -> anyhow::Result<()> {
        part.set_permissions(std::fs::Permissions::from_mode(entry.mode & 0o777))
            .with_context(|| format!("setting the mode of {}", self.part_shown().display()))?;
        if entry.size.is_some() {
            part.set_times(FileTimes::new().set_modified(mtime_of(entry)))
                .with_context(|| format!("setting the mtime of {}", self.part_shown().display()))?;
        }
        let dir = self
            .dir()
            .with_context(|| format!("opening the directory of {}", self.shown.display()))?;
        rename(&dir, &self.part_name(), &self.name, force).with_context(|| {
            format!("moving {} into place as {}", self.part_shown().display(), self.shown.display())
        })
    }

    /// Writes a whole file that arrived in one piece, already verified, without a part file:
    /// into an unnamed file (`O_TMPFILE`) that is linked in under its name once complete, so no
    /// name ever shows a partial file and a crash leaves nothing behind. Returns the `write`
    /// calls made, or `None` when this file system cannot (or `force` asks to replace a file,
    /// which a link cannot): the caller then goes through the part file.
    pub fn write_unnamed(
        &self,
        body: &[u8],
        entry: &Entry,
        force: bool,
    ) -> anyhow::Result<Option<u64>> {
        if force || self.dirs.no_unnamed.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let dir = self
            .dir()
            .with_context(|| format!("opening the directory of {}", self.shown.display()))?;
        let mode = entry.mode & 0o777;
        let Some(file) = unnamed_file(&dir, mode)
            .with_context(|| format!("creating the file for {}", self.shown.display()))?
        else {
            self.dirs.no_unnamed.store(true, Ordering::Relaxed);
            return Ok(None);
        };
        let mut out = Counted::new(&file);
        out.write_all(body).with_context(|| format!("writing {}", self.shown.display()))?;
        let calls = out.calls;
        // Always: the umask, or a directory's default ACL, may have taken bits at creation.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", self.shown.display()))?;
        if entry.size.is_some() {
            file.set_times(FileTimes::new().set_modified(mtime_of(entry)))
                .with_context(|| format!("setting the mtime of {}", self.shown.display()))?;
        }
        let linked = link_unnamed(&file, &dir, &self.name)
            .with_context(|| format!("putting {} in place", self.shown.display()))?;
        if !linked {
            self.dirs.no_unnamed.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        Ok(Some(calls))
    }

    /// Opens the part file to write from `offset` (0: a new one), under its lock, cut to that
    /// length. Refused (as `name`) when another session holds the lock.
    pub fn open_locked(&self, name: &str, offset: u64) -> anyhow::Result<LockedPart> {
        let busy = || SessionError::Refused {
            name: name.to_string(),
            reason: "another session is writing it".to_string(),
        };
        // Usually the file is new: created here, it is empty and nobody else's.
        if offset == 0
            && let Some(part) = self.create_part().map_err(|r| anyhow::anyhow!(r.reason))?
        {
            return lock(part)?.ok_or_else(|| busy().into());
        }
        // Lock before touching the contents: another session may be writing this file.
        let part = self.open_part(false).map_err(|r| anyhow::anyhow!(r.reason))?;
        let part = lock(part)?.ok_or_else(busy)?;
        part.set_len(offset)
            .with_context(|| format!("truncating {}", self.part_shown().display()))?;
        Ok(part)
    }

    /// Writes a verified small file: as an unnamed file linked into place where the file system
    /// allows, else through its part file like any other. Returns the `write` calls made.
    pub fn write_small(&self, body: &[u8], entry: &Entry, force: bool) -> anyhow::Result<u64> {
        if let Some(calls) = self.write_unnamed(body, entry, force)? {
            return Ok(calls);
        }
        let name = String::from_utf8_lossy(&entry.name);
        let part = self.open_locked(&name, 0)?;
        let mut out = Counted::new(&*part);
        out.write_all(body).with_context(|| {
            format!("writing {name} (partial data kept in {})", self.part_shown().display())
        })?;
        let calls = out.calls;
        self.commit(&part, entry, force)?;
        Ok(calls)
    }

    /// Removes the part file: its contents are known to be wrong.
    pub fn discard(&self) {
        if let Ok(dir) = self.dir() {
            let flags = nix::unistd::UnlinkatFlags::NoRemoveDir;
            let _ = nix::unistd::unlinkat(&*dir, self.part_name().as_os_str(), flags);
        }
    }
}

pub(super) fn mtime_of(entry: &Entry) -> SystemTime {
    let nanos = Duration::from_nanos(entry.mtime_nsec as u64);
    if entry.mtime_sec >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(entry.mtime_sec as u64) + nanos
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(entry.mtime_sec.unsigned_abs()) + nanos
    }
}

/// A new unnamed file in `dir` with `mode`, or `None` when the file system has no `O_TMPFILE`.
#[cfg(target_os = "linux")]
fn unnamed_file(dir: &OwnedFd, mode: u32) -> io::Result<Option<File>> {
    let flags = OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    match openat(dir, ".", flags, Mode::from_bits_truncate(mode)) {
        Ok(fd) => Ok(Some(File::from(fd))),
        // EISDIR: a kernel that predates O_TMPFILE reads it as O_DIRECTORY.
        Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn unnamed_file(_dir: &OwnedFd, _mode: u32) -> io::Result<Option<File>> {
    Ok(None)
}

/// Gives an unnamed file its `name` in `dir`; never replaces an existing file. `false` when the
/// kernel will not link it here (linking by descriptor needs CAP_DAC_READ_SEARCH; without it,
/// the `/proc/self/fd` route needs /proc).
#[cfg(target_os = "linux")]
fn link_unnamed(file: &File, dir: &OwnedFd, name: &OsStr) -> io::Result<bool> {
    use nix::fcntl::AtFlags;
    use nix::unistd::linkat;
    use std::os::fd::AsRawFd;
    match linkat(file, "", dir, name, AtFlags::AT_EMPTY_PATH) {
        Ok(()) => return Ok(true),
        Err(Errno::ENOENT | Errno::EPERM | Errno::EINVAL) => {}
        Err(e) => return Err(e.into()),
    }
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    match linkat(AT_FDCWD, proc_path.as_str(), dir, name, AtFlags::AT_SYMLINK_FOLLOW) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT | Errno::EPERM | Errno::EXDEV) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn link_unnamed(_file: &File, _dir: &OwnedFd, _name: &OsStr) -> io::Result<bool> {
    Ok(false)
}

#[cfg(target_os = "linux")]
fn rename(dir: &OwnedFd, from: &OsStr, to: &OsStr, replace: bool) -> io::Result<()> {
    use nix::fcntl::{RenameFlags, renameat2};
    let flags = if replace { RenameFlags::empty() } else { RenameFlags::RENAME_NOREPLACE };
    renameat2(dir, from, dir, to, flags).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn rename(dir: &OwnedFd, from: &OsStr, to: &OsStr, replace: bool) -> io::Result<()> {
    use nix::unistd::{LinkatFlags, UnlinkatFlags, linkat, unlinkat};
    if replace {
        nix::fcntl::renameat(dir, from, dir, to).map_err(io::Error::from)
    } else {
        // No atomic no-replace rename here: link(2) fails on an existing target.
        linkat(dir, from, dir, to, LinkatFlags::NoSymlinkFollow)?;
        unlinkat(dir, from, UnlinkatFlags::NoRemoveDir).map_err(io::Error::from)
    }
}

/// A part file under its exclusive `flock(2)` lock, which ends when this is dropped.
pub type LockedPart = nix::fcntl::Flock<File>;

/// Takes the part file's exclusive lock without waiting, so two sessions never write one file.
/// `None` when another holder has it.
fn lock(part: File) -> io::Result<Option<LockedPart>> {
    use nix::fcntl::{Flock, FlockArg};
    match Flock::lock(part, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(Some(locked)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(errno.into()),
    }
}
