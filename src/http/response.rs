//! Response heads and the short plain-text answers (errors, upload results). Every response
//! carries `Content-Length` (never chunked) and `Connection: close`: one request per
//! connection. Bodies of files are not written here but by the data paths (`copy`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A response head under construction.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    headers: Vec<(&'static str, String)>,
}

impl Response {
    /// A response with `status` and the headers every response carries.
    pub fn new(status: u16) -> Response {
        Response { status, headers: vec![("Connection", "close".into())] }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The head's bytes, announcing a body of `content_length` bytes.
    pub fn head(&self, content_length: u64) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {content_length}\r\n\r\n"));
        head.into_bytes()
    }

    /// Writes the head and a short plain-text body (a line ending in `\n`); with `body_too`
    /// false (a `HEAD` request) the head announces it but it is not sent.
    pub fn send_text(self, socket: &TcpStream, text: &str, body_too: bool) -> io::Result<()> {
        self.send_page(socket, "text/plain; charset=utf-8", text, body_too)
    }

    /// Writes the head and a short body of `content_type` (`send_text` for other types).
    pub fn send_page(
        self,
        mut socket: &TcpStream,
        content_type: &str,
        text: &str,
        body_too: bool,
    ) -> io::Result<()> {
        let mut bytes = self.header("Content-Type", content_type).head(text.len() as u64);
        if body_too {
            bytes.extend_from_slice(text.as_bytes());
        }
        socket.write_all(&bytes)
    }
}

/// An error answer: `status` with `why` as its one-line body.
pub fn refuse(socket: &TcpStream, status: u16, why: &str, extra: &[(&'static str, &str)]) {
    let mut response = Response::new(status);
    for (name, value) in extra {
        response = response.header(name, *value);
    }
    // The client may be gone already; the log line says what happened either way.
    let _ = response.send_text(socket, &format!("{why}\n"), true);
}

/// The go-ahead a client that sent `Expect: 100-continue` waits for before its body.
pub fn send_continue(mut socket: &TcpStream) -> io::Result<()> {
    socket.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
}

/// Ends a connection after its answer without losing the answer: closing a socket with unread
/// bytes (an upload refused while its body was in flight) sends a reset that may reach the
/// client before it read the answer. So the write side is shut first and what still arrives is
/// read and dropped, up to a bound in bytes and one in time for all the reads together (per
/// read, a client trickling a byte at a time would hold its connection for hours).
pub fn close_gently(mut socket: &TcpStream) {
    const DRAIN: u64 = 8 << 20;
    let until = Instant::now() + Duration::from_secs(2);
    let _ = socket.shutdown(Shutdown::Write);
    let mut buf = [0u8; 16 << 10];
    let mut left = DRAIN;
    while left > 0 {
        let wait = until.saturating_duration_since(Instant::now());
        if wait.is_zero() || socket.set_read_timeout(Some(wait)).is_err() {
            break;
        }
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}

/// Ends a connection without waiting (the accept loop cannot): what the client already sent
/// is read and dropped first, so that the close is not a reset that could overtake the answer.
/// At most `CLOSE_DRAIN` bytes: a client that keeps sending must not hold the accept loop.
pub fn close_now(mut socket: &TcpStream) {
    let _ = socket.shutdown(Shutdown::Write);
    if socket.set_nonblocking(true).is_ok() {
        let mut buf = [0u8; 16 << 10];
        let mut left = CLOSE_DRAIN;
        while left > 0
            && let Ok(n @ 1..) = socket.read(&mut buf)
        {
            left = left.saturating_sub(n);
        }
    }
}

/// What `close_now` reads at most before closing.
const CLOSE_DRAIN: usize = 64 << 10;

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_always_has_its_length_and_closes() {
        let head = Response::new(206).header("Content-Range", "bytes 0-9/100").head(10);
        let text = String::from_utf8(head).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(text.ends_with("Content-Length: 10\r\n\r\n"), "{text}");
        assert!(!text.to_ascii_lowercase().contains("chunked"));
    }
}
