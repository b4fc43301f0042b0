//! Shell integration generated from the command line definition: completion scripts
//! (clap_complete) and the man page (clap_mangen). The checked-in `completions/` are these
//! bytes; a test fails when they drift.

use std::io;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "zcp", &mut out);
    out
}

/// The file name under `completions/` for `shell`.
pub fn completion_file(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "zcp.bash",
        Shell::Zsh => "_zcp",
        Shell::Fish => "zcp.fish",
        Shell::Elvish => "zcp.elv",
        Shell::PowerShell => "_zcp.ps1",
        _ => "zcp.other",
    }
}

/// The man page for `zcp` and each subcommand, in one roff document.
pub fn man_page() -> io::Result<Vec<u8>> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("zcp-{}", sub.get_name());
        let sub = sub.clone().name(name).display_name(format!("zcp {}", sub.get_name()));
        let man = clap_mangen::Man::new(sub);
        out.extend_from_slice(b".\\\" ---------------------------------------------------------\n");
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        man.render_options_section(&mut out)?;
        man.render_extra_section(&mut out)?;
    }
    Ok(out)
}
