//! The data paths that move one file's bytes between a file and a socket, and the chooser that
//! tries them in order (sendfile, splice, buffered), records why each one gave way, and returns
//! what actually moved the bytes. Framing of the surrounding session lives in `protocol`.

pub mod batch;
mod buffered;
mod hash;
pub mod holes;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod mapped;
pub mod pace;
#[cfg(not(target_os = "linux"))]
mod portable;
pub mod socket;
pub mod source;

use crate::copy::socket::Stream;
use crate::copy::source::Source;
use crate::datapath::{DataPath, Fallback, Method};
use crate::error::{SessionError, Stall};
use std::fs::File;
use std::io;

pub use hash::{FileDigest, hash_range};
pub use holes::hash_prefix;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(not(target_os = "linux"))]
use portable as platform;

/// What moving one file's bytes took.
#[derive(Debug, Clone, Default)]
pub struct Moved {
    /// The path that moved the bytes (the last one tried).
    pub data_path: DataPath,
    /// Bytes of the file that crossed the socket.
    pub bytes: u64,
    /// Data-path system calls, as strace counts them.
    pub calls: u64,
    /// System calls that read data back for the checksum.
    pub checksum_calls: u64,
    /// Capacity of the splice pipe, 0 when none was used.
    pub pipe_bytes: u32,
    /// Paths tried before `data_path`, and why each gave way.
    pub fallbacks: Vec<Fallback>,
    /// xxh3-128 of the whole file, from byte 0.
    pub xxh3: u128,
    /// Files these counts cover: 1 from a copy, more once a session adds them up.
    pub files: u64,
    /// Bytes of holes that did not cross (the sparse form), apart from `bytes`.
    pub holes: u64,
    /// Bytes each path moved (indexed by `DataPath::index`), once a session adds files up.
    pub(crate) by_path: [u64; 3],
}

impl Moved {
    /// Adds a fallback to a session's, once.
    pub fn absorb_fallback(&mut self, fallback: Fallback) {
        if !self.fallbacks.contains(&fallback) {
            self.fallbacks.push(fallback);
        }
    }

    /// Adds one file's counts to a session's. The session's path is the one that moved the
    /// most bytes (the first file's while none moved any; each file's own path is in the
    /// per-file reports); its fallbacks are every distinct fallback any file took.
    pub fn absorb(&mut self, file: Moved) {
        if self.files == 0 {
            self.data_path = file.data_path;
        }
        self.by_path[file.data_path.index()] += file.bytes;
        let most = self.by_path.iter().copied().max().unwrap_or(0);
        if most > 0 && self.by_path[self.data_path.index()] < most {
            let index = self.by_path.iter().position(|&b| b == most).unwrap_or(0);
            self.data_path = DataPath::ALL[index];
        }
        for fallback in file.fallbacks {
            self.absorb_fallback(fallback);
        }
        self.files += file.files;
        self.bytes += file.bytes;
        self.holes += file.holes;
        self.calls += file.calls;
        self.checksum_calls += file.checksum_calls;
        self.pipe_bytes = self.pipe_bytes.max(file.pipe_bytes);
    }
}

/// How a file's bytes are delimited on the socket: both ends derive it with `Framing::of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many raw bytes follow.
    Sized(u64),
    /// Length-prefixed chunks follow, ended by an empty one.
    Chunked,
    /// Plain bytes until the peer closes (raw mode).
    UntilClose,
}

impl Framing {
    /// The framing of a file of `size` (when known) sent from `offset`: its remaining bytes
    /// when the size is known, chunks when not, plain bytes until close in raw mode.
    pub fn of(size: Option<u64>, offset: u64, raw: bool) -> Framing {
        match (size, raw) {
            (Some(size), _) => Framing::Sized(size.saturating_sub(offset)),
            (None, false) => Framing::Chunked,
            (None, true) => Framing::UntilClose,
        }
    }

    /// What goes in front of `n` bytes of a stream of unknown length: a chunk header when
    /// chunked, nothing otherwise.
    pub(crate) fn chunk_header(self, n: usize) -> Option<[u8; 4]> {
        (self == Framing::Chunked).then(|| crate::protocol::chunk_header(n as u32))
    }

