//! Small files in batches: files up to 64 KiB travel many to one write and arrive many to one
//! read, while larger files between them keep their zero-copy paths; the receiver's read-ahead
//! never takes a spliced file's bytes. A damaged, cut or unwritable small file leaves nothing
//! under its name. Where the system refuses a writer thread, or a link by descriptor, the files
//! still land (or the receiver says why not).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::util;
use crate::util::protocol::{self, Answer, Message, VerdictStatus};
use crate::util::{
    Receiver, SMALL_FILE, assert_file_holds, dir_names, end_file, file_entry, finish, json_file,
    json_str, offer, parse_json, pseudo_random, send_paths, skip, subdir, tree_listing, zcp_client,
};
use util::Tmpfs;

/// A tree `mixed` whose files alternate between small and large, so that batches of small files
/// end where a large one begins, in the middle of the receiver's reads. Returns each file's name
/// below `mixed` and its bytes.
fn mixed_tree(src: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = subdir(src, "mixed");
    let sizes = [
        ("a_small", 100),
        ("b_large", (3 << 20) + 7),
        ("c_small", 4096),
        ("d_edge", SMALL_FILE as usize),
        ("e_over", SMALL_FILE as usize + 1),
        ("f_empty", 0),
        ("g_small", 1),
        ("h_large", (1 << 20) + 1),
    ];
    sizes
        .iter()
        .enumerate()
        .map(|(i, &(name, len))| {
            let data = pseudo_random(len, 500 + i as u64);
            fs::write(dir.join(name), &data).expect("writing a source file");
            (name.to_string(), data)
        })
        .collect()
}

/// The path a file of `len` bytes must report on each end under `--method auto`.
fn auto_path(len: usize, zero_copy: &str) -> &str {
    if len as u64 <= SMALL_FILE { "buffered" } else { zero_copy }
}

/// Sends the mixed tree with the given methods and checks every file's bytes and both reports.
fn mixed_round_trip(send_method: &str, recv_method: &str) {
    let what = format!("send {send_method} -> recv {recv_method}");
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let files = mixed_tree(&src);
    let receiver = Receiver::start(&dst, &["--json", "--method", recv_method]);
    let sent =
        send_paths(&[&src.join("mixed")], &receiver.dest(), &["--json", "--method", send_method]);
    let (code, stdout, stderr) = (sent.code(), &sent.stdout, &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "{what}: sender:\n{stderr}\nreceiver:\n{}", received.stderr);
    assert_eq!(received.code(), Some(0), "{what}: receiver:\n{}", received.stderr);
    for (name, data) in &files {
        assert_file_holds(&dst.join("mixed").join(name), data, &what);
    }
    assert_eq!(tree_listing(&dst), tree_listing(&src), "{what}: the trees differ");
    let (sender, receiver) = (parse_json(stdout, stderr), received.json());
    for (name, data) in &files {
        let path = format!("mixed/{name}");
        let send = match send_method {
            "auto" => auto_path(data.len(), "sendfile"),
            m => m,
        };
        let recv = match recv_method {
            "auto" => auto_path(data.len(), "splice"),
            m => m,
        };
        for (end, report) in [("sender", &sender), ("receiver", &receiver)] {
            let file = json_file(report, &path);
            assert_eq!(file["checksum_ok"], true, "{what}: {end}: {path}: {file:#}");
            assert_eq!(file["bytes"], data.len(), "{what}: {end}: {path}: {file:#}");
        }
        assert_eq!(json_file(&sender, &path)["path"], send, "{what}: sender's {path}");
        assert_eq!(json_file(&receiver, &path)["path"], recv, "{what}: receiver's {path}");
    }
}

#[test]
fn small_and_large_files_alternate_each_on_its_path() {
    mixed_round_trip("auto", "auto");
}

#[test]
fn batches_from_the_sender_meet_a_receiver_that_splices_everything() {
    mixed_round_trip("auto", "splice");
}

#[test]
fn files_sent_one_by_one_with_sendfile_still_arrive_in_batches() {
    mixed_round_trip("sendfile", "auto");
}

#[test]
fn the_reports_say_why_small_files_took_no_zero_copy_path() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    mixed_tree(&src);
    let receiver = Receiver::start(&dst, &[]);
    let sent = send_paths(&[&src.join("mixed")], &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    for (end, text) in [("sender", stderr), ("receiver", &received.stderr)] {
        assert!(text.contains("files took more than one path"), "{end}:\n{text}");
        // One line for the batched files, not a "not used" line per side.
        assert!(text.contains("5 files up to 64 KiB went in batches"), "{end}:\n{text}");
        assert!(!text.contains("not used: files up to"), "{end}:\n{text}");
    }
}

