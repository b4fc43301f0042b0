//! The receiver's limits and the sender's: `--max-size`, a full disk (refused up front when the
//! size is known, failing cleanly mid-file when it is not), `--limit-rate`, many senders at once
//! with `--keep-open`, and `--max-conns` turning a sender away.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::util::{
    FifoWriter, Finished, PidsCgroup, Process, Receiver, Tmpfs, assert_exit, assert_file_holds,
    assert_no_panic, assert_says, dir_names, file_entry, final_names, json_u64, offer, part_of,
    protocol, pseudo_random, run, send, send_cmd, send_frames, skip, subdir, wait_for_bytes,
    wait_until, wrapped, write_random_file, zcp_client, zcp_command,
};

const MIB: usize = 1 << 20;

/// A source file `name` of `len` bytes in `work/src`, and an empty `work/dst`.
fn setup(work: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, PathBuf, Vec<u8>) {
    let (src_dir, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let src = src_dir.join(name);
    let data = write_random_file(&src, len, seed);
    (src, dst, data)
}

#[test]
fn max_size_refuses_a_larger_file_on_both_ends() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), "two.bin", 2 * MIB, 1);
    let recv = Receiver::start(&dst, &["--max-size", "1M"]);
    let addr = recv.addr();
    let sent = send(&src, &addr.to_string(), &[]);
    let received = recv.wait();
    assert_exit(&sent, 5, "sender");
    assert_exit(&received, 5, "receiver");
    assert_says(&sent, "--max-size", "sender");
    assert_says(&received, "--max-size", "receiver");
    assert!(dir_names(&dst).is_empty(), "a refused file left {:?}", dir_names(&dst));
}

/// A 1 MiB tmpfs at `work/small`, or `None` (with the reason printed) where mounting fails.
fn small_disk(work: &Path) -> Option<Tmpfs> {
    let dir = subdir(work, "small");
    match Tmpfs::mount(&dir, "1m") {
        Ok(fs) => Some(fs),
        Err(why) => {
            skip(&format!("cannot mount a small tmpfs (needs root): {why}"));
            None
        }
    }
}

#[test]
fn full_disk_refuses_a_known_size_up_front() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("four.bin");
    write_random_file(&src, 4 * MIB, 2);
    let Some(disk) = small_disk(work.path()) else { return };
    let recv = Receiver::start(disk.path(), &[]);
    let addr = recv.addr();
    let sent = send(&src, &addr.to_string(), &[]);
    let received = recv.wait();
    assert_exit(&sent, 5, "sender");
    assert_exit(&received, 5, "receiver");
    for (f, who) in [(&sent, "sender"), (&received, "receiver")] {
        assert_says(f, "needs 4 MiB", who);
        assert_says(f, "free", who);
    }
    assert!(dir_names(disk.path()).is_empty(), "a refused file left {:?}", dir_names(disk.path()));
}

#[test]
fn full_disk_mid_stream_fails_clearly_and_keeps_the_part_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let Some(disk) = small_disk(work.path()) else { return };
    let fifo = work.path().join("stream");
    let writer = FifoWriter::create(&fifo, pseudo_random(4 * MIB, 3));
    let recv = Receiver::start(disk.path(), &[]);
    let addr = recv.addr();
    let sent = send(&fifo, &addr.to_string(), &[]);
    let received = recv.wait();
    let _ = writer.finish();
    assert_exit(&received, 7, "receiver");
    assert_says(&received, "No space left on device", "receiver");
    assert_ne!(sent.code(), Some(0), "sender:\n{}", sent.stderr);
    assert_says(&sent, "receiver", "sender");
    assert_says(&sent, "No space left on device", "sender");
    let kept = std::fs::metadata(part_of(disk.path(), "stream")).map_or(0, |m| m.len());
    assert!(kept > 0, "the part file is kept");
    assert!(final_names(disk.path()).is_empty(), "a cut stream appeared under its final name");
}

