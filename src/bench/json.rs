//! The one JSON object of a benchmark for stdout, and reading a saved one back into the same
//! `Results` (`--from-json`), so that a kept run can be printed, exported or drawn again. One
//! set of types serves both ways: the keys are a contract and cannot drift apart.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::stats::{Blocks, Kind, Outcome, Results, Row, SideSummary, Summary};
use crate::sys::machine::Machine;

/// The object of one directory's results.
pub fn text(results: &Results) -> String {
    crate::report::json_text(&JsonResults::of(results))
}

/// With several `--dir`: one object whose `dirs` holds each directory's object (as `text`).
pub fn text_many(all: &[Results]) -> String {
    let dirs: Vec<JsonResults> = all.iter().map(JsonResults::of).collect();
    crate::report::json_text(&JsonMany { dirs })
}

/// The results of a saved report, one per directory: either object `text` or `text_many`
/// wrote.
pub fn parse(text: &str) -> anyhow::Result<Vec<Results>> {
    let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    let objects = match value.get("dirs") {
        Some(_) => serde_json::from_value::<JsonMany>(value)?.dirs,
        None => vec![serde_json::from_value::<JsonResults>(value)?],
    };
    if objects.is_empty() {
        bail!("the report holds no directory's results");
    }
    objects.into_iter().map(JsonResults::into_results).collect()
}

#[derive(Serialize, Deserialize)]
struct JsonMany {
    dirs: Vec<JsonResults>,
}

