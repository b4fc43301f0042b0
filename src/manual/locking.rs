//! # One target, one session at a time
//!
//! A receiver with `--keep-open` serves many sessions at once, and two of them may offer the
//! same name: two senders of one tree, or a sender killed and sent again while its first
//! session still winds down. Per target, planning, writing and placing are one critical
//! section, guarded by the exclusive `flock(2)` lock on the target's part file
//! (`.NAME.zcp-part`, `disk::part`).
//!
//! ## The rules
//!
//! 1. **A lock is only taken on the file under the part name.** After `flock` succeeds, the
//!    locked descriptor's device and inode are compared with what the part name leads to
//!    (`fstatat`, not following links). If they differ, the previous holder renamed the file
//!    into place (or removed it) between our `open` and our `flock`; the lock guards nothing,
//!    so the name is opened and locked again (a few times; each retry follows a finished
//!    rename).
//! 2. **Only the holder moves a part file.** Every rename into place and every removal of a
//!    part file (a checksum mismatch, a failed HTTP upload, a file too large for the file
//!    system) is done while its lock is held, and the lock is released only after the name is
//!    in place: the `LockedPart` lives until `commit` (or, with `--fsync`, the barrier's
//!    `place`) has returned.
//! 3. **A resume's prefix is hashed under the lock that writes after it.** The plan locks an
//!    existing part file before it reads a byte of it, hashes the prefix it offers, and keeps
//!    the lock (`PlanLock`, in the plan's `Decision::Receive`) until the file's turn; the
//!    writes start from that very descriptor. A file written from offset 0 needs no prefix:
//!    it is locked when its turn comes (created with `O_EXCL`, or the existing part file
//!    locked by rule 1) and cut to length 0 under the lock.
//! 4. **A busy part file is refused, never waited for.** A session holds several locks at
//!    once (one per resumed file of its plan), so waiting could deadlock two sessions that
//!    each hold what the other wants. A part file another session holds is refused for that
//!    file at plan time ("another session is writing it; send again once it is done"), or,
//!    when the other session took it after the plan, the session is refused at that file;
//!    nothing of it was written.
//!
//! ## Why the final file is one sender's verified bytes
//!
//! From rules 1 and 2, while a session holds a part file's lock, the part name leads to that
//! file and no other session writes it or moves it. From rule 3, the prefix a resume skips is
//! the prefix the sender's checksum covered. So the bytes renamed into place are exactly the
//! bytes that session hashed and checked against its sender's digest, and the rename happens
//! before any other session can lock the name. A second session either finished before, or
//! starts after, and its rename (with `--force`) replaces the whole file.
//!
//! Only zcp sessions keep these rules. Someone else who may write the directory can still
//! rename or remove a part file under a lock; so a held part file is checked to be still under
//! its name when its writes start and right before its rename, and refused ("it was replaced
//! by a symbolic link during the transfer") otherwise.
//!
//! ## Bounds
//!
//! A plan holds at most 256 part files locked (one descriptor each, from the plan until the
//! file's turn); a part file past that is sent whole instead of resumed.
//!
//! ## Tested by
//!
//! `races::a_part_file_renamed_into_place_while_another_session_waits_for_its_lock_is_not_written`
//! forces rule 1's case with every thread's first `flock` delayed by a second (strace): before
//! the rule, the second session locked the renamed file, wrote into the final file and failed
//! with "moving .same.bin.zcp-part into place: No such file or directory".
//! `races::killed_and_resent_senders_on_shared_names_never_mix_or_lose_a_part_file`: six
//! sender loops over eight 0.5-3 MiB files on one `--keep-open --force` receiver, one send in
//! four killed with SIGKILL and sent again, for 45 s. Before these rules: 84 of 1,008 sessions
//! ended in "checksum mismatch"; with them, 0 of 1,701 (about a third refused as busy).
