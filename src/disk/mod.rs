//! Where received entries go, safely. Every offered name is checked to be a relative path of
//! normal components, then resolved from the held-open `--output` directory one component at a
//! time with `O_NOFOLLOW`, so neither `..` nor a symlink already inside the destination can lead
//! outside it. Files are written through `.NAME.zcp-part` beside their target and renamed into
//! place only after their checksum matched; a small file that arrived whole and checked goes into
//! an unnamed file (`O_TMPFILE`) linked in under its name. It does not move bytes (see `copy`).

mod compare;
mod dirs;
mod durable;
mod modes;
mod part;
mod prune;
mod target;
mod unnamed;
pub mod writer;

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag};
use nix::sys::stat::Mode;

use crate::protocol::{Entry, EntryKind, RefuseCode, names};
use dirs::{Dirs, open_dir};
use target::{Existing, times_of};

pub use durable::{Barrier, hold_small, sync_parent_of};
pub use part::{LockedPart, Part, PlanLock};
pub use prune::Pruned;
pub use target::Target;
pub use unnamed::write_small;

/// What `--output` names.
#[derive(Debug)]
pub enum Destination {
    /// Entries land under this directory, held open by descriptor.
    Directory {
        /// The directory, for messages.
        path: Arc<Path>,
        /// Its open descriptor, and the directories made below it.
        dirs: Arc<Dirs>,
    },
    /// The one file to write: `name` in the root of `dirs`.
    File {
        /// The file's path, for messages.
        path: PathBuf,
        /// Its directory, held open.
        dirs: Arc<Dirs>,
        /// The file's name in that directory.
        name: OsString,
    },
    /// `-`: the one file goes to standard output.
    Stdout,
}

/// How the receiver treats targets that already exist, and which mode bits it gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Replace existing files.
    pub force: bool,
    /// Skip files whose size and mtime already match.
    pub skip_existing: bool,
    /// Skip files whose size and xxh3-128 match, whatever their mtime (`--checksum`).
    pub compare_content: bool,
    /// The receiver's umask, read once at start: these bits are cleared from every offered
    /// mode, as for any file the receiving user creates.
    pub umask: u32,
}

impl Policy {
    /// The permission bits an entry offered with `offered` gets here: never setuid, setgid or
    /// sticky, and less the receiver's umask.
    pub fn mode_of(&self, offered: u32) -> u32 {
        offered & 0o777 & !self.umask
    }
}

/// Why an entry will not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The class of the refusal, sent to the sender.
    pub code: RefuseCode,
    /// The refusal in words, shown on both ends.
    pub reason: String,
}

impl Refusal {
    /// A refusal with its code and the reason shown on both ends.
    pub fn new(code: RefuseCode, reason: impl Into<String>) -> Self {
        Refusal { code, reason: reason.into() }
    }
}

/// A file written and checked but not put in place: its name was taken meanwhile (a file came
/// under it during the transfer). It alone is refused; the session goes on.
#[derive(Debug)]
pub struct NameTaken {
    /// Where it was to go.
    pub target: Target,
    /// The refusal in words, shown on both ends.
    pub reason: String,
}

/// What the receiver decided for one entry.
#[derive(Debug)]
pub enum Decision {
    /// A directory, now present; `created` when this session made it (only then are the
    /// offered mode and mtime applied: an existing directory is not the sender's to change).
    Dir {
        /// Whether this session made it.
        created: bool,
    },
    /// An existing file that matches: nothing to send.
    Skip,
    /// Receive into this target, from `offset` (a part file of that length exists). `part`:
    /// a part file exists, of any length (it is reused, so it never outlives the transfer).
    Receive {
        /// Where the file goes.
        target: Target,
        /// The length of the part file kept, where the bytes resume.
        offset: u64,
        /// The xxh3-128 of that part.
        prefix_xxh3: u128,
        /// Whether a part file exists.
        part: bool,
        /// When `offset` > 0, the part file's lock, under which its prefix was hashed.
        lock: PlanLock,
    },
    /// Receive onto standard output.
    Stdout,
    /// An existing file of the offered size, compared by content (`--checksum`): the sender
    /// is asked to resume from its last byte, so it sends nothing when its own file hashes the
    /// same, else the whole file (kept only with `--force`).
    Compare {
        /// Where the file is, and where a replacement goes.
        target: Target,
        /// Its size, the offered one.
        size: u64,
        /// The xxh3-128 of its contents.
        xxh3: u128,
    },
}

