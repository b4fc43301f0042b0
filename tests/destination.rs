//! The receiver's destination: how many files a `--fsync` barrier holds under a given
//! descriptor limit (the soft limit raised to the hard one first), counted in `syncfs` calls
//! under strace; a missing `--output` a `--keep-open` receiver created for one session is found
//! again as a directory by the next; a directory that cannot be made is refused with the code
//! of its cause (`403`/`507` over HTTP); a bare file name as `--output` is a file in the
//! receiver's working directory; a refused offer of nested files leaves none of the directories
//! made for them; several files to an existing `--output` file are refused after the first;
//! directories whose names share a prefix are finished in whatever order they were offered.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::durable::completed;
use crate::util::protocol::{Answer, Entry};
use crate::util::{
    self, Process, ReadOnlyMount, Receiver, STARTUP, TOKEN, TOKEN_ENV, Tmpfs, assert_exit,
    assert_says, dir_entry, file_entry, finish, offer, send, send_paths, skip, unusable,
    zcp_client,
};

/// Small files in the tree of the barrier tests: more than one barrier holds at a limit of 300.
const MANY: usize = 400;

/// Sends `MANY` small files to `zcp recv --fsync` run by `sh -c "ulimit LIMIT && exec strace
/// … zcp recv …"`; checks every file arrived whole and returns how many `syncfs` calls (one
/// per barrier: the tree is on one file system) the receiver made.
fn barriers_under(limit: &str) -> Option<usize> {
    if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        skip(&why);
        return None;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tree = util::subdir(work.path(), "many");
    let files: Vec<_> = (0..MANY)
        .map(|i| {
            let path = tree.join(format!("f{i:03}"));
            let data = util::write_random_file(&path, 100, i as u64);
            (path, data)
        })
        .collect();
    let dst = util::subdir(work.path(), "dst");
    let log = work.path().join("recv.strace");
    let script = format!(
        r#"ulimit {limit} && exec strace -f -o '{}' -e trace=syncfs "$0" "$@""#,
        log.display()
    );
    let shell: [&OsStr; 3] = ["sh".as_ref(), "-c".as_ref(), script.as_ref()];
    let receiver = Receiver::try_start_env(&shell, &dst, &["--fsync"], &[])
        .unwrap_or_else(|f| panic!("receiver under ulimit {limit} did not start: {f:#?}"));
    let sent = send(&tree, &receiver.dest(), &[]);
    assert_exit(&sent, 0, "sender");
    assert_exit(&receiver.wait(), 0, &format!("receiver under ulimit {limit}"));
    for (path, data) in &files {
        let landed = dst.join(path.strip_prefix(work.path()).expect("below work"));
        util::assert_file_holds(&landed, data, "a file of the barrier");
    }
    let log = fs::read_to_string(&log).expect("reading the strace log");
    Some(completed(&log).iter().filter(|(name, _)| name == "syncfs").count())
}

#[test]
fn fsync_barriers_hold_half_the_descriptors_left_after_256_spare() {
    // Soft and hard limit 300: a barrier holds (300 - 256) / 2 = 22 files, so 400 files take
    // 18 full barriers and a last one of 4.
    let Some(barriers) = barriers_under("-n 300") else { return };
    assert_eq!(barriers, MANY.div_ceil(22), "barriers of 22 files each");
}

#[test]
fn fsync_raises_the_soft_descriptor_limit_to_the_hard_one() {
    // Soft 300 under hard 4096: raised to 4096, a barrier may hold (4096 - 256) / 2 = 1920
    // files, so the whole tree takes one.
    let Some(barriers) = barriers_under("-Sn 300 && ulimit -Hn 4096") else { return };
    assert_eq!(barriers, 1, "one barrier for the tree once the soft limit was raised");
}

