//! Where received entries go, safely. Every offered name is checked to be a relative path of
//! normal components, then resolved from the held-open `--output` directory one component at a
//! time with `O_NOFOLLOW`, so neither `..` nor a symlink already inside the destination can lead
//! outside it. Files are written through `.NAME.zcp-part` beside their target and renamed into
//! place only after their checksum matched; a small file that arrived whole and checked goes into
//! an unnamed file (`O_TMPFILE`) linked in under its name. It does not move bytes (see `copy`).

pub mod writer;

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::{Mode, mkdirat};

use crate::protocol::{Entry, EntryKind, MAX_NAME, RefuseCode};

/// Longest path component most file systems take (NAME_MAX), less the part-file decoration.
const COMPONENT_MAX: usize = 255 - ".".len() - ".zcp-part".len();

/// What `--output` names.
#[derive(Debug)]
pub enum Destination {
    /// Entries land under this directory, held open by descriptor.
    Directory { path: PathBuf, dirs: Arc<Dirs> },
    /// The one file to write: `name` in the root of `dirs`.
    File { path: PathBuf, dirs: Arc<Dirs>, name: OsString },
    /// `-`: the one file goes to standard output.
    Stdout,
}

/// How many directory descriptors `Dirs` keeps open.
const DIRS_KEPT: usize = 64;

/// The output directory, held open, and descriptors of the directories below it by relative
/// path. Consecutive files mostly share a directory, so each is walked once rather than once
/// per file; the few kept open bound the descriptors a tree of many directories costs.
#[derive(Debug)]
pub struct Dirs {
    root: Arc<OwnedFd>,
    recent: Mutex<Vec<(Vec<u8>, Arc<OwnedFd>)>>,
    /// The directory last found writable: files in one directory ask once.
    writable: Mutex<Option<Vec<OsString>>>,
    /// Set once unnamed files (`O_TMPFILE`) turned out not to work here.
    no_unnamed: AtomicBool,
}

impl Dirs {
    fn new(root: OwnedFd) -> Arc<Dirs> {
        Arc::new(Dirs {
            root: Arc::new(root),
            recent: Mutex::new(Vec::new()),
            writable: Mutex::new(None),
            no_unnamed: AtomicBool::new(false),
        })
    }

