//! `--mirror`'s removals: in the directories an offer holds, the entries it does not hold are
//! removed, each reached from the held-open output directory one component at a time without
//! following a link, and removed by `unlinkat` relative to its parent's descriptor, which never
//! follows a link either: a symlink is removed as itself, never what it points to. Why that
//! keeps every removal inside the destination: `crate::manual::mirror`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::Destination;
use super::dirs::{Walk, open_dir};
use crate::protocol::MAX_DEPTH;

/// What `--mirror` removed, and what it left although the offer does not hold it.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Each entry removed, below the output directory, `/`-joined; a directory (with a trailing
    /// `/`) after its contents.
    pub removed: Vec<String>,
    /// Entries left in place, and why (another file system is mounted there, or too deep).
    pub left: Vec<String>,
}

impl Destination {
    /// In each directory of `dirs` (offered names, checked, below the output directory),
    /// removes every entry that `holds` says the offer does not hold, with all it contains.
    /// The part file of a name the offer holds (`.NAME.zcp-part`) is kept.
    pub fn prune<'n>(
        &self,
        dirs: impl Iterator<Item = &'n [u8]>,
        holds: impl Fn(&[u8]) -> bool,
    ) -> anyhow::Result<Pruned> {
        let Destination::Directory { dirs: open, path } = self else {
            return Ok(Pruned::default());
        };
        let dev = fstat(&*open.root).with_context(|| format!("{}", path.display()))?.st_dev;
        let mut pruned = Pruned::default();
        let mut walk = Walk::default();
        for dir in dirs {
            let shown = String::from_utf8_lossy(dir).into_owned();
            let fd = walk.reach(open, dir).with_context(|| format!("reaching {shown}"))?;
            for name in listing(fd).with_context(|| format!("listing {shown}"))? {
                let rel = [dir, b"/", name.as_bytes()].concat();
                if holds(&rel) || part_of(&name).is_some_and(|n| holds(&[dir, b"/", n].concat())) {
                    continue;
                }
                let rel = String::from_utf8_lossy(&rel).into_owned();
                remove(fd, &name, rel, (dev, 0), &mut pruned)?;
            }
        }
        Ok(pruned)
    }
}

/// Removes `name` in `parent` (shown as `rel`), with its contents when it is a directory on
/// the destination's device `dev`, `depth` below an offered directory.
fn remove(
    parent: &OwnedFd,
    name: &OsStr,
    rel: String,
    (dev, depth): (u64, usize),
    pruned: &mut Pruned,
) -> anyhow::Result<()> {
    let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(anyhow::Error::from(e).context(format!("reading {rel}"))),
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
            .with_context(|| format!("removing {rel}"))?;
        pruned.removed.push(rel);
        return Ok(());
    }
    if st.st_dev != dev {
        pruned.left.push(format!("{rel}/: another file system is mounted there"));
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        pruned.left.push(format!("{rel}/: more than {MAX_DEPTH} directories deep"));
        return Ok(());
    }
    let dir = match open_dir(parent, name, false) {
        Ok(dir) => dir,
        // Replaced by a link or a file since: removed as what it is now, never followed.
        Err(e)
            if matches!(
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                Errno::ELOOP | Errno::ENOTDIR
            ) =>
        {
            return remove(parent, name, rel, (dev, depth), pruned);
        }
        Err(e) => return Err(anyhow::Error::from(e).context(format!("opening {rel}"))),
    };
    for child in listing(&dir).with_context(|| format!("listing {rel}"))? {
        let child_rel = format!("{rel}/{}", child.to_string_lossy());
        remove(&dir, &child, child_rel, (dev, depth + 1), pruned)?;
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir).with_context(|| format!("removing {rel}"))?;
    pruned.removed.push(format!("{rel}/"));
    Ok(())
}

/// The names in the directory `dir`, sorted, without `.` and `..`.
fn listing(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let listed = nix::dir::Dir::openat(dir, ".", flags, Mode::empty())?;
    let mut names = Vec::new();
    for entry in listed {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(&name).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The name whose part file `name` is (`.NAME.zcp-part`, as `Part::name` makes it).
fn part_of(name: &OsStr) -> Option<&[u8]> {
    let inner = name.as_bytes().strip_prefix(b".")?.strip_suffix(b".zcp-part")?;
    (!inner.is_empty()).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::part_of;
    use std::ffi::OsStr;

    #[test]
    fn a_part_files_name_gives_the_name_it_is_for() {
        assert_eq!(part_of(OsStr::new(".a.bin.zcp-part")), Some(&b"a.bin"[..]));
        assert_eq!(part_of(OsStr::new("a.bin.zcp-part")), None);
        assert_eq!(part_of(OsStr::new("..zcp-part")), None);
        assert_eq!(part_of(OsStr::new(".a.bin")), None);
    }
}
