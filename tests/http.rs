//! HTTP mode against real curl: `zcp send --http` serving whole files, ranges and resumed
//! downloads byte-identical by sendfile; `zcp recv --http` taking `curl -T` uploads by splice,
//! atomically; tokens, malformed requests and path traversal refused. Skipped, with the reason,
//! where curl (or, for the syscall checks, strace) is missing.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::{
    Finished, Process, STARTUP, TOKEN, TOKEN_ENV, ZCP, assert_exit, assert_file_holds, skip,
    subdir, unusable, wait_until, write_random_file,
};

const MIB: usize = 1 << 20;

/// Skips the test (returning from it) where curl is missing.
macro_rules! require_curl {
    () => {
        if let Some(why) = unusable("curl", &["--version"]) {
            return skip(&why);
        }
    };
}

/// Skips the test where strace is missing or cannot trace.
macro_rules! require_strace {
    () => {
        if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
            return skip(&why);
        }
    };
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// `curl -sS ARGS…` run to the end.
fn curl(args: &[&str]) -> Output {
    Command::new("curl").arg("-sS").args(args).output().expect("running curl")
}

/// `curl` with the test token, writing the body to `out`; returns the HTTP status.
fn fetch(url: &str, out: &Path, extra: &[&str]) -> u16 {
    let out = out.to_str().expect("utf-8 path");
    let auth = bearer(TOKEN);
    let mut args = vec!["-H", &auth, "-o", out, "-w", "%{http_code}"];
    args.extend_from_slice(extra);
    args.push(url);
    status_of(&curl(&args))
}

fn status_of(out: &Output) -> u16 {
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| {
        panic!("curl printed no status: {}", String::from_utf8_lossy(&out.stderr))
    })
}

/// `[wrapper…] zcp ARGS…` with the test token, started; with its address.
fn start(wrapper: &[OsString], args: &[OsString]) -> (Process, SocketAddr) {
    let mut cmd = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg(ZCP);
            cmd
        }
        None => Command::new(ZCP),
    };
    cmd.args(args).env(TOKEN_ENV, TOKEN);
    let mut process = Process::spawn(cmd);
    let addr = process.listening();
    (process, addr)
}

/// `zcp send --http PATHS… --listen 127.0.0.1:0 EXTRA…`.
fn serve(paths: &[&Path], extra: &[&str]) -> (Process, SocketAddr) {
    serve_under(&[], paths, extra)
}

fn serve_under(wrapper: &[OsString], paths: &[&Path], extra: &[&str]) -> (Process, SocketAddr) {
    let mut args: Vec<OsString> = vec!["send".into(), "--http".into()];
    args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    args.extend(["--listen", "127.0.0.1:0"].iter().chain(extra).map(OsString::from));
    start(wrapper, &args)
}

/// `zcp recv --http --listen 127.0.0.1:0 --output DIR EXTRA…`.
fn accept_into(wrapper: &[OsString], dir: &Path, extra: &[&str]) -> (Process, SocketAddr) {
    let mut args: Vec<OsString> =
        ["recv", "--http", "--listen", "127.0.0.1:0", "--output"].map(OsString::from).into();
    args.push(dir.as_os_str().to_owned());
    args.extend(extra.iter().map(OsString::from));
    start(wrapper, &args)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// Sends raw bytes as a request and returns all the server answered.
pub(crate) fn raw_request(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut socket = TcpStream::connect(addr).expect("connecting");
    socket.set_read_timeout(Some(STARTUP)).expect("timeout");
    socket.write_all(bytes).expect("sending the request");
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Bytes moved by the successful calls named `call` in an `strace -f` log.
fn traced_bytes(log: &str, call: &str) -> i64 {
    log.lines()
        .filter(|l| l.contains(&format!("{call}(")) && !l.contains("unfinished"))
        .chain(log.lines().filter(|l| l.contains(&format!("<... {call} resumed>"))))
        .filter_map(|l| l.rsplit_once(" = ")?.1.split(' ').next()?.parse::<i64>().ok())
        .filter(|&n| n > 0)
        .sum()
}

fn strace(log: &Path, calls: &str) -> Vec<OsString> {
    ["strace", "-f", "-o"]
        .map(OsString::from)
        .into_iter()
        .chain([log.as_os_str().to_owned(), "-e".into(), format!("trace={calls}").into()])
        .collect()
}

fn source(dir: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let data = write_random_file(&path, len, seed);
    (path, data)
}

fn ended(process: Process, who: &str) -> Finished {
    let done = process.wait_for(Duration::from_secs(20));
    assert_exit(&done, 0, who);
    done
}

#[test]
fn a_whole_download_is_identical_and_ends_a_one_shot_server() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "big file.bin", 4 * MIB + 17, 1);
    let (server, addr) = serve(&[&src], &["--json"]);
    let got = work.path().join("got");
    assert_eq!(fetch(&url(addr, "/big%20file.bin"), &got, &[]), 200);
    assert_file_holds(&got, &data, "the download");
    let done = ended(server, "zcp send --http after one download");
    assert!(done.stderr.contains("fetch with: curl -fO -H"), "{}", done.stderr);
    let line: serde_json::Value = serde_json::from_str(done.stdout.trim()).expect("one JSON line");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], data.len() as u64);
    assert_eq!(line["path"], "sendfile", "{line}");
}