    /// Whether the directory at `rel` is already there (reached without following links).
    fn exists(&self, rel: &[&OsStr]) -> bool {
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
    fn get(&self, rel: &[&OsStr]) -> io::Result<Arc<OwnedFd>> {
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

/// How the receiver treats targets that already exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Replace existing files.
    pub force: bool,
    /// Skip files whose size and mtime already match.
    pub skip_existing: bool,
}

/// Why an entry will not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefuseCode,
    pub reason: String,
}

impl Refusal {
    /// A refusal with its code and the reason shown on both ends.
    pub fn new(code: RefuseCode, reason: impl Into<String>) -> Self {
        Refusal { code, reason: reason.into() }
    }
}

/// What the receiver decided for one entry.
#[derive(Debug)]
pub enum Decision {
    /// A directory, now present; `created` when this session made it (only then are the
    /// offered mode and mtime applied: an existing directory is not the sender's to change).
    Dir { created: bool },
    /// An existing file that matches: nothing to send.
    Skip,
    /// Receive into this target, from `offset` (a part file of that length exists). `part`:
    /// a part file exists, of any length (it is reused, so it never outlives the transfer).
    Receive { target: Target, offset: u64, prefix_xxh3: u128, part: bool },
    /// Receive onto standard output.
    Stdout,
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
            return Ok(Destination::Directory { path: output.to_path_buf(), dirs: Dirs::new(dir) });
        }
        let Some(name) = output.file_name() else {
            bail!("output {} is neither a directory nor a file path", output.display());
        };
        let parent = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = open_dir(AT_FDCWD, parent.as_os_str(), true)
            .with_context(|| format!("output directory {}", parent.display()))?;
        Ok(Destination::File {
            path: output.to_path_buf(),
            dirs: Dirs::new(dir),
            name: name.to_os_string(),
        })
    }

    /// Whether this destination takes one file only.
    pub fn single(&self) -> bool {
        !matches!(self, Destination::Directory { .. })
    }

    /// Decides one entry: checks its name, creates directories, finds an existing target or a
    /// part file to resume, and proves the part file can be created.
    pub fn decide(
        &self,
        entry: &Entry,
        policy: Policy,
        listing: &mut Listing,
    ) -> Result<Decision, Refusal> {
        let parts =
            check_path(&entry.name).map_err(|why| Refusal::new(RefuseCode::InvalidName, why))?;
        let (dirs, shown_root) = match self {
            Destination::Stdout => return self.decide_stdout(entry),
            Destination::Directory { path, dirs } => (dirs, path.clone()),
            Destination::File { path, dirs, name } => {
                if entry.kind == EntryKind::Dir {
                    return Err(Refusal::new(
                        RefuseCode::Unsupported,
                        "--output names a file, not a directory",
                    ));
                }
                let target = Target {
                    dirs: Arc::clone(dirs),
                    rel: Vec::new(),
                    name: name.clone(),
                    shown: path.clone(),
                };
                return decide_file(target, entry, policy, listing);
            }
        };
        let shown = shown_root.join(OsStr::from_bytes(&entry.name));
        let (last, rel_dirs) = parts
            .split_last()
            .ok_or_else(|| Refusal::new(RefuseCode::InvalidName, "empty path"))?;
        match entry.kind {
            EntryKind::Dir => {
                let existed = dirs.exists(&parts);
                dirs.get(&parts).map_err(|e| walk_refusal(&shown, e))?;
                Ok(Decision::Dir { created: !existed })
            }
            EntryKind::File => {
                dirs.get(rel_dirs).map_err(|e| walk_refusal(&shown, e))?;
                let rel = rel_dirs.iter().map(|c| c.to_os_string()).collect();
                let target =
                    Target { dirs: Arc::clone(dirs), rel, name: last.to_os_string(), shown };
                decide_file(target, entry, policy, listing)
            }
        }
    }

    fn decide_stdout(&self, entry: &Entry) -> Result<Decision, Refusal> {
        match entry.kind {
            EntryKind::File => Ok(Decision::Stdout),
            EntryKind::Dir => Err(Refusal::new(
                RefuseCode::Unsupported,
                "--output - takes one file, not a directory",
            )),
        }
    }

    /// Re-opens the directory of a received entry and applies its mode and mtime; done after all
    /// files, so a read-only directory mode does not stop its own contents from landing.
    pub fn finish_dir(&self, entry: &Entry) -> io::Result<()> {
        let Destination::Directory { dirs, .. } = self else { return Ok(()) };
        let parts = check_path(&entry.name).map_err(io::Error::other)?;
        let fd = dirs.get(&parts)?;
        let dir = File::from(fd.try_clone()?);
        dir.set_permissions(std::fs::Permissions::from_mode(entry.mode & 0o777))?;
        dir.set_times(FileTimes::new().set_modified(mtime_of(entry)))
    }
}

fn decide_file(
    target: Target,
    entry: &Entry,
    policy: Policy,
    listing: &mut Listing,
) -> Result<Decision, Refusal> {
    let names = listing.of(&target)?;
    let existing = if names.contains(&target.name) { target.existing()? } else { None };
    let part_exists = names.contains(&target.part_name());
    if let Some(existing) = existing {
        if existing.is_dir {
            return Err(Refusal::new(
                RefuseCode::Exists,
                format!("{} exists and is a directory", target.shown.display()),
            ));
        }
        if policy.skip_existing && same_file(&existing, entry) {
            return Ok(Decision::Skip);
        }
        if !policy.force {
            let hint = if policy.skip_existing {
                "differs; use --force to overwrite"
            } else {
                "use --force to overwrite"
            };
            return Err(Refusal::new(
                RefuseCode::Exists,
                format!("{} exists ({hint})", target.shown.display()),
            ));
        }
    }
    target.check_writable()?;
    let Some(part) = (if part_exists { target.existing_part()? } else { None }) else {
        return Ok(Decision::Receive { target, offset: 0, prefix_xxh3: 0, part: false });
    };
    let len = part.metadata().map_err(|e| target.refusal(e))?.len();
    // A part file longer than the offered file cannot be its prefix: start over.
    let offset = match entry.size {
        Some(size) if len <= size => len,
        _ => 0,
    };
    let prefix_xxh3 = if offset > 0 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        crate::copy::hash_prefix(&part, offset, &mut hasher).map_err(|e| target.refusal(e))?;
        hasher.digest128()
    } else {
        0
    };
    Ok(Decision::Receive { target, offset, prefix_xxh3, part: true })
}

/// What stands under a target name already.
#[derive(Debug)]
struct Existing {
    is_dir: bool,
    is_file: bool,
    size: u64,
    mtime_sec: i64,
    mtime_nsec: i64,
}

