//! The `zcp` binary: parse the command line, run the subcommand, print, map errors to exit codes.

use std::net::SocketAddr;
use std::process;

use clap::Parser;

use zcp::cli::{Cli, Command};
use zcp::config::{Output, RecvConfig, RecvMode, SendConfig, SendMode, Sessions};
use zcp::error::{ExitCode, exit_code};
use zcp::progress::Ui;
use zcp::recv::{Outcome, Receiver};
use zcp::report::advice::{self, PeerCommand, TokenHint};
use zcp::report::star::StarReport;
use zcp::report::{self, Report};
use zcp::{raw, send, shell, terminal};

fn main() -> process::ExitCode {
    ignore_sigxfsz();
    let cli = Cli::parse();
    let code = match run(cli.command) {
        Ok(code) => code,
        Err(err) => fail(&err),
    };
    exit_status(code)
}

/// The process's exit status: every code of the table fits in the byte a process returns.
fn exit_status(code: ExitCode) -> process::ExitCode {
    process::ExitCode::from(u8::try_from(code.code()).unwrap_or(1))
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Send(args) => run_send(SendConfig::from_args(args)?),
        Command::Recv(args) => run_recv(RecvConfig::from_args(args)?),
        Command::Bench(args) => zcp::bench::run(args),
        Command::Doctor(args) => zcp::doctor::run(args),
        Command::Completions { shell } => {
            report::to_stdout(&shell::completions(shell))?;
            Ok(ExitCode::Success)
        }
        Command::Man => {
            report::to_stdout(&shell::man_page()?)?;
            Ok(ExitCode::Success)
        }
    }
}

/// Scripts read the port from this line: it is printed even with --quiet.
fn listening(addr: SocketAddr) {
    terminal::line(format!("listening on {addr}"));
}

fn run_send(cfg: SendConfig) -> anyhow::Result<ExitCode> {
    open_events(cfg.print)?;
    match &cfg.mode {
        SendMode::Http(serve) => zcp::http::serve(&cfg, *serve, listening),
        SendMode::Raw => {
            let report = raw::send(&cfg, listening)?;
            Ok(print(cfg.print, || report.human(), || report.json()))
        }
        SendMode::Star(receivers) => {
            let manifest = prepare(&cfg)?;
            let star = send::star::run(&cfg, receivers, &manifest)?;
            Ok(finish_star(&star, cfg.print))
        }
        SendMode::Session => {
            let manifest = prepare(&cfg)?;
            let announce = |addr: SocketAddr| {
                listening(addr);
                let token = TokenHint::of(cfg.token.as_ref(), cfg.token_generated);
                let (encrypt, summary) = (cfg.net.encrypt, cfg.print.summary);
                advice::print(PeerCommand::RecvConnect, token, encrypt, summary, addr);
            };
            let report = send::session(&cfg, &manifest, announce)?;
            Ok(finish(&report, cfg.print))
        }
    }
}

/// Warns when authentication is off, then walks the paths for a protocol session.
fn prepare(cfg: &SendConfig) -> anyhow::Result<send::manifest::Manifest> {
    let ui = Ui::hidden();
    if cfg.no_auth {
        ui.warn("authentication is off (--no-auth): the receiver must run with --no-auth too");
    }
    send::prepare(cfg, &ui)
}

fn run_recv(cfg: RecvConfig) -> anyhow::Result<ExitCode> {
    match cfg.mode {
        RecvMode::Http(accept) => zcp::http::accept(&cfg, accept, listening),
        RecvMode::Raw => {
            let report = raw::recv(&cfg, listening)?;
            Ok(print(cfg.print, || report.human(), || report.json()))
        }
        RecvMode::Session(sessions) => run_sessions(cfg, sessions),
    }
}

