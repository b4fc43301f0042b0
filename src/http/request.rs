//! Reading one request head off the socket with `httparse`, within a size and a time bound, and
//! taking from it only what zcp acts on. The head is peeked before it is consumed, so not one
//! byte of a body is read into user space: it stays on the socket for `splice`.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::error::{SessionError, Stall};

/// Largest request head accepted (request line and headers); a larger one gets `431`.
pub const MAX_HEAD: usize = 16 << 10;
/// Most headers one request may carry.
const MAX_HEADERS: usize = 64;
/// The path prefix of a URL that carries the token, for clients that cannot send a header (a
/// browser): `/t/TOKEN/NAME`, the token percent-encoded as one segment.
pub const TOKEN_PREFIX: &str = "/t/";

/// Why no request could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The bytes are not an HTTP/1.x request head (`400`), and why.
    Malformed(String),
    /// The head passed `MAX_HEAD` (`431`).
    TooLarge,
    /// The head did not arrive within the time allowed (`408`).
    Timeout,
    /// The client closed before a whole head arrived: nothing to answer.
    Closed,
    /// The client closed without sending a byte: a connection a browser opened in advance and
    /// did not need, nothing worth a log line.
    Unused,
    /// The socket failed.
    Io(io::Error),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Malformed(why) => write!(f, "malformed request: {why}"),
            HeadError::TooLarge => write!(f, "request head larger than {MAX_HEAD} bytes"),
            HeadError::Timeout => write!(f, "no complete request head in time"),
            HeadError::Closed => write!(f, "closed before a complete request head"),
            HeadError::Unused => write!(f, "closed without a request"),
            HeadError::Io(e) => write!(f, "reading the request: {e}"),
        }
    }
}

impl std::error::Error for HeadError {}

/// One request head, reduced to what zcp acts on.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    /// The path as sent, query string removed, percent-decoded.
    pub path: Vec<u8>,
    /// The request target as sent, for log lines, with the token of a `/t/TOKEN` prefix
    /// replaced by `…`: logs are read by more people than the token was given to.
    pub target: String,
    pub authorization: Option<Vec<u8>>,
    /// A path that begins `/t/SEGMENT`: the segment (which may be the token) and the path
    /// after it, each percent-decoded.
    pub path_token: Option<PathToken>,
    /// The `Accept` header: whether the client prefers HTML.
    pub accept: Option<String>,
    pub range: Option<String>,
    pub if_range: Option<String>,
    /// `Content-Length`, when present: `Err` holds the text of an unusable one.
    pub content_length: Option<Result<u64, String>>,
    pub transfer_encoding: Option<String>,
    /// `Expect: 100-continue`: the client waits for a go-ahead before the body.
    pub expects_continue: bool,
}

/// Reads one request head from `socket` within `within`. Only the head's bytes are consumed.
pub fn read_head(socket: &TcpStream, within: Duration) -> Result<Request, HeadError> {
    let deadline = Instant::now() + within;
    let mut head = Vec::new();
    let mut peeked = vec![0u8; MAX_HEAD];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout);
        }
        socket.set_read_timeout(Some(left)).map_err(HeadError::Io)?;
        let room = MAX_HEAD - head.len();
        let n = match socket.peek(&mut peeked[..room]) {
            Ok(0) if head.is_empty() => return Err(HeadError::Unused),
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => n,
            Err(e) if timed_out(&e) => return Err(HeadError::Timeout),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HeadError::Io(e)),
        };
        let before = head.len();
        head.extend_from_slice(&peeked[..n]);
        if let Some((len, request)) = parse(&head)? {
            // Consume the head only: the body (if any) stays queued on the socket.
            consume(socket, len - before)?;
            return Ok(request);
        }
        if head.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        // Incomplete: take what was peeked off the socket, so the next peek waits for more.
        consume(socket, n)?;
    }
}

/// A chunked body that breaks RFC 9112's rules (answered `400`), and how.
#[derive(Debug)]
pub struct MalformedBody(pub String);

