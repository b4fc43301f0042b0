//! Design notes, the wire specification and the threat model, as documentation only: nothing
//! here is code. Each file is one topic, read with `cargo doc --open` (zcp::manual) or in the
//! source. The modules that implement a topic link here from their own short module docs.

pub mod static_build;
