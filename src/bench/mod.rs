//! `zcp bench`: runs this binary's own `zcp recv` and `zcp send` as two processes over loopback
//! for each sender:receiver method pair (and, with `--compare`, nc, socat and iperf3), in
//! interleaved rounds, and reports throughput, CPU, syscalls and memory per pair. This module
//! owns the options and the order of runs; `run` times one run, `table` prints, `json` writes
//! and reads back the report, `chart` draws it, `export` writes the files.

pub mod chart;
mod export;
mod http;
mod json;
mod peers;
mod process;
mod run;
mod star;
mod stats;
mod table;
mod workspace;

use std::fmt;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;

use crate::cli::BenchArgs;
use crate::error::{ExitCode, SessionError};
use crate::link::auth::Token;
use crate::progress;
use crate::sys::machine::Machine;
use crate::sys::signals;
use crate::terminal;
use peers::Peer;
use run::{RunContext, Variant};
use stats::{Kind, Outcome, Results, Row, Sample};
use workspace::Workspace;

const SEND_METHODS: [&str; 4] = ["auto", "sendfile", "splice", "buffered"];
const RECV_METHODS: [&str; 3] = ["auto", "splice", "buffered"];
/// The pairs compared when none are named: for one file, and for a tree (where `auto` batches
/// small files and `sendfile:splice` moves each by itself).
const FILE_PAIRS: &str = "sendfile:splice,splice:splice,buffered:buffered";
const TREE_PAIRS: &str = "auto:auto,sendfile:splice,buffered:buffered";
/// Default sizes of the test file, and of each file of a tree.
const FILE_SIZE: u64 = 1 << 30;
const TREE_FILE_SIZE: u64 = 4 << 10;
/// Default data of `--sparse`: of the dense file, and of the sparse one's extents together.
const SPARSE_DATA: u64 = 64 << 20;
/// The pair `--fsync` and `--sparse` run, with and without the flag they measure.
const AUTO: Pair = Pair { send: "auto", recv: "auto", encrypt: false };
/// The row of `auto:auto` with `--raw` at both ends: no protocol, no checksum.
const CEILING: &str = "auto:auto --raw (no checksum: ceiling)";

/// What the rows compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Method pairs (and with `--compare`, other tools).
    Methods,
    /// `zcp recv` against `zcp recv --fsync`.
    Fsync,
    /// A sparse file, a dense one of its data, and the sparse one with `--no-sparse`.
    Sparse,
    /// One file to this many receivers: one after another, at once, and as a star.
    Star(u32),
}

/// Validated options of `zcp bench`.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Size of the temporary test file, or of each file of the tree, in bytes (unused with
    /// `file`).
    pub size: u64,
    /// Send a tree of this many files instead of one.
    pub files: Option<u32>,
    /// Rounds; each runs every contender once, in the same order.
    pub rounds: u32,
    /// Where the test file and the received copies go: one directory per file system measured,
    /// their rounds interleaved.
    pub dirs: Vec<PathBuf>,
    /// The user's file to send instead of a test file, absolute. Only ever read.
    pub file: Option<PathBuf>,
    /// zcp method pairs, in the order they run.
    pub pairs: Vec<Pair>,
    /// Also run nc, socat and iperf3.
    pub compare: bool,
    /// Also run every pair with `--encrypt` (and, with `compare`, socat OPENSSL).
    pub encrypt: bool,
    /// Another zcp binary to run the same pairs with, and the label its rows carry.
    pub against: Option<(String, PathBuf)>,
    /// Buffer of the buffered path, in bytes.
    pub buffer_size: u64,
    /// Where to write the Markdown table, if anywhere.
    pub export_markdown: Option<PathBuf>,
    /// Where to write the SVG chart, if anywhere.
    pub export_svg: Option<PathBuf>,
    /// Measure now, or read a saved report.
    pub input: Input,
    /// One JSON object on stdout.
    pub json: bool,
    /// A progress bar on stderr.
    pub progress: bool,
    /// The results table on stderr.
    pub table: bool,
    /// What the rows compare.
    pub scenario: Scenario,
}

