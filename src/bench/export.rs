//! Files the benchmark writes besides its output (`--export-markdown`, `--export-svg`): their
//! directories are checked before measuring, and each is written under a temporary name and
//! renamed, so that a file of that name is never half-written.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;

/// The directory an export goes to, which must exist.
fn dir_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Fails, naming `path`, unless the directory it goes to exists.
pub fn check_dir(path: &Path) -> anyhow::Result<()> {
    let dir = dir_of(path);
    let meta = std::fs::metadata(dir).with_context(|| format!("writing {}", path.display()))?;
    if !meta.is_dir() {
        let why = format!("{} is not a directory", dir.display());
        let err = io::Error::new(io::ErrorKind::NotADirectory, why);
        return Err(anyhow::Error::from(err).context(format!("writing {}", path.display())));
    }
    Ok(())
}

/// Writes `text` to `path` under a temporary name beside it and renames it into place, so that
/// `path` never holds half a file.
pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let context = || format!("writing {}", path.display());
    let mut file = tempfile::Builder::new()
        .prefix(".zcp-bench-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir_of(path))
        .with_context(context)?;
    file.write_all(text.as_bytes()).with_context(context)?;
    file.persist(path).map_err(|e| e.error).with_context(context)?;
    Ok(())
}
