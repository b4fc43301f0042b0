//! `zcp send --http`: serves the named files to `curl`, `wget` or a browser. `GET` and `HEAD`
//! with `Content-Length`, `ETag`, `Last-Modified` and single byte ranges (`206`, so `curl -C -`
//! resumes); each body goes out by `sendfile` (or splice, or buffered, saying why). Without
//! `--keep-open` the server ends once every file was sent whole, counting ranges together.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, UNIX_EPOCH};

use anyhow::{Context, bail};

use super::index::{Catalog, encode, token_prefix};
use super::log::Entry;
use super::request::{ByteRange, RangeAsk, Request, TOKEN_PREFIX, range_of};
use super::response::{self, Response, refuse};
use super::{Admitted, Gate, Handled, header_option, run_server, url_host};
use crate::config::{HttpServe, Link, SendConfig};
use crate::copy::pace::Pacer;
use crate::copy::source::{Listed, Source};
use crate::copy::{self, Framing, Outgoing};
use crate::error::{ExitCode, SessionError};
use crate::link::net;
use crate::progress::Ui;
use crate::send::manifest::Manifest;
use crate::sys::signals;
use crate::terminal;

/// Serves `cfg.paths` until each file was fetched whole (or until a signal, with `--keep-open`).
/// `listening` is told the address before the first accept.
pub fn serve(
    cfg: &SendConfig,
    http: HttpServe,
    listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<ExitCode> {
    let filter = crate::send::filter::Filter::new(&cfg.filters)?;
    let manifest = Manifest::build(&cfg.paths, None, cfg.follow_symlinks, filter)?;
    manifest.warnings.iter().for_each(|w| Ui::hidden().warn(w));
    let catalog = Catalog::new(&manifest)?;
    if catalog.files.is_empty() {
        bail!(SessionError::Usage("nothing to serve: the paths hold no regular file".into()));
    }
    let Link::Listen(addr) = &cfg.net.link else { bail!("--http serves: it needs --listen") };
    let listener = net::listen(addr)?;
    let local = listener.local_addr().context("reading the listening address")?;
    listening(local);
    announce(cfg, &catalog, local);
    let server = Server {
        cfg,
        http,
        gate: Gate { token: cfg.token.clone() },
        fetched: Mutex::new(vec![Coverage::default(); catalog.files.len()]),
        catalog,
        requests: AtomicU64::new(0),
    };
    let code = run_server(&listener, super::MAX_CONNS, |socket, peer, request| {
        server.handle(socket, peer, request)
    })?;
    if cfg.print.summary {
        terminal::lines(&server.summary());
    }
    Ok(code)
}

/// Prints how to fetch: the exact curl command, with the token header. The index is fetched
/// with `--fail-with-body`, so a refusal shows the server's reason (curl 7.76+); a download
/// keeps `-f`, as that option would save the reason under the file's name, where a later
/// `curl -C -` would resume on top of it.
fn announce(cfg: &SendConfig, catalog: &Catalog, local: SocketAddr) {
    if cfg.no_auth {
        Ui::hidden().warn("authentication is off (--no-auth): anyone who can connect may fetch");
    }
    let base = format!("http://{}:{}", url_host(local), local.port());
    let header = header_option(cfg.token.as_ref(), cfg.token_generated);
    match catalog.files.as_slice() {
        [(name, _)] => {
            terminal::line(format!("fetch with: curl -fO{header} {base}/{}", encode(name)));
        }
        files => {
            terminal::line(format!("the list of files: curl --fail-with-body{header} {base}/"));
            let count = files.len();
            terminal::line(format!(
                "fetch each with: curl -fO{header} {base}/PATH ({count} files)"
            ));
        }
    }
    terminal::line(format!("open in a browser: {base}{}/", browser_prefix(cfg)));
}

/// The path prefix that carries the token in a URL: the token itself when zcp made it (it was
/// printed anyway), else a reference to the variable the user keeps it in.
fn browser_prefix(cfg: &SendConfig) -> String {
    match &cfg.token {
        None => String::new(),
        Some(t) if cfg.token_generated => token_prefix(t.reveal()),
        Some(_) => format!("{TOKEN_PREFIX}$ZCP_TOKEN"),
    }
}

/// Which bytes of one file went out in complete responses, as sorted disjoint `[start, end)`.
#[derive(Debug, Clone, Default)]
struct Coverage {
    spans: Vec<(u64, u64)>,
    whole: bool,
}

impl Coverage {
    /// Adds a span that went out; true once the spans cover a file of `size` bytes.
    fn add(&mut self, span: (u64, u64), size: u64) -> bool {
        // Once whole, nothing more to learn: `--keep-open` serves on without keeping spans.
        if self.whole {
            return true;
        }
        self.spans.push(span);
        self.spans.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.spans.len());
        for &(start, end) in &self.spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        self.spans = merged;
        self.whole = matches!(self.spans.as_slice(), [(0, end)] if *end >= size) || size == 0;
        if self.whole {
            self.spans = Vec::new();
        }
        self.whole
    }
}

