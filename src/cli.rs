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
  7    local file error (not found, permission, disk full), or nothing to send
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
    /// The subcommand to run.
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
  echo 'source <(zcp completions bash)' >> ~/.bashrc               # bash
  zcp completions zsh > \"${fpath[1]}/_zcp\"                        # zsh
  mkdir -p ~/.config/fish/completions && zcp completions fish > ~/.config/fish/completions/zcp.fish
  zcp completions elvish >> ~/.config/elvish/rc.elv                # elvish
  zcp completions powershell >> $PROFILE                           # PowerShell";

const MAN_INSTALL: &str = "\
Install:
  mkdir -p ~/.cargo/share/man/man1 && zcp man > ~/.cargo/share/man/man1/zcp.1  # found by PATH";

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
    ///
    /// One object per session (a `--keep-open` receiver prints one per session), with stable keys:
    /// `role`, `files[]` (each entry's `name`, `kind`, `status`, `bytes`, `resumed_from`,
    /// `hole_bytes`, `path`, `checksum_ok`, `saved_as`, `reason`), the totals, `checksum`,
    /// `encryption`, and each end's measurements under `send` and `recv` (`path`, `syscalls`,
    /// `bytes_per_call`, `checksum_syscalls`, `pipe_bytes`, CPU, peak RSS, context switches,
    /// `fallbacks[]`). Renaming a key is a breaking change, noted in the CHANGELOG.
    #[arg(long)]
    pub json: bool,

    /// No progress bar and no summary line on stderr (errors are still printed)
    #[arg(long, short)]
    pub quiet: bool,

    /// Print events as they happen, one JSON object per line (NDJSON), on stdout
    ///
    /// Every line has `v` (schema version 1), `session`, `t` (seconds since the session started) and
    /// `event`: `session_start`, `file_skip`, `file_refuse`, `file_start`, `file_resume`, `progress`
    /// (every --events-interval while bytes move), `file_end`, `fallback`, `summary` (the report
    /// --json prints) and `error` (with `exit_code`, last). New events and keys may appear within a
    /// version. Not with --json on stdout (the `summary` event holds the report; use --events-fd), not
    /// with --raw or --http (exit 2). A reader that goes away ends the stream, not the transfer.
    #[arg(long)]
    pub events: bool,

    /// Write the events to this open file descriptor instead of stdout (implies --events)
    ///
    /// For example `3>events.ndjson`, so --json can keep stdout.
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
    ///
    /// A listening end without a token makes one (20 base32 characters, 100 bits, in groups of four)
    /// and prints it with the other end's command. Both ends prove it with SPAKE2 and key
    /// confirmation: the token never crosses the wire, and a guess costs a connection. --token-file
    /// wins over --token and ZCP_TOKEN; --no-auth wins over all three.
    #[arg(long, env = "ZCP_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Read the token from the first line of FILE (wins over --token and ZCP_TOKEN)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Turn authentication off on this end: anyone who can connect may write (wins over every
    /// token option)
    ///
    /// Both ends must say it: a --no-auth receiver refuses a sender that merely has no token (exit 8
    /// there), and says on stderr that it runs without authentication.
    #[arg(long)]
    pub no_auth: bool,
}

