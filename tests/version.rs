//! `zcp --version`: the version, the commit the binary was built from (or "unknown commit"
//! outside a git work tree, as from a release tarball), dynamic or static, and the target.

use std::path::Path;
use std::process::Command;

use crate::util::{assert_exit, run, zcp_command};

/// HEAD of the work tree these tests were built from, abbreviated as `--version` says it;
/// `None` when the package is not the top of its own git work tree.
fn built_from() -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "safe.directory=*"])
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    (Path::new(&top).canonicalize().ok()? == dir.canonicalize().ok()?)
        .then(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .flatten()
}

#[test]
fn version_names_the_commit_linkage_and_target() {
    let f = run(zcp_command(&["--version"], &[]));
    assert_exit(&f, 0, "zcp --version");
    let commit = built_from().map_or("unknown commit".to_string(), |c| format!("commit {c}"));
    let linkage = if cfg!(target_feature = "crt-static") { "static" } else { "dynamic" };
    let want = format!("zcp {} ({commit}, {linkage}, ", env!("CARGO_PKG_VERSION"));
    assert!(f.stdout.starts_with(&want), "--version should start {want:?}: {}", f.stdout);
    assert!(
        f.stdout.trim_end().ends_with("-linux-gnu)"),
        "--version names no target: {}",
        f.stdout
    );
}

#[test]
fn short_version_is_the_version_alone() {
    let f = run(zcp_command(&["-V"], &[]));
    assert_exit(&f, 0, "zcp -V");
    assert_eq!(f.stdout.trim_end(), format!("zcp {}", env!("CARGO_PKG_VERSION")));
}