#[test]
fn a_keep_open_receiver_finds_the_output_directory_an_earlier_session_created() {
    // The first session (two files) creates the missing `--output` as a directory; the second
    // offers one file, which alone would name a file, but the directory is there now: the file
    // lands inside it, and the directory is not reported created again.
    let work = tempfile::tempdir().expect("tempdir");
    let (a, b) = (work.path().join("a.txt"), work.path().join("b.txt"));
    fs::write(&a, b"a").expect("a source");
    fs::write(&b, b"b").expect("a source");
    let incoming = work.path().join("incoming");
    let mut recv = Receiver::start(&incoming, &["--keep-open"]);
    let dest = recv.dest();
    assert_exit(&send_paths(&[&a, &b], &dest, &[]), 0, "first sender");
    let c = work.path().join("c.txt");
    fs::write(&c, b"c").expect("a source");
    assert_exit(&send(&c, &dest, &[]), 0, "second sender");
    recv.process().signal(Signal::SIGTERM);
    let received = recv.wait_for(Duration::from_secs(15));
    assert_exit(&received, 143, "receiver");
    assert_says(&received, "served 2 sessions, 0 failed, stopped by SIGTERM", "receiver");
    util::assert_file_holds(&incoming.join("c.txt"), b"c", "the second session's file");
    util::assert_file_holds(&incoming.join("a.txt"), b"a", "the first session's file");
    let created = received.stderr.matches("created directory").count();
    assert_eq!(created, 1, "the directory is created once:\n{}", received.stderr);
}

