//! Writes verified small files on two threads of their own, so that creating files, the
//! receiver's costliest work in a tree of small files (a create, a write, a link and a close
//! each, all in the kernel), overlaps reading and checking the next ones. Where and how a file is
//! written is `dest`'s business; this only queues the work and brings its failures and refusals
//! back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, Scope, ScopedJoinHandle};

use crate::disk::{NameTaken, Target};
use crate::error::SessionError;
use crate::protocol::Entry;

/// Threads that write. Two measured 20% faster than one on a tree of 4 KiB files (the kernel's
/// work per file runs in parallel even within one directory); more would only queue on the
/// directory's lock.
const WRITERS: usize = 2;
/// A group is handed over once it holds this many files or bytes: one wake-up per group.
const GROUP_FILES: usize = 32;
const GROUP_BYTES: usize = 256 << 10;
/// Groups waiting, at most: with the groups being written, about 2 MiB of file data.
const QUEUE: usize = 4;

/// One file to write: where, its entry (mode, mtime), and its bytes, already checked.
pub struct Job<'a> {
    /// Where it goes.
    pub target: &'a Target,
    /// The offered entry: its mode and mtime.
    pub entry: &'a Entry,
    /// The whole file, checked.
    pub body: Vec<u8>,
}

/// What became of one written file, short of a failure that ends the session.
pub enum Written {
    /// Written (in place, or held for `--fsync`'s barrier) in this many `write` calls.
    Placed {
        /// The `write` calls it took.
        calls: u64,
    },
    /// Written and checked, but its name was taken meanwhile: refused alone, for this reason.
    NameTaken {
        /// The refusal in words.
        reason: String,
    },
}

/// What the writing threads did, once every queued file is written.
#[derive(Debug, Default)]
pub struct Finished {
    /// The `write` calls they took.
    pub calls: u64,
    /// The files they refused, their names taken meanwhile.
    pub refused: Vec<NameTaken>,
}

impl Finished {
    fn add(&mut self, other: Finished) {
        self.calls += other.calls;
        self.refused.extend(other.refused);
    }
}

/// The writing threads of one session, started with its first file. `write` writes one job and
/// says what became of it.
pub struct Writer<'scope, 'env, F> {
    scope: &'scope Scope<'scope, 'env>,
    write: &'env F,
    group: Vec<Job<'env>>,
    group_bytes: usize,
    running: Option<Running<'scope, 'env>>,
}

struct Running<'scope, 'env> {
    queue: SyncSender<Vec<Job<'env>>>,
    threads: Vec<ScopedJoinHandle<'scope, anyhow::Result<Finished>>>,
    /// Set by a thread whose write failed: the others stop, and so does the session.
    failed: Arc<AtomicBool>,
}

