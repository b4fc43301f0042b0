//! `zcp bench --star N`: one file to N receivers on loopback, three ways in interleaved rounds
//! (N `zcp send` one after another, N at once, one star with `--to` N times), with each way's
//! median wall time, the rate of all copies together, and the sender's CPU and peak memory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use humansize::{BINARY, format_size};
use serde_json::json;

use super::process::{Exit, Proc};
use super::run::{Ready, await_ready};
use super::stats::median;
use super::workspace::{TEST_FILE, Workspace};
use super::{BenchConfig, check_stop};
use crate::error::ExitCode;
use crate::link::auth::{TOKEN_ENV, Token};

/// The default size of the file: N copies of it land in `--dir` at once.
pub const FILE_SIZE: u64 = 256 << 20;

/// The three ways to send one file to N receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// N `zcp send`, one after another.
    OneAfterAnother,
    /// N `zcp send` at once.
    AtOnce,
    /// One `zcp send --to … --to …`.
    Star,
}

impl Way {
    const ALL: [Way; 3] = [Way::OneAfterAnother, Way::AtOnce, Way::Star];

    fn name(self, n: u32) -> String {
        match self {
            Way::OneAfterAnother => format!("{n} zcp send, one after another"),
            Way::AtOnce => format!("{n} zcp send at once"),
            Way::Star => format!("1 zcp send --to x{n} (star)"),
        }
    }
}

/// One run of one way.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    /// CPU of every sender process together.
    sender_cpu: Duration,
    /// CPU of every receiver together.
    receivers_cpu: Duration,
    /// The largest peak RSS of a sender process.
    sender_peak_rss: u64,
}

/// What every run needs.
struct Ctx<'a> {
    zcp: &'a Path,
    source: &'a Path,
    size: u64,
    token: &'a str,
    workspace: &'a Workspace,
}

/// Runs the rounds into the first `--dir` and prints the table (and with `--json`, an object).
pub fn run(cfg: &BenchConfig, receivers: u32) -> anyhow::Result<ExitCode> {
    let zcp = std::env::current_exe().context("locating this zcp binary")?;
    let dir = cfg.dirs.first().context("no --dir")?;
    let workspace = Workspace::create(dir)?;
    let hidden = indicatif::ProgressBar::hidden();
    let source = match &cfg.file {
        Some(file) => file.clone(),
        None => workspace.write_test_file(cfg.size, &hidden)?,
    };
    let size = std::fs::metadata(&source).with_context(|| source.display().to_string())?.len();
    let token = Token::generate()?;
    let ctx =
        Ctx { zcp: &zcp, source: &source, size, token: token.reveal(), workspace: &workspace };
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); Way::ALL.len()];
    for round in 0..cfg.rounds {
        for (i, way) in Way::ALL.into_iter().enumerate() {
            check_stop()?;
            let sample = one(&ctx, way, receivers)
                .with_context(|| format!("round {}: {}", round + 1, way.name(receivers)))?;
            samples[i].push(sample);
        }
    }
    let rows: Vec<Row> = Way::ALL
        .into_iter()
        .zip(&samples)
        .map(|(way, s)| Row::of(way, s, receivers, size))
        .collect();
    if cfg.table {
        crate::terminal::lines(&table(&rows, receivers, size, dir, cfg.rounds));
    }
    if cfg.json {
        let rows: Vec<_> = rows.iter().map(Row::json).collect();
        let object = json!({ "scenario": "star", "receivers": receivers, "size": size, "rounds": cfg.rounds, "rows": rows });
        crate::report::line_to_stdout(&crate::report::json_text(&object))?;
    }
    Ok(ExitCode::Success)
}