impl Destination {
    /// Reads `--output`: `-`, an existing directory, or a file path whose directory exists.
    pub fn resolve(output: &Path) -> anyhow::Result<Destination> {
        if output.as_os_str() == "-" {
            return Ok(Destination::Stdout);
        }
        if output.is_dir() {
            let dir = open_dir(AT_FDCWD, output.as_os_str(), true)
                .with_context(|| format!("opening output directory {}", output.display()))?;
            return Ok(Destination::Directory { path: output.into(), dirs: Dirs::new(dir) });
        }
        let Some(name) = output.file_name() else {
            bail!("output {} is neither a directory nor a file path", output.display());
        };
        let parent = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // The parent must exist: a mistyped path does not grow directories.
        let dir = open_dir(AT_FDCWD, parent.as_os_str(), false)
            .with_context(|| format!("output directory {}", parent.display()))?;
        Ok(Destination::File {
            path: output.to_path_buf(),
            dirs: Dirs::new(dir),
            name: name.to_os_string(),
        })
    }

    /// The directory an offer lands in when `--output` named a path that does not exist:
    /// created there, one level (its parent exists), when the path ends in `/`, or the offer
    /// holds a directory or more than one entry; found again when an earlier session created
    /// it. `None` leaves the destination as it is (one file to a missing path stays a file).
    /// The flag says whether this call created the directory.
    pub fn directory_for(&self, entries: &[Entry]) -> anyhow::Result<Option<(Destination, bool)>> {
        let Destination::File { path, dirs, name } = self else { return Ok(None) };
        use nix::sys::stat::{SFlag, fstatat};
        let found = match fstatat(&*dirs.root, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Some(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(anyhow::Error::from(e).context(format!("{}", path.display()))),
        };
        let wants_dir = path.as_os_str().as_bytes().ends_with(b"/")
            || entries.len() > 1
            || entries.iter().any(|e| e.kind == EntryKind::Dir);
        let created = match found {
            Some(true) => false,
            None if wants_dir => true,
            // A file, or one file to a missing path: the destination names the file.
            Some(false) | None => return Ok(None),
        };
        let dir = open_dir(&*dirs.root, name, true)
            .with_context(|| format!("creating output directory {}", path.display()))?;
        Ok(Some((
            Destination::Directory { path: path.as_path().into(), dirs: Dirs::new(dir) },
            created,
        )))
    }

    /// The errno with which the file system refused a mode since the last call (it keeps no
    /// Unix modes: FAT, many FUSE and network file systems), if it did.
    pub fn modes_refused(&self) -> Option<Errno> {
        match self {
            Destination::Directory { dirs, .. } | Destination::File { dirs, .. } => {
                dirs.modes_refused()
            }
            Destination::Stdout => None,
        }
    }

    /// Whether this destination takes one file only.
    pub fn single(&self) -> bool {
        !matches!(self, Destination::Directory { .. })
    }

    /// Decides one entry: checks its name, creates directories, finds an existing target or a
    /// part file to resume, and proves the part file can be created.
    pub fn decide<'o>(
        &self,
        entry: &'o Entry,
        policy: Policy,
        listing: &mut Listing<'o>,
    ) -> Result<Decision, Refusal> {
        let parts =
            check_path(&entry.name).map_err(|why| Refusal::new(RefuseCode::InvalidName, why))?;
        let (dirs, root) = match self {
            Destination::Stdout => return self.decide_stdout(entry),
            Destination::Directory { path, dirs } => (dirs, path),
            Destination::File { path, dirs, name } => {
                if entry.kind == EntryKind::Dir {
                    return Err(Refusal::new(
                        RefuseCode::Unsupported,
                        "the receiver's --output names a file, not a directory",
                    ));
                }
                let parent = path.parent().unwrap_or(Path::new(""));
                let mode = policy.mode_of(entry.mode);
                let target = Target::new(Arc::clone(dirs), parent.into(), name.as_bytes(), mode);
                return decide_file(target, entry, policy, listing);
            }
        };
        let refused = |e| walk_refusal(&root.join(OsStr::from_bytes(&entry.name)), e);
        let (_, rel_dirs) = parts
            .split_last()
            .ok_or_else(|| Refusal::new(RefuseCode::InvalidName, "empty path"))?;
        match entry.kind {
            EntryKind::Dir => {
                let made = listing.make(dirs, &parts, &entry.name).map_err(refused)?;
                // The last component is created last: it was made here if it was made at all.
                let created = made.last() == Some(&entry.name.len());
                Ok(Decision::Dir { created })
            }
            EntryKind::File => {
                listing.make(dirs, rel_dirs, &entry.name).map_err(refused)?;
                let mode = policy.mode_of(entry.mode);
                let target = Target::new(Arc::clone(dirs), Arc::clone(root), &entry.name, mode);
                decide_file(target, entry, policy, listing)
            }
        }
    }