impl std::fmt::Display for MalformedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MalformedBody {}

/// Reads one CRLF-ended line of at most `max` bytes (without its CRLF), consuming nothing
/// after it: what follows stays on the socket for the data paths. The socket's read timeout
/// applies to each wait.
pub fn take_line(socket: &TcpStream, max: usize) -> anyhow::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut peeked = vec![0u8; max + 2];
    loop {
        let n = match socket.peek(&mut peeked[..max + 2 - line.len()]) {
            Ok(0) => {
                let why = "the client closed in the middle of a chunked body";
                return Err(MalformedBody(why.into()).into());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let e = SessionError::idle_on(e, std::os::fd::AsFd::as_fd(socket), Stall::Read);
                return Err(anyhow::Error::from(e).context("reading a chunk header"));
            }
        };
        let seen = &peeked[..n];
        // A CR that ended the bytes consumed so far pairs with an LF first in this peek.
        let end = if line.last() == Some(&b'\r') && seen.first() == Some(&b'\n') {
            Some(0)
        } else {
            seen.windows(2).position(|w| w == b"\r\n").map(|i| i + 1)
        };
        if let Some(lf) = end {
            line.extend_from_slice(&seen[..lf]);
            consume(socket, lf + 1)?;
            line.truncate(line.len().saturating_sub(1));
            return Ok(line);
        }
        if line.len() + n > max {
            let why = format!("a chunk header line longer than {max} bytes");
            return Err(MalformedBody(why).into());
        }
        line.extend_from_slice(seen);
        consume(socket, n)?;
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Reads and drops exactly `n` bytes that a peek showed are queued.
fn consume(mut socket: &TcpStream, n: usize) -> Result<(), HeadError> {
    let mut sink = vec![0u8; n];
    socket.read_exact(&mut sink).map_err(HeadError::Io)
}

/// Parses a head: `None` while incomplete, else its length and the request.
fn parse(bytes: &[u8]) -> Result<Option<(usize, Request)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(HeadError::Malformed("no request line".into()));
    };
    let mut request = Request {
        method: method.to_string(),
        target: redacted(target),
        path: decode_path(target)?,
        path_token: path_token(target)?,
        ..Request::default()
    };
    for h in req.headers.iter() {
        request.take_header(h.name, h.value)?;
    }
    Ok(Some((len, request)))
}

impl Request {
    fn take_header(&mut self, name: &str, value: &[u8]) -> Result<(), HeadError> {
        let text = || String::from_utf8_lossy(value).trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "authorization" => self.authorization = Some(value.to_vec()),
            "accept" => self.accept = Some(text()),
            "range" => self.range = Some(text()),
            "if-range" => self.if_range = Some(text()),
            // Several lines are one list (RFC 9110 §5.3): judged whole, not by the last line.
            "transfer-encoding" => {
                let codings = match self.transfer_encoding.take() {
                    Some(before) => format!("{before}, {}", text()),
                    None => text(),
                };
                self.transfer_encoding = Some(codings);
            }
            "expect" => self.expects_continue = text().eq_ignore_ascii_case("100-continue"),
            "content-length" => {
                // Two different lengths are a request smuggling attempt, not a choice to make.
                let parsed = number(&text(), 10).ok_or_else(text);
                if self.content_length.as_ref().is_some_and(|old| *old != parsed) {
                    return Err(HeadError::Malformed("conflicting Content-Length headers".into()));
                }
                self.content_length = Some(parsed);
            }
            _ => {}
        }
        Ok(())
    }

    /// The token of an `Authorization: Bearer TOKEN` header, if the request has one.
    pub fn bearer(&self) -> Option<&[u8]> {
        let value = self.authorization.as_deref()?;
        let (scheme, token) = value.split_at(value.iter().position(|&b| b == b' ')?);
        scheme.eq_ignore_ascii_case(b"bearer").then(|| token.trim_ascii())
    }

    /// Whether the client asked for HTML by name (browsers do; curl and wget send `*/*`).
    pub fn wants_html(&self) -> bool {
        self.accept.as_deref().is_some_and(|a| {
            a.split(',').any(|t| t.split(';').next().is_some_and(|t| t.trim() == "text/html"))
        })
    }
}