/// One run of `way` to `n` fresh receivers; their copies are removed after it.
fn one(ctx: &Ctx<'_>, way: Way, n: u32) -> anyhow::Result<Sample> {
    let outs: Vec<Workspace> =
        (0..n as usize).map(|i| ctx.workspace.run_dir(i)).collect::<anyhow::Result<_>>()?;
    let mut receivers = Vec::new();
    let mut addrs = Vec::new();
    for out in &outs {
        let mut cmd = Command::new(ctx.zcp);
        cmd.args(["recv", "--listen", "127.0.0.1:0", "--quiet", "--output"]).arg(out.path());
        cmd.env(TOKEN_ENV, ctx.token).stdin(Stdio::null()).stdout(Stdio::null());
        let (recv, addr) = await_ready(Proc::spawn("zcp recv", &mut cmd)?, Ready::Announced)?;
        receivers.push(recv);
        addrs.push(addr.to_string());
    }
    let clock = Instant::now();
    let senders: Vec<Exit> = match way {
        Way::OneAfterAnother => {
            let mut done = Vec::new();
            for addr in &addrs {
                done.push(send(ctx, &[addr.as_str()], false)?.wait()?);
            }
            done
        }
        Way::AtOnce => {
            let running: Vec<Proc> = addrs
                .iter()
                .map(|a| send(ctx, &[a.as_str()], false))
                .collect::<anyhow::Result<_>>()?;
            running.into_iter().map(Proc::wait).collect::<anyhow::Result<_>>()?
        }
        Way::Star => {
            let to: Vec<&str> = addrs.iter().map(String::as_str).collect();
            vec![send(ctx, &to, true)?.wait()?]
        }
    };
    // A sender that failed leaves its receiver waiting: dropped, the receivers are killed.
    for exit in &senders {
        exit.ensure_success()?;
    }
    let received: Vec<Exit> =
        receivers.into_iter().map(Proc::wait).collect::<anyhow::Result<_>>()?;
    let wall = clock.elapsed();
    for exit in &received {
        exit.ensure_success()?;
    }
    for out in &outs {
        let copy = out.path().join(TEST_FILE);
        let got = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
        anyhow::ensure!(got == ctx.size, "{} holds {got} bytes of {}", copy.display(), ctx.size);
    }
    Ok(Sample {
        wall,
        sender_cpu: senders.iter().map(|e| e.usage.cpu).sum(),
        receivers_cpu: received.iter().map(|e| e.usage.cpu).sum(),
        sender_peak_rss: senders.iter().map(|e| e.usage.peak_rss).max().unwrap_or(0),
    })
}

/// Starts `zcp send FILE` to `to` (as `--to` each with `star`, else the one address last).
fn send(ctx: &Ctx<'_>, to: &[&str], star: bool) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(ctx.zcp);
    cmd.arg("send").arg(ctx.source).arg("--quiet");
    for addr in to {
        if star {
            cmd.arg("--to");
        }
        cmd.arg(addr);
    }
    cmd.env(TOKEN_ENV, ctx.token).stdin(Stdio::null()).stdout(Stdio::null());
    Proc::spawn("zcp send", &mut cmd)
}

/// One way's medians.
struct Row {
    name: String,
    wall_s: f64,
    /// All copies' bytes over the wall time.
    rate: f64,
    sender_cpu_s: f64,
    receivers_cpu_s: f64,
    sender_peak_rss: u64,
}

impl Row {
    fn of(way: Way, samples: &[Sample], n: u32, size: u64) -> Row {
        let med = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
        let wall_s = med(|s| s.wall.as_secs_f64());
        Row {
            name: way.name(n),
            wall_s,
            rate: (size * u64::from(n)) as f64 / wall_s.max(1e-9),
            sender_cpu_s: med(|s| s.sender_cpu.as_secs_f64()),
            receivers_cpu_s: med(|s| s.receivers_cpu.as_secs_f64()),
            sender_peak_rss: med(|s| s.sender_peak_rss as f64) as u64,
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "wall_s": self.wall_s,
            "bytes_per_s": self.rate,
            "sender_cpu_s": self.sender_cpu_s,
            "receivers_cpu_s": self.receivers_cpu_s,
            "sender_peak_rss_bytes": self.sender_peak_rss,
        })
    }
}

/// The table for stderr, and the star against N at once.
fn table(rows: &[Row], n: u32, size: u64, dir: &Path, rounds: u32) -> String {
    let mut text = format!(
        "{} to {n} receivers on loopback, into {}, medians of {rounds} interleaved rounds\n",
        format_size(size, BINARY),
        dir.display()
    );
    text.push_str(&format!(
        "{:<36} {:>8} {:>12} {:>11} {:>14} {:>10}\n",
        "way", "wall s", "all copies", "sender cpu", "receivers cpu", "sender rss"
    ));
    for r in rows {
        text.push_str(&format!(
            "{:<36} {:>8.2} {:>10}/s {:>10.2}s {:>13.2}s {:>10}\n",
            r.name,
            r.wall_s,
            format_size(r.rate as u64, BINARY),
            r.sender_cpu_s,
            r.receivers_cpu_s,
            format_size(r.sender_peak_rss, BINARY),
        ));
    }
    if let [_, at_once, star] = rows {
        text.push_str(&format!(
            "star vs {n} at once: {:.2}x the wall time, {:.2}x the sender CPU",
            star.wall_s / at_once.wall_s.max(1e-9),
            star.sender_cpu_s / at_once.sender_cpu_s.max(1e-9),
        ));
    }
    text
}
