//! `zcp recv --http`: takes `PUT` uploads (`curl -T FILE http://HOST:PORT/`, or a chunked
//! stream from `curl -T -`, see `chunked`) under the same rules as a zcp session's files: the
//! naming rule, `--max-size`, the free space, existing targets (`--force`), a locked part file
//! renamed into place only once every byte arrived, written by `splice` socket→pipe→file
//! (buffered where that cannot serve, saying why). HTTP carries no checksum and no resume: a
//! failed upload removes its part file.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use humansize::{BINARY, format_size};

use super::chunked;
use super::log::Entry as LogEntry;
use super::request::MalformedBody;
use super::request::Request;
use super::response::{self, Response, refuse};
use super::{Gate, Handled, header_option, run_server, url_host};
use crate::config::{HttpAccept, Link, RecvConfig};
use crate::copy::{self, Framing, Incoming};
use crate::disk::{self, Barrier, Decision, Destination, Listing, LockedPart, Target};
use crate::error::{ExitCode, SessionError};
use crate::link::net;
use crate::progress::Ui;
use crate::protocol::{Entry, EntryKind, RefuseCode, names};
use crate::sys::signals;
use crate::terminal;

/// Takes uploads until one landed (or until a signal, with `--keep-open`). `listening` is told
/// the address before the first accept.
pub fn accept(
    cfg: &RecvConfig,
    http: HttpAccept,
    listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<ExitCode> {
    let dest = Destination::resolve(&cfg.output)?;
    // A missing `--output DIR/` is made, as for `zcp recv`; a missing path without `/` is the
    // one file to write.
    let (dest, created) = dest.directory_for(&[])?.map_or((dest, false), |made| made);
    if created && cfg.fsync {
        disk::sync_parent_of(&cfg.output)?;
    }
    let Link::Listen(addr) = &cfg.net.link else { bail!("--http listens: it takes no --connect") };
    let listener = net::listen(addr)?;
    let local = listener.local_addr().context("reading the listening address")?;
    listening(local);
    if cfg.token.is_none() {
        Ui::hidden()
            .warn("authentication is off (--no-auth): anyone who can connect may write here");
    }
    let header = header_option(cfg.token.as_ref(), cfg.token_generated);
    // `--fail-with-body`: a refusal (409, an existing file) shows the server's reason.
    let (host, port) = (url_host(local), local.port());
    terminal::line(format!(
        "upload with: curl --fail-with-body -T FILE{header} http://{host}:{port}/"
    ));
    let gate = Gate { token: cfg.token.clone() };
    let acceptor = Acceptor { cfg, http, dest, gate, saved: 0.into() };
    let code = run_server(&listener, http.max_conns as usize, |socket, peer, request| {
        acceptor.handle(socket, peer, request)
    })?;
    if cfg.print.summary && (http.keep_open || code != ExitCode::Success) {
        let saved = acceptor.saved.load(Ordering::SeqCst);
        terminal::line(format!("received {}", crate::units::counted(saved, "upload")));
    }
    Ok(code)
}

struct Acceptor<'c> {
    cfg: &'c RecvConfig,
    http: HttpAccept,
    dest: Destination,
    gate: Gate,
    saved: AtomicU64,
}

/// A refused request: its status and the one line that says why.
type Refused = (u16, String);

/// An upload that got its name, after which `--fsync`'s directory sync failed.
#[derive(Debug)]
struct NotDurable;

impl std::fmt::Display for NotDurable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("it is not known to be durable (--fsync)")
    }
}