/// Where the results come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Runs measured now.
    Measure,
    /// A report saved from `zcp bench --json` (`--from-json`), read back.
    Saved(PathBuf),
}

/// A sender:receiver pair of `--method` tokens, with or without `--encrypt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The `--method` of `zcp send`.
    pub send: &'static str,
    /// The `--method` of `zcp recv`.
    pub recv: &'static str,
    /// Whether both ends run with `--encrypt`.
    pub encrypt: bool,
}

impl Pair {
    /// Parses `SEND:RECV`, e.g. `sendfile:splice`.
    pub fn parse(text: &str) -> anyhow::Result<Pair> {
        let Some((send, recv)) = text.trim().split_once(':') else {
            return Err(usage(format!(
                "--methods: {text:?} is not a SEND:RECV pair (e.g. sendfile:splice)"
            )));
        };
        let pick = |token: &str, known: &[&'static str], side: &str| {
            known.iter().copied().find(|k| *k == token).ok_or_else(|| {
                let known = known.join(", ");
                usage(format!("--methods: unknown {side} method {token:?} in {text:?} ({known})"))
            })
        };
        Ok(Pair {
            send: pick(send, &SEND_METHODS, "send")?,
            recv: pick(recv, &RECV_METHODS, "recv")?,
            encrypt: false,
        })
    }

    /// The row name: `SEND:RECV`, with ` --encrypt` when encrypting.
    pub fn name(&self) -> String {
        let tls = if self.encrypt { " --encrypt" } else { "" };
        format!("{}:{}{tls}", self.send, self.recv)
    }
}

impl BenchConfig {
    /// Validates `zcp bench`'s arguments into the runs to make.
    pub fn from_args(args: BenchArgs) -> anyhow::Result<BenchConfig> {
        let scenario = match (args.fsync, args.sparse, args.star) {
            (true, _, _) => Scenario::Fsync,
            (_, true, _) => Scenario::Sparse,
            (_, _, Some(n)) => Scenario::Star(n),
            _ => Scenario::Methods,
        };
        let size = args.size.unwrap_or(match (scenario, args.files) {
            (Scenario::Sparse, _) => SPARSE_DATA,
            (Scenario::Star(_), _) => star::FILE_SIZE,
            (_, Some(_)) => TREE_FILE_SIZE,
            (_, None) => FILE_SIZE,
        });
        if size == 0 {
            return Err(usage("--size must be at least 1 byte".into()));
        }
        let methods = args.methods.as_deref().unwrap_or(if args.files.is_some() {
            TREE_PAIRS
        } else {
            FILE_PAIRS
        });
        let mut pairs = match scenario {
            Scenario::Methods => {
                methods.split(',').map(Pair::parse).collect::<anyhow::Result<Vec<_>>>()?
            }
            Scenario::Fsync | Scenario::Sparse | Scenario::Star(_) => vec![AUTO],
        };
        if args.encrypt {
            let encrypted: Vec<Pair> = pairs.iter().map(|p| Pair { encrypt: true, ..*p }).collect();
            pairs.extend(encrypted);
        }
        let dirs = if args.dir.is_empty() { vec![std::env::temp_dir()] } else { args.dir };
        let dirs = dirs.iter().map(|d| absolute_dir(d)).collect::<anyhow::Result<Vec<_>>>()?;
        let file = match args.file {
            Some(path) => Some(
                std::fs::canonicalize(&path)
                    .with_context(|| format!("--file {}", path.display()))?,
            ),
            None => None,
        };
        let quiet = args.output.quiet;
        Ok(BenchConfig {
            size,
            files: args.files,
            rounds: args.rounds,
            dirs,
            file,
            pairs,
            compare: args.compare,
            encrypt: args.encrypt,
            against: args.against.as_deref().map(parse_against).transpose()?,
            buffer_size: args.buffer_size,
            export_markdown: args.export_markdown,
            export_svg: args.export_svg,
            input: args.from_json.map_or(Input::Measure, Input::Saved),
            json: args.output.json,
            progress: !quiet && !args.output.json && io::stderr().is_terminal(),
            table: !quiet,
            scenario,
        })
    }
}

