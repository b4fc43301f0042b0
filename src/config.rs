//! Validated options for each subcommand, built from the command line. Sessions take these,
//! never clap types, so tests and `bench` can build them directly.

use std::io::IsTerminal;
use std::path::PathBuf;

use std::time::Duration;

use crate::cli::{AuthArgs, NetArgs, OutputArgs, RecvArgs, RecvMethod, SendArgs, SendMethod};
use crate::datapath::{DataPath, Method};
use crate::disk::Policy;
use crate::link::auth::Token;
use crate::link::net::check_addr;
pub use crate::link::net::{Link, NetConfig};
use crate::report::events::EventsTo;

/// What a session prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// One JSON object on stdout at the end.
    pub json: bool,
    /// A progress bar on stderr while bytes move.
    pub progress: bool,
    /// The human summary on stderr at the end.
    pub summary: bool,
    /// NDJSON events while the session runs (`--events`, `--events-fd`).
    pub events: Option<EventsTo>,
}

impl Output {
    /// What to print, given the flags and whether stderr is a terminal (a bar needs one).
    fn new(args: &OutputArgs, stderr_is_terminal: bool) -> anyhow::Result<Output> {
        let events = (args.events || args.events_fd.is_some()).then_some(EventsTo {
            fd: args.events_fd,
            interval: seconds("--events-interval", args.events_interval)?
                .unwrap_or(Duration::from_secs(1)),
        });
        if args.json && events.is_some_and(|e| e.fd.is_none()) {
            return Err(usage_error(
                "--json and --events both write to standard output: the events end with a \
                 summary event holding the report (or send them elsewhere with --events-fd)"
                    .into(),
            ));
        }
        Ok(Output {
            json: args.json,
            progress: !args.quiet && !args.json && stderr_is_terminal,
            summary: !args.quiet,
            events,
        })
    }

    fn from_args(args: &OutputArgs) -> anyhow::Result<Output> {
        Output::new(args, std::io::stderr().is_terminal())
    }
}

/// The connection options given on the command line.
fn net_config(args: &NetArgs, link: Link) -> anyhow::Result<NetConfig> {
    if let Link::Listen(addr) = &link {
        let connecting =
            [(args.retry > 0, "--retry"), (args.connect_timeout.is_some(), "--connect-timeout")];
        if let Some((_, flag)) = connecting.iter().find(|(set, _)| *set) {
            return Err(usage_error(format!(
                "{flag} is for connecting, and this end listens on {addr} (the other end connects)"
            )));
        }
    }
    Ok(NetConfig {
        connect_timeout: seconds("--connect-timeout", args.connect_timeout.unwrap_or(10.0))?
            .unwrap_or(Duration::from_secs(10)),
        link,
        retries: args.retry,
        idle_timeout: seconds("--idle-timeout", args.idle_timeout)?,
        encrypt: args.encrypt,
    })
}

/// A positive number of seconds, `None` for 0.
fn seconds(flag: &str, secs: f64) -> anyhow::Result<Option<Duration>> {
    if !(0.0..=1e9).contains(&secs) {
        return Err(usage_error(format!("{flag} takes a number of seconds, got {secs}")));
    }
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
}

/// The sender's last argument, the receiver's address; when it is not one and a path before it
/// looks like one, the arguments were probably given the wrong way round.
fn check_dest(dest: &str, paths: &[PathBuf]) -> anyhow::Result<()> {
    let Err(e) = check_addr("the last argument (the receiver's address)", dest) else {
        return Ok(());
    };
    let swapped = paths
        .iter()
        .map(|p| p.to_string_lossy())
        .find(|p| check_addr("", p).is_ok() && !std::path::Path::new(p.as_ref()).exists());
    match swapped {
        Some(addr) => Err(usage_error(format!(
            "{addr} looks like the receiver's address: it goes last, after the paths \
             (zcp send PATH... HOST:PORT)"
        ))),
        None => Err(e.into()),
    }
}

fn usage_error(message: String) -> anyhow::Error {
    crate::error::SessionError::Usage(message).into()
}

/// The token to prove or require, if any: `--no-auth` wins, then `--token-file`, then
/// `--token` (or `ZCP_TOKEN`).
fn token(args: &AuthArgs) -> anyhow::Result<Option<Token>> {
    if args.no_auth {
        return Ok(None);
    }
    // An explicit file wins over --token, which may come from ZCP_TOKEN in the environment.
    match (&args.token_file, &args.token) {
        (Some(path), _) => Token::from_file(path).map(Some),
        (None, Some(t)) => Token::new(t).map(Some),
        (None, None) => Ok(None),
    }
}