struct Server<'c> {
    cfg: &'c SendConfig,
    http: HttpServe,
    gate: Gate,
    catalog: Catalog,
    fetched: Mutex<Vec<Coverage>>,
    requests: AtomicU64,
}

impl Server<'_> {
    /// Serves one connection's request; true when every file has now been sent whole.
    fn handle(&self, socket: TcpStream, peer: SocketAddr, request: Request) -> Handled {
        if self.is_favicon(&request) {
            // Every browser asks for one at the site's root, without the token: a quiet
            // `404`, not a `401` and a log line on each visit.
            refuse(&socket, 404, "no icon here", &[]);
            response::close_gently(&socket);
            return false;
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut entry = Entry::new("send", peer, &request.method, &request.target);
        let done = self.answer(&socket, &request, &mut entry);
        entry.print(self.cfg.print);
        response::close_gently(&socket);
        done && !self.http.keep_open
    }

    fn answer(&self, socket: &TcpStream, request: &Request, entry: &mut Entry) -> bool {
        let body_too = match request.method.as_str() {
            "GET" => true,
            "HEAD" => false,
            _ => {
                entry.status = 405;
                let why = "zcp send --http serves GET and HEAD";
                refuse(socket, 405, why, &[("Allow", "GET, HEAD")]);
                return false;
            }
        };
        let Some(admitted) = self.gate.admit(request) else {
            self.gate.refuse(socket, request, ", or open the URL with /t/TOKEN/ printed at start");
            (entry.status, entry.reason) = (401, Some("wrong or missing token".into()));
            return false;
        };
        let name = admitted.path.strip_prefix(b"/").unwrap_or(admitted.path);
        if name.is_empty() {
            entry.status = 200;
            self.index(socket, request, &admitted, body_too);
            return false;
        }
        let Some(index) = self.catalog.find(name) else {
            entry.status = 404;
            refuse(socket, 404, "not served here: GET / lists what is", &[]);
            return false;
        };
        match self.send_file(socket, request, index, body_too, entry) {
            Ok(Some((span, size))) => {
                let (completed, all) = self.record(index, span, size);
                if completed {
                    entry.reason = Some("the file has now been fetched whole".into());
                }
                all
            }
            Ok(None) => false,
            Err(e) => {
                entry.reason = Some(format!("{e:#}"));
                false
            }
        }
    }

    /// A `GET /favicon.ico` that does not carry the token: a browser's own request.
    fn is_favicon(&self, request: &Request) -> bool {
        request.path == b"/favicon.ico" && self.gate.admit(request).is_none()
    }

    /// Answers the index: HTML with links for a browser (it names `text/html` in `Accept`),
    /// else one URL path per line. Links carry the token when the page was fetched by it.
    fn index(&self, socket: &TcpStream, request: &Request, admitted: &Admitted, body_too: bool) {
        // The page's URL carries the token: no `Referer` may take it to another site.
        let response = Response::new(200).header("Referrer-Policy", "no-referrer");
        let _ = if request.wants_html() {
            let base = match (&self.cfg.token, admitted.by_url) {
                (Some(token), true) => token_prefix(token.reveal()),
                _ => String::new(),
            };
            let page = self.catalog.html(&base);
            response.send_page(socket, "text/html; charset=utf-8", &page, body_too)
        } else {
            response.send_text(socket, &self.catalog.listing(), body_too)
        };
    }

    /// Answers for one file; the span of its bytes sent whole, and its size, when a body went.
    fn send_file(
        &self,
        socket: &TcpStream,
        request: &Request,
        index: usize,
        body_too: bool,
        entry: &mut Entry,
    ) -> anyhow::Result<Option<((u64, u64), u64)>> {
        let mut source = self.open(socket, index, entry)?;
        let size = source.size.unwrap_or_default();
        let (etag, modified) = validators(&source)?;
        let validated =
            request.if_range.as_deref().is_none_or(|v| v == etag || v == modified.as_str());
        let ask =
            if validated { range_of(request.range.as_deref(), size) } else { RangeAsk::Whole };
        let content_type =
            mime_guess::from_path(&self.catalog.files[index].0).first_or_octet_stream();
        let mut response = Response::new(200)
            .header("Content-Type", content_type.essence_str())
            .header("Referrer-Policy", "no-referrer")
            .header("Accept-Ranges", "bytes")
            .header("ETag", etag)
            .header("Last-Modified", modified);
        let (first, len) = match ask {
            RangeAsk::Whole => (0, size),
            RangeAsk::Part(ByteRange { first, last }) => {
                response.status = 206;
                let content_range = format!("bytes {first}-{last}/{size}");
                response = response.header("Content-Range", content_range);
                entry.range = Some(format!("{first}-{last}"));
                (first, last - first + 1)
            }
            // curl 7.x reads `Content-Range: bytes */SIZE` as "no resume" and then fails a
            // `-f` download on the 416; without the header it takes the 416 as "already
            // complete" (its `http_should_fail`) and exits 0, as wget -c does either way.
            RangeAsk::AtEnd => {
                entry.status = 416;
                refuse(socket, 416, "the whole file is already there", &[]);
                return Ok(None);
            }
            RangeAsk::Unsatisfiable => {
                entry.status = 416;
                let all = format!("bytes */{size}");
                refuse(socket, 416, "range not satisfiable", &[("Content-Range", &all)]);
                return Ok(None);
            }
        };
        entry.status = response.status;
        let mut writer = socket;
        std::io::Write::write_all(&mut writer, &response.head(len)).context("sending the head")?;
        if !body_too {
            return Ok(None);
        }
        source.size = Some(first + len);
        self.send_body(socket, &source, first, len, entry)?;
        Ok(Some(((first, first + len), size)))
    }

    /// Opens a served file again for one request (it may have changed since the start);
    /// answers `404` when it cannot be read or is no longer a regular file.
    fn open(&self, socket: &TcpStream, index: usize, entry: &mut Entry) -> anyhow::Result<Source> {
        let path = &self.catalog.files[index].1;
        match Source::open_listed(path, Listed::Regular, self.cfg.follow_symlinks) {
            Ok(source) if source.size.is_some() => Ok(source),
            result => {
                entry.status = 404;
                refuse(socket, 404, "this file cannot be read any more", &[]);
                let why = result
                    .err()
                    .map_or("it is no longer a regular file".into(), |e| format!("{e:#}"));
                bail!(why)
            }
        }
    }

    /// Sends `len` bytes of `source` from `first` by the data paths: plain `sendfile`, since
    /// smaller calls, socket-buffer and Nagle settings, warming the pages and a one-copy send
    /// were measured against it and none made curl faster (README, Benchmarks).
    fn send_body(
        &self,
        socket: &TcpStream,
        source: &Source,
        first: u64,
        len: u64,
        entry: &mut Entry,
    ) -> anyhow::Result<()> {
        socket.set_write_timeout(self.cfg.net.idle_timeout).context("setting a write timeout")?;
        let mut pacer = Pacer::new(self.cfg.limit_rate);
        let out = Outgoing {
            source,
            socket: socket.into(),
            offset: first,
            buffer_size: self.cfg.buffer_size,
            max_call: pacer.max_call(),
            framing: Framing::Sized(len),
            checksum: false,
        };
        let mut tick = |sent: u64| -> anyhow::Result<()> {
            if let Some(signal) = signals::pending() {
                let message = format!("stopped by {signal} after {sent} of {len} bytes");
                return Err(SessionError::Interrupted { signal, message }.into());
            }
            pacer.pace(sent);
            Ok(())
        };
        let started = Instant::now();
        let moved = copy::send(&out, self.cfg.method, &mut tick);
        let moved = moved.with_context(|| format!("sending {}", source.display))?;
        entry.moved(&moved, started.elapsed());
        Ok(())
    }

    /// Notes a span sent whole: whether it completed its file, and whether every file has now
    /// been sent whole.
    fn record(&self, index: usize, span: (u64, u64), size: u64) -> (bool, bool) {
        let mut fetched = self.fetched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = fetched[index].whole;
        let completed = fetched[index].add(span, size) && !before;
        (completed, fetched.iter().all(|c| c.whole))
    }

    fn summary(&self) -> String {
        let fetched = self.fetched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let whole = fetched.iter().filter(|c| c.whole).count();
        let requests = self.requests.load(Ordering::SeqCst);
        let plural = if requests == 1 { "" } else { "s" };
        format!(
            "served {requests} request{plural}; {whole} of {} files fetched whole",
            fetched.len()
        )
    }
}

