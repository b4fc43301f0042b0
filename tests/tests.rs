//! zcp's integration tests, compiled as one binary (as ripgrep and fd do): each topic file
//! drives the real binary, and `util` is the one harness they share.

mod util;

mod auth;
mod batch;
mod bench;
mod connect;
mod disk_mutants;
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
mod foreign_fs;
mod handshake;
mod hostile;
mod http;
mod limits;
mod messages;
mod names;
mod offers;
mod output;
mod peer;
mod planted;
mod preauth;
mod raw;
mod readme_examples;
mod resume;
mod review_findings;
mod robustness;
mod shell;
mod sparse;
mod strace;
mod streams;
mod transfer;
mod tree;
mod usage;
mod version;