/// A receiver for `dst` and an authenticated protocol client that offered `files` (all small)
/// and got "send" for each.
fn client_for(dst: &Path, files: &[(&[u8], &[u8])]) -> (Receiver, std::net::TcpStream) {
    let receiver = Receiver::start(dst, &["--json"]);
    let mut socket = zcp_client(receiver.addr());
    let entries = files.iter().map(|(n, d)| file_entry(n, Some(d.len() as u64))).collect();
    let plan = offer(&mut socket, entries);
    assert!(plan.answers.iter().all(|a| matches!(a, Answer::Send { offset: 0 })), "{plan:?}");
    (receiver, socket)
}

#[test]
fn a_damaged_small_file_is_never_written_and_the_next_one_lands() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (bad, good) = (pseudo_random(3000, 1), pseudo_random(2000, 2));
    let (receiver, mut socket) = client_for(&dst, &[(b"bad", &bad), (b"good", &good)]);
    let start = Message::FileStart { index: 0, offset: 0 };
    protocol::write_message(&mut socket, &start).expect("FILE_START");
    socket.write_all(&bad).expect("the file's bytes");
    end_file(&mut socket, b"not what was sent");
    util::send_file(&mut socket, 1, 0, &good);
    let summary = finish(&mut socket);
    let statuses: Vec<VerdictStatus> = summary.verdicts.iter().map(|v| v.status).collect();
    assert_eq!(statuses, [VerdictStatus::ChecksumMismatch, VerdictStatus::Ok], "{summary:?}");
    let received = receiver.wait();
    assert_eq!(received.code(), Some(6), "receiver:\n{}", received.stderr);
    assert_eq!(dir_names(&dst), ["good"], "only the good file, and no part file");
    assert_file_holds(&dst.join("good"), &good, "the good file");
}

#[test]
fn small_files_trickled_a_few_bytes_at_a_time_arrive_whole() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let files: Vec<(Vec<u8>, Vec<u8>)> = (0..5)
        .map(|i| (format!("f{i}").into_bytes(), pseudo_random(1000 + 333 * i, 10 + i as u64)))
        .collect();
    let offered: Vec<(&[u8], &[u8])> =
        files.iter().map(|(n, d)| (n.as_slice(), d.as_slice())).collect();
    let (receiver, mut socket) = client_for(&dst, &offered);
    let mut stream = Vec::new();
    for (i, (_, data)) in files.iter().enumerate() {
        let start = Message::FileStart { index: i as u32, offset: 0 };
        stream.extend(protocol::frame(&start));
        stream.extend_from_slice(data);
        let end = util::protocol::FileEnd { xxh3: xxhash_rust::xxh3::xxh3_128(data) };
        stream.extend(protocol::frame(&Message::FileEnd(end)));
    }
    socket.set_nodelay(true).expect("TCP_NODELAY");
    for piece in stream.chunks(7) {
        socket.write_all(piece).expect("a few bytes");
    }
    let summary = finish(&mut socket);
    assert!(summary.verdicts.iter().all(|v| v.status == VerdictStatus::Ok), "{summary:?}");
    let received = receiver.wait();
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    for (name, data) in &files {
        assert_file_holds(&dst.join(String::from_utf8_lossy(name).as_ref()), data, "trickled");
    }
}

#[test]
fn a_connection_cut_inside_a_small_file_leaves_nothing_under_its_name() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (first, second) = (pseudo_random(500, 3), pseudo_random(40_000, 4));
    let (receiver, mut socket) = client_for(&dst, &[(b"first", &first), (b"second", &second)]);
    util::send_file(&mut socket, 0, 0, &first);
    let start = Message::FileStart { index: 1, offset: 0 };
    protocol::write_message(&mut socket, &start).expect("FILE_START");
    socket.write_all(&second[..10_000]).expect("part of the file");
    drop(socket);
    let received = receiver.wait();
    assert_eq!(received.code(), Some(3), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("connection lost"), "receiver:\n{}", received.stderr);
    assert_eq!(dir_names(&dst), ["first"], "the cut file left something behind");
    assert_file_holds(&dst.join("first"), &first, "the file before the cut");
}

/// A tree of `count` small files of `len` bytes in `dirs` directories below `src/tree`.
fn small_tree(src: &Path, count: usize, len: usize, dirs: usize) -> PathBuf {
    let tree = subdir(src, "tree");
    for d in 0..dirs {
        let dir = subdir(&tree, &format!("d{d}"));
        for f in (d..count).step_by(dirs) {
            fs::write(dir.join(format!("f{f:04}")), pseudo_random(len, f as u64)).expect("write");
        }
    }
    tree
}

