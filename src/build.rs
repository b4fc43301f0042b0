//! Build script: tells `zcp --version` the commit it was built from, whether it is linked
//! statically and for which target, as `ZCP_BUILD` (read by `cli.rs`). A tree that is not its
//! own git work tree (a release tarball, say) says "unknown commit".

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/build.rs");
    let commit = commit().map_or_else(|| "unknown commit".to_string(), |c| format!("commit {c}"));
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let linkage = if features.split(',').any(|f| f == "crt-static") { "static" } else { "dynamic" };
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=ZCP_BUILD={commit}, {linkage}, {target}");
}

/// HEAD's commit, abbreviated, when the package directory is the top of a git work tree; and
/// the files whose change moves HEAD, so that a new commit reruns this script.
fn commit() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = git(&dir, &["rev-parse", "--show-toplevel"])?;
    // A tarball unpacked inside some other repository must not take that repository's commit.
    if Path::new(&top).canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    let head = git(&dir, &["rev-parse", "--symbolic-full-name", "HEAD"]).unwrap_or_default();
    for name in ["HEAD", head.as_str(), "packed-refs"].into_iter().filter(|n| !n.is_empty()) {
        if let Some(path) = git(&dir, &["rev-parse", "--git-path", name]) {
            println!("cargo:rerun-if-changed={}", dir.join(path).display());
        }
    }
    git(&dir, &["rev-parse", "--short=12", "HEAD"])
}

/// The trimmed output of `git ARGS…` run in `dir`, if it succeeds. `safe.directory`: CI may
/// build a clone that another user owns, which git would otherwise refuse to read.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