    /// What ends a stream of unknown length: the empty chunk when chunked, nothing otherwise.
    pub(crate) fn end(self) -> Option<[u8; 4]> {
        self.chunk_header(0)
    }
}

/// The session's hook, called after every data-path call with the bytes moved so far: it moves
/// the progress bar, paces, and watches the peer and the size limit, as that session needs. An
/// error, typed as the session likes (`SessionError`), aborts the copy and is returned as is.
pub type Tick<'a> = &'a mut dyn FnMut(u64) -> anyhow::Result<()>;

/// Why one path could not serve.
pub(crate) enum Attempt {
    /// The path cannot serve this source or destination; nothing was moved, the next may.
    Unsupported { errno: Option<i32>, reason: String },
    /// A real failure: stop.
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Attempt {
    fn from(e: E) -> Self {
        Attempt::Failed(e.into())
    }
}

/// Sender side: what to push, from where, in which form.
pub struct Outgoing<'a> {
    /// The file or stream to read.
    pub source: &'a Source,
    /// The connection to the receiver.
    pub socket: Stream<'a>,
    /// First byte to send; bytes before it are only hashed.
    pub offset: u64,
    /// Buffer of the buffered path.
    pub buffer_size: usize,
    /// Largest amount one data call may move (a rate limit keeps calls small).
    pub max_call: Option<usize>,
    /// How the bytes are delimited (`Framing::of` the source's size, the offset, raw mode).
    pub framing: Framing,
    /// Whether to compute the xxh3-128 of the file (raw mode shows none, so takes none).
    pub checksum: bool,
}

impl Outgoing<'_> {
    /// `wanted` capped by `max_call`.
    fn call_size(&self, wanted: usize) -> usize {
        self.max_call.map_or(wanted, |m| wanted.min(m)).max(1)
    }
}

/// Receiver side: where incoming bytes go.
pub struct Incoming<'a> {
    /// The connection from the sender.
    pub socket: Stream<'a>,
    /// Where the bytes are written.
    pub file: &'a File,
    /// How the bytes are delimited on the socket.
    pub framing: Framing,
    /// File offset of the first incoming byte; bytes before it are already in the file.
    pub offset: u64,
    /// Whether `file` takes writes at explicit offsets (a file) or only in order (a pipe,
    /// standard output).
    pub positioned: bool,
    /// Buffer of the buffered path.
    pub buffer_size: usize,
    /// Whether to compute the xxh3-128 of the file (raw mode shows none, so takes none).
    pub checksum: bool,
}

const SEND_ORDER: &[DataPath] = &[DataPath::Sendfile, DataPath::Splice, DataPath::Buffered];
const RECV_ORDER: &[DataPath] = &[DataPath::Splice, DataPath::Buffered];

/// Pushes a source's bytes into the socket by the first path of `method` that can serve.
pub fn send(out: &Outgoing<'_>, method: Method, tick: Tick<'_>) -> anyhow::Result<Moved> {
    choose(
        method,
        SEND_ORDER,
        |path, tick| match path {
            DataPath::Sendfile => platform::send_sendfile(out, tick),
            DataPath::Splice => platform::send_splice(out, tick),
            DataPath::Buffered => buffered::send(out, tick),
        },
        tick,
    )
}

/// Writes a file's incoming bytes by the first path of `method` that can serve.
pub fn recv(inc: &Incoming<'_>, method: Method, tick: Tick<'_>) -> anyhow::Result<Moved> {
    choose(
        method,
        RECV_ORDER,
        |path, tick| match path {
            DataPath::Splice => platform::recv_splice(inc, tick),
            DataPath::Buffered => buffered::recv(inc, tick),
            DataPath::Sendfile => Err(Attempt::Unsupported {
                errno: None,
                reason: "sendfile cannot write to a file from a socket".into(),
            }),
        },
        tick,
    )
}

