//! The batched path for small files: the sender gathers many files' frames and bytes into one
//! `write(2)`, the receiver takes them off the socket in one `read(2)`. For a file of a few KiB
//! the memcpy a zero-copy path saves costs less than one of the system calls it adds (a
//! `sendfile` and a `write` for the frames on the sending end; a splice in, a splice out, a `tee`
//! and a `read` for the checksum on the receiving end), so under `--method auto` files up to
//! `SMALL_FILE` go this way and the reports name it `buffered`, with the reason.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::Mode;

use humansize::{BINARY, format_size};

use super::socket::Stream;
use super::source::changed;
use super::{Moved, Timed, source_shrank};
use crate::datapath::{DataPath, Fallback};

/// Files up to this size are batched.
pub const SMALL_FILE: u64 = 64 << 10;
/// Bytes gathered before the sender writes, and read at most at once by the receiver.
pub const BATCH: usize = 256 << 10;

/// Why a batched file took neither sendfile nor splice, as the sender's report says it.
pub fn send_reason() -> Fallback {
    Fallback {
        from: DataPath::Sendfile,
        errno: None,
        reason: format!(
            "files up to {} are sent in batches, many in one write(2): fewer calls than a sendfile each",
            format_size(SMALL_FILE, BINARY)
        ),
    }
}

/// Why a batched file did not take splice, as the receiver's report says it.
pub fn recv_reason() -> Fallback {
    Fallback {
        from: DataPath::Splice,
        errno: None,
        reason: format!(
            "files up to {} arrive in batches, many in one read(2): fewer calls than splice, tee and read each",
            format_size(SMALL_FILE, BINARY)
        ),
    }
}

/// Appends the first `size` bytes of `file` (a regular file, `size` at most `SMALL_FILE`) to
/// `batch` with `pread`, and returns what that took, checksum included.
pub fn append(file: &File, display: &str, size: u64, batch: &mut Vec<u8>) -> anyhow::Result<Moved> {
    let start = batch.len();
    batch.resize(start + size as usize, 0);
    let mut moved =
        Moved { data_path: DataPath::Buffered, bytes: size, files: 1, ..Moved::default() };
    let mut got = 0;
    while got < size as usize {
        moved.calls += 1;
        match file.read_at(&mut batch[start + got..], got as u64) {
            Ok(0) => {
                batch.truncate(start);
                return Err(source_shrank(display, got as u64, size));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                batch.truncate(start);
                return Err(changed(Path::new(display), e, "reading"));
            }
        }
    }
    moved.xxh3 = crate::checksum::xxh3_128(&batch[start..]);
    Ok(moved)
}

/// Opens the sender's small files relative to their directory, kept open while consecutive
/// files share it: each costs a one-component lookup instead of a walk of its whole path, and
/// no `fstat` (the walk has its size; a file that has become something else fails its read).
pub struct Opener {
    dir: Option<(PathBuf, OwnedFd)>,
    /// `--follow-symlinks`: else a file replaced by a symlink since the walk is not followed.
    follow: bool,
}

impl Opener {
    /// An opener that follows symlinks only when `follow` (`--follow-symlinks`).
    pub fn new(follow: bool) -> Opener {
        Opener { dir: None, follow }
    }

    /// Opens `path` for reading, without blocking should it have become a FIFO.
    pub fn open(&mut self, path: &Path) -> anyhow::Result<File> {
        self.open_at(path).map_err(|e| changed(path, e, "opening"))
    }

    fn open_at(&mut self, path: &Path) -> io::Result<File> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return File::open(path);
        };
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let dir = match &self.dir {
            Some((held, fd)) if held == parent => fd,
            _ => {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
                let fd = openat(AT_FDCWD, parent, flags, Mode::empty())?;
                &self.dir.insert((parent.to_path_buf(), fd)).1
            }
        };
        let mut flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        if !self.follow {
            flags |= OFlag::O_NOFOLLOW;
        }
        Ok(File::from(openat(dir, name, flags, Mode::empty())?))
    }
}

/// The receiver's read-ahead: bytes taken off the socket in large reads, from which frames and
/// batched files are served. It never reads past `allowance`, the point where the body of a file
/// that is spliced begins, so those bytes stay in the socket for `splice`. Its methods are the
/// `Read` it offers the frame decoder plus the hold/release/allow steps of one batched file;
/// they share one buffer and one cursor, so they stay one type.
pub struct Inbox<'a> {
    socket: Stream<'a>,
    buf: Box<[u8]>,
    /// Start of the held body, if any (`pinned` bytes from here are kept until `release`).
    keep: usize,
    pinned: usize,
    /// Next unread byte, and the end of what was read.
    pos: usize,
    end: usize,
    /// Bytes that may still be read ahead; `None`: no spliced body follows.
    allowance: Option<u64>,
    /// `read(2)` calls made so far.
    pub calls: u64,
}

