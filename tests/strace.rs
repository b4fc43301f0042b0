//! The reports against the kernel's own account: each end runs under strace, and the system
//! calls that moved the data must be the ones the JSON report names. Skipped (with a message)
//! where strace is missing or cannot trace.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util;
use crate::util::{
    Receiver, TOKEN, TOKEN_ENV, ZCP, json_str, parse_json, run, send, skip, unusable,
    write_random_file,
};
use serde_json::Value;

const SIZE: usize = 4 << 20;
const NAME: &str = "payload.bin";

/// Skips the test (returning from it) where strace is missing or cannot trace.
macro_rules! require_strace {
    () => {
        if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
            return skip(&why);
        }
    };
}

/// One system call in an strace log: how many times it was entered and what the completed
/// calls returned.
#[derive(Debug, Default)]
struct Traced {
    calls: usize,
    returns: Vec<i64>,
}

impl Traced {
    /// Bytes moved: the sum of the successful calls' return values.
    fn bytes(&self) -> i64 {
        self.returns.iter().filter(|&&r| r > 0).sum()
    }
}

/// Reads the calls named `name` from an `strace -f` log, joining `<unfinished ...>` halves.
fn traced(log: &str, name: &str) -> Traced {
    let (entered, resumed) = (format!("{name}("), format!("<... {name} resumed>"));
    let mut t = Traced::default();
    for line in log.lines() {
        // `-f` puts the thread id first.
        let body = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
        let complete = if body.starts_with(&entered) {
            t.calls += 1;
            !body.ends_with("<unfinished ...>")
        } else {
            body.starts_with(&resumed)
        };
        if complete {
            // `CALL(ARGS)   = RET [ERRNO (TEXT)]`: strace pads before the `=`.
            let ret = body
                .rsplit_once(" = ")
                .filter(|(call, _)| call.trim_end().ends_with(')'))
                .and_then(|(_, ret)| ret.split(' ').next()?.parse().ok());
            t.returns.push(ret.unwrap_or_else(|| panic!("no return value in {line:?}")));
        }
    }
    t
}

/// `strace` arguments that log the `calls` of every thread to `log`.
fn strace_args(log: &Path, calls: &str) -> Vec<OsString> {
    vec!["-f".into(), "-o".into(), log.into(), "-e".into(), format!("trace={calls}").into()]
}

/// Sends a 4 MiB file from under strace to a plain receiver; returns the sender's report and
/// the trace.
fn traced_send(extra: &[&str]) -> (Value, String) {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join(NAME);
    let data = write_random_file(&src, SIZE, 99);
    let dst = util::subdir(work.path(), "dst");
    let log = work.path().join("send.strace");
    let receiver = Receiver::start(&dst, &[]);
    let mut sender = Command::new("strace");
    sender
        .args(strace_args(&log, "sendfile,splice,read,write,sendto"))
        .arg(ZCP)
        .arg("send")
        .arg(&src)
        .arg(receiver.dest())
        .arg("--json")
        .args(extra)
        .env(TOKEN_ENV, TOKEN);
    let sent = run(sender);
    let (code, stdout, stderr) = (sent.code(), &sent.stdout, &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "traced sender {extra:?} failed:\n{stderr}");
    assert_eq!(received.code(), Some(0), "receiver failed:\n{}", received.stderr);
    util::assert_file_holds(&dst.join(NAME), &data, "traced send");
    let trace = fs::read_to_string(&log).expect("reading the strace log");
    (parse_json(stdout, stderr), trace)
}

