//! What a sender offers: the paths on the command line walked into one manifest of entries
//! (directories recursively, in name order), with the symlinks and special files it skipped and
//! why. It opens nothing but directories; files are opened when their turn comes.

use std::collections::HashSet;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::filter::Filter;
use crate::error::SessionError;
use crate::protocol::{Entry, EntryKind, MAX_ENTRIES, names};

/// Where an entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A directory: nothing to read.
    Dir,
    /// A file (or FIFO) at this path.
    Path(PathBuf),
    /// Standard input.
    Stdin,
}

/// One entry of the manifest and where its bytes come from.
#[derive(Debug, Clone)]
pub struct Item {
    /// What is offered.
    pub entry: Entry,
    /// Where its bytes come from.
    pub origin: Origin,
}

/// Everything a session offers, in order.
#[derive(Debug, Default)]
pub struct Manifest {
    /// Every entry, directories before what they hold.
    pub items: Vec<Item>,
    /// What was left out and why, for the user.
    pub warnings: Vec<String>,
    /// Entries below named directories that the filters left out (an excluded directory
    /// counts once: it is not walked).
    pub excluded: u64,
    /// What the walk leaves out.
    filter: Filter,
    /// The device last asked about and whether it is a pseudo file system.
    last_fs: Option<(u64, bool)>,
}

impl Manifest {
    /// Walks `paths` (`-` for standard input, named `stdin_name`), leaving out what `filter`
    /// excludes below the named directories.
    pub fn build(
        paths: &[PathBuf],
        stdin_name: Option<&str>,
        follow: bool,
        filter: Filter,
    ) -> anyhow::Result<Manifest> {
        let mut m = Manifest { filter, ..Manifest::default() };
        for path in paths {
            if path.as_os_str() == "-" {
                m.add_stdin(stdin_name.unwrap_or("stdin"))?;
            } else {
                m.add_top(path, follow)?;
            }
        }
        if m.items.is_empty() && !paths.is_empty() {
            // Exit 0 after sending nothing would pass a script that sent nothing; and failing
            // here, before connecting, leaves a one-shot receiver for the next try.
            let why = m.warnings.join("; ");
            return Err(SessionError::NothingToSend(format!("nothing to send: {why}")).into());
        }
        if m.items.len() > MAX_ENTRIES as usize {
            bail!("{} entries are more than one session takes ({MAX_ENTRIES})", m.items.len());
        }
        Ok(m)
    }

    fn add_stdin(&mut self, name: &str) -> anyhow::Result<()> {
        names::components(name.as_bytes())
            .map_err(|why| SessionError::Usage(format!("--name: {why}")))?;
        let source = crate::copy::source::Source::stdin(name)?;
        let entry = Entry {
            kind: EntryKind::File,
            name: name.as_bytes().to_vec(),
            size: source.size,
            mode: source.mode,
            mtime_sec: source.mtime_sec,
            mtime_nsec: source.mtime_nsec,
        };
        self.items.push(Item { entry, origin: Origin::Stdin });
        Ok(())
    }

    /// A path named on the command line. A symlink there is followed, as `cp -H` does: the
    /// user named what it points to. It is offered under the link's own name and read from
    /// the target's real path, so that nothing later opens it through a link (symlinks met
    /// inside a tree keep the rule of `--follow-symlinks`).
    fn add_top(&mut self, path: &Path, follow: bool) -> anyhow::Result<()> {
        let shown = path.display();
        let meta = fs::symlink_metadata(path).with_context(|| format!("reading {shown}"))?;
        let name = crate::copy::source::base_name(path)
            .with_context(|| format!("{shown}: no name to offer"))?;
        let (path, meta) = if meta.file_type().is_symlink() {
            let target =
                fs::canonicalize(path).with_context(|| format!("following symlink {shown}"))?;
            let meta =
                fs::metadata(&target).with_context(|| format!("following symlink {shown}"))?;
            (target, meta)
        } else {
            (path.to_path_buf(), meta)
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            let mut seen = HashSet::new();
            return self.add_dir(&path, name, &meta, follow, &mut seen);
        }
        if ft.is_file() || ft.is_fifo() || ft.is_char_device() {
            self.push_file(&path, name, &meta);
        } else {
            self.warnings.push(format!("skipped {shown}: not a file, directory or pipe"));
        }
        Ok(())
    }

