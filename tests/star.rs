//! One sender, several receivers (`zcp send PATH... --to A --to B --to C`): every receiver gets
//! the same bytes, each file is read and hashed once for all of them, one receiver failing does
//! not stop the others, the exit code is the highest of theirs, and running the same command
//! again completes a receiver that was cut off.

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    Finished, Process, Receiver, assert_exit, assert_file_holds, assert_says, json_u64, part_of,
    subdir, tree_listing, wait_until, write_random_file, zcp_command,
};

/// `zcp send PATHS… --to R… EXTRA…` with the test token.
fn star_cmd(paths: &[&Path], to: &[String], extra: &[&str]) -> std::process::Command {
    let mut args: Vec<OsString> = vec!["send".into()];
    args.extend(paths.iter().map(OsString::from));
    for r in to {
        args.extend(["--to".into(), r.into()]);
    }
    args.extend(extra.iter().map(OsString::from));
    zcp_command(&args, &[])
}

fn star(paths: &[&Path], to: &[String], extra: &[&str]) -> Finished {
    Process::spawn(star_cmd(paths, to, extra)).wait()
}

/// The entry of the star's JSON for `receiver`.
fn leg<'a>(json: &'a Value, receiver: &str) -> &'a Value {
    let legs = json["receivers"].as_array().expect("a receivers array");
    legs.iter().find(|l| l["address"] == receiver).unwrap_or_else(|| panic!("{receiver}: {json:#}"))
}

/// A tree (a 3 MiB file, a small one, an empty directory) and a 5 MiB file beside it.
fn sources(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let tree = subdir(root, "tree");
    write_random_file(&subdir(&tree, "sub").join("big.bin"), 3 << 20, 1);
    fs::write(tree.join("small.txt"), b"small\n").unwrap();
    subdir(&tree, "empty");
    let file = root.join("single.bin");
    write_random_file(&file, 5 << 20, 2);
    (tree, file)
}

#[test]
fn three_receivers_get_a_tree_and_a_file_byte_identical() {
    let work = tempfile::tempdir().unwrap();
    let (tree, file) = sources(&subdir(work.path(), "src"));
    let dsts: Vec<_> = (0..3).map(|i| subdir(work.path(), &format!("dst{i}"))).collect();
    let receivers: Vec<_> = dsts.iter().map(|d| Receiver::start(d, &[])).collect();
    let to: Vec<String> = receivers.iter().map(Receiver::dest).collect();

    let sent = star(&[&tree, &file], &to, &["--json"]);
    assert_exit(&sent, 0, "sender");
    let json = sent.json();
    assert_eq!(json["exit_code"], 0, "{json:#}");
    for (receiver, dst) in receivers.into_iter().zip(&dsts) {
        let address = receiver.dest();
        assert_exit(&receiver.wait(), 0, "receiver");
        assert_eq!(tree_listing(&dst.join("tree")), tree_listing(&tree), "{address}");
        let big = fs::read(tree.join("sub/big.bin")).unwrap();
        assert_file_holds(&dst.join("tree/sub/big.bin"), &big, &address);
        assert_file_holds(&dst.join("single.bin"), &fs::read(&file).unwrap(), &address);
        let report = &leg(&json, &address)["report"];
        assert_eq!(leg(&json, &address)["exit_code"], 0, "{json:#}");
        assert_eq!(json_u64(report, "/files_sent"), 3, "{report:#}");
        assert_eq!(report["checksum"]["ok"], true, "{report:#}");
    }
    // The two large files were hashed once, for all three receivers.
    assert_eq!(json_u64(&json, "/hashed_once/files"), 2, "{json:#}");
    assert_eq!(json_u64(&json, "/hashed_once/bytes"), 8 << 20, "{json:#}");
}