/// The process umask. Reading it means setting it, so this runs once, while the process has
/// one thread, and puts the old value straight back.
fn current_umask() -> u32 {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o077));
    umask(old);
    old.bits()
}

/// Options of `zcp send`.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Files and directories to send; `-` is standard input.
    pub paths: Vec<PathBuf>,
    /// Name offered for standard input.
    pub stdin_name: Option<String>,
    /// Send what symlinks point to instead of skipping them.
    pub follow_symlinks: bool,
    /// What the walk leaves out, in order (`--exclude-from`, `--exclude`, `--include`).
    pub filters: Vec<FilterRule>,
    /// Resume files where the receiver holds a matching prefix (`--no-resume` sends every
    /// file whole).
    pub resume: bool,
    /// Send files with holes in the sparse form where the receiver takes it (`--no-sparse`:
    /// never).
    pub sparse: bool,
    /// Which data path to use.
    pub method: Method,
    /// Buffer size of the buffered path, in bytes.
    pub buffer_size: usize,
    /// Cap on the sending rate, bytes per second.
    pub limit_rate: Option<u64>,
    /// The token to prove; `None` with `no_auth`, or when the user gave none (the receiver
    /// then refuses unless it runs with `--no-auth`).
    pub token: Option<Token>,
    /// Whether the token was generated here (`--listen` without one) and must be shown.
    pub token_generated: bool,
    /// `--no-auth`: talk only to a receiver that runs without authentication too.
    pub no_auth: bool,
    /// How to reach the receiver, and the connection's limits.
    pub net: NetConfig,
    /// What the session prints.
    pub print: Output,
    /// Whom the paths go to, and how.
    pub mode: SendMode,
}

/// How `zcp send` delivers the paths: the modes exclude each other, and each variant holds
/// only its own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendMode {
    /// One session with one `zcp recv`, connecting to it or waiting for it (`net.link`).
    Session,
    /// `--to`: one session per receiver, all at once, each file read and hashed once
    /// (`net.link` names the first).
    Star(Vec<String>),
    /// `--raw`: the one path as plain bytes, for `nc` and `socat`.
    Raw,
    /// `--http`: serve the paths to HTTP clients instead of sending to a `zcp recv`.
    Http(HttpServe),
}

/// The options of `zcp send --http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpServe {
    /// Serve until interrupted, not only until every file was fetched once (`--keep-open`).
    pub keep_open: bool,
}

/// Where `zcp send --http` serves when `--listen` is not given.
pub const HTTP_LISTEN: &str = "0.0.0.0:7878";

impl SendConfig {
    /// Validates `zcp send`'s arguments: the paths and the address, the token, the options that conflict.
    pub fn from_args(mut args: SendArgs) -> anyhow::Result<SendConfig> {
        let mut paths = std::mem::take(&mut args.args);
        let mode = send_mode(&args, &paths)?;
        let link = match (args.listen.take(), &mode) {
            (None, SendMode::Http(_)) => Link::Listen(HTTP_LISTEN.into()),
            // Each session of the star connects to its own; this is the first.
            (None, SendMode::Star(to)) => Link::Connect(to[0].clone()),
            (Some(addr), _) => {
                check_addr("--listen", &addr)?;
                Link::Listen(addr)
            }
            (None, _) if paths.len() >= 2 => {
                let dest = paths.pop().unwrap_or_default().to_string_lossy().into_owned();
                check_dest(&dest, &paths)?;
                Link::Connect(dest)
            }
            (None, _) => {
                return Err(usage_error(
                    "give the receiver's HOST:PORT after the paths, or --listen ADDR".into(),
                ));
            }
        };
        refuse_send_conflicts(&args, &paths)?;
        let filters = filter_rules(&args)?;
        // The listening end makes the token when it has none, as `zcp recv` does.
        let (token, token_generated) = match token(&args.auth)? {
            None if matches!(link, Link::Listen(_))
                && !args.auth.no_auth
                && mode != SendMode::Raw =>
            {
                (Some(Token::generate()?), true)
            }
            t => (t, false),
        };
        Ok(SendConfig {
            method: match args.method {
                SendMethod::Auto => Method::Auto,
                SendMethod::Sendfile => Method::Only(DataPath::Sendfile),
                SendMethod::Splice => Method::Only(DataPath::Splice),
                SendMethod::Buffered => Method::Only(DataPath::Buffered),
            },
            stdin_name: args.name,
            follow_symlinks: args.follow_symlinks,
            filters,
            resume: !args.no_resume,
            sparse: !args.no_sparse,
            buffer_size: args.buffer_size as usize,
            limit_rate: args.limit_rate.filter(|&r| r > 0),
            token,
            token_generated,
            no_auth: args.auth.no_auth,
            net: net_config(&args.net, link)?,
            print: Output::from_args(&args.output)?,
            paths,
            mode,
        })
    }
}