#[test]
fn limit_rate_holds_the_sender_back() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, data) = setup(work.path(), "paced.bin", 64 * MIB, 4);
    let recv = Receiver::start(&dst, &["--force"]);
    let addr = recv.addr();
    let started = Instant::now();
    let paced = run(send_cmd(&[&src], &addr.to_string(), &["--limit-rate", "32M", "--json"], &[]));
    let took = started.elapsed();
    assert_exit(&recv.wait(), 0, "receiver");
    assert_exit(&paced, 0, "paced sender");
    assert_file_holds(&dst.join("paced.bin"), &data, "the paced transfer");
    let report = paced.json();
    let rate = report["throughput_bytes_per_s"].as_f64().expect("throughput in the report");
    assert!(took >= Duration::from_millis(1500), "64 MiB at 32 MiB/s took only {took:?}");
    assert!(rate < 36.0 * MIB as f64, "reported {rate:.0} B/s over a 32 MiB/s limit");
    assert_eq!(json_u64(&report, "/bytes"), 64 * MIB as u64);

    // Without the limit the same transfer runs as fast as loopback allows (not asserted).
    let recv = Receiver::start(&dst, &["--force"]);
    let addr = recv.addr();
    let free = run(send_cmd(&[&src], &addr.to_string(), &["--json"], &[]));
    assert_exit(&recv.wait(), 0, "receiver");
    assert_exit(&free, 0, "unlimited sender");
    let free_rate = free.json()["throughput_bytes_per_s"].as_f64().unwrap_or(0.0);
    eprintln!("paced {rate:.0} B/s in {took:?}; unlimited {free_rate:.0} B/s");
}

#[test]
fn keep_open_receives_32_concurrent_senders() {
    const SENDERS: usize = 32;
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let sources: Vec<(PathBuf, Vec<u8>)> = (0..SENDERS)
        .map(|i| {
            let src = src_dir.join(format!("file-{i:02}.bin"));
            let data = write_random_file(&src, MIB, 100 + i as u64);
            (src, data)
        })
        .collect();
    let mut recv = Receiver::start(&dst, &["--keep-open", "--max-conns", "64", "--quiet"]);
    let addr = recv.addr();
    let dest = addr.to_string();
    let results: Vec<_> = thread::scope(|scope| {
        let handles: Vec<_> =
            sources.iter().map(|(src, _)| scope.spawn(|| send(src, &dest, &["--quiet"]))).collect();
        handles.into_iter().map(|h| h.join().expect("sender thread")).collect()
    });
    for (i, sent) in results.iter().enumerate() {
        assert_exit(sent, 0, &format!("sender {i}"));
    }
    for (src, data) in &sources {
        let name = src.file_name().expect("a file name");
        assert_file_holds(&dst.join(name), data, "a concurrently received file");
    }
    recv.process().signal(Signal::SIGTERM);
    let received = recv.wait_for(Duration::from_secs(15));
    assert_exit(&received, 143, "receiver");
    assert_eq!(final_names(&dst).len(), SENDERS, "exactly the sent files landed");
}

#[test]
fn max_conns_turns_a_second_sender_away_as_busy() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let first = src_dir.join("first.bin");
    let second = src_dir.join("second.bin");
    let first_data = write_random_file(&first, 8 * MIB, 5);
    write_random_file(&second, MIB, 6);
    let mut recv = Receiver::start(&dst, &["--keep-open", "--max-conns", "1"]);
    let addr = recv.addr();
    let dest = addr.to_string();
    let slow = ["--limit-rate", "4M"];
    let a = Process::spawn(send_cmd(&[&first], &dest, &slow, &[]));
    wait_for_bytes(&part_of(&dst, "first.bin"), 64 << 10);
    let b = run(send_cmd(&[&second], &dest, &slow, &[]));
    let a = a.wait();
    assert_exit(&a, 0, "the first sender");
    assert_file_holds(&dst.join("first.bin"), &first_data, "the first sender's file");
    // Turned away while the first session runs, not served and not made to wait.
    assert_exit(&b, 3, "the second sender");
    assert_says(&b, "busy", "the second sender");
    assert!(!dst.join("second.bin").exists(), "a turned-away file landed");
    recv.process().signal(Signal::SIGTERM);
    let received = recv.wait_for(Duration::from_secs(15));
    assert_exit(&received, 143, "receiver");
}

