//! A file swapped after the walk: `srv/a.txt` replaced by a link to `../outside/secret` (or by
//! a FIFO nobody writes) once `zcp send` or `zcp send --http` has listed it. Its turn comes, the
//! link is not followed and the FIFO not waited on, the file is refused as changed since it was
//! listed, and the secret never leaves: by `zcp send` (a large file, by the data paths, and a
//! small one, batched) and by every `send --http` request.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{
    Process, Receiver, STARTUP, TOKEN, assert_no_panic, assert_says, pseudo_random, send_cmd,
    send_listening, subdir, wait_until, write_random_file,
};

/// A file sent by the data paths, and one small enough to go batched.
const LENGTHS: [usize; 2] = [256 << 10, 1000];

/// `work/srv/a.txt` of `len` bytes and `work/outside/secret` of the same length (so that a
/// sender that followed the link would send it whole); returns `a.txt` and the secret.
fn served(work: &Path, len: usize) -> (PathBuf, Vec<u8>) {
    let secret = pseudo_random(len, 0x5ec2e7);
    fs::write(subdir(work, "outside").join("secret"), &secret).expect("writing the secret");
    let a = subdir(work, "srv").join("a.txt");
    write_random_file(&a, len, 1);
    (a, secret)
}

/// What a listed file is swapped for.
#[derive(Debug, Clone, Copy)]
enum Swap {
    /// A symlink to `../outside/secret`.
    Link,
    /// A FIFO nobody writes: opening it for reading would wait forever.
    Fifo,
}

/// Replaces `a` by `swap`.
fn swap(a: &Path, swap: Swap) {
    fs::remove_file(a).expect("removing the listed file");
    match swap {
        Swap::Link => {
            std::os::unix::fs::symlink("../outside/secret", a).expect("planting the symlink")
        }
        Swap::Fifo => nix::unistd::mkfifo(a, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("planting a FIFO"),
    }
}

/// Every case: the listed file's length and what it is swapped for (the batched path opened
/// small files without following links or waiting on FIFOs already).
fn cases() -> Vec<(usize, Swap)> {
    let mut cases: Vec<(usize, Swap)> = LENGTHS.iter().map(|&len| (len, Swap::Link)).collect();
    cases.push((LENGTHS[0], Swap::Fifo));
    cases
}

/// Whether any file below `dir` (part files too) holds the start of `secret`.
fn holds_secret(dir: &Path, secret: &[u8]) -> bool {
    let needle = &secret[..64];
    fs::read_dir(dir).expect("listing").flatten().any(|e| {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => holds_secret(&path, secret),
            Ok(t) if t.is_file() => {
                fs::read(&path).is_ok_and(|bytes| bytes.windows(64).any(|w| w == needle))
            }
            _ => false,
        }
    })
}

/// Opens the FIFO at `path` for writing once its reader has opened it (`ENXIO` until then),
/// failing after `STARTUP`.
fn open_when_read(path: &Path) -> fs::File {
    let mut opened = None;
    wait_until(STARTUP, "the sender to open its pipe", || {
        opened = OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(path).ok();
        opened.is_some()
    });
    opened.expect("an opened pipe")
}

#[test]
fn zcp_send_refuses_a_file_swapped_after_the_walk() {
    for (len, swapped) in cases() {
        let work = tempfile::tempdir().expect("tempdir");
        let (a, secret) = served(work.path(), len);
        let dst = subdir(work.path(), "dst");
        // A pipe offered first holds the sender after its walk until the test closes it.
        let pipe = work.path().join("pipe");
        nix::unistd::mkfifo(&pipe, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let receiver = Receiver::start(&dst, &[]);
        let srv = work.path().join("srv");
        let sender = Process::spawn(send_cmd(&[&pipe, &srv], &receiver.dest(), &[], &[]));
        let mut writer = open_when_read(&pipe);
        swap(&a, swapped);
        writer.write_all(b"the pipe's bytes").expect("writing to the pipe");
        drop(writer);
        let sent = sender.wait_for(Duration::from_secs(20));
        let received = receiver.wait_for(Duration::from_secs(20));
        assert_no_panic(&sent, "sender");
        assert_no_panic(&received, "receiver");
        let case = format!("{len} bytes, swapped for a {swapped:?}");
        assert_ne!(sent.code(), Some(0), "{case}: the sender succeeded:\n{}", sent.stderr);
        assert_says(&sent, "srv/a.txt changed since it was listed", "sender");
        assert!(!holds_secret(&dst, &secret), "{case}: the secret was sent");
    }
}

/// `GET /PATH` with the test token; the status and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut socket = TcpStream::connect(addr).expect("connecting to the server");
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("a read timeout");
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).expect("sending the request");
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let status = String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {:?}", String::from_utf8_lossy(&answer)));
    (status, answer)
}

#[test]
fn send_http_refuses_a_served_file_swapped_after_the_walk() {
    for (len, swapped) in cases() {
        let case = format!("{len} bytes, swapped for a {swapped:?}");
        let work = tempfile::tempdir().expect("tempdir");
        let (a, secret) = served(work.path(), len);
        let srv = work.path().join("srv");
        let (mut server, addr) = send_listening(&srv, &["--http", "--keep-open"]);
        let (status, _) = get(addr, "/srv/a.txt");
        assert_eq!(status, 200, "{case}: the file before the swap");
        swap(&a, swapped);
        let (status, body) = get(addr, "/srv/a.txt");
        assert_eq!(status, 404, "{case}: the swapped file was served");
        assert!(!body.windows(64).any(|w| w == &secret[..64]), "{case}: the secret was sent");
        assert!(server.running(), "the server ended");
        let served = server.kill();
        assert_says(&served, "changed since it was listed", "server");
    }
}