/// Options of the connection itself, shared by both ends.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// Give up connecting after SECS seconds per attempt [default: 10]
    ///
    /// Refused (exit 2) on an end that listens (--listen, --http).
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<f64>,

    /// Retry a refused or timed-out connection N times, a second apart (for CI jobs where the
    /// other end starts a moment later)
    ///
    /// Refused (exit 2) on an end that listens.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,

    /// Abort when no bytes move for SECS seconds (0: never)
    ///
    /// A transfer with no bytes moving for this long is aborted and its part files kept for a resume;
    /// writes to a peer that stopped reading are bounded the same way. The handshake and the offer
    /// have their own deadline of 10 s from the connection, whatever this says.
    ///
    /// Each answer `zcp send` waits for must also arrive whole within SECS, however its bytes
    /// trickle in: the receiver's plan (given at least 10 s, since the receiver may hash part
    /// files first) and its summary. A receiver that sends a byte now and then cannot keep a
    /// sender waiting longer.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub idle_timeout: f64,

    /// Plain bytes, no protocol: interoperate with `nc`. No checksum, no authentication
    ///
    /// One file, as plain bytes: `zcp recv --raw` takes `nc -N HOST PORT < FILE`, and `zcp send --raw`
    /// feeds `nc -l PORT > FILE`. There is no checksum, no authentication (anyone who reaches the port
    /// may write), no resume and no sparse form. It moves one stream, with nothing around it: not
    /// with --encrypt, --events, --keep-open or --fsync (exit 2).
    #[arg(long, conflicts_with_all = ["encrypt", "events", "events_fd", "keep_open"])]
    pub raw: bool,

    /// Encrypt the connection with TLS 1.3, keyed to the token; both ends must say it (kernel
    /// TLS keeps sendfile and splice where the kernel has it)
    ///
    /// The whole session, the token handshake included, runs inside one TLS 1.3 connection (rustls,
    /// AES-128-GCM preferred). There are no certificates: the token proofs run inside the tunnel and
    /// cover the TLS exporter, so a machine in the middle that terminates TLS towards each end cannot
    /// pass them. A record that does not authenticate ends the session (exit 9 on both ends, nothing
    /// put in place, part files kept). An --encrypt end never talks plaintext: facing a peer without
    /// it, it stops with exit 9 saying which end must change. Where the kernel takes the keys (kTLS)
    /// sendfile and splice stay; elsewhere records are sealed in user space (the report says which,
    /// and why). With --no-auth it stops only passive eavesdroppers.
    #[arg(long)]
    pub encrypt: bool,
}

/// Arguments of `zcp send`.
#[derive(Debug, Args)]
#[command(override_usage = "zcp send [OPTIONS] <PATH>... <HOST:PORT>\n       \
                            zcp send [OPTIONS] --listen <ADDR> <PATH>...")]
pub struct SendArgs {
    /// Files and directories to send (directories recursively; `-` reads standard input), then
    /// the receiver's address HOST:PORT, IP:PORT or `[IPv6]:PORT` (not with --listen or --to)
    ///
    /// A PATH may be a regular file, a directory (recreated under the receiver's output directory with
    /// the same layout, like `cp -r`), a FIFO, a pseudo file such as /proc/cpuinfo, or `-` for standard
    /// input (with --name). Symlinks and special files found inside directories are skipped with a
    /// warning (see --follow-symlinks); a FIFO or device named on the command line is sent as a stream.
    /// Mode bits and mtimes are kept, less the receiver's umask; ownership, setuid/setgid/sticky bits,
    /// ACLs and extended attributes are not. HOST takes names, IPv4 and `[IPv6]`; every resolved
    /// address is tried in order, and the error names each one when all fail.
    #[arg(value_name = "PATH", required = true, num_args = 1..)]
    pub args: Vec<PathBuf>,

