//! zcp moves files between hosts over TCP as fast as the kernel allows — `sendfile(2)` and
//! `splice(2)` where they serve, an explicit buffered loop where they do not — and reports the
//! syscall path it actually took. `main.rs` only parses the command line and maps errors to
//! exit codes; everything else lives here so tests and benchmarks reuse it.
//!
//! Layers, each importing only those listed before it:
//! - vocabulary: `units` (sizes), `datapath` (which path, why a fallback), `error` (exit codes),
//!   `checksum` (the end-to-end xxh3-128), `terminal` (every stderr line, escaped);
//! - `protocol`: the wire format, pure encode/decode;
//! - `cli` → `config`: the command line and the validated options built from it;
//! - `sys`: signals, the machine, resource usage; `link`: connecting, the token proofs, talking
//!   to the peer; `copy`: the data paths between a file and a socket;
//! - `disk`: the receiver's destination: safe names, part files, putting files in place;
//! - the sessions: `send`, `recv`, `raw`, `http` (curl as the peer); then `report`/`progress` (printing), `bench`,
//!   `doctor` and `shell` (completions, man page).

pub mod bench;
pub mod checksum;
pub mod cli;
pub mod config;
pub mod copy;
pub mod datapath;
pub mod disk;
pub mod doctor;
pub mod error;
pub mod http;
pub mod link;
pub mod manual;
pub mod progress;
pub mod protocol;
pub mod raw;
pub mod recv;
pub mod report;
pub mod send;
pub mod shell;
pub mod sys;
pub mod terminal;
pub mod units;