#[test]
fn a_tree_of_small_files_round_trips_with_modes_and_mtimes() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = small_tree(&src, 600, 1000, 3);
    util::set_mode(&tree.join("d1").join("f0001"), 0o600);
    util::set_mode(&tree.join("d2").join("f0002"), 0o755);
    let receiver = Receiver::start(&dst, &["--json"]);
    let sent = send_paths(&[&tree], &receiver.dest(), &["--json"]);
    let (code, stdout, stderr) = (sent.code(), &sent.stdout, &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert_eq!(tree_listing(&dst), tree_listing(&src), "the trees differ");
    for (d, f) in [(0, 0), (1, 1), (2, 2), (0, 597), (2, 599)] {
        let rel = Path::new("tree").join(format!("d{d}")).join(format!("f{f:04}"));
        let (a, b) = (src.join(&rel), dst.join(&rel));
        assert_file_holds(&b, &fs::read(&a).expect("source"), "a small file");
        let (ma, mb) = (fs::metadata(&a).expect("meta"), fs::metadata(&b).expect("meta"));
        assert_eq!(ma.modified().ok(), mb.modified().ok(), "{}: mtime", rel.display());
        assert_eq!(ma.permissions(), mb.permissions(), "{}: mode", rel.display());
    }
    let report = parse_json(stdout, stderr);
    assert_eq!(report["files_sent"], 600, "{report:#}");
    assert_eq!(json_str(&report, "/send/path"), "buffered", "{report:#}");
    assert_eq!(json_str(&report, "/recv/path"), "buffered", "{report:#}");
    assert_eq!(received.json()["files_sent"], 600);
}

#[test]
fn running_out_of_inodes_stops_small_files_with_exit_7_and_nothing_half_written() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = subdir(work.path(), "src");
    // Room for the bytes (the plan checks those), but for 8 inodes only: the root, `tree` and
    // `d0` take 3, so the 6th file cannot be created, after the plan said yes.
    let disk = match Tmpfs::mount(&subdir(work.path(), "small"), "1m,nr_inodes=8") {
        Ok(disk) => disk,
        Err(why) => return skip(&format!("cannot mount a small tmpfs (needs root): {why}")),
    };
    let tree = small_tree(&src, 10, 20_000, 1);
    let receiver = Receiver::start(disk.path(), &[]);
    let sent = send_paths(&[&tree], &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(received.code(), Some(7), "receiver:\n{}", received.stderr);
    assert!(received.stderr.contains("No space left"), "receiver:\n{}", received.stderr);
    assert_ne!(code, Some(0), "sender:\n{stderr}");
    assert!(stderr.contains("No space left"), "sender:\n{stderr}");
    let landed = dir_names(&disk.path().join("tree").join("d0"));
    assert!(!landed.is_empty() && landed.len() < 10, "files that landed: {landed:?}");
    for name in &landed {
        let path = disk.path().join("tree").join("d0").join(name);
        assert_file_holds(&path, &fs::read(tree.join("d0").join(name)).expect("source"), name);
    }
}

/// Gives `dir` the default ACL `user::rwx group::r-x other::---` (as `setfacl -d -m o::---`
/// would), which new files get instead of the umask. `Err` where the file system has no ACLs.
fn default_acl_without_other(dir: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    // POSIX ACL xattr: version 2, then (tag u16, perm u16, id u32) entries, little-endian.
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 7u16), (0x04, 5), (0x20, 0)] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let name = c"system.posix_acl_default";
    // SAFETY: both strings are NUL-terminated and `acl` outlives the call.
    let rc = unsafe {
        nix::libc::setxattr(path.as_ptr(), name.as_ptr(), acl.as_ptr().cast(), acl.len(), 0)
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error().to_string()) }
}

#[test]
fn a_default_acl_does_not_change_a_small_files_mode() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    if let Err(why) = default_acl_without_other(&dst) {
        return skip(&format!("cannot set a default ACL here: {why}"));
    }
    for (name, len) in [("small", 100), ("large", SMALL_FILE as usize + 1)] {
        fs::write(src.join(name), pseudo_random(len, 7)).expect("write");
        util::set_mode(&src.join(name), 0o644);
    }
    let receiver = Receiver::start(&dst, &[]);
    let sent = send_paths(&[&src.join("small"), &src.join("large")], &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    for name in ["small", "large"] {
        let mode = fs::metadata(dst.join(name)).expect("landed").permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{name}: the sender's mode, not the ACL's");
    }
}

