//! Linux zero-copy paths: `sendfile(2)` file→socket, `splice(2)` file→pipe→socket and
//! socket→pipe→file, with the pipe they share. Each reports `Attempt::Unsupported` only when the
//! kernel refuses before the first byte moved, so a fallback never resends anything.

use std::cell::RefCell;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use crate::checksum::Xxh3;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice, tee};
use nix::sys::sendfile::sendfile64;
use nix::unistd::pipe2;

use super::mapped::MappedDigest;
use super::{
    Attempt, Counted, DataPath, FileDigest, Framing, Incoming, Moved, Outgoing, Tick, Timed,
    source_shrank,
};
use crate::copy::socket::Stream;
use crate::copy::source::{Source, SourceKind};
use crate::error::SessionError;

/// Largest `sendfile` call: small enough that progress moves, large enough to cost few calls.
const SENDFILE_CHUNK: usize = 64 << 20;
/// Read size for the tee'd copy the checksum is taken from: small enough to stay in L2.
const MIRROR_BUFFER: usize = 256 << 10;
/// Bytes spliced into the file between two looks at them for the checksum (see `piece`).
const MAPPED_PIECE: usize = 256 << 10;
/// The pipe capacity we ask for; the kernel may grant less (`/proc/sys/fs/pipe-max-size`).
const PIPE_WANTED: usize = 1 << 20;

/// Errnos that mean "this path cannot serve here" rather than "something broke".
fn refuses(e: Errno) -> bool {
    matches!(e, Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP)
}

fn unsupported(e: Option<Errno>, reason: String) -> Attempt {
    Attempt::Unsupported { errno: e.map(|e| e as i32), reason }
}

/// Pushes the whole source with `sendfile`, in calls of at most 64 MiB at explicit offsets.
pub(super) fn send_sendfile(out: &Outgoing<'_>, tick: Tick<'_>) -> Result<Moved, Attempt> {
    let src = out.source;
    let Some(size) = src.size else {
        // Ask the kernel anyway (0 bytes, nothing moves) so the report carries its own answer.
        let errno = sendfile64(out.socket, &src.file, None, 0).err();
        return Err(unsupported(errno, format!("{} has no length known up front", describe(src))));
    };
    let mut moved = Moved { data_path: DataPath::Sendfile, ..Moved::default() };
    let mut hash = None;
    let mut offset = out.offset as i64;
    while (offset as u64) < size {
        let want = out.call_size(((size - offset as u64) as usize).min(SENDFILE_CHUNK));
        moved.calls += 1;
        match sendfile64(out.socket, &src.file, Some(&mut offset), want) {
            Ok(0) => return Err(source_shrank(&src.display, offset as u64, size).into()),
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) if hash.is_none() && refuses(e) => {
                return Err(unsupported(
                    Some(e),
                    format!("the kernel cannot sendfile from {}", describe(src)),
                ));
            }
            Err(e) => {
                let e = Timed::writing(out.socket).failed(e);
                return Err(Attempt::Failed(anyhow::Error::from(e).context("sendfile")));
            }
        }
        // Hash only once the path is known to work: a fallback would hash on its own.
        if hash.is_none() {
            hash = Some(FileDigest::start(&src.file, size, out.checksum)?);
        }
        tick(offset as u64 - out.offset)?;
    }
    sent_whole(out, hash, size, moved)
}

/// Completes a sized send: the checksum (started during the copy, or now when no call was
/// needed) and the byte count.
fn sent_whole(
    out: &Outgoing<'_>,
    hash: Option<FileDigest>,
    size: u64,
    mut moved: Moved,
) -> Result<Moved, Attempt> {
    let file = &out.source.file;
    let hash = match hash {
        Some(hash) => hash,
        None => FileDigest::start(file, size, out.checksum)?,
    };
    (moved.xxh3, moved.checksum_calls) = hash.finish(file, size)?;
    moved.bytes = size - out.offset;
    Ok(moved)
}

