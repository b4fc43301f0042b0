//! Design notes, the wire specification and the threat model, as documentation only: nothing
//! here is code. Each file is one topic, read with `cargo doc --open` (zcp::manual) or in the
//! source. The modules that implement a topic link here from their own short module docs.

pub mod browser;
pub mod comeback;
pub mod datapaths;
pub mod encryption;
pub mod failures;
pub mod http;
pub mod lobby;
pub mod locking;
pub mod mirror;
pub mod protocol;
pub mod reports;
pub mod security;
pub mod sparse;
pub mod star;
pub mod static_build;
pub mod writing;
