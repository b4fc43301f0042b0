//! Sessions racing for one target on one `--keep-open --force` receiver: the plan hashes a
//! resume's prefix under the part file's lock, the writes and the rename are done under that
//! same lock, and a session never takes a lock on a part file that was moved away. So two
//! senders of different contents to one name end with one sender's file, byte for byte, and a
//! soak of senders killed with SIGKILL and sent again ends with no checksum mismatch and no
//! part file missing at its rename.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::util::{
    Finished, Process, Receiver, Rng, assert_file_holds, assert_no_panic, final_names, send_cmd,
    subdir, write_random_file,
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