    /// Send to this receiver too: repeat for several at once (then every positional is a path)
    ///
    /// `zcp send ./dist --to a:7878 --to b:7878 --to c:7878` runs one session per receiver, at the
    /// same time, each with its own handshake, plan, resume offsets and refusals (receivers may hold
    /// different parts of the tree). Each file is read and hashed once for all of them: the first
    /// session to reach a file starts its xxh3-128 on a thread the others share, and every session's
    /// sendfile reads the same cached pages (files up to 64 KiB, which go in batches through user
    /// space, are read per receiver). One receiver failing or refusing does not stop the others; the
    /// summary gives one line per receiver and a total, --json one object with a `receivers` array
    /// (address, exit code, that session's report or error), and --events tag each event with its
    /// `receiver`. The exit code is the highest of the receivers' codes (0 only when every one
    /// succeeded). Running the same command again completes every receiver: each resumes or skips
    /// as a single send would. With --to the receiver's address is not also given last (exit 2).
    /// Not with --listen, --http, --raw or standard input (exit 2).
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["listen", "http", "raw"])]
    pub to: Vec<String>,

    /// Wait for a receiver to connect here (`zcp recv --connect`) instead of connecting to one;
    /// with --http, where to serve [default: 0.0.0.0:7878]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Serve the paths over HTTP/1.1 to curl, wget or a browser (GET, HEAD, Range), with the
    /// token as `Authorization: Bearer TOKEN`; ends once every file was fetched whole
    ///
    /// Files under named directories are served by their relative paths (`/photos/a.jpg`), with GET
    /// and HEAD: Content-Length always, ETag and Last-Modified, a single byte range as 206 (`curl -C -`
    /// resumes), 416 past the end. `GET /` is an index. Bodies go by sendfile (then splice, then
    /// buffered, with the reason); --method, --limit-rate and --idle-timeout apply. Each request gets
    /// one line on stderr (with --json, one JSON object per request on stdout). It ends, exit 0, once
    /// every file was sent whole at least once (ranges add up; a HEAD does not count). Over plain HTTP
    /// the token crosses the network in clear: use it on trusted networks, with a fresh token each
    /// time (the default). Not with --events (each request is one line on stderr, or with --json
    /// one JSON object on stdout), --encrypt (plain HTTP/1.1, no TLS yet), --no-sparse (a body
    /// carries holes as zeros), --retry, --raw, --name, --no-resume or standard input (exit 2).
    /// Bounds: a request head of at most 16 KiB (431) arriving within 10 s (408), 16 connections at
    /// once (the next gets 503), one request per connection.
    ///
    /// A browser, which cannot send that header, opens the URL printed at start instead:
    /// `http://HOST:PORT/t/TOKEN/`, the token as the first segment of the path (compared as the
    /// header's is; the log shows it as `/t/…`). The index at `/` is HTML with a link per file
    /// for a client whose `Accept` header names `text/html` (browsers), and a plain list of URL
    /// paths, one a line, for others (curl and wget send `*/*`). Files carry a `Content-Type`
    /// from their extension.
    #[arg(
        long,
        conflicts_with_all = ["raw", "name", "no_resume", "no_sparse", "encrypt", "events", "events_fd"]
    )]
    pub http: bool,

    /// With --http: keep serving until Ctrl-C, not only until every file was fetched once
    #[arg(long, requires = "http")]
    pub keep_open: bool,

    /// Name to offer for standard input (`-`)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Send what symlinks inside directories point to (by default they are skipped with a warning)
    #[arg(
        long,
        short = 'L',
        long_help = "Send what symlinks found inside directories point to, under the link's \
                     name (a directory behind a link is walked too). By default they are \
                     skipped with a warning naming each one. A symlink named on the command \
                     line is always followed, as `cp -H` does."
    )]
    pub follow_symlinks: bool,

    /// Leave out what matches GLOB below the named directories (gitignore's rules; repeatable)
    ///
    /// Names are matched as gitignore(5) matches them (the `ignore` crate, ripgrep's matcher),
    /// relative to each named directory: for `zcp send proj`, `proj/target` is matched as `target`.
    /// A pattern without a `/` (other than a trailing one) matches a name at any depth (`*.o`,
    /// `target`); one with a `/` is anchored to the named directory (`/build`, `doc/*.pdf`); a
    /// trailing `/` matches directories only (`target/`); `**` spans directories; an unclosed `[`
    /// is an error (exit 2). An excluded directory is not walked. The patterns apply in this
    /// order, and a later one wins: the lines of each --exclude-from file, then every --exclude,
    /// then every --include. So --include re-includes what an exclude matched (`--exclude '*.log'
    /// --include keep.log`), except below an excluded directory, which is never walked (as in git).
    /// The paths named on the command line are always sent. The sender's summary says how many
    /// entries were left out ("12 entries excluded by filters"; `excluded` in --json).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Send what matches GLOB although an exclude matched it (repeatable; see --exclude)
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Read exclude patterns from FILE, one a line, in .gitignore syntax (repeatable)
    ///
    /// Blank lines and lines starting with `#` are ignored, a line starting with `!` re-includes,
    /// and `\#` or `\!` start a pattern with that character. These lines come before every
    /// --exclude and --include (see --exclude for the rules). A FILE that cannot be read is an error
    /// (exit 2).
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,

    /// Send every file whole, even where the receiver holds a matching partial copy
    ///
    /// An interrupted transfer leaves `.NAME.zcp-part` files at the receiver. Sending the same paths
    /// again resumes each where it stopped: the receiver offers the part's length and the xxh3-128 of
    /// that prefix, and the sender resumes only when its own prefix hashes the same (else it sends the
    /// file whole and says so).
    #[arg(long)]
    pub no_resume: bool,

    /// Send holes of sparse files as zeros, as if the file were dense (it lands fully allocated)
    ///
    /// By default a file larger than 64 KiB with holes of 64 KiB or more (found with SEEK_DATA and
    /// SEEK_HOLE) crosses as its data ranges only, each by the same zero-copy path as any file, and
    /// lands with its holes; the checksum still covers the whole logical file, holes hashed as zeros
    /// without reading them. A receiver older than the sparse form is sent the file whole.
    #[arg(long)]
    pub no_sparse: bool,

    /// Which data path moves the bytes
    ///
    /// `auto` tries sendfile, then splice (when the kernel answers EINVAL, ENOSYS or EOPNOTSUPP before
    /// the first byte moved), then the buffered loop, and the report says which path it took and why.
    /// A source of unknown length (a pipe, a procfs file) cannot go by sendfile, so `auto` starts at
    /// splice for it. A named method that cannot serve this input is an error (exit 2), never a silent
    /// fallback. Files up to 64 KiB go in batches (many per read and write) under `auto` and
    /// `buffered`: for them the calls, not the bytes, are the cost.
    #[arg(long, value_enum, default_value_t = SendMethod::Auto)]
    pub method: SendMethod,

    /// Buffer of the buffered path, e.g. 32K, 1M (at most 16M)
    #[arg(long, value_name = "SIZE", default_value = "32K", value_parser = parse_buffer_size)]
    pub buffer_size: u64,

    /// Cap the sending rate, in bytes per second (e.g. 100M); stays zero-copy
    ///
    /// Each data call carries at most a tenth of a second's worth and the sender sleeps between calls,
    /// so the average holds the limit while the path stays sendfile or splice.
    #[arg(long, value_name = "RATE", value_parser = parse_bytes)]
    pub limit_rate: Option<u64>,

    #[command(flatten)]
    /// Who may write: the token options.
    pub auth: AuthArgs,

    #[command(flatten)]
    /// Options of the connection.
    pub net: NetArgs,

    #[command(flatten)]
    /// What is printed.
    pub output: OutputArgs,
}

