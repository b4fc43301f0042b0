//! `zcp bench --export-svg` and `--from-json` end to end. One real short run (two directories,
//! two pairs, `--compare`) draws the chart; it must be well-formed XML holding one bar per pair
//! and directory and the run's numbers as text; its saved `--json` report must draw the same
//! picture; headless Chromium must render it. The run's SVG, JSON and PNG are kept under
//! `target/ci-artifacts/` for a CI runner to collect. Peer text is escaped, and an SVG that
//! cannot be written fails before measuring and leaves nothing behind.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;
use humansize::{BINARY, format_size};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use serde_json::Value;
use tempfile::TempDir;

use crate::util::{CHART_FILLS, ZCP, skip, unusable};

/// A whole small benchmark, debug build, loaded machine.
const LIMIT: Duration = Duration::from_secs(240);
const PAIRS: &str = "sendfile:splice,buffered:buffered";

/// What CI keeps of a run: `target/ci-artifacts/`.
fn artifacts() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target directory");
    let dir = target.join("ci-artifacts");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The run every test here reads: its report and the chart it drew.
struct Run {
    report: Value,
    json: PathBuf,
    svg: String,
}

/// Runs the benchmark once for all the tests of this file.
fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let scratch = TempDir::new().unwrap();
        let (a, b) = (scratch.path().join("a"), scratch.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let out = artifacts();
        let (svg, json) = (out.join("bench-chart.svg"), out.join("bench-chart.json"));
        let _ = fs::remove_file(&svg);
        // A peer that fails makes the exit code 1 and draws a row saying so; both are fine here.
        let output = Command::new(ZCP)
            .args(["bench", "--size", "8M", "--rounds", "2", "--compare", "--json", "--quiet"])
            .args(["--methods", PAIRS, "--dir"])
            .arg(&a)
            .arg("--dir")
            .arg(&b)
            .arg("--export-svg")
            .arg(&svg)
            .timeout(LIMIT)
            .output()
            .expect("running zcp bench");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let report = crate::util::parse_json(&stdout, &stderr);
        fs::write(&json, &stdout).unwrap();
        let svg = fs::read_to_string(&svg)
            .unwrap_or_else(|e| panic!("no SVG from the run ({e}); stderr:\n{stderr}"));
        Run { report, json, svg }
    })
}

fn dirs(report: &Value) -> &Vec<Value> {
    report["dirs"].as_array().unwrap_or_else(|| panic!("no dirs in {report:#}"))
}

/// The measured pairs of every directory.
fn measured(report: &Value) -> impl Iterator<Item = &Value> {
    dirs(report)
        .iter()
        .flat_map(|d| d["pairs"].as_array().into_iter().flatten())
        .filter(|p| p["status"] == "ok")
}

fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg)
        .unwrap_or_else(|e| panic!("the SVG is not well-formed XML: {e}"))
}

/// The text of every `<text>` element, trimmed.
fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().trim().to_string())
        .collect()
}

/// How many `<rect>` elements each of the chart's bar fills has.
fn bars(doc: &roxmltree::Document) -> HashMap<&'static str, usize> {
    let fills: HashMap<String, &str> = CHART_FILLS
        .iter()
        .map(|(name, (r, g, b))| (format!("#{r:02X}{g:02X}{b:02X}"), *name))
        .collect();
    let mut counts: HashMap<&str, usize> = CHART_FILLS.iter().map(|(name, _)| (*name, 0)).collect();
    for rect in doc.descendants().filter(|n| n.has_tag_name("rect")) {
        if let Some(name) = rect.attribute("fill").and_then(|f| fills.get(f)) {
            *counts.entry(name).or_default() += 1;
        }
    }
    counts
}

/// `25.57 MiB/s`, as the chart and the table write a rate.
fn rate(bytes_per_s: f64) -> String {
    format!("{}/s", format_size(bytes_per_s as u64, BINARY))
}