fn choose(
    method: Method,
    order: &'static [DataPath],
    mut attempt: impl FnMut(DataPath, Tick<'_>) -> Result<Moved, Attempt>,
    tick: Tick<'_>,
) -> anyhow::Result<Moved> {
    let mut fallbacks = Vec::new();
    for path in method.candidates(order) {
        match attempt(path, tick) {
            Ok(mut moved) => {
                moved.fallbacks = fallbacks;
                moved.files = 1;
                return Ok(moved);
            }
            Err(Attempt::Unsupported { errno, reason }) if method == Method::Auto => {
                fallbacks.push(Fallback { from: path, errno, reason });
            }
            Err(Attempt::Unsupported { errno, reason }) => {
                return Err(SessionError::MethodUnavailable { path, errno, reason }.into());
            }
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    // The last path of every order (buffered) never answers Unsupported.
    Err(anyhow::anyhow!("no data path could serve"))
}

/// A socket whose reads (`Stall::Read`) or writes (`Stall::Write`, `Stall::Reply`) that hit
/// its timeout fail as `SessionError::Idle`, told where the fact is known.
pub struct Timed<'a> {
    socket: Stream<'a>,
    stall: Stall,
}

impl<'a> Timed<'a> {
    /// Reads from `socket`, whose timeout is an idle timeout.
    pub fn reading(socket: impl Into<Stream<'a>>) -> Timed<'a> {
        Timed { socket: socket.into(), stall: Stall::Read }
    }

    /// Writes to `socket`, whose timeout is an idle timeout.
    pub fn writing(socket: impl Into<Stream<'a>>) -> Timed<'a> {
        Timed { socket: socket.into(), stall: Stall::Write }
    }

    /// The receiver's replies to `socket` (its plan, its summary), whose timeout is an idle
    /// timeout.
    pub fn replying(socket: impl Into<Stream<'a>>) -> Timed<'a> {
        Timed { socket: socket.into(), stall: Stall::Reply }
    }

    /// `e`, returned by a call on this socket, as `SessionError::idle_on` tells it.
    pub fn failed(&self, e: impl Into<io::Error>) -> io::Error {
        use std::os::fd::AsFd;
        SessionError::idle_on(e.into(), self.socket.as_fd(), self.stall)
    }
}

impl io::Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut self.socket, buf).map_err(|e| self.failed(e))
    }
}

impl io::Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut self.socket, buf).map_err(|e| self.failed(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader or writer that counts its `read`/`write`/`lseek` calls, as strace would.
pub(crate) struct Counted<T> {
    inner: T,
    pub calls: u64,
}

impl<T> Counted<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, calls: 0 }
    }
}

impl<T: io::Read> io::Read for Counted<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        self.inner.read(buf)
    }
}

impl<T: io::Write> io::Write for Counted<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: io::Seek> io::Seek for Counted<T> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.calls += 1;
        self.inner.seek(pos)
    }
}

/// The error for a regular file that ended before the size it had when offered.
pub(crate) fn source_shrank(display: &str, at: u64, size: u64) -> anyhow::Error {
    anyhow::anyhow!("{display} shrank while being sent: it ended at byte {at} of {size}")
}

/// Reads the next chunk header of a chunked file; a connection closed between chunks is the
/// same "connection lost" as one closed inside a chunk.
pub(crate) fn next_chunk(socket: &mut Counted<Timed<'_>>, received: u64) -> Result<u32, Attempt> {
    match crate::protocol::read_chunk_header(socket) {
        Ok(len) => Ok(len),
        Err(crate::protocol::ReadError::Protocol(crate::protocol::ProtocolError::Closed)) => {
            Err(SessionError::ConnectionLost { received, expected: None }.into())
        }
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: DataPath, bytes: u64) -> Moved {
        Moved { data_path: path, bytes, files: 1, ..Moved::default() }
    }

    #[test]
    fn a_session_is_named_after_the_path_that_moved_the_most_bytes() {
        let mut session = Moved::default();
        session.absorb(file(DataPath::Buffered, 3));
        assert_eq!(session.data_path, DataPath::Buffered);
        session.absorb(file(DataPath::Sendfile, 100));
        session.absorb(file(DataPath::Buffered, 90));
        assert_eq!(session.data_path, DataPath::Sendfile, "100 bytes by sendfile, 93 buffered");
        session.absorb(file(DataPath::Buffered, 10));
        assert_eq!(session.data_path, DataPath::Buffered, "103 buffered now");
        assert_eq!((session.files, session.bytes), (4, 203));
        let mut empty = Moved::default();
        empty.absorb(file(DataPath::Splice, 0));
        empty.absorb(file(DataPath::Buffered, 0));
        assert_eq!(empty.data_path, DataPath::Splice, "no bytes: the first file's path");
    }
}
