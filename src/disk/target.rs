//! One file to be written: where it goes below the output directory, what stands there
//! already, whether its directory takes new files, and the mode it gets. How it gets there is
//! `part` (through its part file) or `unnamed` (a small verified file, written whole).

use std::ffi::OsStr;
use std::fs::FileTimes;
use std::io::{self};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;

use super::dirs::Dirs;
use super::{Refusal, code_of};
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
#[derive(Debug, Clone)]
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

    /// Whether the file system of the target's directory may keep mtimes coarser than the
    /// nanosecond (FAT, exFAT, FUSE); asked only when an mtime does not match exactly.
    pub(super) fn keeps_coarse_times(&self) -> bool {
        self.dir().is_ok_and(|dir| keeps_coarse_times(&dir))
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

    pub(super) fn refusal(&self, e: io::Error) -> Refusal {
        Refusal::new(code_of(&e), format!("cannot write {}: {e}", self.part().shown().display()))
    }
}

/// Whether the file system of `dir` may keep mtimes coarser than the nanosecond: FAT (2 s),
/// exFAT (10 ms), and anything through FUSE (exfat-fuse keeps whole seconds). Elsewhere an
/// mtime must match exactly.
fn keeps_coarse_times(dir: &OwnedFd) -> bool {
    const MSDOS: i64 = 0x4d44;
    const EXFAT: i64 = 0x2011_bab0;
    const FUSE: i64 = 0x6573_5546;
    nix::sys::statfs::fstatfs(dir)
        .is_ok_and(|fs| matches!(fs.filesystem_type().0, MSDOS | EXFAT | FUSE))
}

/// The times a received entry gets: the offered mtime, and the access time now. Both, because
/// exFAT through FUSE (exfat-fuse) drops an mtime that comes with `UTIME_OMIT` for the access
/// time and keeps the time of the write instead.
pub(super) fn times_of(entry: &Entry) -> FileTimes {
    FileTimes::new().set_modified(mtime_of(entry)).set_accessed(SystemTime::now())
}

pub(super) fn mtime_of(entry: &Entry) -> SystemTime {
    let nanos = Duration::from_nanos(entry.mtime_nsec as u64);
    if entry.mtime_sec >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(entry.mtime_sec as u64) + nanos
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(entry.mtime_sec.unsigned_abs()) + nanos
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::mtime_of;
    use crate::protocol::{Entry, EntryKind};

    fn at(mtime_sec: i64, mtime_nsec: u32) -> SystemTime {
        let entry = Entry {
            kind: EntryKind::File,
            name: b"f".to_vec(),
            size: Some(0),
            mode: 0o644,
            mtime_sec,
            mtime_nsec,
        };
        mtime_of(&entry)
    }

    #[test]
    fn mtimes_before_and_after_1970_keep_their_nanoseconds() {
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(at(2, 500_000_000), epoch + Duration::from_millis(2500));
        // -2 s + 0.5 s: half past the second before the last one of 1969, as stat(2) puts it.
        assert_eq!(at(-2, 500_000_000), epoch - Duration::from_millis(1500));
        assert_eq!(at(0, 1), epoch + Duration::from_nanos(1));
    }
}
