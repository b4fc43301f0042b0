//! Sessions racing for one target on one `--keep-open --force` receiver: the plan hashes a
//! resume's prefix under the part file's lock, the writes and the rename are done under that
//! same lock, and a session never takes a lock on a part file that was moved away. So two
//! senders of different contents to one name end with one sender's file, byte for byte; a
//! session that waited for the lock of a part file renamed meanwhile writes a part file of its
//! own (forced with delayed `flock` calls under strace); and a soak of senders killed with
//! SIGKILL and sent again ends with no checksum mismatch and no part file missing at its rename.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::util::{
    Finished, Process, Receiver, Rng, assert_file_holds, assert_no_panic, end_file, file_entry,
    final_names, finish, offer, part_of, protocol, pseudo_random, send_cmd, send_file, subdir,
    wait_until, write_random_file, zcp_client,
};

const MIB: usize = 1 << 20;

/// What a sender printed that would show two sessions interleaved on one target.
fn interleaved(f: &Finished) -> Option<&'static str> {
    ["checksum mismatch", "No such file or directory", "panicked"]
        .into_iter()
        .find(|needle| f.stderr.contains(needle))
}

#[test]
fn two_force_senders_of_different_contents_leave_one_senders_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let (a_dir, b_dir) = (subdir(work.path(), "a"), subdir(work.path(), "b"));
    let (a, b) = (a_dir.join("same.bin"), b_dir.join("same.bin"));
    let a_data = write_random_file(&a, 4 * MIB, 1);
    let b_data = write_random_file(&b, 4 * MIB, 2);
    let dst = subdir(work.path(), "dst");
    let mut recv = Receiver::start(&dst, &["--keep-open", "--force", "--quiet"]);
    let dest = recv.dest();
    let paced = ["--limit-rate", "64M", "--quiet"];
    for round in 0..8 {
        let first = Process::spawn(send_cmd(&[&a], &dest, &paced, &[]));
        let second = Process::spawn(send_cmd(&[&b], &dest, &paced, &[]));
        let (first, second) = (first.wait(), second.wait());
        for (f, who) in [(&first, "a"), (&second, "b")] {
            assert_no_panic(f, who);
            assert!(matches!(f.code(), Some(0 | 5)), "round {round}, {who}:\n{}", f.stderr);
            assert_eq!(interleaved(f), None, "round {round}, {who}:\n{}", f.stderr);
        }
        let landed = std::fs::read(dst.join("same.bin")).expect("the landed file");
        let equals = |data: &[u8]| landed.as_slice() == data;
        assert!(equals(&a_data) || equals(&b_data), "round {round}: a mix of both senders");
        match (first.code(), second.code()) {
            (Some(0), Some(5)) => assert!(equals(&a_data), "round {round}: b was refused"),
            (Some(5), Some(0)) => assert!(equals(&b_data), "round {round}: a was refused"),
            (Some(0), Some(0)) => {}
            _ => panic!("round {round}: neither sender landed its file"),
        }
    }
    recv.process().signal(Signal::SIGTERM);
    let received = recv.wait_for(Duration::from_secs(15));
    assert_no_panic(&received, "receiver");
}

/// One sender loop of the soak: sends the files of `sources` in turn (from `start`), killing
/// one send in four with SIGKILL after a moment and sending that file again, until `stop`.
fn sender_loop(
    sources: &[(PathBuf, Vec<u8>)],
    dest: &str,
    start: usize,
    stop: &AtomicBool,
    tally: &Tally,
) {
    let mut rng = Rng::new(start as u64 + 1);
    let mut k = start;
    while !stop.load(Ordering::Relaxed) {
        let (src, _) = &sources[k % sources.len()];
        k += 1;
        let extra = ["--limit-rate", "40M", "--quiet"];
        let sender = Process::spawn(send_cmd(&[src], dest, &extra, &[]));
        if rng.range(0, 4) == 0 {
            // Not synchronisation: how far the killed send got is the scenario's randomness.
            thread::sleep(Duration::from_millis(rng.range(5, 60)));
            sender.kill();
            tally.killed.fetch_add(1, Ordering::Relaxed);
            let again = Process::spawn(send_cmd(&[src], dest, &extra, &[])).wait();
            tally.count(&again);
        } else {
            tally.count(&sender.wait());
        }
    }
}

/// How the soak's sends ended.
#[derive(Default)]
struct Tally {
    sessions: AtomicUsize,
    landed: AtomicUsize,
    killed: AtomicUsize,
    bad: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn count(&self, f: &Finished) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        match (f.code(), interleaved(f)) {
            (Some(0), None) => {
                self.landed.fetch_add(1, Ordering::Relaxed);
            }
            // Refused: another session was writing the file.
            (Some(5), None) => {}
            _ => self.bad.lock().expect("the tally").push(f.stderr.clone()),
        }
    }
}

