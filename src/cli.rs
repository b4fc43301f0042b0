//! The command line, as clap derive types only. `config` turns these into validated options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::units::{parse_buffer_size, parse_bytes};

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    unexpected failure
  2    usage error, or a --method that cannot serve this input
  3    connection failed, broke or timed out
  4    peer is not zcp, or sent a malformed or truncated stream
  5    receiver refused the file (exists, unsafe name, not writable)
  6    checksum mismatch: nothing was put in place
  7    local file error (not found, permission, disk full)
  8    authentication failed: wrong or missing token
  9    --encrypt on one end only, or the encrypted stream was damaged
  130  interrupted (Ctrl-C); 143 for SIGTERM";

/// `zcp --version`: the version, the commit it was built from, static or dynamic, and the
/// target (`src/build.rs` works them out). `-V` and the man page say the version alone.
const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("ZCP_BUILD"), ")");

/// Move files between hosts over TCP with sendfile(2) and splice(2), and show which syscall path
/// did the work.
#[derive(Debug, Parser)]
#[command(name = "zcp", version, long_version = LONG_VERSION, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send files and directories to a `zcp recv` (or wait for one with --listen)
    #[command(after_help = SEND_EXAMPLES)]
    Send(SendArgs),
    /// Receive files: listen for a sender (or fetch with --connect) and write what it sends
    #[command(after_help = RECV_EXAMPLES)]
    Recv(RecvArgs),
    /// Measure zero-copy against buffered (and netcat, socat, iperf3) on this machine
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Tell which data path zcp will take for these paths, and why
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = COMPLETION_INSTALL)]
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout
    #[command(after_help = MAN_INSTALL)]
    Man,
}

// Examples are shell lines, a `#` comment apart from what they do: tests/docs.rs runs them
// (send, recv) or parses them (the others), so they cannot drift from the binary.
const COMPLETION_INSTALL: &str = "\
Install:
  zcp completions bash > /etc/bash_completion.d/zcp                # bash
  zcp completions zsh > \"${fpath[1]}/_zcp\"                        # zsh
  zcp completions fish > ~/.config/fish/completions/zcp.fish      # fish
  zcp completions elvish >> ~/.config/elvish/rc.elv                # elvish
  zcp completions powershell >> $PROFILE                           # PowerShell";

const MAN_INSTALL: &str = "\
Install:
  zcp man > /usr/local/share/man/man1/zcp.1 && man zcp";

const BENCH_EXAMPLES: &str = "\
Examples:
  zcp bench                                     # 1 GiB temp file, loopback, 5 rounds
  zcp bench --size 4G --rounds 9 --dir /dev/shm
  zcp bench --compare --rounds 9 --dir /dev/shm --dir /tmp  # tmpfs and a disk, interleaved
  zcp bench --file ./video.mkv --methods sendfile:splice,buffered:buffered
  zcp bench --compare --export-markdown results.md  # also netcat, socat and iperf3
  zcp bench --files 10000 --dir /dev/shm --compare  # 10,000 files of 4 KiB, also tar | nc";

const SEND_EXAMPLES: &str = "\
Examples:
  export ZCP_TOKEN=k3fq-x2pa-9wtm-c8de-4hbn     # the token `zcp recv` printed
  zcp send ./big.iso 10.0.0.2:7878              # zero-copy with sendfile(2)
  zcp send ./photos ./big.iso 10.0.0.2:7878     # directories too, all in one session
  zcp send ./big.iso 10.0.0.2:7878 --method buffered --buffer-size 1M
  mkfifo f; (seq 100000 > f &); zcp send f 10.0.0.2:7878  # a pipe: spliced, length unknown
  zcp send ./big.iso [::1]:7878 --json          # the report as JSON on stdout";

const RECV_EXAMPLES: &str = "\
Examples:
  zcp recv                                      # on 0.0.0.0:7878, into .; prints a token
  zcp recv --listen 127.0.0.1:0 --output ./incoming/  # a free port; makes ./incoming/
  zcp recv --output ./copy.iso --force          # the one file, to this path, replacing it";

/// The data paths a sender can be asked to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SendMethod {
    /// sendfile, falling back to splice, then buffered, saying why
    Auto,
    /// sendfile(2) only: page cache to socket
    Sendfile,
    /// splice(2) through a pipe only
    Splice,
    /// an explicit read/write loop through a buffer of --buffer-size
    Buffered,
}

/// The data paths a receiver can be asked to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecvMethod {
    /// splice, falling back to buffered, saying why
    Auto,
    /// splice(2) socket to pipe to file only
    Splice,
    /// an explicit read/write loop through a buffer of --buffer-size
    Buffered,
}