/// Pushes the source through a pipe with `splice`: raw when its size is known, else chunked.
pub(super) fn send_splice(out: &Outgoing<'_>, tick: Tick<'_>) -> Result<Moved, Attempt> {
    let pipe = Lease::take()?;
    let moved =
        Moved { data_path: DataPath::Splice, pipe_bytes: pipe.capacity as u32, ..Moved::default() };
    let moved = match (out.framing, out.source.size) {
        (Framing::Sized(_), Some(size)) => splice_sized(out, &pipe, size, moved, tick),
        _ => splice_chunked(out, &pipe, moved, tick),
    }?;
    pipe.release();
    Ok(moved)
}

fn splice_sized(
    out: &Outgoing<'_>,
    pipe: &Pipe,
    size: u64,
    mut moved: Moved,
    tick: Tick<'_>,
) -> Result<Moved, Attempt> {
    let src = out.source;
    let mut hash = None;
    let mut offset = out.offset as i64;
    while (offset as u64) < size {
        let want = out.call_size(((size - offset as u64) as usize).min(pipe.capacity));
        moved.calls += 1;
        let n = match splice(
            &src.file,
            Some(&mut offset),
            &pipe.write,
            None,
            want,
            SpliceFFlags::SPLICE_F_MOVE,
        ) {
            Ok(0) => return Err(source_shrank(&src.display, offset as u64, size).into()),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) if hash.is_none() && refuses(e) => {
                return Err(unsupported(
                    Some(e),
                    format!("{} does not support splice", describe(src)),
                ));
            }
            Err(e) => {
                let e = std::io::Error::from(e);
                return Err(Attempt::Failed(anyhow::Error::from(e).context("splice from file")));
            }
        };
        if hash.is_none() {
            hash = Some(FileDigest::start(&src.file, size, out.checksum)?);
        }
        let more = (offset as u64) < size;
        pipe.drain_to(out.socket, n, more, &mut moved.calls)?;
        tick(offset as u64 - out.offset)?;
    }
    sent_whole(out, hash, size, moved)
}

/// A source of unknown length, in chunks of whatever one splice into the pipe brought. The bytes
/// are duplicated with `tee` into a second pipe and read from there for the checksum, since they
/// can be read only once from the source.
fn splice_chunked(
    out: &Outgoing<'_>,
    pipe: &Pipe,
    mut moved: Moved,
    tick: Tick<'_>,
) -> Result<Moved, Attempt> {
    let src = out.source;
    let mirror = if out.checksum { Some(Lease::take()?) } else { None };
    let room = mirror.as_ref().map_or(pipe.capacity, |m| pipe.capacity.min(m.capacity));
    let mut hasher = Xxh3::new();
    let mut buf = if out.checksum { vec![0u8; MIRROR_BUFFER] } else { Vec::new() };
    let mut socket = Counted::new(Timed::writing(out.socket));
    loop {
        moved.calls += 1;
        let n = match splice(
            &src.file,
            None,
            &pipe.write,
            None,
            // No more than the mirror can hold: tee copies only what fits.
            out.call_size(room),
            SpliceFFlags::SPLICE_F_MOVE,
        ) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) if moved.bytes == 0 && refuses(e) => {
                return Err(unsupported(
                    Some(e),
                    format!("{} does not support splice", describe(src)),
                ));
            }
            Err(e) => {
                let e = std::io::Error::from(e);
                return Err(Attempt::Failed(anyhow::Error::from(e).context("splice from source")));
            }
        };
        if n == 0 {
            break;
        }
        if let Some(mirror) = &mirror {
            mirror.hash_copy_of(pipe, n, &mut buf, &mut hasher, &mut moved.checksum_calls)?;
        }
        if let Some(header) = out.framing.chunk_header(n) {
            socket.write_all(&header)?;
        }
        pipe.drain_to(out.socket, n, true, &mut moved.calls)?;
        moved.bytes += n as u64;
        tick(moved.bytes)?;
    }
    if let Some(end) = out.framing.end() {
        socket.write_all(&end)?;
    }
    moved.calls += socket.calls;
    if let Some(mirror) = mirror {
        moved.xxh3 = hasher.digest128();
        mirror.release();
    }
    Ok(moved)
}

