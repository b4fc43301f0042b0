//! Peers that misbehave on purpose: text from the peer reaches the terminal escaped and
//! `--json` exact; a receiver that never reads cannot hold the sender past `--idle-timeout`.

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::util::{
    self, FakeReceiver, Process, Receiver, assert_exit, assert_says, file_entry, finish, offer,
    send_cmd, send_file, subdir, write_random_file, zcp_client,
};
use util::protocol::{self, Answer, ErrorCode, Message, Plan, RefuseCode, SideStats, Summary};

/// Sets the terminal's title, rings the bell, and draws a fake line over the real one.
const EVIL: &str = "no\x1b]0;pwned\x07\r  xxh3 ok";
/// `EVIL` as the terminal must show it.
const EVIL_SHOWN: &str = "no\\e]0;pwned\\x07\\r  xxh3 ok";

#[track_caller]
fn assert_no_control(stderr: &str, who: &str) {
    let raw = stderr.chars().find(|&c| c.is_control() && c != '\n');
    assert!(raw.is_none(), "{who} printed control character {raw:?} raw:\n{stderr:?}");
}

/// Runs `zcp send a.txt` (plus `extra`) against a receiver that refuses the file with `EVIL`
/// and reports a fallback whose reason is `EVIL`.
fn send_to_a_hostile_receiver(extra: &[&str]) -> util::Finished {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("a.txt");
    fs::write(&src, b"hello\n").expect("a source");
    let fake = FakeReceiver::new();
    let mut args = vec!["--no-auth"];
    args.extend(extra);
    let sender = Process::spawn(send_cmd(&[&src], &fake.dest(), &args, &[]));
    let (mut socket, _) = fake.accept();
    let refuse = Answer::Refuse { code: RefuseCode::Other, reason: EVIL.into() };
    protocol::write_message(&mut socket, &Message::Plan(Plan { answers: vec![refuse] }))
        .expect("sending the PLAN");
    match protocol::read_message(&mut socket) {
        Ok(Message::Finish(_)) => {}
        other => panic!("expected FINISH, got {other:?}"),
    }
    let fallback = zcp::datapath::Fallback {
        from: zcp::datapath::DataPath::Splice,
        errno: None,
        reason: EVIL.into(),
    };
    let stats = SideStats { fallbacks: vec![fallback], ..SideStats::default() };
    let summary = Summary { verdicts: vec![], stats };
    protocol::write_message(&mut socket, &Message::Summary(summary)).expect("sending SUMMARY");
    sender.wait()
}

#[test]
fn receiver_text_is_escaped_on_the_sender_and_exact_in_json() {
    let sent = send_to_a_hostile_receiver(&[]);
    assert_exit(&sent, 5, "sender");
    assert_no_control(&sent.stderr, "sender");
    assert_says(&sent, &format!("refused a.txt: {EVIL_SHOWN}"), "sender");
    assert_says(&sent, &format!("recv: splice not used: {EVIL_SHOWN}"), "sender");
    // Nothing crossed: the summary says so instead of a rate and a checksum.
    assert_says(&sent, "sent nothing: 1 file (1 refused)", "sender");
    let summary = sent.stderr.lines().find(|l| l.starts_with("sent ")).unwrap_or_default();
    assert_eq!(summary, "sent nothing: 1 file (1 refused)", "sender:\n{}", sent.stderr);

    let json = send_to_a_hostile_receiver(&["--json"]).json();
    assert_eq!(json["files"][0]["reason"], EVIL, "{json:#}");
    assert_eq!(json["recv"]["fallbacks"][0]["reason"], EVIL, "{json:#}");
}

