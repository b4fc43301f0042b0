//! Giving a received file or directory its offered mode where the file system may keep none:
//! FAT (vfat, exFAT) and many FUSE and network file systems refuse `chmod` (EPERM, ENOSYS,
//! EOPNOTSUPP) or keep only what the mount options say. There the entry lands with the mode
//! the file system gives, and the session warns once (`Dirs::modes_refused`).

use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;

use nix::errno::Errno;

use super::dirs::Dirs;

/// Sets `mode` on `file`, which this receiver created and owns: a refusal there can only be
/// the file system's (it keeps no Unix modes), so it is noted in `dirs` instead of failing.
pub(super) fn set_mode(file: &File, mode: u32, dirs: &Dirs) -> io::Result<()> {
    match file.set_permissions(Permissions::from_mode(mode)) {
        Ok(()) => Ok(()),
        Err(e) => match keeps_no_modes(&e) {
            Some(errno) => {
                dirs.note_modes_refused(errno);
                Ok(())
            }
            None => Err(e),
        },
    }
}

/// The errno when `e` says the file system cannot hold the mode (not that this user may not).
fn keeps_no_modes(e: &io::Error) -> Option<Errno> {
    let errno = Errno::from_raw(e.raw_os_error()?);
    matches!(errno, Errno::EPERM | Errno::ENOSYS | Errno::EOPNOTSUPP).then_some(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_file_systems_refusals_are_taken_as_no_modes() {
        for errno in [Errno::EPERM, Errno::ENOSYS, Errno::EOPNOTSUPP] {
            assert_eq!(keeps_no_modes(&io::Error::from(errno)), Some(errno));
        }
        for errno in [Errno::EIO, Errno::EROFS, Errno::EBADF] {
            assert_eq!(keeps_no_modes(&io::Error::from(errno)), None);
        }
    }
}