/// Writes incoming bytes with `splice` socket→pipe→file, at explicit file offsets when the
/// destination is a file, hashing each run as it lands (see `Checksum`).
pub(super) fn recv_splice(inc: &Incoming<'_>, tick: Tick<'_>) -> Result<Moved, Attempt> {
    let pipe = Lease::take()?;
    let mut moved =
        Moved { data_path: DataPath::Splice, pipe_bytes: pipe.capacity as u32, ..Moved::default() };
    moved.calls += 1;
    probe_splice_write(&pipe, inc)?;
    let checksum = Checksum::for_destination(inc)?;
    let position = inc.positioned.then_some(inc.offset as i64);
    let mut writer = SpliceWriter { inc, pipe: &pipe, position, moved, checksum };
    writer.checksum.catch_up(inc.offset)?;
    match inc.framing {
        Framing::Sized(len) => writer.run(len, Some(len), tick)?,
        Framing::UntilClose => writer.run(u64::MAX, None, tick)?,
        Framing::Chunked => {
            let mut socket = Counted::new(Timed::reading(inc.socket));
            loop {
                let len = super::next_chunk(&mut socket, writer.moved.bytes)?;
                if len == 0 {
                    break;
                }
                writer.run(len as u64, None, tick)?;
            }
            writer.moved.calls += socket.calls;
        }
    }
    let mut moved = writer.moved;
    (moved.xxh3, moved.checksum_calls) = writer.checksum.finish();
    pipe.release();
    Ok(moved)
}

/// Probes before taking bytes off the socket: from an empty pipe, a file that takes splice
/// writes answers EAGAIN; one that does not answers EINVAL, and the buffered path takes over.
fn probe_splice_write(pipe: &Pipe, inc: &Incoming<'_>) -> Result<(), Attempt> {
    let mut probe_offset = inc.offset as i64;
    let offset = inc.positioned.then_some(&mut probe_offset);
    match splice(&pipe.read, None, inc.file, offset, 1, SpliceFFlags::SPLICE_F_NONBLOCK) {
        Ok(_) | Err(Errno::EAGAIN) => Ok(()),
        Err(e) if refuses(e) => {
            Err(unsupported(Some(e), "the destination does not take splice writes".into()))
        }
        Err(e) => Err(Attempt::Failed(
            anyhow::Error::from(std::io::Error::from(e)).context("splice probe"),
        )),
    }
}

/// How the receiving splice path computes the checksum of bytes it never sees. Into a file, each
/// run is hashed from a shared mapping of the file right after it was spliced in, while its
/// pages are still in cache from that write: the bytes' only read. (A `tee`'d copy read with
/// read(2) paid a second copy of every byte, and its read was the first touch: about half the
/// receiver's CPU.) A stream written in order (standard output) cannot be read
/// back, so each run is duplicated with `tee` and the copy read before the run moves on.
enum Checksum<'a> {
    /// Hashed from the destination file behind the writes.
    Mapped(MappedDigest<'a>),
    /// Hashed from a tee'd copy of the pipe.
    Mirror { mirror: Lease, buf: Vec<u8>, hasher: Box<Xxh3>, calls: u64 },
    /// No checksum wanted (raw mode).
    Off,
}