    fn add_dir(
        &mut self,
        path: &Path,
        name: Vec<u8>,
        meta: &Metadata,
        follow: bool,
        seen: &mut HashSet<(u64, u64)>,
    ) -> anyhow::Result<()> {
        if !seen.insert((meta.dev(), meta.ino())) {
            self.warnings
                .push(format!("skipped {}: a symlink loop leads back to it", path.display()));
            return Ok(());
        }
        self.items.push(Item {
            entry: entry(EntryKind::Dir, name.clone(), None, meta),
            origin: Origin::Dir,
        });
        let mut children: Vec<_> = fs::read_dir(path)
            .with_context(|| format!("reading directory {}", path.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading directory {}", path.display()))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let child_path = child.path();
            let mut child_name = name.clone();
            child_name.push(b'/');
            child_name.extend_from_slice(child.file_name().as_bytes());
            // Relative to the open directory (fstatat), not a whole path walked again per child.
            let meta = child.metadata();
            self.add_child(&child_path, child_name, meta, follow, seen)?;
        }
        seen.remove(&(meta.dev(), meta.ino()));
        Ok(())
    }

    fn add_child(
        &mut self,
        path: &Path,
        name: Vec<u8>,
        meta: std::io::Result<Metadata>,
        follow: bool,
        seen: &mut HashSet<(u64, u64)>,
    ) -> anyhow::Result<()> {
        let shown = path.display();
        let mut meta = meta.with_context(|| format!("reading {shown}"))?;
        if self.filtered_out(&name, &meta) {
            return Ok(());
        }
        if meta.file_type().is_symlink() {
            if !follow {
                self.warnings.push(format!(
                    "skipped symlink {shown} (use --follow-symlinks to send its target)"
                ));
                return Ok(());
            }
            match fs::metadata(path) {
                // Matched again as what it leads to: `target/` matches a link to a directory.
                Ok(m) if m.is_dir() && self.filtered_out(&name, &m) => return Ok(()),
                Ok(m) => meta = m,
                Err(e) => {
                    self.warnings.push(format!("skipped symlink {shown}: {e}"));
                    return Ok(());
                }
            }
        }
        let ft = meta.file_type();
        if ft.is_dir() {
            self.add_dir(path, name, &meta, follow, seen)
        } else if ft.is_file() {
            self.push_file(path, name, &meta);
            Ok(())
        } else {
            self.warnings.push(format!("skipped {shown}: special file (FIFO, socket or device)"));
            Ok(())
        }
    }

    /// Whether the filters leave out the entry `name`, counting it when they do.
    fn filtered_out(&mut self, name: &[u8], meta: &Metadata) -> bool {
        let out = self.filter.excludes(name, meta.is_dir());
        self.excluded += u64::from(out);
        out
    }

    fn push_file(&mut self, path: &Path, name: Vec<u8>, meta: &Metadata) {
        let size = (meta.is_file() && !self.pseudo(path, meta.dev())).then_some(meta.len());
        let entry = entry(EntryKind::File, name, size, meta);
        self.items.push(Item { entry, origin: Origin::Path(path.to_path_buf()) });
    }

    /// Whether files on device `dev` report meaningless sizes (procfs, sysfs): asked once per
    /// run of files on the same device, not once per file.
    fn pseudo(&mut self, path: &Path, dev: u64) -> bool {
        match self.last_fs {
            Some((d, pseudo)) if d == dev => pseudo,
            _ => {
                let pseudo = crate::copy::source::on_pseudo_fs(path);
                self.last_fs = Some((dev, pseudo));
                pseudo
            }
        }
    }
}

fn entry(kind: EntryKind, name: Vec<u8>, size: Option<u64>, meta: &Metadata) -> Entry {
    Entry {
        kind,
        name,
        size,
        mode: meta.mode() & 0o7777,
        mtime_sec: meta.mtime(),
        mtime_nsec: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
    }
}