#[test]
fn a_range_then_curl_resume_is_identical_and_counts_as_whole() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "r.bin", 3 * MIB, 2);
    let (mut server, addr) = serve(&[&src], &[]);
    let got = work.path().join("got");
    let headers = work.path().join("headers");
    let h = headers.to_str().expect("utf-8");
    assert_eq!(fetch(&url(addr, "/r.bin"), &got, &["-r", "0-99999", "-D", h]), 206);
    assert_file_holds(&got, &data[..100_000], "the first range");
    let head = fs::read_to_string(&headers).expect("headers");
    assert!(head.contains(&format!("Content-Range: bytes 0-99999/{}", data.len())), "{head}");
    assert!(server.running(), "a range is not the whole file yet");
    assert_eq!(fetch(&url(addr, "/r.bin"), &got, &["-C", "-"]), 206);
    assert_file_holds(&got, &data, "the resumed download");
    let done = ended(server, "zcp send --http after a range and a resume");
    assert!(done.stderr.contains("1 of 1 files fetched whole"), "{}", done.stderr);
}

#[test]
fn head_answers_length_and_validators_and_does_not_count() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "h.bin", MIB, 3);
    let (mut server, addr) = serve(&[&src], &["--json"]);
    let auth = bearer(TOKEN);
    let out = curl(&["-I", "-H", &auth, &url(addr, "/h.bin")]);
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("Content-Length: {}", data.len())), "{head}");
    for header in ["ETag: \"", "Last-Modified: ", "Accept-Ranges: bytes"] {
        assert!(head.contains(header), "no {header} in {head}");
    }
    assert!(server.running(), "a HEAD is no download");
    let got = work.path().join("got");
    assert_eq!(fetch(&url(addr, "/h.bin"), &got, &[]), 200);
    let done = ended(server, "zcp send --http");
    let lines: Vec<serde_json::Value> =
        done.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let notes: Vec<(&str, &serde_json::Value)> =
        lines.iter().map(|l| (l["method"].as_str().unwrap_or_default(), &l["reason"])).collect();
    let whole = serde_json::json!("the file has now been fetched whole");
    assert_eq!(notes, [("HEAD", &serde_json::Value::Null), ("GET", &whole)]);
}

#[test]
fn the_index_lists_every_file_and_the_server_ends_when_each_was_fetched() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (a, a_data) = source(work.path(), "a.bin", 1000, 4);
    let tree = subdir(work.path(), "tree");
    let (_, b_data) = source(&tree, "b c.bin", 2000, 5);
    let (mut server, addr) = serve(&[&a, &tree], &[]);
    let auth = bearer(TOKEN);
    let index = curl(&["-f", "-H", &auth, &url(addr, "/")]);
    let listing = String::from_utf8_lossy(&index.stdout);
    assert_eq!(listing, "/a.bin\n/tree/b%20c.bin\n");
    let got = work.path().join("got");
    assert_eq!(fetch(&url(addr, "/a.bin"), &got, &[]), 200);
    assert_file_holds(&got, &a_data, "a.bin");
    assert!(server.running(), "one of two files fetched");
    assert_eq!(fetch(&url(addr, "/nope"), &got, &[]), 404);
    assert_eq!(fetch(&url(addr, "/tree/b%20c.bin"), &got, &[]), 200);
    assert_file_holds(&got, &b_data, "tree/b c.bin");
    ended(server, "zcp send --http after both files");
}

#[test]
fn a_get_body_goes_out_by_sendfile_under_strace() {
    require_curl!();
    require_strace!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "s.bin", 4 * MIB, 6);
    let log = work.path().join("serve.strace");
    let (server, addr) = serve_under(&strace(&log, "sendfile"), &[&src], &[]);
    let got = work.path().join("got");
    assert_eq!(fetch(&url(addr, "/s.bin"), &got, &[]), 200);
    assert_file_holds(&got, &data, "the traced download");
    ended(server, "traced zcp send --http");
    let trace = fs::read_to_string(&log).expect("strace log");
    assert_eq!(traced_bytes(&trace, "sendfile"), data.len() as i64, "{trace}");
}