impl<'scope, 'env, F> Writer<'scope, 'env, F>
where
    F: Fn(&Job<'env>) -> anyhow::Result<Written> + Sync,
{
    /// A writer whose threads live in `scope` and write each file with `write`.
    pub fn new(scope: &'scope Scope<'scope, 'env>, write: &'env F) -> Self {
        Writer { scope, write, group: Vec::new(), group_bytes: 0, running: None }
    }

    /// Queues a file, waiting while the queue is full. A failure of an earlier file comes back
    /// here, and the writer stops.
    pub fn write(&mut self, job: Job<'env>) -> anyhow::Result<()> {
        self.group_bytes += job.body.len();
        self.group.push(job);
        if self.group.len() < GROUP_FILES && self.group_bytes < GROUP_BYTES {
            return Ok(());
        }
        self.hand_over()
    }

    /// Waits until every queued file is written; returns what the threads did, or the first
    /// failure.
    pub fn finish(&mut self) -> anyhow::Result<Finished> {
        if !self.group.is_empty() {
            self.hand_over()?;
        }
        let mut finished = Finished::default();
        let Some(Running { queue, threads, .. }) = self.running.take() else { return Ok(finished) };
        drop(queue);
        let mut first_error = None;
        for thread in threads {
            match thread.join() {
                Ok(Ok(done)) => finished.add(done),
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => {
                    let e = anyhow::anyhow!("the file writer failed unexpectedly");
                    first_error = first_error.or(Some(e));
                }
            }
        }
        first_error.map_or(Ok(finished), Err)
    }

    /// Sends the group gathered so far to the threads.
    fn hand_over(&mut self) -> anyhow::Result<()> {
        let group = std::mem::take(&mut self.group);
        self.group_bytes = 0;
        let running = match &mut self.running {
            Some(running) => running,
            None => self.running.insert(self.start()?),
        };
        if running.failed.load(Ordering::Relaxed) || running.queue.send(group).is_err() {
            return Err(self
                .finish()
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("the file writers stopped early")));
        }
        Ok(())
    }

    /// Starts the threads: as many as the system grants, at least one.
    fn start(&self) -> anyhow::Result<Running<'scope, 'env>> {
        let (queue, groups) = sync_channel::<Vec<Job<'env>>>(QUEUE);
        let groups = Arc::new(Mutex::new(groups));
        let failed = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for _ in 0..WRITERS {
            let (groups, failed, write) = (Arc::clone(&groups), Arc::clone(&failed), self.write);
            let spawned = thread::Builder::new()
                .name("zcp-writer".into())
                .spawn_scoped(self.scope, move || work(&groups, &failed, write));
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(cause) if threads.is_empty() => {
                    let thread = "a thread to write files";
                    return Err(SessionError::ThreadRefused { thread, cause }.into());
                }
                Err(_) => break,
            }
        }
        Ok(Running { queue, threads, failed })
    }
}