/// Arguments of `zcp recv`.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Address to listen on; port 0 picks a free port. The first line on stderr is always
    /// `listening on IP:PORT`, printed before the first connection is accepted
    ///
    /// `[::]:7878` listens on IPv6 (dual-stack where the OS allows). Without --keep-open the receiver
    /// serves one sender and exits with that session's code: connections that fail the token do not
    /// count, and once a sender has proved it the receiver stops listening. Ctrl-C or SIGTERM stops
    /// it: running senders are told, part files are kept for a resume, and it exits 130 (SIGINT) or
    /// 143 (SIGTERM).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:7878")]
    pub listen: String,

    /// Fetch from a sender that waits with `zcp send --listen` instead of listening
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["listen", "keep_open"])]
    pub connect: Option<String>,

    /// Accept uploads over HTTP/1.1 (`curl -T FILE http://HOST:PORT/`, PUT) with the token as
    /// `Authorization: Bearer TOKEN`; ends after one upload unless --keep-open
    ///
    /// `curl -T FILE http://HOST:PORT/` puts the file's name in the URL; `/sub/name` lands in
    /// `DIR/sub/name`. The body goes socket->pipe->file by splice into a part file, renamed into place
    /// when every byte arrived (201). The naming rule, --max-size (413), the free space (507) and an
    /// existing target (409 without --force) are checked before a byte is read; `Expect:
    /// 100-continue` gets its go-ahead only then. A chunked body (`curl -T -`) is spliced chunk by
    /// chunk. HTTP carries no checksum and no resume: a broken-off upload leaves nothing. With
    /// --fsync an upload is made durable before the 201. Not with --events (each request is one
    /// line on stderr, or with --json one JSON object on stdout), --encrypt (plain HTTP/1.1, no TLS
    /// yet), --retry, --connect, --raw, --skip-existing or --output - (exit 2).
    #[arg(
        long,
        conflicts_with_all = ["connect", "raw", "skip_existing", "encrypt", "events", "events_fd"]
    )]
    pub http: bool,

    /// Where to write: a directory (entries keep their relative paths; a missing one is created
    /// when the sender offers a directory or several entries, or PATH ends in `/`), the path of
    /// the one file to write, or `-` for standard output
    ///
    /// A PATH that does not exist becomes a directory (one level: its parent must exist) when it ends
    /// in `/` or the sender offers a directory or more than one entry; one file offered to a missing
    /// PATH is written as PATH. With `-` the one incoming file goes to standard output, spliced when
    /// stdout is a pipe, its checksum taken from a tee(2) copy; a mismatch there is reported after the
    /// fact (exit 6), since bytes written to stdout cannot be taken back. Every file is written to
    /// `.NAME.zcp-part` beside its target and renamed into place only after its checksum matched;
    /// small files are written unnamed (O_TMPFILE) and linked in.
    #[arg(long, short, value_name = "PATH", default_value = ".")]
    pub output: PathBuf,

    /// Which data path writes the bytes
    ///
    /// `auto` splices after a probe that the file takes splice writes, so no byte is taken off the
    /// socket by a path that then cannot write it, and falls back to the buffered loop with the
    /// reason. A named method that cannot serve is an error (exit 2).
    #[arg(long, value_enum, default_value_t = RecvMethod::Auto)]
    pub method: RecvMethod,

    /// Buffer of the buffered path, e.g. 32K, 1M (at most 16M)
    #[arg(long, value_name = "SIZE", default_value = "32K", value_parser = parse_buffer_size)]
    pub buffer_size: u64,

    /// Replace files that already exist (without it, an existing file is refused)
    ///
    /// Without it an existing target is refused (exit 5 at the end, after the other files landed),
    /// and a file that appears under the name during the transfer is never replaced.
    #[arg(long)]
    pub force: bool,

    /// Skip files whose size and mtime already match
    ///
    /// Other files that exist are still refused. On FAT, exFAT and FUSE file systems an mtime cut to
    /// the file system's grain (2 s, 1 s, 10 ms) counts as the same; elsewhere it must match to the
    /// nanosecond.
    #[arg(long)]
    pub skip_existing: bool,

    /// Skip files whose size and content (xxh3-128) already match, whatever their mtime (as
    /// rsync --checksum does)
    ///
    /// While the plan is made, each existing regular file of the offered size is read whole and its
    /// xxh3-128 goes to the sender as a resume from its last byte: a sender whose own file hashes the
    /// same sends nothing, and the file is reported skipped and left untouched (not written, its
    /// mtime and inode kept). A file whose content differs is sent whole: it replaces the existing
    /// one with --force, else it is refused (exit 5) and its bytes are dropped (the protocol has no
    /// answer that says "refuse unless it matches", so they cross once). A sender with --no-resume
    /// sends every file whole; a file whose bytes match is still skipped. An existing file of
    /// another size is treated as without this option. The sender waits for the plan, and so for
    /// these reads, up to its --idle-timeout (30 s by default): for many gigabytes of same-size
    /// files give the sender a longer one. Not with --skip-existing or --http.
    #[arg(long, conflicts_with_all = ["skip_existing", "http"])]
    pub checksum: bool,

    /// Remove what the sender no longer has: entries in the offered directories that the offer
    /// does not hold, once every offered entry landed
    ///
    /// Like rsync --delete, it works inside the directories the sender offers (`zcp send ./photos`
    /// mirrors `DIR/photos`), never elsewhere in the output directory. It starts only after every
    /// file of the session arrived and checked, or was already there: a session with a refused
    /// entry, a checksum mismatch or a failure removes nothing. Each removal is listed in the
    /// summary, in --json (`removed`) and as a `file_remove` event. A symlink is removed as itself,
    /// never followed; a directory where another file system is mounted is left with a warning;
    /// the part file of an offered file (`.NAME.zcp-part`) is kept for a resume. Every removal is
    /// made by descriptor from the output directory without following links, so none can reach
    /// outside it. Sessions at once (--keep-open) into the same directories may remove each
    /// other's new files. What the sender's filters (--exclude) leave out is not in the offer, so it
    /// is removed here too (as rsync --delete-excluded does). Only with a directory --output (exit 2
    /// otherwise).
    #[arg(long, conflicts_with_all = ["http", "raw"])]
    pub mirror: bool,

    /// Make every file durable before its name appears: one sync for the whole session, then
    /// the renames, then the directories that gained names are synced
    ///
    /// Files are written and checked, held open without their names, then one syncfs(2) per file
    /// system, then every name is given, then each directory that gained a name is fsync'd. The
    /// sender's verdicts come after that, so `xxh3 ok` means the files survive a power loss. If a
    /// directory sync fails both ends exit 7 saying the files are in place but not known to be
    /// durable. Not with --output - or --raw (exit 2).
    #[arg(long, conflicts_with = "raw")]
    pub fsync: bool,

    /// Keep serving after the first session, several at once
    ///
    /// Up to --max-conns sessions at once; only authenticated sessions count. Ctrl-C or SIGTERM stops
    /// accepting, tells running senders, keeps their part files and prints a summary.
    #[arg(long)]
    pub keep_open: bool,

    /// Without --keep-open: how long to wait for a sender cut off mid-transfer to come back and
    /// resume (0: exit at once)
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 600.0,
        conflicts_with_all = ["keep_open", "connect", "http"],
        long_help = "Without --keep-open: when the sender's session breaks off after data began \
                     to flow (the sender was killed, interrupted or lost its connection), keep \
                     listening this many seconds, with the same token, for a sender to run the \
                     same command again: the files that arrived whole are skipped and the one \
                     in progress resumes from its part file. Said on stderr when it starts; \
                     with no sender by then the receiver exits with the broken session's code \
                     (3). Never with --output - (what went out cannot be taken back). 0: exit \
                     at once."
    )]
    pub resume_wait: f64,

    /// With --keep-open: sessions served at once; the next sender is told "busy" (with --http:
    /// requests whose head arrived, at once; the next gets 503)
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_conns: u32,

    /// Refuse a session whose files add up to more than SIZE (e.g. 10G)
    ///
    /// Checked against the offer before anything is written (the session is refused whole,
    /// exit 5), and again as bytes arrive, for streams of unknown length. Every output counts:
    /// standard output (--output -) too, and a sparse file's holes count as the zeros they
    /// become; a session that does not fit the
    /// free space (statvfs) is refused the same way, naming both sizes.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub max_size: Option<u64>,

    #[command(flatten)]
    /// Who may write: the token options.
    pub auth: AuthArgs,

    #[command(flatten)]
    /// Options of the connection.
    pub net: NetArgs,

    #[command(flatten)]
    /// What is printed.
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

    /// Send one file to N receivers three ways: N `zcp send` one after another, N at once, and
    /// one star (`--to` N times) [--size default: 256M]
    ///
    /// Each round runs the three ways in turn (interleaved), each to N fresh `zcp recv` on
    /// loopback into --dir; the table gives the median wall time (from the first sender's start
    /// to the last receiver's exit), the rate of all copies together, and each way's sender CPU
    /// (every sender process together) and peak RSS. Loopback shares one machine's CPUs among
    /// every end: it shows the sender's cost, not what one link per host would give.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=64),
        conflicts_with_all = ["methods", "against", "compare", "fsync", "sparse", "files", "encrypt", "export_markdown"]
    )]
    pub star: Option<u32>,

    /// Also write the results as a Markdown table to FILE
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,

    /// Also draw the results as one SVG picture to FILE (for slides, READMEs, CI artifacts)
    ///
    /// One self-contained picture, one panel per measure, one row per pair, grouped by --dir:
    /// throughput as bars (the median) with a whisker from the slowest to the fastest round; CPU
    /// seconds per GiB, split into the sender's share (solid) and the receiver's (hatched); and
    /// the data-path syscalls of each end, on a log scale. The ceiling (--raw at both ends) and
    /// the other tools of --compare are hatched and drawn below a line, apart from zcp's pairs.
    /// A caption names the machine (CPU, cores, kernel), the file, the rounds and the command
    /// line. Every number is printed beside its bar, and the text is text: selectable and
    /// searchable, in the viewer's own sans-serif font; no scripts, no external files. The file
    /// is written under a temporary name and renamed, so FILE is never half-written.
    #[arg(long, value_name = "FILE")]
    pub export_svg: Option<PathBuf>,

    /// Measure nothing: read a report saved from `zcp bench --json` and print, export or draw it
    ///
    /// REPORT is what `zcp bench --json` printed (one directory's object, or the object holding
    /// each --dir's). The results are printed again as the table, and with --export-svg,
    /// --export-markdown or --json written as a fresh run's would be, with the machine and the
    /// command line of the run that measured them. Exits 0 once they are written, whether or not
    /// a pair failed in that run. A file that is not such a report is a usage error (exit 2).
    /// Example, in CI: `zcp bench --json > bench.json`, then `zcp bench --from-json bench.json
    /// --export-svg bench.svg`.
    #[arg(
        long,
        value_name = "REPORT",
        conflicts_with_all = [
            "size", "files", "rounds", "dir", "file", "methods", "against", "compare",
            "buffer_size", "fsync", "sparse", "encrypt",
        ]
    )]
    pub from_json: Option<PathBuf>,

    #[command(flatten)]
    /// What is printed.
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
