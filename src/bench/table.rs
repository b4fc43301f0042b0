//! The benchmark's results as text for people: the table on stderr and the README-ready
//! Markdown table (`json` writes the object for machines). It only formats `Results`.

use super::stats::{Outcome, Results, Row, SideSummary};
use humansize::{BINARY, format_size};

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
    format!("{}, copies in {}", sent_and_rounds(results), results.dir)
}

/// `1 GiB of random bytes, 5 rounds, loopback`.
pub fn sent_and_rounds(results: &Results) -> String {
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
    format!("{file}, {} {rounds}, loopback", results.rounds)
}

pub fn status(outcome: &Outcome) -> String {
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

pub fn rate(bytes_per_s: f64) -> String {
    format!("{}/s", size(bytes_per_s as u64))
}

/// `1.10–1.40 GiB/s` when both ends share a unit, else both in full.
pub fn range(min: f64, max: f64) -> String {
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