/// One writing thread: takes groups until the queue closes or a write failed anywhere.
fn work<'env>(
    groups: &Mutex<Receiver<Vec<Job<'env>>>>,
    failed: &AtomicBool,
    write: &(impl Fn(&Job<'env>) -> anyhow::Result<Written> + Sync),
) -> anyhow::Result<Finished> {
    let mut done = Finished::default();
    loop {
        let next = match groups.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return Err(anyhow::anyhow!("the file writers' queue was poisoned")),
        };
        let Ok(group) = next else { return Ok(done) };
        for job in &group {
            if failed.load(Ordering::Relaxed) {
                return Ok(done);
            }
            match write(job) {
                Ok(Written::Placed { calls }) => done.calls += calls,
                Ok(Written::NameTaken { reason }) => {
                    done.refused.push(NameTaken { target: job.target.clone(), reason });
                }
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::path::Path;
    use std::sync::Mutex;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::{GROUP_FILES, Job, Writer, Written};
    use crate::disk::Target;
    use crate::disk::dirs::Dirs;
    use crate::protocol::{Entry, EntryKind};

    /// A target the jobs point at; the tests' `write` never touches it.
    fn target() -> Target {
        let root = File::open("/").expect("opening /");
        Target::new(Dirs::new(root.into()), Path::new("/").into(), b"f", 0o644)
    }

    fn entry() -> Entry {
        let name = b"f".to_vec();
        Entry {
            kind: EntryKind::File,
            name,
            size: Some(1),
            mode: 0o644,
            mtime_sec: 0,
            mtime_nsec: 0,
        }
    }

    #[test]
    fn a_group_goes_to_the_threads_once_it_holds_32_files_and_every_call_is_counted() {
        let (target, entry) = (target(), entry());
        let written = Mutex::new(0usize);
        let write = |_: &Job<'_>| {
            *written.lock().expect("the count") += 1;
            anyhow::Ok(Written::Placed { calls: 2 })
        };
        thread::scope(|scope| {
            let mut writer = Writer::new(scope, &write);
            for queued in 1..GROUP_FILES {
                let job = Job { target: &target, entry: &entry, body: vec![7] };
                writer.write(job).expect("queueing a file");
                assert_eq!(writer.group.len(), queued, "handed over before the group was full");
                assert!(writer.running.is_none(), "threads started before a group was full");
            }
            writer.write(Job { target: &target, entry: &entry, body: vec![7] }).expect("the 32nd");
            assert!(writer.group.is_empty(), "a group of 32 files was kept back");
            assert!(writer.running.is_some(), "no thread took the group");
            writer.write(Job { target: &target, entry: &entry, body: vec![7] }).expect("the 33rd");
            assert_eq!(writer.finish().expect("writing").calls, 2 * (GROUP_FILES as u64 + 1));
        });
        assert_eq!(*written.lock().expect("the count"), GROUP_FILES + 1, "files written");
    }

    #[test]
    fn a_group_goes_to_the_threads_once_it_holds_256_kib() {
        let (target, entry) = (target(), entry());
        let write = |job: &Job<'_>| anyhow::Ok(Written::Placed { calls: job.body.len() as u64 });
        thread::scope(|scope| {
            let mut writer = Writer::new(scope, &write);
            let job = Job { target: &target, entry: &entry, body: vec![1; (256 << 10) - 1] };
            writer.write(job).expect("queueing a file");
            assert_eq!(writer.group.len(), 1, "handed over a group short of 256 KiB");
            writer.write(Job { target: &target, entry: &entry, body: vec![2] }).expect("queueing");
            assert!(writer.group.is_empty(), "a group of 256 KiB was kept back");
            assert_eq!(writer.group_bytes, 0, "the next group starts empty");
            assert_eq!(writer.finish().expect("writing").calls, 256 << 10);
        });
    }

    #[test]
    fn a_failed_write_comes_back_when_the_next_group_is_handed_over() {
        let (target, entry) = (target(), entry());
        let write = |job: &Job<'_>| match job.body.as_slice() {
            b"bad" => Err(anyhow::anyhow!("writing f: disk on fire")),
            _ => anyhow::Ok(Written::Placed { calls: 1 }),
        };
        let job = |body: &[u8]| Job { target: &target, entry: &entry, body: body.to_vec() };
        thread::scope(|scope| {
            let mut writer = Writer::new(scope, &write);
            writer.write(job(b"bad")).expect("queueing the bad file");
            for _ in 1..GROUP_FILES {
                writer.write(job(b"good")).expect("queueing a file");
            }
            let failed = &writer.running.as_ref().expect("threads took the group").failed;
            let bound = Instant::now() + Duration::from_secs(30);
            while !failed.load(super::Ordering::Relaxed) {
                assert!(Instant::now() < bound, "the bad file never failed");
                thread::sleep(Duration::from_millis(1));
            }
            for _ in 1..GROUP_FILES {
                writer.write(job(b"good")).expect("queueing a file before the next hand-over");
            }
            let err = writer.write(job(b"good")).expect_err("the failure came back");
            assert!(format!("{err:#}").contains("disk on fire"), "{err:#}");
            assert!(writer.running.is_none(), "the writer stopped");
        });
    }

    #[test]
    fn a_file_whose_name_was_taken_comes_back_refused_and_the_others_are_written() {
        let (target, entry) = (target(), entry());
        let write = |job: &Job<'_>| match job.body.as_slice() {
            b"taken" => anyhow::Ok(Written::NameTaken { reason: "f appeared".into() }),
            _ => anyhow::Ok(Written::Placed { calls: 1 }),
        };
        let job = |body: &[u8]| Job { target: &target, entry: &entry, body: body.to_vec() };
        let finished = thread::scope(|scope| {
            let mut writer = Writer::new(scope, &write);
            for body in [&b"good"[..], b"taken", b"good"] {
                writer.write(job(body)).expect("queueing a file");
            }
            writer.finish().expect("a taken name does not fail the writer")
        });
        assert_eq!(finished.calls, 2, "the other files were written");
        let refused: Vec<_> = finished.refused.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(refused, ["f appeared"]);
        assert_eq!(finished.refused[0].target.shown(), target.shown());
    }
}