/// The `ETag` (size and mtime in nanoseconds: it changes whenever either does) and the
/// `Last-Modified` date of a file.
fn validators(source: &Source) -> anyhow::Result<(String, String)> {
    let meta = source.file.metadata().context("reading the file's metadata")?;
    let nanos = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    let etag = format!("\"{:x}-{:x}\"", meta.size(), nanos);
    // httpdate cannot show dates before 1970; such a file says 1970.
    let modified = httpdate::fmt_http_date(meta.modified().unwrap_or(UNIX_EPOCH).max(UNIX_EPOCH));
    Ok((etag, modified))
}

#[cfg(test)]
mod tests {
    use super::Coverage;

    #[test]
    fn ranges_sent_whole_add_up_to_a_whole_file() {
        let mut c = Coverage::default();
        assert!(!c.add((0, 400), 1000), "a first part");
        assert!(!c.add((600, 1000), 1000), "a hole in the middle");
        assert!(c.add((300, 700), 1000), "the hole filled");
        assert!(c.spans.is_empty(), "a whole file keeps no spans: {:?}", c.spans);
        assert!(c.add((10, 20), 1000), "and stays whole");
        assert!(c.spans.is_empty(), "--keep-open requests add none: {:?}", c.spans);
        let mut empty = Coverage::default();
        assert!(empty.add((0, 0), 0), "an empty file is whole at once");
    }
}
