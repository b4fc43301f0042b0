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

/// A file to be written: its path below the output directory (its directory, then its final
/// name) and the mode it gets. It holds no descriptor and one allocation, however deep: a plan
/// holds a target per offered file, up to a million at once.
#[derive(Debug)]
pub struct Target {
    pub(super) dirs: Arc<Dirs>,
    /// The output directory as users named it, shared by every target: for messages only.
    pub(super) root: Arc<Path>,
    /// The path below the output directory, `/`-joined; the name starts at `name_at`.
    pub(super) path: Box<[u8]>,
    pub(super) name_at: usize,
    /// The permission bits the file gets: the offered ones less the receiver's umask, never
    /// setuid, setgid or sticky.
    pub(super) mode: u32,
}

impl Target {
    /// The target at `path` (a checked name) below the directory `root` names.
    pub(super) fn new(dirs: Arc<Dirs>, root: Arc<Path>, path: &[u8], mode: u32) -> Target {
        let name_at = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        Target { dirs, root, path: path.into(), name_at, mode }
    }

    /// The directory's path below the output directory (empty: the output directory itself).
    pub(super) fn rel(&self) -> &[u8] {
        &self.path[..self.name_at.saturating_sub(1)]
    }

    /// The final name in its directory.
    pub(super) fn name(&self) -> &OsStr {
        OsStr::from_bytes(&self.path[self.name_at..])
    }

    /// The path as users see it, for messages only; never opened.
    pub fn shown(&self) -> PathBuf {
        self.root.join(OsStr::from_bytes(&self.path))
    }

    pub(super) fn dir(&self) -> io::Result<Arc<OwnedFd>> {
        let rel: Vec<&OsStr> = match self.rel() {
            [] => Vec::new(),
            rel => rel.split(|&b| b == b'/').map(OsStr::from_bytes).collect(),
        };
        self.dirs.get(&rel)
    }

    pub(super) fn part_name(&self) -> OsString {
        let mut part = b".".to_vec();
        part.extend_from_slice(self.name().as_bytes());
        part.extend_from_slice(b".zcp-part");
        OsString::from_vec(part)
    }

    /// The part file's path as users see it.
    pub fn part_shown(&self) -> PathBuf {
        self.shown().with_file_name(self.part_name())
    }