#[test]
fn wrong_or_missing_tokens_get_401_and_nothing() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _) = source(work.path(), "t.bin", 100_000, 7);
    let (mut server, addr) = serve(&[&src], &[]);
    for auth in [None, Some(bearer("wrong")), Some(format!("Basic {TOKEN}"))] {
        let mut args = vec!["-o", "/dev/null", "-w", "%{http_code} %{size_download}"];
        if let Some(auth) = &auth {
            args.extend(["-H", auth]);
        }
        let target = url(addr, "/t.bin");
        args.push(&target);
        let out = curl(&args);
        let said = String::from_utf8_lossy(&out.stdout);
        let (status, size) = said.split_once(' ').expect("status and size");
        assert_eq!(status, "401", "{auth:?}");
        assert!(size.parse::<u64>().expect("a size") < 1000, "{auth:?}: {size} bytes came");
    }
    assert!(server.running(), "refused requests end nothing");

    let dst = subdir(work.path(), "dst");
    let (mut receiver, addr) = accept_into(&[], &dst, &[]);
    let src = src.to_str().expect("utf-8");
    let out = curl(&["-T", src, "-H", &bearer("wrong"), "-w", "%{http_code}", &url(addr, "/")]);
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("401"), "{out:?}");
    assert!(fs::read_dir(&dst).expect("dst").next().is_none(), "a refused upload wrote");
    assert!(receiver.running(), "a refused upload ends nothing");
    drop(server);
}

#[test]
fn malformed_requests_get_400_and_the_server_goes_on() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "m.bin", 10_000, 8);
    let (server, addr) = serve(&[&src], &[]);
    for bad in [
        &b"\x00\xff\x13garbage\r\n\r\n"[..],
        b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let answer = raw_request(addr, bad);
        assert!(answer.starts_with("HTTP/1.1 400 "), "{bad:?} got {answer:?}");
    }
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.resize(64 << 10, b'a');
    assert!(raw_request(addr, &huge).starts_with("HTTP/1.1 431 "));
    let got = work.path().join("got");
    assert_eq!(fetch(&url(addr, "/m.bin"), &got, &[]), 200);
    assert_file_holds(&got, &data, "after the malformed requests");
    ended(server, "zcp send --http after malformed requests");
}

#[test]
fn an_upload_lands_by_splice_under_its_name_only_when_complete() {
    require_curl!();
    require_strace!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "up.bin", 4 * MIB + 3, 9);
    let dst = subdir(work.path(), "dst");
    let log = work.path().join("accept.strace");
    let (receiver, addr) = accept_into(&strace(&log, "splice"), &dst, &["--json"]);
    let auth = bearer(TOKEN);
    let src = src.to_str().expect("utf-8");
    let out = curl(&["-f", "-T", src, "-H", &auth, &url(addr, "/")]);
    assert!(out.status.success(), "{out:?}");
    let done = ended(receiver, "zcp recv --http after one upload");
    assert_file_holds(&dst.join("up.bin"), &data, "the upload");
    assert_eq!(crate::util::dir_names(&dst), ["up.bin"], "no part file left");
    let trace = fs::read_to_string(&log).expect("strace log");
    // Socket → pipe and pipe → file: each byte twice.
    assert!(traced_bytes(&trace, "splice") >= 2 * data.len() as i64, "{trace}");
    let line: serde_json::Value = serde_json::from_str(done.stdout.trim()).expect("one JSON line");
    assert_eq!((line["status"].as_u64(), line["path"].as_str()), (Some(201), Some("splice")));
}

#[test]
fn an_interrupted_upload_leaves_no_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (mut receiver, addr) = accept_into(&[], &dst, &[]);
    let mut socket = TcpStream::connect(addr).expect("connecting");
    let head = format!(
        "PUT /sub/cut.bin HTTP/1.1\r\nHost: x\r\n{}\r\nContent-Length: {}\r\n\r\n",
        bearer(TOKEN),
        MIB
    );
    socket.write_all(head.as_bytes()).expect("head");
    socket.write_all(&[7u8; 1000]).expect("some of the body");
    let part = dst.join("sub/.cut.bin.zcp-part");
    wait_until(STARTUP, "the part file", || part.exists());
    assert!(!dst.join("sub/cut.bin").exists(), "the final name appeared before the last byte");
    drop(socket);
    receiver.wait_line_within("PUT /sub/cut.bin 400", STARTUP);
    assert!(!part.exists(), "the part file of a broken-off upload was kept");
    assert!(fs::read_dir(&dst).expect("dst").next().is_none(), "the directory made was left");
}

