//! The whole-file checksums the sessions of a star share: one slot per manifest entry. The
//! first session to reach a file starts its xxh3-128 on a thread of its own, not tied to that
//! session (a slow or failed receiver does not hold the others back); every session waits for
//! the same digest at the file's end. The digest is of the whole file from byte 0, so it is
//! the same whatever each receiver's resume offset.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use crate::checksum::Xxh3;
use crate::copy;
use crate::copy::holes::Run;
use crate::report::star::HashedOnce;

/// Bytes hashed between two looks at whether the star is over.
const STEP: u64 = 4 << 20;
/// How often a waiting session looks at its own stop conditions (a signal).
const POLL: Duration = Duration::from_millis(100);

/// The shared checksums of one star, and what computing them took.
pub struct Digests {
    slots: Vec<Arc<Slot>>,
    /// Set when the star is over: hash threads still running stop.
    over: Arc<AtomicBool>,
    /// Files hashed, bytes hashed and the reads it took, over the star.
    hashed: Arc<Hashed>,
}

/// What hashing took over the star, counted as the threads finish.
#[derive(Debug, Default)]
struct Hashed {
    files: AtomicU64,
    bytes: AtomicU64,
    calls: AtomicU64,
}

#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Clone, Default)]
enum State {
    /// No session has reached the file yet.
    #[default]
    Idle,
    /// A thread is hashing it.
    Hashing,
    /// The digest.
    Done(u128),
    /// The thread failed: the next session to wait starts it again (once per session).
    Failed(String),
}

impl Digests {
    /// Empty slots for a manifest of `entries`.
    pub fn new(entries: usize) -> Digests {
        Digests {
            slots: (0..entries).map(|_| Arc::default()).collect(),
            over: Arc::default(),
            hashed: Arc::default(),
        }
    }

    /// Starts hashing the first `size` bytes of entry `index`'s `file` unless a session did
    /// already: the first to reach a file calls this before its bytes move.
    pub fn start(&self, index: usize, file: &File, size: u64) {
        let Some(slot) = self.slots.get(index) else { return };
        let mut state = lock(slot);
        if matches!(*state, State::Idle) {
            *state = self.spawn(slot, file, size);
        }
    }

