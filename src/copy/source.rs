//! What the sender reads: opens a path, tells a regular file from a pipe or a pseudo file, and
//! decides whether its length is known up front (it is not for pipes and procfs/sysfs files,
//! which report a size of 0 or a page).

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, bail};

use crate::error::SessionError;

/// What kind of thing a source is, as far as the data paths care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A regular file whose size is its length.
    Regular,
    /// A file on a pseudo file system (procfs, sysfs, …) whose size says nothing.
    Pseudo(&'static str),
    /// A FIFO or pipe.
    Pipe,
    /// A character device (`/dev/zero`, a terminal).
    CharDevice,
    /// A Unix socket.
    Socket,
}

impl SourceKind {
    /// A phrase for reasons and errors: "a pipe", "a procfs file".
    pub fn describe(self) -> String {
        match self {
            SourceKind::Regular => "a regular file".into(),
            SourceKind::Pseudo(fs) => format!("a {fs} file"),
            SourceKind::Pipe => "a pipe".into(),
            SourceKind::CharDevice => "a character device".into(),
            SourceKind::Socket => "a socket".into(),
        }
    }
}

/// What the walk found at a path, which opening it again when its turn comes must find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// A regular file of known size.
    Regular,
    /// Anything whose length the walk could not know: a pipe, a device, a procfs file.
    Stream,
}

/// An opened source, ready to be offered.
pub struct Source {
    /// The open file, read by the data paths.
    pub file: File,
    /// The name offered to the receiver: the path's last component.
    pub name: Vec<u8>,
    /// The path as the user gave it, for messages.
    pub display: String,
    /// What kind of file it is, which decides the paths that can serve.
    pub kind: SourceKind,
    /// `None` when the length cannot be known before reading to the end.
    pub size: Option<u64>,
    /// Permission bits to offer.
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime_sec: i64,
    /// Modification time, the nanoseconds within its second.
    pub mtime_nsec: u32,
}

impl Source {
    /// Standard input as a source named `name`. A regular file read from its start (`< file`)
    /// has a known length and goes by sendfile; anything else (a pipe) is a stream.
    pub fn stdin(name: &str) -> anyhow::Result<Source> {
        use std::os::fd::AsFd;
        let fd =
            std::io::stdin().as_fd().try_clone_to_owned().context("duplicating standard input")?;
        let file = File::from(fd);
        let meta = file.metadata().context("reading metadata of standard input")?;
        let ft = meta.file_type();
        let at_start = {
            use std::io::Seek;
            (&file).stream_position().map(|p| p == 0).unwrap_or(false)
        };
        let kind = if ft.is_file() && at_start {
            SourceKind::Regular
        } else if ft.is_file() {
            SourceKind::Pseudo("positioned stdin")
        } else if ft.is_fifo() {
            SourceKind::Pipe
        } else if ft.is_socket() {
            SourceKind::Socket
        } else {
            SourceKind::CharDevice
        };
        Ok(Source {
            file,
            name: name.as_bytes().to_vec(),
            display: format!("standard input ({name})"),
            kind,
            size: (kind == SourceKind::Regular).then_some(meta.len()),
            mode: if ft.is_file() { meta.mode() & 0o7777 } else { 0o644 },
            mtime_sec: meta.mtime(),
            mtime_nsec: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
        })
    }

    /// Opens `path` for sending. Directories are refused (they come with manifests of many files).
    pub fn open(path: &Path) -> anyhow::Result<Source> {
        let display = path.display().to_string();
        let file = File::open(path).with_context(|| format!("opening {display}"))?;
        Source::of(file, path, display)
    }

