//! The connection between two ends, below any session: connecting and listening (`net`), where
//! accepted connections wait until they authenticate (`lobby`), the shared token and the key
//! exchange (`auth`), the handshake (`handshake`), and reading what the peer says against
//! deadlines (`peer`). It knows the protocol's frames, not files.

pub mod auth;
pub mod handshake;
pub mod lobby;
pub mod net;
pub mod peer;
