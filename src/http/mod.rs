//! HTTP/1.1 for a peer that has only `curl` or `wget`: `zcp send --http` serves files
//! (`serve`), `zcp recv --http` takes `PUT` uploads (`accept`). The socket stays in our hands
//! (heads parsed by `httparse` from peeked bytes), so bodies go by the same data paths as a zcp
//! session: `sendfile` out, `splice` in, buffered where those cannot serve, saying why.
//! Bounds: a head of at most 16 KiB within 10 s, read before the request takes one of 16 slots
//! (`recv`: `--max-conns`; a complete request past them gets `503`), at most 64 heads arriving
//! at once, the oldest shut for a newcomer (`heads`), one request per connection. Not here: TLS, keep-alive, chunked
//! responses, multipart ranges, conditional GET other than `If-Range`.

mod accept;
mod chunked;
mod heads;
mod index;
mod log;
mod request;
mod response;
mod serve;

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use std::time::Duration;

use crate::error::{ExitCode, SessionError};
use crate::link::auth::Token;
use crate::link::net;
use crate::sys::signals;

pub use accept::accept;
pub use index::encode as url_path;
pub use serve::serve;

use heads::{Heads, MAX_HEADS, Place};
use request::{HeadError, Request};
use response::refuse;

/// How long a client may take to send a whole request head.
const HEAD_TIME: Duration = Duration::from_secs(10);
/// Connections `zcp send --http` serves at once (`zcp recv --http` takes `--max-conns`); the
/// next one is answered `503` and closed.
const MAX_CONNS: usize = 16;
/// How often the accept loop looks at the stop flags.
const POLL: Duration = Duration::from_millis(100);

/// Who may make requests: the holder of the token, or anyone with `--no-auth`.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    token: Option<Token>,
}

/// A request the gate let through for a download: the path it asks for, without the
/// `/t/TOKEN` prefix that carried the token, if one did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Admitted<'r> {
    pub path: &'r [u8],
    /// The token came in the URL (a browser): links must carry it too.
    pub by_url: bool,
}

impl Gate {
    /// Whether `request` carries the token in an `Authorization: Bearer` header (always,
    /// without a token), compared in constant time.
    fn admits(&self, request: &Request) -> bool {
        let Some(token) = &self.token else { return true };
        same_secret(token.reveal().as_bytes(), request.bearer().unwrap_or_default())
    }

    /// Whether `request` carries the token in the header or as the `/t/TOKEN/` prefix of its
    /// path (for a browser, which cannot send the header), and what it then asks for. Both are
    /// the same token compared the same way: the URL is as strong as the header.
    fn admit<'r>(&self, request: &'r Request) -> Option<Admitted<'r>> {
        let by_header = Admitted { path: &request.path, by_url: false };
        let Some(token) = &self.token else { return Some(by_header) };
        if let Some(prefixed) = &request.path_token
            && same_secret(token.reveal().as_bytes(), &prefixed.token)
        {
            return Some(Admitted { path: &prefixed.rest, by_url: true });
        }
        self.admits(request).then_some(by_header)
    }

    /// Answers `401` when `request` does not carry the token; true when it may go on.
    fn check(&self, socket: &TcpStream, request: &Request) -> bool {
        if self.admits(request) {
            return true;
        }
        self.refuse(socket, request, "");
        false
    }

    /// Answers `401`: the token is missing (how to send it, then `hint`) or wrong.
    fn refuse(&self, socket: &TcpStream, request: &Request, hint: &str) {
        let why = match (&request.authorization, &request.path_token) {
            (None, None) => {
                format!("missing token: send the header Authorization: Bearer TOKEN{hint}")
            }
            _ => "wrong token".into(),
        };
        refuse(socket, 401, &why, &[("WWW-Authenticate", "Bearer realm=\"zcp\"")]);
    }
}