    /// Opens a file the walk listed at `path`, when its turn comes: a symlink put in its
    /// place since is not followed (unless `follow`, `--follow-symlinks`), and a regular file
    /// that has become something else (a symlink, a FIFO, which is not waited on, a
    /// directory) is refused as changed since it was listed, as the batched path refuses it.
    pub fn open_listed(path: &Path, listed: Listed, follow: bool) -> anyhow::Result<Source> {
        use std::os::unix::fs::OpenOptionsExt;
        let display = path.display().to_string();
        let mut flags = nix::libc::O_CLOEXEC;
        if !follow {
            flags |= nix::libc::O_NOFOLLOW;
        }
        if listed == Listed::Regular {
            flags |= nix::libc::O_NONBLOCK;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| changed(path, e, "opening"))?;
        if listed == Listed::Regular {
            let meta = file.metadata().with_context(|| format!("reading metadata of {display}"))?;
            if !meta.is_file() {
                return Err(no_longer_regular(path));
            }
            // A regular file: O_NONBLOCK means nothing to it, but the data paths should not see it.
            let blocking = nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty());
            nix::fcntl::fcntl(&file, blocking)
                .map_err(std::io::Error::from)
                .with_context(|| format!("opening {display}"))?;
        }
        Source::of(file, path, display)
    }

    /// The source `file`, opened at `path` (shown as `display`).
    fn of(file: File, path: &Path, display: String) -> anyhow::Result<Source> {
        let meta = file.metadata().with_context(|| format!("reading metadata of {display}"))?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            return Err(SessionError::IsADirectory(display).into());
        } else if ft.is_file() {
            pseudo_fs(&file, meta.dev()).map_or(SourceKind::Regular, SourceKind::Pseudo)
        } else if ft.is_fifo() {
            SourceKind::Pipe
        } else if ft.is_char_device() {
            SourceKind::CharDevice
        } else if ft.is_socket() {
            SourceKind::Socket
        } else {
            bail!("{display}: unsupported file type");
        };
        let name = base_name(path).with_context(|| format!("{display}: no file name to offer"))?;
        Ok(Source {
            file,
            name,
            display,
            kind,
            size: (kind == SourceKind::Regular).then_some(meta.len()),
            mode: meta.mode() & 0o7777,
            mtime_sec: meta.mtime(),
            mtime_nsec: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
        })
    }
}

/// The last normal component of `path`, resolving `.`/`..` against the current directory.
pub fn base_name(path: &Path) -> Option<Vec<u8>> {
    if let Some(name) = path.file_name() {
        return Some(name.as_bytes().to_vec());
    }
    let absolute = std::fs::canonicalize(path).ok()?;
    absolute.file_name().map(|n| n.as_bytes().to_vec())
}

/// Whether `path` lives on a pseudo file system whose sizes say nothing.
#[cfg(target_os = "linux")]
pub fn on_pseudo_fs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).ok().and_then(|s| pseudo_name(s.filesystem_type())).is_some()
}

#[cfg(not(target_os = "linux"))]
pub fn on_pseudo_fs(_path: &Path) -> bool {
    false
}

/// The name of the pseudo file system `file` (on device `dev`) lives on, if any. The answer for
/// the last device is kept: a tree's files mostly share one, and asking costs a call per file.
#[cfg(target_os = "linux")]
fn pseudo_fs(file: &File, dev: u64) -> Option<&'static str> {
    use std::cell::Cell;
    thread_local! {
        static LAST: Cell<Option<(u64, Option<&'static str>)>> = const { Cell::new(None) };
    }
    if let Some((last, name)) = LAST.get()
        && last == dev
    {
        return name;
    }
    let name = pseudo_name(nix::sys::statfs::fstatfs(file).ok()?.filesystem_type());
    LAST.set(Some((dev, name)));
    name
}

#[cfg(target_os = "linux")]
fn pseudo_name(fs: nix::sys::statfs::FsType) -> Option<&'static str> {
    use nix::sys::statfs;
    [
        (statfs::PROC_SUPER_MAGIC, "procfs"),
        (statfs::SYSFS_MAGIC, "sysfs"),
        (statfs::DEBUGFS_MAGIC, "debugfs"),
        (statfs::TRACEFS_MAGIC, "tracefs"),
        (statfs::SECURITYFS_MAGIC, "securityfs"),
        (statfs::CGROUP2_SUPER_MAGIC, "cgroup2"),
        (statfs::CGROUP_SUPER_MAGIC, "cgroup"),
    ]
    .into_iter()
    .find(|(magic, _)| *magic == fs)
    .map(|(_, name)| name)
}

#[cfg(not(target_os = "linux"))]
fn pseudo_fs(_file: &File, _dev: u64) -> Option<&'static str> {
    None
}

/// The error for a listed file that could not be opened or read: one that is no longer the
/// regular file the walk found says so, instead of the errno's own words ("Illegal seek",
/// "Too many levels of symbolic links").
pub(crate) fn changed(path: &Path, e: std::io::Error, doing: &str) -> anyhow::Error {
    use nix::libc::{EISDIR, ELOOP, ENXIO, ESPIPE};
    match e.raw_os_error() {
        Some(ELOOP | ESPIPE | EISDIR | ENXIO) => no_longer_regular(path),
        _ => anyhow::Error::from(e).context(format!("{doing} {}", path.display())),
    }
}

fn no_longer_regular(path: &Path) -> anyhow::Error {
    let shown = path.display();
    anyhow::anyhow!("{shown} changed since it was listed: it is no longer a regular file")
}
