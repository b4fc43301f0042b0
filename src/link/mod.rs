//! The connection between two ends, below any session: connecting and listening (`net`), the
//! shared token and its proofs (`auth`), and reading what the peer says against deadlines
//! (`peer`). It knows the protocol's frames, not files.

pub mod auth;
pub mod handshake;
pub mod net;
pub mod peer;
