#![warn(missing_docs)]
//! zcp moves files between hosts over TCP as fast as the kernel allows — `sendfile(2)` and
//! `splice(2)` where they serve, an explicit buffered loop where they do not — and reports the
//! syscall path it actually took. `main.rs` only parses the command line and maps errors to
//! exit codes; everything else lives here so tests and benchmarks reuse it.
//!
//! Layers, lowest first; a module imports only modules of lower layers (`tests/layers.rs`
//! checks this list against every `crate::` path in `src/`):
//! 1. vocabulary: `units` (sizes), `role` (which end), `datapath` (which path, why a fallback),
//!    `checksum` (the end-to-end xxh3-128), `terminal` (every stderr line, escaped), `manual`
//!    (documentation only);
//! 2. `protocol`: the wire format, pure encode/decode;
//! 3. `error`: the failures callers branch on and their exit codes (it knows the protocol's
//!    error codes);
//! 4. `copy`: the data paths between a file and a socket;
//! 5. `sys`: signals, the machine, resource usage (it measures what `copy` moved);
//! 6. `link` (connecting, the token proofs, talking to the peer) and `disk` (the receiver's
//!    destination: safe names, part files, putting files in place);
//! 7. `report`: all printing of results;
//! 8. `cli`: the command line, as clap types;
//! 9. `config`: the validated options built from it (they name `link`, `disk` and `report`
//!    settings);
//! 10. `progress`: the progress bar;
//! 11. `send`: the sending session;
//! 12. the other sessions: `recv`, `raw`, `http` (curl as the peer; it serves with `send`'s
//!     walk);
//! 13. the other subcommands: `bench`, `doctor`, `shell` (completions, man page).

// Every module stays `pub`, not `pub(crate)`: the one integration-test binary (tests/) drives
// the protocol, the handshake, the disk code and the data paths through `zcp::` as a hostile
// peer or a fault injector would, and narrowing them would cut those tests off. What they
// expose is documented (`missing_docs` above).
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
pub mod role;
pub mod send;
pub mod shell;
pub mod sys;
pub mod terminal;
pub mod units;
