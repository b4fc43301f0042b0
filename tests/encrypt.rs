//! `--encrypt`: files cross intact in both directions, the wire never shows their
//! bytes, a flipped bit in a record fails the session with nothing saved, a relay that
//! terminates TLS on both sides cannot pass the token proofs, and neither end silently talks
//! to a plaintext peer. The kernel-TLS path runs only where the kernel has kTLS.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use zcp::copy::socket::Socket;

use crate::util::{
    Fault, Process, Proxy, Receiver, Role, SESSION, assert_exit, assert_file_holds, assert_says,
    auth, final_names, json_str, part_of, protocol, run, send, send_listening, send_paths,
    skip_kernel_feature, subdir, tls, unusable, wait_for_bytes, wrapped, write_random_file,
    zcp_command,
};

const NAME: &str = "secret.bin";
const LEN: usize = 3 << 20;

/// A receiver with `--encrypt --json` and a random file to send it.
fn setup(work: &Path, seed: u64) -> (Receiver, std::path::PathBuf, Vec<u8>, std::path::PathBuf) {
    let (src_dir, dst) = (subdir(work, "src"), subdir(work, "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, LEN, seed);
    let recv = Receiver::start(&dst, &["--encrypt", "--json"]);
    (recv, src, data, dst)
}

/// Whether any 16-byte window of `data` taken every 4 KiB appears anywhere in `wire`. The file
/// is random, so a 16-byte match by chance is out of the question.
fn leaks(wire: &[u8], data: &[u8]) -> bool {
    let samples: HashSet<&[u8]> = data.chunks_exact(4096).map(|c| &c[..16]).collect();
    wire.windows(16).any(|w| samples.contains(w))
}

#[test]
fn an_encrypted_transfer_arrives_intact_and_never_shows_on_the_wire() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, src, data, dst) = setup(work.path(), 41);
    let proxy = Proxy::start(recv.addr(), Fault::Pass);
    let sent = send(&src, &proxy.dest(), &["--encrypt", "--json"]);
    let received = recv.wait();
    let wire = proxy.finish().from_sender;
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver");
    assert_file_holds(&dst.join(NAME), &data, "the encrypted transfer");
    assert!(wire.len() > LEN, "the proxy saw only {} bytes", wire.len());
    assert!(!leaks(&wire, &data), "file content appears in the captured wire bytes");
    for report in [sent.json(), received.json()] {
        let encryption = json_str(&report, "/encryption");
        assert!(encryption.starts_with("tls1.3 ("), "{report:#}");
        assert!(json_str(&report, "/cipher").starts_with("TLS13_"), "{report:#}");
    }
    assert_says(&received, "encryption: tls1.3", "receiver");
}

#[test]
fn the_same_capture_without_encrypt_does_show_the_file() {
    // The control for the test above: the capture and the search do find plaintext.
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 1 << 20, 42);
    let recv = Receiver::start(&dst, &["--json"]);
    let proxy = Proxy::start(recv.addr(), Fault::Pass);
    let sent = send(&src, &proxy.dest(), &[]);
    let received = recv.wait();
    assert_exit(&sent, 0, "sender");
    assert_eq!(json_str(&received.json(), "/encryption"), "none");
    assert!(leaks(&proxy.finish().from_sender, &data));
}

#[test]
pub fn a_flipped_byte_in_a_record_fails_the_session_and_saves_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, src, _, dst) = setup(work.path(), 43);
    let proxy = Proxy::start(recv.addr(), Fault::FlipAt(LEN as u64 / 2));
    let sent = send(&src, &proxy.dest(), &["--encrypt"]);
    let received = recv.wait();
    assert!(proxy.finish().flipped, "the proxy never reached the byte to flip");
    assert_exit(&received, 9, "receiver");
    assert_says(&received, "did not authenticate: the data was altered on the way", "receiver");
    assert_exit(&sent, 9, "sender");
    assert_says(&sent, "altered on the way", "sender");
    assert!(!final_names(&dst).contains(&NAME.to_string()), "a final file was saved");
}

#[test]
fn a_relay_holding_two_tls_sessions_cannot_pass_the_token_proofs() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, src, _, dst) = setup(work.path(), 44);
    let relay = TlsRelay::start(recv.addr());
    let sent = send(&src, &relay.dest(), &["--encrypt"]);
    let mut recv = recv;
    let line = recv.process().wait_line("zcp: ignored a connection");
    relay.finish();
    assert_exit(&sent, 8, "sender");
    assert_says(&sent, "wrong token", "sender");
    assert!(line.contains("the sender's token is wrong"), "{line}");
    assert!(final_names(&dst).is_empty(), "something was written");
}