/// One pattern of the walk's filters, as a line of a .gitignore file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    /// The line the matcher reads (`!` re-includes).
    pub line: String,
    /// Where it came from, for messages: `--exclude`, `--include` or `FILE:LINE`.
    pub source: String,
}

impl FilterRule {
    /// `--exclude GLOB`: a `!` or `#` it starts with is taken literally.
    pub fn exclude(glob: &str) -> FilterRule {
        let escape = if glob.starts_with(['!', '#']) { "\\" } else { "" };
        FilterRule { line: format!("{escape}{glob}"), source: "--exclude".into() }
    }

    /// `--include GLOB`: a negated line, which re-includes.
    pub fn include(glob: &str) -> FilterRule {
        FilterRule { line: format!("!{glob}"), source: "--include".into() }
    }

    /// The pattern as the user wrote it, for messages.
    pub fn pattern(&self) -> &str {
        match self.source.as_str() {
            "--include" => &self.line[1..],
            "--exclude" => self.line.strip_prefix('\\').unwrap_or(&self.line),
            _ => &self.line,
        }
    }
}

/// The walk's filters in the order they apply: each --exclude-from file's lines, then every
/// --exclude, then every --include (a later rule wins).
fn filter_rules(args: &SendArgs) -> anyhow::Result<Vec<FilterRule>> {
    let mut rules = Vec::new();
    for file in &args.exclude_from {
        let text = std::fs::read_to_string(file)
            .map_err(|e| usage_error(format!("--exclude-from {}: {e}", file.display())))?;
        rules.extend(text.lines().enumerate().map(|(n, line)| FilterRule {
            line: line.to_string(),
            source: format!("{}:{}", file.display(), n + 1),
        }));
    }
    rules.extend(args.exclude.iter().map(|g| FilterRule::exclude(g)));
    rules.extend(args.include.iter().map(|g| FilterRule::include(g)));
    Ok(rules)
}

/// The sender's mode, from the flags that choose one (clap refuses any two together).
fn send_mode(args: &SendArgs, paths: &[PathBuf]) -> anyhow::Result<SendMode> {
    Ok(if args.http {
        SendMode::Http(HttpServe { keep_open: args.keep_open })
    } else if args.net.raw {
        SendMode::Raw
    } else if !args.to.is_empty() {
        SendMode::Star(star_receivers(&args.to, paths)?)
    } else {
        SendMode::Session
    })
}

/// The receivers of a star (`--to`, each checked). With `--to`, every positional is a path:
/// an address given last as well is refused, not sent as a file.
fn star_receivers(to: &[String], paths: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    for addr in to {
        check_addr("--to", addr)?;
    }
    if let Some(dup) = to.iter().enumerate().find_map(|(i, a)| to[..i].contains(a).then_some(a)) {
        return Err(usage_error(format!(
            "--to {dup} is given twice: two sessions would write the same files"
        )));
    }
    if let Some(last) = paths.last().map(|p| p.to_string_lossy())
        && check_addr("", &last).is_ok()
        && !std::path::Path::new(last.as_ref()).exists()
    {
        return Err(usage_error(format!(
            "{last} looks like a receiver's address: with --to, give every receiver as \
             --to HOST:PORT (the paths alone come before)"
        )));
    }
    if paths.iter().any(|p| p.as_os_str() == "-") {
        return Err(usage_error(
            "--to sends to several receivers, and standard input (-) can be read only once".into(),
        ));
    }
    Ok(to.to_vec())
}

/// The combinations of `zcp send` options that cannot work together, refused with the reason.
fn refuse_send_conflicts(args: &SendArgs, paths: &[PathBuf]) -> anyhow::Result<()> {
    let stdin = paths.iter().filter(|p| p.as_os_str() == "-").count();
    // Before the rule for `-`, whose advice (`--name`) `--http` refuses.
    if args.http && stdin > 0 {
        return Err(usage_error(
            "--http serves files of known length, not standard input (-)".into(),
        ));
    }
    if stdin > 1 || (stdin == 1 && args.name.is_none()) {
        return Err(usage_error("standard input (-) can be sent once, with --name NAME".into()));
    }
    if args.net.raw && paths.len() != 1 {
        return Err(usage_error("--raw sends exactly one file".into()));
    }
    Ok(())
}