#[test]
fn a_put_outside_the_output_directory_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (receiver, addr) = accept_into(&[], &dst, &[]);
    for path in ["/../escape", "/%2e%2e/escape", "/a/../../escape", "//etc/escape", "/dir/"] {
        let request = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\n{}\r\nContent-Length: 5\r\n\r\nhello",
            bearer(TOKEN)
        );
        let answer = raw_request(addr, request.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 400 "), "{path}: {answer:?}");
    }
    assert!(!work.path().join("escape").exists(), "written outside --output");
    assert!(fs::read_dir(&dst).expect("dst").next().is_none(), "something was written");
    let done = receiver.kill();
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
}

#[test]
fn uploads_keep_the_receivers_rules_for_existing_targets_and_max_size() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _) = source(work.path(), "new.bin", 200_000, 10);
    let dst = subdir(work.path(), "dst");
    fs::write(dst.join("new.bin"), b"mine").expect("an existing target");
    let (receiver, addr) = accept_into(&[], &dst, &["--max-size", "100K"]);
    let auth = bearer(TOKEN);
    let src = src.to_str().expect("utf-8");
    let put = |path: &str| {
        let out = curl(&["-T", src, "-H", &auth, "-w", "\n%{http_code}", &url(addr, path)]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let over = put("/other.bin");
    assert!(over.ends_with("413") && over.contains("--max-size"), "{over}");
    drop(receiver);
    let (receiver, addr) = accept_into(&[], &dst, &[]);
    let out = curl(&["-T", src, "-H", &auth, "-w", "\n%{http_code}", &url(addr, "/new.bin")]);
    let exists = String::from_utf8_lossy(&out.stdout);
    assert!(exists.ends_with("409") && exists.contains("--force"), "{exists}");
    assert_eq!(fs::read(dst.join("new.bin")).expect("target"), b"mine", "overwritten");
    assert_eq!(crate::util::dir_names(&dst), ["new.bin"], "something else was written");
    drop(receiver);
}

/// Reads what the server sent up to the end of one response head.
fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn the_go_ahead_for_a_body_comes_only_after_the_checks() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (receiver, addr) = accept_into(&[], &dst, &[]);
    let put = |token: &str| {
        let mut socket = TcpStream::connect(addr).expect("connecting");
        socket.set_read_timeout(Some(STARTUP)).expect("timeout");
        let head = format!(
            "PUT /go.bin HTTP/1.1\r\nHost: x\r\n{}\r\nContent-Length: 5\r\n\
             Expect: 100-continue\r\n\r\n",
            bearer(token)
        );
        socket.write_all(head.as_bytes()).expect("head");
        let answer = read_head(&mut socket);
        (socket, answer)
    };
    let (_, refused) = put("wrong");
    assert!(refused.starts_with("HTTP/1.1 401 "), "{refused:?}");
    let (mut socket, go) = put(TOKEN);
    assert!(go.starts_with("HTTP/1.1 100 Continue\r\n"), "{go:?}");
    assert!(!dst.join("go.bin").exists(), "the final name before the body");
    socket.write_all(b"hello").expect("body");
    let saved = read_head(&mut socket);
    assert!(saved.starts_with("HTTP/1.1 201 "), "{saved:?}");
    ended(receiver, "zcp recv --http after one upload");
    assert_file_holds(&dst.join("go.bin"), b"hello", "the upload");
}

#[test]
fn ctrl_c_stops_a_keep_open_server_with_130() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "k.bin", 1000, 11);
    let (mut server, addr) = serve(&[&src], &["--keep-open"]);
    let got = work.path().join("got");
    for _ in 0..2 {
        assert_eq!(fetch(&url(addr, "/k.bin"), &got, &[]), 200);
        assert_file_holds(&got, &data, "a download from a --keep-open server");
    }
    assert!(server.running(), "--keep-open serves on after every file was fetched");
    server.signal(nix::sys::signal::Signal::SIGINT);
    let done = server.wait_for(Duration::from_secs(20));
    assert_exit(&done, 130, "zcp send --http --keep-open after Ctrl-C");
    assert!(done.stderr.contains("served 2 requests"), "{}", done.stderr);
}

