//! Sparse files: how holes cross as their data only. The code is in `copy::holes` and
//! `send::sparse`.
//!
//! A file with holes (a VM image, `truncate -s 3G`) crosses as its data only. Before sending a
//! file larger than 64 KiB, the sender asks the kernel where its data lies (`lseek` with
//! `SEEK_DATA`/`SEEK_HOLE`); when there are holes of 64 KiB or more, it sends the file as runs:
//! a 16-byte header (hole length, data length), then that data range by the same data path as
//! any file (`sendfile` per range, zero-copy). The receiver writes each range at its offset and
//! never writes the holes, then extends the file to its size, so the holes are holes again (the
//! allocation matches the source's within a few blocks). The summary and the JSON count them
//! apart: `received disk.img 64.03 MiB + 3.94 GiB of holes (not sent) in 0.61 s`, and
//! `hole_bytes` beside `bytes` (per file and in all).
//!
//! - The checksum still covers the whole logical file: each end hashes the data ranges it read
//!   or wrote and the holes as zeros (never reading them). Resume works as for any file: the
//!   part file (holes included) is hashed as it is, and the rest goes sparse again.
//! - `--no-sparse` on the sender sends every byte, holes as zeros, as before.
//! - Both ends must be this version or newer: the greeting says whether an end takes the sparse
//!   form (protocol flag `SPARSE`), and an older receiver is sent the file whole, as before.
//! - `--method buffered` sends each data range through its buffer, still skipping the holes; on
//!   a file system that does not report holes (`SEEK_DATA` unsupported) every byte is data and the
//!   file goes whole. Holes shorter than 64 KiB are sent as zeros (not worth a run), and a file in
//!   more than 65,536 pieces goes whole.
//! - Received into `--output -` the holes are written as zeros (a pipe has no holes). A file
//!   system at the receiver without holes (FAT) fills them with zeros on its own.
//! - Holes cost the checksum nothing worth measuring: a stripe of zeros adds a constant to xxh3's
//!   accumulators, so zcp's xxh3 hashes a hole block by block (1 KiB per eight additions and a
//!   scramble) without touching memory: 4 GiB of zeros in about 0.03 s on each end, where hashing
//!   real zeros took about 0.3 s (`zcp bench --sparse` measures it).