/// Options of `zcp recv`.
#[derive(Debug, Clone)]
pub struct RecvConfig {
    /// A directory to write into, the path of the one file to write, or `-` for stdout.
    pub output: PathBuf,
    /// Which data path to use.
    pub method: Method,
    /// Buffer size of the buffered path, in bytes.
    pub buffer_size: usize,
    /// What to do with existing targets.
    pub policy: Policy,
    /// Refuse sessions whose files add up to more.
    pub max_size: Option<u64>,
    /// Sync every file's data before it gets its name, and its directory after (`--fsync`).
    pub fsync: bool,
    /// Remove what the offer does not hold from the directories it holds, once every entry
    /// landed (`--mirror`).
    pub mirror: bool,
    /// The token senders must prove; `None` only with `--no-auth`.
    pub token: Option<Token>,
    /// Whether the token was generated here (and must be shown to the user).
    pub token_generated: bool,
    /// Where to listen (or whom to fetch from), and the connection's limits.
    pub net: NetConfig,
    /// What the sessions print.
    pub print: Output,
    /// Whom the receiver takes files from, and for how long.
    pub mode: RecvMode,
}

/// How `zcp recv` takes files: the modes exclude each other, and each variant holds only its
/// own options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvMode {
    /// Sessions with `zcp send`: one, or many with `--keep-open`.
    Session(Sessions),
    /// `--raw`: one stream of plain bytes, from `nc` or `socat`.
    Raw,
    /// `--http`: uploads from HTTP clients (`PUT`) instead of zcp senders.
    Http(HttpAccept),
}

impl RecvMode {
    /// Sessions with `zcp send` that may run at once.
    pub fn sessions_at_once(&self) -> u32 {
        match self {
            RecvMode::Session(Sessions::KeepOpen { max_conns }) => *max_conns,
            _ => 1,
        }
    }
}

/// How long a receiver of zcp sessions serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sessions {
    /// One sender, then exit.
    Once {
        /// How long to wait for a sender cut off mid-transfer to come back (`--resume-wait`);
        /// `None`: exit at once.
        resume_wait: Option<Duration>,
    },
    /// Sessions until interrupted, up to `max_conns` at once (`--keep-open`).
    KeepOpen {
        /// Sessions at once (`--max-conns`).
        max_conns: u32,
    },
}

/// The options of `zcp recv --http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpAccept {
    /// Take uploads until interrupted, not only until one landed (`--keep-open`).
    pub keep_open: bool,
    /// Requests whose head arrived served at once (`--max-conns`); the next gets 503.
    pub max_conns: u32,
}

impl RecvConfig {
    /// Validates `zcp recv`'s arguments: the output, the token, the options that conflict.
    pub fn from_args(args: RecvArgs) -> anyhow::Result<RecvConfig> {
        let (token, token_generated) = match token(&args.auth)? {
            Some(t) => (Some(t), false),
            None if args.auth.no_auth || args.net.raw => (None, false),
            // The listening sender made the token and printed it: a new one here cannot match.
            None if args.connect.is_some() => {
                return Err(crate::error::SessionError::Auth(
                    "--connect needs the token the listening sender printed: \
                     ZCP_TOKEN=TOKEN zcp recv --connect HOST:PORT (or --no-auth on both ends)"
                        .into(),
                )
                .into());
            }
            None => (Some(Token::generate()?), true),
        };
        refuse_recv_conflicts(&args)?;
        let mode = recv_mode(&args)?;
        let link = match args.connect {
            Some(dest) => {
                check_addr("--connect", &dest)?;
                Link::Connect(dest)
            }
            None => {
                check_addr("--listen", &args.listen)?;
                Link::Listen(args.listen)
            }
        };
        Ok(RecvConfig {
            method: match args.method {
                RecvMethod::Auto => Method::Auto,
                RecvMethod::Splice => Method::Only(DataPath::Splice),
                RecvMethod::Buffered => Method::Only(DataPath::Buffered),
            },
            buffer_size: args.buffer_size as usize,
            policy: Policy {
                force: args.force,
                skip_existing: args.skip_existing,
                compare_content: args.checksum,
                umask: current_umask(),
            },
            max_size: args.max_size,
            fsync: args.fsync,
            mirror: args.mirror,
            token,
            token_generated,
            net: net_config(&args.net, link)?,
            print: Output::from_args(&args.output_args)?,
            output: args.output,
            mode,
        })
    }
}