    fn decide_stdout(&self, entry: &Entry) -> Result<Decision, Refusal> {
        match entry.kind {
            EntryKind::File => Ok(Decision::Stdout),
            EntryKind::Dir => Err(Refusal::new(
                RefuseCode::Unsupported,
                "the receiver's --output - takes one file, not a directory",
            )),
        }
    }

    /// Applies the mode and mtime of each directory entry in `entries` (the ones this session
    /// created, deepest first); done after all files, so a read-only directory mode does not
    /// stop its own contents from landing. One walk serves them all: a tree costs one step a
    /// directory, not its depth.
    pub fn finish_dirs<'e>(
        &self,
        entries: impl Iterator<Item = &'e Entry>,
        policy: Policy,
    ) -> anyhow::Result<()> {
        let Destination::Directory { dirs, .. } = self else { return Ok(()) };
        let mut walk = dirs::Walk::default();
        for entry in entries {
            let finish = |dir: &OwnedFd| -> io::Result<()> {
                let dir = File::from(dir.try_clone()?);
                modes::set_mode(&dir, policy.mode_of(entry.mode), dirs)?;
                dir.set_times(times_of(entry))
            };
            walk.reach(dirs, &entry.name).and_then(finish).with_context(|| {
                format!("setting mode and mtime of {}", String::from_utf8_lossy(&entry.name))
            })?;
        }
        Ok(())
    }
}