#[test]
fn sender_text_is_escaped_on_the_receiver_and_exact_in_json() {
    let work = tempfile::tempdir().expect("tempdir");
    let name = "a\x1b[2J\x07\rb.txt";
    let dst = subdir(work.path(), "dst");
    let receiver = Receiver::start(&dst, &["--json"]);
    let mut socket = zcp_client(receiver.addr());
    offer(&mut socket, vec![file_entry(name.as_bytes(), Some(4))]);
    send_file(&mut socket, 0, 0, b"data");
    finish(&mut socket);
    let received = receiver.wait();
    assert_exit(&received, 0, "receiver");
    assert_no_control(&received.stderr, "receiver");
    assert_says(&received, "a\\e[2J\\x07\\rb.txt", "receiver");
    assert_eq!(received.json()["files"][0]["name"], name);

    // An ERROR frame's text is the peer's too.
    let dst = subdir(work.path(), "dst2");
    let receiver = Receiver::start(&dst, &[]);
    let mut socket = zcp_client(receiver.addr());
    offer(&mut socket, vec![file_entry(b"b.txt", Some(4))]);
    let error = Message::Error { code: ErrorCode::Protocol, message: EVIL.into() };
    protocol::write_message(&mut socket, &error).expect("sending ERROR");
    let received = receiver.wait();
    assert_no_control(&received.stderr, "receiver");
    assert_says(&received, EVIL_SHOWN, "receiver");
}

/// Connects to a listening end without the token, greets as the other role would and sends an
/// ERROR frame whose text is `EVIL`; returns once the listener logged the connection it ignored.
fn error_before_auth(listener: &mut Process, addr: std::net::SocketAddr) {
    let mut socket = util::connect(addr);
    let hello = util::protocol::Hello::with_auth(util::nonce());
    protocol::write_hello(&mut socket, hello).expect("greeting");
    let error = Message::Error { code: ErrorCode::Protocol, message: EVIL.into() };
    protocol::write_message(&mut socket, &error).expect("sending ERROR");
    listener.wait_line_within("ignored a connection", util::SESSION);
}

#[test]
fn text_from_a_peer_that_never_authenticated_is_escaped_in_every_listening_mode() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("a.txt");
    fs::write(&src, b"hello\n").expect("a source");
    for extra in [&[][..], &["--keep-open"][..]] {
        let dst = subdir(work.path(), &format!("dst{}", extra.len()));
        let mut receiver = Receiver::start(&dst, extra);
        let addr = receiver.addr();
        error_before_auth(receiver.process(), addr);
        let received = receiver.kill();
        assert_no_control(&received.stderr, &format!("recv {extra:?}"));
        assert_says(&received, EVIL_SHOWN, "receiver");
    }
    let (mut sender, addr) = util::send_listening(&src, &[]);
    error_before_auth(&mut sender, addr);
    let sent = sender.kill();
    assert_no_control(&sent.stderr, "send --listen");
    assert_says(&sent, EVIL_SHOWN, "send --listen");
}

#[test]
fn receiver_that_talks_but_never_reads_cannot_hold_the_sender() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("big.bin");
    write_random_file(&src, 64 << 20, 11);
    let fake = FakeReceiver::new();
    let args = ["--no-auth", "--idle-timeout", "2"];
    let sender = Process::spawn(send_cmd(&[&src], &fake.dest(), &args, &[]));
    let (mut socket, _) = fake.accept();
    let plan = Plan { answers: vec![Answer::Send { offset: 0 }] };
    protocol::write_message(&mut socket, &Message::Plan(plan)).expect("sending the PLAN");
    // Frames, forever, never reading: until the sender hangs up.
    let chatter = std::thread::spawn(move || {
        let frame = protocol::frame(&Message::Finish(SideStats::default()));
        while socket.write_all(&frame).is_ok() {}
    });
    let started = Instant::now();
    let sent = sender.wait_for(Duration::from_secs(30));
    let took = started.elapsed();
    assert_exit(&sent, 3, "sender");
    assert_says(&sent, "--idle-timeout", "sender");
    assert!(took < Duration::from_secs(15), "the sender took {took:?} to give up");
    chatter.join().expect("the chattering receiver");
}

