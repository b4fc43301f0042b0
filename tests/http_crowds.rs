//! HTTP mode under hostile clients: request heads that trickle in cannot hold the slots a
//! complete, authorised request needs, an upload path is held to the naming rule's depth bound,
//! and text from a client that never showed the token reaches the terminal escaped.

use std::ffi::OsString;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::raw_request;
use crate::util::{Process, TOKEN, skip, subdir, unusable, zcp_command};

/// Slow heads held open at once: as many as the slots `send --http` (and `recv --http` by
/// default) answers requests in.
const SLOW: usize = 16;

/// `zcp ARGS…` with the test token, started; with its address.
fn start(args: &[OsString]) -> (Process, SocketAddr) {
    let mut process = Process::spawn(zcp_command(args, &[]));
    let addr = process.listening();
    (process, addr)
}

/// `zcp recv --http --listen 127.0.0.1:0 --output DIR EXTRA…`.
fn accept_into(dir: &Path, extra: &[&str]) -> (Process, SocketAddr) {
    let mut args: Vec<OsString> =
        ["recv", "--http", "--listen", "127.0.0.1:0", "--output"].map(OsString::from).into();
    args.push(dir.as_os_str().to_owned());
    args.extend(extra.iter().map(OsString::from));
    start(&args)
}

/// An upload of `body` to `path` with the test token.
fn put(path: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: zcp\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

#[test]
fn an_upload_path_deeper_than_the_depth_bound_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (server, addr) = accept_into(&dst, &["--keep-open"]);
    let deep = format!("/{}a", "a/".repeat(2047));
    let answer = raw_request(addr, &put(&deep, b"data"));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("2048 components deep, more than the 256"), "{answer}");
    let made: Vec<_> = std::fs::read_dir(&dst).expect("the output").collect();
    assert!(made.is_empty(), "the refused upload left {made:?}");
    // The bound is the naming rule's: 256 components are taken.
    let deepest = format!("/{}f", "d/".repeat(255));
    let answer = raw_request(addr, &put(&deepest, b"data"));
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let saved = dst.join("d/".repeat(255)).join("f");
    assert_eq!(std::fs::read(&saved).expect("the deepest upload"), b"data");
    drop(server);
}

/// `SLOW` connections each trickling a request head a byte a second, re-opened when the server
/// closes one. They stop when dropped, or by themselves after a minute.
struct SlowHeads {
    stop: Arc<AtomicBool>,
    trickler: Option<thread::JoinHandle<()>>,
}

impl SlowHeads {
    fn open(addr: SocketAddr) -> SlowHeads {
        let head = format!("GET / HTTP/1.1\r\nHost: zcp\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
        let mut held: Vec<(TcpStream, usize)> =
            (0..SLOW).map(|_| (TcpStream::connect(addr).expect("connecting"), 0)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let trickler = thread::spawn(move || {
            let started = Instant::now();
            while !stopped.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                for (socket, sent) in &mut held {
                    let byte = head.as_bytes()[*sent % head.len()];
                    match socket.write_all(&[byte]) {
                        Ok(()) => *sent += 1,
                        Err(_) => {
                            if let Ok(again) = TcpStream::connect(addr) {
                                (*socket, *sent) = (again, 0);
                            }
                        }
                    }
                }
                // The trickle's pace is the scenario under test, not synchronisation.
                thread::sleep(Duration::from_secs(1));
            }
        });
        SlowHeads { stop, trickler: Some(trickler) }
    }
}

impl Drop for SlowHeads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(trickler) = self.trickler.take() {
            let _ = trickler.join();
        }
    }
}

/// `curl -sS ARGS… -w %{http_code}` with the test token: the status it got.
fn curl_status(args: &[&str]) -> u16 {
    let auth = format!("Authorization: Bearer {TOKEN}");
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", &auth])
        .args(args)
        .output()
        .expect("running curl");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| {
        panic!("curl printed no status: {}", String::from_utf8_lossy(&out.stderr))
    })
}

#[test]
fn slow_heads_do_not_turn_away_a_complete_request() {
    if let Some(why) = unusable("curl", &["--version"]) {
        return skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("a.txt");
    std::fs::write(&src, b"served behind slow heads\n").expect("a source");
    let args: Vec<OsString> = ["send", "--http", "--keep-open", "--listen", "127.0.0.1:0"]
        .iter()
        .map(OsString::from)
        .chain([src.as_os_str().to_owned()])
        .collect();
    let (server, addr) = start(&args);
    let slow = SlowHeads::open(addr);
    // Every slot would be taken by now if heads held them.
    thread::sleep(Duration::from_secs(2));
    for _ in 0..5 {
        assert_eq!(curl_status(&[&format!("http://{addr}/a.txt")]), 200, "GET behind slow heads");
    }
    drop(slow);
    drop(server);

    let dst = subdir(work.path(), "dst");
    let (server, addr) = accept_into(&dst, &["--keep-open"]);
    let slow = SlowHeads::open(addr);
    thread::sleep(Duration::from_secs(2));
    let file = src.to_str().expect("utf-8 path");
    for i in 0..5 {
        let url = format!("http://{addr}/up{i}.txt");
        assert_eq!(curl_status(&["-T", file, &url]), 201, "PUT behind slow heads");
    }
    assert_eq!(
        std::fs::read(dst.join("up4.txt")).expect("the last upload"),
        std::fs::read(&src).unwrap()
    );
    drop(slow);
    drop(server);
}

#[test]
fn text_from_a_client_without_the_token_is_escaped_in_both_http_modes() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("a.txt");
    std::fs::write(&src, b"a\n").expect("a source");
    let dst = subdir(work.path(), "dst");
    let serving: Vec<OsString> = ["send", "--http", "--listen", "127.0.0.1:0"]
        .iter()
        .map(OsString::from)
        .chain([src.as_os_str().to_owned()])
        .collect();
    for (mode, (server, addr)) in [("send", start(&serving)), ("recv", accept_into(&dst, &[]))] {
        // A C1 control (CSI, U+009B, which some terminals obey like ESC [) in UTF-8, then
        // "2K": erase the line.
        let answer = raw_request(addr, b"PUT /\xc2\x9b2K HTTP/1.1\r\nHost: zcp\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 4"), "{mode}: {answer}");
        let stderr = server.kill().stderr;
        let raw = stderr.chars().find(|&c| c.is_control() && c != '\n');
        assert!(raw.is_none(), "{mode} --http printed {raw:?} raw:\n{stderr:?}");
        assert!(stderr.contains("\\u{9b}2K"), "{mode} --http:\n{stderr}");
    }
}