#[test]
fn the_chart_has_a_bar_per_pair_and_directory_and_the_runs_numbers() {
    let run = run();
    let doc = parse(&run.svg);
    let svg = doc.root_element();
    assert!(svg.has_tag_name("svg"), "the root is <{}>", svg.tag_name().name());
    assert_eq!(svg.attribute("width"), Some("1600"));
    let texts = texts(&doc);
    let has = |what: &str| texts.iter().any(|t| t == what);
    let report = &run.report;
    let mut want: HashMap<&str, usize> = HashMap::new();
    for pair in measured(report) {
        let name = pair["name"].as_str().unwrap_or_default();
        let ours = pair["kind"] == "zcp";
        *want.entry(if ours { "pair" } else { "reference" }).or_default() += 1;
        *want.entry("cpu send").or_default() += 1;
        *want.entry("cpu recv").or_default() += 1;
        assert!(has(name), "no name {name:?} in {texts:#?}");
        let median = pair["throughput_bytes_per_s"]["median"].as_f64().unwrap();
        assert!(has(&rate(median)), "no rate {} of {name} in {texts:#?}", rate(median));
        let cpu = |side: &str| pair[side]["cpu_s_per_gib"].as_f64().unwrap();
        let shares = format!("{:.2} + {:.2}", cpu("send"), cpu("recv"));
        assert!(has(&shares), "no CPU shares {shares} of {name} in {texts:#?}");
        if let (Some(send), Some(recv)) =
            (pair["send"]["syscalls"].as_u64(), pair["recv"]["syscalls"].as_u64())
        {
            *want.entry("syscalls send").or_default() += 1;
            *want.entry("syscalls recv").or_default() += 1;
            assert!(has(&send.to_string()) && has(&recv.to_string()), "{name}: {texts:#?}");
        }
    }
    // Two directories, each with both pairs and zcp's ceiling set apart from them.
    assert_eq!(want.get("pair"), Some(&4), "{report:#}");
    assert!(want.get("reference").is_some_and(|n| *n >= 2), "{report:#}");
    let counted = bars(&doc);
    for (fill, _) in CHART_FILLS {
        assert_eq!(counted[fill], want.get(fill).copied().unwrap_or(0), "bars of {fill}");
    }
    assert_reference_rows_are_below_the_line(&doc, report);
    for dir in dirs(report) {
        let copies = format!("copies in {}", dir["dir"].as_str().unwrap());
        assert!(has(&copies), "no heading {copies:?} in {texts:#?}");
    }
    let first = &dirs(report)[0];
    let caption = |prefix: &str| {
        let line = texts.iter().find(|t| t.starts_with(prefix));
        line.unwrap_or_else(|| panic!("no {prefix:?} line in {texts:#?}")).clone()
    };
    let machine = caption("Machine: ");
    for key in ["machine", "kernel"] {
        assert!(machine.contains(first[key].as_str().unwrap()), "{machine} lacks {key}");
    }
    assert!(machine.contains(&format!("{} cores", first["cores"])), "{machine}");
    // The command line may be wrapped over several lines, up to the next part of the caption.
    let from = texts.iter().position(|t| t.starts_with("Command: ")).expect("a command line");
    let to = texts.iter().position(|t| t.starts_with("Throughput: ")).expect("the method");
    let command = texts[from..to].join(" ");
    assert_eq!(command, format!("Command: {}", first["command"].as_str().unwrap()));
    assert!(caption("zcp bench: ").contains("8 MiB of random bytes, 2 rounds"), "{texts:#?}");
}

/// In each directory's group, zcp's pairs are above the line that sets the ceiling and the other
/// tools apart, and those below it.
fn assert_reference_rows_are_below_the_line(doc: &roxmltree::Document, report: &Value) {
    // The y of every <text> saying `what`, top to bottom: one per directory, in order.
    let ys = |what: &str| {
        let mut ys: Vec<f64> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text") && n.text().is_some_and(|t| t.trim() == what))
            .filter_map(|n| n.attribute("y")?.parse().ok())
            .collect();
        ys.sort_by(f64::total_cmp);
        ys
    };
    let lines = ys("ceiling and other tools");
    assert_eq!(lines.len(), 2, "one line per directory");
    for (i, dir) in dirs(report).iter().enumerate() {
        let (line, next) = (lines[i], lines.get(i + 1).copied().unwrap_or(f64::INFINITY));
        for pair in dir["pairs"].as_array().unwrap() {
            let name = pair["name"].as_str().unwrap();
            let y = ys(name)[i];
            match pair["kind"].as_str() {
                Some("zcp") => assert!(y < line, "{name} is below the line"),
                _ => assert!(line < y && y < next, "{name} is not below its line"),
            }
        }
    }
}

#[test]
fn the_chart_is_self_contained() {
    let doc = parse(&run().svg);
    let drawn = ["svg", "rect", "text", "polyline", "line", "path", "circle", "polygon"];
    for node in doc.descendants().filter(|n| n.is_element()) {
        let tag = node.tag_name().name();
        assert!(drawn.contains(&tag), "<{tag}> in the chart");
        for attribute in node.attributes() {
            let value = attribute.value();
            assert!(!attribute.name().contains("href"), "<{tag} {}>", attribute.name());
            assert!(!value.contains("url(") && !value.contains("://"), "<{tag}> {value}");
        }
    }
}

#[test]
fn a_saved_report_draws_the_same_chart() {
    let run = run();
    let out = TempDir::new().unwrap();
    let svg = out.path().join("again.svg");
    let assert = Command::new(ZCP)
        .args(["bench", "--from-json"])
        .arg(&run.json)
        .arg("--export-svg")
        .arg(&svg)
        .timeout(LIMIT)
        .assert()
        .success();
    let again = fs::read_to_string(&svg).expect("the SVG was written");
    assert!(again == run.svg, "the saved report drew another chart");
    // The table is printed again too, for each directory.
    let table = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(table.matches("sendfile:splice").count(), 2, "{table}");
}