/// Options shared by both ends for what is printed.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print the report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,

    /// No progress bar and no summary line on stderr (errors are still printed)
    #[arg(long, short)]
    pub quiet: bool,

    /// Print events as they happen, one JSON object per line, on stdout (schema in the README)
    #[arg(long)]
    pub events: bool,

    /// Write the events to this open file descriptor instead of stdout (implies --events)
    #[arg(long, value_name = "FD")]
    pub events_fd: Option<i32>,

    /// Seconds between progress events while bytes move
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub events_interval: f64,
}

/// Who may write: the shared token, from one of three places, or none at all.
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// The session token (prefer ZCP_TOKEN or --token-file: command lines show up in `ps`)
    #[arg(long, env = "ZCP_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Read the token from the first line of FILE (wins over --token and ZCP_TOKEN)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Turn authentication off on this end: anyone who can connect may write (wins over every
    /// token option)
    #[arg(long)]
    pub no_auth: bool,
}

/// Options of the connection itself, shared by both ends.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// Give up connecting after SECS seconds per attempt [default: 10]
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<f64>,

    /// Retry a refused or timed-out connection N times, a second apart (for CI jobs where the
    /// other end starts a moment later)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,

    /// Abort when no bytes move for SECS seconds (0: never)
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub idle_timeout: f64,

    /// Plain bytes, no protocol: interoperate with `nc`. No checksum, no authentication
    #[arg(long)]
    pub raw: bool,

    /// Encrypt the connection with TLS 1.3, keyed to the token; both ends must say it (kernel
    /// TLS keeps sendfile and splice where the kernel has it)
    #[arg(long)]
    pub encrypt: bool,
}

/// Arguments of `zcp send`.
#[derive(Debug, Args)]
#[command(override_usage = "zcp send [OPTIONS] <PATH>... <HOST:PORT>\n       \
                            zcp send [OPTIONS] --listen <ADDR> <PATH>...")]
pub struct SendArgs {
    /// Files and directories to send (directories recursively; `-` reads standard input), then
    /// the receiver's address HOST:PORT, IP:PORT or `[IPv6]:PORT` (not with --listen)
    #[arg(value_name = "PATH", required = true, num_args = 1..)]
    pub args: Vec<PathBuf>,

    /// Wait for a receiver to connect here (`zcp recv --connect`) instead of connecting to one;
    /// with --http, where to serve [default: 0.0.0.0:7878]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Serve the paths over HTTP/1.1 to curl, wget or a browser (GET, HEAD, Range), with the
    /// token as `Authorization: Bearer TOKEN`; ends once every file was fetched whole
    #[arg(long, conflicts_with_all = ["raw", "name", "no_resume"])]
    pub http: bool,

    /// With --http: keep serving until Ctrl-C, not only until every file was fetched once
    #[arg(long, requires = "http")]
    pub keep_open: bool,

    /// Name to offer for standard input (`-`)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Send what symlinks point to (by default they are skipped with a warning)
    #[arg(long, short = 'L')]
    pub follow_symlinks: bool,

    /// Send every file whole, even where the receiver holds a matching partial copy
    #[arg(long)]
    pub no_resume: bool,

    /// Send holes of sparse files as zeros, as if the file were dense (it lands fully allocated)
    #[arg(long)]
    pub no_sparse: bool,

    /// Which data path moves the bytes
    #[arg(long, value_enum, default_value_t = SendMethod::Auto)]
    pub method: SendMethod,

    /// Buffer of the buffered path, e.g. 32K, 1M (at most 16M)
    #[arg(long, value_name = "SIZE", default_value = "32K", value_parser = parse_buffer_size)]
    pub buffer_size: u64,

    /// Cap the sending rate, in bytes per second (e.g. 100M); stays zero-copy
    #[arg(long, value_name = "RATE", value_parser = parse_bytes)]
    pub limit_rate: Option<u64>,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub net: NetArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `zcp recv`.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Address to listen on; port 0 picks a free port. The first line on stderr is always
    /// `listening on IP:PORT`, printed before the first connection is accepted
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:7878")]
    pub listen: String,