#[test]
fn auto_sender_moves_the_data_with_sendfile() {
    require_strace!();
    let (report, trace) = traced_send(&[]);
    assert_eq!(json_str(&report, "/send/path"), "sendfile", "{report:#}");
    let sendfile = traced(&trace, "sendfile");
    assert!(sendfile.calls > 0, "no sendfile calls:\n{trace}");
    assert_eq!(sendfile.bytes(), SIZE as i64, "sendfile should move the whole file: {sendfile:?}");
    assert_eq!(report["send"]["syscalls"], sendfile.calls, "report vs strace: {sendfile:?}");
    assert_eq!(traced(&trace, "splice").calls, 0, "splice was not needed:\n{trace}");
    let read = traced(&trace, "read");
    assert!(read.bytes() < (SIZE / 4) as i64, "the file was read with read(2): {read:?}");
}

#[test]
fn buffered_sender_uses_neither_sendfile_nor_splice() {
    require_strace!();
    let (report, trace) = traced_send(&["--method", "buffered"]);
    assert_eq!(json_str(&report, "/send/path"), "buffered", "{report:#}");
    for call in ["sendfile", "splice"] {
        let lines: Vec<&str> = trace.lines().filter(|l| l.contains(call)).collect();
        assert!(lines.is_empty(), "--method buffered made {call} calls: {lines:#?}");
    }
    // std's `TcpStream` writes with send(2), which strace shows as sendto.
    let (read, sent) = (traced(&trace, "read"), traced(&trace, "sendto"));
    assert!(read.bytes() >= SIZE as i64, "the file was not read with read(2): {read:?}");
    assert!(sent.bytes() >= SIZE as i64, "the data was not sent with send(2): {sent:?}");
}

#[test]
fn auto_receiver_writes_the_data_with_splice() {
    require_strace!();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join(NAME);
    let data = write_random_file(&src, SIZE, 98);
    let dst = util::subdir(work.path(), "dst");
    let log = work.path().join("recv.strace");
    let args = strace_args(&log, "splice,tee,read,write,recvfrom,mmap,madvise,munmap,ftruncate");
    let wrapper: Vec<&OsStr> =
        std::iter::once(OsStr::new("strace")).chain(args.iter().map(OsString::as_os_str)).collect();
    let receiver = Receiver::try_start_env(&wrapper, &dst, &["--json"], &[])
        .unwrap_or_else(|f| panic!("traced receiver did not start: {f:#?}"));
    let sent = send(&src, &receiver.dest(), &[]);
    let (code, stderr) = (sent.code(), &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "sender failed:\n{stderr}");
    assert_eq!(received.code(), Some(0), "traced receiver failed:\n{}", received.stderr);
    util::assert_file_holds(&dst.join(NAME), &data, "traced receive");

    let report = received.json();
    let trace = fs::read_to_string(&log).expect("reading the strace log");
    assert_eq!(json_str(&report, "/recv/path"), "splice", "{report:#}");
    let splice = traced(&trace, "splice");
    // Every byte is spliced twice: socket to pipe, then pipe to file.
    assert_eq!(splice.bytes(), 2 * SIZE as i64, "splice should move the whole file: {splice:?}");
    assert_eq!(report["recv"]["syscalls"], splice.calls, "report vs strace: {splice:?}");
    // The checksum is taken from a read-only shared mapping of the file just written: no
    // tee'd copy, and read(2) sees only start-up files (libraries, /proc/self/status).
    let (tee, read) = (traced(&trace, "tee"), traced(&trace, "read"));
    assert_eq!(tee.calls, 0, "no tee'd copy for the checksum: {tee:?}");
    assert!((0..65536).contains(&read.bytes()), "no read(2) of the data: {read:?}");
    let shared = trace.lines().filter(|l| l.contains("PROT_READ, MAP_SHARED,")).count();
    assert!(shared >= 1, "the file was not mapped for its checksum:\n{trace}");
    let counted = report["recv"]["checksum_syscalls"].as_u64().unwrap_or(u64::MAX) as usize;
    // mmap returns an address, which `traced` does not parse: count the shared mappings.
    let mapping = [shared, traced(&trace, "madvise").calls, traced(&trace, "munmap").calls];
    assert!(
        (3..=mapping.iter().sum()).contains(&counted),
        "checksum calls {counted} vs strace mmap/madvise/munmap {mapping:?}"
    );
    // std's `TcpStream` reads with recv(2), which strace shows as recvfrom: frames only.
    let frames = traced(&trace, "recvfrom");
    assert!(frames.bytes() < (SIZE / 4) as i64, "the data went through recvfrom: {frames:?}");
    // A new part file is empty: truncating it to 0 would make ext4 write its data back when it
    // is closed (auto_da_alloc), a stall of the receiver's last moment.
    let truncated = traced(&trace, "ftruncate");
    assert_eq!(truncated.calls, 0, "a new part file was truncated: {truncated:?}");
}