    /// What already stands under the target name (a final symlink is not followed).
    pub(super) fn existing(&self) -> Result<Option<Existing>, Refusal> {
        use nix::sys::stat::{SFlag, fstatat};
        let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        let dir = self.dir().map_err(|e| self.refusal(e))?;
        let st = match fstatat(&*dir, self.name(), flags) {
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

    /// The part file a previous transfer left, if any (opened, never created), checked to be
    /// ours to use (see `unsafe_part`) before a byte of it is read.
    pub(super) fn existing_part(&self) -> Result<Option<File>, Refusal> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let dir = self.dir().map_err(|e| self.refusal(e))?;
        let part = match openat(&*dir, self.part_name().as_os_str(), flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(self.unsafe_refusal("it is a symbolic link")),
            Err(e) => return Err(self.refusal(e.into())),
        };
        match unsafe_part(&part) {
            Ok(None) => Ok(Some(part)),
            Ok(Some(why)) => Err(self.unsafe_refusal(&why)),
            Err(e) => Err(self.refusal(e)),
        }
    }

    /// The refusal of a part file that is not this receiver's to use: it is left alone (not
    /// read, written, or removed) and the user is told to look at it.
    fn unsafe_refusal(&self, why: &str) -> Refusal {
        let part = self.part_shown();
        Refusal::new(
            RefuseCode::Exists,
            format!(
                "part file {} is not safe to use ({why}); refused, left as it is: remove it to receive {}",
                part.display(),
                self.shown().display()
            ),
        )
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
        if last.as_deref() == Some(self.rel()) {
            return Ok(());
        }
        let dir = self.dir().map_err(|e| self.refusal(e))?;
        faccessat(&*dir, ".", AccessFlags::W_OK, nix::fcntl::AtFlags::empty()).map_err(|e| {
            let shown = self.shown();
            let shown = shown.parent().unwrap_or(Path::new(".")).display();
            Refusal::new(code_of(&e.into()), format!("cannot create files in {shown}: {e}"))
        })?;
        *last = Some(self.rel().to_vec());
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

    /// Opens (creating) the part file without following a link and without blocking on a
    /// FIFO, and checks it is ours to write (see `unsafe_part`) before anything touches it;
    /// `truncate` then starts it over (never `O_TRUNC`: that would cut a file before the check).
    pub fn open_part(&self, truncate: bool) -> Result<File, Refusal> {
        let flags = OFlag::O_RDWR
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NONBLOCK;
        let dir = self.dir().map_err(|e| self.refusal(e))?;
        let part = match openat(
            &*dir,
            self.part_name().as_os_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => File::from(fd),
            Err(Errno::ELOOP) => return Err(self.unsafe_refusal("it is a symbolic link")),
            Err(e) => return Err(self.refusal(e.into())),
        };
        if let Some(why) = unsafe_part(&part).map_err(|e| self.refusal(e))? {
            return Err(self.unsafe_refusal(&why));
        }
        // A regular file: O_NONBLOCK means nothing to it, but the data paths should not see it.
        nix::fcntl::fcntl(&part, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
            .map_err(|e| self.refusal(e.into()))?;
        if truncate {
            part.set_len(0).map_err(|e| self.refusal(e))?;
        }
        Ok(part)
    }

    pub(super) fn refusal(&self, e: io::Error) -> Refusal {
        Refusal::new(code_of(&e), format!("cannot write {}: {e}", self.part_shown().display()))
    }

    /// Applies the offered mode (and mtime, for files of known size) to the part file and
    /// renames it into place. Without `force` an existing target is never replaced, even one
    /// that appeared during the transfer.
    pub fn commit(&self, part: &File, entry: &Entry, force: bool) -> anyhow::Result<()> {
        // Never give the sender's mode to a file that is linked elsewhere too (a link made
        // while it was written): refuse instead.
        if let Some(why) = unsafe_part(part)
            .with_context(|| format!("checking {}", self.part_shown().display()))?
        {
            return Err(SessionError::Refused {
                name: String::from_utf8_lossy(&entry.name).into_owned(),
                reason: self.unsafe_refusal(&why).reason,
            }
            .into());
        }
        part.set_permissions(std::fs::Permissions::from_mode(self.mode))
            .with_context(|| format!("setting the mode of {}", self.part_shown().display()))?;
        if entry.size.is_some() {
            part.set_times(FileTimes::new().set_modified(mtime_of(entry)))
                .with_context(|| format!("setting the mtime of {}", self.part_shown().display()))?;
        }
        let dir = self
            .dir()
            .with_context(|| format!("opening the directory of {}", self.shown().display()))?;
        rename(&dir, &self.part_name(), self.name(), force).with_context(|| {
            format!(
                "moving {} into place as {}",
                self.part_shown().display(),
                self.shown().display()
            )
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
            .with_context(|| format!("opening the directory of {}", self.shown().display()))?;
        let mode = self.mode;
        let Some(file) = unnamed_file(&dir, mode)
            .with_context(|| format!("creating the file for {}", self.shown().display()))?
        else {
            self.dirs.no_unnamed.store(true, Ordering::Relaxed);
            return Ok(None);
        };
        let mut out = Counted::new(&file);
        out.write_all(body).with_context(|| format!("writing {}", self.shown().display()))?;
        let calls = out.calls;
        // Always: the umask, or a directory's default ACL, may have taken bits at creation.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", self.shown().display()))?;
        if entry.size.is_some() {
            file.set_times(FileTimes::new().set_modified(mtime_of(entry)))
                .with_context(|| format!("setting the mtime of {}", self.shown().display()))?;
        }
        let linked = link_unnamed(&file, &dir, self.name())
            .with_context(|| format!("putting {} in place", self.shown().display()))?;
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
        let refused =
            |r: Refusal| SessionError::Refused { name: name.to_string(), reason: r.reason };
        let part = self.open_part(false).map_err(refused)?;
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

/// Why a part file found on disk is not this receiver's to read or write, if it is not: it
/// must be a regular file with one link, owned by the receiving user. Anything else (a hard
/// link to a file elsewhere, a file another user planted, a FIFO or a device) would let
/// received bytes, modes or a resume prefix reach or come from something outside this
/// transfer.
fn unsafe_part(part: &File) -> io::Result<Option<String>> {
    use nix::sys::stat::{SFlag, fstat};
    let st = fstat(part)?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let euid = nix::unistd::geteuid().as_raw();
    Ok(if kind != SFlag::S_IFREG {
        Some(format!("it is not a regular file but a {}", kind_name(kind)))
    } else if st.st_nlink != 1 {
        Some(format!("it has {} hard links: another name shares its contents", st.st_nlink))
    } else if st.st_uid != euid {
        Some(format!("it is owned by uid {}, not by this receiver (uid {euid})", st.st_uid))
    } else {
        None
    })
}

fn kind_name(kind: nix::sys::stat::SFlag) -> &'static str {
    use nix::sys::stat::SFlag;
    match kind {
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFSOCK => "socket",
        SFlag::S_IFLNK => "symbolic link",
        _ => "special file",
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
