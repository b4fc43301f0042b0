//! zcp's integration tests, compiled as one binary (as ripgrep and fd do): each topic file
//! drives the real binary, and `util` is the one harness they share.

// `.clippy.toml` keeps the binary's stderr lines to `terminal::line`; a test's own notes to
// its log are not a terminal a peer can reach.
#![allow(clippy::disallowed_macros)]

mod util;

mod auth;
mod batch;
mod bench;
mod browser;
mod checksum;
mod connect;
mod destination;
mod docs;
mod doctor;
mod durable;
mod empty_root;
mod encrypt;
mod errors;
mod events;
mod existing;
mod exit_codes;
mod faults;
mod filters;
mod foreign_fs;
mod handshake;
mod hostile;
mod http;
mod http_crowds;
mod layers;
mod limits;
mod messages;
mod mirror;
mod names;
mod offers;
mod output;
mod peer;
mod placing;
mod planted;
mod preauth;
mod progress;
mod races;
mod raw;
mod readme_examples;
mod resume;
mod robustness;
mod shell;
mod sparse;
mod star;
mod strace;
mod streams;
mod svg;
mod swapped;
mod transfer;
mod tree;
mod usage;
mod version;