/// Absolute, because peers run in the run's directory and link to the file from there.
fn absolute_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::fs::canonicalize(dir).with_context(|| format!("--dir {}", dir.display()))?;
    if !abs.is_dir() {
        return Err(usage(format!("--dir {} is not a directory", abs.display())));
    }
    Ok(abs)
}

/// `LABEL=PATH` of `--against`, the path made absolute.
fn parse_against(text: &str) -> anyhow::Result<(String, PathBuf)> {
    let Some((label, path)) = text.split_once('=') else {
        return Err(usage(format!("--against: {text:?} is not LABEL=PATH")));
    };
    let path = std::fs::canonicalize(path).with_context(|| format!("--against {path}"))?;
    Ok((label.to_string(), path))
}

fn usage(message: String) -> anyhow::Error {
    SessionError::Usage(message).into()
}

/// Runs the benchmark and prints its results. Ctrl-C (SIGTERM) stops it with exit code 130
/// (143), after its children exited and its temporary files were removed.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let cfg = BenchConfig::from_args(args)?;
    // Before minutes of measuring, not after.
    for path in cfg.export_markdown.iter().chain(&cfg.export_svg) {
        export::check_dir(path)?;
    }
    if let Input::Saved(path) = &cfg.input {
        // The run that measured them reported its failures; this only prints them again.
        report(&cfg, &read_saved(path)?)?;
        return Ok(ExitCode::Success);
    }
    signals::install()?;
    let measured = match cfg.scenario {
        Scenario::Star(receivers) => star::run(&cfg, receivers),
        _ => measure(&cfg).and_then(|results| {
            report(&cfg, &results)?;
            let failed = results.iter().any(Results::any_failed);
            Ok(if failed { ExitCode::Failure } else { ExitCode::Success })
        }),
    };
    match measured {
        Ok(code) => Ok(code),
        Err(e) => match e.chain().find_map(|c| c.downcast_ref::<Stopped>()) {
            Some(stop) => {
                terminal::line(format!("zcp: bench {stop}; its temporary files were removed"));
                Ok(crate::error::ExitCode::stopped_by(stop.0))
            }
            None => Err(e),
        },
    }
}

/// The benchmark was stopped by SIGINT or SIGTERM. Ctrl-C reaches the zcp children too (they
/// are in the terminal's process group) and is passed on to a `tar | nc` pipeline (which leads
/// its own); after they exited, the workspace guard cleans up.
#[derive(Debug)]
struct Stopped(Signal);

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Signal::SIGTERM => f.write_str("stopped by SIGTERM"),
            _ => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Stopped {}

/// `Err(Stopped)` once SIGINT or SIGTERM arrived; checked between the benchmark's steps.
fn check_stop() -> anyhow::Result<()> {
    signals::pending().map_or(Ok(()), |signal| Err(Stopped(signal).into()))
}

/// One contender and what its runs gave so far.
struct Contender {
    name: String,
    kind: Kind,
    what: What,
    samples: Vec<Sample>,
    failure: Option<(u32, String)>,
}

enum What {
    /// A pair, run by another zcp binary when one is given, with its variant's flags and file.
    Zcp(Pair, Option<PathBuf>, Variant),
    /// A peer tool and where it is installed, if it is.
    Peer(Peer, Option<PathBuf>),
}

impl Contender {
    fn runnable(&self) -> bool {
        self.failure.is_none() && !matches!(self.what, What::Peer(_, None))
    }

    fn into_row(self, size: u64, files: Option<u64>) -> Row {
        let size = match &self.what {
            What::Zcp(_, _, Variant { source: Some((_, own)), .. }) => *own,
            _ => size,
        };
        let kind = self.kind;
        let outcome = match (self.what, self.failure) {
            (What::Peer(_, None), _) => Outcome::NotInstalled,
            (_, Some((round, error))) => Outcome::Failed { round, error },
            _ => Outcome::Measured(Box::new(stats::summarize(&self.samples, size, files))),
        };
        Row { name: self.name, kind, outcome }
    }
}