#[test]
fn a_stream_from_curl_upload_stdin_lands_chunked_by_splice() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "stream.bin", 3 * MIB + 5, 12);
    let dst = subdir(work.path(), "dst");
    let (receiver, addr) = accept_into(&[], &dst, &["--keep-open", "--json", "--max-size", "4M"]);
    let auth = bearer(TOKEN);
    let upload = |name: &str, input: &Path| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-T", "-", "-H", &auth, "-w", "\n%{http_code}", &url(addr, name)]);
        cmd.stdin(fs::File::open(input).expect("the stream's source"));
        String::from_utf8_lossy(&cmd.output().expect("curl").stdout).into_owned()
    };
    let saved = upload("/stream.bin", &src);
    assert!(saved.ends_with("201"), "{saved}");
    assert_file_holds(&dst.join("stream.bin"), &data, "the chunked upload");
    let (big, _) = source(work.path(), "big.bin", 5 * MIB, 13);
    let over = upload("/big.bin", &big);
    assert!(over.ends_with("413") && over.contains("--max-size"), "{over}");
    assert_eq!(crate::util::dir_names(&dst), ["stream.bin"], "the refused stream left a file");
    receiver.signal(nix::sys::signal::Signal::SIGINT);
    let done = receiver.wait_for(Duration::from_secs(20));
    let first: serde_json::Value =
        serde_json::from_str(done.stdout.lines().next().unwrap_or_default()).expect("JSON");
    assert_eq!((first["status"].as_u64(), first["path"].as_str()), (Some(201), Some("splice")));
    assert_eq!(first["bytes"], data.len() as u64, "{first}");
}

#[test]
fn a_malformed_chunked_body_is_400_and_leaves_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (receiver, addr) = accept_into(&[], &dst, &[]);
    for body in ["5\r\nhello\r\nzz\r\n", "5\r\nhelloXX0\r\n\r\n", "5;x=1\r\nhello\r\n-1\r\n"] {
        let request = format!(
            "PUT /c.bin HTTP/1.1\r\nHost: x\r\n{}\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
            bearer(TOKEN)
        );
        let answer = raw_request(addr, request.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 400 "), "{body:?}: {answer:?}");
    }
    let both = format!(
        "PUT /c.bin HTTP/1.1\r\n{}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        bearer(TOKEN)
    );
    assert!(raw_request(addr, both.as_bytes()).starts_with("HTTP/1.1 400 "), "smuggling");
    assert!(fs::read_dir(&dst).expect("dst").next().is_none(), "something was left");
    drop(receiver);
}

#[test]
fn requests_past_the_bound_get_503() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (mut receiver, addr) = accept_into(&[], &dst, &["--max-conns", "2"]);
    // Two uploads whose bodies do not come hold both places (a head that has not arrived holds
    // none: see http_crowds).
    let upload = |name: &str| {
        let head = format!(
            "PUT /{name} HTTP/1.1\r\nHost: zcp\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: 1000\r\n\r\n"
        );
        let mut socket = TcpStream::connect(addr).expect("an upload");
        socket.write_all(head.as_bytes()).expect("its head");
        socket
    };
    let held = [upload("a"), upload("b")];
    // Answered 405 (a GET) while a place is free, 503 once both uploads hold theirs.
    let mut answer = String::new();
    wait_until(STARTUP, "a 503 with both places held", || {
        answer = raw_request(addr, b"GET / HTTP/1.1\r\nHost: zcp\r\n\r\n");
        !answer.starts_with("HTTP/1.1 405 ")
    });
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    drop(held);
    receiver.wait_line_within("2 at once", STARTUP);
}

#[test]
fn the_printed_commands_run_as_written() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "printed.bin", 300_000, 14);
    let (mut server, _) = serve(&[&src], &[]);
    let fetch = server.wait_line("fetch with: ");
    let fetch = fetch.trim_start_matches("fetch with: ").replace("$ZCP_TOKEN", TOKEN);
    let into = subdir(work.path(), "fetched");
    let sh = |script: &str| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).current_dir(&into).env_remove(TOKEN_ENV);
        cmd.output().expect("sh").status.success()
    };
    assert!(sh(&fetch), "`{fetch}` failed");
    assert_file_holds(&into.join("printed.bin"), &data, "what the printed command fetched");
    ended(server, "zcp send --http");

    // Without a token the receiver makes one, and its command carries it.
    let dst = subdir(work.path(), "dst");
    let mut cmd = Command::new(ZCP);
    cmd.args(["recv", "--http", "--listen", "127.0.0.1:0", "--output"]).arg(&dst);
    cmd.env_remove(TOKEN_ENV);
    let mut receiver = Process::spawn(cmd);
    let upload = receiver.wait_line("upload with: ");
    assert!(!upload.contains("$ZCP_TOKEN"), "{upload}");
    let upload = upload.trim_start_matches("upload with: ").replace("FILE", "printed.bin");
    assert!(sh(&upload), "`{upload}` failed");
    ended(receiver, "zcp recv --http");
    assert_file_holds(&dst.join("printed.bin"), &data, "what the printed command uploaded");
}

