//! Small verified files written without a part file: an unnamed file (`O_TMPFILE`) linked in
//! under its name once complete, so no name ever shows a partial file; through its part file
//! where the file system cannot.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::Mode;

use super::modes::set_mode;
use super::part::LockedPart;
use super::target::{Target, times_of};
use crate::copy::Counted;
use crate::protocol::Entry;

/// Writes a verified small file whole: as an unnamed file linked into place where the file system
/// allows, else through its part file like any other. Returns the `write` calls made.
pub fn write_small(
    target: &Target,
    body: &[u8],
    entry: &Entry,
    force: bool,
) -> anyhow::Result<u64> {
    if let Some(calls) = write(target, body, entry, force)? {
        return Ok(calls);
    }
    let (part, calls) = write_part(target, body, entry)?;
    target.part().commit(&part, entry, force)?;
    Ok(calls)
}

/// A small file's fallback where no unnamed file can be made: `body` written into its part
/// file, which comes back locked, with the `write` calls made.
pub(super) fn write_part(
    target: &Target,
    body: &[u8],
    entry: &Entry,
) -> anyhow::Result<(LockedPart, u64)> {
    let name = String::from_utf8_lossy(&entry.name);
    let part = target.part().open_locked(&name, 0)?;
    let mut out = Counted::new(&*part);
    out.write_all(body).with_context(|| {
        format!("writing {name} (partial data kept in {})", target.part().shown().display())
    })?;
    let calls = out.calls;
    Ok((part, calls))
}

/// Writes a whole file that arrived in one piece, already verified, without a part file:
/// into an unnamed file (`O_TMPFILE`) that is linked in under its name once complete, so no
/// name ever shows a partial file and a crash leaves nothing behind. Returns the `write`
/// calls made, or `None` when this file system cannot (or `force` asks to replace a file,
/// which a link cannot): the caller then goes through the part file.
pub(super) fn write(
    target: &Target,
    body: &[u8],
    entry: &Entry,
    force: bool,
) -> anyhow::Result<Option<u64>> {
    let Some((file, calls)) = fill(target, body, entry, force)? else { return Ok(None) };
    let dir = target
        .dir()
        .with_context(|| format!("opening the directory of {}", target.shown().display()))?;
    let linked = link_unnamed(&file, &dir, target.name())
        .map_err(|e| name_taken(e, target))
        .with_context(|| format!("putting {} in place", target.shown().display()))?;
    if !linked {
        target.dirs.no_unnamed.store(true, Ordering::Relaxed);
        return Ok(None);
    }
    Ok(Some(calls))
}

/// Gives a held unnamed file its name (see `hold_small`).
pub(super) fn place(target: &Target, file: &File) -> anyhow::Result<()> {
    let dir = target
        .dir()
        .with_context(|| format!("opening the directory of {}", target.shown().display()))?;
    let shown = || format!("putting {} in place", target.shown().display());
    match link_unnamed(file, &dir, target.name())
        .map_err(|e| name_taken(e, target))
        .with_context(shown)?
    {
        true => Ok(()),
        false => {
            // The next session takes part files here; this one fails rather than lose the file
            // quietly (the sender sends it again).
            target.dirs.no_unnamed.store(true, Ordering::Relaxed);
            Err(anyhow::anyhow!("linking an unnamed file needs /proc or CAP_DAC_READ_SEARCH")
                .context(shown()))
        }
    }
}

/// A link that found the name taken (EEXIST: a file came under it after the plan) is a refusal
/// of the file, exit 5, not a disk error; the unnamed file goes (the sender sends it again).
fn name_taken(e: io::Error, target: &Target) -> anyhow::Error {
    if e.raw_os_error() != Some(Errno::EEXIST as i32) {
        return e.into();
    }
    crate::error::SessionError::Refused {
        name: target.shown().display().to_string(),
        reason: "a file appeared under that name during the transfer; nothing kept".into(),
    }
    .into()
}

/// An unnamed file holding `body`, with its mode and mtime, and the `write` calls made; `None`
/// when unnamed files cannot serve here (see `write`).
pub(super) fn fill(
    target: &Target,
    body: &[u8],
    entry: &Entry,
    force: bool,
) -> anyhow::Result<Option<(File, u64)>> {
    if force || target.dirs.no_unnamed.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let dir = target
        .dir()
        .with_context(|| format!("opening the directory of {}", target.shown().display()))?;
    let mode = target.mode;
    let Some(file) = unnamed_file(&dir, mode)
        .with_context(|| format!("creating the file for {}", target.shown().display()))?
    else {
        target.dirs.no_unnamed.store(true, Ordering::Relaxed);
        return Ok(None);
    };
    let mut out = Counted::new(&file);
    out.write_all(body).with_context(|| format!("writing {}", target.shown().display()))?;
    let calls = out.calls;
    // Always: the umask, or a directory's default ACL, may have taken bits at creation.
    set_mode(&file, mode, &target.dirs)
        .with_context(|| format!("setting the mode of {}", target.shown().display()))?;
    if entry.size.is_some() {
        file.set_times(times_of(entry))
            .with_context(|| format!("setting the mtime of {}", target.shown().display()))?;
    }
    Ok(Some((file, calls)))
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
