//! Upload bodies in HTTP/1.1 chunked coding (RFC 9112 §7.1), as `curl -T -` sends a stream of
//! unknown length: each chunk's size line is read from peeked bytes, and its data is moved by
//! the data paths (splice) to its offset in the file, so a stream lands zero-copy too.

use std::fs::File;
use std::net::TcpStream;

use super::request::{MalformedBody, take_line};
use crate::copy::{self, Framing, Incoming, Moved};
use crate::datapath::Method;

/// Longest chunk-size line (size, extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;
/// Most trailer lines after the last chunk.
const MAX_TRAILERS: usize = 64;

/// Where a chunked body goes and how.
pub struct Sink<'a> {
    pub socket: &'a TcpStream,
    pub file: &'a File,
    pub method: Method,
    pub buffer_size: usize,
}

/// Receives a whole chunked body into `sink.file`; `tick` sees the bytes written so far (it
/// enforces `--max-size` and notices signals).
pub fn receive(sink: &Sink<'_>, tick: copy::Tick<'_>) -> anyhow::Result<Moved> {
    let mut total = Moved::default();
    let mut offset = 0u64;
    loop {
        let size = chunk_size(&take_line(sink.socket, MAX_LINE)?)?;
        if size == 0 {
            return trailers(sink.socket).map(|()| total);
        }
        tick(offset)?;
        let inc = Incoming {
            socket: sink.socket.into(),
            file: sink.file,
            framing: Framing::Sized(size),
            offset,
            positioned: true,
            buffer_size: sink.buffer_size,
            checksum: false,
        };
        let moved = copy::recv(&inc, sink.method, &mut |n| tick(offset + n))?;
        total.absorb(moved);
        offset += size;
        if !take_line(sink.socket, MAX_LINE)?.is_empty() {
            let why = "malformed chunked body: no CRLF after a chunk's data";
            return Err(MalformedBody(why.into()).into());
        }
    }
}

/// The size of a chunk-size line (`HEX[;extensions]`, its CRLF already taken), parsed by
/// `httparse` as the request head is. httparse reads a line with no digits as size 0, the last
/// chunk; RFC 9112 asks for at least one, so a line that does not start with one is refused.
fn chunk_size(line: &[u8]) -> anyhow::Result<u64> {
    let framed = [line, b"\r\n"].concat();
    let digit = line.first().is_some_and(u8::is_ascii_hexdigit);
    match httparse::parse_chunk_size(&framed) {
        Ok(httparse::Status::Complete((used, size))) if digit && used == framed.len() => Ok(size),
        _ => {
            let why = format!("malformed chunk size {:?}", String::from_utf8_lossy(line));
            Err(MalformedBody(why).into())
        }
    }
}

/// Skips the trailer section after the last chunk, up to the empty line.
fn trailers(socket: &TcpStream) -> anyhow::Result<()> {
    for _ in 0..MAX_TRAILERS {
        if take_line(socket, MAX_LINE)?.is_empty() {
            return Ok(());
        }
    }
    let why = format!("more than {MAX_TRAILERS} trailer lines after a chunked body");
    Err(MalformedBody(why).into())
}

#[cfg(test)]
mod tests {
    use super::chunk_size;

    #[test]
    fn chunk_sizes_are_hex_with_optional_extensions() {
        assert_eq!(chunk_size(b"1a").ok(), Some(26));
        assert_eq!(chunk_size(b"FFFF;name=value").ok(), Some(65535));
        assert_eq!(chunk_size(b"0").ok(), Some(0));
        for bad in [&b""[..], b"zz", b"-1", b"+1", b"11111111111111111", b"\xff"] {
            assert!(chunk_size(bad).is_err(), "{bad:?}");
        }
    }
}
