//! All printing of benchmark results: the table a person reads on stderr, the README-ready
//! Markdown table, and the one JSON object for stdout. It only formats `Results`.

use humansize::{BINARY, format_size};
use serde::Serialize;

use super::stats::{Kind, Outcome, Results, Row, SideSummary, Summary};

const HEADERS: [&str; 13] = [
    "pair",
    "send",
    "recv",
    "median",
    "min–max",
    "CPU s/GiB",
    "CPU min–max",
    "CPU send / recv",
    "syscalls send / recv",
    "bytes/call send / recv",
    "ctx switches",
    "peak RSS send / recv",
    "vs buffered",
];
/// Columns from this one on hold numbers and are right-aligned.
const FIRST_NUMERIC: usize = 3;
const NONE: &str = "–";

/// The results for stderr: what was measured where, then one aligned line per contender.
pub fn human(results: &Results) -> String {
    let measured: Vec<Vec<String>> = std::iter::once(HEADERS.map(String::from).to_vec())
        .chain(results.rows.iter().filter_map(measured_cells))
        .collect();
    let widths = column_widths(&measured);
    let mut out = format!("{}\n{}\n\n", title(results), results.machine.describe());
    let mut measured = measured.iter();
    if let Some(header) = measured.next() {
        out.push_str(&aligned(header, &widths));
    }
    for row in &results.rows {
        match &row.outcome {
            Outcome::Measured(_) => {
                if let Some(cells) = measured.next() {
                    out.push_str(&aligned(cells, &widths));
                }
            }
            other => out.push_str(&format!("{:<w$}  {}\n", row.name, status(other), w = widths[0])),
        }
    }
    for note in notes(results) {
        out.push_str(&format!("\n{note}"));
    }
    out.trim_end().to_string()
}

/// The results as a Markdown table, with a line naming the machine and the command.
pub fn markdown(results: &Results) -> String {
    let mut out = format!(
        "Measured with `{}` on {}: {}.\n\n",
        results.command,
        results.machine.describe(),
        subject(results)
    );
    out.push_str(&format!("| {} |\n", HEADERS.join(" | ")));
    let align: String =
        (0..HEADERS.len()).map(|i| if i < FIRST_NUMERIC { "---|" } else { "---:|" }).collect();
    out.push_str(&format!("|{align}\n"));
    for row in &results.rows {
        let cells = measured_cells(row).unwrap_or_else(|| {
            let mut cells = vec![NONE.to_string(); HEADERS.len()];
            cells[0] = row.name.clone();
            cells[1] = status(&row.outcome);
            cells
        });
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ").replace('\n', " ")));
    }
    for note in notes(results) {
        out.push_str(&format!("\n{note}\n"));
    }
    out
}

/// `nc failed in round 2: …`, one line per contender that failed.
pub fn failures(results: &Results) -> Vec<String> {
    let failed = results.rows.iter().filter(|r| matches!(r.outcome, Outcome::Failed { .. }));
    failed.map(|r| format!("{} {}", r.name, status(&r.outcome))).collect()
}

fn title(results: &Results) -> String {
    format!("zcp bench: {}", subject(results))
}

/// `1 GiB of random bytes, 5 rounds, loopback, copies in /tmp`.
fn subject(results: &Results) -> String {
    let total = format_size(results.file_bytes, BINARY);
    let file = match (&results.file, results.files, results.sparse_bytes) {
        (_, _, Some(apparent)) => format!(
            "a sparse file of {} with {total} of random bytes in {} extents, and a dense file of \
             {total}",
            format_size(apparent, BINARY),
            super::workspace::SPARSE_EXTENTS
        ),
        (Some(path), _, _) => format!("{path} ({total})"),
        (None, Some(n), None) => {
            let each = format_size(results.file_bytes / n.max(1), BINARY);
            format!("a tree of {n} files of {each} ({total}) of random bytes")
        }
        (None, None, None) => format!("{total} of random bytes"),
    };
    let rounds = if results.rounds == 1 { "round" } else { "rounds" };
    format!("{file}, {} {rounds}, loopback, copies in {}", results.rounds, results.dir)
}

fn status(outcome: &Outcome) -> String {
    match outcome {
        Outcome::NotInstalled => "not installed".into(),
        Outcome::Failed { round, error } => format!("failed in round {round}: {error}"),
        Outcome::Measured(_) => "ok".into(),
    }
}

/// Fallbacks zcp took, which make a row measure another path than its name says.
fn notes(results: &Results) -> Vec<String> {
    results
        .rows
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Measured(s) => Some((r, s)),
            _ => None,
        })
        .flat_map(|(r, s)| {
            let blocks = s.blocks.map(|b| {
                format!(
                    "{}: allocated 512-byte blocks: source {}, copy {}",
                    r.name, b.source, b.copy
                )
            });
            s.fallbacks.iter().map(move |f| format!("{}: {f}", r.name)).chain(blocks)
        })
        .collect()
}

fn measured_cells(row: &Row) -> Option<Vec<String>> {
    let Outcome::Measured(s) = &row.outcome else { return None };
    let path = |p: &Option<String>| p.clone().unwrap_or_else(|| NONE.into());
    Some(vec![
        row.name.clone(),
        path(&s.send_path),
        path(&s.recv_path),
        match s.files_per_s {
            Some(files) => format!("{} ({files:.0} files/s)", rate(s.median)),
            None => rate(s.median),
        },
        range(s.min, s.max),
        format!("{:.2}", s.cpu_s_per_gib),
        format!("{:.2}–{:.2}", s.cpu_min, s.cpu_max),
        format!("{:.2} / {:.2}", s.send.cpu_s_per_gib, s.recv.cpu_s_per_gib),
        per_side(&s.send, &s.recv, |side| side.syscalls.map(|n| n.to_string())),
        per_side(&s.send, &s.recv, |side| side.bytes_per_call.map(|b| size(b as u64))),
        s.switches.to_string(),
        per_side(&s.send, &s.recv, |side| Some(size(side.peak_rss))),
        s.ratio_to_buffered.map_or_else(|| NONE.into(), |r| format!("{r:.2}×")),
    ])
}