#[test]
fn killed_and_resent_senders_on_shared_names_never_mix_or_lose_a_part_file() {
    const LOOPS: usize = 6;
    let work = tempfile::tempdir().expect("tempdir");
    let src = subdir(work.path(), "src");
    let mut rng = Rng::new(27);
    let sources: Vec<(PathBuf, Vec<u8>)> = (0..8)
        .map(|i| {
            let path = src.join(format!("f{i}.bin"));
            let len = rng.range(MIB as u64 / 2, 3 * MIB as u64) as usize;
            let data = write_random_file(&path, len, 100 + i);
            (path, data)
        })
        .collect();
    let dst = subdir(work.path(), "dst");
    let mut recv = Receiver::start(&dst, &["--keep-open", "--force", "--quiet"]);
    let dest = recv.dest();
    let (stop, tally) = (AtomicBool::new(false), Tally::default());
    let started = Instant::now();
    thread::scope(|scope| {
        for start in 0..LOOPS {
            let (sources, dest, stop, tally) = (&sources, &dest, &stop, &tally);
            scope.spawn(move || sender_loop(sources, dest, start, stop, tally));
        }
        // The soak's length: long enough for the race to have shown (it did, within it).
        thread::sleep(Duration::from_secs(45));
        stop.store(true, Ordering::Relaxed);
    });
    let bad = tally.bad.lock().expect("the tally");
    let (sessions, landed) =
        (tally.sessions.load(Ordering::Relaxed), tally.landed.load(Ordering::Relaxed));
    eprintln!(
        "{sessions} sessions ({landed} landed, {} killed and sent again) in {:?}",
        tally.killed.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(bad.is_empty(), "{} of {sessions} sessions went wrong:\n{}", bad.len(), bad.join("\n"));
    assert!(landed > 0, "no session landed a file");
    // Whatever landed is the sender's file, byte for byte.
    for (path, data) in &sources {
        let name = path.file_name().expect("a name");
        if dst.join(name).exists() {
            assert_file_holds(&dst.join(name), data, "a file sent by racing sessions");
        }
    }
    assert!(!final_names(&dst).is_empty());
    recv.process().signal(Signal::SIGTERM);
    assert_no_panic(&recv.wait_for(Duration::from_secs(15)), "receiver");
}

/// A session that opened a part file by its name just before the session holding it renamed it
/// into place must not lock that file (now the final one) and write into it. Every `flock` of
/// the receiver is delayed by a second (strace), so that the first session renames its file
/// while the second waits for the lock on the same inode; the second then takes a part file of
/// its own, and each session lands its whole file in turn.
#[test]
fn a_part_file_renamed_into_place_while_another_session_waits_for_its_lock_is_not_written() {
    const DELAY: Duration = Duration::from_secs(1);
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    // Each thread's first flock: the lock, not the unlock that follows it.
    let inject = format!("inject=flock:delay_enter={}:when=1", DELAY.as_micros());
    let extra = ["--keep-open", "--force"];
    let Some(recv) = Receiver::faulted(&inject, &dst, &extra) else { return };
    let (a_data, b_data) = (pseudo_random(MIB, 1), pseudo_random(MIB, 2));
    let entry = || vec![file_entry(b"same.bin", Some(MIB as u64))];
    // A starts its file and stops halfway: its part file exists, its lock is on the way.
    let mut a = zcp_client(recv.addr());
    offer(&mut a, entry());
    let start = protocol::Message::FileStart { index: 0, offset: 0 };
    protocol::write_message(&mut a, &start).expect("A's FILE_START");
    std::io::Write::write_all(&mut a, &a_data[..MIB / 2]).expect("A's first half");
    wait_until(Duration::from_secs(20), "A's part file", || part_of(&dst, "same.bin").exists());
    // Not synchronisation: B must open the part file by name before A's lock (and then its
    // rename) comes, and ask for the lock only after A's rename.
    thread::sleep(DELAY / 2);
    let b = thread::spawn({
        let (addr, b_data) = (recv.addr(), b_data.clone());
        move || {
            let mut b = zcp_client(addr);
            offer(&mut b, vec![file_entry(b"same.bin", Some(MIB as u64))]);
            send_file(&mut b, 0, 0, &b_data);
            finish(&mut b)
        }
    });
    std::io::Write::write_all(&mut a, &a_data[MIB / 2..]).expect("A's second half");
    end_file(&mut a, &a_data);
    let a_summary = finish(&mut a);
    let b_summary = match b.join() {
        Ok(summary) => summary,
        Err(_) => panic!("B's session failed: {:#?}", recv.kill()),
    };
    for (summary, who) in [(&a_summary, "A"), (&b_summary, "B")] {
        let ok = summary.verdicts.iter().all(|v| v.status == protocol::VerdictStatus::Ok);
        assert!(ok && summary.verdicts.len() == 1, "{who}: {summary:?}");
    }
    assert_file_holds(
        &dst.join("same.bin"),
        &b_data,
        "the file of the session that placed it last",
    );
    assert!(!part_of(&dst, "same.bin").exists(), "a part file left behind");
    // Under strace a signal would reach strace, not the receiver.
    let received = recv.kill();
    assert_no_panic(&received, "receiver");
    assert!(!received.stderr.contains("No such file"), "{}", received.stderr);
}