impl<'a> Checksum<'a> {
    fn for_destination(inc: &Incoming<'a>) -> std::io::Result<Checksum<'a>> {
        if !inc.checksum {
            return Ok(Checksum::Off);
        }
        if inc.positioned && inc.file.metadata()?.is_file() {
            return Ok(Checksum::Mapped(MappedDigest::new(inc.file)));
        }
        // The copy is read in pieces: a small buffer, no larger than the file, keeps a tree of
        // small files from zeroing a pipe-sized buffer per file.
        let buf_len = match inc.framing {
            Framing::Sized(len) => len.clamp(1, MIRROR_BUFFER as u64) as usize,
            Framing::Chunked | Framing::UntilClose => MIRROR_BUFFER,
        };
        let (buf, hasher) = (vec![0u8; buf_len], Box::new(Xxh3::new()));
        Ok(Checksum::Mirror { mirror: Lease::take()?, buf, hasher, calls: 0 })
    }

    /// Hashes the bytes a resumed file already holds, before `offset`.
    fn catch_up(&mut self, offset: u64) -> Result<(), Attempt> {
        match self {
            Checksum::Mapped(digest) => digest.hash_to(offset)?,
            Checksum::Mirror { .. } | Checksum::Off => {}
        }
        Ok(())
    }

    /// The most one run may bring: a tee copies only what fits in the mirror.
    fn room(&self, pipe: &Pipe) -> usize {
        match self {
            Checksum::Mirror { mirror, .. } => pipe.capacity.min(mirror.capacity),
            Checksum::Mapped(_) | Checksum::Off => pipe.capacity,
        }
    }

    /// The most one splice into the file may write: a hashed piece must still be in the L2
    /// cache from that write when it is read back (256 KiB measured 15-25% less receiver CPU
    /// than whole 1 MiB runs).
    fn piece(&self) -> usize {
        match self {
            Checksum::Mapped(_) => MAPPED_PIECE,
            Checksum::Mirror { .. } | Checksum::Off => usize::MAX,
        }
    }

    /// Before a run of `n` bytes in `pipe` goes to the destination.
    fn before_write(&mut self, pipe: &Pipe, n: usize) -> Result<(), Attempt> {
        match self {
            Checksum::Mirror { mirror, buf, hasher, calls } => {
                mirror.hash_copy_of(pipe, n, buf, hasher, calls)
            }
            Checksum::Mapped(_) | Checksum::Off => Ok(()),
        }
    }

    /// After the destination file holds every byte before `end`.
    fn after_write(&mut self, end: Option<i64>) -> Result<(), Attempt> {
        match (self, end) {
            (Checksum::Mapped(digest), Some(end)) => Ok(digest.hash_to(end as u64)?),
            _ => Ok(()),
        }
    }

    /// The digest and the calls it took.
    fn finish(self) -> (u128, u64) {
        match self {
            Checksum::Mapped(digest) => digest.finish(),
            Checksum::Mirror { mirror, hasher, calls, .. } => {
                mirror.release();
                (hasher.digest128(), calls)
            }
            Checksum::Off => (0, 0),
        }
    }
}

/// The receiving end of the splice path.
struct SpliceWriter<'a> {
    inc: &'a Incoming<'a>,
    pipe: &'a Pipe,
    /// The file offset to write at, `None` for a stream written in order.
    position: Option<i64>,
    moved: Moved,
    checksum: Checksum<'a>,
}

impl SpliceWriter<'_> {
    /// Moves exactly `len` bytes from the socket into the file.
    fn run(&mut self, len: u64, expected: Option<u64>, tick: Tick<'_>) -> Result<(), Attempt> {
        let mut left = len;
        while left > 0 {
            let want = left.min(self.checksum.room(self.pipe) as u64) as usize;
            self.moved.calls += 1;
            let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
            let n = match splice(self.inc.socket, None, &self.pipe.write, None, want, flags) {
                Ok(0) if len == u64::MAX => return Ok(()),
                Ok(0) => {
                    let received = self.moved.bytes;
                    return Err(SessionError::ConnectionLost { received, expected }.into());
                }
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(Attempt::Failed(Timed::reading(self.inc.socket).failed(e).into()));
                }
            };
            self.checksum.before_write(self.pipe, n)?;
            self.write_out(n)?;
            left -= n as u64;
            self.moved.bytes += n as u64;
            tick(self.moved.bytes)?;
        }
        Ok(())
    }

    /// Splices the `n` bytes waiting in the pipe into the file, in pieces the checksum hashes as
    /// each lands.
    fn write_out(&mut self, mut n: usize) -> Result<(), Attempt> {
        let piece = self.checksum.piece();
        while n > 0 {
            self.moved.calls += 1;
            let offset = self.position.as_mut();
            match splice(
                &self.pipe.read,
                None,
                self.inc.file,
                offset,
                n.min(piece),
                SpliceFFlags::SPLICE_F_MOVE,
            ) {
                Ok(0) => {
                    return Err(Attempt::Failed(anyhow::anyhow!(
                        "splice into the file wrote nothing"
                    )));
                }
                Ok(k) => {
                    n -= k;
                    self.checksum.after_write(self.position)?;
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Attempt::Failed(std::io::Error::from(e).into())),
            }
        }
        Ok(())
    }
}

