//! The probes of `zcp doctor`: a few hundred KiB moved by zcp's real data paths (`copy::send`,
//! `copy::recv`) over a loopback TCP pair, with the bytes compared at the other end. Scratch
//! files are created beside the user's data and always removed; the user's files are only read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;

use anyhow::{Context, bail};

use crate::copy::source::{Source, SourceKind};
use crate::copy::{self, Framing, Incoming, Moved, Outgoing};
use crate::datapath::{DataPath, Method};
use crate::error::SessionError;

/// Bytes each probe moves.
pub const PROBE_BYTES: u64 = 256 << 10;
/// Buffer of the buffered path, when a fallback probe takes it.
const BUFFER: usize = 32 << 10;

/// What one probe found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The path that moved the bytes (with `Method::Auto`, the one zcp chose).
    pub data_path: Option<DataPath>,
    /// Bytes moved and found equal at the other end.
    pub bytes: u64,
    /// Why it failed, as an error chain.
    pub error: Option<String>,
    /// The errno the kernel answered, when it did.
    pub errno: Option<i32>,
}

impl Probe {
    /// Whether the call succeeded.
    pub fn works(&self) -> bool {
        self.error.is_none()
    }

    fn from(result: anyhow::Result<Moved>) -> Probe {
        match result {
            Ok(moved) => Probe {
                data_path: Some(moved.data_path),
                bytes: moved.bytes,
                error: None,
                errno: None,
            },
            Err(e) => Probe {
                data_path: None,
                bytes: 0,
                error: Some(format!("{e:#}")),
                errno: errno_of(&e),
            },
        }
    }
}

/// Sends (at most) the first `PROBE_BYTES` of the file at `path` with `method`.
pub fn send_file(path: &Path, method: Method) -> Probe {
    Probe::from(send(path, method))
}

/// Sends a fresh scratch file in `dir` with `method`: does the path work from this file system?
pub fn send_from(dir: &Path, method: Method) -> Probe {
    Probe::from(Scratch::create(dir, true).and_then(|scratch| send(&scratch.path, method)))
}

/// Receives `PROBE_BYTES` with `method` into a fresh scratch file in `dir`.
pub fn recv_into(dir: &Path, method: Method) -> Probe {
    Probe::from(Scratch::create(dir, false).and_then(|scratch| recv(&scratch, method)))
}

fn send(path: &Path, method: Method) -> anyhow::Result<Moved> {
    let mut source = Source::open(path)?;
    source.size = source.size.map(|size| size.min(PROBE_BYTES));
    let expected = match (source.kind, source.size) {
        (SourceKind::Regular, Some(size)) => Some(read_prefix(&source.file, size)?),
        _ => None,
    };
    let (client, server) = loopback()?;
    let reader = thread::spawn(move || -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        (&server).read_to_end(&mut got)?;
        Ok(got)
    });
    // Raw: a source of unknown length (a procfs file) goes as plain bytes, no chunk headers.
    let out = Outgoing {
        source: &source,
        socket: (&client).into(),
        offset: 0,
        buffer_size: BUFFER,
        max_call: None,
        framing: Framing::of(source.size, 0, true),
        checksum: true,
    };
    let moved = copy::send(&out, method, &mut |_| Ok(()));
    let _ = client.shutdown(Shutdown::Write);
    let got = reader.join().map_err(|_| anyhow::anyhow!("the probe's reader panicked"))?;
    let moved = moved?;
    let got = got.context("reading the probe's bytes back")?;
    match expected {
        Some(expected) if got != expected => bail!("the bytes that arrived differ from the file"),
        _ if got.len() as u64 != moved.bytes => {
            bail!("{} bytes arrived of {} sent", got.len(), moved.bytes)
        }
        _ => Ok(moved),
    }
}

fn recv(scratch: &Scratch, method: Method) -> anyhow::Result<Moved> {
    let data = pattern(PROBE_BYTES as usize);
    let (client, server) = loopback()?;
    let sent = data.clone();
    let writer = thread::spawn(move || {
        (&client).write_all(&sent)?;
        client.shutdown(Shutdown::Write)
    });
    let inc = Incoming {
        socket: (&server).into(),
        file: &scratch.file,
        framing: Framing::Sized(PROBE_BYTES),
        offset: 0,
        positioned: true,
        buffer_size: BUFFER,
        checksum: true,
    };
    let moved = copy::recv(&inc, method, &mut |_| Ok(()));
    // A receiver that failed early leaves the writer blocked on a full socket: unblock it.
    let _ = server.shutdown(Shutdown::Both);
    let _ = writer.join();
    let moved = moved?;
    if read_prefix(&scratch.file, PROBE_BYTES + 1)? != data {
        bail!("the file written differs from the bytes sent");
    }
    Ok(moved)
}

/// A connected pair of loopback TCP sockets.
fn loopback() -> anyhow::Result<(TcpStream, TcpStream)> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a loopback listener")?;
    let addr = listener.local_addr().context("reading the loopback listener's address")?;
    let client = TcpStream::connect(addr).context("connecting over loopback")?;
    let (server, _) = listener.accept().context("accepting over loopback")?;
    Ok((client, server))
}

/// Up to `len` bytes of `file` from its start, by `pread` (the file's offset is left alone).
fn read_prefix(file: &File, len: u64) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow::Error::from(e).context("reading the file back")),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Bytes that differ from their neighbours, so a shifted or repeated block is caught.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_right(13) as u8).collect()
}

/// The errno behind an error chain, when the kernel answered one.
fn errno_of(err: &anyhow::Error) -> Option<i32> {
    err.chain().find_map(|cause| {
        if let Some(SessionError::MethodUnavailable { errno, .. }) = cause.downcast_ref() {
            return *errno;
        }
        // The data paths return their errnos as `io::Error`, converted where the call returns.
        cause.downcast_ref::<io::Error>().and_then(io::Error::raw_os_error)
    })
}

/// A scratch file `.zcp-doctor-PID-N` in the directory under test, removed on drop.
struct Scratch {
    path: PathBuf,
    file: File,
}

impl Scratch {
    /// Creates it empty, or with `PROBE_BYTES` of the pattern when `filled`.
    fn create(dir: &Path, filled: bool) -> anyhow::Result<Scratch> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".zcp-doctor-{}-{n}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating a test file in {}", dir.display()))?;
        let scratch = Scratch { path, file };
        if filled {
            (&scratch.file)
                .write_all(&pattern(PROBE_BYTES as usize))
                .with_context(|| format!("writing the test file {}", scratch.path.display()))?;
        }
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_has_no_short_period() {
        let p = pattern(4096);
        assert_ne!(p[..256], p[256..512]);
        assert_ne!(p[..1], p[1..2]);
    }

    #[test]
    fn errno_is_found_in_the_chain() {
        let err = anyhow::Error::from(io::Error::from_raw_os_error(22)).context("splice");
        assert_eq!(errno_of(&err), Some(22));
        assert_eq!(errno_of(&anyhow::anyhow!("no errno here")), None);
    }
}
