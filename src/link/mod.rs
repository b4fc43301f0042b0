//! The connection between two ends, below any session: connecting and listening (`net`), where
//! accepted connections wait until they authenticate (`lobby`), the shared token and the key
//! exchange (`auth`), the handshake (`handshake`), reading what the peer says against
//! deadlines (`peer`), and `--encrypt`: TLS (`tls`), its keys handed to the kernel (`ktls`) or
//! its records sealed in user space (`pump`, `records`). It knows the protocol's frames, not files.

pub mod auth;
pub mod handshake;
pub mod ktls;
pub mod lobby;
pub mod net;
pub mod peer;
mod pump;
mod records;
pub mod tls;