fn decide_file(
    target: Target,
    entry: &Entry,
    policy: Policy,
    listing: &mut Listing<'_>,
) -> Result<Decision, Refusal> {
    let names = listing.of(&target)?;
    let existing = if names.contains(target.name()) { target.existing()? } else { None };
    let part_exists = names.contains(&target.part().name());
    if let Some(existing) = existing {
        if existing.is_dir {
            return Err(Refusal::new(
                RefuseCode::Exists,
                format!("{} exists and is a directory", target.shown().display()),
            ));
        }
        if policy.skip_existing && same_file(&existing, entry, || target.keeps_coarse_times()) {
            return Ok(Decision::Skip);
        }
        if policy.compare_content
            && existing.is_file
            && let Some(size) = entry.size.filter(|&s| s == existing.size)
        {
            return compare::decide(target, size, policy.force);
        }
        if !policy.force {
            let hint = if policy.skip_existing {
                "differs; the receiver's --force overwrites it"
            } else {
                "the receiver's --force overwrites it"
            };
            return Err(Refusal::new(
                RefuseCode::Exists,
                format!("{} exists ({hint})", target.shown().display()),
            ));
        }
    }
    target.check_writable()?;
    let receive = |target, offset, prefix_xxh3, part, lock| {
        Ok(Decision::Receive { target, offset, prefix_xxh3, part, lock })
    };
    if !part_exists {
        return receive(target, 0, 0, false, PlanLock::default());
    }
    if listing.locks >= PLAN_LOCKS {
        // Sent whole: its part file is locked and emptied when its turn comes.
        return receive(target, 0, 0, true, PlanLock::default());
    }
    let Some(part) = target.part().existing()? else {
        return receive(target, 0, 0, false, PlanLock::default());
    };
    let len = part.metadata().map_err(|e| target.refusal(e))?.len();
    // A part file longer than the offered file cannot be its prefix: start over.
    let offset = match entry.size {
        Some(size) if len <= size => len,
        _ => 0,
    };
    if offset == 0 {
        return receive(target, 0, 0, true, PlanLock::default());
    }
    let mut hasher = crate::checksum::Xxh3::new();
    crate::copy::hash_prefix(&part, offset, &mut hasher).map_err(|e| target.refusal(e))?;
    listing.locks += 1;
    receive(target, offset, hasher.digest128(), true, PlanLock::new(part))
}

/// Whether the existing file is the offered one (size and mtime); `coarse` says whether its
/// file system keeps coarse mtimes, asked (a `statfs`) only when the mtimes differ.
fn same_file(existing: &Existing, entry: &Entry, coarse: impl FnOnce() -> bool) -> bool {
    let nanos = |sec: i64, nsec: i64| i128::from(sec) * 1_000_000_000 + i128::from(nsec);
    let (kept, offered) = (
        nanos(existing.mtime_sec, existing.mtime_nsec),
        nanos(entry.mtime_sec, i64::from(entry.mtime_nsec)),
    );
    existing.is_file
        && Some(existing.size) == entry.size
        && (kept == offered || same_mtime(kept, offered, coarse()))
}

/// Whether a file that landed with mtime `kept` (in ns) was given `offered`: the same, or, on
/// a file system that keeps `coarse` times, `offered` cut to its grain (exFAT 10 ms,
/// exfat-fuse 1 s, FAT 2 s), so that `--skip-existing` works onto a USB stick too. Elsewhere a
/// file whose mtime merely sits on such a grain is not the same.
fn same_mtime(kept: i128, offered: i128, coarse: bool) -> bool {
    const GRAINS: [i128; 4] = [1, 10_000_000, 1_000_000_000, 2_000_000_000];
    let grains = if coarse { &GRAINS[..] } else { &GRAINS[..1] };
    grains.iter().any(|grain| kept == offered - offered.rem_euclid(*grain))
}

/// An offered name's components, checked by the protocol's naming rule.
fn check_path(name: &[u8]) -> Result<Vec<&OsStr>, String> {
    Ok(names::components(name)?.into_iter().map(OsStr::from_bytes).collect())
}

fn walk_refusal(shown: &Path, e: io::Error) -> Refusal {
    let why = match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ELOOP) | Some(Errno::ENOTDIR) => {
            "a component is a symlink or not a directory (links in the destination are not followed)".to_string()
        }
        _ => e.to_string(),
    };
    Refusal::new(code_of(&e), format!("cannot create {}: {why}", shown.display()))
}

fn code_of(e: &io::Error) -> RefuseCode {
    match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            RefuseCode::NotWritable
        }
        io::ErrorKind::StorageFull => RefuseCode::NoSpace,
        _ => RefuseCode::Other,
    }
}

/// The names in one directory, read once per directory while a plan is made: most entries of
/// a tree are new, and a name that is not listed needs no `fstatat` or `openat` to say so. A
/// listing lives for one plan only; what appears after it is caught by the no-replace rename.
///
/// It also keeps the directories the plan created, so that a refused plan removes them again
/// (`Destination::undo`).
#[derive(Debug, Default)]
pub struct Listing<'o> {
    dir: Option<Vec<u8>>,
    names: HashSet<OsString>,
    /// The directories made, as prefixes of the offered names that made them.
    made: Vec<&'o [u8]>,
    /// Scratch: the lengths of those `make` made last.
    lengths: Vec<usize>,
    /// Part files the plan holds locked for a resume (see `PLAN_LOCKS`).
    locks: usize,
}