#[test]
fn small_files_move_in_batches_as_strace_sees_them() {
    require_strace!();
    const FILES: usize = 400;
    const LEN: usize = 1000;
    let work = tempfile::tempdir().expect("tempdir");
    let tree = util::subdir(work.path(), "tree");
    for d in 0..2 {
        let dir = util::subdir(&tree, &format!("d{d}"));
        for f in (d..FILES).step_by(2) {
            write_random_file(&dir.join(format!("f{f:03}")), LEN, f as u64);
        }
    }
    let dst = util::subdir(work.path(), "dst");
    let (send_log, recv_log) = (work.path().join("send.strace"), work.path().join("recv.strace"));
    let args = strace_args(&recv_log, "splice,tee,recvfrom,write,linkat,renameat2");
    let wrapper: Vec<&OsStr> =
        std::iter::once(OsStr::new("strace")).chain(args.iter().map(OsString::as_os_str)).collect();
    let receiver = Receiver::try_start_env(&wrapper, &dst, &["--json"], &[])
        .unwrap_or_else(|f| panic!("traced receiver did not start: {f:#?}"));
    let mut sender = Command::new("strace");
    sender
        .args(strace_args(&send_log, "sendfile,splice,pread64,sendto,write"))
        .arg(ZCP)
        .args(["send", "--json"])
        .arg(&tree)
        .arg(receiver.dest())
        .env(TOKEN_ENV, TOKEN);
    let sent = run(sender);
    let (code, stdout, stderr) = (sent.code(), &sent.stdout, &sent.stderr);
    let received = receiver.wait();
    assert_eq!(code, Some(0), "traced sender failed:\n{stderr}");
    assert_eq!(received.code(), Some(0), "traced receiver failed:\n{}", received.stderr);
    assert_eq!(util::tree_listing(&dst.join("tree")), util::tree_listing(&tree));
    let one = Path::new("d1").join("f399");
    let sent_bytes = fs::read(tree.join(&one)).expect("a source file");
    util::assert_file_holds(&dst.join("tree").join(&one), &sent_bytes, "a traced small file");

    let (report, trace) =
        (parse_json(stdout, stderr), fs::read_to_string(&send_log).expect("send log"));
    assert_eq!(json_str(&report, "/send/path"), "buffered", "{report:#}");
    assert_eq!(traced(&trace, "sendfile").calls + traced(&trace, "splice").calls, 0, "{trace}");
    let (pread, sendto) = (traced(&trace, "pread64"), traced(&trace, "sendto"));
    // The dynamic loader preads too, before main: count the reads of a file's size.
    let file_reads = pread.returns.iter().filter(|&&r| r == LEN as i64).count();
    assert_eq!(file_reads, FILES, "one pread per file: {pread:?}");
    assert!(sendto.calls < FILES / 10, "files were not sent in batches: {sendto:?}");
    // Every batch starts with a FILE_START frame (type 7, payload length 12); the other sends
    // are the greeting, the proof, the offer and FINISH.
    let batch = |l: &&str| l.contains("sendto(") && l.contains(r#", "\7\0\0\0\f"#);
    let batches = trace.lines().filter(batch).count();
    assert!(batches > 1, "no batch writes found:\n{trace}");
    let counted = report["send"]["syscalls"].as_u64().unwrap_or(0) as usize;
    assert_eq!(counted, FILES + batches, "sender: one pread per file and one write per batch");

    let (report, trace) = (received.json(), fs::read_to_string(&recv_log).expect("recv log"));
    assert_eq!(json_str(&report, "/recv/path"), "buffered", "{report:#}");
    assert_eq!(traced(&trace, "splice").calls + traced(&trace, "tee").calls, 0, "{trace}");
    // Each file: one write of its bytes into a file without a name, linked in when complete.
    let writes = traced(&trace, "write");
    let file_writes = writes.returns.iter().filter(|&&r| r == LEN as i64).count();
    assert_eq!(file_writes, FILES, "one write per file: {writes:?}");
    let linked = traced(&trace, "linkat");
    assert_eq!((linked.calls, linked.bytes()), (FILES, 0), "one link per file: {linked:?}");
    assert_eq!(traced(&trace, "renameat2").calls, 0, "no part file was renamed:\n{trace}");
    let reads = traced(&trace, "recvfrom");
    assert!(reads.calls < FILES / 10, "files were not read in batches: {reads:?}");
    let counted = report["recv"]["syscalls"].as_u64().unwrap_or(0) as usize;
    assert!((FILES..=FILES + reads.calls).contains(&counted), "receiver: {counted} {reads:?}");
}

#[test]
fn raw_mode_takes_no_checksum_on_either_end() {
    require_strace!();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join(NAME);
    let data = write_random_file(&src, SIZE, 97);
    let out = work.path().join("out.bin");
    let (send_log, recv_log) = (work.path().join("send.strace"), work.path().join("recv.strace"));
    let mut recv = Command::new("strace");
    recv.args(strace_args(&recv_log, "splice,tee,read,pread64,mmap"))
        .arg(ZCP)
        .args(["recv", "--raw", "--listen", "127.0.0.1:0", "--json", "--output"])
        .arg(&out);
    let mut recv = util::Process::spawn(recv);
    let addr = recv.listening();
    let mut sender = Command::new("strace");
    sender
        .args(strace_args(&send_log, "sendfile,pread64,read"))
        .arg(ZCP)
        .args(["send", "--raw", "--json"])
        .arg(&src)
        .arg(addr.to_string());
    let sent = run(sender);
    let received = recv.wait();
    assert_eq!(sent.code(), Some(0), "traced raw sender failed:\n{}", sent.stderr);
    assert_eq!(received.code(), Some(0), "traced raw receiver failed:\n{}", received.stderr);
    util::assert_file_holds(&out, &data, "raw receive");

    // The receiver: spliced, and no digest taken (raw reports show none).
    let (report, trace) = (received.json(), fs::read_to_string(&recv_log).expect("recv log"));
    assert_eq!(json_str(&report, "/recv/path"), "splice", "{report:#}");
    assert_eq!(report["recv"]["checksum_syscalls"], 0, "{report:#}");
    assert_eq!(traced(&trace, "tee").calls, 0, "raw mode tees for a digest:\n{trace}");
    let read = traced(&trace, "read").bytes() + traced(&trace, "pread64").bytes();
    assert!(read < 65536, "raw mode read the data back: {read} bytes");
    let shared = trace.lines().filter(|l| l.contains("MAP_SHARED")).count();
    assert_eq!(shared, 0, "raw mode mapped the file for a digest:\n{trace}");

    // The sender: sendfile, and no read of the file for a digest.
    let (report, trace) = (sent.json(), fs::read_to_string(&send_log).expect("send log"));
    assert_eq!(json_str(&report, "/send/path"), "sendfile", "{report:#}");
    assert_eq!(report["send"]["checksum_syscalls"], 0, "{report:#}");
    let read = traced(&trace, "read").bytes() + traced(&trace, "pread64").bytes();
    assert!(read < (SIZE / 4) as i64, "raw mode read the file for a digest: {read} bytes");
}