/// The rows of a run in one place; `sparse` is the sparse file of `--sparse` and its size.
fn contenders(cfg: &BenchConfig, sparse: Option<&(PathBuf, u64)>) -> Vec<Contender> {
    let contender = |name: &str, what| Contender {
        name: name.to_string(),
        kind: Kind::Zcp,
        what,
        samples: Vec::new(),
        failure: None,
    };
    let auto = |send_args, recv_args, source: Option<&(PathBuf, u64)>| {
        let (source, blocks) = (source.cloned(), cfg.scenario == Scenario::Sparse);
        What::Zcp(AUTO, None, Variant { send_args, recv_args, source, blocks, output_file: false })
    };
    match cfg.scenario {
        Scenario::Methods => {}
        // Its three ways are not method rows: `star` runs them.
        Scenario::Star(_) => return Vec::new(),
        Scenario::Fsync => {
            return vec![
                contender("recv", auto(&[], &[], None)),
                contender("recv --fsync", auto(&[], &["--fsync"], None)),
            ];
        }
        Scenario::Sparse => {
            return vec![
                contender("sparse", auto(&[], &[], sparse)),
                contender("dense", auto(&[], &[], None)),
                contender("sparse --no-sparse", auto(&["--no-sparse"], &[], sparse)),
            ];
        }
    }
    let plain = Variant::default;
    let ours = cfg.pairs.iter().map(|p| (p.name(), Kind::Zcp, What::Zcp(*p, None, plain())));
    let theirs = cfg.against.iter().flat_map(|(label, path)| {
        cfg.pairs.iter().map(move |p| {
            let what = What::Zcp(*p, Some(path.clone()), plain());
            (format!("{} @ {label}", p.name()), Kind::Zcp, what)
        })
    });
    // What the zero-copy path reaches with no checksum at either end: the ceiling of `auto`.
    let raw =
        Variant { send_args: &["--raw"], recv_args: &["--raw"], output_file: true, ..plain() };
    let ceiling = (cfg.compare && cfg.files.is_none())
        .then(|| (CEILING.into(), Kind::Ceiling, What::Zcp(AUTO, None, raw)));
    let zcp = ours.chain(theirs).chain(ceiling);
    let peers: &[Peer] = if cfg.files.is_some() { &Peer::TREE } else { &Peer::FILE };
    let tls = (cfg.encrypt && cfg.files.is_none()).then_some(Peer::SocatTls);
    let peers = peers.iter().copied().chain(tls).filter(|_| cfg.compare);
    let peers = peers.map(|p| (p.name().to_string(), Kind::Peer, What::Peer(p, p.locate())));
    zcp.chain(peers)
        .map(|(name, kind, what)| Contender {
            name,
            kind,
            what,
            samples: Vec::new(),
            failure: None,
        })
        .collect()
}

