//! The vocabulary every layer shares about how bytes move: which data path (`DataPath`), what
//! the user asked for (`Method`), and why a path gave way (`Fallback`). A leaf: it imports
//! nothing of zcp's, so the wire format, the data paths, errors and reports can all name it.

use std::fmt;

/// How bytes cross between a file and a socket. The names are the tokens used in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataPath {
    /// `sendfile(2)`: page-cache pages straight to the socket.
    #[default]
    Sendfile,
    /// `splice(2)` through a pipe: no copy through user space.
    Splice,
    /// An explicit `read(2)`/`write(2)` loop through a user-space buffer.
    Buffered,
}

impl DataPath {
    /// The report token: `sendfile`, `splice` or `buffered`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataPath::Sendfile => "sendfile",
            DataPath::Splice => "splice",
            DataPath::Buffered => "buffered",
        }
    }

    /// Every path, in the order of `index`.
    pub const ALL: [DataPath; 3] = [DataPath::Sendfile, DataPath::Splice, DataPath::Buffered];

    /// The path's place in `ALL`, for per-path tallies.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DataPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the user asked for: try every path in order, or exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Try every path in order, falling back with the reason.
    Auto,
    /// This path or an error (exit 2), never a fallback.
    Only(DataPath),
}

impl Method {
    pub(crate) fn candidates(self, order: &'static [DataPath]) -> Vec<DataPath> {
        match self {
            Method::Auto => order.to_vec(),
            Method::Only(path) => vec![path],
        }
    }
}

/// A path that was tried and gave way to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The path that gave way.
    pub from: DataPath,
    /// The errno the kernel answered, when the kernel refused; `None` when zcp knew beforehand.
    pub errno: Option<i32>,
    /// Why, in words.
    pub reason: String,
}

/// How a session's bytes are protected on the wire (`--encrypt`): the report's `encryption`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Plaintext (the default).
    #[default]
    None,
    /// TLS 1.3 with `cipher` (the suite's name), its records sealed by the kernel (kTLS, the
    /// data path unchanged) or in user space, where `fallback` says why not the kernel.
    Tls {
        /// Whether the kernel seals the records (kTLS).
        kernel: bool,
        /// The negotiated suite.
        cipher: String,
        /// Why not the kernel, when not.
        fallback: Option<String>,
    },
}

impl Encryption {
    /// The report token: `none`, `tls1.3 (kernel)` or `tls1.3 (user space)`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Encryption::None => "none",
            Encryption::Tls { kernel: true, .. } => "tls1.3 (kernel)",
            Encryption::Tls { kernel: false, .. } => "tls1.3 (user space)",
        }
    }

    /// The negotiated cipher suite, when encrypted.
    pub fn cipher(&self) -> Option<&str> {
        match self {
            Encryption::None => None,
            Encryption::Tls { cipher, .. } => Some(cipher),
        }
    }

    /// Why the kernel does not seal the records, when it does not.
    pub fn fallback(&self) -> Option<&str> {
        match self {
            Encryption::Tls { fallback: Some(why), .. } => Some(why),
            _ => None,
        }
    }
}