#[test]
fn a_tree_of_small_files_and_a_stream_cross_encrypted() {
    // Batches (many files per read) and a chunked stream of unknown length go through the
    // record layer's socket pair as they go through a TCP socket.
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let tree = subdir(&src, "tree");
    let small: Vec<Vec<u8>> = (0..40)
        .map(|i| write_random_file(&tree.join(format!("f{i}.bin")), 100 + i * 997, 60 + i as u64))
        .collect();
    let big = write_random_file(&tree.join("big.bin"), LEN, 59);
    let fifo_data = crate::util::pseudo_random(300_000, 58);
    let fifo = src.join("stream");
    let writer = crate::util::FifoWriter::create(&fifo, fifo_data.clone());
    let recv = Receiver::start(&dst, &["--encrypt"]);
    let sent = send_paths(&[&tree, &fifo], &recv.dest(), &["--encrypt"]);
    let received = recv.wait();
    writer.finish().expect("the FIFO writer");
    assert_exit(&sent, 0, "sender");
    assert_exit(&received, 0, "receiver");
    for (i, data) in small.iter().enumerate() {
        assert_file_holds(&dst.join("tree").join(format!("f{i}.bin")), data, "a small file");
    }
    assert_file_holds(&dst.join("tree/big.bin"), &big, "the large file");
    assert_file_holds(&dst.join("stream"), &fifo_data, "the stream");
}

#[test]
fn reverse_connections_encrypt_too() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, LEN, 45);
    let (sender, addr) = send_listening(&src, &["--encrypt"]);
    let mut recv =
        zcp_command(&["recv", "--encrypt", "--json", "--connect", &addr.to_string()], &[]);
    recv.arg("--output").arg(&dst);
    let received = run(recv);
    let sent = sender.wait();
    assert_exit(&sent, 0, "listening sender");
    assert_exit(&received, 0, "connecting receiver");
    assert_file_holds(&dst.join(NAME), &data, "the reverse encrypted transfer");
    assert!(json_str(&received.json(), "/encryption").starts_with("tls1.3 ("));
}

#[test]
fn a_connecting_receiver_stopped_by_sigint_tells_the_sender_through_the_tunnel() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    write_random_file(&src, 8 << 20, 50);
    let (sender, addr) = send_listening(&src, &["--encrypt", "--limit-rate", "4M"]);
    let mut recv = zcp_command(&["recv", "--encrypt", "--connect", &addr.to_string()], &[]);
    recv.arg("--output").arg(&dst);
    let recv = Process::spawn(recv);
    wait_for_bytes(&part_of(&dst, NAME), 256 << 10);
    recv.signal(Signal::SIGINT);
    let received = recv.wait();
    let sent = sender.wait();
    assert_exit(&received, 130, "receiver");
    assert_says(&sent, "receiver shut down", "listening sender");
    assert!(final_names(&dst).is_empty(), "an interrupted file appeared under its final name");
}

#[test]
fn a_plaintext_sender_is_told_the_receiver_encrypts() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, src, _, dst) = setup(work.path(), 46);
    let sent = send(&src, &recv.dest(), &[]);
    assert_exit(&sent, 9, "plaintext sender");
    assert_says(
        &sent,
        "the receiver runs with --encrypt: this end must use --encrypt too",
        "sender",
    );
    let mut recv = recv;
    recv.process().wait_line("zcp: ignored a connection");
    assert!(final_names(&dst).is_empty());
}

#[test]
fn an_encrypting_sender_refuses_a_plaintext_receiver() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    write_random_file(&src, 4096, 47);
    let mut recv = Receiver::start(&dst, &[]);
    let sent = send(&src, &recv.dest(), &["--encrypt"]);
    assert_exit(&sent, 9, "encrypting sender");
    assert_says(&sent, "the receiver does not use --encrypt", "sender");
    let line = recv.process().wait_line("zcp: ignored a connection");
    assert!(line.contains("runs with --encrypt"), "{line}");
    assert!(final_names(&dst).is_empty());
}

