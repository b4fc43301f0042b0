//! Shell integration stays true: completions in `completions/` are what the binary generates
//! today, and the man page covers every subcommand.

use std::path::Path;

use assert_cmd::Command;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::util::{Cli, completion_file, completions, skip, unusable};

const SHELLS: [Shell; 5] = [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell];

/// Regenerates every shell's script and fails when the checked-in one differs. Set
/// `ZCP_BLESS=1` to rewrite them after a CLI change.
#[test]
fn completions_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let bless = std::env::var_os("ZCP_BLESS").is_some();
    let mut stale = Vec::new();
    for shell in SHELLS {
        let path = dir.join(completion_file(shell));
        let fresh = completions(shell);
        if bless {
            std::fs::write(&path, &fresh).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&fresh[..]) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale completions (run `ZCP_BLESS=1 cargo test --locked --test tests shell::`): {stale:?}"
    );
}

#[test]
fn completions_subcommand_prints_the_same_script() {
    for shell in SHELLS {
        let out = Command::cargo_bin("zcp")
            .unwrap()
            .args(["completions", &shell.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        assert_eq!(out.stdout, completions(shell), "{shell}");
    }
}

#[test]
fn man_page_covers_every_subcommand() {
    let out = Command::cargo_bin("zcp").unwrap().arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH zcp"), "not roff: {}", &page[..80]);
    for sub in Cli::command().get_subcommands() {
        let name = sub.get_name();
        if name != "help" {
            assert!(page.contains(&format!("zcp {name}")), "man page lacks `zcp {name}`");
            // One page, zcp(1): there is no zcp-send(1) to point at.
            assert!(!page.contains(&format!("\\-{name}(1)")), "man page points at zcp-{name}(1)");
        }
    }
    for code in ["130", "checksum mismatch"] {
        assert!(page.contains(code), "man page lacks the exit code table ({code})");
    }
}

#[test]
fn man_page_renders_with_man() {
    if let Some(why) = unusable("man", &["--version"]) {
        return skip(&why);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zcp.1");
    let page = Command::cargo_bin("zcp").unwrap().arg("man").output().unwrap().stdout;
    std::fs::write(&file, page).unwrap();
    let out = std::process::Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "man -l failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("zcp send") && text.contains("SYNOPSIS"), "{text}");
}

#[test]
fn cli_is_consistent() {
    Cli::command().debug_assert();
}

/// The words of a text, as the man page renders them: roff escapes and font changes dropped,
/// whitespace collapsed, so a flag's long help and its rendering in the page can be compared.
fn words(text: &str) -> String {
    let text = text
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "")
        .replace("\\(aq", "'")
        .replace("\\*(Aq", "'")
        .replace("\\\\", "\\")
        .replace("\\&", "");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('.')).collect();
    lines.join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each flag's full explanation is its `long_help`, so `--help` and the man page carry the
/// same text; a flag documented only in the README would be missing here.
#[test]
fn man_page_holds_every_flags_long_help() {
    let out = Command::cargo_bin("zcp").unwrap().arg("man").output().unwrap();
    let page = words(&String::from_utf8(out.stdout).unwrap());
    let mut missing = Vec::new();
    let cli = Cli::command();
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        for arg in sub.get_arguments() {
            let Some(help) = arg.get_long_help().or(arg.get_help()) else { continue };
            // Every paragraph, so a long help whose later paragraphs the page dropped fails.
            for paragraph in help.to_string().split("\n\n") {
                let paragraph = words(paragraph);
                if !paragraph.is_empty() && !page.contains(&paragraph) {
                    missing.push(format!("zcp {} --{}: {paragraph}", sub.get_name(), arg.get_id()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "man page lacks:\n{}", missing.join("\n"));
}

/// `zcp send --help` prints the long text; `-h` the first paragraph only.
#[test]
fn long_help_is_printed_by_help() {
    let send = Cli::command().find_subcommand("send").unwrap().clone();
    let method = send.get_arguments().find(|a| a.get_id() == "method").unwrap();
    let long = method.get_long_help().expect("--method has a long help").to_string();
    let out = Command::cargo_bin("zcp").unwrap().args(["send", "--help"]).output().unwrap();
    let text = words(&String::from_utf8_lossy(&out.stdout));
    let last = long.split("\n\n").last().unwrap();
    assert!(text.contains(&words(last)), "send --help lacks {last:?}");
}