#[derive(Serialize, Deserialize)]
struct JsonResults {
    machine: String,
    arch: String,
    kernel: String,
    cores: usize,
    file_bytes: u64,
    file: Option<String>,
    files: Option<u64>,
    sparse_bytes: Option<u64>,
    dir: String,
    rounds: u32,
    command: String,
    pairs: Vec<JsonPair>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum JsonKind {
    Zcp,
    Ceiling,
    Peer,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
enum JsonStatus {
    #[serde(rename = "ok")]
    Ok,
    #[serde(rename = "failed")]
    Failed,
    #[serde(rename = "not installed")]
    NotInstalled,
}

#[derive(Serialize, Deserialize)]
struct JsonPair {
    name: String,
    kind: JsonKind,
    status: JsonStatus,
    error: Option<String>,
    failed_round: Option<u32>,
    send_path: Option<String>,
    recv_path: Option<String>,
    runs: usize,
    throughput_bytes_per_s: Option<JsonRange>,
    files_per_s: Option<f64>,
    cpu_s_per_gib: Option<f64>,
    cpu_s_per_gib_min: Option<f64>,
    cpu_s_per_gib_max: Option<f64>,
    context_switches: Option<u64>,
    send: Option<JsonSide>,
    recv: Option<JsonSide>,
    ratio_to_buffered: Option<f64>,
    fallbacks: Vec<String>,
    /// With `--sparse`: 512-byte blocks allocated to the source and to the copy.
    source_blocks: Option<u64>,
    copy_blocks: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct JsonRange {
    median: f64,
    min: f64,
    max: f64,
}

#[derive(Serialize, Deserialize)]
struct JsonSide {
    cpu_s_per_gib: f64,
    syscalls: Option<u64>,
    bytes_per_call: Option<f64>,
    context_switches: u64,
    peak_rss_bytes: u64,
}

impl JsonResults {
    fn of(results: &Results) -> Self {
        JsonResults {
            machine: results.machine.cpu.clone(),
            arch: results.machine.arch.clone(),
            kernel: results.machine.kernel.clone(),
            cores: results.machine.cores,
            file_bytes: results.file_bytes,
            file: results.file.clone(),
            files: results.files,
            sparse_bytes: results.sparse_bytes,
            dir: results.dir.clone(),
            rounds: results.rounds,
            command: results.command.clone(),
            pairs: results.rows.iter().map(JsonPair::of).collect(),
        }
    }

    fn into_results(self) -> anyhow::Result<Results> {
        let rows = self.pairs.into_iter().map(JsonPair::into_row);
        Ok(Results {
            machine: Machine {
                cpu: self.machine,
                arch: self.arch,
                kernel: self.kernel,
                cores: self.cores,
            },
            file_bytes: self.file_bytes,
            file: self.file,
            files: self.files,
            sparse_bytes: self.sparse_bytes,
            dir: self.dir,
            rounds: self.rounds,
            command: self.command,
            rows: rows.collect::<anyhow::Result<_>>()?,
        })
    }
}

impl JsonPair {
    fn of(row: &Row) -> Self {
        let mut pair = JsonPair {
            name: row.name.clone(),
            kind: match row.kind {
                Kind::Zcp => JsonKind::Zcp,
                Kind::Ceiling => JsonKind::Ceiling,
                Kind::Peer => JsonKind::Peer,
            },
            status: JsonStatus::Ok,
            error: None,
            failed_round: None,
            send_path: None,
            recv_path: None,
            runs: 0,
            throughput_bytes_per_s: None,
            files_per_s: None,
            cpu_s_per_gib: None,
            cpu_s_per_gib_min: None,
            cpu_s_per_gib_max: None,
            context_switches: None,
            send: None,
            recv: None,
            ratio_to_buffered: None,
            fallbacks: Vec::new(),
            source_blocks: None,
            copy_blocks: None,
        };
        match &row.outcome {
            Outcome::NotInstalled => pair.status = JsonStatus::NotInstalled,
            Outcome::Failed { round, error } => {
                (pair.status, pair.error, pair.failed_round) =
                    (JsonStatus::Failed, Some(error.clone()), Some(*round));
            }
            Outcome::Measured(s) => pair.measured(s),
        }
        pair
    }

    fn measured(&mut self, s: &Summary) {
        self.send_path = s.send_path.clone();
        self.recv_path = s.recv_path.clone();
        self.runs = s.runs;
        self.throughput_bytes_per_s = Some(JsonRange { median: s.median, min: s.min, max: s.max });
        self.files_per_s = s.files_per_s;
        self.cpu_s_per_gib = Some(s.cpu_s_per_gib);
        (self.cpu_s_per_gib_min, self.cpu_s_per_gib_max) = (Some(s.cpu_min), Some(s.cpu_max));
        self.context_switches = Some(s.switches);
        self.send = Some(JsonSide::of(&s.send));
        self.recv = Some(JsonSide::of(&s.recv));
        self.ratio_to_buffered = s.ratio_to_buffered;
        self.fallbacks = s.fallbacks.clone();
        self.source_blocks = s.blocks.map(|b| b.source);
        self.copy_blocks = s.blocks.map(|b| b.copy);
    }

    fn into_row(self) -> anyhow::Result<Row> {
        let kind = match self.kind {
            JsonKind::Zcp => Kind::Zcp,
            JsonKind::Ceiling => Kind::Ceiling,
            JsonKind::Peer => Kind::Peer,
        };
        let outcome = match self.status {
            JsonStatus::NotInstalled => Outcome::NotInstalled,
            JsonStatus::Failed => Outcome::Failed {
                round: self.failed_round.unwrap_or(0),
                error: self.error.clone().unwrap_or_default(),
            },
            JsonStatus::Ok => {
                let name = self.name.clone();
                let summary = self.summary();
                Outcome::Measured(Box::new(summary.with_context(|| format!("pair {name:?}"))?))
            }
        };
        Ok(Row { name: self.name, kind, outcome })
    }

    /// The summary of a row whose status is `ok`: every number it needs is there.
    fn summary(&self) -> anyhow::Result<Summary> {
        let missing = |key: &str| anyhow::anyhow!("status ok without {key}");
        let throughput = self
            .throughput_bytes_per_s
            .as_ref()
            .ok_or_else(|| missing("throughput_bytes_per_s"))?;
        let number = |value: Option<f64>, key: &str| value.ok_or_else(|| missing(key));
        let side = |side: &Option<JsonSide>, key: &str| {
            side.as_ref().map(JsonSide::to_summary).ok_or_else(|| missing(key))
        };
        let blocks = match (self.source_blocks, self.copy_blocks) {
            (Some(source), Some(copy)) => Some(Blocks { source, copy }),
            _ => None,
        };
        Ok(Summary {
            runs: self.runs,
            send_path: self.send_path.clone(),
            recv_path: self.recv_path.clone(),
            median: throughput.median,
            min: throughput.min,
            max: throughput.max,
            files_per_s: self.files_per_s,
            cpu_s_per_gib: number(self.cpu_s_per_gib, "cpu_s_per_gib")?,
            cpu_min: number(self.cpu_s_per_gib_min, "cpu_s_per_gib_min")?,
            cpu_max: number(self.cpu_s_per_gib_max, "cpu_s_per_gib_max")?,
            switches: self.context_switches.ok_or_else(|| missing("context_switches"))?,
            send: side(&self.send, "send")?,
            recv: side(&self.recv, "recv")?,
            ratio_to_buffered: self.ratio_to_buffered,
            fallbacks: self.fallbacks.clone(),
            blocks,
        })
    }
}

impl JsonSide {
    fn of(s: &SideSummary) -> Self {
        JsonSide {
            cpu_s_per_gib: s.cpu_s_per_gib,
            syscalls: s.syscalls,
            bytes_per_call: s.bytes_per_call,
            context_switches: s.switches,
            peak_rss_bytes: s.peak_rss,
        }
    }

    fn to_summary(&self) -> SideSummary {
        SideSummary {
            cpu_s_per_gib: self.cpu_s_per_gib,
            syscalls: self.syscalls,
            bytes_per_call: self.bytes_per_call,
            switches: self.context_switches,
            peak_rss: self.peak_rss_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::process::Rusage;
    use crate::bench::stats::{self, Sample, Side};
    use std::time::Duration;

    fn results(dir: &str) -> Results {
        let side = |path: &str, calls| Side {
            path: Some(path.into()),
            syscalls: Some(calls),
            bytes_per_call: Some(65536.0),
            usage: Rusage { cpu: Duration::from_millis(30), switches: 4, peak_rss: 5 << 20 },
            fallbacks: vec!["send: sendfile not used: \u{1b}[2J".into()],
        };
        let sample = |throughput| Sample {
            throughput,
            cpu: Duration::from_millis(70),
            send: side("sendfile", 16),
            recv: side("splice", 5444),
            blocks: None,
        };
        let measured = stats::summarize(&[sample(1.5e9), sample(1.2e9)], 1 << 30, None);
        let row = |name: &str, kind, outcome| Row { name: name.into(), kind, outcome };
        Results {
            machine: Machine {
                cpu: "Xeon".into(),
                arch: "x86_64".into(),
                kernel: "Linux 6".into(),
                cores: 2,
            },
            file_bytes: 1 << 30,
            file: None,
            files: None,
            sparse_bytes: None,
            dir: dir.into(),
            rounds: 2,
            command: "zcp bench --rounds 2".into(),
            rows: vec![
                row("sendfile:splice", Kind::Zcp, Outcome::Measured(Box::new(measured))),
                row("nc", Kind::Peer, Outcome::Failed { round: 2, error: "nc: gone".into() }),
                row("iperf3 (memory)", Kind::Peer, Outcome::NotInstalled),
            ],
        }
    }

    #[test]
    fn a_saved_report_reads_back_as_the_same_report() {
        let one = results("/tmp");
        assert_eq!(text(&parse(&text(&one)).unwrap()[0]), text(&one));
        let many = [results("/tmp"), results("/dev/shm")];
        let again = parse(&text_many(&many)).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(text_many(&again), text_many(&many));
    }

    #[test]
    fn a_report_without_its_numbers_is_refused_by_name() {
        let mut value: serde_json::Value = serde_json::from_str(&text(&results("/tmp"))).unwrap();
        value["pairs"][0]["cpu_s_per_gib"] = serde_json::Value::Null;
        let err = parse(&value.to_string()).unwrap_err();
        assert_eq!(format!("{err:#}"), "pair \"sendfile:splice\": status ok without cpu_s_per_gib");
        assert!(parse("{\"dirs\": []}").is_err());
        assert!(parse("[1, 2]").is_err());
        let err = parse("{\"machine\": 1}").unwrap_err();
        assert!(format!("{err:#}").contains("invalid type"), "{err:#}");
    }
}