/// Part files one plan holds locked, each a descriptor from the plan until its file's turn;
/// a part file past these is sent whole rather than resumed.
const PLAN_LOCKS: usize = 256;

impl<'o> Listing<'o> {
    /// The directories the plan made, as prefixes of the offered names that made them.
    pub fn made(&self) -> &[&'o [u8]] {
        &self.made
    }

    /// `dirs.make(rel)` for the entry named `name`, noting the directories it made; returns
    /// the lengths of their paths (prefixes of `name`). A directory made here starts empty, so
    /// it is taken as listed: its files cost no `openat` and `getdents` each.
    fn make(&mut self, dirs: &Dirs, rel: &[&OsStr], name: &'o [u8]) -> io::Result<&[usize]> {
        self.lengths.clear();
        dirs.make(rel, &mut self.lengths)?;
        self.made.extend(self.lengths.iter().map(|&len| &name[..len]));
        let joined = rel.iter().map(|c| c.len()).sum::<usize>() + rel.len().saturating_sub(1);
        if joined > 0 && self.lengths.last() == Some(&joined) {
            self.dir = Some(name[..joined].to_vec());
            self.names.clear();
        }
        Ok(&self.lengths)
    }

    fn of(&mut self, target: &Target) -> Result<&HashSet<OsString>, Refusal> {
        if self.dir.as_deref() != Some(target.rel()) {
            let dir = target.dir().map_err(|e| target.refusal(e))?;
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let listed = nix::dir::Dir::openat(&*dir, ".", flags, Mode::empty())
                .map_err(|e| target.refusal(e.into()))?;
            self.names = listed
                .into_iter()
                .filter_map(Result::ok)
                .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
                .collect();
            self.dir = Some(target.rel().to_vec());
        }
        Ok(&self.names)
    }
}

impl Destination {
    /// Removes the directories this plan created (see `Listing`), deepest first, each only
    /// while it is empty: for a plan that was refused as a whole.
    pub fn undo(&self, listing: &Listing<'_>) {
        if let Destination::Directory { dirs, .. } = self {
            dirs.unmake(&listing.made);
        }
    }

    /// Bytes available to an unprivileged writer where files land, when it can be told.
    pub fn free_space(&self) -> Option<u64> {
        let dir = match self {
            Destination::Directory { dirs, .. } | Destination::File { dirs, .. } => &dirs.root,
            Destination::Stdout => return None,
        };
        let st = nix::sys::statvfs::fstatvfs(&**dir).ok()?;
        Some((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
    }
}

/// Standard output as a file to write received bytes to (`--output -`).
pub fn stdout() -> anyhow::Result<File> {
    let fd = io::stdout().as_fd().try_clone_to_owned().context("duplicating standard output")?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::same_mtime;

    #[test]
    fn an_mtime_matches_itself_or_itself_cut_to_a_coarser_file_systems_grain() {
        let offered = 1_000_000_001_234_567_891;
        for kept in [
            offered,
            1_000_000_001_230_000_000,
            1_000_000_001_000_000_000,
            1_000_000_000_000_000_000,
        ] {
            assert!(same_mtime(kept, offered, true), "{kept}");
            assert_eq!(same_mtime(kept, offered, false), kept == offered, "{kept}, exact");
        }
        for kept in [offered + 1, offered - 1, 1_000_000_002_000_000_000, 999_999_999_000_000_000] {
            assert!(!same_mtime(kept, offered, true), "{kept}");
        }
        // Before 1970 a cut goes down too.
        assert!(same_mtime(-2_000_000_000, -1_500_000_000, true));
    }
}
