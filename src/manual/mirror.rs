//! Mirroring (`zcp recv --mirror`): what it removes, when, and why no removal can reach outside
//! the destination. The code is in `recv::mirror` (when and what) and
//! `disk::prune` (how).
//!
//! ## What and when
//!
//! Like `rsync --delete`, `--mirror` works inside the directories the offer holds: for every
//! offered directory `D` (one the plan created or found under `--output`), each entry of `D`
//! whose path the offer does not hold is removed, with everything below it. Nothing else under
//! `--output` is touched: `zcp send ./photos` mirrors `DIR/photos`, not `DIR`, so one
//! receiving directory can collect several trees. The part file of an offered file
//! (`.NAME.zcp-part`) is kept, so a later resume still finds it.
//! The receiver does not know the sender's filters: an entry `zcp send --exclude` left out is
//! not in the offer, so it is removed (what `rsync --delete-excluded` does).
//!
//! Removal starts only when the session went through whole: every file arrived and its
//! xxh3-128 matched (or it was skipped as already there), no entry was refused, and the sender's
//! FINISH arrived. A session that breaks off, whose sender is killed, that sees a checksum
//! mismatch, or that refuses any entry removes nothing and says so. Removals come before the
//! SUMMARY frame, and each is listed in the receiver's summary, in `--json` (`removed`) and as a
//! `file_remove` event.
//!
//! ## Why a removal cannot reach outside the destination
//!
//! - The output directory is opened once and held by descriptor. Every offered directory is
//!   reached from it one component at a time with `openat(O_DIRECTORY | O_NOFOLLOW)`, and each
//!   component is a name the protocol's naming rule accepted (no `..`, no `/`, no empty
//!   component). A symlink anywhere on that path fails the open (`ELOOP`/`ENOTDIR`): the
//!   session ends with an error, and nothing more is removed.
//! - The names removed are the ones `getdents` lists in a directory held open: single
//!   components, never `.` or `..`. Each is examined with `fstatat(AT_SYMLINK_NOFOLLOW)` and
//!   removed with `unlinkat` relative to its parent's descriptor; neither follows a link in
//!   the last component, so a symlink (to a file or a directory, inside or outside) is removed
//!   as itself and what it points to is never read, listed or removed.
//! - A directory to remove is opened with `O_NOFOLLOW` from its parent's descriptor before its
//!   contents are removed. If it was replaced by a symlink after it was examined, the open fails
//!   and the link is removed as itself. Its contents are removed through that descriptor, then
//!   it is removed from its parent with `unlinkat(AT_REMOVEDIR)`.
//! - A directory on another device (a file system mounted inside the destination) is left as it
//!   is, with a warning, and so is anything more than 256 directories deep: removal stays on the
//!   destination's file system and its depth is bounded.
//! - The sender chooses nothing here but names in its offer, and an offered name can only keep
//!   an entry, never select one for removal: what is removed is what the receiver finds in its
//!   own directories.
//!
//! Not covered: another local user who can write inside the destination and moves one of its
//! directories elsewhere (`rename`) while the removal runs; the descriptor held follows the
//! directory, as `rm -r` would. Receive into a directory that untrusted users cannot write.
//! Sessions at once (`--keep-open`) into the same directories may remove each other's new
//! files: each mirrors its own offer.