#[test]
fn a_file_gone_after_the_walk_fails_the_session_but_the_files_before_it_land() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = small_tree(&src, 100, 1000, 1);
    let gone = tree.join("d0").join("f0050");
    // A listening sender has walked the tree before its receiver comes.
    let mut args = vec!["send".into(), tree.clone().into_os_string()];
    args.extend(["--listen", "127.0.0.1:0"].map(Into::into));
    let mut sender = util::Process::spawn(util::zcp_command(&args, &[]));
    let addr = sender.listening();
    fs::remove_file(&gone).expect("removing a file after the walk");
    let mut recv = util::zcp_command(&["recv", "--connect", &addr.to_string(), "--output"], &[]);
    recv.arg(&dst);
    let received = util::run(recv);
    let sent = sender.wait();
    util::assert_exit(&sent, 7, "sender");
    util::assert_says(&sent, "f0050", "sender");
    assert_ne!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    let landed = dir_names(&dst.join("tree").join("d0"));
    let expected: Vec<String> = (0..50).map(|f| format!("f{f:04}")).collect();
    assert_eq!(landed, expected, "the 50 files before the missing one, and nothing else");
    for name in &landed {
        let data = fs::read(tree.join("d0").join(name)).expect("source");
        assert_file_holds(&dst.join("tree").join("d0").join(name), &data, name);
    }
}

#[test]
fn small_files_land_when_the_system_grants_one_writer_thread_of_two() {
    if let Some(why) = util::unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let log = work.path().join("recv.strace");
    // strace counts calls per thread: the receiver's main thread starts the session (its first
    // clone3), the session starts the two writers; its second clone3 fails as if the system
    // had no thread left to give.
    let inject = "inject=clone3:error=EAGAIN:when=2";
    small_tree_to_traced_receiver(work.path(), &["-f", "-e", "trace=clone3", "-e", inject], &log);
    let trace = fs::read_to_string(&log).expect("reading the strace log");
    let refused = trace.lines().filter(|l| l.contains("EAGAIN") && l.ends_with("(INJECTED)"));
    assert_eq!(refused.count(), 1, "one thread was refused:\n{trace}");
}

