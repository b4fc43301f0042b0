//! Writing safely: part files, atomic placement, `--fsync`, and receiving onto file systems that
//! lack what that uses. The code is in `disk`.
//!
//! Each file is written to `.NAME.zcp-part` beside its target and renamed into place only after its
//! checksum matched — without `--force` by `renameat2(RENAME_NOREPLACE)`, so a file that appeared
//! meanwhile is never replaced. A failed or interrupted transfer never leaves a file under the final
//! name; its part file stays for resume. A checksum mismatch removes the part file. A small file
//! that arrived whole and checked skips the part file: it is written into an unnamed file
//! (`O_TMPFILE`) and linked in under its name (`linkat`, which never replaces), so it appears
//! complete or not at all, and a crash leaves nothing to clean up (it is small enough to send
//! again). Where the file system has no `O_TMPFILE`, or with `--force`, it takes the part file.
//! Directory modes and mtimes are applied after their contents landed. Modes: the offered
//! permission bits less the receiver's umask (read once at start), so a sender's 0777 lands as
//! 0755 under umask 022; setuid, setgid and sticky bits are never applied.
//!
//! Without `--fsync` nothing is synced: after a power loss a renamed file may hold pages that
//! never reached the disk (zeros, or nothing). With `zcp recv --fsync` the receiver puts up one
//! barrier for a whole session instead of a sync per file:
//!
//! 1. every file is written and checked as usual, then held open without its final name (a part
//!    file, keeping its lock, or an unnamed small file), with its mode and mtime already set;
//! 2. `syncfs(2)` once per file system the files are on: the data and inodes of every held file
//!    (and of a resumed file's earlier part) reach the disk in one call;
//! 3. then each file gets its name (`renameat2`, or `linkat` for an unnamed file);
//! 4. after the last one, `fsync(2)` on every directory that gained a name, once each: the
//!    directories holding new files, the parents of directories the session created, and the
//!    parent of an `--output` directory it created.
//!
//! The sender's verdicts (and its exit 0) come only after step 4, so a sender that saw `xxh3 ok`
//! knows the receiver's files survive a power loss from then on. A session holds at most a few
//! thousand files open at once (the descriptor limit, raised to its hard limit, shared by
//! `--max-conns` sessions); a larger tree takes one barrier per that many files. Guaranteed, on a
//! file system and disk that honour `syncfs`/`fsync` (ext4, xfs, btrfs; a disk cache without
//! power-loss protection that ignores flushes defeats any of this): a file's name never appears
//! before its data is durable, and every name is durable when the session reports success. Not
//! guaranteed: files of a session that failed midway (the ones already named are durable only if
//! their barrier ran; the rest stay part files to resume, or vanish when they were small unnamed
//! files, and are sent again); anything the session did not write. If a directory sync of step 4
//! fails, every file is already in place and whole, so both ends exit 7 with `the files are in
//! place, but not known to be durable (--fsync): syncing DIR: EIO` (with `--http` the upload's
//! answer is `500 saved NAME, but …`). `syncfs` also writes other
//! programs' dirty data on the same file system, so on a busy disk the barrier can take longer
//! than this session's own bytes would (it is still one wait, not one per file). With `--events`
//! a receiver's `file_end` comes when the file is checked; with `--fsync` its name appears at the
//! barrier. `zcp bench --fsync` measures its cost.
//!
//! # Receiving onto vfat, NFS and other file systems
//!
//! A USB stick (vfat, exFAT), NFS, CIFS and most FUSE file systems lack some of what the above
//! uses; `zcp recv` adapts and says so where the result differs:
//!
//! - No `O_TMPFILE` (all of these): small files go through part files like large ones.
//! - No `RENAME_NOREPLACE` (the NFS client, FUSE without `rename2`): a file is put in place by a
//!   hard link and the part's name removed; where there are no hard links either (FAT, exFAT), by
//!   a check that the name is free, then a plain rename. Only in that last case could a file
//!   created under the same name by another program in between be replaced.
//! - No Unix modes (FAT refuses `chmod` with EPERM, fusefat with ENOSYS): files and directories
//!   land with the modes the mount gives, and the receiver warns once a session: `zcp: warning:
//!   OUTPUT: the file system keeps no Unix modes (chmod: Operation not permitted): what landed has
//!   the modes it gives`. exFAT through FUSE takes `chmod` and ignores it (every file shows 0777).
//! - Coarse mtimes (FAT 2 s, exFAT 10 ms, exfat-fuse 1 s): the mtime lands cut to that grain, and
//!   `--skip-existing` takes an mtime so cut as the same, so copying a tree onto a stick again
//!   skips what is there. Only there: on FAT, exFAT and FUSE file systems (`statfs`); elsewhere
//!   (ext4, tmpfs, xfs, …) an mtime must match to the nanosecond.
//! - Names that differ only in case are one name there. Of `Big` and `BIG` the second is refused
//!   when it is to be put in place, and the session goes on with the rest (both ends exit 5 at the
//!   end): `receiver refused DIR/Big: a file exists under that name: BIG (this file system does
//!   not tell names apart by case); what arrived is kept in PATH/.Big.zcp-part, --force replaces
//!   the file` (a small file's bytes are not kept: the sender sends them again). With `--fsync`
//!   the same, at the barrier that gives the names. A file that came under a name during the
//!   transfer, on any file system, is refused the same way: `a file appeared under that name
//!   during the transfer`.
//! - No symlinks: none are sent anyway (see `zcp send`), and hard links are not preserved.
//! - At most 4 GiB - 1 byte a file (FAT; not exFAT): the write past it fails with EFBIG and the
//!   session stops with `writing NAME: the file system takes no file this large (FAT holds at most
//!   4 GiB - 1 byte); nothing kept: File too large` (exit 7); its part file is removed, as no
//!   resume onto that file system could finish it. Files before it stay in place. A receiver
//!   under a file size limit (`ulimit -f`) gets the same EFBIG at that limit, on any file system;
//!   it says `writing NAME: past this process's file size limit (ulimit -f: N bytes); partial data
//!   kept in PART` (exit 7) and keeps the part file, so a resume under a higher limit finishes it.
//!
//! Resume and `--fsync` work as anywhere (`syncfs` is as durable as the file system makes it).
//! Tested end to end on an exFAT image through FUSE (`exfat-fuse`, on a loop device;
//! `tests/foreign_fs.rs`), with strace standing in for a file system that refuses `O_TMPFILE`,
//! `chmod` (EPERM) and large writes (EFBIG); by hand on a FAT32 image through `fusefat`. Not on the
//! kernel's own vfat, exfat or NFS clients (the development VM has none of their modules).
//! `fusefat` itself returns stale bytes when a file is read back through the descriptor that
//! wrote it: zcp's receiver hashes a spliced file from the page cache, so there every large file
//! ends in a checksum mismatch (exit 6, nothing saved); `zcp recv --method buffered`, which hashes
//! the bytes as they arrive, lands them.
