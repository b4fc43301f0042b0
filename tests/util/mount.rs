//! Mounts that exist for one test and are undone on drop: a small tmpfs (a disk that fills up)
//! and a read-only bind mount. Both need root; `mount` says why it cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size mounted on a directory for one test, unmounted on drop.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `1m`) on `path`; the error says why it could not.
    pub fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs on {} failed ({}): {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !ok {
            // Something still holds it open (a child killed a moment ago): detach it.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// A directory bind-mounted read-only onto itself; unmounted on drop.
pub struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    /// Mounts it, or says why it cannot (bind mounts need privileges).
    pub fn new(dir: &Path) -> Result<ReadOnlyMount, String> {
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .output()
                .map_err(|e| format!("running mount: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("mount {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
            }
        };
        run(&["--bind"])?;
        let mount = ReadOnlyMount(dir.to_path_buf());
        run(&["-o", "remount,bind,ro"])?;
        Ok(mount)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