/// A number written in `radix` digits only (`1*DIGIT`, `1*HEXDIG`): Rust's parsers also take a
/// leading `+`, and two parsers that disagree on a length are how requests are smuggled.
pub fn number(text: &str, radix: u32) -> Option<u64> {
    if text.is_empty() || !text.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(text, radix).ok()
}

/// The segment after `/t/` of a path (which may be the token) and the path after it.
#[derive(Debug, PartialEq, Eq)]
pub struct PathToken {
    pub token: Vec<u8>,
    /// From the `/` after the segment; `/` when nothing follows it.
    pub rest: Vec<u8>,
}

/// A target's `/t/SEGMENT` (still percent-encoded), and the rest of the target after it
/// (empty, or from the `/`, `?` or `#` that follows).
fn split_token(target: &str) -> Option<(&str, &str)> {
    let after = target.strip_prefix(TOKEN_PREFIX)?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    Some((&after[..end], &after[end..]))
}

/// The target for log lines: a `/t/SEGMENT` shown as `/t/…`, whether or not it is the token
/// (a near miss is a typo of it).
fn redacted(target: &str) -> String {
    match split_token(target) {
        Some((_, rest)) => format!("{TOKEN_PREFIX}…{rest}"),
        None => target.to_string(),
    }
}

/// The `/t/SEGMENT` of a target and the path after it, decoded; the segment split off before
/// decoding, so a token holding `/` travels as `%2F`. Its text never goes into an error.
fn path_token(target: &str) -> Result<Option<PathToken>, HeadError> {
    let Some((segment, rest)) = split_token(target) else { return Ok(None) };
    let token = percent_decode(segment).ok_or_else(|| {
        HeadError::Malformed("bad percent-encoding in the token of the URL".into())
    })?;
    let rest = if rest.starts_with('/') { decode_path(rest)? } else { b"/".to_vec() };
    Ok(Some(PathToken { token, rest }))
}

/// The path of a request target: the query dropped, `%XX` decoded. Only origin-form targets
/// (`/…`) are served.
fn decode_path(target: &str) -> Result<Vec<u8>, HeadError> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(HeadError::Malformed(format!("request target {target:?} is not a path")));
    }
    percent_decode(path).ok_or_else(|| {
        HeadError::Malformed(format!("bad percent-encoding in {:?}", redacted(target)))
    })
}

