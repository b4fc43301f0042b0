//! `--checksum`: an existing file of the offered size is compared by content, not by mtime.
//! The plan reads it whole once for its xxh3-128 and offers it to the sender as a resume from
//! its last byte; a sender whose own file hashes the same then sends nothing. Reading only: the
//! file is opened without following a link, and never written here.

use std::fs::File;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat};

use super::{Decision, Refusal, Target};
use crate::protocol::RefuseCode;

/// Decides an offered file of `size` bytes whose target already holds a regular file of that
/// size: nothing to send when it is empty, else a comparison against its digest. With `force`
/// the target must be writable (a file that differs replaces it).
pub(super) fn decide(target: Target, size: u64, force: bool) -> Result<Decision, Refusal> {
    if size == 0 {
        return Ok(Decision::Skip);
    }
    if force {
        target.check_writable()?;
    }
    let xxh3 = digest(&target, size)?;
    Ok(Decision::Compare { target, size, xxh3 })
}

/// The xxh3-128 of the target's current `size` bytes, read through a descriptor opened
/// without following a link and checked to be the regular file of that size the plan saw.
fn digest(target: &Target, size: u64) -> Result<u128, Refusal> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let dir = target.dir().map_err(|e| target.refusal(e))?;
    let file = match openat(&*dir, target.name(), flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(e @ (Errno::ELOOP | Errno::ENOENT)) => return Err(changed(target, e.desc())),
        Err(e) => return Err(target.refusal(e.into())),
    };
    let st = fstat(&file).map_err(|e| target.refusal(e.into()))?;
    let regular = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    if !regular || st.st_size as u64 != size {
        return Err(changed(target, "it is no longer a regular file of the offered size"));
    }
    let mut hasher = crate::checksum::Xxh3::new();
    crate::copy::hash_prefix(&file, size, &mut hasher).map_err(|e| target.refusal(e))?;
    Ok(hasher.digest128())
}

/// The refusal of a target that changed while the plan compared it.
fn changed(target: &Target, why: &str) -> Refusal {
    let shown = target.shown();
    Refusal::new(RefuseCode::Exists, format!("{} changed while compared: {why}", shown.display()))
}
