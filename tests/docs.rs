//! The documentation runs: the `sh` examples on the README's first screen and the send and
//! recv examples of `--help` are run as the shell scripts they are (loopback, temp dirs, tokens
//! set), and every `zcp …` command in them and in the other subcommands' examples must parse and
//! validate. The one change made to a command is its address: `…:7878` becomes a port this test
//! holds (or `127.0.0.1:0` for a receiver), so that test runs do not collide. Lines that start
//! with `cargo` (install, build, test) are only parsed: running them here would rebuild or recurse.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use nix::sys::signal::Signal;

use crate::util::{
    Cli, ClosedPort, Process, Receiver, TOKEN, TOKEN_ENV, ZCP, assert_exit, assert_file_holds, run,
    send, subdir, write_random_file,
};

const README: &str = include_str!("../README.md");
/// The HTML comment that ends the README's first screen.
const FIRST_SCREEN_END: &str = "<!-- End of the first screen";

/// The contents of the ```sh blocks before the end of the first screen.
fn first_screen_blocks() -> Vec<String> {
    let (screen, _) = README.split_once(FIRST_SCREEN_END).expect("the first-screen marker");
    let mut blocks = Vec::new();
    let mut rest = screen;
    while let Some((_, after)) = rest.split_once("```sh\n") {
        let (block, tail) = after.split_once("```").expect("a closed sh block");
        blocks.push(block.to_string());
        rest = tail;
    }
    blocks
}

/// The example lines of `zcp SUB --help` (under `Examples:` or `Install:`).
fn help_examples(sub: &str) -> Vec<String> {
    let out = Command::new(ZCP).args([sub, "--help"]).output().expect("running --help");
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    let mut lines = help.lines().skip_while(|l| *l != "Examples:" && *l != "Install:").skip(1);
    let mut examples = Vec::new();
    for line in lines.by_ref() {
        match line.strip_prefix("  ") {
            Some(example) => examples.push(example.to_string()),
            None => break,
        }
    }
    assert!(!examples.is_empty(), "`zcp {sub} --help` has no examples:\n{help}");
    examples
}

/// The argument lists of the `zcp …` commands in a shell line (`cargo run … -- ARGS` counts as
/// `zcp ARGS`), without variable assignments, redirections and comments.
fn zcp_commands(line: &str) -> Vec<Vec<String>> {
    let code = line.split(" #").next().unwrap_or_default();
    let mut commands = Vec::new();
    for segment in code.split([';', '&', '|', '(', ')']) {
        let words: Vec<&str> = segment
            .split_whitespace()
            .skip_while(|w| w.contains('=') && !w.starts_with('-'))
            .collect();
        let args: Vec<&str> = match words.as_slice() {
            ["zcp", rest @ ..] => rest.to_vec(),
            ["cargo", "run", rest @ ..] => match rest.iter().position(|w| *w == "--") {
                Some(i) => rest[i + 1..].to_vec(),
                None => continue,
            },
            _ => continue,
        };
        let args = args.into_iter().take_while(|w| !w.starts_with('>'));
        commands.push(std::iter::once("zcp").chain(args).map(String::from).collect());
    }
    commands
}

/// Asserts that every `zcp` command in `line` parses, and that send and recv commands also
/// pass the checks made before anything runs (addresses, option combinations).
#[track_caller]
fn assert_parses(line: &str) {
    for words in zcp_commands(line) {
        let cli = Cli::try_parse_from(&words)
            .unwrap_or_else(|e| panic!("example `{line}` does not parse:\n{e}"));
        let checked = match cli.command {
            zcp::cli::Command::Send(args) => zcp::config::SendConfig::from_args(args).map(drop),
            zcp::cli::Command::Recv(args) => zcp::config::RecvConfig::from_args(args).map(drop),
            _ => Ok(()),
        };
        if let Err(e) = checked {
            panic!("example `{line}` is refused: {e:#}");
        }
    }
}

/// `line` with every `HOST:7878` word replaced by `dest`.
fn to_address(line: &str, dest: &str) -> String {
    line.split_whitespace()
        .filter(|w| w.ends_with(":7878"))
        .fold(line.to_string(), |l, w| l.replace(w, dest))
}

/// `sh -ec SCRIPT` in `dir`, with this build's `zcp` first on PATH and no token in the
/// environment (the scripts set their own), then `env`.
pub(crate) fn shell(script: &str, dir: &Path, env: &[(&str, &str)]) -> Command {
    let bin = Path::new(ZCP).parent().expect("the binary's directory");
    let mut path = OsString::from(bin);
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let mut cmd = Command::new("sh");
    cmd.arg("-ec").arg(script).current_dir(dir).env("PATH", path).env_remove(TOKEN_ENV);
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd
}

