//! A pids cgroup for one test: the children put in it may run so many threads and no more, so a
//! test can make the system refuse a thread the way a machine out of them does.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A pids cgroup that allows a fixed number of tasks (threads), removed on drop.
pub struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// A new cgroup allowing `max` tasks; the error says why it could not be made (not root,
    /// no pids controller).
    pub fn new(max: u32) -> Result<PidsCgroup, String> {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir = pids_root()?.join(format!("zcp-test-{}-{n}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let cgroup = PidsCgroup { dir };
        let max_file = cgroup.dir.join("pids.max");
        fs::write(&max_file, max.to_string())
            .map_err(|e| format!("writing {}: {e}", max_file.display()))?;
        Ok(cgroup)
    }

    /// A wrapper (as for `Receiver::try_start_env`): `sh` joins the cgroup, then execs the
    /// command that follows it, which so starts as the cgroup's one task.
    pub fn wrapper(&self) -> Vec<OsString> {
        let procs = self.dir.join("cgroup.procs");
        let script = format!(r#"echo $$ > '{}' && exec "$0" "$@""#, procs.display());
        vec!["sh".into(), "-c".into(), script.into()]
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Empty once its children are gone (the tests wait for them first).
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Where pids cgroups are made: the cgroup v1 pids hierarchy, or the v2 root with the pids
/// controller enabled for its children.
fn pids_root() -> Result<PathBuf, String> {
    let v1 = Path::new("/sys/fs/cgroup/pids");
    if v1.join("cgroup.procs").exists() {
        return Ok(v1.into());
    }
    let v2 = Path::new("/sys/fs/cgroup");
    let controllers = fs::read_to_string(v2.join("cgroup.controllers"))
        .map_err(|e| format!("no cgroup v1 pids hierarchy, and no cgroup v2 root: {e}"))?;
    if !controllers.split_whitespace().any(|c| c == "pids") {
        return Err(format!("the cgroup v2 root has no pids controller: {controllers}"));
    }
    fs::write(v2.join("cgroup.subtree_control"), "+pids")
        .map_err(|e| format!("enabling the pids controller: {e}"))?;
    Ok(v2.into())
}