/// Whether `got` is the secret `want`, in time that does not depend on where they differ.
fn same_secret(want: &[u8], got: &[u8]) -> bool {
    let differ = want.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    differ == 0 && want.len() == got.len()
}

/// The curl option that sends the token: the token itself when zcp made it (it was printed
/// anyway), else a reference to the variable the user keeps it in.
fn header_option(token: Option<&Token>, generated: bool) -> String {
    match token {
        None => String::new(),
        Some(t) if generated => format!(" -H 'Authorization: Bearer {}'", t.reveal()),
        Some(_) => " -H \"Authorization: Bearer $ZCP_TOKEN\"".to_string(),
    }
}

/// The host part of a URL for the address the server listens on. For a wildcard address, the
/// first non-loopback address of this machine's interfaces (IPv4 first), so the printed command
/// runs as it is on a host of the same network; `HOST` when there is none.
fn url_host(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => interface_ip(addr),
        ip => Some(ip),
    };
    match ip {
        Some(IpAddr::V6(ip)) => format!("[{ip}]"),
        Some(IpAddr::V4(ip)) => ip.to_string(),
        None => "HOST".into(),
    }
}

/// The first address a listener on the wildcard `bound` can be reached at (`net::reachable`,
/// as the commands a zcp session prints), IPv4 first; `None` when the host has only loopback.
fn interface_ip(bound: SocketAddr) -> Option<IpAddr> {
    let found = net::reachable(bound);
    let first = found.iter().find(|a| a.is_ipv4()).or(found.first());
    first.map(SocketAddr::ip).filter(|ip| !ip.is_loopback())
}

/// How a connection handler ended: whether the server's work is done now.
pub(crate) type Handled = bool;

/// The accept loop both ends share: each connection on its own thread reads its head (among
/// `heads::MAX_HEADS`, see `heads`), then takes one of `max_conns` slots for its request, until
/// `handle` says the work is done or a signal arrives. Returns the exit code.
fn run_server<H>(listener: &TcpListener, max_conns: usize, handle: H) -> anyhow::Result<ExitCode>
where
    H: Fn(TcpStream, SocketAddr, Request) -> Handled + Sync,
{
    signals::install()?;
    let (slots, heads, done) = (Slots::new(max_conns), Heads::default(), AtomicBool::new(false));
    std::thread::scope(|scope| -> anyhow::Result<()> {
        while !done.load(Ordering::SeqCst) && signals::pending().is_none() {
            let Some((socket, peer)) = net::accept_within(listener, POLL)? else { continue };
            let Some(place) = heads.enter(&socket) else { continue };
            let (handle, slots, done) = (&handle, &slots, &done);
            std::thread::Builder::new()
                .name(format!("http {peer}"))
                .spawn_scoped(scope, move || {
                    let Some(request) = arrived(&socket, peer, place) else { return };
                    let Some(_slot) = slots.take() else {
                        refuse(&socket, 503, "busy: too many requests", &[("Retry-After", "1")]);
                        response::close_now(&socket);
                        log::note(&format!("refused a request from {peer}: {max_conns} at once"));
                        return;
                    };
                    if handle(socket, peer, request) {
                        done.store(true, Ordering::SeqCst);
                    }
                })
                .map_err(|cause| SessionError::ThreadRefused {
                    thread: "a connection thread",
                    cause,
                })?;
        }
        // Heads still arriving will not be served: their threads end now, not in 10 s.
        heads.close();
        Ok(())
    })?;
    Ok(match signals::pending() {
        Some(signal) => ExitCode::stopped_by(signal),
        None => ExitCode::Success,
    })
}

/// The request whose head arrived on `socket`, which holds its `place` among the arriving
/// heads until then, and while a head that could not be read is answered; `None`, logged, when
/// none arrived or a newer connection pushed this one out first.
fn arrived(socket: &TcpStream, peer: SocketAddr, place: Place<'_>) -> Option<Request> {
    let read = request::read_head(socket, HEAD_TIME);
    if place.pushed_out() {
        let why = format!("its head was still arriving when {MAX_HEADS} others were");
        log::note(&format!(
            "ignored a request from {peer}: pushed out by a newer connection: {why}"
        ));
        return None;
    }
    answer_unread(socket, peer, read)
}