/// A few files to send: `./big.iso` (1 MiB), `./photos/` (two files), `./src/` and
/// `./README.md` as in a clone.
fn sources(dir: &Path) -> PathBuf {
    write_random_file(&dir.join("big.iso"), 1 << 20, 31);
    let photos = subdir(dir, "photos");
    fs::write(photos.join("a.jpg"), b"a").expect("a photo");
    fs::write(photos.join("b.jpg"), b"b").expect("a photo");
    let src = subdir(dir, "src");
    fs::write(src.join("main.rs"), b"fn main() {}\n").expect("a source file");
    fs::write(dir.join("README.md"), b"# zcp\n").expect("a readme");
    dir.join("big.iso")
}

/// The lines of the first screen's `sh` block that contains `marker`, less those that run
/// `cargo` (install, build, test), after checking that every `zcp` command on the first screen
/// parses.
fn first_screen_script(marker: &str) -> String {
    let blocks = first_screen_blocks();
    assert!(blocks.len() >= 2, "the first screen shows install and try-it blocks: {blocks:?}");
    blocks.iter().flat_map(|b| b.lines()).for_each(assert_parses);
    let mut found = blocks.iter().filter(|b| b.contains(marker));
    let block = found.next().unwrap_or_else(|| panic!("no first-screen block has {marker:?}"));
    assert!(found.next().is_none(), "one first-screen block has {marker:?}: {blocks:?}");
    let lines: Vec<&str> =
        block.lines().filter(|l| !l.trim_start().starts_with("cargo ")).collect();
    lines.join("\n")
}

/// The Try-it example: a receiver and a sender.
fn try_it_script() -> String {
    let script = first_screen_script("zcp recv");
    assert!(script.contains("zcp send"), "{script}");
    script
}

#[test]
fn readme_first_screen_runs_as_written() {
    let script = try_it_script();
    let work = tempfile::tempdir().expect("tempdir");
    sources(work.path());
    let port = ClosedPort::new();
    let script = to_address(&script, &port.dest());
    let ran = run(shell(&script, work.path(), &[]));
    assert_exit(&ran, 0, "the README's example");
    let incoming = work.path().join("incoming");
    assert_file_holds(&incoming.join("src/main.rs"), b"fn main() {}\n", "src/main.rs");
    assert_file_holds(&incoming.join("README.md"), b"# zcp\n", "README.md");
    // The demo shows zero-copy at work, as the text under it says, beside the batched files.
    let big = fs::read(work.path().join("big.bin")).expect("the demo's large file");
    assert_file_holds(&incoming.join("big.bin"), &big, "big.bin");
    for (end, path) in [("sent", "send: sendfile"), ("received", "recv: splice")] {
        let summary = ran.stderr.split(&format!("\n{end} ")).nth(1).unwrap_or_default();
        let second = summary.lines().nth(1).unwrap_or_default();
        assert!(second.contains(path), "the {end} summary shows {path:?}:\n{}", ran.stderr);
    }
    assert!(ran.stderr.contains("went in batches"), "{}", ran.stderr);
}

#[test]
fn readme_install_lines_work_in_a_fresh_home() {
    let script = first_screen_script("cargo install");
    let home = tempfile::tempdir().expect("a fresh HOME");
    // What `cargo install` leaves: zcp in ~/.cargo/bin, which is on PATH.
    let bin = subdir(&subdir(home.path(), ".cargo"), "bin");
    std::os::unix::fs::symlink(ZCP, bin.join("zcp")).expect("zcp in ~/.cargo/bin");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let home_dir = home.path().to_string_lossy().into_owned();
    let env = [("HOME", home_dir.as_str()), ("PATH", path.as_str())];
    let ran = run(shell(&script, home.path(), &env));
    assert_exit(&ran, 0, "the README's install lines");
    let page = home.path().join(".cargo/share/man/man1/zcp.1");
    assert!(page.is_file(), "no man page at {}", page.display());
    let mut bash = Command::new("bash");
    bash.args(["-c", ". ~/.bashrc; complete -p zcp"]).envs(env);
    let bash = bash.output().expect("running bash");
    let registered = String::from_utf8_lossy(&bash.stdout);
    assert!(registered.contains(" zcp"), "bash has no completion for zcp: {bash:?}");
    if let Some(why) = crate::util::unusable("man", &["--version"]) {
        return crate::util::skip(&why);
    }
    let found = Command::new("man").args(["-w", "zcp"]).envs(env).env_remove("MANPATH").output();
    let found = found.expect("running man -w");
    let found = String::from_utf8_lossy(&found.stdout);
    assert_eq!(found.trim(), page.display().to_string(), "man finds the page by PATH");
}

