//! A target's part file, `.NAME.zcp-part` beside it: found and checked to be ours before a
//! byte of it is read, created exclusively, locked from the plan's hash of its prefix until it
//! is renamed into place once verified (never replacing a file without `--force`) or removed
//! when the data was wrong. Why two sessions never interleave: `crate::manual::locking`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use super::Refusal;
use super::modes::set_mode;
use super::target::{Target, times_of};
use crate::error::SessionError;
use crate::protocol::{Entry, RefuseCode};

/// The part file of one target.
pub struct Part<'t> {
    target: &'t Target,
}

impl Target {
    /// Its part file.
    pub fn part(&self) -> Part<'_> {
        Part { target: self }
    }
}

impl Part<'_> {
    /// The part file's name: `.NAME.zcp-part`.
    pub fn name(&self) -> OsString {
        let mut part = b".".to_vec();
        part.extend_from_slice(self.target.name().as_bytes());
        part.extend_from_slice(b".zcp-part");
        OsString::from_vec(part)
    }

    /// The part file's path as users see it.
    pub fn shown(&self) -> PathBuf {
        self.target.shown().with_file_name(self.name())
    }

    /// The part file a previous transfer left, if any (opened, never created), checked to be
    /// ours to use (see `unsafe_part`) before a byte of it is read, and locked: the plan hashes
    /// a resume's prefix under the lock that the writes and the rename are then done under, so
    /// no other session can change it in between. `None` when there is none (or it went away
    /// meanwhile); refused when another session holds it.
    pub fn existing(&self) -> Result<Option<LockedPart>, Refusal> {
        let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let dir = self.target.dir().map_err(|e| self.target.refusal(e))?;
        for _ in 0..LOCK_TRIES {
            let part = match openat(&*dir, self.name().as_os_str(), flags, Mode::empty()) {
                Ok(fd) => File::from(fd),
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ELOOP) => return Err(self.unsafe_refusal("it is a symbolic link")),
                Err(e) => return Err(self.target.refusal(e.into())),
            };
            match unsafe_part(&part) {
                Ok(None) => {}
                Ok(Some(why)) => return Err(self.unsafe_refusal(&why)),
                Err(e) => return Err(self.target.refusal(e)),
            }
            match self.lock_named(&dir, part).map_err(|e| self.target.refusal(e))? {
                Locking::Held(part) => return Ok(Some(blocking(part, self)?)),
                Locking::Busy => return Err(self.busy_refusal()),
                Locking::Moved => continue,
            }
        }
        Err(self.busy_refusal())
    }

    /// The refusal of a part file another session holds: that session's file is its own to
    /// finish, and this one does not wait for it (a session holds several parts' locks at
    /// once; waiting could deadlock two sessions that each hold one the other wants).
    fn busy_refusal(&self) -> Refusal {
        Refusal::new(
            RefuseCode::Exists,
            "another session is writing it; send again once it is done",
        )
    }

    /// Why the part file's name in `dir` no longer leads to `part` (something else was put
    /// there, or nothing is), if it does not: no zcp session moves a part file another holds,
    /// but anyone who may write the directory can.
    fn replaced(&self, dir: &OwnedFd, part: &File) -> io::Result<Option<String>> {
        use nix::fcntl::AtFlags;
        use nix::sys::stat::{SFlag, fstat, fstatat};
        let held = fstat(part)?;
        Ok(match fstatat(dir, self.name().as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(named) if (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino) => None,
            Ok(named) => {
                let kind = SFlag::from_bits_truncate(named.st_mode) & SFlag::S_IFMT;
                Some(format!("it was replaced by a {} during the transfer", kind_name(kind)))
            }
            Err(Errno::ENOENT) => Some("it was removed during the transfer".to_string()),
            Err(e) => return Err(e.into()),
        })
    }

    /// Locks `part` (opened by its name in `dir`) without waiting, and checks that it is still
    /// the file under that name: a session that held the lock may have renamed the file into
    /// place, or removed it, between the open and the lock, and a lock on that file guards
    /// nothing. Every rename or removal of a part file is done under its lock, so a part held
    /// and found under its name stays there until its holder moves it.
    fn lock_named(&self, dir: &OwnedFd, part: File) -> io::Result<Locking> {
        let Some(part) = lock(part)? else { return Ok(Locking::Busy) };
        Ok(match self.replaced(dir, &part)? {
            None => Locking::Held(part),
            Some(_) => Locking::Moved,
        })
    }

    /// The refusal of a part file that is not this receiver's to use: it is left alone (not
    /// read, written, or removed) and the user is told to look at it.
    fn unsafe_refusal(&self, why: &str) -> Refusal {
        let part = self.shown();
        Refusal::new(
            RefuseCode::Exists,
            format!(
                "part file {} is not safe to use ({why}); refused, left as it is: remove it to receive {}",
                part.display(),
                self.target.shown().display()
            ),
        )
    }

    /// Creates the part file, `None` when one exists already (another session's, or one left
    /// since the plan).
    pub fn create(&self) -> Result<Option<File>, Refusal> {
        let flags =
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let dir = self.target.dir().map_err(|e| self.target.refusal(e))?;
        match openat(&*dir, self.name().as_os_str(), flags, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::EEXIST) => Ok(None),
            Err(e) => Err(self.target.refusal(e.into())),
        }
    }

    /// Opens (creating) the part file without following a link and without blocking on a
    /// FIFO, and checks it is ours to write (see `unsafe_part`) before anything touches it
    /// (never `O_TRUNC`: that would cut a file before the check; `open_locked` cuts it after).
    fn open(&self) -> Result<File, Refusal> {
        let flags = OFlag::O_RDWR
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NONBLOCK;
        let dir = self.target.dir().map_err(|e| self.target.refusal(e))?;
        let part =
            match openat(&*dir, self.name().as_os_str(), flags, Mode::from_bits_truncate(0o600)) {
                Ok(fd) => File::from(fd),
                Err(Errno::ELOOP) => return Err(self.unsafe_refusal("it is a symbolic link")),
                Err(e) => return Err(self.target.refusal(e.into())),
            };
        if let Some(why) = unsafe_part(&part).map_err(|e| self.target.refusal(e))? {
            return Err(self.unsafe_refusal(&why));
        }
        // A regular file: O_NONBLOCK means nothing to it, but the data paths should not see it.
        nix::fcntl::fcntl(&part, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
            .map_err(|e| self.target.refusal(e.into()))?;
        Ok(part)
    }

    /// Applies the offered mode (and mtime, for files of known size) to the part file and
    /// renames it into place. Without `force` an existing target is never replaced, even one
    /// that appeared during the transfer.
    pub fn commit(&self, part: &File, entry: &Entry, force: bool) -> anyhow::Result<()> {
        self.prepare(part, entry)?;
        self.place(part, force)
    }

    /// The first half of `commit`: checks the part file is still ours and applies the
    /// offered mode (and mtime). `--fsync` syncs between the halves.
    pub fn prepare(&self, part: &File, entry: &Entry) -> anyhow::Result<()> {
        // Never give the sender's mode to a file that is linked elsewhere too (a link made
        // while it was written): refuse instead.
        if let Some(why) =
            unsafe_part(part).with_context(|| format!("checking {}", self.shown().display()))?
        {
            return Err(SessionError::Refused {
                name: String::from_utf8_lossy(&entry.name).into_owned(),
                reason: self.unsafe_refusal(&why).reason,
            }
            .into());
        }
        set_mode(part, self.target.mode, &self.target.dirs)
            .with_context(|| format!("setting the mode of {}", self.shown().display()))?;
        if entry.size.is_some() {
            part.set_times(times_of(entry))
                .with_context(|| format!("setting the mtime of {}", self.shown().display()))?;
        }
        Ok(())
    }

    /// The second half of `commit`: renames the part file `part` (held under its lock) into
    /// place, never replacing a file without `force`; refused when the part file's name no
    /// longer leads to `part`.
    pub fn place(&self, part: &File, force: bool) -> anyhow::Result<()> {
        let dir = self.target.dir().with_context(|| {
            format!("opening the directory of {}", self.target.shown().display())
        })?;
        if let Some(why) = self.replaced(&dir, part)? {
            return Err(SessionError::Refused {
                name: self.target.shown().display().to_string(),
                reason: self.unsafe_refusal(&why).reason,
            }
            .into());
        }
        match rename(&dir, &self.name(), self.target.name(), force) {
            Err(e) if e.raw_os_error() == Some(Errno::EEXIST as i32) => {
                Err(SessionError::Refused {
                    name: self.target.shown().display().to_string(),
                    reason: self.exists_reason(&dir),
                }
                .into())
            }
            done => done.with_context(|| {
                format!(
                    "moving {} into place as {}",
                    self.shown().display(),
                    self.target.shown().display()
                )
            }),
        }
    }

    /// Why the target's name was taken when the part file was to be renamed to it: a file came
    /// under that name during the transfer, or (FAT, exFAT, a case-folding directory) one whose
    /// name differs only in case, found here to be named.
    fn exists_reason(&self, dir: &OwnedFd) -> String {
        let name = self.target.name().as_bytes();
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let listed: Vec<Vec<u8>> = nix::dir::Dir::openat(dir, ".", flags, Mode::empty())
            .map(|d| {
                d.into_iter().filter_map(Result::ok).map(|e| e.file_name().to_bytes().to_vec())
            })
            .map(Iterator::collect)
            .unwrap_or_default();
        // The name itself listed: a file came under it. Else a twin the file system took for
        // it: a name that differs only in case (Unicode's, as exFAT's up-case table folds).
        let twin = (!listed.iter().any(|other| other == name))
            .then(|| listed.iter().find(|other| same_but_case(other, name)))
            .flatten()
            .map(|twin| String::from_utf8_lossy(twin).into_owned());
        let why = match twin {
            Some(twin) => format!(
                "a file exists under that name: {twin} (this file system does not tell names apart by case)"
            ),
            None => "a file appeared under that name during the transfer".to_string(),
        };
        format!(
            "{why}; what arrived is kept in {}, the receiver's --force replaces the file",
            self.shown().display()
        )
    }

    /// Opens the part file to write from its start (`offset` 0: a resume needs the plan's
    /// lock, see `open_planned`), under its lock, emptied. Refused (as `name`) when another
    /// session holds the lock.
    pub fn open_locked(&self, name: &str, offset: u64) -> anyhow::Result<LockedPart> {
        self.open_planned(name, offset, None)
    }

    /// Opens the part file to write from `offset` (0: from its start), under its lock, cut to
    /// that length. `planned` is the lock the plan took (see `existing`) when it hashed a
    /// prefix: the file is then the one it hashed. Refused (as `name`) when another session
    /// holds the lock.
    pub fn open_planned(
        &self,
        name: &str,
        offset: u64,
        planned: Option<LockedPart>,
    ) -> anyhow::Result<LockedPart> {
        let refused = |reason: String| SessionError::Refused { name: name.to_string(), reason };
        let part = match planned {
            Some(part) => {
                // The plan's lock keeps other sessions out, not whoever else may write here.
                let dir = self.target.dir().context("opening the part file's directory")?;
                if let Some(why) = self.replaced(&dir, &part)? {
                    return Err(refused(self.unsafe_refusal(&why).reason).into());
                }
                part
            }
            None if offset > 0 => {
                // Only a prefix hashed under this session's lock may be resumed.
                let why = "its resume was not planned under this session's lock";
                return Err(refused(why.into()).into());
            }
            None => self.lock_for_writing().map_err(|r| refused(r.reason))?,
        };
        // A part file of that length already is left as it is: a new one is empty, and ext4
        // writes a file's data back when it is closed after a truncation to 0 (auto_da_alloc),
        // which stalled every receive into ext4 at its end.
        let shown = || self.shown().display().to_string();
        let len = part.metadata().with_context(|| format!("checking {}", shown()))?.len();
        if len != offset {
            part.set_len(offset).with_context(|| format!("truncating {}", shown()))?;
        }
        Ok(part)
    }

    /// The part file, locked, to be written from its start: created (usually it is new,
    /// empty and nobody else's), or the one found under its name once its lock is ours.
    fn lock_for_writing(&self) -> Result<LockedPart, Refusal> {
        let dir = self.target.dir().map_err(|e| self.target.refusal(e))?;
        for _ in 0..LOCK_TRIES {
            let part = match self.create()? {
                Some(part) => part,
                None => self.open()?,
            };
            match self.lock_named(&dir, part).map_err(|e| self.target.refusal(e))? {
                Locking::Held(part) => return Ok(part),
                Locking::Busy => return Err(self.busy_refusal()),
                Locking::Moved => continue,
            }
        }
        Err(self.busy_refusal())
    }

    /// Removes the part file: its contents are known to be wrong.
    pub fn discard(&self) {
        if let Ok(dir) = self.target.dir() {
            let flags = nix::unistd::UnlinkatFlags::NoRemoveDir;
            let _ = nix::unistd::unlinkat(&*dir, self.name().as_os_str(), flags);
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
        SFlag::S_IFREG => "regular file",
        _ => "special file",
    }
}

#[cfg(target_os = "linux")]
fn rename(dir: &OwnedFd, from: &OsStr, to: &OsStr, replace: bool) -> io::Result<()> {
    use nix::fcntl::{RenameFlags, renameat2};
    let flags = if replace { RenameFlags::empty() } else { RenameFlags::RENAME_NOREPLACE };
    match renameat2(dir, from, dir, to, flags) {
        // The file system has no RENAME_NOREPLACE (the NFS client, FUSE without rename2).
        Err(Errno::EINVAL) if !replace => rename_unless_exists(dir, from, to),
        done => done.map_err(io::Error::from),
    }
}

/// Whether two names differ only in case, for names in UTF-8 by Unicode's case mapping, else
/// by ASCII's.
fn same_but_case(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return false;
    }
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(a), Ok(b)) => a.to_lowercase() == b.to_lowercase(),
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// A no-replace rename without RENAME_NOREPLACE: a hard link, which fails on an existing
/// target, then the part's name removed; where the file system has no hard links either
/// (FAT), a check that the target does not exist, then a plain rename. Only this last way
/// leaves a window (between the check and the rename) in which a file created under the
/// target's name by someone else would be replaced.
#[cfg(target_os = "linux")]
fn rename_unless_exists(dir: &OwnedFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
    use nix::fcntl::{AtFlags, renameat};
    use nix::sys::stat::fstatat;
    use nix::unistd::{UnlinkatFlags, linkat, unlinkat};
    match linkat(dir, from, dir, to, AtFlags::empty()) {
        Ok(()) => return unlinkat(dir, from, UnlinkatFlags::NoRemoveDir).map_err(io::Error::from),
        Err(Errno::EPERM | Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::EMLINK) => {}
        Err(e) => return Err(e.into()),
    }
    match fstatat(dir, to, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Err(Errno::EEXIST.into()),
        Err(Errno::ENOENT) => renameat(dir, from, dir, to).map_err(io::Error::from),
        Err(e) => Err(e.into()),
    }
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

/// The lock a plan took on a part file to hash a resume's prefix (see `Part::existing`), kept
/// with the plan until the file's turn, when the session that writes the file takes it out.
#[derive(Debug, Default)]
pub struct PlanLock(std::sync::Mutex<Option<LockedPart>>);

impl PlanLock {
    /// Holds `part`'s lock for the plan.
    pub fn new(part: LockedPart) -> PlanLock {
        PlanLock(std::sync::Mutex::new(Some(part)))
    }

    /// The lock, the first time it is asked for.
    pub fn take(&self) -> Option<LockedPart> {
        self.0.lock().ok()?.take()
    }
}

/// Times a part file is opened and locked again when the one locked had just been moved
/// away by the session that held it: each retry follows a finished rename, so a few suffice.
const LOCK_TRIES: usize = 4;

/// What taking a part file's lock found.
enum Locking {
    /// The lock, on the file under the part name.
    Held(LockedPart),
    /// Another session holds it.
    Busy,
    /// The file locked is no longer under the part name: open it again.
    Moved,
}

/// A part file opened without blocking (a FIFO would not be waited on) made blocking again
/// once it is known to be a regular file: the data paths should not see `O_NONBLOCK`.
fn blocking(part: LockedPart, of: &Part<'_>) -> Result<LockedPart, Refusal> {
    nix::fcntl::fcntl(&*part, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
        .map_err(|e| of.target.refusal(e.into()))?;
    Ok(part)
}

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

#[cfg(test)]
mod tests {
    use super::same_but_case;

    #[test]
    fn names_differ_only_in_case_by_unicode_where_they_are_utf8() {
        assert!(same_but_case(b"BIG", b"Big"));
        assert!(same_but_case("\u{c9}t\u{c9}".as_bytes(), "\u{e9}t\u{e9}".as_bytes()), "É/é");
        assert!(same_but_case(b"A\xff", b"a\xff"), "not UTF-8: ASCII case");
        assert!(!same_but_case(b"Big", b"Big"), "the same name is no twin");
        assert!(!same_but_case(b"big", b"bag"));
    }
}
