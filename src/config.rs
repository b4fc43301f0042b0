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

/// What a session prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// One JSON object on stdout at the end.
    pub json: bool,
    /// A progress bar on stderr while bytes move.
    pub progress: bool,
    /// The human summary on stderr at the end.
    pub summary: bool,
}

impl Output {
    fn from_args(args: &OutputArgs) -> Output {
        Output {
            json: args.json,
            progress: !args.quiet && !args.json && std::io::stderr().is_terminal(),
            summary: !args.quiet,
        }
    }
}

/// The connection options given on the command line.
fn net_config(args: &NetArgs, link: Link) -> anyhow::Result<NetConfig> {
    if args.raw && args.encrypt {
        return Err(usage_error(
            "--raw sends plain bytes for nc and socat: it cannot be combined with --encrypt".into(),
        ));
    }
    Ok(NetConfig {
        link,
        connect_timeout: seconds("--connect-timeout", args.connect_timeout)?
            .unwrap_or(Duration::from_secs(10)),
        retries: args.retry,
        idle_timeout: seconds("--idle-timeout", args.idle_timeout)?,
        raw: args.raw,
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
    /// Resume files where the receiver holds a matching prefix (`--no-resume` sends every
    /// file whole).
    pub resume: bool,
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
    pub no_auth: bool,
    pub net: NetConfig,
    /// What the session prints.
    pub print: Output,
}

impl SendConfig {
    pub fn from_args(args: SendArgs) -> anyhow::Result<SendConfig> {
        let mut paths = args.args;
        let link = match args.listen {
            Some(addr) => {
                check_addr("--listen", &addr)?;
                Link::Listen(addr)
            }
            None if paths.len() >= 2 => {
                let dest = paths.pop().unwrap_or_default().to_string_lossy().into_owned();
                check_dest(&dest, &paths)?;
                Link::Connect(dest)
            }
            None => {
                return Err(usage_error(
                    "give the receiver's HOST:PORT after the paths, or --listen ADDR".into(),
                ));
            }
        };
        let stdin = paths.iter().filter(|p| p.as_os_str() == "-").count();
        if stdin > 1 || (stdin == 1 && args.name.is_none()) {
            return Err(usage_error(
                "standard input (-) can be sent once, with --name NAME".into(),
            ));
        }
        if args.net.raw && paths.len() != 1 {
            return Err(usage_error("--raw sends exactly one file".into()));
        }
        // The listening end makes the token when it has none, as `zcp recv` does (#13).
        let (token, token_generated) = match token(&args.auth)? {
            None if matches!(link, Link::Listen(_)) && !args.auth.no_auth && !args.net.raw => {
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
            resume: !args.no_resume,
            buffer_size: args.buffer_size as usize,
            limit_rate: args.limit_rate.filter(|&r| r > 0),
            token,
            token_generated,
            no_auth: args.auth.no_auth,
            net: net_config(&args.net, link)?,
            print: Output::from_args(&args.output),
            paths,
        })
    }
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
    /// Serve sessions until interrupted, up to `max_conns` at once.
    pub keep_open: bool,
    pub max_conns: u32,
    /// Refuse sessions whose files add up to more.
    pub max_size: Option<u64>,
    /// The token senders must prove; `None` only with `--no-auth`.
    pub token: Option<Token>,
    /// Whether the token was generated here (and must be shown to the user).
    pub token_generated: bool,
    pub net: NetConfig,
    pub print: Output,
}

impl RecvConfig {
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
        let stdout = args.output.as_os_str() == "-";
        if stdout && (args.keep_open || args.output_args.json) {
            return Err(usage_error(
                "--output - writes the file to standard output: no --keep-open, no --json".into(),
            ));
        }
        if args.net.raw && args.keep_open {
            return Err(usage_error(
                "--raw receives one stream: it cannot be combined with --keep-open".into(),
            ));
        }
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
                umask: current_umask(),
            },
            keep_open: args.keep_open,
            max_conns: args.max_conns,
            max_size: args.max_size,
            token,
            token_generated,
            net: net_config(&args.net, link)?,
            print: Output::from_args(&args.output_args),
            output: args.output,
        })
    }
}