fn per_side(
    send: &SideSummary,
    recv: &SideSummary,
    cell: impl Fn(&SideSummary) -> Option<String>,
) -> String {
    match (cell(send), cell(recv)) {
        (None, None) => NONE.into(),
        (s, r) => format!("{} / {}", s.as_deref().unwrap_or(NONE), r.as_deref().unwrap_or(NONE)),
    }
}

fn size(bytes: u64) -> String {
    format_size(bytes, BINARY)
}

fn rate(bytes_per_s: f64) -> String {
    format!("{}/s", size(bytes_per_s as u64))
}

/// `1.10–1.40 GiB/s` when both ends share a unit, else both in full.
fn range(min: f64, max: f64) -> String {
    let (lo, hi) = (size(min as u64), size(max as u64));
    match (lo.split_once(' '), hi.split_once(' ')) {
        (Some((lo_n, lo_unit)), Some((hi_n, hi_unit))) if lo_unit == hi_unit => {
            format!("{lo_n}–{hi_n} {hi_unit}/s")
        }
        _ => format!("{lo}/s–{hi}/s"),
    }
}

fn column_widths(rows: &[Vec<String>]) -> Vec<usize> {
    (0..HEADERS.len())
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect()
}

fn aligned(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(i, (cell, &w))| {
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            if i < FIRST_NUMERIC { format!("{cell}{pad}") } else { format!("{pad}{cell}") }
        })
        .collect();
    format!("{}\n", padded.join("  ").trim_end())
}

/// The one JSON object for stdout; its keys are a contract.
pub fn json(results: &Results) -> String {
    let view = JsonResults {
        machine: &results.machine.cpu,
        arch: &results.machine.arch,
        kernel: &results.machine.kernel,
        cores: results.machine.cores,
        file_bytes: results.file_bytes,
        file: results.file.as_deref(),
        files: results.files,
        sparse_bytes: results.sparse_bytes,
        dir: &results.dir,
        rounds: results.rounds,
        command: &results.command,
        pairs: results.rows.iter().map(JsonPair::of).collect(),
    };
    crate::report::json_text(&view)
}

/// With several `--dir`: one object whose `dirs` holds each directory's object (as `json`).
pub fn json_many(all: &[Results]) -> String {
    let dirs: Vec<serde_json::Value> =
        all.iter().filter_map(|r| serde_json::from_str(&json(r)).ok()).collect();
    crate::report::json_text(&serde_json::json!({ "dirs": dirs }))
}

#[derive(Serialize)]
struct JsonResults<'a> {
    machine: &'a str,
    arch: &'a str,
    kernel: &'a str,
    cores: usize,
    file_bytes: u64,
    file: Option<&'a str>,
    files: Option<u64>,
    sparse_bytes: Option<u64>,
    dir: &'a str,
    rounds: u32,
    command: &'a str,
    pairs: Vec<JsonPair<'a>>,
}

#[derive(Serialize)]
struct JsonPair<'a> {
    name: &'a str,
    kind: &'static str,
    /// `ok`, `failed` or `not installed`.
    status: &'static str,
    error: Option<&'a str>,
    failed_round: Option<u32>,
    send_path: Option<&'a str>,
    recv_path: Option<&'a str>,
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
    fallbacks: Vec<&'a str>,
    /// With `--sparse`: 512-byte blocks allocated to the source and to the copy.
    source_blocks: Option<u64>,
    copy_blocks: Option<u64>,
}

#[derive(Serialize)]
struct JsonRange {
    median: f64,
    min: f64,
    max: f64,
}

#[derive(Serialize)]
struct JsonSide {
    cpu_s_per_gib: f64,
    syscalls: Option<u64>,
    bytes_per_call: Option<f64>,
    context_switches: u64,
    peak_rss_bytes: u64,
}

impl<'a> JsonPair<'a> {
    fn of(row: &'a Row) -> Self {
        let mut pair = JsonPair {
            name: &row.name,
            kind: match row.kind {
                Kind::Zcp => "zcp",
                Kind::Ceiling => "ceiling",
                Kind::Peer => "peer",
            },
            status: "ok",
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
            Outcome::NotInstalled => pair.status = "not installed",
            Outcome::Failed { round, error } => {
                (pair.status, pair.error, pair.failed_round) =
                    ("failed", Some(error.as_str()), Some(*round));
            }
            Outcome::Measured(s) => pair.measured(s),
        }
        pair
    }

    fn measured(&mut self, s: &'a Summary) {
        self.send_path = s.send_path.as_deref();
        self.recv_path = s.recv_path.as_deref();
        self.runs = s.runs;
        self.throughput_bytes_per_s = Some(JsonRange { median: s.median, min: s.min, max: s.max });
        self.files_per_s = s.files_per_s;
        self.cpu_s_per_gib = Some(s.cpu_s_per_gib);
        (self.cpu_s_per_gib_min, self.cpu_s_per_gib_max) = (Some(s.cpu_min), Some(s.cpu_max));
        self.context_switches = Some(s.switches);
        self.send = Some(JsonSide::of(&s.send));
        self.recv = Some(JsonSide::of(&s.recv));
        self.ratio_to_buffered = s.ratio_to_buffered;
        self.fallbacks = s.fallbacks.iter().map(String::as_str).collect();
        self.source_blocks = s.blocks.map(|b| b.source);
        self.copy_blocks = s.blocks.map(|b| b.copy);
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
}