/// A receiver without `--keep-open` stops listening once its one sender is in: a second sender
/// is refused at once, not left waiting for a greeting until the first session ends.
#[test]
fn a_one_shot_receiver_refuses_a_second_sender_while_it_serves_the_first() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let first = src_dir.join("first.bin");
    let second = src_dir.join("second.bin");
    let first_data = write_random_file(&first, 4 * MIB, 7);
    write_random_file(&second, MIB, 8);
    let recv = Receiver::start(&dst, &[]);
    let dest = recv.addr().to_string();
    let mut a = Process::spawn(send_cmd(&[&first], &dest, &["--limit-rate", "1M"], &[]));
    // Well into the session (a connection that races its admission is closed in the lobby).
    wait_for_bytes(&part_of(&dst, "first.bin"), 1 << 20);
    let b = run(send_cmd(&[&second], &dest, &[], &[]));
    assert_exit(&b, 3, "the second sender");
    assert!(a.running(), "the second sender was kept waiting until the first session ended");
    let a = a.wait();
    assert_exit(&a, 0, "the first sender");
    assert_file_holds(&dst.join("first.bin"), &first_data, "the first sender's file");
    assert!(!dst.join("second.bin").exists(), "a refused file landed");
    assert_exit(&recv.wait(), 0, "receiver");
}

/// A receiver that the system refuses a thread for a connection (a pids cgroup of one task: its
/// main thread) says so in one line and exits 1; it does not panic.
#[test]
fn a_receiver_out_of_threads_says_so_instead_of_panicking() {
    let Some((_cgroup, wrapper)) = one_task_cgroup() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), "one.bin", 4096, 9);
    let wrapper: Vec<&OsStr> = wrapper.iter().map(OsStr::new).collect();
    let receiver = Receiver::try_start_env(&wrapper, &dst, &[], &[])
        .unwrap_or_else(|f| panic!("receiver in a pids cgroup did not start: {f:#?}"));
    let sent = send(&src, &receiver.dest(), &[]);
    let received = receiver.wait();
    assert_refused_a_thread(&received, "starting a thread for a connection: Resource", "receiver");
    assert_exit(&received, 1, "receiver");
    assert_ne!(sent.code(), Some(0), "sender:\n{}", sent.stderr);
    assert!(final_names(&dst).is_empty(), "a file landed");
}

/// The same for a sender that listens (`send --listen`): one line, exit 1, no panic.
#[test]
fn a_listening_sender_out_of_threads_says_so_instead_of_panicking() {
    let Some((_cgroup, wrapper)) = one_task_cgroup() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), "one.bin", 4096, 10);
    let args = ["send".as_ref(), src.as_os_str(), "--listen".as_ref(), "127.0.0.1:0".as_ref()];
    let mut sender = Process::spawn(in_cgroup(&wrapper, &zcp_command(&args, &[])));
    let addr = sender.listening().to_string();
    let mut recv = zcp_command(&["recv", "--connect", &addr, "--output"], &[]);
    recv.arg(&dst);
    let received = run(recv);
    let sent = sender.wait();
    assert_refused_a_thread(&sent, "starting a thread for a connection: Resource", "sender");
    assert_exit(&sent, 1, "sender");
    assert_ne!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert!(final_names(&dst).is_empty(), "a file landed");
}

