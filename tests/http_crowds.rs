//! HTTP mode under hostile clients: request heads that trickle in cannot hold the slots a
//! complete, authorised request needs, an upload path is held to the naming rule's depth bound,
//! and text from a client that never showed the token reaches the terminal escaped.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use crate::util::{Process, STARTUP, TOKEN, subdir, zcp_command};

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

/// Sends `bytes` as a request and returns all the server answered.
fn raw_request(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut socket = TcpStream::connect(addr).expect("connecting");
    socket.set_read_timeout(Some(STARTUP)).expect("timeout");
    socket.write_all(bytes).expect("sending the request");
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
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