/// `recv --http` with `extra` under strace (the calls of `durable::CALLS`), taking one upload
/// to `/sub/deep/up.bin`; the calls in the order they completed.
fn traced_upload(extra: &[&str]) -> Vec<(String, String)> {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "up.bin", 3 * MIB + 5, 21);
    let dst = subdir(work.path(), "dst");
    let log = work.path().join("accept.strace");
    let (receiver, addr) =
        accept_into(&strace(&log, &super::durable::CALLS.join(",")), &dst, extra);
    let auth = bearer(TOKEN);
    let src = src.to_str().expect("utf-8");
    let out = curl(&["-f", "-T", src, "-H", &auth, &url(addr, "/sub/deep/up.bin")]);
    assert!(out.status.success(), "{out:?}");
    ended(receiver, "zcp recv --http after one upload");
    assert_file_holds(&dst.join("sub/deep/up.bin"), &data, "the upload");
    super::durable::completed(&fs::read_to_string(&log).expect("strace log"))
}

#[test]
fn an_upload_with_fsync_is_synced_before_its_name_and_its_directories_after() {
    require_curl!();
    require_strace!();
    let calls = traced_upload(&["--fsync"]);
    let names: Vec<&str> = calls.iter().map(|(name, _)| name.as_str()).collect();
    let shown = calls.iter().map(|(_, line)| line.as_str()).collect::<Vec<_>>().join("\n");
    // The data, then the name, then the three directories that gained one: `sub/deep` (the
    // file), `sub` (`deep`) and the output directory (`sub`).
    assert_eq!(names, ["syncfs", "renameat2", "fsync", "fsync", "fsync"], "{shown}");
}

/// With `--fsync`, a directory sync that fails after the rename (strace injects EIO into
/// `fsync`) leaves the upload in place: the client gets 500 and the log says it was saved, but
/// is not known to be durable, never "nothing saved".
#[test]
fn an_upload_whose_directory_sync_fails_is_saved_but_not_called_durable() {
    require_curl!();
    require_strace!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "up.bin", MIB, 22);
    let dst = subdir(work.path(), "dst");
    let log = work.path().join("accept.strace");
    let mut wrapper = strace(&log, "fsync");
    wrapper.extend(["-e".into(), "inject=fsync:error=EIO".into()]);
    let (mut receiver, addr) = accept_into(&wrapper, &dst, &["--fsync"]);
    let auth = bearer(TOKEN);
    let src = src.to_str().expect("utf-8");
    let out = curl(&["-T", src, "-H", &auth, "-w", "%{http_code}", &url(addr, "/up.bin")]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.ends_with("500"), "curl: {out:?}");
    assert!(answer.contains("saved") && answer.contains("not known to be durable"), "{answer}");
    assert!(!answer.contains("nothing saved"), "{answer}");
    assert_file_holds(&dst.join("up.bin"), &data, "the upload, in place");
    receiver.wait_line_within("not known to be durable", Duration::from_secs(20));
    receiver.kill();
}

#[test]
fn an_upload_without_fsync_syncs_nothing() {
    require_curl!();
    require_strace!();
    let calls = traced_upload(&[]);
    let names: Vec<&str> = calls.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["renameat2"], "only the rename into place");
}

#[test]
fn events_with_http_are_a_usage_error_on_either_end() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, _) = source(work.path(), "f.bin", 10, 1);
    for args in [
        vec!["send".into(), "--http".into(), src.into_os_string(), "--events".into()],
        vec!["recv".into(), "--http".into(), "--events".into()],
    ] {
        let out = Command::new(ZCP).args(&args).env(TOKEN_ENV, TOKEN).output().expect("zcp");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains("'--http' cannot be used with '--events'"), "{args:?}: {stderr}");
    }
}

/// Sends `head`, then one byte of body every 1.5 s (the pace is the attack, not a wait) on a
/// thread, until a write fails (the server closed the connection: true) or 30 s passed.
fn slow_body(addr: SocketAddr, head: &[u8]) -> std::thread::JoinHandle<bool> {
    let mut socket = TcpStream::connect(addr).expect("connecting");
    socket.write_all(head).expect("the head");
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if socket.write_all(b"x").is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1500));
        }
        false
    })
}

