//! The data paths, in detail: what each one does, when `auto` falls back, how the checksum reads
//! the bytes once more. The code is in `copy` and `checksum`.
//!
//! | path | sender | receiver | copies through user space |
//! |---|---|---|---|
//! | `sendfile` | `sendfile(2)` file→socket at explicit offsets, calls of at most 64 MiB | — | none |
//! | `splice` | `splice(2)` file→pipe→socket (pipe grown to 1 MiB with `F_SETPIPE_SZ`, or whatever the kernel grants) | `splice(2)` socket→pipe→file at explicit offsets | none |
//! | `buffered` | an explicit `read(2)`/`write(2)` loop with `--buffer-size` | the same | two per byte |
//!
//! - `auto` on the sender: `sendfile`; if the kernel answers `EINVAL`/`ENOSYS`/`EOPNOTSUPP` before the
//!   first byte moved, `splice`; then `buffered`. A source of unknown length (a pipe, a procfs or sysfs
//!   file, which report a size of 0) cannot go by `sendfile` (its chunks need their length written
//!   first), so `auto` starts at `splice` for it, after asking the kernel for the errno it would give.
//! - `auto` on the receiver: `splice`, after a probe (a non-blocking splice from the empty pipe into the
//!   file: `EAGAIN` means the file takes splice writes, `EINVAL` means it does not) so that no byte is
//!   taken off the socket by a path that then cannot write it.
//! - The buffered path never uses `std::io::copy`: on Linux it silently switches to
//!   `copy_file_range`/`sendfile`/`splice` for some descriptor pairs, which would make the report lie.
//! - `auto` and `buffered` batch files up to 64 KiB (the README, "Many files"): one `pread` per file and one `write`
//!   per 256 KiB on the sender, one `recv` per many files and one `write` per file on the receiver,
//!   the checksum taken from the bytes in hand.
//! - Syscall counts are counted at each call, and the path named is the one
//!   `strace -e trace=sendfile,splice,pread64,read,write,sendto,recvfrom` shows (tests check exactly
//!   this, for one large file and for a tree of small ones).
//! - Checksum: xxh3-128 over each whole file, sent after its data and checked by the receiver.
//!   zcp computes it with its own streaming xxh3 (`src/checksum/`): AVX2 where the CPU has it
//!   (picked at run time; SSE2 otherwise), and sparse files' holes hashed without reading zeros.
//!   Its digests are bit for bit those of the `xxhash-rust` crate (the tests compare the two over
//!   every length up to 4 KiB, random pieces and zero runs), so it is the same xxh3-128 as
//!   the reference xxHash's XXH128 (`xxhsum -H2`) and as zcp's earlier builds. On the
//!   zero-copy paths the bytes never enter user space, so the checksum has to read them once more,
//!   and that read should be the only one. The sender reads its source back from the page cache
//!   with `pread` (256 KiB at a time), in a second thread while `sendfile` pushes the same pages
//!   (files up to 1 MiB are hashed afterwards by the copying thread: a thread costs more than that).
//!   The receiver splices each run into the file in 256 KiB pieces and hashes each piece right after
//!   it landed, from a read-only shared mapping of the file (4 MiB windows populated with
//!   `madvise(MADV_POPULATE_READ)` and unmapped when hashed, so RSS stays flat), while its pages are
//!   still in the CPU cache from the write (the `tee(2)` copy it used to read cost a
//!   second copy of every byte, and was its first touch). Into standard output, which cannot be
//!   read back, it still duplicates each run with `tee` and reads the copy. These calls are
//!   reported apart, as `checksum_syscalls`. The buffered path hashes what passes through its
//!   buffer. Raw mode shows no checksum, so neither end computes one.
//! - `--limit-rate` keeps each data call to a tenth of a second's worth and sleeps between calls, so the
//!   average holds the limit while the path stays zero-copy.
//! - On systems other than Linux only the buffered path is wired up in this build (the fallback says so).
