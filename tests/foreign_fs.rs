//! Receiving onto file systems that are not ext4 or tmpfs: one that refuses unnamed files
//! (`O_TMPFILE`, as vfat, NFS, CIFS and FUSE do), faked with strace; and a real exFAT image on a
//! loop device through FUSE, as on a USB stick: no unnamed files, hard links, symlinks or Unix
//! modes, no `RENAME_NOREPLACE`, and names that differ only in case are one name.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::util;
use crate::util::{
    Receiver, assert_file_holds, json_file, pseudo_random, send_paths, skip, subdir,
};

/// Files in `src/tree/d0`: `count` small ones of `len` bytes, `f0000`…, and `big` of 200 KB
/// (above the batch limit, so it goes through its own part file either way).
fn tree(src: &Path, count: usize, len: usize) -> PathBuf {
    let tree = subdir(src, "tree");
    let dir = subdir(&tree, "d0");
    for f in 0..count {
        fs::write(dir.join(format!("f{f:04}")), pseudo_random(len, f as u64)).expect("write");
    }
    fs::write(dir.join("big"), pseudo_random(200_000, 99)).expect("write");
    tree
}

/// Asserts that `dst/tree/d0` holds exactly what `src/tree/d0` does, and no part file.
fn assert_same_tree(src: &Path, dst: &Path) {
    let (from, to) = (src.join("tree").join("d0"), dst.join("tree").join("d0"));
    let names = util::dir_names(&to);
    assert_eq!(names, util::dir_names(&from), "the names that landed");
    for name in &names {
        assert_file_holds(&to.join(name), &fs::read(from.join(name)).expect("source"), name);
    }
}

#[test]
fn small_files_go_through_part_files_where_the_file_system_refuses_unnamed_files() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = tree(&src, 100, 1000);
    let log = work.path().join("recv.strace");
    // `-P .`: only calls whose path is "." (or a descriptor of strace's own directory, which
    // the receiver never opens) are traced and refused. The only `openat(dir, ".")` is the
    // unnamed file's (`O_TMPFILE`): the directories here are new, so the plan lists none.
    // The second `-P` follows one small file's part file by its descriptor (its writes),
    // which no `openat` names: that open is neither traced nor refused.
    let dir = fs::canonicalize(&dst).expect("canonical dst").join("tree").join("d0");
    let part = dir.join(".f0042.zcp-part");
    let mut strace: Vec<&OsStr> = ["strace", "-f", "-e", "trace=openat,write", "-P", "."]
        .iter()
        .chain(&["-e", "inject=openat:error=EOPNOTSUPP", "-P"])
        .map(OsStr::new)
        .collect();
    strace.extend([part.as_os_str(), OsStr::new("-o"), log.as_os_str()]);
    let receiver = Receiver::try_start_env(&strace, &dst, &["--json"], &[])
        .unwrap_or_else(|f| panic!("traced receiver did not start: {f:#?}"));
    let sent = send_paths(&[&tree], &receiver.dest(), &[]);
    let received = receiver.wait();
    util::assert_exit(&sent, 0, "sender");
    util::assert_exit(&received, 0, "receiver");
    assert_same_tree(&src, &dst);
    let report = received.json();
    for (name, path) in [("tree/d0/f0042", "buffered"), ("tree/d0/big", "splice")] {
        let file = json_file(&report, name);
        assert_eq!(file["saved_as"], dst.join(name).display().to_string(), "{name}: {file}");
        assert_eq!(file["path"], path, "{name}: {file}");
    }
    let trace = fs::read_to_string(&log).expect("reading the strace log");
    // Two writer threads' calls may interleave: strace then splits each into an
    // `<unfinished ...>` line (with O_TMPFILE) and a `<... openat resumed>` line (with the
    // result). Every openat traced is O_TMPFILE's (`others` below), so the results suffice.
    let refused = trace
        .lines()
        .filter(|l| l.contains("openat") && l.contains("EOPNOTSUPP") && l.ends_with("(INJECTED)"));
    // Each writer thread tries once at most; the first refusal turns unnamed files off.
    assert!((1..=2).contains(&refused.count()), "unnamed files refused:\n{trace}");
    let others = trace.lines().filter(|l| l.contains("openat(") && !l.contains("O_TMPFILE"));
    assert_eq!(others.count(), 0, "no other open was traced, so none was refused:\n{trace}");
    let into_part = trace.lines().filter(|l| l.contains("write(") && l.ends_with("= 1000"));
    assert_eq!(into_part.count(), 1, "f0042 written into its part file:\n{trace}");
}

