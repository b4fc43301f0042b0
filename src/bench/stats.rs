//! What a benchmark measured: one `Sample` per run, folded per contender into a `Row` (median,
//! min and max throughput, CPU per GiB, syscalls, context switches, peak RSS, ratio to the
//! buffered baseline). Pure data and arithmetic; `table` formats it.

use std::time::Duration;

use super::process::Rusage;
use crate::sys::machine::Machine;

const GIB: f64 = (1u64 << 30) as f64;

/// The row the others are compared with.
pub const BASELINE: &str = "buffered:buffered";

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Bytes per second.
    pub throughput: f64,
    /// CPU time of both processes together.
    pub cpu: Duration,
    pub send: Side,
    pub recv: Side,
    /// With `--sparse`: 512-byte blocks allocated to the source and to the copy.
    pub blocks: Option<Blocks>,
}

/// Blocks of 512 bytes allocated on disk (`st_blocks`) to a sparse run's source and copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocks {
    pub source: u64,
    pub copy: u64,
}

/// One end of one run.
#[derive(Debug, Clone)]
pub struct Side {
    /// The data path, as the zcp report names it (`None` for other tools).
    pub path: Option<String>,
    /// Data-path syscalls and bytes per call, from the zcp report.
    pub syscalls: Option<u64>,
    pub bytes_per_call: Option<f64>,
    pub usage: Rusage,
    /// "send: sendfile not used: …", from the report's fallbacks.
    pub fallbacks: Vec<String>,
}

/// Whether a row is one of zcp's method pairs, zcp's own ceiling, or another tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zcp,
    /// zcp with `--raw` at both ends: no protocol, no checksum; what its paths reach.
    Ceiling,
    Peer,
}

/// How a contender fared over all rounds.
#[derive(Debug, Clone)]
pub enum Outcome {
    NotInstalled,
    /// A run failed; the contender was not run again.
    Failed {
        round: u32,
        error: String,
    },
    Measured(Box<Summary>),
}

/// One contender's line of the results.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub kind: Kind,
    pub outcome: Outcome,
}

/// Medians over the rounds (min and max of throughput, max of peak RSS).
#[derive(Debug, Clone)]
pub struct Summary {
    pub runs: usize,
    pub send_path: Option<String>,
    pub recv_path: Option<String>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// For a tree: files per second at the median throughput.
    pub files_per_s: Option<f64>,
    pub cpu_s_per_gib: f64,
    /// The lowest and highest CPU s/GiB of a run: the spread of `cpu_s_per_gib`.
    pub cpu_min: f64,
    pub cpu_max: f64,
    /// Context switches of both processes.
    pub switches: u64,
    pub send: SideSummary,
    pub recv: SideSummary,
    /// Median throughput over the baseline's, when the baseline was measured.
    pub ratio_to_buffered: Option<f64>,
    pub fallbacks: Vec<String>,
    /// The last run's allocated blocks, with `--sparse`.
    pub blocks: Option<Blocks>,
}

#[derive(Debug, Clone)]
pub struct SideSummary {
    /// Median CPU seconds per GiB of this end alone.
    pub cpu_s_per_gib: f64,
    pub syscalls: Option<u64>,
    pub bytes_per_call: Option<f64>,
    pub switches: u64,
    pub peak_rss: u64,
}

/// Everything a benchmark reports.
#[derive(Debug, Clone)]
pub struct Results {
    pub machine: Machine,
    pub file_bytes: u64,
    /// The user's `--file`, or `None` for the temporary test file.
    pub file: Option<String>,
    /// For a tree, its number of files (`file_bytes` is then their total).
    pub files: Option<u64>,
    /// With `--sparse`: the sparse file's apparent size (its data is `file_bytes`).
    pub sparse_bytes: Option<u64>,
    pub dir: String,
    pub rounds: u32,
    /// The command line, as typed.
    pub command: String,
    pub rows: Vec<Row>,
}

impl Results {
    /// Whether any contender failed.
    pub fn any_failed(&self) -> bool {
        self.rows.iter().any(|r| matches!(r.outcome, Outcome::Failed { .. }))
    }
}