/// `zcp recv` taking zcp sessions: one, or many with `--keep-open`.
fn run_sessions(cfg: RecvConfig, sessions: Sessions) -> anyhow::Result<ExitCode> {
    let (output, encrypt) = (cfg.print, cfg.net.encrypt);
    let keep_open = matches!(sessions, Sessions::KeepOpen { .. });
    open_events(output)?;
    let receiver = Receiver::bind(cfg, sessions)?;
    let addr = receiver.local_addr()?;
    if let Some(addr) = addr {
        listening(addr);
    }
    if let Some(addr) = addr {
        let token = TokenHint::of(receiver.token(), receiver.token_generated());
        advice::print(PeerCommand::Send, token, encrypt, output.summary, addr);
    }
    if !receiver.authenticates() {
        Ui::hidden()
            .warn("authentication is off (--no-auth): anyone who can connect may write here");
    }
    let done = |result: anyhow::Result<Report>| match result {
        Ok(report) => finish(&report, output),
        Err(err) => fail(&err),
    };
    let stuck = |outcome: Outcome, stuck: u64| {
        let stuck = zcp::units::counted(stuck, "session");
        let grace = zcp::recv::STOP_GRACE.as_secs_f64();
        terminal::line(format!(
            "zcp: {stuck} did not stop within {grace} s (a write that does not return, such as \
             to a pipe nobody reads): exiting without waiting; part files kept"
        ));
        summarize(&outcome, keep_open, output);
        process::exit(outcome.code.code());
    };
    let outcome = receiver.run(done, stuck)?;
    summarize(&outcome, keep_open, output);
    Ok(outcome.code)
}

/// The receiver's closing line. A stopped receiver says so even when it served no one, as
/// the README promises.
fn summarize(outcome: &Outcome, keep_open: bool, output: Output) {
    if (keep_open || outcome.stopped_by.is_some()) && output.summary {
        let how = outcome.stopped_by.map_or_else(String::new, |s| format!(", stopped by {s}"));
        let served = zcp::units::counted(outcome.served, "session");
        terminal::line(format!("served {served}, {} failed{how}", outcome.failed));
    }
}

/// Prints a finished session's report and returns its exit code.
fn finish(report: &Report, output: Output) -> ExitCode {
    let code = print(output, || report.human(), || report.json());
    match report.failure() {
        Some(err) if code == ExitCode::Success => fail(&err.into()),
        _ => code,
    }
}

/// Prints a star's summary and each failed receiver's error; the star's exit code.
fn finish_star(star: &StarReport, output: Output) -> ExitCode {
    for leg in &star.legs {
        if let Some(error) = &leg.error {
            terminal::line(format!("zcp: to {}: {}", leg.receiver, error));
        }
    }
    match print(output, || star.human(), || star.json()) {
        ExitCode::Success => star.code(),
        failed => failed,
    }
}

/// Prints the summary (unless quiet) and the JSON (when asked); a reader that went away
/// (`zcp send … --json | head -c1`) is not our failure.
fn print(output: Output, human: impl Fn() -> String, json: impl Fn() -> String) -> ExitCode {
    if output.summary {
        zcp::progress::above_bars(&human());
    }
    if output.json
        && let Err(e) = report::line_to_stdout(&json())
    {
        return fail(&anyhow::Error::from(e).context("writing the JSON report"));
    }
    ExitCode::Success
}

/// Prints the error chain; peer text in it (an ERROR frame, a refused name) is shown escaped.
/// With `--events` the stream gets it too, exact.
fn fail(err: &anyhow::Error) -> ExitCode {
    let message = format!("{err:#}");
    zcp::progress::above_bars(&format!("zcp: {}", zcp::terminal::shown(&message)));
    let code = exit_code(err);
    report::events::failure(&message, code.code());
    code
}

/// Opens the `--events` stream, when asked for.
fn open_events(output: Output) -> anyhow::Result<()> {
    match output.events {
        Some(to) => report::events::open(to),
        None => Ok(()),
    }
}

/// A write past RLIMIT_FSIZE should fail with EFBIG and a clear error, not kill the process.
fn ignore_sigxfsz() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: setting a signal to SIG_IGN installs no handler code. signal-hook has no safe
    // SIG_IGN, and a no-op handler would not be inherited, as SIG_IGN is, by programs we exec.
    let _ = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) };
}