/// An exFAT image (`mkfs.exfat`) on a loop device, mounted through FUSE (`exfat-fuse`), as a
/// USB stick is: no unnamed files, hard links, symlinks or Unix modes (every file shows 0777,
/// `chmod` is taken and ignored), no `RENAME_NOREPLACE`, and names that differ only in case
/// are one name. Unmounted, detached and removed on drop, whatever the test did.
pub(crate) struct Exfat {
    pub(crate) mnt: PathBuf,
    device: Option<String>,
    mounted: bool,
    _dir: TempDir,
}

impl Exfat {
    /// Mounts a fresh 64 MiB image, or says why it cannot (after `skip` or
    /// `skip_kernel_feature`: a missing tool is CI's to install, a missing loop device or
    /// FUSE is the kernel's).
    pub(crate) fn mount() -> Option<Exfat> {
        if !nix::unistd::geteuid().is_root() {
            skip("a loop device and a FUSE mount need root");
            return None;
        }
        if !Path::new("/dev/fuse").exists() || !Path::new("/dev/loop-control").exists() {
            util::skip_kernel_feature("no /dev/fuse or /dev/loop-control (FUSE, loop devices)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("exfat.img");
        fs::File::create(&image).and_then(|f| f.set_len(64 << 20)).expect("the image");
        let mut fs =
            Exfat { mnt: subdir(dir.path(), "mnt"), device: None, mounted: false, _dir: dir };
        if let Err(why) = run("mkfs.exfat", &[image.as_os_str()]) {
            skip(&why);
            return None;
        }
        match run("losetup", &["-f".as_ref(), "--show".as_ref(), image.as_os_str()]) {
            Ok(device) => fs.device = Some(device.trim().to_string()),
            Err(why) => {
                util::skip_kernel_feature(&format!("no loop device: {why}"));
                return None;
            }
        }
        let device = fs.device.clone().unwrap_or_default();
        if let Err(why) = run("mount.exfat-fuse", &[device.as_ref(), fs.mnt.as_os_str()]) {
            skip(&why);
            return None;
        }
        fs.mounted = true;
        Some(fs)
    }
}

impl Drop for Exfat {
    fn drop(&mut self) {
        if self.mounted && run("umount", &[self.mnt.as_os_str()]).is_err() {
            // Still busy (a receiver killed a moment ago): detach it.
            let _ = run("umount", &["-l".as_ref(), self.mnt.as_os_str()]);
        }
        if let Some(device) = &self.device {
            let _ = run("losetup", &["-d".as_ref(), device.as_ref()]);
        }
    }
}

/// Runs `program ARGS…`; its stdout, or why it could not run or failed.
fn run(program: &str, args: &[&OsStr]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program} cannot run here: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{program} failed ({}): {}", out.status, stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_tree_lands_on_exfat_through_part_files_with_the_modes_it_gives() {
    let Some(exfat) = Exfat::mount() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let src = subdir(work.path(), "src");
    let tree = tree(&src, 2000, 1000);
    let d0 = tree.join("d0");
    util::set_mode(&d0.join("f0007"), 0o755);
    util::set_mode(&d0.join("f0008"), 0o600);
    symlink("f0001", d0.join("link")).expect("a symlink");
    // An even second: FAT keeps mtimes to 2 s.
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    for path in [d0.join("f0007"), d0.join("big"), d0.clone()] {
        util::set_mtime(&path, mtime);
    }
    let receiver = Receiver::start(&exfat.mnt, &["--json"]);
    let sent = send_paths(&[&tree], &receiver.dest(), &[]);
    let received = receiver.wait();
    util::assert_exit(&sent, 0, "sender");
    util::assert_exit(&received, 0, "receiver");
    util::assert_says(&sent, "skipped symlink", "sender");
    fs::remove_file(d0.join("link")).expect("removing the symlink");
    assert_same_tree(&src, &exfat.mnt);
    let big = exfat.mnt.join("tree/d0/big");
    let report = received.json();
    assert_eq!(json_file(&report, "tree/d0/big")["saved_as"], big.display().to_string());
    for name in ["f0007", "f0008"] {
        let mode = fs::metadata(exfat.mnt.join("tree/d0").join(name)).expect("landed");
        assert_eq!(mode.permissions().mode() & 0o777, 0o777, "{name}: exFAT's mode");
    }
    for name in ["tree/d0/f0007", "tree/d0/big", "tree/d0"] {
        let landed = fs::metadata(exfat.mnt.join(name)).and_then(|m| m.modified());
        assert_eq!(landed.expect("an mtime"), mtime, "{name}: the sender's mtime");
    }
}

#[test]
fn of_two_names_that_differ_only_in_case_on_exfat_the_second_is_refused_and_kept_as_a_part_and_the_rest_lands()
 {
    let Some(exfat) = Exfat::mount() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let dir = subdir(&subdir(work.path(), "src"), "c");
    let (upper, lower) = (pseudo_random(200_000, 1), pseudo_random(200_000, 2));
    fs::write(dir.join("BIG"), &upper).expect("write");
    fs::write(dir.join("Big"), &lower).expect("write");
    // After both in the offer's order: the session goes on past the refusal.
    let other = pseudo_random(300_000, 3);
    fs::write(dir.join("other"), &other).expect("write");
    let receiver = Receiver::start(&exfat.mnt, &["--events"]);
    let sent = send_paths(&[&dir], &receiver.dest(), &[]);
    let received = receiver.wait();
    let landed = exfat.mnt.join("c");
    let why = format!(
        "receiver refused c/Big: a file exists under that name: BIG (this file system does not tell names apart by case); what arrived is kept in {}",
        landed.join(".Big.zcp-part").display()
    );
    for (end, who) in [(&sent, "sender"), (&received, "receiver")] {
        util::assert_exit(end, 5, who);
        util::assert_says(end, &why, who);
    }
    assert_eq!(util::dir_names(&landed), [".Big.zcp-part", "BIG", "other"], "what is in c/");
    assert_file_holds(&landed.join("other"), &other, "the file after the refused one");
    // Its events end with a refusal, not a `file_end`.
    let events: Vec<&str> = received
        .stdout
        .lines()
        .filter(|l| l.contains(r#""event":"file_"#) && l.contains(r#""name":"c/Big""#))
        .collect();
    assert!(events.last().is_some_and(|e| e.contains(r#""event":"file_refuse""#)), "{events:#?}");
    assert!(!events.iter().any(|e| e.contains(r#""event":"file_end""#)), "{events:#?}");
    assert_file_holds(&landed.join("BIG"), &upper, "BIG");
    assert_file_holds(&landed.join(".Big.zcp-part"), &lower, "Big's part file");
}

#[test]
fn a_part_file_on_exfat_resumes_and_lands_with_fsync() {
    let Some(exfat) = Exfat::mount() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let src = subdir(work.path(), "src");
    let data = pseudo_random(3 << 20, 5);
    fs::write(src.join("big"), &data).expect("write");
    // What an interrupted transfer leaves: the first MiB in the part file.
    fs::write(exfat.mnt.join(".big.zcp-part"), &data[..1 << 20]).expect("the part file");
    let receiver = Receiver::start(&exfat.mnt, &["--fsync", "--json"]);
    let sent = send_paths(&[&src.join("big")], &receiver.dest(), &[]);
    let received = receiver.wait();
    util::assert_exit(&sent, 0, "sender");
    util::assert_exit(&received, 0, "receiver");
    util::assert_says(&sent, "resumed at 1 MiB", "sender");
    assert_eq!(json_file(&received.json(), "big")["resumed_from"], 1 << 20);
    assert_eq!(util::dir_names(&exfat.mnt), ["big"], "the part file is gone");
    assert_file_holds(&exfat.mnt.join("big"), &data, "big");
}

#[test]
fn where_the_file_system_keeps_no_modes_files_land_and_the_receiver_says_so() {
    // vfat refuses a chmod it cannot store with EPERM, fusefat with ENOSYS: strace answers
    // every fchmod so (the small files', the large file's and the directories').
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = tree(&src, 10, 1000);
    util::set_mode(&tree.join("d0").join("f0003"), 0o700);
    let Some(receiver) = Receiver::faulted("inject=fchmod:error=EPERM", &dst, &[]) else { return };
    let sent = send_paths(&[&tree], &receiver.dest(), &[]);
    let received = receiver.wait();
    util::assert_exit(&sent, 0, "sender");
    util::assert_exit(&received, 0, "receiver");
    let warning = format!(
        "zcp: warning: {}: the file system keeps no Unix modes (chmod: Operation not permitted): what landed has the modes it gives",
        dst.display()
    );
    assert_eq!(received.stderr.matches(&warning).count(), 1, "receiver:\n{}", received.stderr);
    assert_same_tree(&src, &dst);
}

#[test]
fn a_file_larger_than_the_file_system_takes_fails_naming_it_and_leaves_nothing() {
    // vfat's writes stop at 4 GiB - 1 byte with EFBIG; strace gives the receiver's third
    // splice that answer, as a write at that offset would get.
    if let Some(why) = util::unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    fs::write(src.join("huge"), pseudo_random(8 << 20, 3)).expect("write");
    let Some(receiver) = Receiver::faulted("inject=splice:error=EFBIG:when=3", &dst, &[]) else {
        return;
    };
    let sent = send_paths(&[&src.join("huge")], &receiver.dest(), &[]);
    let received = receiver.wait();
    let why = "writing huge: the file system takes no file this large (FAT holds at most 4 GiB - 1 byte); nothing kept: File too large";
    for (end, who) in [(&sent, "sender"), (&received, "receiver")] {
        util::assert_exit(end, 7, who);
        util::assert_says(end, why, who);
    }
    assert!(util::dir_names(&dst).is_empty(), "left in dst: {:?}", util::dir_names(&dst));
}

#[test]
fn skip_existing_on_exfat_skips_what_landed_there_before_though_it_keeps_whole_seconds() {
    let Some(exfat) = Exfat::mount() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let src = subdir(work.path(), "src");
    let tree = tree(&src, 20, 1000);
    // Odd seconds and nanoseconds: exfat-fuse keeps 1000000001 s of it.
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000_001, 123_456_789);
    for f in 0..20 {
        util::set_mtime(&tree.join("d0").join(format!("f{f:04}")), mtime);
    }
    util::set_mtime(&tree.join("d0").join("big"), mtime);
    for extra in [&[][..], &["--skip-existing", "--json"][..]] {
        let receiver = Receiver::start(&exfat.mnt, extra);
        let sent = send_paths(&[&tree], &receiver.dest(), &[]);
        let received = receiver.wait();
        util::assert_exit(&sent, 0, "sender");
        util::assert_exit(&received, 0, &format!("receiver {extra:?}"));
        if !extra.is_empty() {
            let report = received.json();
            for name in ["tree/d0/f0013", "tree/d0/big"] {
                assert_eq!(json_file(&report, name)["status"], "skipped", "{name}: {report:#}");
            }
        }
    }
    assert_same_tree(&src, &exfat.mnt);
}