#[test]
fn each_file_is_read_and_hashed_once_for_every_receiver() {
    const SIZE: usize = 16 << 20;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("data.bin");
    write_random_file(&file, SIZE, 3);
    let dsts: Vec<_> = (0..3).map(|i| subdir(work.path(), &format!("dst{i}"))).collect();
    let receivers: Vec<_> = dsts.iter().map(|d| Receiver::start(d, &[])).collect();
    let to: Vec<String> = receivers.iter().map(Receiver::dest).collect();

    let sent = star(&[&file], &to, &["--json"]);
    assert_exit(&sent, 0, "sender");
    let json = sent.json();
    // One file's worth of checksum reads (256 KiB each) over the star, not one per receiver.
    let one_file = (SIZE as u64).div_ceil(256 << 10);
    let by_sessions: u64 =
        to.iter().map(|r| json_u64(&leg(&json, r)["report"], "/send/checksum_syscalls")).sum();
    let shared = json_u64(&json, "/hashed_once/checksum_calls");
    let all = by_sessions + shared;
    assert!(all >= one_file && all < one_file * 3 / 2, "{all} checksum reads: {json:#}");
    assert_says(&sent, "read and hashed once for 3 receivers: 1 file, 16 MiB", "sender");
    for (receiver, dst) in receivers.into_iter().zip(&dsts) {
        assert_exit(&receiver.wait(), 0, "receiver");
        assert_file_holds(&dst.join("data.bin"), &fs::read(&file).unwrap(), "copy");
    }
}

#[test]
fn a_refusing_receiver_does_not_stop_the_others() {
    let work = tempfile::tempdir().unwrap();
    let (_, file) = sources(&subdir(work.path(), "src"));
    let dsts: Vec<_> = (0..3).map(|i| subdir(work.path(), &format!("dst{i}"))).collect();
    fs::write(dsts[1].join("single.bin"), b"already here").unwrap();
    let receivers: Vec<_> = dsts.iter().map(|d| Receiver::start(d, &[])).collect();
    let to: Vec<String> = receivers.iter().map(Receiver::dest).collect();

    let sent = star(&[&file], &to, &["--json"]);
    assert_exit(&sent, 5, "sender");
    let json = sent.json();
    assert_eq!(leg(&json, &to[1])["exit_code"], 5, "{json:#}");
    assert_eq!(leg(&json, &to[1])["report"]["refused"], 1, "{json:#}");
    assert_says(&sent, &format!("zcp: to {}: ", to[1]), "sender");
    assert_eq!(fs::read(dsts[1].join("single.bin")).unwrap(), b"already here");
    for i in [0, 2] {
        assert_eq!(leg(&json, &to[i])["exit_code"], 0, "{json:#}");
        assert_file_holds(&dsts[i].join("single.bin"), &fs::read(&file).unwrap(), &to[i]);
    }
    assert!(sent.stderr.contains("3 receivers: 2 done, 1 failed (exit 5)"), "{}", sent.stderr);
}

#[test]
fn a_wrong_token_at_one_receiver_fails_that_one_alone() {
    let work = tempfile::tempdir().unwrap();
    let (tree, _) = sources(&subdir(work.path(), "src"));
    let dsts: Vec<_> = (0..3).map(|i| subdir(work.path(), &format!("dst{i}"))).collect();
    let other = [("ZCP_TOKEN", Some("another-token-entirely-9f2c"))];
    let receivers: Vec<_> = dsts
        .iter()
        .enumerate()
        .map(|(i, d)| Receiver::start_env(d, &[], if i == 2 { &other[..] } else { &[] }))
        .collect();
    let to: Vec<String> = receivers.iter().map(Receiver::dest).collect();

    let sent = star(&[&tree], &to, &["--json"]);
    assert_exit(&sent, 8, "sender");
    let json = sent.json();
    assert_eq!(json["exit_code"], 8, "{json:#}");
    assert_eq!(leg(&json, &to[2])["exit_code"], 8, "{json:#}");
    assert!(leg(&json, &to[2])["report"].is_null(), "{json:#}");
    for i in [0, 1] {
        assert_eq!(leg(&json, &to[i])["exit_code"], 0, "{json:#}");
        assert_eq!(tree_listing(&dsts[i].join("tree")), tree_listing(&tree), "{}", to[i]);
    }
    assert!(!dsts[2].join("tree").exists(), "nothing lands where the token was refused");
}

