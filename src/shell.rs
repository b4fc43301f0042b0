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

/// The man page for `zcp` and each subcommand, in one roff document: one page, zcp(1), whose
/// subcommands are sections of it (there are no zcp-send(1) pages to point at).
pub fn man_page() -> io::Result<Vec<u8>> {
    let cmd = Cli::command();
    let subs: Vec<&clap::Command> =
        cmd.get_subcommands().filter(|s| s.get_name() != "help").collect();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    out.extend_from_slice(b".SH SUBCOMMANDS\n");
    for sub in &subs {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        let line = format!(
            ".TP\n\\fBzcp {}\\fR\n{} (see ZCP {} below)\n",
            sub.get_name(),
            roff(&about),
            sub.get_name().to_uppercase()
        );
        out.extend_from_slice(line.as_bytes());
    }
    man.render_extra_section(&mut out)?;
    man.render_version_section(&mut out)?;
    for sub in subs {
        let title = format!("zcp {}", sub.get_name());
        let sub = sub.clone().name(&title).display_name(&title).bin_name(&title);
        let man = clap_mangen::Man::new(sub);
        let mut page = Vec::new();
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
        man.render_extra_section(&mut page)?;
        // The subcommand's sections become subsections of its own section.
        let page = String::from_utf8_lossy(&page).replace("\n.SH ", "\n.SS ");
        let page = page.strip_prefix(".SH ").map_or(page.clone(), |p| format!(".SS {p}"));
        out.extend_from_slice(format!(".SH \"{}\"\n", title.to_uppercase()).as_bytes());
        out.extend_from_slice(page.as_bytes());
    }
    Ok(out)
}

/// Text for a roff line: a leading dot or quote would be read as a request.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\\\").replace('-', "\\-");
    if text.starts_with(['.', '\'']) { format!("\\&{text}") } else { text }
}
