//! Where received files go: checks each offered name, resolves it under `--output`, and writes
//! it through a part file beside its target (`.NAME.zcp-part`) that is renamed into place only
//! after its checksum matched. It does not move bytes (see `copy`).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};

use crate::protocol::{Entry, RefuseCode};

/// Longest file name most file systems take (NAME_MAX).
const NAME_MAX: usize = 255;

/// What `--output` names: a directory that receives files under their offered names, or the
/// path of the one file to write.
#[derive(Debug, Clone)]
pub enum Destination {
    Directory(PathBuf),
    File { dir: PathBuf, name: OsString },
}

/// Why an entry will not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefuseCode,
    pub reason: String,
}

impl Refusal {
    fn new(code: RefuseCode, reason: impl Into<String>) -> Self {
        Refusal { code, reason: reason.into() }
    }
}

impl Destination {
    /// Reads `--output`: an existing directory, else a file path whose directory exists.
    pub fn resolve(output: &Path) -> anyhow::Result<Destination> {
        if output.is_dir() {
            return Ok(Destination::Directory(output.to_path_buf()));
        }
        let Some(name) = output.file_name() else {
            bail!("output {} is neither a directory nor a file path", output.display());
        };
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let meta =
            fs::metadata(&dir).with_context(|| format!("output directory {}", dir.display()))?;
        if !meta.is_dir() {
            bail!("output directory {} is not a directory", dir.display());
        }
        Ok(Destination::File { dir, name: name.to_os_string() })
    }

    /// Where an offered entry would be written, or why it will not be.
    pub fn target(&self, entry: &Entry) -> Result<Target, Refusal> {
        let name =
            check_name(&entry.name).map_err(|why| Refusal::new(RefuseCode::InvalidName, why))?;
        Ok(match self {
            Destination::Directory(dir) => Target { dir: dir.clone(), name: name.to_os_string() },
            Destination::File { dir, name } => Target { dir: dir.clone(), name: name.clone() },
        })
    }
}

/// Accepts a plain base name: not empty, not `.` or `..`, no `/`, no NUL, at most 255 bytes.
pub fn check_name(name: &[u8]) -> Result<&OsStr, String> {
    let shown = String::from_utf8_lossy(name);
    if name.is_empty() {
        Err("empty file name".into())
    } else if name.contains(&0) {
        Err(format!("file name {shown:?} contains a NUL byte"))
    } else if name.contains(&b'/') {
        Err(format!("file name {shown:?} contains '/' (only plain file names are accepted)"))
    } else if name == b"." || name == b".." {
        Err(format!("file name {shown:?} is not a file name"))
    } else if name.len() > NAME_MAX {
        Err(format!("file name is {} bytes long, more than {NAME_MAX}", name.len()))
    } else {
        Ok(OsStr::from_bytes(name))
    }
}

/// A file to be written: its directory and final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub dir: PathBuf,
    pub name: OsString,
}

impl Target {
    pub fn final_path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// `.NAME.zcp-part` beside the final path.
    pub fn part_path(&self) -> PathBuf {
        let mut part = b".".to_vec();
        part.extend_from_slice(self.name.as_bytes());
        part.extend_from_slice(b".zcp-part");
        self.dir.join(OsString::from_vec(part))
    }
}

/// A file being received, under its part name until `commit`.
#[derive(Debug)]
pub struct PartFile {
    pub file: File,
    pub target: Target,
    /// Whether an existing file may be replaced.
    force: bool,
}

impl PartFile {
    /// Creates (or truncates) the part file, refusing when the target exists without `force`.
    pub fn create(target: Target, force: bool) -> Result<PartFile, Refusal> {
        let final_path = target.final_path();
        if let Ok(meta) = fs::symlink_metadata(&final_path) {
            if meta.is_dir() {
                return Err(Refusal::new(
                    RefuseCode::Exists,
                    format!("{} exists and is a directory", final_path.display()),
                ));
            }
            if !force {
                return Err(Refusal::new(
                    RefuseCode::Exists,
                    format!("{} exists (use --force to overwrite)", final_path.display()),
                ));
            }
        }
        let part_path = target.part_path();
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&part_path)
            .map_err(|e| {
                let code = match e.kind() {
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                        RefuseCode::NotWritable
                    }
                    io::ErrorKind::StorageFull => RefuseCode::NoSpace,
                    _ => RefuseCode::Other,
                };
                Refusal::new(code, format!("cannot create {}: {e}", part_path.display()))
            })?;
        Ok(PartFile { file, target, force })
    }

    /// Applies the offered mode (and mtime, for files of known size) and renames the part file
    /// into place. Without `force`, an existing target is never replaced, even one that appeared
    /// during the transfer.
    pub fn commit(self, entry: &Entry) -> anyhow::Result<PathBuf> {
        let part = self.target.part_path();
        let final_path = self.target.final_path();
        self.file
            .set_permissions(fs::Permissions::from_mode(entry.mode & 0o777))
            .with_context(|| format!("setting the mode of {}", part.display()))?;
        if entry.size.is_some() {
            let mtime = mtime_of(entry);
            self.file
                .set_times(FileTimes::new().set_modified(mtime))
                .with_context(|| format!("setting the mtime of {}", part.display()))?;
        }
        rename(&part, &final_path, self.force).with_context(|| {
            format!("moving {} into place as {}", part.display(), final_path.display())
        })?;
        Ok(final_path)
    }

    /// Removes the part file: its contents are known to be wrong.
    pub fn discard(self) {
        let _ = fs::remove_file(self.target.part_path());
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

#[cfg(target_os = "linux")]
fn rename(from: &Path, to: &Path, replace: bool) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    let flags = if replace { RenameFlags::empty() } else { RenameFlags::RENAME_NOREPLACE };
    renameat2(AT_FDCWD, from, AT_FDCWD, to, flags).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn rename(from: &Path, to: &Path, replace: bool) -> io::Result<()> {
    // No atomic no-replace rename here: link(2) fails on an existing target, then drop the part.
    if replace {
        fs::rename(from, to)
    } else {
        fs::hard_link(from, to)?;
        fs::remove_file(from)
    }
}