#[test]
fn reverse_mode_refuses_a_one_sided_encrypt_both_ways() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    write_random_file(&src, 4096, 48);
    for (send_flags, recv_flags, says) in [
        (&["--encrypt"][..], &[][..], "the sender runs with --encrypt: this end must use"),
        (&[][..], &["--encrypt"][..], "the sender does not use --encrypt"),
    ] {
        let (mut sender, addr) = send_listening(&src, send_flags);
        let mut args = vec!["recv", "--connect"];
        let addr = addr.to_string();
        args.push(&addr);
        args.extend(recv_flags);
        let mut recv = zcp_command(&args, &[]);
        recv.arg("--output").arg(&dst);
        let received = run(recv);
        assert_exit(&received, 9, "connecting receiver");
        assert_says(&received, says, "connecting receiver");
        // The receiver may exit before the sender has logged the connection: wait for the line.
        sender.wait_line_within("ignored a connection", Duration::from_secs(20));
        sender.kill();
    }
    assert!(final_names(&dst).is_empty());
}

#[test]
fn raw_mode_refuses_encrypt() {
    let out = run(zcp_command(&["recv", "--raw", "--encrypt", "--listen", "127.0.0.1:0"], &[]));
    assert_exit(&out, 2, "raw receiver");
    assert_says(&out, "'--raw' cannot be used with '--encrypt'", "raw receiver");
}

#[test]
fn kernel_tls_keeps_sendfile_where_the_kernel_has_it() {
    if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return crate::util::skip(&why);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, src, data, dst) = setup(work.path(), 49);
    let trace = work.path().join("strace.txt");
    let trace_arg = trace.to_string_lossy().into_owned();
    let cmd = crate::util::send_cmd(&[&src], &recv.dest(), &["--encrypt", "--json"], &[]);
    let sent =
        run(wrapped(&["strace", "-f", "-e", "trace=setsockopt,sendfile", "-o", &trace_arg], &cmd));
    assert_exit(&recv.wait(), 0, "receiver");
    assert_exit(&sent, 0, "sender");
    assert_file_holds(&dst.join(NAME), &data, "the transfer");
    let report = sent.json();
    let trace = std::fs::read_to_string(&trace).expect("the strace output");
    match zcp::link::ktls::probe(&loopback()) {
        zcp::link::ktls::Support::Missing(errno) => {
            // The fallback names the kernel's errno, and strace shows the refused attach.
            assert_eq!(json_str(&report, "/encryption"), "tls1.3 (user space)");
            let why = json_str(&report, "/encryption_fallback");
            assert!(why.contains(&format!("{errno:?}")), "{why}");
            assert!(trace.contains("TCP_ULP, \"tls\""), "{trace}");
            skip_kernel_feature(&format!("the kernel has no kTLS (TCP_ULP \"tls\": {errno:?})"));
        }
        zcp::link::ktls::Support::Available(_) => {
            assert_eq!(json_str(&report, "/encryption"), "tls1.3 (kernel)");
            assert_eq!(json_str(&report, "/send/path"), "sendfile");
            assert!(trace.contains("TLS_TX") || trace.contains("SOL_TLS"), "{trace}");
            assert!(trace.contains("sendfile("), "{trace}");
        }
    }
}

fn loopback() -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listening");
    let client = TcpStream::connect(listener.local_addr().expect("address")).expect("connecting");
    let _server = listener.accept().expect("accepting");
    client
}

/// A machine in the middle that terminates TLS on both sides with zcp's own TLS code (so both
/// TLS handshakes succeed) and ferries the plaintext between them unchanged.
struct TlsRelay {
    addr: SocketAddr,
    handle: thread::JoinHandle<()>,
}

impl TlsRelay {
    fn start(upstream: SocketAddr) -> TlsRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the relay");
        let addr = listener.local_addr().expect("relay address");
        let handle = thread::spawn(move || {
            let (client, _) = listener.accept().expect("the sender");
            let server = TcpStream::connect(upstream).expect("the receiver");
            let to_sender = tls::open(client, auth::Direction::Accepted, true, Role::Sender)
                .expect("TLS with the sender");
            let to_receiver = tls::open(server, auth::Direction::Connected, true, Role::Receiver)
                .expect("TLS with the receiver");
            for s in [to_sender.socket(), to_receiver.socket()] {
                s.set_read_timeout(Some(SESSION)).expect("timeout");
            }
            let back = ferry(to_receiver.socket(), to_sender.socket());
            let _ = ferry(to_sender.socket(), to_receiver.socket()).join();
            let _ = back.join();
            let _ = to_sender.close(Ok(()));
            let _ = to_receiver.close(Ok(()));
        });
        TlsRelay { addr, handle }
    }

    fn dest(&self) -> String {
        self.addr.to_string()
    }

    fn finish(self) {
        self.handle.join().expect("the relay thread panicked");
    }
}

