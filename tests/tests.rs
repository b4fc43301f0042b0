//! zcp's integration tests, compiled as one binary (as ripgrep and fd do): each topic file
//! drives the real binary, and `util` is the one harness they share.

mod util;

mod auth;
mod batch;
mod bench;
mod connect;
mod doctor;
mod errors;
mod existing;
mod exit_codes;
mod faults;
mod limits;
mod names;
mod offers;
mod peer;
mod planted;
mod raw;
mod resume;
mod robustness;
mod shell;
mod strace;
mod streams;
mod transfer;
mod tree;