impl Acceptor<'_> {
    /// Serves one connection's request; true when an upload landed and the server is done.
    fn handle(&self, socket: TcpStream, peer: SocketAddr, request: Request) -> Handled {
        let mut entry = LogEntry::new("recv", peer, &request.method, &request.target);
        let saved = match self.answer(&socket, &request, &mut entry) {
            Ok(saved) => saved,
            Err((status, why)) => {
                refuse(&socket, status, &why, &allow(status));
                (entry.status, entry.reason) = (status, Some(why));
                false
            }
        };
        entry.print(self.cfg.print);
        response::close_gently(&socket);
        if saved {
            self.saved.fetch_add(1, Ordering::SeqCst);
        }
        saved && !self.http.keep_open
    }

    /// Checks the request, then receives its body; `Ok(false)` when it failed after the body
    /// began (nothing left to answer).
    fn answer(
        &self,
        socket: &TcpStream,
        request: &Request,
        entry: &mut LogEntry,
    ) -> Result<bool, Refused> {
        if request.method != "PUT" {
            return Err((405, "zcp recv --http takes uploads: curl -T FILE URL (PUT)".into()));
        }
        if !self.gate.admits(request) {
            let _ = self.gate.check(socket, request);
            (entry.status, entry.reason) = (401, Some("wrong or missing token".into()));
            return Ok(false);
        }
        let length = content_length(request)?;
        let name = request.path.strip_prefix(b"/").unwrap_or(&request.path);
        if name.is_empty() || name.ends_with(b"/") {
            let why = "the URL names no file: PUT to /NAME (curl -T FILE URL/ appends the name)";
            return Err((400, why.into()));
        }
        names::components(name).map_err(|why| (400, format!("refused name: {why}")))?;
        if let Some(length) = length {
            self.check_room(length)?;
        }
        let file = Entry {
            kind: EntryKind::File,
            name: name.to_vec(),
            size: length,
            mode: 0o666,
            mtime_sec: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            mtime_nsec: 0,
        };
        let mut listing = Listing::default();
        let landed = match self.dest.decide(&file, self.cfg.policy, &mut listing) {
            Ok(Decision::Receive { target, lock, .. }) => {
                // No resume over HTTP: the lock the plan took to hash a prefix goes, and the
                // part file is locked again to be written from its start.
                drop(lock.take());
                self.receive(socket, request, (&target, &file, listing.made()), entry)
            }
            Ok(_) => Err((409, "this upload cannot be written here".into())),
            Err(refusal) => Err((status_of(refusal.code), refusal.reason)),
        };
        if !matches!(landed, Ok(true)) {
            // Directories made for an upload that did not land go again (only while empty).
            self.dest.undo(&listing);
        }
        landed
    }

    /// Refuses an upload larger than `--max-size` or the free space, before a byte of it.
    fn check_room(&self, length: u64) -> Result<(), Refused> {
        if let Some(max) = self.cfg.max_size.filter(|&max| length > max) {
            let (need, max) = (format_size(length, BINARY), format_size(max, BINARY));
            return Err((413, format!("upload of {need} is over --max-size {max}")));
        }
        match self.dest.free_space() {
            Some(free) if length > free => Err((
                507,
                format!(
                    "upload needs {}, {} free",
                    format_size(length, BINARY),
                    format_size(free, BINARY)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Receives the body into the target's part file and puts it in place; `made` are the
    /// directories made for it.
    fn receive(
        &self,
        socket: &TcpStream,
        request: &Request,
        (target, file, made): (&Target, &Entry, &[&[u8]]),
        entry: &mut LogEntry,
    ) -> Result<bool, Refused> {
        let shown = String::from_utf8_lossy(&file.name).into_owned();
        let part = target.part().open_locked(&shown, 0).map_err(|e| (409, format!("{e:#}")))?;
        let started = Instant::now();
        // No resume over HTTP: a part file would only be left behind, so a failed upload's is
        // removed (by `place` once the body arrived), while its lock is held.
        let landed = match self.body(socket, request, &part, file) {
            Ok(moved) => {
                entry.moved(&moved, started.elapsed());
                self.place(target, part, file, made)
            }
            Err(e) => {
                target.part().discard();
                Err(e)
            }
        };
        if let Err(e) = landed {
            if e.downcast_ref::<NotDurable>().is_some() {
                // In place under its name: say so, and that --fsync's promise does not hold.
                let saved_as = target.shown().display().to_string();
                let why = format!("saved {saved_as}, but {e:#}");
                entry.saved_as = Some(saved_as);
                return Err((500, why));
            }
            let why = format!("{e:#}; nothing saved");
            return match failure_status(&e) {
                Some(status) => Err((status, why)),
                None => {
                    (entry.status, entry.reason) = (400, Some(why));
                    Ok(false)
                }
            };
        }
        let saved_as = target.shown().display().to_string();
        let text = format!("saved {saved_as} ({} bytes)\n", entry.bytes);
        let _ = Response::new(201).send_text(socket, &text, true);
        (entry.status, entry.saved_as) = (201, Some(saved_as));
        Ok(true)
    }

    /// Renames the complete part file into place; with `--fsync` as `zcp recv --fsync` does
    /// (`disk::Barrier`): its data synced before the rename, then the directories that gained a
    /// name (its own, and the parents of those `made` for it) synced after.
    fn place(
        &self,
        target: &Target,
        part: LockedPart,
        file: &Entry,
        made: &[&[u8]],
    ) -> anyhow::Result<()> {
        let force = self.cfg.policy.force;
        let placed = match self.cfg.fsync {
            false => target.part().commit(&part, file, force),
            true => {
                let barrier = Barrier::new(force, self.http.max_conns);
                let synced = target.part().prepare(&part, file).and_then(|()| {
                    barrier.hold_part(target, part)?;
                    made.iter().for_each(|dir| barrier.made_dir(dir));
                    barrier.finish(&self.dest)?;
                    // The barrier files a name taken meanwhile away as a refusal of that file
                    // alone; for an upload of one file that is the answer.
                    match barrier.take_refused().into_iter().next() {
                        Some(taken) => Err(SessionError::Refused {
                            name: taken.target.shown().display().to_string(),
                            reason: taken.reason,
                        }
                        .into()),
                        None => Ok(()),
                    }
                });
                match synced {
                    Err(e) if barrier.placed() => return Err(e.context(NotDurable)),
                    other => other,
                }
            }
        };
        if placed.is_err() {
            target.part().discard();
        }
        placed
    }

    /// The body's bytes into `part`, after the go-ahead a waiting client asked for.
    fn body(
        &self,
        socket: &TcpStream,
        request: &Request,
        part: &std::fs::File,
        file: &Entry,
    ) -> anyhow::Result<copy::Moved> {
        if request.expects_continue {
            response::send_continue(socket).context("sending 100 Continue")?;
        }
        socket.set_read_timeout(self.cfg.net.idle_timeout).context("setting a read timeout")?;
        let max = self.cfg.max_size;
        let mut tick = |got: u64| -> anyhow::Result<()> {
            if let Some(signal) = signals::pending() {
                let message = format!("stopped by {signal} after {got} bytes");
                return Err(SessionError::Interrupted { signal, message }.into());
            }
            match max {
                Some(max) if got > max => Err(OverMaxSize(max).into()),
                _ => Ok(()),
            }
        };
        let Some(length) = file.size else {
            let sink = chunked::Sink {
                socket,
                file: part,
                method: self.cfg.method,
                buffer_size: self.cfg.buffer_size,
            };
            return chunked::receive(&sink, &mut tick);
        };
        let inc = Incoming {
            socket: socket.into(),
            file: part,
            framing: Framing::Sized(length),
            offset: 0,
            positioned: true,
            buffer_size: self.cfg.buffer_size,
            checksum: false,
        };
        copy::recv(&inc, self.cfg.method, &mut tick)
    }
}

/// The body length an upload announces: `None` for a chunked body (`curl -T -`).
fn content_length(request: &Request) -> Result<Option<u64>, Refused> {
    let chunked = |te: &str| te.eq_ignore_ascii_case("chunked");
    match (request.transfer_encoding.as_deref(), &request.content_length) {
        // Both at once is how requests are smuggled past proxies (RFC 9112 §6.3).
        (Some(_), Some(_)) => Err((400, "both Transfer-Encoding and Content-Length".into())),
        (Some(te), None) if chunked(te) => Ok(None),
        (Some(te), None) => Err((501, format!("transfer coding {te:?}: only chunked is taken"))),
        (None, None) => Err((411, "no Content-Length and not chunked".into())),
        (None, Some(Err(text))) => Err((400, format!("bad Content-Length {text:?}"))),
        (None, Some(Ok(length))) => Ok(Some(*length)),
    }
}

/// A chunked upload that grew past `--max-size` (`413`).
#[derive(Debug)]
struct OverMaxSize(u64);

impl std::fmt::Display for OverMaxSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the upload passed --max-size {}", format_size(self.0, BINARY))
    }
}

impl std::error::Error for OverMaxSize {}

/// The answer to an upload that failed after it was accepted; `None` when the client is gone
/// (or stopped by a signal here) and nothing can be answered.
fn failure_status(e: &anyhow::Error) -> Option<u16> {
    match e.downcast_ref::<SessionError>() {
        Some(SessionError::ConnectionLost { .. } | SessionError::Interrupted { .. }) => None,
        Some(SessionError::Refused { .. }) => Some(409),
        _ if e.downcast_ref::<OverMaxSize>().is_some() => Some(413),
        _ if e.downcast_ref::<MalformedBody>().is_some() => Some(400),
        _ => match e.downcast_ref::<std::io::Error>().map(std::io::Error::kind) {
            Some(std::io::ErrorKind::AlreadyExists) => Some(409),
            Some(std::io::ErrorKind::StorageFull) => Some(507),
            Some(_) => Some(500),
            // Not a file's failure, and not typed: told as the request's fault, as before.
            None => Some(400),
        },
    }
}

/// The status that tells a client why its file was refused.
fn status_of(code: RefuseCode) -> u16 {
    match code {
        RefuseCode::Exists => 409,
        RefuseCode::InvalidName => 400,
        RefuseCode::NotWritable => 403,
        RefuseCode::NoSpace => 507,
        RefuseCode::Unsupported => 409,
        RefuseCode::Other => 500,
    }
}

/// Headers a refusal carries: `Allow` for the wrong method.
fn allow(status: u16) -> Vec<(&'static str, &'static str)> {
    if status == 405 { vec![("Allow", "PUT")] } else { Vec::new() }
}
