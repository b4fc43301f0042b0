//! zcp moves files between hosts over TCP as fast as the kernel allows — `sendfile(2)` and
//! `splice(2)` where they serve, an explicit buffered loop where they do not — and reports the
//! syscall path it actually took. `main.rs` only parses the command line and maps errors to
//! exit codes; everything else lives here so tests and benchmarks reuse it.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod copy;
pub mod datapath;
pub mod dest;
pub mod doctor;
pub mod error;
pub mod machine;
pub mod manifest;
pub mod net;
pub mod progress;
pub mod protocol;
pub mod raw;
pub mod recv;
pub mod report;
pub mod send;
pub mod session;
pub mod shell;
pub mod signals;
pub mod source;
pub mod units;
pub mod usage;
pub mod writer;