/// Prepares the file in every directory, runs every round there (round 1 in each directory, then
/// round 2, …) and folds the samples, one `Results` per directory. The workspaces, and with them
/// the test files and any copy left, are gone when this returns, whichever way it returns.
fn measure(cfg: &BenchConfig) -> anyhow::Result<Vec<Results>> {
    let zcp = std::env::current_exe().context("finding the zcp binary itself")?;
    let token = Token::generate()?;
    let mut places = Vec::new();
    for dir in &cfg.dirs {
        let workspace = Workspace::create(dir)?;
        let (source, size) = prepare_source(cfg, &workspace)?;
        let sparse = prepare_sparse(cfg, &workspace)?;
        places.push((workspace, source, size, contenders(cfg, sparse.as_ref())));
    }
    let per_round: u64 = places
        .iter()
        .map(|(_, _, size, c)| size * c.iter().filter(|c| c.runnable()).count() as u64)
        .sum();
    let bar = progress::bar(cfg.progress, Some(per_round * u64::from(cfg.rounds)), "bench");
    let mut runs = 0;
    for round in 1..=cfg.rounds {
        for (workspace, source, size, contenders) in &mut places {
            let source_name = source.file_name().map(|n| n.to_string_lossy().into_owned());
            let ctx = RunContext {
                zcp: &zcp,
                source,
                source_name: source_name.as_deref().unwrap_or(workspace::TEST_FILE),
                size: *size,
                files: cfg.files.map(u64::from),
                buffer_size: cfg.buffer_size,
                token: token.reveal(),
                workspace,
            };
            run_round(cfg, &ctx, contenders, round, (&mut runs, &bar))?;
        }
    }
    bar.finish_and_clear();
    let files = cfg.files.map(u64::from);
    let results = cfg.dirs.iter().zip(places).map(|(dir, (_, _, size, contenders))| {
        let mut rows: Vec<Row> = contenders.into_iter().map(|c| c.into_row(size, files)).collect();
        stats::add_ratios(&mut rows);
        Results {
            machine: Machine::this(),
            file_bytes: size,
            file: cfg.file.as_ref().map(|f| f.display().to_string()),
            files,
            sparse_bytes: (cfg.scenario == Scenario::Sparse)
                .then(|| size.saturating_mul(workspace::SPARSE_RATIO)),
            dir: dir.display().to_string(),
            rounds: cfg.rounds,
            command: command_line(),
            rows,
        }
    });
    Ok(results.collect())
}

/// The user's file (checked, never written), or a fresh test file or tree in the workspace;
/// returns its path and the bytes one run sends.
fn prepare_source(cfg: &BenchConfig, workspace: &Workspace) -> anyhow::Result<(PathBuf, u64)> {
    if let Some(files) = cfg.files {
        let total = cfg.size.saturating_mul(u64::from(files));
        workspace::ensure_space(workspace.path(), total.saturating_mul(2))?;
        let bar = progress::bar(cfg.progress, Some(total), "writing the test tree");
        let path = workspace.write_test_tree(files, cfg.size, &bar);
        bar.finish_and_clear();
        return Ok((path?, total));
    }
    if let Some(file) = &cfg.file {
        let meta = std::fs::metadata(file).with_context(|| format!("--file {}", file.display()))?;
        if !meta.is_file() || meta.len() == 0 {
            bail!("--file {} is not a regular file of at least 1 byte", file.display());
        }
        workspace::ensure_space(workspace.path(), meta.len())?;
        return Ok((file.clone(), meta.len()));
    }
    workspace::ensure_space(workspace.path(), cfg.size.saturating_mul(2))?;
    let bar = progress::bar(cfg.progress, Some(cfg.size), "writing the test file");
    let path = workspace.write_test_file(cfg.size, &bar);
    bar.finish_and_clear();
    Ok((path?, cfg.size))
}

/// With `--sparse`, the sparse test file (beside the dense one) and its apparent size.
fn prepare_sparse(
    cfg: &BenchConfig,
    workspace: &Workspace,
) -> anyhow::Result<Option<(PathBuf, u64)>> {
    if cfg.scenario != Scenario::Sparse {
        return Ok(None);
    }
    let apparent = cfg.size.saturating_mul(workspace::SPARSE_RATIO);
    // The dense file was checked for; now its data again, and a --no-sparse copy may be dense.
    workspace::ensure_space(workspace.path(), cfg.size.saturating_add(apparent))?;
    let bar = progress::bar(cfg.progress, Some(cfg.size), "writing the sparse test file");
    let path = workspace.write_sparse_file(cfg.size, &bar);
    bar.finish_and_clear();
    Ok(Some((path?, apparent)))
}