#[test]
fn readme_first_screen_run_twice_names_a_few_refusals_and_counts_the_rest() {
    const FILES: usize = 40;
    let script = try_it_script();
    let work = tempfile::tempdir().expect("tempdir");
    sources(work.path());
    for i in 0..FILES {
        fs::write(work.path().join(format!("src/m{i:02}.rs")), b"// a module\n").expect("a file");
    }
    let first = run(shell(&to_address(&script, &ClosedPort::new().dest()), work.path(), &[]));
    assert_exit(&first, 0, "the README's example, first run");
    let again = run(shell(&to_address(&script, &ClosedPort::new().dest()), work.path(), &[]));
    assert_exit(&again, 5, "the README's example run again (every file exists)");
    // Both ends print to the one terminal: each names three refusals and counts the rest.
    let refused = again.stderr.lines().filter(|l| l.trim_start().starts_with("refused ")).count();
    assert_eq!(refused, 6, "three refusals named per end:\n{}", again.stderr);
    let more = format!("and {} more refused (--json lists every one)", FILES + 3 - 3);
    assert_eq!(again.stderr.matches(&more).count(), 2, "{more:?} per end:\n{}", again.stderr);
    assert!(again.stderr.lines().count() < 25, "a flood:\n{}", again.stderr);
    let hint = again.stderr.lines().filter(|l| l.contains("--force"));
    assert!(
        hint.clone().count() > 0 && hint.clone().all(|l| l.contains("the receiver's --force")),
        "each hint names the end that has --force:\n{}",
        again.stderr
    );
}

#[test]
fn send_help_examples_run_as_written() {
    let examples = help_examples("send");
    examples.iter().for_each(|l| assert_parses(l));
    let token = examples
        .iter()
        .find_map(|l| l.strip_prefix("export ZCP_TOKEN="))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an example that sets the token");

    let work = tempfile::tempdir().expect("tempdir");
    let src = subdir(work.path(), "src");
    sources(&src);
    let dst = subdir(work.path(), "dst");
    let receiver =
        Receiver::start_env(&dst, &["--keep-open", "--force"], &[(TOKEN_ENV, Some(token))]);
    let script: Vec<String> = examples.iter().map(|l| to_address(l, &receiver.dest())).collect();
    let ran = run(shell(&script.join("\n"), &src, &[]));
    let mut receiver = receiver;
    receiver.process().signal(Signal::SIGINT);
    let received = receiver.wait_for(Duration::from_secs(15));
    assert_exit(&ran, 0, "send --help examples");
    assert!(received.stderr.contains("0 failed"), "receiver:\n{}", received.stderr);
    assert!(
        dst.join("big.iso").is_file()
            && dst.join("photos/b.jpg").is_file()
            && dst.join("f").is_file()
    );
}

#[test]
fn recv_help_examples_run_as_written() {
    let work = tempfile::tempdir().expect("tempdir");
    let big = sources(&subdir(work.path(), "src"));
    for (i, line) in help_examples("recv").iter().enumerate() {
        assert_parses(line);
        let code = line.split(" #").next().unwrap_or_default();
        let local = match code.split_once("--listen ") {
            Some((before, after)) => {
                let rest = after.split_once(' ').map_or("", |(_, r)| r);
                format!("{before}--listen 127.0.0.1:0 {rest}")
            }
            None => code.replacen("zcp recv", "zcp recv --listen 127.0.0.1:0", 1),
        };
        let dir = subdir(work.path(), &format!("recv{i}"));
        let mut receiver = Process::spawn(shell(&local, &dir, &[(TOKEN_ENV, TOKEN)]));
        let addr = receiver.listening();
        let sent = send(&big, &addr.to_string(), &[]);
        let received = receiver.wait();
        assert_exit(&sent, 0, &format!("sender to `{line}`"));
        assert_exit(&received, 0, &format!("`{line}`"));
        let landed =
            ["big.iso", "copy.iso", "incoming/big.iso"].iter().any(|name| dir.join(name).is_file());
        assert!(landed, "`{line}` saved nothing where it says:\n{}", received.stderr);
    }
}

#[test]
fn other_help_examples_parse() {
    for sub in ["bench", "completions", "man"] {
        help_examples(sub).iter().for_each(|l| assert_parses(l));
    }
}