fn describe(src: &Source) -> String {
    match src.kind {
        SourceKind::Regular => src.display.clone(),
        kind => format!("{} ({})", src.display, kind.describe()),
    }
}

/// A pipe for splice, grown to the capacity the kernel grants.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn new() -> std::io::Result<Pipe> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
        let capacity = grow(&write);
        Ok(Pipe { read, write, capacity })
    }

    /// Splices exactly `n` bytes from this pipe into the socket.
    fn drain_to(
        &self,
        socket: Stream<'_>,
        mut n: usize,
        more: bool,
        calls: &mut u64,
    ) -> Result<(), Attempt> {
        let flags = if more {
            SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE
        } else {
            SpliceFFlags::SPLICE_F_MOVE
        };
        while n > 0 {
            *calls += 1;
            match splice(&self.read, None, socket, None, n, flags) {
                Ok(0) => {
                    return Err(Attempt::Failed(anyhow::anyhow!("splice to socket moved nothing")));
                }
                Ok(k) => n -= k,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Attempt::Failed(Timed::writing(socket).failed(e).into())),
            }
        }
        Ok(())
    }

    /// Duplicates the `n` bytes waiting in `source` into this pipe with `tee`, reads the copy
    /// and hashes it. The bytes in `source` stay for the socket.
    fn hash_copy_of(
        &self,
        source: &Pipe,
        n: usize,
        buf: &mut [u8],
        hasher: &mut Xxh3,
        calls: &mut u64,
    ) -> Result<(), Attempt> {
        let copied = loop {
            *calls += 1;
            match tee(&source.read, &self.write, n, SpliceFFlags::empty()) {
                Ok(k) => break k,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    let e = std::io::Error::from(e);
                    return Err(Attempt::Failed(anyhow::Error::from(e).context("tee")));
                }
            }
        };
        if copied != n {
            return Err(Attempt::Failed(anyhow::anyhow!("tee duplicated {copied} of {n} bytes")));
        }
        let mut left = n;
        while left > 0 {
            *calls += 1;
            let want = left.min(buf.len());
            match nix::unistd::read(&self.read, &mut buf[..want]) {
                Ok(0) => return Err(Attempt::Failed(anyhow::anyhow!("tee copy ended early"))),
                Ok(k) => {
                    hasher.update(&buf[..k]);
                    left -= k;
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    return Err(Attempt::Failed(
                        anyhow::Error::from(std::io::Error::from(e)).context("reading tee copy"),
                    ));
                }
            }
        }
        Ok(())
    }
}

thread_local! {
    /// Empty pipes this thread may reuse: a tree of small files needs no pipe per file.
    static SPARE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// A pipe borrowed from this thread's spares (or a new one). It goes back to them only through
/// `release`, which callers reach when the copy succeeded and the pipe is empty; a pipe dropped
/// on an error path may hold bytes and is closed.
struct Lease(Option<Pipe>);

impl Lease {
    fn take() -> std::io::Result<Lease> {
        match SPARE.with(|s| s.borrow_mut().pop()) {
            Some(pipe) => Ok(Lease(Some(pipe))),
            None => Pipe::new().map(|p| Lease(Some(p))),
        }
    }

    fn release(mut self) {
        if let Some(pipe) = self.0.take() {
            SPARE.with(|s| s.borrow_mut().push(pipe));
        }
    }
}

impl std::ops::Deref for Lease {
    type Target = Pipe;

    fn deref(&self) -> &Pipe {
        match &self.0 {
            Some(pipe) => pipe,
            None => unreachable!("a lease holds its pipe until released"),
        }
    }
}

/// Asks for a 1 MiB pipe, then for the system maximum, and keeps whatever the kernel grants.
fn grow(fd: &OwnedFd) -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    let max = *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(PIPE_WANTED)
    });
    for want in [PIPE_WANTED, max.min(PIPE_WANTED)] {
        if let Ok(granted) = fcntl(fd.as_fd(), FcntlArg::F_SETPIPE_SZ(want as i32)) {
            return granted as usize;
        }
    }
    fcntl(fd.as_fd(), FcntlArg::F_GETPIPE_SZ).map_or(64 << 10, |n| n as usize)
}