/// `%XX` decoded; `None` for a `%` not followed by two hex digits.
fn percent_decode(path: &str) -> Option<Vec<u8>> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            out.push(hex.and_then(|h| number(h, 16))? as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A satisfiable single byte range of a file, inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable single range (none, several, or another unit): the whole file, `200`.
    Whole,
    /// One satisfiable range: `206`.
    Part(ByteRange),
    /// A range that starts exactly at the end: the client already holds the whole file
    /// (`curl -C -` on a complete download), `416`.
    AtEnd,
    /// A range past the end: `416`.
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 §14.1.2): one `bytes=FIRST-LAST`, `FIRST-` or `-SUFFIX`.
/// Several ranges are answered whole (the RFC allows ignoring `Range`; multipart is not made).
pub fn range_of(header: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeAsk::Whole };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        (true, false) => match number(last, 10) {
            Some(0) => return RangeAsk::Unsatisfiable,
            Some(suffix) => Some((size.saturating_sub(suffix), size.saturating_sub(1))),
            None => None,
        },
        (false, true) => number(first, 10).map(|f| (f, size.saturating_sub(1))),
        (false, false) => match (number(first, 10), number(last, 10)) {
            (Some(f), Some(l)) if f <= l => Some((f, l.min(size.saturating_sub(1)))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => RangeAsk::Whole,
        Some((first, _)) if first == size => RangeAsk::AtEnd,
        Some((first, _)) if first > size => RangeAsk::Unsatisfiable,
        Some((first, last)) => RangeAsk::Part(ByteRange { first, last }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(header: &str, size: u64) -> RangeAsk {
        range_of(Some(header), size)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let part = |first, last| RangeAsk::Part(ByteRange { first, last });
        assert_eq!(range("bytes=0-99", 1000), part(0, 99));
        assert_eq!(range("bytes=500-", 1000), part(500, 999));
        assert_eq!(range("bytes=-100", 1000), part(900, 999));
        assert_eq!(range("bytes=-5000", 1000), part(0, 999));
        assert_eq!(range("bytes=900-5000", 1000), part(900, 999));
        assert_eq!(range("bytes=1000-", 1000), RangeAsk::AtEnd);
        assert_eq!(range("bytes=1001-", 1000), RangeAsk::Unsatisfiable);
        assert_eq!(range("bytes=-0", 1000), RangeAsk::Unsatisfiable);
        assert_eq!(range("bytes=0-", 0), RangeAsk::AtEnd);
        assert_eq!(range("bytes=0-1,5-6", 1000), RangeAsk::Whole);
        assert_eq!(range("bytes=9-1", 1000), RangeAsk::Whole);
        assert_eq!(range("items=0-1", 1000), RangeAsk::Whole);
        assert_eq!(range("bytes=x-y", 1000), RangeAsk::Whole);
        assert_eq!(range_of(None, 1000), RangeAsk::Whole);
        // Absurd values: past u64 is no range at all (whole), u64::MAX is past the end.
        assert_eq!(range("bytes=0-99999999999999999999", 1000), RangeAsk::Whole);
        assert_eq!(range("bytes=-99999999999999999999", 1000), RangeAsk::Whole);
        assert_eq!(range("bytes=18446744073709551615-", 1000), RangeAsk::Unsatisfiable);
        assert_eq!(range("bytes=0-18446744073709551615", 1000), part(0, 999));
        assert_eq!(range("bytes=-18446744073709551615", 1000), part(0, 999));
    }

    #[test]
    fn numbers_are_digits_only() {
        assert_eq!(number("42", 10), Some(42));
        assert_eq!(number("ff", 16), Some(255));
        for bad in ["", "+5", "-5", " 5", "5 ", "0x5", "1e3"] {
            assert_eq!(number(bad, 10), None, "{bad:?}");
        }
        assert_eq!(number("+f", 16), None);
        let head = b"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n";
        let (_, req) = parse(head).expect("parses").expect("complete");
        assert_eq!(req.content_length, Some(Err("+5".into())));
        assert!(decode_path("/%+f").is_err());
    }

    #[test]
    fn heads_parse_and_paths_decode() {
        let head = b"PUT /a%20b/c?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\
                     Authorization: Bearer  tok \r\nExpect: 100-continue\r\n\r\nhello";
        let (len, req) = parse(head).expect("parses").expect("complete");
        assert_eq!(len, head.len() - 5);
        assert_eq!(req.path, b"/a b/c");
        assert_eq!(req.content_length, Some(Ok(5)));
        assert_eq!(req.bearer(), Some(&b"tok"[..]));
        assert!(req.expects_continue);
        assert!(parse(b"GET / HTTP/1.1\r\nHost: h\r\n").expect("parses").is_none());
    }

    #[test]
    fn transfer_encoding_lines_combine_into_one_list() {
        let head =
            b"PUT /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (_, req) = parse(head).expect("parses").expect("complete");
        assert_eq!(req.transfer_encoding.as_deref(), Some("gzip, chunked"));
    }

    #[test]
    fn bad_heads_are_malformed_never_a_panic() {
        for bad in [
            &b"\x00\x01\x02 garbage\r\n\r\n"[..],
            b"GET /%zz HTTP/1.1\r\n\r\n",
            b"GET /%4 HTTP/1.1\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"PUT /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert!(matches!(parse(bad), Err(HeadError::Malformed(_))), "{bad:?}");
        }
    }
}
