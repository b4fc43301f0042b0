//! The `zcp` binary: parse the command line, run the subcommand, print, map errors to exit codes.

use std::io::{self, Write};
use std::process;

use clap::Parser;

use zcp::cli::{Cli, Command};
use zcp::config::{Output, RecvConfig, SendConfig};
use zcp::error::{ExitCode, exit_code};
use zcp::recv::Receiver;
use zcp::report::Report;
use zcp::{send, shell};

fn main() {
    ignore_sigxfsz();
    let cli = Cli::parse();
    let code = match run(cli.command) {
        Ok(code) => code,
        Err(err) => fail(&err),
    };
    process::exit(code.code());
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Send(args) => {
            let cfg = SendConfig::from_args(args)?;
            finish(send::run(&cfg)?, cfg.output)
        }
        Command::Recv(args) => {
            let cfg = RecvConfig::from_args(args)?;
            let receiver = Receiver::bind(&cfg)?;
            // Scripts read the port from this line: it is printed even with --quiet.
            eprintln!("listening on {}", receiver.local_addr()?);
            finish(receiver.serve_one(&cfg)?, cfg.print)
        }
        Command::Bench(args) => zcp::bench::run(args),
        Command::Doctor(args) => zcp::doctor::run(args),
        Command::Completions { shell } => {
            shell::print(&shell::completions(shell))?;
            Ok(ExitCode::Success)
        }
        Command::Man => {
            shell::print(&shell::man_page()?)?;
            Ok(ExitCode::Success)
        }
    }
}

/// Prints a finished session's report and returns its exit code.
fn finish(report: Report, output: Output) -> anyhow::Result<ExitCode> {
    if output.summary {
        eprintln!("{}", report.human());
    }
    if output.json {
        let mut out = io::stdout().lock();
        if let Err(e) = writeln!(out, "{}", report.json()).and_then(|_| out.flush()) {
            // A reader that went away (`zcp send … --json | head -c1`) is not our failure.
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(anyhow::Error::from(e).context("writing the JSON report"));
            }
        }
    }
    match report.failure() {
        Some(err) => Ok(fail(&err.into())),
        None => Ok(ExitCode::Success),
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("zcp: {err:#}");
    exit_code(err)
}

/// A write past RLIMIT_FSIZE should fail with EFBIG and a clear error, not kill the process.
fn ignore_sigxfsz() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: setting a signal to SIG_IGN installs no handler code.
    let _ = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) };
}