/// Runs every runnable contender once in round `round`, interleaved so that drift of the
/// machine hits all alike, and starting each round one contender later (A B C, B C A, C A B,
/// …): whoever runs right after another contender's writes pays for their writeback, and that
/// must not always be the same one. A contender that fails is not run again.
fn run_round(
    cfg: &BenchConfig,
    ctx: &RunContext<'_>,
    contenders: &mut [Contender],
    round: u32,
    (runs, bar): (&mut usize, &indicatif::ProgressBar),
) -> anyhow::Result<()> {
    let count = contenders.len().max(1);
    let first = (round as usize - 1) % count;
    let (head, tail) = contenders.split_at_mut(first);
    for contender in tail.iter_mut().chain(head.iter_mut()).filter(|c| c.runnable()) {
        bar.set_prefix(format!("round {round}/{} {}", cfg.rounds, contender.name));
        *runs += 1;
        let result = run_once(ctx, &contender.what, *runs);
        check_stop()?;
        bar.inc(ctx.size);
        match result {
            Ok(sample) => contender.samples.push(sample),
            Err(e) => {
                contender.failure = Some((round, format!("{e:#}")));
                bar.dec_length(ctx.size * u64::from(cfg.rounds - round));
            }
        }
    }
    Ok(())
}

/// One run in a fresh directory, removed (with the received copy) right after.
fn run_once(ctx: &RunContext<'_>, what: &What, number: usize) -> anyhow::Result<Sample> {
    let dir = ctx.workspace.run_dir(number)?;
    match what {
        What::Zcp(pair, other, variant) => {
            let zcp = other.as_deref().unwrap_or(ctx.zcp);
            let Some((source, size)) = &variant.source else {
                return run::zcp(&RunContext { zcp, ..*ctx }, pair, variant, dir.path());
            };
            let name = source.file_name().map(|n| n.to_string_lossy().into_owned());
            let source_name = name.as_deref().unwrap_or_default();
            let ctx = RunContext { zcp, source, source_name, size: *size, ..*ctx };
            run::zcp(&ctx, pair, variant, dir.path())
        }
        What::Peer(peer, Some(program)) => peer.run(program, ctx, dir.path()),
        What::Peer(peer, None) => bail!("{} is not installed", peer.programs().join(" or ")),
    }
}

/// Prints the tables, writes the Markdown and the SVG, prints the JSON (one object; with
/// several `--dir`, one object holding each directory's in `dirs`).
fn report(cfg: &BenchConfig, all: &[Results]) -> anyhow::Result<()> {
    for results in all {
        if cfg.table {
            terminal::lines(&format!("{}\n", table::human(results)));
        } else {
            // Errors are printed even with --quiet.
            for failure in table::failures(results) {
                terminal::line(format!("zcp: bench: {failure}"));
            }
        }
    }
    if let Some(path) = &cfg.export_markdown {
        let text: Vec<String> = all.iter().map(table::markdown).collect();
        export::write(path, &text.join("\n"))?;
    }
    if let Some(path) = &cfg.export_svg {
        export::write(path, &chart::svg(all)?)?;
    }
    if cfg.json {
        let text = match all {
            [one] => json::text(one),
            many => json::text_many(many),
        };
        crate::report::line_to_stdout(&text).context("writing the JSON results")?;
    }
    Ok(())
}

/// The results of a report saved from `--json`; one that is not such a report is a usage
/// error naming the file.
fn read_saved(path: &Path) -> anyhow::Result<Vec<Results>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--from-json {}", path.display()))?;
    json::parse(&text).map_err(|e| {
        usage(format!("--from-json {}: not a zcp bench report: {e:#}", path.display()))
    })
}

/// `zcp bench …` as typed, quoting what a shell would split.
fn command_line() -> String {
    let args = std::env::args().skip(1).map(|a| {
        if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:,=+@%".contains(c))
        {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    });
    std::iter::once("zcp".to_string()).chain(args).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_known_tokens_only() {
        assert_eq!(
            Pair::parse("sendfile:splice").unwrap(),
            Pair { send: "sendfile", recv: "splice", encrypt: false }
        );
        assert_eq!(Pair::parse(" buffered:buffered").unwrap().name(), "buffered:buffered");
        assert!(Pair::parse("sendfile").is_err());
        assert!(Pair::parse("splice:sendfile").is_err(), "sendfile cannot receive");
        assert!(Pair::parse("fast:splice").is_err());
    }
}
