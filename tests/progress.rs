//! What a session shows while it runs and when it is stopped: the bar on a terminal (a pty
//! made by `script`): its rate on a resume, its width on a narrow terminal, with --keep-open;
//! the receiver's own Ctrl-C told as a stop, with sizes people read.

use std::fs;
use std::process::Command;

use nix::sys::signal::Signal;

use crate::util::{
    Process, Receiver, STARTUP, ZCP, assert_exit, part_of, run, send_cmd, skip, subdir, unusable,
    wait_for_bytes, write_random_file, zcp_command,
};

const MIB: usize = 1 << 20;

/// Ctrl-C on the receiver shuts its session's socket: what breaks then is the consequence. The
/// line says it was stopped, and how far, not that a connection was lost or reset.
#[test]
fn a_receivers_own_ctrl_c_reads_as_stopped_not_as_a_lost_connection() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("big.bin");
    write_random_file(&src, 8 * MIB, 51);
    let dst = subdir(work.path(), "dst");
    let mut receiver = Receiver::start(&dst, &[]);
    let args = ["--limit-rate", "2M"];
    let sender = Process::spawn(send_cmd(&[&src], &receiver.dest(), &args, &[]));
    wait_for_bytes(&part_of(&dst, "big.bin"), MIB as u64);
    receiver.process().signal(Signal::SIGINT);
    let done = receiver.wait();
    assert_exit(&done, 130, "zcp recv after its own Ctrl-C");
    let said = done.stderr.to_lowercase();
    assert!(said.contains("stopped by sigint"), "{}", done.stderr);
    for wrong in ["connection lost", "reset", "os error", " bytes"] {
        assert!(!said.contains(wrong), "{wrong:?} in: {}", done.stderr);
    }
    sender.kill();
}

/// `zcp ARGS…` on a terminal `columns` wide (a pty made by `script`), with the test token; what
/// it draws there comes as its stderr, so `listening()` and `wait_line` work as usual.
fn on_a_terminal(columns: u16, args: &[&str]) -> Process {
    let quoted: Vec<String> =
        args.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect();
    let inner = format!("stty cols {columns} rows 20; exec '{ZCP}' {}", quoted.join(" "));
    let mut cmd = zcp_command(&[] as &[&str], &[("TERM", Some("xterm"))]);
    cmd = {
        let mut sh = Command::new("sh");
        sh.args(["-c", r#"exec script -qfec "$0" /dev/null >&2"#, &inner]);
        sh.envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
        sh
    };
    Process::spawn(cmd)
}

/// Skips the test where `script` (util-linux) cannot make a pty.
macro_rules! require_script {
    () => {
        if let Some(why) = unusable("script", &["-qec", "true", "/dev/null"]) {
            return skip(&why);
        }
    };
}

/// The lines a terminal shows of `drawn`: each redraw (`\r`) or line, escape sequences out.
fn screens(drawn: &str) -> Vec<String> {
    let mut out = String::new();
    let mut chars = drawn.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            // A CSI sequence: parameters, then one final byte in @..~.
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out.split(['\r', '\n']).filter(|s| !s.trim().is_empty()).map(str::to_string).collect()
}

/// The rates a bar showed (`12.5 MiB/s`), in bytes per second.
fn rates(screens: &[String]) -> Vec<f64> {
    let unit = |u: &str| match u {
        "B/s" => Some(1.0),
        "KiB/s" => Some(1024.0),
        "MiB/s" => Some(1024.0 * 1024.0),
        "GiB/s" => Some(1024.0 * 1024.0 * 1024.0),
        _ => None,
    };
    let words = screens.iter().flat_map(|s| s.split(' ').collect::<Vec<_>>());
    let words: Vec<&str> = words.collect();
    words.windows(2).filter_map(|w| Some(w[0].parse::<f64>().ok()? * unit(w[1])?)).collect()
}

/// On a resume the receiver kept most of the file: its bar starts there, and its rate counts
/// only what moves (it showed GiB/s under a 4 MiB/s limit).
#[test]
fn a_resumed_file_s_kept_bytes_are_not_counted_in_the_rate() {
    require_script!();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("big.bin");
    let data = write_random_file(&src, 40 * MIB, 52);
    let dst = subdir(work.path(), "dst");
    fs::write(part_of(&dst, "big.bin"), &data[..36 * MIB]).expect("a part file to resume");
    let out = format!("{}/", dst.display());
    let mut receiver = on_a_terminal(100, &["recv", "--listen", "127.0.0.1:0", "--output", &out]);
    let addr = receiver.listening();
    let sent = run(send_cmd(&[&src], &addr.to_string(), &["--limit-rate", "4M"], &[]));
    assert_exit(&sent, 0, "zcp send");
    assert!(sent.stderr.contains("resumed at"), "no resume: {}", sent.stderr);
    let done = receiver.wait();
    let screens = screens(&done.stderr);
    let rates = rates(&screens);
    assert!(rates.iter().any(|r| *r > 0.0), "no rate drawn: {screens:#?}");
    let fastest = rates.iter().copied().fold(0.0, f64::max);
    assert!(fastest < 16.0 * MIB as f64, "{fastest} B/s under a 4 MiB/s limit: {screens:#?}");
}

/// At 60 columns the bar keeps the file's name and fits on one line (it dropped the name and
/// wrapped, leaving a line behind at each redraw).
#[test]
fn on_a_narrow_terminal_the_bar_fits_and_keeps_the_name() {
    require_script!();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("a-rather-long-file-name-for-the-bar.bin");
    write_random_file(&src, 8 * MIB, 53);
    let dst = subdir(work.path(), "dst");
    let out = format!("{}/", dst.display());
    let mut receiver = on_a_terminal(60, &["recv", "--listen", "127.0.0.1:0", "--output", &out]);
    let addr = receiver.listening();
    let sent = run(send_cmd(&[&src], &addr.to_string(), &["--limit-rate", "8M"], &[]));
    assert_exit(&sent, 0, "zcp send");
    let done = receiver.wait();
    let screens = screens(&done.stderr);
    let bars: Vec<&String> = screens.iter().filter(|s| s.contains("/s")).collect();
    let bars: Vec<&&String> = bars.iter().filter(|s| !s.starts_with("received ")).collect();
    assert!(!bars.is_empty(), "no bar drawn: {screens:#?}");
    for bar in &bars {
        assert!(bar.chars().count() <= 60, "{} columns: {bar:?}", bar.chars().count());
    }
    assert!(bars.iter().any(|b| b.contains("[1/1] a-rather-long")), "no name: {bars:#?}");
}

/// A `--keep-open` receiver on a terminal shows each session's progress (it showed none).
#[test]
fn a_keep_open_receiver_shows_progress_on_a_terminal() {
    require_script!();
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("kept.bin");
    write_random_file(&src, 8 * MIB, 54);
    let dst = subdir(work.path(), "dst");
    let out = format!("{}/", dst.display());
    let args = ["recv", "--keep-open", "--listen", "127.0.0.1:0", "--output", &out];
    let mut receiver = on_a_terminal(100, &args);
    let addr = receiver.listening();
    let sent = run(send_cmd(&[&src], &addr.to_string(), &["--limit-rate", "8M"], &[]));
    assert_exit(&sent, 0, "zcp send");
    receiver.wait_line_within("received kept.bin", STARTUP);
    let done = receiver.kill();
    let screens = screens(&done.stderr);
    let drawn = screens.iter().any(|s| s.contains("[1/1] kept.bin") && s.contains("/s"));
    assert!(drawn, "no progress drawn: {screens:#?}");
}