/// An unauthenticated client answered `401` that goes on trickling its body must not hold its
/// connection (one of `--max-conns`) for long: the drain after an answer is bounded in time
/// overall, not per read (a byte every 1.5 s would pass a 2 s read timeout for 8 MiB).
#[test]
fn a_refused_client_trickling_its_body_is_let_go() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (mut receiver, addr) = accept_into(&[], &dst, &["--max-conns", "1"]);
    let head = b"PUT /slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n";
    let trickle = slow_body(addr, head);
    receiver.wait_line_within("PUT /slow.bin 401", STARTUP);
    wait_until(crate::util::SESSION, "the trickling client to be let go", || trickle.is_finished());
    assert!(trickle.join().expect("the trickle thread"), "still connected after 30 s");
    assert!(fs::read_dir(&dst).expect("dst").next().is_none(), "a refused upload wrote");
}

/// Heads whose framing or name two parsers could read differently are refused before a byte is
/// written: both framings, two lengths, a folded header, a coding chain, a header bomb, an
/// encoded NUL or `..`; a directory planted as a symlink under the output is not followed.
#[test]
fn ambiguous_heads_and_planted_symlinks_write_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let (dst, outside) = (subdir(work.path(), "dst"), subdir(work.path(), "outside"));
    std::os::unix::fs::symlink(&outside, dst.join("link")).expect("planting a symlink");
    let (receiver, addr) = accept_into(&[], &dst, &["--keep-open"]);
    let auth = bearer(TOKEN);
    let bomb: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
    for (path, headers, status) in [
        ("/a", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
        ("/a", "Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        ("/a", "Content-Length: 5\r\nX-Folded: a\r\n b\r\n", 400),
        ("/a", "Transfer-Encoding: gzip, chunked\r\n", 501),
        // Two lines are one list (RFC 9110 §5.3): the same chain, not the last line alone.
        ("/a", "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501),
        ("/a", &bomb, 400),
        ("/a%00b", "Content-Length: 5\r\n", 400),
        ("/x%2F..%2F..%2Fescape", "Content-Length: 5\r\n", 400),
        // The disk's refusal (its code: "other") says why; the status is the server's 500.
        ("/link/escape", "Content-Length: 5\r\n", 500),
    ] {
        let request = format!("PUT {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n{headers}\r\nhello");
        let answer = raw_request(addr, request.as_bytes());
        let want = format!("HTTP/1.1 {status} ");
        assert!(answer.starts_with(&want), "{path} {headers:?}: {answer:?}");
    }
    assert!(fs::read_dir(&outside).expect("outside").next().is_none(), "written through");
    assert_eq!(crate::util::dir_names(&dst), ["link"], "something was written");
    assert!(!work.path().join("escape").exists(), "written outside --output");
    let done = receiver.kill();
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
}

/// An authenticated upload whose body stalls is dropped at `--idle-timeout`: no file, no part
/// file, the server goes on.
#[test]
fn a_stalled_upload_body_ends_at_the_idle_timeout_and_leaves_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (mut receiver, addr) = accept_into(&[], &dst, &["--idle-timeout", "1"]);
    let mut socket = TcpStream::connect(addr).expect("connecting");
    let head = format!(
        "PUT /stall.bin HTTP/1.1\r\nHost: x\r\n{}\r\nContent-Length: 1000\r\n\r\n",
        bearer(TOKEN)
    );
    socket.write_all(head.as_bytes()).expect("head");
    socket.write_all(&[1u8; 10]).expect("a little of the body");
    let line = receiver.wait_line_within("PUT /stall.bin", crate::util::SESSION);
    assert!(line.contains("nothing saved"), "{line}");
    assert!(receiver.running(), "a stalled upload ended the server");
    assert!(fs::read_dir(&dst).expect("dst").next().is_none(), "the stalled upload left a file");
    drop(socket);
}

/// An upload that stalls, inside its body or between two chunks, is told as the idle timeout it
/// is, by name, in the server's line and the answer, not as the socket's bare "resource
/// temporarily unavailable".
#[test]
fn a_stalled_upload_names_the_idle_timeout() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let (mut receiver, addr) = accept_into(&[], &dst, &["--idle-timeout", "1"]);
    let framings = [
        ("sized.bin", "Content-Length: 1000\r\n\r\n0123456789"),
        ("chunked.bin", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
    ];
    for (name, rest) in framings {
        let mut socket = TcpStream::connect(addr).expect("connecting");
        socket.set_read_timeout(Some(crate::util::SESSION)).expect("timeout");
        let head = format!("PUT /{name} HTTP/1.1\r\nHost: x\r\n{}\r\n{rest}", bearer(TOKEN));
        socket.write_all(head.as_bytes()).expect("head and the first bytes");
        let line = receiver.wait_line_within(&format!("PUT /{name}"), crate::util::SESSION);
        assert!(line.contains("no data for 1 s (--idle-timeout)"), "{line}");
        let mut answer = String::new();
        let _ = socket.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 500 "), "{name}: {answer:?}");
        assert!(answer.contains("--idle-timeout"), "{name}: {answer:?}");
    }
    assert!(receiver.running(), "a stalled upload ended the server");
    assert!(fs::read_dir(&dst).expect("dst").next().is_none(), "a stalled upload left a file");
}

/// `sh -c SCRIPT` in `dir` without the test token in its environment.
fn sh_in(dir: &Path, script: &str) -> Output {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).current_dir(dir).env_remove(TOKEN_ENV);
    cmd.output().expect("sh")
}

