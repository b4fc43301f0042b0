//! The buffered path: an explicit `read(2)`/`write(2)` loop through one user-space buffer of the
//! configured size. Never `std::io::copy`, which on Linux quietly switches to
//! `copy_file_range`/`sendfile`/`splice` for some descriptor pairs and would make reports lie.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::checksum::Xxh3;

use super::{Attempt, Counted, Framing, Incoming, Moved, Outgoing, Tick, Timed, hash_prefix};
use crate::datapath::DataPath;
use crate::error::SessionError;

/// Sends the source through a buffer, hashing what passes.
pub(super) fn send(out: &Outgoing<'_>, tick: Tick<'_>) -> Result<Moved, Attempt> {
    let mut file = &out.source.file;
    let mut moved = Moved { data_path: DataPath::Buffered, ..Moved::default() };
    let mut hasher = Xxh3::new();
    if out.offset > 0 {
        if out.checksum {
            moved.checksum_calls += hash_prefix(file, out.offset, &mut hasher)?;
        }
        file.seek(SeekFrom::Start(out.offset))?;
        moved.calls += 1;
    }
    let mut socket = Counted::new(Timed::writing(out.socket));
    match (out.framing, out.source.size) {
        (Framing::Sized(_), Some(size)) => {
            let mut buf = vec![0u8; out.buffer_size];
            let mut pos = out.offset;
            while pos < size {
                let want = out.call_size((size - pos).min(buf.len() as u64) as usize);
                let n = read_some(&mut file, &mut buf[..want], &mut moved.calls)?;
                if n == 0 {
                    return Err(super::source_shrank(&out.source.display, pos, size).into());
                }
                if out.checksum {
                    hasher.update(&buf[..n]);
                }
                socket.write_all(&buf[..n])?;
                pos += n as u64;
                tick(pos - out.offset)?;
            }
            moved.bytes = size - out.offset;
        }
        _ => {
            // Room for the chunk header in front, so each chunk leaves in one write.
            let mut buf = vec![0u8; 4 + out.buffer_size];
            loop {
                let want = out.call_size(out.buffer_size);
                let n = read_some(&mut file, &mut buf[4..4 + want], &mut moved.calls)?;
                if n == 0 {
                    break;
                }
                let from = match out.framing.chunk_header(n) {
                    Some(header) => {
                        buf[..4].copy_from_slice(&header);
                        0
                    }
                    None => 4,
                };
                if out.checksum {
                    hasher.update(&buf[4..4 + n]);
                }
                socket.write_all(&buf[from..4 + n])?;
                moved.bytes += n as u64;
                tick(moved.bytes)?;
            }
            if let Some(end) = out.framing.end() {
                socket.write_all(&end)?;
            }
        }
    }
    moved.calls += socket.calls;
    moved.xxh3 = if out.checksum { hasher.digest128() } else { 0 };
    Ok(moved)
}

/// Receives a file's bytes through a buffer into `inc.file`, hashing what passes.
pub(super) fn recv(inc: &Incoming<'_>, tick: Tick<'_>) -> Result<Moved, Attempt> {
    let mut sink = Sink {
        socket: Counted::new(Timed::reading(inc.socket)),
        file: Counted::new(inc.file),
        hasher: inc.checksum.then(Xxh3::new),
        buf: vec![0u8; inc.buffer_size],
        moved: Moved { data_path: DataPath::Buffered, ..Moved::default() },
    };
    if inc.positioned && inc.offset > 0 {
        if let Some(hasher) = &mut sink.hasher {
            sink.moved.checksum_calls += hash_prefix(inc.file, inc.offset, hasher)?;
        }
        sink.file.seek(SeekFrom::Start(inc.offset))?;
    }
    match inc.framing {
        Framing::Sized(len) => sink.run(len, Some(len), tick)?,
        Framing::UntilClose => sink.run(u64::MAX, None, tick)?,
        Framing::Chunked => loop {
            let len = super::next_chunk(&mut sink.socket, sink.moved.bytes)?;
            if len == 0 {
                break;
            }
            sink.run(len as u64, None, tick)?;
        },
    }
    let mut moved = sink.moved;
    moved.calls += sink.socket.calls + sink.file.calls;
    moved.xxh3 = sink.hasher.map_or(0, |h| h.digest128());
    Ok(moved)
}

/// The receiving end of the buffered path: socket, buffer, hasher and file.
struct Sink<'a> {
    socket: Counted<Timed<'a>>,
    file: Counted<&'a std::fs::File>,
    /// `None` when no checksum is wanted (raw mode).
    hasher: Option<Xxh3>,
    buf: Vec<u8>,
    moved: Moved,
}

impl Sink<'_> {
    /// Moves exactly `len` bytes from the socket to the file.
    fn run(&mut self, len: u64, expected: Option<u64>, tick: Tick<'_>) -> Result<(), Attempt> {
        let mut left = len;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = self.socket.read(&mut self.buf[..want])?;
            if n == 0 && len == u64::MAX {
                return Ok(());
            }
            if n == 0 {
                let received = self.moved.bytes;
                return Err(SessionError::ConnectionLost { received, expected }.into());
            }
            if let Some(hasher) = &mut self.hasher {
                hasher.update(&self.buf[..n]);
            }
            self.file.write_all(&self.buf[..n])?;
            left -= n as u64;
            self.moved.bytes += n as u64;
            tick(self.moved.bytes)?;
        }
        Ok(())
    }
}

/// One `read(2)`, retried on EINTR, counted.
fn read_some(r: &mut impl Read, buf: &mut [u8], calls: &mut u64) -> io::Result<usize> {
    loop {
        *calls += 1;
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