/// A sender refused the thread that hashes a large file beside `sendfile` names that, rather
/// than reading as a receiver that stalled, and exits 1 as every refused thread does (not 7:
/// no local file failed); nothing lands under the final name.
#[test]
fn a_sender_refused_its_checksum_thread_says_so() {
    let Some((_cgroup, wrapper)) = one_task_cgroup() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), "big.bin", 4 * MIB, 11);
    let recv = Receiver::start(&dst, &[]);
    let cmd = send_cmd(&[&src], &recv.dest(), &["--method", "sendfile"], &[]);
    let sent = run(in_cgroup(&wrapper, &cmd));
    let received = recv.wait();
    assert_refused_a_thread(&sent, "starting the checksum thread: Resource", "sender");
    assert_exit(&sent, 1, "sender");
    assert_ne!(received.code(), Some(0), "receiver:\n{}", received.stderr);
    assert!(final_names(&dst).is_empty(), "a file landed");
}

/// With `--encrypt` in user space the record layer's threads are the first the sender starts:
/// refused, it says so and exits 1, rather than reading as a receiver that stalled (exit 3).
#[test]
fn an_encrypting_sender_refused_its_tls_threads_says_so() {
    let Some((_cgroup, wrapper)) = one_task_cgroup() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path(), "one.bin", 4096, 12);
    let recv = Receiver::start(&dst, &["--encrypt"]);
    let cmd = send_cmd(&[&src], &recv.dest(), &["--encrypt"], &[]);
    let sent = run(in_cgroup(&wrapper, &cmd));
    // The failed handshake does not end the one-shot receiver (a stranger's would not either).
    recv.kill();
    assert_refused_a_thread(&sent, "starting the TLS thread: Resource", "sender");
    assert_exit(&sent, 1, "sender");
    assert!(final_names(&dst).is_empty(), "a file landed");
}

/// A pids cgroup that allows one task, and the wrapper that starts a command in it; `None` (the
/// test skipped) where it cannot be made.
fn one_task_cgroup() -> Option<(PidsCgroup, Vec<String>)> {
    match PidsCgroup::new(1) {
        Ok(cgroup) => {
            let wrapper = cgroup.wrapper().iter().map(|w| w.to_string_lossy().into()).collect();
            Some((cgroup, wrapper))
        }
        Err(why) => {
            skip(&format!("cannot make a pids cgroup (needs root): {why}"));
            None
        }
    }
}

fn in_cgroup(wrapper: &[String], cmd: &std::process::Command) -> std::process::Command {
    wrapped(&wrapper.iter().map(String::as_str).collect::<Vec<_>>(), cmd)
}

/// `who` was refused a thread and said so: `says`, no panic, not a peer that stalled, not 0.
fn assert_refused_a_thread(f: &Finished, says: &str, who: &str) {
    assert_no_panic(f, who);
    assert_says(f, says, who);
    assert!(!f.stderr.contains("stalled"), "{who}:\n{}", f.stderr);
    assert_ne!(f.code(), Some(0), "{who}:\n{}", f.stderr);
}

/// `zcp recv --output - EXTRA…` with its standard output counted, not kept, and its address.
fn counting_stdout_receiver(extra: &[&str]) -> (Process, std::net::SocketAddr, Arc<AtomicU64>) {
    let mut args = vec!["recv", "--listen", "127.0.0.1:0", "--output", "-"];
    args.extend_from_slice(extra);
    let written = Arc::new(AtomicU64::new(0));
    let mut recv = Process::spawn_counting(zcp_command(&args, &[]), Arc::clone(&written));
    let addr = recv.listening();
    (recv, addr, written)
}

/// A 64 GiB file that is one hole (and one byte), crossing in the sparse form as a run that
/// claims 64 GiB of zeros: onto standard output, `--max-size` counts those zeros, so the
/// session is refused before a byte is written.
#[test]
fn max_size_bounds_standard_output_and_counts_holes_as_zeros() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("hole.img");
    let file = std::fs::File::create(&src).expect("creating the source");
    file.set_len(64 << 30).expect("a 64 GiB hole");
    std::os::unix::fs::FileExt::write_all_at(&file, b"x", (64 << 30) - 1).expect("a last byte");
    let (recv, addr, written) = counting_stdout_receiver(&["--max-size", "1M"]);
    let sent = send(&src, &addr.to_string(), &[]);
    let received = recv.wait_for(Duration::from_secs(20));
    assert_exit(&sent, 5, "sender");
    assert_exit(&received, 5, "receiver");
    for (f, who) in [(&sent, "sender"), (&received, "receiver")] {
        assert_says(f, "session needs 64 GiB, more than the receiver's --max-size 1 MiB", who);
    }
    let written = written.load(Ordering::Relaxed);
    assert!(written <= MIB as u64, "{written} bytes written past --max-size 1M");
}