/// A refusal whose reason makes the PLAN frame long enough to trickle for a minute.
fn long_refusal() -> Answer {
    Answer::Refuse { code: RefuseCode::Other, reason: "no ".repeat(30) }
}

/// Runs `zcp send a.txt --no-auth --idle-timeout IDLE` against a receiver that answers with
/// `trickled` (after `before`, frames sent whole) a byte every 1.5 s; returns how the sender
/// ended and how long it took from the offer.
fn send_to_a_trickling_receiver(
    idle: &str,
    before: Vec<Message>,
    trickled: Message,
) -> (util::Finished, Duration) {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("a.txt");
    fs::write(&src, b"hello\n").expect("a source");
    let fake = FakeReceiver::new();
    let args = ["--no-auth", "--idle-timeout", idle];
    let sender = Process::spawn(send_cmd(&[&src], &fake.dest(), &args, &[]));
    let (mut socket, _) = fake.accept();
    let started = Instant::now();
    for frame in &before {
        protocol::write_message(&mut socket, frame).expect("sending a frame whole");
    }
    if !before.is_empty() {
        match protocol::read_message(&mut socket) {
            Ok(Message::Finish(_)) => {}
            other => panic!("expected FINISH, got {other:?}"),
        }
    }
    let trickle = util::trickle(socket, protocol::frame(&trickled));
    let sent = sender.wait_for(Duration::from_secs(40));
    let took = started.elapsed();
    trickle.join().expect("the trickling receiver");
    (sent, took)
}

#[test]
fn a_receiver_trickling_its_plan_cannot_hold_the_sender_past_the_deadline() {
    let plan = Message::Plan(Plan { answers: vec![long_refusal()] });
    // The plan gets --idle-timeout, and at least the handshake's 10 s.
    let (sent, took) = send_to_a_trickling_receiver("2", vec![], plan);
    assert_exit(&sent, 3, "sender");
    assert_says(
        &sent,
        "waiting for the receiver's plan: it did not arrive whole within 10 s (--idle-timeout)",
        "sender",
    );
    assert!(took < Duration::from_secs(25), "the sender took {took:?} to give up");
}

#[test]
fn a_receiver_trickling_its_summary_cannot_hold_the_sender_past_idle_timeout() {
    let plan = Message::Plan(Plan { answers: vec![long_refusal()] });
    let summary = Message::Summary(Summary { verdicts: vec![], stats: SideStats::default() });
    let (sent, took) = send_to_a_trickling_receiver("2", vec![plan], summary);
    assert_exit(&sent, 3, "sender");
    assert_says(
        &sent,
        "waiting for the receiver's summary: it did not arrive whole within 2 s (--idle-timeout)",
        "sender",
    );
    assert!(took < Duration::from_secs(15), "the sender took {took:?} to give up");
}

#[test]
fn a_no_auth_sender_refuses_a_receiver_that_did_not_say_no_auth() {
    // A receiver greeting with neither AUTH nor NO_AUTH (not what zcp recv sends, which always
    // says one or the other) is not one that agreed to run without a token.
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("a.txt");
    fs::write(&src, b"not for just anyone").expect("writing a.txt");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding loopback");
    let dest = listener.local_addr().expect("the address").to_string();
    let receiver = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("the sender connects");
        socket.set_read_timeout(Some(Duration::from_secs(20))).expect("a read timeout");
        protocol::read_hello(&mut socket).expect("the sender's greeting");
        protocol::write_hello(&mut socket, util::protocol::Hello::ours()).expect("greeting");
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut socket, &mut rest);
        rest
    });
    let sent = crate::util::run(crate::util::send_cmd(&[&src], &dest, &["--no-auth"], &[]));
    let after_greeting = receiver.join().expect("the fake receiver");
    assert_exit(&sent, 8, "--no-auth sender");
    assert!(sent.stderr.contains("did not say --no-auth"), "sender:\n{}", sent.stderr);
    assert!(after_greeting.is_empty(), "the sender offered something: {after_greeting:?}");
}
