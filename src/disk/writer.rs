//! Writes verified small files on two threads of their own, so that creating files, the
//! receiver's costliest work in a tree of small files (a create, a write, a link and a close
//! each, all in the kernel), overlaps reading and checking the next ones. Where and how a file is
//! written is `dest`'s business; this only queues the work and brings its failures back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, Scope, ScopedJoinHandle};

use crate::disk::Target;
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
    pub target: &'a Target,
    pub entry: &'a Entry,
    pub body: Vec<u8>,
}

/// The writing threads of one session, started with its first file. `write` writes one job and
/// returns the `write` calls it took.
pub struct Writer<'scope, 'env, F> {
    scope: &'scope Scope<'scope, 'env>,
    write: &'env F,
    group: Vec<Job<'env>>,
    group_bytes: usize,
    running: Option<Running<'scope, 'env>>,
}

struct Running<'scope, 'env> {
    queue: SyncSender<Vec<Job<'env>>>,
    threads: Vec<ScopedJoinHandle<'scope, anyhow::Result<u64>>>,
    /// Set by a thread whose write failed: the others stop, and so does the session.
    failed: Arc<AtomicBool>,
}

impl<'scope, 'env, F> Writer<'scope, 'env, F>
where
    F: Fn(&Job<'env>) -> anyhow::Result<u64> + Sync,
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

    /// Waits until every queued file is written; returns the `write` calls they took, or the
    /// first failure.
    pub fn finish(&mut self) -> anyhow::Result<u64> {
        if !self.group.is_empty() {
            self.hand_over()?;
        }
        let Some(Running { queue, threads, .. }) = self.running.take() else { return Ok(0) };
        drop(queue);
        let mut calls = 0;
        let mut first_error = None;
        for thread in threads {
            match thread.join() {
                Ok(Ok(n)) => calls += n,
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => {
                    let e = anyhow::anyhow!("the file writer failed unexpectedly");
                    first_error = first_error.or(Some(e));
                }
            }
        }
        first_error.map_or(Ok(calls), Err)
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
                Err(e) if threads.is_empty() => {
                    return Err(anyhow::Error::from(e).context("starting a thread to write files"));
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
    write: &(impl Fn(&Job<'env>) -> anyhow::Result<u64> + Sync),
) -> anyhow::Result<u64> {
    let mut calls = 0;
    loop {
        let next = match groups.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return Err(anyhow::anyhow!("the file writers' queue was poisoned")),
        };
        let Ok(group) = next else { return Ok(calls) };
        for job in &group {
            if failed.load(Ordering::Relaxed) {
                return Ok(calls);
            }
            match write(job) {
                Ok(n) => calls += n,
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }
}