/// A stop signal ends a receiver within a bound while it writes a long run of zeros (a 1 TiB
/// hole) to standard output, the output flowing all the while.
#[test]
fn sigterm_stops_a_receiver_writing_a_long_hole_to_standard_output() {
    use std::io::Write;
    let (mut recv, addr, written) = counting_stdout_receiver(&[]);
    let mut socket = zcp_client(addr);
    let size = 1u64 << 40;
    offer(&mut socket, vec![file_entry(b"zeros.img", Some(size))]);
    send_frames(&mut socket, &[protocol::Message::SparseStart { index: 0, offset: 0 }]);
    let run = protocol::sparse_run_header(size - 1, 1);
    socket.write_all(&[&run[..], b"x"].concat()).expect("sending the run");
    let flowing = || written.load(Ordering::Relaxed) >= 64 * MIB as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !flowing() && recv.running() && Instant::now() < deadline {
        // Polling for the output, bounded by the deadline.
        thread::sleep(Duration::from_millis(5));
    }
    assert!(flowing(), "no zeros on standard output: {:#?}", recv.kill());
    recv.signal(Signal::SIGTERM);
    let signalled = Instant::now();
    let received = recv.wait_for(Duration::from_secs(5));
    assert_exit(&received, 143, "receiver");
    assert_says(&received, "stopped by SIGTERM", "receiver");
    eprintln!("stopped {:?} after SIGTERM", signalled.elapsed());
}

/// Bytes waiting in a pipe, by its read end.
fn unread(pipe: &std::os::fd::OwnedFd) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, to a live local.
    let rc = unsafe { nix::libc::ioctl(pipe.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// A receiver whose standard output nobody reads is stuck in a write no stop flag reaches; a
/// stop signal still ends it soon, saying why, with the signal's exit code.
#[test]
fn sigterm_ends_a_receiver_stuck_writing_to_a_pipe_nobody_reads() {
    use std::io::Write;
    let (read_end, write_end) = nix::unistd::pipe().expect("a pipe");
    let capacity = nix::fcntl::fcntl(&read_end, nix::fcntl::FcntlArg::F_GETPIPE_SZ)
        .expect("the pipe's size") as usize;
    let args = ["recv", "--listen", "127.0.0.1:0", "--output", "-"];
    let mut recv = Process::spawn_with_stdout(zcp_command(&args, &[]), write_end);
    let addr = recv.listening();
    let mut socket = zcp_client(addr);
    let size = 1u64 << 30;
    offer(&mut socket, vec![file_entry(b"zeros.img", Some(size))]);
    send_frames(&mut socket, &[protocol::Message::SparseStart { index: 0, offset: 0 }]);
    let run = protocol::sparse_run_header(size - 1, 1);
    socket.write_all(&[&run[..], b"x"].concat()).expect("sending the run");
    wait_until(Duration::from_secs(30), "the receiver to fill its standard output", || {
        unread(&read_end) >= capacity
    });
    recv.signal(Signal::SIGTERM);
    let signalled = Instant::now();
    let received = recv.wait_for(Duration::from_secs(5));
    assert_exit(&received, 143, "receiver");
    assert_says(&received, "did not stop within 1 s", "receiver");
    assert_says(&received, "served 1 session, 1 failed, stopped by SIGTERM", "receiver");
    eprintln!("ended {:?} after SIGTERM", signalled.elapsed());
    drop(read_end);
}