fn same_file(existing: &Existing, entry: &Entry) -> bool {
    existing.is_file
        && Some(existing.size) == entry.size
        && existing.mtime_sec == entry.mtime_sec
        && existing.mtime_nsec == entry.mtime_nsec as i64
}

/// Checks an offered name: a relative path of 1 to 4096 bytes whose `/`-separated components
/// are all normal (not empty, not `.` or `..`), without NUL, each short enough for a part name.
pub fn check_path(name: &[u8]) -> Result<Vec<&OsStr>, String> {
    let shown = String::from_utf8_lossy(name);
    if name.is_empty() {
        return Err("empty file name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("name is {} bytes long, more than {MAX_NAME}", name.len()));
    }
    if name.contains(&0) {
        return Err(format!("name {shown:?} contains a NUL byte"));
    }
    if name.starts_with(b"/") {
        return Err(format!("name {shown:?} is an absolute path"));
    }
    name.split(|&b| b == b'/')
        .map(|c| match c {
            b"" => Err(format!("name {shown:?} has an empty component")),
            b"." | b".." => {
                Err(format!("name {shown:?} has a {:?} component", OsStr::from_bytes(c)))
            }
            c if c.len() > COMPONENT_MAX => {
                Err(format!("name {shown:?} has a component longer than {COMPONENT_MAX} bytes"))
            }
            c => Ok(OsStr::from_bytes(c)),
        })
        .collect()
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

/// Opens directory `name` in `dir` without following links, creating it first when asked.
fn open_dir(dir: impl AsFd, name: &OsStr, create: bool) -> io::Result<OwnedFd> {
    if create {
        match mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(openat(dir, name, flags, Mode::empty())?)
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
#[derive(Debug, Default)]
pub struct Listing {
    dir: Option<Vec<OsString>>,
    names: HashSet<OsString>,
}

impl Listing {
    fn of(&mut self, target: &Target) -> Result<&HashSet<OsString>, Refusal> {
        if self.dir.as_ref() != Some(&target.rel) {
            let dir = target.dir().map_err(|e| target.refusal(e))?;
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            let listed = nix::dir::Dir::openat(&*dir, ".", flags, Mode::empty())
                .map_err(|e| target.refusal(e.into()))?;
            self.names = listed
                .into_iter()
                .filter_map(Result::ok)
                .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
                .collect();
            self.dir = Some(target.rel.clone());
        }
        Ok(&self.names)
    }
}

/// A file to be written: its directory (relative to the output directory), final name, and the
/// path shown to users. It holds no descriptor: many targets wait in a plan at once.
#[derive(Debug)]
pub struct Target {
    dirs: Arc<Dirs>,
    rel: Vec<OsString>,
    name: OsString,
    /// The path as users see it, for messages only; never opened.
    pub shown: PathBuf,
}

impl Target {
    fn dir(&self) -> io::Result<Arc<OwnedFd>> {
        let rel: Vec<&OsStr> = self.rel.iter().map(OsString::as_os_str).collect();
        self.dirs.get(&rel)
    }

    fn part_name(&self) -> OsString {
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
    fn existing(&self) -> Result<Option<Existing>, Refusal> {
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
    fn existing_part(&self) -> Result<Option<File>, Refusal> {
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
    fn check_writable(&self) -> Result<(), Refusal> {
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

    fn refusal(&self, e: io::Error) -> Refusal {
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
        let mut out = crate::copy::Counted::new(&file);
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

    /// Removes the part file: its contents are known to be wrong.
    pub fn discard(&self) {
        if let Ok(dir) = self.dir() {
            let flags = nix::unistd::UnlinkatFlags::NoRemoveDir;
            let _ = nix::unistd::unlinkat(&*dir, self.part_name().as_os_str(), flags);
        }
    }
}

fn mtime_of(entry: &Entry) -> SystemTime {
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

impl Destination {
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

/// A part file under its exclusive `flock(2)` lock, which ends when this is dropped.
pub type LockedPart = nix::fcntl::Flock<File>;

/// Takes the part file's exclusive lock without waiting, so two sessions never write one file.
/// `None` when another holder has it.
pub fn lock(part: File) -> io::Result<Option<LockedPart>> {
    use nix::fcntl::{Flock, FlockArg};
    match Flock::lock(part, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(Some(locked)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(errno.into()),
    }
}

/// Standard output as a file to write received bytes to (`--output -`).
pub fn stdout() -> anyhow::Result<File> {
    let fd = io::stdout().as_fd().try_clone_to_owned().context("duplicating standard output")?;
    Ok(File::from(fd))
}