/// The slots requests whose heads arrived hold while they are answered.
struct Slots {
    taken: AtomicUsize,
    max: usize,
}

/// One taken slot, given back when dropped.
struct Slot<'s>(&'s Slots);

impl Slots {
    fn new(max: usize) -> Slots {
        Slots { taken: AtomicUsize::new(0), max }
    }

    /// A slot, when fewer than `max` are taken.
    fn take(&self) -> Option<Slot<'_>> {
        let free = |n: usize| (n < self.max).then_some(n + 1);
        self.taken.fetch_update(Ordering::SeqCst, Ordering::SeqCst, free).ok()?;
        Some(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The request head `read` from `socket`, answering what could not be read (`400`, `408`,
/// `431`) with a log line.
fn answer_unread(
    socket: &TcpStream,
    peer: SocketAddr,
    read: Result<Request, HeadError>,
) -> Option<Request> {
    match read {
        Ok(request) => Some(request),
        Err(e) => {
            let status = match &e {
                HeadError::Malformed(_) => Some(400),
                HeadError::TooLarge => Some(431),
                HeadError::Timeout => Some(408),
                HeadError::Closed | HeadError::Io(_) => None,
                HeadError::Unused => return None,
            };
            if let Some(status) = status {
                refuse(socket, status, &e.to_string(), &[]);
                response::close_gently(socket);
            }
            log::note(&format!("ignored a request from {peer}: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &[u8]) -> Request {
        Request { authorization: Some(value.to_vec()), ..Request::default() }
    }

    #[test]
    fn only_the_whole_token_as_a_bearer_is_admitted() {
        let gate = Gate { token: Some(Token::new("s3cret-token").expect("a token")) };
        assert!(gate.admits(&with_auth(b"Bearer s3cret-token")));
        assert!(gate.admits(&with_auth(b"bearer  s3cret-token ")), "scheme case, spaces");
        for wrong in [&b"Bearer s3cret"[..], b"Bearer s3cret-token2", b"Basic s3cret-token", b""] {
            assert!(!gate.admits(&with_auth(wrong)), "{:?}", String::from_utf8_lossy(wrong));
        }
        assert!(!gate.admits(&Request::default()), "no header");
        assert!(Gate { token: None }.admits(&Request::default()), "--no-auth");
    }

    fn with_path_token(token: &[u8], rest: &[u8]) -> Request {
        let path_token = Some(request::PathToken { token: token.to_vec(), rest: rest.to_vec() });
        Request { path: b"/t/x/a.bin".to_vec(), path_token, ..Request::default() }
    }

    #[test]
    fn the_token_in_the_url_is_the_whole_token_and_stands_for_the_header() {
        let gate = Gate { token: Some(Token::new("s3cret-token").expect("a token")) };
        let by_url = Admitted { path: b"/a.bin", by_url: true };
        assert_eq!(gate.admit(&with_path_token(b"s3cret-token", b"/a.bin")), Some(by_url));
        for wrong in [&b"s3cret"[..], b"s3cret-token2", b"S3CRET-TOKEN", b""] {
            assert_eq!(gate.admit(&with_path_token(wrong, b"/a.bin")), None, "{wrong:?}");
        }
        // A file under a served directory `t` is still fetched by its path with the header.
        let mut request = with_path_token(b"x", b"/a.bin");
        request.authorization = Some(b"Bearer s3cret-token".to_vec());
        let whole = Admitted { path: b"/t/x/a.bin", by_url: false };
        assert_eq!(gate.admit(&request), Some(whole));
        assert!(!gate.admits(&with_path_token(b"s3cret-token", b"/")), "uploads: header only");
    }
}