#[test]
fn events_name_the_receiver_of_each_session() {
    let work = tempfile::tempdir().unwrap();
    let (_, file) = sources(&subdir(work.path(), "src"));
    let dsts: Vec<_> = (0..2).map(|i| subdir(work.path(), &format!("dst{i}"))).collect();
    let receivers: Vec<_> = dsts.iter().map(|d| Receiver::start(d, &[])).collect();
    let mut to: Vec<String> = receivers.iter().map(Receiver::dest).collect();
    let closed = crate::util::ClosedPort::new();
    to.push(closed.dest());

    let sent = star(&[&file], &to, &["--events"]);
    assert_exit(&sent, 3, "sender");
    let events: Vec<Value> =
        sent.stdout.lines().map(|l| serde_json::from_str(l).expect("an event")).collect();
    for r in &to[..2] {
        let mine = |name: &str| events.iter().any(|e| e["receiver"] == *r && e["event"] == name);
        assert!(mine("session_start") && mine("summary"), "{r}: {}", sent.stdout);
    }
    let failed = events.iter().find(|e| e["receiver"] == to[2]).expect("the closed port's event");
    assert_eq!((&failed["event"], &failed["exit_code"]), (&"error".into(), &3.into()));
}

#[test]
fn a_receiver_cut_off_is_completed_by_the_same_command() {
    const SIZE: usize = 24 << 20;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("big.bin");
    write_random_file(&file, SIZE, 4);
    let dsts: Vec<_> = (0..3).map(|i| subdir(work.path(), &format!("dst{i}"))).collect();
    let recv = |dst: &Path, listen: &str| {
        let args = ["recv", "--listen", listen, "--keep-open", "--skip-existing", "--output"];
        let mut args: Vec<OsString> = args.map(OsString::from).to_vec();
        args.push(dst.into());
        let mut p = Process::start(&args, &[]);
        let addr = p.listening();
        (p, addr.to_string())
    };
    let mut receivers: Vec<_> = dsts.iter().map(|d| recv(d, "127.0.0.1:0")).collect();
    let to: Vec<String> = receivers.iter().map(|(_, a)| a.clone()).collect();
    // At most 8 MiB/s per receiver: still going when the second receiver is killed.
    let slow = ["--limit-rate", "8M", "--json"];
    let first = Process::spawn(star_cmd(&[&file], &to, &slow));
    let part = part_of(&dsts[1], "big.bin");
    wait_until(Duration::from_secs(20), "data in the part file", || {
        fs::metadata(&part).map_or(0, |m| m.len()) >= 64 << 10
    });
    let (killed, _) = receivers.remove(1);
    assert_eq!(killed.kill().status.signal(), Some(9));
    let first = first.wait();
    assert_exit(&first, 3, "the first run");
    let json = first.json();
    assert_eq!(leg(&json, &to[0])["exit_code"], 0, "{json:#}");
    assert_eq!(leg(&json, &to[2])["exit_code"], 0, "{json:#}");
    let kept = fs::metadata(&part).expect("the part file is kept").len();

    receivers.insert(1, recv(&dsts[1], &to[1]));
    let again = star(&[&file], &to, &["--json"]);
    assert_exit(&again, 0, "the same command again");
    let json = again.json();
    let resumed = &leg(&json, &to[1])["report"];
    assert_eq!(json_u64(resumed, "/files/0/resumed_from"), kept, "{json:#}");
    assert_eq!(json_u64(resumed, "/bytes"), SIZE as u64 - kept, "{json:#}");
    for i in [0, 2] {
        let report = &leg(&json, &to[i])["report"];
        assert_eq!(json_u64(report, "/bytes"), 0, "{}: nothing resent: {json:#}", to[i]);
        assert_eq!(json_u64(report, "/skipped"), 1, "{json:#}");
    }
    for dst in &dsts {
        assert_file_holds(&dst.join("big.bin"), &fs::read(&file).unwrap(), "copy");
    }
}

#[test]
fn a_star_refuses_what_it_cannot_do() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("f.bin");
    fs::write(&file, b"x").unwrap();
    let to = vec!["127.0.0.1:9".to_string()];
    let cases: [(&[&str], &str); 5] = [
        (&["127.0.0.1:7878"], "looks like a receiver's address"),
        (&["--to", "nonsense"], "--to takes HOST:PORT"),
        (&["--listen", "127.0.0.1:0"], "--listen"),
        (&["--raw"], "--raw"),
        (&["--to", "127.0.0.1:9"], "given twice"),
    ];
    for (extra, says) in cases {
        let args: Vec<&str> = extra.to_vec();
        let (paths, flags): (Vec<&Path>, Vec<&str>) = if args[0].starts_with("--") {
            (vec![&file], args)
        } else {
            (vec![&file, Path::new(args[0])], vec![])
        };
        let f = star(&paths, &to, &flags);
        assert_exit(&f, 2, &format!("{extra:?}"));
        assert_says(&f, says, &format!("{extra:?}"));
    }
    let stdin = star(&[Path::new("-")], &to, &["--name", "x"]);
    assert_exit(&stdin, 2, "standard input");
    assert_says(&stdin, "standard input (-) can be read only once", "standard input");
}