    /// Fetch from a sender that waits with `zcp send --listen` instead of listening
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["listen", "keep_open"])]
    pub connect: Option<String>,

    /// Accept uploads over HTTP/1.1 (`curl -T FILE http://HOST:PORT/`, PUT) with the token as
    /// `Authorization: Bearer TOKEN`; ends after one upload unless --keep-open
    #[arg(long, conflicts_with_all = ["connect", "raw", "skip_existing"])]
    pub http: bool,

    /// Where to write: a directory (entries keep their relative paths; a missing one is created
    /// when the sender offers a directory or several entries, or PATH ends in `/`), the path of
    /// the one file to write, or `-` for standard output
    #[arg(long, short, value_name = "PATH", default_value = ".")]
    pub output: PathBuf,

    /// Which data path writes the bytes
    #[arg(long, value_enum, default_value_t = RecvMethod::Auto)]
    pub method: RecvMethod,

    /// Buffer of the buffered path, e.g. 32K, 1M (at most 16M)
    #[arg(long, value_name = "SIZE", default_value = "32K", value_parser = parse_buffer_size)]
    pub buffer_size: u64,

    /// Replace files that already exist (without it, an existing file is refused)
    #[arg(long)]
    pub force: bool,

    /// Skip files whose size and mtime already match
    #[arg(long)]
    pub skip_existing: bool,

    /// Make every file durable before its name appears: one sync for the whole session, then
    /// the renames, then the directories that gained names are synced
    #[arg(long)]
    pub fsync: bool,

    /// Keep serving after the first session, several at once
    #[arg(long)]
    pub keep_open: bool,

    /// With --keep-open: sessions served at once; the next sender is told "busy" (with --http:
    /// connections at once; the next gets 503)
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_conns: u32,

    /// Refuse a session whose files add up to more than SIZE (e.g. 10G)
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub max_size: Option<u64>,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub net: NetArgs,

    #[command(flatten)]
    pub output_args: OutputArgs,
}

/// Arguments of `zcp bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Size of the temporary test file of random bytes, e.g. 256M, 1G, 4G [default: 1G]; with
    /// --files, the size of each file [default: 4K]
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub size: Option<u64>,

    /// Send a tree of N files of --size each (500 to a directory) instead of one file; with
    /// --compare, against tar | nc
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub files: Option<u32>,

    /// Rounds; each round runs every pair once, interleaved (A B C A B C …)
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,

    /// Directory for the test file and the received copies (default: the system temp dir);
    /// repeat it to measure on several file systems in one run, rounds interleaved
    #[arg(long, value_name = "DIR")]
    pub dir: Vec<PathBuf>,

    /// Send this existing file instead of a temporary one (it is never modified)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["size", "files"])]
    pub file: Option<PathBuf>,

    /// Sender:receiver method pairs to compare, comma-separated [default:
    /// sendfile:splice,splice:splice,buffered:buffered; with --files:
    /// auto:auto,sendfile:splice,buffered:buffered]
    #[arg(long, value_name = "SEND:RECV,...")]
    pub methods: Option<String>,

    /// Also run the same pairs with another zcp binary (e.g. an older build), as rows named
    /// `PAIR @ LABEL`, interleaved with the others
    #[arg(long, value_name = "LABEL=PATH")]
    pub against: Option<String>,

    /// Also run netcat, socat -b 131072, iperf3 (memory to memory) and curl when installed, and
    /// zcp with --raw at both ends (no checksum: its paths' ceiling); with --files, tar | nc
    #[arg(long)]
    pub compare: bool,

    /// Buffer of the buffered path, e.g. 32K, 1M
    #[arg(long, value_name = "SIZE", default_value = "32K", value_parser = parse_buffer_size)]
    pub buffer_size: u64,

    /// Compare `zcp recv` with `zcp recv --fsync` (auto:auto) on the test file, or with --files
    /// on a tree
    #[arg(long, conflicts_with_all = ["methods", "against", "compare", "sparse"])]
    pub fsync: bool,

    /// Send a sparse file (--size of data in 8 extents over 64 times that [default: 64M]), a
    /// dense file of --size, and the sparse one with --no-sparse; report allocated blocks
    #[arg(long, conflicts_with_all = ["methods", "against", "compare", "files", "file"])]
    pub sparse: bool,

    /// Also run every pair with --encrypt (rows `PAIR --encrypt`); with --compare, also socat
    /// OPENSSL: with the same TLS 1.3 suite
    #[arg(long, conflicts_with_all = ["fsync", "sparse"])]
    pub encrypt: bool,

    /// Also write the results as a Markdown table to FILE
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `zcp doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Files or directories to check: sendfile from their file system, splice into it
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Print the findings as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::EXIT_CODES;
    use crate::error::ExitCode;

    /// The help text's table is written out for clap; it must say what `ExitCode::TABLE` says.
    #[test]
    fn the_exit_codes_in_help_are_the_exit_code_table() {
        for (code, meaning) in ExitCode::TABLE {
            let line = match code {
                ExitCode::Interrupted => format!("{:<5}{meaning}; 143 for SIGTERM", code.code()),
                ExitCode::Terminated => continue,
                _ => format!("{:<5}{meaning}", code.code()),
            };
            assert!(EXIT_CODES.lines().any(|l| l.trim() == line), "help lacks {line:?}");
        }
        let listed = EXIT_CODES.lines().filter(|l| l.starts_with("  ")).count();
        assert_eq!(listed, ExitCode::TABLE.len() - 1, "one line per code (130 and 143 share one)");
    }
}