/// Folds a contender's samples (at least one) for a file of `size` bytes, or a tree of `files`
/// files of `size` bytes in all.
pub fn summarize(samples: &[Sample], size: u64, files: Option<u64>) -> Summary {
    let throughput: Vec<f64> = samples.iter().map(|s| s.throughput).collect();
    let gib = size as f64 / GIB;
    let mut fallbacks: Vec<String> = samples
        .iter()
        .flat_map(|s| s.send.fallbacks.iter().chain(&s.recv.fallbacks))
        .cloned()
        .collect();
    fallbacks.sort();
    fallbacks.dedup();
    let median_rate = median(&throughput);
    let cpu: Vec<f64> = samples.iter().map(|s| s.cpu.as_secs_f64() / gib).collect();
    Summary {
        runs: samples.len(),
        send_path: samples.first().and_then(|s| s.send.path.clone()),
        recv_path: samples.first().and_then(|s| s.recv.path.clone()),
        median: median_rate,
        files_per_s: files.map(|n| median_rate * n as f64 / size.max(1) as f64),
        min: throughput.iter().copied().fold(f64::INFINITY, f64::min),
        max: throughput.iter().copied().fold(0.0, f64::max),
        cpu_s_per_gib: median(&cpu),
        cpu_min: cpu.iter().copied().fold(f64::INFINITY, f64::min),
        cpu_max: cpu.iter().copied().fold(0.0, f64::max),
        switches: median_u64(samples.iter().map(|s| s.send.usage.switches + s.recv.usage.switches)),
        send: side_summary(samples.iter().map(|s| &s.send), gib),
        recv: side_summary(samples.iter().map(|s| &s.recv), gib),
        ratio_to_buffered: None,
        fallbacks,
        blocks: samples.last().and_then(|s| s.blocks),
    }
}

fn side_summary<'a>(sides: impl Iterator<Item = &'a Side> + Clone, gib: f64) -> SideSummary {
    let cpu: Vec<f64> = sides.clone().map(|s| s.usage.cpu.as_secs_f64() / gib).collect();
    let syscalls: Vec<u64> = sides.clone().filter_map(|s| s.syscalls).collect();
    let per_call: Vec<f64> = sides.clone().filter_map(|s| s.bytes_per_call).collect();
    SideSummary {
        cpu_s_per_gib: median(&cpu),
        syscalls: (!syscalls.is_empty()).then(|| median_u64(syscalls.into_iter())),
        bytes_per_call: (!per_call.is_empty()).then(|| median(&per_call)),
        switches: median_u64(sides.clone().map(|s| s.usage.switches)),
        peak_rss: sides.map(|s| s.usage.peak_rss).max().unwrap_or(0),
    }
}

/// Sets every measured row's ratio to the baseline's median throughput.
pub fn add_ratios(rows: &mut [Row]) {
    let baseline = rows.iter().find_map(|r| match &r.outcome {
        Outcome::Measured(s) if r.name == BASELINE && s.median > 0.0 => Some(s.median),
        _ => None,
    });
    for row in rows {
        if let Outcome::Measured(s) = &mut row.outcome {
            s.ratio_to_buffered = baseline.map(|b| s.median / b);
        }
    }
}

/// The median; the mean of the two middle values for an even count; 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    median(&values.map(|v| v as f64).collect::<Vec<_>>()).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(throughput: f64, cpu_ms: u64) -> Sample {
        let side = Side {
            path: Some("buffered".into()),
            syscalls: Some(10),
            bytes_per_call: Some(100.0),
            usage: Rusage { cpu: Duration::ZERO, switches: 3, peak_rss: 1 << 20 },
            fallbacks: Vec::new(),
        };
        Sample {
            throughput,
            cpu: Duration::from_millis(cpu_ms),
            send: side.clone(),
            recv: side,
            blocks: None,
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn summary_takes_median_min_max_and_cpu_per_gib() {
        let s = summarize(&[sample(3.0, 500), sample(1.0, 1000), sample(2.0, 250)], 1 << 29, None);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!((s.cpu_s_per_gib, s.cpu_min, s.cpu_max), (1.0, 0.5, 2.0));
        assert_eq!(s.switches, 6);
        assert_eq!(s.send.syscalls, Some(10));
    }

    #[test]
    fn a_tree_counts_files_per_second() {
        let s =
            summarize(&[sample(4096.0, 1), sample(8192.0, 1), sample(2048.0, 1)], 40960, Some(10));
        assert_eq!(s.files_per_s, Some(1.0));
        assert_eq!(summarize(&[sample(1.0, 1)], 1, None).files_per_s, None);
    }

    #[test]
    fn ratios_are_to_the_buffered_pair() {
        let row = |name: &str, t: f64| Row {
            name: name.into(),
            kind: Kind::Zcp,
            outcome: Outcome::Measured(Box::new(summarize(&[sample(t, 1)], 1, None))),
        };
        let mut rows = vec![row("sendfile:splice", 3.0), row(BASELINE, 2.0)];
        add_ratios(&mut rows);
        let Outcome::Measured(s) = &rows[0].outcome else { panic!("measured") };
        assert_eq!(s.ratio_to_buffered, Some(1.5));
    }
}