impl<'a> Inbox<'a> {
    /// An empty inbox over `socket`, allowed to read nothing ahead yet.
    pub fn new(socket: Stream<'a>) -> Inbox<'a> {
        Inbox {
            socket,
            buf: vec![0u8; BATCH].into_boxed_slice(),
            keep: 0,
            pinned: 0,
            pos: 0,
            end: 0,
            allowance: Some(0),
            calls: 0,
        }
    }

    /// Sets how many bytes may be read ahead from here on (`None`: no limit).
    pub fn allow(&mut self, bytes: Option<u64>) {
        self.allowance = bytes;
    }

    /// The socket, for the data paths that read it directly.
    pub fn socket(&self) -> Stream<'a> {
        self.socket
    }

    /// Bytes read off the socket and not used yet.
    pub fn unread(&self) -> usize {
        self.end - self.pos
    }

    /// Whether every byte read off the socket has been used.
    pub fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// Takes the next `n` bytes (at most `SMALL_FILE`) and holds them, in one piece, until
    /// `release`. A connection that ends first is `UnexpectedEof`, with the bytes that came.
    pub fn hold(&mut self, n: usize) -> io::Result<&[u8]> {
        self.release();
        if self.pos + n > self.buf.len() {
            self.compact();
        }
        while self.end - self.pos < n {
            if self.refill(n - (self.end - self.pos))? == 0 {
                let got = self.end - self.pos;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {got} of {n} bytes"),
                ));
            }
        }
        (self.keep, self.pinned) = (self.pos, n);
        self.pos += n;
        Ok(&self.buf[self.keep..self.pos])
    }

    /// The bytes `hold` took, still there whatever was read since.
    pub fn held(&self) -> &[u8] {
        &self.buf[self.keep..self.keep + self.pinned]
    }

    /// Lets the held bytes go.
    pub fn release(&mut self) {
        (self.keep, self.pinned) = (self.pos, 0);
    }

    /// Moves the held and unread bytes to the front, making room behind them.
    fn compact(&mut self) {
        let unread = self.end - self.pos;
        self.buf.copy_within(self.keep..self.keep + self.pinned, 0);
        self.buf.copy_within(self.pos..self.end, self.pinned);
        (self.keep, self.pos, self.end) = (0, self.pinned, self.pinned + unread);
    }

    /// One read into the free space: as much as the allowance lets, but at least `need` bytes'
    /// room (bytes needed now are safe to read whatever follows them). Returns 0 at the end.
    fn refill(&mut self, need: usize) -> io::Result<usize> {
        if self.end == self.buf.len() {
            self.compact();
        }
        let room = self.buf.len() - self.end;
        let allowed = self.allowance.map_or(room, |a| a.min(room as u64) as usize);
        let want = allowed.max(need.min(room));
        let n = loop {
            self.calls += 1;
            match Timed::reading(self.socket).read(&mut self.buf[self.end..self.end + want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        self.end += n;
        if let Some(a) = &mut self.allowance {
            *a = a.saturating_sub(n as u64);
        }
        Ok(n)
    }
}

/// Frames come through here: from what was read ahead, else from the socket.
impl Read for Inbox<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.is_empty() && !out.is_empty() {
            if self.allowance == Some(0) {
                // Nothing may be read ahead: read exactly what is asked, as a plain read would.
                self.calls += 1;
                return Timed::reading(self.socket).read(out);
            }
            if self.refill(1)? == 0 {
                return Ok(0);
            }
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    /// A connected pair over loopback: (writer, reader).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (reader, _) = listener.accept().unwrap();
        (writer, reader)
    }

    #[test]
    fn never_reads_past_the_allowance() {
        let (mut w, r) = pair();
        w.write_all(b"0123456789abcdef").unwrap();
        let mut inbox = Inbox::new(Stream::from(&r));
        inbox.allow(Some(4));
        let mut got = [0u8; 2];
        inbox.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"01");
        inbox.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"23");
        assert!(inbox.is_empty());
        // The rest is still in the socket.
        let mut rest = [0u8; 12];
        (&r).read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"456789abcdef");
    }

    #[test]
    fn held_bytes_survive_later_reads_and_compaction() {
        let (mut w, r) = pair();
        let body: Vec<u8> = (0..SMALL_FILE as usize).map(|i| (i % 251) as u8).collect();
        let mut inbox = Inbox::new(Stream::from(&r));
        inbox.allow(None);
        // Fill most of the buffer first, so the body straddles its end.
        let filler = vec![7u8; BATCH - 100];
        w.write_all(&filler).unwrap();
        w.write_all(&body).unwrap();
        w.write_all(&vec![9u8; BATCH]).unwrap();
        drop(w);
        let mut sink = vec![0u8; BATCH - 100];
        inbox.read_exact(&mut sink).unwrap();
        assert_eq!(inbox.hold(body.len()).unwrap(), &body[..]);
        let mut after = vec![0u8; BATCH];
        inbox.read_exact(&mut after).unwrap();
        assert!(after.iter().all(|&b| b == 9));
        assert_eq!(inbox.held(), &body[..]);
        inbox.release();
        assert_eq!(inbox.read(&mut [0u8; 1]).unwrap(), 0);
    }

    #[test]
    fn a_body_cut_short_is_unexpected_eof() {
        let (mut w, r) = pair();
        w.write_all(b"abc").unwrap();
        drop(w);
        let mut inbox = Inbox::new(Stream::from(&r));
        let err = inbox.hold(10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("3 of 10"), "{err}");
    }
}