/// `PUT /sub/f.bin` (one byte) to `zcp recv --http --output DST`; returns the status line and
/// the body of the answer. The receiver is killed after it answered.
fn put_into_subdirectory(dst: &Path) -> String {
    let args = ["recv", "--http", "--listen", "127.0.0.1:0", "--output"];
    let mut args: Vec<OsString> = args.map(OsString::from).into();
    args.push(dst.into());
    let mut receiver = Process::start(&args, &[(TOKEN_ENV, Some(TOKEN))]);
    let addr = receiver.listening();
    let mut socket = TcpStream::connect(addr).expect("connecting");
    socket.set_read_timeout(Some(STARTUP)).expect("timeout");
    let request = format!(
        "PUT /sub/f.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 1\r\n\r\nx"
    );
    socket.write_all(request.as_bytes()).expect("sending the request");
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let done = receiver.kill();
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_directory_that_cannot_be_made_on_a_read_only_mount_is_refused_as_not_writable() {
    // mkdirat fails with EROFS: the refusal's code says "not writable", which HTTP shows as 403.
    let work = tempfile::tempdir().expect("tempdir");
    let dst = util::subdir(work.path(), "dst");
    let _mount = match ReadOnlyMount::new(&dst) {
        Ok(m) => m,
        Err(why) => return skip(&format!("no read-only bind mount: {why}")),
    };
    if fs::create_dir(dst.join("probe")).is_ok() {
        return skip("the read-only bind mount is still writable");
    }
    let answer = put_into_subdirectory(&dst);
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(answer.contains("cannot create"), "{answer}");
    assert!(util::dir_names(&dst).is_empty(), "{:?}", util::dir_names(&dst));
}

#[test]
fn a_directory_that_cannot_be_made_for_want_of_inodes_is_refused_as_no_space() {
    // A tmpfs of one inode (its root): mkdirat fails with ENOSPC, a "no space" refusal: 507.
    let work = tempfile::tempdir().expect("tempdir");
    let disk = match Tmpfs::mount(&util::subdir(work.path(), "small"), "1m,nr_inodes=1") {
        Ok(disk) => disk,
        Err(why) => return skip(&format!("cannot mount a small tmpfs (needs root): {why}")),
    };
    let answer = put_into_subdirectory(disk.path());
    assert!(answer.starts_with("HTTP/1.1 507 "), "{answer}");
    assert!(answer.contains("cannot create"), "{answer}");
    assert!(util::dir_names(disk.path()).is_empty(), "{:?}", util::dir_names(disk.path()));
}

#[test]
fn a_bare_file_name_as_output_lands_in_the_receivers_working_directory() {
    // `--output copy.bin`: a path with no directory part names a file in the current directory
    // (its parent is the empty path, read as `.`).
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("a.txt");
    fs::write(&src, b"a").expect("a source");
    let here = util::subdir(work.path(), "here");
    let script = format!(r#"cd '{}' && exec "$0" "$@""#, here.display());
    let shell: [&OsStr; 3] = ["sh".as_ref(), "-c".as_ref(), script.as_ref()];
    let receiver = Receiver::try_start_env(&shell, Path::new("copy.bin"), &[], &[])
        .unwrap_or_else(|f| panic!("receiver with a relative --output did not start: {f:#?}"));
    assert_exit(&send(&src, &receiver.dest(), &[]), 0, "sender");
    assert_exit(&receiver.wait(), 0, "receiver");
    util::assert_file_holds(&here.join("copy.bin"), b"a", "the copy");
    assert_eq!(util::dir_names(&here), ["copy.bin"], "nothing else in the receiver's directory");
}

#[test]
fn a_refused_offer_of_nested_files_without_directory_entries_leaves_no_directories() {
    // No directory entries: each file's directories are made from the output directory, not
    // from a parent made by an earlier entry. `--max-size` then refuses the whole offer, and
    // every directory made for it goes again, the outermost too.
    let work = tempfile::tempdir().expect("tempdir");
    let dst = util::subdir(work.path(), "dst");
    let recv = Receiver::start(&dst, &["--max-size", "4"]);
    let mut socket = zcp_client(recv.addr());
    let entries = vec![file_entry(b"x/y/f", Some(3)), file_entry(b"p/q/r/g", Some(3))];
    let plan = offer(&mut socket, entries);
    assert!(plan.answers.iter().all(|a| matches!(a, Answer::Refuse { .. })), "{plan:?}");
    finish(&mut socket);
    assert_exit(&recv.wait(), 5, "receiver");
    assert_eq!(util::tree_listing(&dst), Vec::<String>::new(), "a refused offer left these");
}

#[test]
fn several_files_to_an_existing_output_file_are_refused_after_the_first() {
    // `--output` names a file that exists: the first entry replaces it (`--force`), the second
    // is refused, never written over the first.
    let work = tempfile::tempdir().expect("tempdir");
    let (a, b) = (work.path().join("a.txt"), work.path().join("b.txt"));
    fs::write(&a, b"first").expect("a source");
    fs::write(&b, b"second").expect("a source");
    let target = work.path().join("copy.bin");
    fs::write(&target, b"old").expect("the existing output file");
    let recv = Receiver::start(&target, &["--force"]);
    let sent = send_paths(&[&a, &b], &recv.dest(), &[]);
    let received = recv.wait();
    assert_exit(&sent, 5, "sender");
    assert_exit(&received, 5, "receiver");
    assert_says(&sent, "--output names one file, taken by the first entry", "sender");
    util::assert_file_holds(&target, b"first", "the output file");
}

#[test]
fn directories_whose_names_share_a_prefix_are_finished_in_any_order() {
    // `ab` offered before `a`: they are finished in the reverse order, `a` then `ab`, and `ab`
    // is not below `a` although its name starts with it. Both get their offered mode.
    let work = tempfile::tempdir().expect("tempdir");
    let dst = util::subdir(work.path(), "dst");
    let recv = Receiver::start_umask(&dst, &[], 0o022);
    let mut socket = zcp_client(recv.addr());
    let entries =
        vec![Entry { mode: 0o701, ..dir_entry(b"ab") }, Entry { mode: 0o710, ..dir_entry(b"a") }];
    let plan = offer(&mut socket, entries);
    assert!(plan.answers.iter().all(|a| matches!(a, Answer::Skip)), "{plan:?}");
    finish(&mut socket);
    let received = recv.wait();
    assert_exit(&received, 0, "receiver");
    for (name, mode) in [("ab", 0o701), ("a", 0o710)] {
        let meta = fs::metadata(dst.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "the mode of {name}");
    }
}