/// Copies `from` to `to` on a thread until `from` ends, then closes `to` (both directions).
fn ferry(from: &Socket, to: &Socket) -> thread::JoinHandle<io::Result<u64>> {
    let (mut from, mut to) = (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
    thread::spawn(move || {
        let mut buf = [0u8; 64 << 10];
        let mut total = 0;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            total += n as u64;
        }
        let _ = to.shutdown(Shutdown::Both);
        Ok(total)
    })
}

#[test]
fn inside_the_tunnel_a_wrong_token_still_fails_and_no_auth_still_works() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, 100_000, 61);
    let mut recv = Receiver::start(&dst, &["--encrypt"]);
    let wrong = crate::util::send_cmd(
        &[&src],
        &recv.dest(),
        &["--encrypt"],
        &[(crate::util::TOKEN_ENV, Some("not-the-token"))],
    );
    let refused = run(wrong);
    assert_exit(&refused, 8, "sender with a wrong token");
    assert_says(&refused, "wrong token", "sender with a wrong token");
    recv.process().wait_line("zcp: ignored a connection");
    drop(recv);
    let recv = Receiver::start(&dst, &["--encrypt", "--no-auth", "--json"]);
    let sent = send(&src, &recv.dest(), &["--encrypt", "--no-auth"]);
    let received = recv.wait();
    assert_exit(&sent, 0, "sender");
    assert!(json_str(&received.json(), "/encryption").starts_with("tls1.3 ("));
    assert_file_holds(&dst.join(NAME), &data, "the --no-auth encrypted transfer");
}

/// A peer that completes TLS (anyone can: the token is checked inside the tunnel), fails the
/// zcp handshake and then keeps the connection open without a word: the receiver must let go
/// of the connection and of its record layer's threads, or each such peer would hold a thread,
/// a socket pair and a buffer past the pre-auth budget (which counts only handshakes).
#[test]
fn a_peer_that_fails_inside_the_tunnel_and_stays_silent_holds_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut recv = Receiver::start(&subdir(work.path(), "dst"), &["--encrypt", "--keep-open"]);
    let wire = TcpStream::connect(recv.addr()).expect("connecting");
    let session = wire.try_clone().expect("clone");
    let mut tunnel = tls::open(session, auth::Direction::Connected, true, Role::Receiver)
        .expect("TLS with the receiver");
    if matches!(tunnel.encryption(), zcp::datapath::Encryption::Tls { kernel: true, .. }) {
        return skip_kernel_feature("the receiver seals records in the kernel: no record layer");
    }
    let garbage = b"GET / HTTP/1.1\r\n\r\nnot a zcp greeting";
    tunnel.socket_mut().write_all(garbage).expect("garbage");
    recv.process().wait_line("zcp: ignored a connection");
    let process = recv.process();
    crate::util::wait_until(SESSION, "the receiver's record layer to stop", || {
        process.threads_named("tls-in") + process.threads_named("tls-out") == 0
    });
    drop((tunnel, wire));
}

/// A connection cut mid-stream without close_notify (a network failure, or an attacker's
/// forged FIN or reset: either can only stop the session, whose own framing tells a cut from
/// an end) is a broken connection, as without `--encrypt`: exit 3 on both ends, the part file
/// kept, and the same command resumes it, encrypted.
#[test]
fn a_connection_cut_inside_the_tunnel_is_lost_and_resumes() {
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, src, data, dst) = setup(work.path(), 47);
    let proxy = Proxy::start(recv.addr(), Fault::CutAt(LEN as u64 / 2));
    let sent = send(&src, &proxy.dest(), &["--encrypt"]);
    let received = recv.wait();
    assert!(proxy.finish().cut, "the proxy never reached the cut");
    assert_exit(&received, 3, "receiver");
    assert_says(&received, "connection lost", "receiver");
    assert_exit(&sent, 3, "sender");
    assert!(!final_names(&dst).contains(&NAME.to_string()), "a cut file was saved");
    assert!(part_of(&dst, NAME).exists(), "the part file was not kept");
    let recv = Receiver::start(&dst, &["--encrypt"]);
    let resumed = send(&src, &recv.dest(), &["--encrypt"]);
    assert_exit(&recv.wait(), 0, "receiver of the rerun");
    assert_exit(&resumed, 0, "the rerun");
    assert_says(&resumed, "(resumed at ", "the rerun");
    assert_file_holds(&dst.join(NAME), &data, "the resumed file");
}