    /// The digest of entry `index`, waiting for its thread; `check` runs while waiting (a
    /// signal stops the wait). A failed hash is started again, once, by this session.
    pub fn wait(
        &self,
        index: usize,
        file: &File,
        size: u64,
        check: &mut dyn FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<u128> {
        let slot = self.slots.get(index).ok_or_else(|| anyhow::anyhow!("no checksum slot"))?;
        let mut retried = false;
        let mut state = lock(slot);
        loop {
            match &*state {
                State::Done(digest) => return Ok(*digest),
                State::Failed(e) if retried => return Err(anyhow::anyhow!("{e}")),
                State::Failed(_) | State::Idle => {
                    retried = true;
                    *state = self.spawn(slot, file, size);
                }
                State::Hashing => {
                    drop(state);
                    check()?;
                    state = lock(slot);
                    if matches!(*state, State::Hashing) {
                        state = slot
                            .changed
                            .wait_timeout(state, POLL)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            }
        }
    }

    /// What hashing took so far: each file once, unless a hash failed and was redone.
    pub fn hashed(&self) -> HashedOnce {
        let h = &self.hashed;
        HashedOnce {
            files: h.files.load(Ordering::Relaxed),
            bytes: h.bytes.load(Ordering::Relaxed),
            calls: h.calls.load(Ordering::Relaxed),
        }
    }

    /// Starts the thread that hashes `file` into `slot`; the state to record.
    fn spawn(&self, slot: &Arc<Slot>, file: &File, size: u64) -> State {
        let file = match file.try_clone() {
            Ok(file) => file,
            Err(e) => return State::Failed(format!("computing the checksum: {e}")),
        };
        let publish = Publish { slot: Arc::clone(slot), state: None };
        let (over, hashed) = (Arc::clone(&self.over), Arc::clone(&self.hashed));
        let spawned = thread::Builder::new()
            .name("zcp-hash".into())
            .spawn(move || hash_into(publish, &file, size, &over, &hashed));
        match spawned {
            Ok(_) => State::Hashing,
            Err(e) => State::Failed(format!("starting the checksum thread: {e}")),
        }
    }
}

impl Drop for Digests {
    fn drop(&mut self) {
        self.over.store(true, Ordering::Release);
    }
}

/// Hashes `file` up to `size` and publishes the digest (or why not) in the slot.
fn hash_into(mut publish: Publish, file: &File, size: u64, over: &AtomicBool, hashed: &Hashed) {
    let mut hasher = Xxh3::new();
    let mut calls = 0u64;
    // Holes are hashed as the zeros they read as, without reading them, as a single send does.
    let runs = match copy::holes::runs(file, 0, size) {
        Ok(Some(runs)) => runs,
        Ok(None) => vec![Run { hole: 0, at: 0, data: size }],
        Err(e) => {
            publish.state = Some(State::Failed(format!("finding the file's holes: {e}")));
            return;
        }
    };
    for run in runs {
        hasher.update_zeros(run.hole);
        let (mut pos, data_end) = (run.at, run.at + run.data);
        while pos < data_end {
            if over.load(Ordering::Acquire) {
                publish.state = Some(State::Failed("the star ended".into()));
                return;
            }
            let end = data_end.min(pos + STEP);
            match copy::hash_range(file, pos, end, &mut hasher) {
                Ok(n) => calls += n,
                Err(e) => {
                    publish.state = Some(State::Failed(format!("computing the checksum: {e}")));
                    return;
                }
            }
            pos = end;
        }
    }
    hashed.files.fetch_add(1, Ordering::Relaxed);
    hashed.bytes.fetch_add(size, Ordering::Relaxed);
    hashed.calls.fetch_add(calls, Ordering::Relaxed);
    publish.state = Some(State::Done(hasher.digest128()));
}

/// Puts a hash thread's result in its slot when the thread ends, however it ends: a thread
/// that panicked leaves `Failed`, never `Hashing`, so no session waits forever.
struct Publish {
    slot: Arc<Slot>,
    state: Option<State>,
}

impl Drop for Publish {
    fn drop(&mut self) {
        let result = self.state.take();
        let result = result.unwrap_or_else(|| State::Failed("the checksum thread died".into()));
        *lock(&self.slot) = result;
        self.slot.changed.notify_all();
    }
}

fn lock(slot: &Slot) -> MutexGuard<'_, State> {
    slot.state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sessions_share_one_digest_and_the_file_is_hashed_once() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 253) as u8).collect();
        file.write_all(&data).unwrap();
        let digests = Digests::new(2);
        let size = data.len() as u64;
        let got: Vec<u128> = thread::scope(|s| {
            let waits: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        digests.start(1, &file, size);
                        digests.wait(1, &file, size, &mut || Ok(())).unwrap()
                    })
                })
                .collect();
            waits.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let expected = crate::checksum::xxh3_128(&data);
        assert!(got.iter().all(|&d| d == expected), "{got:x?} vs {expected:x}");
        assert_eq!((digests.hashed().files, digests.hashed().bytes), (1, size));
    }

    #[test]
    fn a_failed_hash_is_started_again_by_the_next_waiter() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"short").unwrap();
        let digests = Digests::new(1);
        // The first start claims more bytes than the file has: that hash fails.
        digests.start(0, &file, 100);
        let first = digests.wait(0, &file, 100, &mut || Ok(()));
        assert!(first.is_err(), "a file shorter than its size cannot hash");
        *lock(&digests.slots[0]) = State::Failed("earlier failure".into());
        let again = digests.wait(0, &file, 5, &mut || Ok(())).unwrap();
        assert_eq!(again, crate::checksum::xxh3_128(b"short"));
    }
}