#[test]
fn ctrl_c_stops_every_session_cleanly_after_one_ended() {
    // 12 s at the rate below: still going, on a loaded machine, when the signal comes.
    const SIZE: usize = 48 << 20;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("big.bin");
    write_random_file(&file, SIZE, 5);
    let dsts: Vec<_> = (0..2).map(|i| subdir(work.path(), &format!("dst{i}"))).collect();
    fs::write(dsts[0].join("big.bin"), b"already here").unwrap();
    // The first receiver is not there yet (the sender retries it): it comes once the second
    // session's bytes flow, refuses, and its session ends while the other's still runs.
    let closed = crate::util::ClosedPort::new();
    let late = closed.dest();
    let running = Receiver::start(&dsts[1], &[]);
    let to = vec![late.clone(), running.dest()];
    let slow = ["--limit-rate", "4M", "--retry", "20", "--json"];
    let sender = Process::spawn(star_cmd(&[&file], &to, &slow));
    let part = part_of(&dsts[1], "big.bin");
    wait_until(Duration::from_secs(20), "data in the part file", || {
        fs::metadata(&part).map_or(0, |m| m.len()) >= 64 << 10
    });
    drop(closed);
    let mut args: Vec<OsString> =
        ["recv", "--listen", &late, "--output"].map(OsString::from).into();
    args.push(dsts[0].clone().into());
    let mut refusing = Process::start(&args, &[]);
    refusing.listening();
    assert_exit(&refusing.wait(), 5, "the refusing receiver");
    sender.signal(nix::sys::signal::Signal::SIGINT);
    let stopped = sender.wait();
    assert_exit(&stopped, 130, "the interrupted star");
    let json = stopped.json();
    assert_eq!(leg(&json, &to[0])["exit_code"], 5, "{json:#}");
    assert_eq!(leg(&json, &to[1])["exit_code"], 130, "{json:#}");
    running.wait();
    assert!(fs::metadata(&part).is_ok_and(|m| m.len() > 0), "the part file is kept");
}

#[test]
fn an_encrypted_star_and_a_sparse_file_arrive_intact() {
    let work = tempfile::tempdir().unwrap();
    // 16 MiB with data only at its start and end: the rest is a hole that never crosses.
    let file = work.path().join("sparse.bin");
    let data = crate::util::pseudo_random(1 << 20, 6);
    {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(&file).unwrap();
        f.set_len(16 << 20).unwrap();
        f.write_all_at(&data, 0).unwrap();
        f.write_all_at(&data, (15 << 20) as u64).unwrap();
    }
    let dsts: Vec<_> = (0..2).map(|i| subdir(work.path(), &format!("dst{i}"))).collect();
    let receivers: Vec<_> = dsts.iter().map(|d| Receiver::start(d, &["--encrypt"])).collect();
    let to: Vec<String> = receivers.iter().map(Receiver::dest).collect();

    let sent = star(&[&file], &to, &["--encrypt", "--json"]);
    assert_exit(&sent, 0, "sender");
    let json = sent.json();
    for (receiver, dst) in receivers.into_iter().zip(&dsts) {
        let address = receiver.dest();
        assert_exit(&receiver.wait(), 0, "receiver");
        let report = &leg(&json, &address)["report"];
        assert!(report["encryption"].as_str().unwrap().starts_with("tls1.3"), "{report:#}");
        assert_eq!(json_u64(report, "/hole_bytes"), 14 << 20, "{report:#}");
        assert_file_holds(&dst.join("sparse.bin"), &fs::read(&file).unwrap(), &address);
    }
    assert_eq!(json_u64(&json, "/hashed_once/files"), 1, "{json:#}");
    // Its 14 MiB hole is hashed as zeros without reading it: 2 MiB of data in 256 KiB reads.
    let calls = json_u64(&json, "/hashed_once/checksum_calls");
    assert!(calls <= 16, "the hole was read to hash it: {calls} reads");
}