/// Sends a tree of 100 small files from `work/src` to a receiver into `work/dst` run under
/// `strace STRACE -o LOG`; checks that both ends succeeded and that the tree landed whole.
fn small_tree_to_traced_receiver(work: &Path, strace: &[&str], log: &Path) {
    let (src, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let tree = small_tree(&src, 100, 1000, 1);
    let mut wrapper: Vec<&OsStr> =
        ["strace"].iter().chain(strace).chain(&["-o"]).map(OsStr::new).collect();
    wrapper.push(log.as_os_str());
    let receiver = Receiver::try_start_env(&wrapper, &dst, &[], &[])
        .unwrap_or_else(|f| panic!("traced receiver did not start: {f:#?}"));
    let sent = send_paths(&[&tree], &receiver.dest(), &[]);
    let received = receiver.wait();
    util::assert_exit(&sent, 0, "sender");
    util::assert_exit(&received, 0, "receiver");
    assert_eq!(tree_listing(&dst), tree_listing(&src), "the trees differ");
    for name in ["f0042", "f0099"] {
        let one = Path::new("tree").join("d0").join(name);
        assert_file_holds(&dst.join(&one), &fs::read(src.join(&one)).expect("source"), name);
    }
}

#[test]
fn a_receiver_the_system_grants_no_writer_thread_says_so_and_writes_nothing() {
    // Two tasks: the receiver's main thread and its session's. The first writer thread is
    // refused (EAGAIN), which must not read as a sender that stalled.
    let cgroup = match util::PidsCgroup::new(2) {
        Ok(cgroup) => cgroup,
        Err(why) => return skip(&format!("cannot make a pids cgroup (needs root): {why}")),
    };
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = small_tree(&src, 100, 1000, 1);
    let wrapper = cgroup.wrapper();
    let wrapper: Vec<&OsStr> = wrapper.iter().map(OsString::as_os_str).collect();
    let receiver = Receiver::try_start_env(&wrapper, &dst, &[], &[])
        .unwrap_or_else(|f| panic!("receiver in a pids cgroup did not start: {f:#?}"));
    let sent = send_paths(&[&tree], &receiver.dest(), &[]);
    let received = receiver.wait();
    util::assert_exit(&received, 1, "receiver");
    let why = "starting a thread to write files: Resource temporarily unavailable";
    util::assert_says(&received, why, "receiver");
    assert!(!received.stderr.contains("stalled"), "receiver:\n{}", received.stderr);
    assert_ne!(sent.code(), Some(0), "sender:\n{}", sent.stderr);
    let d0 = dst.join("tree").join("d0");
    let landed = if d0.exists() { dir_names(&d0) } else { Vec::new() };
    assert!(landed.is_empty(), "files written without a writer thread: {landed:?}");
}

/// Sends a tree of 100 small files to a receiver under `strace -ff`, tracing `linkat` and
/// `renameat2` with `inject` applied; checks that every file landed whole and returns the
/// threads' traces, one after another.
fn small_tree_through_traced_links(inject: &str) -> Option<String> {
    if let Some(why) = util::unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        skip(&why);
        return None;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let log = work.path().join("recv.strace");
    // `-ff`: a log per thread, so that no call is split by another thread's.
    let traced = ["-ff", "-e", "trace=linkat,renameat2", "-e", inject];
    small_tree_to_traced_receiver(work.path(), &traced, &log);
    let logs = fs::read_dir(work.path()).expect("listing the strace logs");
    let logs = logs.map(|e| e.expect("directory entry").path());
    let per_thread = |p: &PathBuf| p.to_string_lossy().starts_with(&*log.to_string_lossy());
    Some(logs.filter(per_thread).map(|p| fs::read_to_string(p).expect("an strace log")).collect())
}

/// The lines of `trace` that call `name` and return `ret`.
fn calls_returning(trace: &str, name: &str, ret: &str) -> usize {
    let call = format!("{name}(");
    trace.lines().filter(|l| l.contains(&call) && l.contains(&format!(") = {ret}"))).count()
}

#[test]
fn small_files_are_linked_through_proc_where_linking_by_descriptor_is_refused() {
    // As a user without CAP_DAC_READ_SEARCH: linkat(fd, "", AT_EMPTY_PATH) fails with ENOENT
    // (every odd call of each writer thread), and /proc/self/fd/N is linked instead.
    let Some(trace) = small_tree_through_traced_links("inject=linkat:error=ENOENT:when=1+2") else {
        return;
    };
    let by_proc = trace.lines().filter(|l| l.contains("\"/proc/self/fd/") && l.ends_with(" = 0"));
    assert_eq!(by_proc.count(), 100, "one link through /proc per file:\n{trace}");
    assert_eq!(calls_returning(&trace, "linkat", "-1 ENOENT"), 100, "{trace}");
    assert_eq!(calls_returning(&trace, "renameat2", "0"), 0, "no part file:\n{trace}");
}

#[test]
fn small_files_go_through_part_files_where_no_unnamed_file_can_be_linked() {
    // No CAP_DAC_READ_SEARCH and no /proc: every link fails, and the receiver falls back to
    // part files, renamed into place, for the file it tried and every one after it.
    let Some(trace) = small_tree_through_traced_links("inject=linkat:error=ENOENT") else {
        return;
    };
    assert_eq!(calls_returning(&trace, "linkat", "0"), 0, "{trace}");
    // Two tries (by descriptor, through /proc) for the file each writer thread had in hand.
    let tried = calls_returning(&trace, "linkat", "-1 ENOENT");
    assert!((2..=4).contains(&tried), "linked files after the first failure:\n{trace}");
    assert_eq!(calls_returning(&trace, "renameat2", "0"), 100, "one rename per file:\n{trace}");
}

#[test]
fn limit_rate_paces_the_batches_and_both_ends_count_them_alike() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = subdir(&src, "paced");
    const SMALL: usize = 40;
    for i in 0..SMALL {
        fs::write(tree.join(format!("s{i:02}")), pseudo_random(60 << 10, 900 + i as u64))
            .expect("a small file");
    }
    fs::write(tree.join("large"), pseudo_random(300_000, 899)).expect("a large file");
    let receiver = Receiver::start(&dst, &[]);
    let started = std::time::Instant::now();
    let sent = send_paths(&[&tree], &receiver.dest(), &["--limit-rate", "4M"]);
    let took = started.elapsed();
    let received = receiver.wait();
    assert_eq!(sent.code(), Some(0), "sender:\n{}", sent.stderr);
    assert_eq!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert_eq!(tree_listing(&dst.join("paced")), tree_listing(&tree));
    let line = format!("{SMALL} files up to 64 KiB went in batches");
    for (end, f) in [("sender", &sent), ("receiver", &received)] {
        assert!(f.stderr.contains(&line), "{end} should say {line:?}:\n{}", f.stderr);
    }
    // 2.6 MiB at 4 MiB/s: the batches are paced too (a generous lower bound, no upper one).
    assert!(took >= std::time::Duration::from_millis(400), "the paced tree took only {took:?}");
}