/// `curl -C -` on a download that is already complete is done (exit 0), not an error: the
/// answer is a 416 that curl 7.x takes as "already there" (no `Content-Range: bytes */SIZE`,
/// which makes it drop the resume and fail the `-f` request).
#[test]
fn curl_resume_of_a_complete_download_exits_0_and_keeps_the_file() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (src, data) = source(work.path(), "done.bin", 200_000, 31);
    let (mut server, _) = serve(&[&src], &["--keep-open"]);
    let fetch = server.wait_line("fetch with: ");
    let fetch = fetch.trim_start_matches("fetch with: ").replace("$ZCP_TOKEN", TOKEN);
    let into = subdir(work.path(), "fetched");
    let first = sh_in(&into, &fetch);
    assert!(first.status.success(), "`{fetch}`: {first:?}");
    let again = fetch.replacen("curl ", "curl -sS -C - ", 1);
    let resumed = sh_in(&into, &again);
    assert_eq!(resumed.status.code(), Some(0), "`{again}`: {resumed:?}");
    assert_file_holds(&into.join("done.bin"), &data, "the complete download after curl -C -");
    server.wait_line_within("GET /done.bin 416", STARTUP);
}

/// The printed upload command shows why the server refused (here an existing file, `409`),
/// not only curl's "the requested URL returned error".
#[test]
fn the_printed_upload_command_shows_the_servers_reason() {
    require_curl!();
    let work = tempfile::tempdir().expect("tempdir");
    let (_, _) = source(work.path(), "taken.bin", 1000, 32);
    let dst = subdir(work.path(), "dst");
    fs::write(dst.join("taken.bin"), b"mine").expect("an existing target");
    let (mut receiver, _) = accept_into(&[], &dst, &[]);
    let upload = receiver.wait_line("upload with: ");
    let upload = upload.trim_start_matches("upload with: ").replace("FILE", "taken.bin");
    let upload = upload.replace("$ZCP_TOKEN", TOKEN).replacen("curl ", "curl -sS ", 1);
    let out = sh_in(work.path(), &upload);
    assert_eq!(out.status.code(), Some(22), "`{upload}`: {out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("--force"), "`{upload}` did not show the reason: {out:?}");
    assert_eq!(fs::read(dst.join("taken.bin")).expect("target"), b"mine", "overwritten");
    drop(receiver);
}

/// An upload whose name is taken while its body arrives (another program wrote a file there)
/// is refused, `409`, with or without `--fsync`: the other file stays as it is and no part
/// file is left. With `--fsync` the barrier that gives the name must report the refusal too,
/// not answer `201` with nothing put in place.
#[test]
fn an_upload_whose_name_is_taken_meanwhile_is_refused_with_or_without_fsync() {
    for extra in [&[][..], &["--fsync"]] {
        let work = tempfile::tempdir().expect("tempdir");
        let dst = subdir(work.path(), "dst");
        let (receiver, addr) = accept_into(&[], &dst, extra);
        let mut socket = TcpStream::connect(addr).expect("connecting");
        let len = 64 * 1024;
        let head = format!(
            "PUT /taken.bin HTTP/1.1\r\nHost: x\r\n{}\r\nContent-Length: {len}\r\n\r\n",
            bearer(TOKEN)
        );
        socket.write_all(head.as_bytes()).expect("head");
        socket.write_all(&[7u8; 1000]).expect("some of the body");
        let part = dst.join(".taken.bin.zcp-part");
        wait_until(STARTUP, "the part file", || part.exists());
        fs::write(dst.join("taken.bin"), b"written meanwhile").expect("a file under the name");
        socket.write_all(&vec![7u8; len - 1000]).expect("the rest of the body");
        let mut answer = String::new();
        socket.read_to_string(&mut answer).expect("the answer");
        assert!(answer.starts_with("HTTP/1.1 409"), "{extra:?}: {answer}");
        assert_file_holds(&dst.join("taken.bin"), b"written meanwhile", "the other file");
        assert!(!part.exists(), "{extra:?}: the part file was kept");
        receiver.kill();
    }
}