/// The receiver's mode, from the flags that choose one (clap refuses `--http` with `--raw`).
fn recv_mode(args: &RecvArgs) -> anyhow::Result<RecvMode> {
    let (keep_open, max_conns) = (args.keep_open, args.max_conns);
    // A receiver that fetches (`--connect`) has no port for a sender to come back to.
    let resume_wait =
        seconds("--resume-wait", args.resume_wait)?.filter(|_| args.connect.is_none());
    Ok(if args.http {
        RecvMode::Http(HttpAccept { keep_open, max_conns })
    } else if args.net.raw {
        RecvMode::Raw
    } else if keep_open {
        RecvMode::Session(Sessions::KeepOpen { max_conns })
    } else {
        RecvMode::Session(Sessions::Once { resume_wait })
    })
}

/// The combinations of `zcp recv` options that cannot work together, refused with the reason.
fn refuse_recv_conflicts(args: &RecvArgs) -> anyhow::Result<()> {
    let stdout = args.output.as_os_str() == "-";
    if stdout && (args.keep_open || args.output_args.json) {
        return Err(usage_error(
            "--output - writes the file to standard output: no --keep-open, no --json".into(),
        ));
    }
    if args.http && stdout {
        return Err(usage_error(
            "--http writes each upload to a file: --output - cannot take it".into(),
        ));
    }
    if args.mirror && (stdout || args.output.is_file()) {
        return Err(usage_error(format!(
            "--mirror removes entries below a directory: --output {} is not one",
            args.output.display()
        )));
    }
    if args.fsync && stdout {
        return Err(usage_error(
            "--fsync applies to files written under --output: not with --output -".into(),
        ));
    }
    // The trailing `/` says a directory, and no name travels in raw mode to put in it.
    if args.net.raw && args.output.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(usage_error(format!(
            "--raw writes one file and no name comes with it: --output {} names a directory; \
             give the file's path (--output {}NAME)",
            args.output.display(),
            args.output.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::error::SessionError;

    /// Parses a command line; `--token` only from `argv`, never from a ZCP_TOKEN the test
    /// runner happens to have.
    fn parse(argv: &[&str]) -> Command {
        let given = argv.contains(&"--token");
        let mut command = Cli::try_parse_from(std::iter::once("zcp").chain(argv.iter().copied()))
            .expect("a valid command line")
            .command;
        match &mut command {
            Command::Send(a) if !given => a.auth.token = None,
            Command::Recv(a) if !given => a.auth.token = None,
            _ => {}
        }
        command
    }

    fn send(argv: &[&str]) -> anyhow::Result<SendConfig> {
        let Command::Send(args) = parse(&[&["send"], argv].concat()) else { unreachable!() };
        SendConfig::from_args(args)
    }

    fn recv(argv: &[&str]) -> anyhow::Result<RecvConfig> {
        let Command::Recv(args) = parse(&[&["recv"], argv].concat()) else { unreachable!() };
        RecvConfig::from_args(args)
    }

    fn usage_message(result: anyhow::Result<impl std::fmt::Debug>) -> String {
        let e = result.expect_err("a usage error");
        match e.downcast_ref::<SessionError>() {
            Some(SessionError::Usage(m)) => m.clone(),
            _ => panic!("not a usage error: {e:#}"),
        }
    }

    fn output(json: bool, quiet: bool, terminal: bool) -> Output {
        let args = OutputArgs { json, quiet, events: false, events_fd: None, events_interval: 1.0 };
        Output::new(&args, terminal).unwrap()
    }

    #[test]
    fn a_progress_bar_only_on_a_terminal_without_json_or_quiet() {
        assert_eq!(
            output(false, false, true),
            Output { json: false, progress: true, summary: true, events: None }
        );
        assert!(!output(false, false, false).progress);
        assert_eq!(
            output(true, false, true),
            Output { json: true, progress: false, summary: true, events: None }
        );
        assert_eq!(
            output(false, true, true),
            Output { json: false, progress: false, summary: false, events: None }
        );
        assert_eq!(
            output(true, true, true),
            Output { json: true, progress: false, summary: false, events: None }
        );
    }

    #[test]
    fn seconds_zero_means_never_and_out_of_range_is_a_usage_error() {
        assert_eq!(seconds("--idle-timeout", 0.0).unwrap(), None);
        assert_eq!(seconds("--idle-timeout", 1.5).unwrap(), Some(Duration::from_millis(1500)));
        assert_eq!(
            seconds("--idle-timeout", 1e9).unwrap(),
            Some(Duration::from_secs(1_000_000_000))
        );
        for bad in [-1.0, 1e9 + 1.0, f64::NAN, f64::INFINITY] {
            let m = usage_message(seconds("--idle-timeout", bad));
            assert!(m.contains("--idle-timeout takes a number of seconds"), "{m}");
        }
    }

    #[test]
    fn timeouts_reach_the_connection_options() {
        let c = send(&["--connect-timeout", "2.5", "--idle-timeout", "0", "f", "h:1"]).unwrap();
        assert_eq!(c.net.connect_timeout, Duration::from_millis(2500));
        assert_eq!(c.net.idle_timeout, None);
        let c = send(&["--connect-timeout", "0", "--retry", "3", "f", "h:1"]).unwrap();
        assert_eq!(c.net.connect_timeout, Duration::from_secs(10), "0 means the default");
        assert_eq!(c.net.retries, 3);
        assert_eq!(c.net.idle_timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn the_last_argument_is_the_address_and_a_swapped_one_is_named() {
        let c = send(&["a", "b", "host:7878"]).unwrap();
        assert_eq!(c.net.link, Link::Connect("host:7878".into()));
        assert_eq!(c.paths, [PathBuf::from("a"), PathBuf::from("b")]);
        let m = usage_message(send(&["host:7878", "no-such-file-here"]));
        assert!(m.contains("host:7878 looks like the receiver's address"), "{m}");
        // An existing file whose name looks like an address is a path, not a swapped address.
        let dir = std::env::temp_dir().join(format!("zcp-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let existing = dir.join("h:1");
        std::fs::write(&existing, b"x").unwrap();
        let e = send(&[existing.to_str().unwrap(), "no-such-file-here"]).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!format!("{e:#}").contains("looks like the receiver's address"), "{e:#}");
        assert!(format!("{e:#}").contains("the last argument"), "{e:#}");
        let m = usage_message(send(&["just-a-file"]));
        assert!(m.contains("give the receiver's HOST:PORT"), "{m}");
    }

    #[test]
    fn standard_input_once_and_named_raw_exactly_one_file() {
        assert!(send(&["--name", "n", "-", "h:1"]).is_ok());
        let m = usage_message(send(&["-", "h:1"]));
        assert!(m.contains("standard input (-) can be sent once"), "{m}");
        let m = usage_message(send(&["--name", "n", "-", "-", "h:1"]));
        assert!(m.contains("standard input (-) can be sent once"), "{m}");
        assert!(send(&["--raw", "f", "h:1"]).is_ok());
        let m = usage_message(send(&["--raw", "f", "g", "h:1"]));
        assert!(m.contains("--raw sends exactly one file"), "{m}");
    }

    #[test]
    fn a_listening_sender_makes_a_token_unless_told_otherwise() {
        let c = send(&["--listen", "127.0.0.1:0", "f"]).unwrap();
        assert!(c.token.is_some() && c.token_generated);
        let c = send(&["--listen", "127.0.0.1:0", "--token", "t", "f"]).unwrap();
        assert_eq!((c.token, c.token_generated), (Some(Token::new("t").unwrap()), false));
        for flag in ["--no-auth", "--raw"] {
            let c = send(&["--listen", "127.0.0.1:0", flag, "f"]).unwrap();
            assert_eq!((c.token, c.token_generated), (None, false), "{flag}");
        }
        let c = send(&["f", "h:1"]).unwrap();
        assert_eq!((c.token, c.token_generated), (None, false), "a connecting sender makes none");
        assert!(!c.no_auth && send(&["--no-auth", "f", "h:1"]).unwrap().no_auth);
    }

    #[test]
    fn sender_options_arrive_as_given() {
        let c = send(&["--method", "splice", "--limit-rate", "0", "--no-resume", "-L", "f", "h:1"])
            .unwrap();
        assert_eq!(c.method, Method::Only(DataPath::Splice));
        assert_eq!(c.limit_rate, None, "a rate of 0 is no limit");
        assert!(!c.resume && c.follow_symlinks);
        let c = send(&["--limit-rate", "1M", "--buffer-size", "64K", "f", "h:1"]).unwrap();
        assert_eq!(c.limit_rate, Some(1 << 20));
        assert_eq!(c.buffer_size, 64 << 10);
        assert!(c.resume && !c.follow_symlinks && c.method == Method::Auto);
    }

    #[test]
    fn a_receiver_makes_a_token_unless_given_one_or_told_not_to() {
        let c = recv(&[]).unwrap();
        assert!(c.token.is_some() && c.token_generated);
        let c = recv(&["--token", "t"]).unwrap();
        assert_eq!((c.token, c.token_generated), (Some(Token::new("t").unwrap()), false));
        for flag in ["--no-auth", "--raw"] {
            let c = recv(&[flag]).unwrap();
            assert_eq!((c.token, c.token_generated), (None, false), "{flag}");
        }
        let e = recv(&["--connect", "h:1"]).unwrap_err();
        assert!(matches!(e.downcast_ref(), Some(SessionError::Auth(_))), "{e:#}");
        let c = recv(&["--connect", "h:1", "--token", "t"]).unwrap();
        assert_eq!(c.net.link, Link::Connect("h:1".into()));
    }

    #[test]
    fn no_auth_wins_over_a_token_file_which_wins_over_a_token() {
        let file = std::env::temp_dir().join(format!("zcp-config-token-{}", std::process::id()));
        std::fs::write(&file, "from-file\nsecond line\n").unwrap();
        let path = file.to_str().unwrap();
        let from_file = recv(&["--token", "t", "--token-file", path]).unwrap().token;
        let no_auth = recv(&["--token", "t", "--token-file", path, "--no-auth"]).unwrap().token;
        std::fs::remove_file(&file).unwrap();
        assert_eq!(from_file, Some(Token::new("from-file").unwrap()));
        assert_eq!(no_auth, None);
    }

    #[test]
    fn receiver_combinations_that_cannot_work_are_usage_errors() {
        for argv in [&["-o", "-", "--keep-open"][..], &["-o", "-", "--json"]] {
            let m = usage_message(recv(argv));
            assert!(m.contains("--output - writes the file to standard output"), "{argv:?}: {m}");
        }
        assert!(recv(&["-o", "-"]).is_ok());
        let c = recv(&["--keep-open", "--json", "--max-conns", "3", "--max-size", "1K"]).unwrap();
        assert!(c.print.json);
        assert_eq!(c.mode, RecvMode::Session(Sessions::KeepOpen { max_conns: 3 }));
        assert_eq!(c.max_size, Some(1024));
    }

    #[test]
    fn each_mode_holds_its_own_options() {
        assert_eq!(send(&["f", "h:1"]).unwrap().mode, SendMode::Session);
        assert_eq!(send(&["--raw", "f", "h:1"]).unwrap().mode, SendMode::Raw);
        let star = send(&["f", "--to", "a:1", "--to", "b:2"]).unwrap();
        assert_eq!(star.mode, SendMode::Star(vec!["a:1".into(), "b:2".into()]));
        assert_eq!(star.net.link, Link::Connect("a:1".into()));
        let served = send(&["--http", "--keep-open", "f"]).unwrap();
        assert_eq!(served.mode, SendMode::Http(HttpServe { keep_open: true }));
        assert_eq!(served.net.link, Link::Listen(HTTP_LISTEN.into()));
        let once = recv(&["--resume-wait", "2.5"]).unwrap().mode;
        let resume_wait = Some(Duration::from_millis(2500));
        assert_eq!(once, RecvMode::Session(Sessions::Once { resume_wait }));
        assert_eq!(once.sessions_at_once(), 1);
        let at_once = recv(&["--resume-wait", "0"]).unwrap().mode;
        assert_eq!(at_once, RecvMode::Session(Sessions::Once { resume_wait: None }));
        let fetching = recv(&["--connect", "h:1", "--token", "t"]).unwrap().mode;
        assert_eq!(fetching, RecvMode::Session(Sessions::Once { resume_wait: None }));
        let many = recv(&["--keep-open", "--max-conns", "4"]).unwrap().mode;
        assert_eq!(many.sessions_at_once(), 4);
        assert_eq!(recv(&["--raw", "--max-conns", "4"]).unwrap().mode, RecvMode::Raw);
        let uploads = recv(&["--http", "--max-conns", "4"]).unwrap().mode;
        assert_eq!(uploads, RecvMode::Http(HttpAccept { keep_open: false, max_conns: 4 }));
        assert_eq!(uploads.sessions_at_once(), 1);
    }

    #[test]
    fn receiver_options_arrive_as_given() {
        let c = recv(&["--method", "buffered", "--force", "--listen", "127.0.0.1:9"]).unwrap();
        assert_eq!(c.method, Method::Only(DataPath::Buffered));
        assert!(c.policy.force && !c.policy.skip_existing);
        assert_eq!(c.net.link, Link::Listen("127.0.0.1:9".into()));
        let c = recv(&["--method", "splice", "--skip-existing"]).unwrap();
        assert_eq!(c.method, Method::Only(DataPath::Splice));
        assert!(!c.policy.force && c.policy.skip_existing);
        assert_eq!(c.policy.umask, current_umask());
    }

    /// `--retry` and `--connect-timeout` on an end that listens would be ignored: refused.
    #[test]
    fn a_listening_end_refuses_the_connecting_options() {
        for flags in [&["--retry", "2"][..], &["--connect-timeout", "3"]] {
            let m = usage_message(recv(flags));
            assert!(
                m.contains(&format!("{} is for connecting, and this end listens", flags[0])),
                "{m}"
            );
            let listening = [&["--listen", "127.0.0.1:0", "f"][..], flags].concat();
            assert!(usage_message(send(&listening)).contains("is for connecting"), "{flags:?}");
            let connecting = recv(&[&["--connect", "h:1", "--no-auth"][..], flags].concat());
            assert!(connecting.is_ok(), "{flags:?}: {:?}", connecting.err());
            assert!(send(&[&["f", "h:1"][..], flags].concat()).is_ok(), "{flags:?}");
        }
    }

    #[test]
    fn http_refuses_retry_on_either_end() {
        let sent = send(&["--http", "--listen", "127.0.0.1:0", "f", "--retry", "2"]);
        assert!(usage_message(sent).contains("--retry is for connecting"));
        assert!(usage_message(recv(&["--http", "--retry", "2"])).contains("--retry"));
        assert!(send(&["f", "127.0.0.1:1", "--retry", "2"]).is_ok());
    }

    #[test]
    fn what_http_and_raw_refuse_the_other_modes_take() {
        assert!(send(&["--listen", "127.0.0.1:0", "f", "--events"]).is_ok());
        assert!(recv(&["--events"]).is_ok());
        assert!(send(&["f", "127.0.0.1:1", "--encrypt"]).is_ok_and(|c| c.net.encrypt));
        assert!(recv(&["--encrypt"]).is_ok_and(|c| c.net.encrypt));
        assert!(send(&["f", "127.0.0.1:1", "--no-sparse"]).is_ok_and(|c| !c.sparse));
        assert!(recv(&["--keep-open", "--fsync"]).is_ok_and(|c| c.fsync));
    }

    #[test]
    fn http_honours_fsync_and_the_other_receiver_options() {
        let cfg = recv(&["--http", "--fsync", "--force", "--max-size", "1M", "--keep-open"])
            .expect("recv --http --fsync");
        assert!(cfg.fsync && cfg.policy.force);
        assert_eq!(cfg.mode, RecvMode::Http(HttpAccept { keep_open: true, max_conns: 16 }));
        assert_eq!(cfg.max_size, Some(1 << 20));
    }

    /// Refused by clap before a config is built (exit 2 with clap's usage line).
    #[test]
    fn http_and_raw_refuse_what_clap_knows_cannot_combine() {
        for argv in [
            &["recv", "--http", "--skip-existing"][..],
            &["recv", "--http", "--connect", "h:1"],
            &["recv", "--http", "--raw"],
            &["recv", "--http", "--events"],
            &["recv", "--http", "--events-fd", "3"],
            &["recv", "--http", "--encrypt"],
            &["send", "--http", "--no-resume", "f"],
            &["send", "--http", "--name", "n", "-"],
            &["send", "--http", "--raw", "f"],
            &["send", "--http", "f", "--events"],
            &["send", "--http", "f", "--events-fd", "3"],
            &["send", "--http", "f", "--encrypt"],
            &["send", "--http", "f", "--no-sparse"],
            &["recv", "--raw", "--encrypt"],
            &["recv", "--raw", "--events"],
            &["recv", "--raw", "--events-fd", "3"],
            &["recv", "--raw", "--keep-open"],
            &["recv", "--raw", "--fsync"],
            &["send", "--raw", "f", "h:1", "--encrypt"],
            &["send", "--raw", "f", "h:1", "--events"],
            &["send", "--raw", "f", "h:1", "--events-fd", "3"],
        ] {
            let parsed = Cli::try_parse_from(std::iter::once("zcp").chain(argv.iter().copied()));
            let e = parsed.map(|_| ()).expect_err("a conflict");
            assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{argv:?}");
        }
    }

    #[test]
    fn the_umask_is_the_process_umask() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).expect("a Umask line");
        assert_eq!(current_umask(), u32::from_str_radix(line.trim(), 8).unwrap());
    }
}