/// A client trickling its TLS ClientHello (a byte every 1.5 s: every read succeeds) is cut off
/// at the handshake's deadline, not one read's, and the receiver goes on.
#[test]
fn a_trickled_tls_handshake_is_cut_off_at_the_deadline() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut recv = Receiver::start(&subdir(work.path(), "dst"), &["--encrypt"]);
    let mut socket = crate::util::connect(recv.addr());
    let greeting = protocol::read_hello(&mut socket).expect("the receiver's greeting");
    assert!(greeting.encrypts(), "{greeting:?}");
    let mut client_hello = vec![0x16, 3, 1, 0, 200];
    client_hello.resize(5 + 200, 1);
    let trickler = crate::util::trickle(socket, client_hello);
    let line = recv.process().wait_line_within("ignored a connection", Duration::from_secs(30));
    assert!(line.contains("TLS handshake"), "{line}");
    assert!(recv.process().running(), "a trickling client ended the receiver");
    trickler.join().expect("trickler");
}

/// A second sender, authenticated inside its tunnel while the first one's session runs, is told
/// "busy" through the tunnel before it closes (the message must not be lost with the tunnel).
#[test]
fn a_sender_turned_away_as_busy_is_told_so_through_the_tunnel() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src_dir, dst) = (subdir(work.path(), "src"), subdir(work.path(), "dst"));
    let src = src_dir.join(NAME);
    let data = write_random_file(&src, LEN, 53);
    let mut recv = Receiver::start(&dst, &["--encrypt", "--keep-open", "--max-conns", "1"]);
    let other = subdir(work.path(), "other").join("second.bin");
    write_random_file(&other, 1000, 54);
    let slow = ["--encrypt", "--limit-rate", "2M"];
    let first = Process::spawn(crate::util::send_cmd(&[&src], &recv.dest(), &slow, &[]));
    wait_for_bytes(&part_of(&dst, NAME), 64 << 10);
    let second = send_paths(&[&other], &recv.dest(), &["--encrypt"]);
    assert_exit(&second, 3, "the second sender");
    assert_says(&second, "receiver busy: 1 session running, try again later", "second");
    assert_exit(&first.wait(), 0, "the first sender");
    recv.process().signal(Signal::SIGTERM);
    assert_exit(&recv.wait(), 143, "receiver");
    assert_file_holds(&dst.join(NAME), &data, "the first sender's file");
}

/// With records sealed in user space, the session's socket is its end of the record layer's
/// Unix socket pair, and the zero-copy paths write into it as they write into TCP: strace shows
/// `sendfile` to the pair's first descriptor.
#[test]
fn records_sealed_in_user_space_still_take_sendfile_into_the_session_socket() {
    if let Some(why) = unusable("strace", &["-f", "-o", "/dev/null", "true"]) {
        return crate::util::skip(&why);
    }
    if let zcp::link::ktls::Support::Available(_) = zcp::link::ktls::probe(&loopback()) {
        return skip_kernel_feature("the kernel seals records: no record layer in user space");
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (recv, src, data, dst) = setup(work.path(), 50);
    let trace = work.path().join("strace.txt");
    let trace_arg = trace.to_string_lossy().into_owned();
    let cmd = crate::util::send_cmd(&[&src], &recv.dest(), &["--encrypt", "--json"], &[]);
    let strace = ["strace", "-f", "-e", "trace=socketpair,sendfile", "-o", &trace_arg];
    let sent = run(wrapped(&strace, &cmd));
    assert_exit(&recv.wait(), 0, "receiver");
    assert_exit(&sent, 0, "sender");
    assert_file_holds(&dst.join(NAME), &data, "the transfer");
    let report = sent.json();
    assert_eq!(json_str(&report, "/encryption"), "tls1.3 (user space)");
    assert_eq!(json_str(&report, "/send/path"), "sendfile");
    let trace = std::fs::read_to_string(&trace).expect("the strace output");
    let pair = trace
        .lines()
        .find_map(|l| {
            l.split_once("socketpair(AF_UNIX, SOCK_STREAM")?.1.split_once(", [")?.1.split_once(',')
        })
        .map(|(first, _)| first.trim().to_string())
        .unwrap_or_else(|| panic!("no Unix socket pair in the trace:\n{trace}"));
    let into_pair = format!("sendfile({pair}, ");
    assert!(trace.lines().any(|l| l.contains(&into_pair)), "no {into_pair}…) in:\n{trace}");
}