#[test]
fn chromium_renders_the_chart_to_a_png() {
    let Some(chromium) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| unusable(c, &["--version"]).is_none())
    else {
        return skip("chromium is not installed (Debian: apt-get install chromium)");
    };
    let run = run();
    let height: u32 = parse(&run.svg).root_element().attribute("height").unwrap().parse().unwrap();
    let svg = artifacts().join("bench-chart.svg");
    let png = artifacts().join("bench-chart.png");
    let _ = fs::remove_file(&png);
    let profile = TempDir::new().unwrap();
    let assert = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size=1600,{height}"))
        .arg(format!("file://{}", svg.display()))
        .timeout(Duration::from_secs(120))
        .assert()
        .success()
        .stderr(contains("Page load failed").not());
    let bytes = fs::read(&png).unwrap_or_else(|e| {
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        panic!("chromium wrote no PNG ({e}):\n{stderr}")
    });
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((be(16), be(20)), (1600, height), "the PNG's width and height");
    // A blank page of this size compresses to a few KiB; bars, hatching and text do not.
    assert!(bytes.len() > 40 << 10, "the PNG has {} bytes: nothing drawn?", bytes.len());
}

/// The SVG `zcp bench --from-json` draws from `report`, saved to a file, within `limit`.
fn drawn(report: &Value, limit: Duration) -> String {
    let dir = TempDir::new().unwrap();
    let (json, svg) = (dir.path().join("report.json"), dir.path().join("chart.svg"));
    fs::write(&json, report.to_string()).unwrap();
    Command::new(ZCP)
        .args(["bench", "--quiet", "--from-json"])
        .arg(&json)
        .arg("--export-svg")
        .arg(&svg)
        .timeout(limit)
        .assert()
        .success();
    fs::read_to_string(&svg).unwrap()
}

#[test]
fn text_from_a_peer_is_escaped_in_the_chart() {
    let mut report = run().report.clone();
    let hostile = "nc: \u{1b}[31mred</text><script>x</script> & \u{7}";
    let pairs = report["dirs"][0]["pairs"].as_array_mut().unwrap();
    let peer = pairs.iter_mut().find(|p| p["kind"] == "peer").expect("a peer row");
    peer["status"] = "failed".into();
    peer["failed_round"] = 1.into();
    peer["error"] = hostile.into();
    let text = drawn(&report, LIMIT);
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "a control character in the SVG");
    let doc = parse(&text);
    let texts = texts(&doc);
    let shown = "failed in round 1: nc: \\e[31mred</text><script>x</script> & \\x07";
    assert!(texts.iter().any(|t| t == shown), "{texts:#?}");
    assert!(!doc.descendants().any(|n| n.has_tag_name("script")));
}

#[test]
fn an_svg_that_cannot_be_written_fails_before_measuring() {
    let scratch = TempDir::new().unwrap();
    let out = TempDir::new().unwrap();
    // Measuring this would outlast the limit: the error must come first.
    let long = ["bench", "--size", "64M", "--rounds", "1000", "--quiet", "--dir"];
    Command::new(ZCP)
        .args(long)
        .arg(scratch.path())
        .arg("--export-svg")
        .arg(out.path().join("no/such/dir/chart.svg"))
        .timeout(Duration::from_secs(60))
        .assert()
        .code(7)
        .stderr(contains("chart.svg"));
    assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 0, "it measured");
}

#[test]
fn an_svg_onto_a_directory_leaves_no_temporary_file() {
    let run = run();
    let out = TempDir::new().unwrap();
    fs::create_dir(out.path().join("chart.svg")).unwrap();
    Command::new(ZCP)
        .args(["bench", "--quiet", "--from-json"])
        .arg(&run.json)
        .arg("--export-svg")
        .arg(out.path().join("chart.svg"))
        .timeout(LIMIT)
        .assert()
        .code(7)
        .stderr(contains("chart.svg"));
    let names: Vec<_> = fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["chart.svg"], "a temporary file was left beside it");
}

#[test]
fn a_report_with_absurd_numbers_still_draws() {
    let mut report = run().report.clone();
    let pairs = report["dirs"][0]["pairs"].as_array_mut().unwrap();
    let range = serde_json::json!({ "median": -5.0, "min": -10.0, "max": 1e300 });
    pairs[0]["throughput_bytes_per_s"] = range;
    pairs[0]["send"]["syscalls"] = 0.into();
    pairs[1]["send"]["cpu_s_per_gib"] = 1e308.into();
    pairs[1]["recv"]["syscalls"] = u64::MAX.into();
    let text = drawn(&report, Duration::from_secs(60));
    let doc = parse(&text);
    let width = |n: roxmltree::Node| n.attribute("width").and_then(|w| w.parse::<i64>().ok());
    let widest = doc.descendants().filter(|n| n.has_tag_name("rect")).skip(1).filter_map(width);
    assert!(widest.max().unwrap_or(0) < 1600, "a bar wider than the picture");
}
