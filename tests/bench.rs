//! `zcp bench` end to end, driving the real binary with small files: which rows it reports,
//! that they name the paths the transfer reports name, and that it leaves nothing behind (also
//! when stopped by a signal) and never touches a user's file. Behaviour only, never speed.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use serde_json::Value;
use tempfile::TempDir;

use crate::util::{ZCP, skip};

/// A whole small benchmark, debug build, loaded machine.
const LIMIT: Duration = Duration::from_secs(180);
const DEFAULT_PAIRS: [&str; 3] = ["sendfile:splice", "splice:splice", "buffered:buffered"];
const PEERS: [&str; 6] = [
    "nc",
    "socat -b 131072",
    "iperf3 (memory)",
    "zcp send --http | curl",
    "python3 http.server | curl",
    "memory | curl (ceiling)",
];

fn bench(dir: &Path, extra: &[&str]) -> Assert {
    Command::new(ZCP)
        .args(["bench", "--rounds", "1", "--json", "--dir"])
        .arg(dir)
        .args(extra)
        .timeout(LIMIT)
        .assert()
}

fn stdout_json(assert: &Assert) -> Value {
    let out = assert.get_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        panic!("stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{stderr}")
    })
}

fn stderr(assert: &Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

fn pairs(report: &Value) -> &Vec<Value> {
    report["pairs"].as_array().unwrap_or_else(|| panic!("no pairs array in {report:#}"))
}

fn pair<'a>(report: &'a Value, name: &str) -> &'a Value {
    pairs(report)
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no pair {name:?} in {report:#}"))
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.map(|e| e.file_name()))
        .collect();
    assert!(left.is_empty(), "bench left files behind in {}: {left:?}", dir.display());
}

#[test]
fn default_pairs_report_their_paths_and_leave_nothing_behind() {
    let dir = TempDir::new().unwrap();
    let assert = bench(dir.path(), &["--size", "8M"]).success();
    let report = stdout_json(&assert);
    let names: Vec<&str> = pairs(&report).iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, DEFAULT_PAIRS);
    for name in DEFAULT_PAIRS {
        let p = pair(&report, name);
        let (send, recv) = name.split_once(':').unwrap();
        assert_eq!(p["status"], "ok", "{name}: {p:#}");
        assert_eq!(p["send_path"], send, "{name}: {p:#}");
        assert_eq!(p["recv_path"], recv, "{name}: {p:#}");
        let median = p["throughput_bytes_per_s"]["median"].as_f64().unwrap_or(0.0);
        assert!(median > 0.0, "{name}: no throughput in {p:#}");
        for side in ["send", "recv"] {
            assert!(p[side]["syscalls"].as_u64().unwrap_or(0) > 0, "{name} {side}: {p:#}");
            assert!(p[side]["peak_rss_bytes"].as_u64().unwrap_or(0) > 0, "{name} {side}: {p:#}");
        }
        assert!(p["cpu_s_per_gib"].as_f64().is_some(), "{name}: {p:#}");
    }
    assert_eq!(pair(&report, "buffered:buffered")["ratio_to_buffered"], 1.0);
    assert_eq!(report["file_bytes"], 8 << 20);
    assert_eq!(report["rounds"], 1);
    let table = stderr(&assert);
    for name in DEFAULT_PAIRS {
        assert!(table.contains(name), "table lacks {name}:\n{table}");
    }
    assert_empty(dir.path());
}

#[test]
fn a_tree_is_benchmarked_in_files_per_second_against_tar_and_nc() {
    let dir = TempDir::new().unwrap();
    let args =
        ["--files", "120", "--size", "3K", "--compare", "--methods", "auto:auto,sendfile:splice"];
    let assert = bench(dir.path(), &args).success();
    let report = stdout_json(&assert);
    assert_eq!(report["files"], 120, "{report:#}");
    assert_eq!(report["file_bytes"], 120 * 3 * 1024, "{report:#}");
    let names: Vec<&str> = pairs(&report).iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["auto:auto", "sendfile:splice", "tar | nc"], "only tar | nc moves trees");
    // Small files go in batches under auto; sendfile:splice moves each by itself.
    let paths = |name: &str| {
        (pair(&report, name)["send_path"].clone(), pair(&report, name)["recv_path"].clone())
    };
    assert_eq!(paths("auto:auto"), ("buffered".into(), "buffered".into()), "{report:#}");
    assert_eq!(paths("sendfile:splice"), ("sendfile".into(), "splice".into()), "{report:#}");
    for name in ["auto:auto", "sendfile:splice"] {
        let p = pair(&report, name);
        assert_eq!(p["status"], "ok", "{name}: {p:#}");
        assert!(p["files_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {p:#}");
    }
    let tar = pair(&report, "tar | nc");
    match tar["status"].as_str() {
        Some("ok") => assert!(tar["files_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{tar:#}"),
        Some("not installed") => skip("tar or nc is not installed (the row says so)"),
        _ => panic!("tar | nc failed: {tar:#}"),
    }
    let table = stderr(&assert);
    assert!(table.contains("a tree of 120 files of 3 KiB"), "{table}");
    assert!(table.contains("files/s"), "{table}");
    assert_empty(dir.path());
}

#[test]
fn compare_without_the_tools_shows_not_installed_rows() {
    let dir = TempDir::new().unwrap();
    let empty_path = TempDir::new().unwrap();
    let assert = Command::new(ZCP)
        .args(["bench", "--size", "1M", "--rounds", "1", "--json", "--compare"])
        .args(["--methods", "buffered:buffered", "--dir"])
        .arg(dir.path())
        .env("PATH", empty_path.path())
        .timeout(LIMIT)
        .assert()
        .success();
    let report = stdout_json(&assert);
    assert_eq!(pair(&report, "buffered:buffered")["status"], "ok", "{report:#}");
    // zcp's own ceiling needs no tool: `auto` with `--raw` at both ends, the copy verified.
    let ceiling = pair(&report, "auto:auto --raw (no checksum: ceiling)");
    assert_eq!(ceiling["status"], "ok", "{ceiling:#}");
    // The chart sets it apart from zcp's pairs by this, as the peers.
    assert_eq!(ceiling["kind"], "ceiling", "{ceiling:#}");
    assert_eq!(pair(&report, "buffered:buffered")["kind"], "zcp", "{report:#}");
    assert_eq!(
        (&ceiling["send_path"], &ceiling["recv_path"]),
        (&"sendfile".into(), &"splice".into())
    );
    let table = stderr(&assert);
    for name in PEERS {
        let p = pair(&report, name);
        assert_eq!(p["status"], "not installed", "{p:#}");
        assert_eq!(p["kind"], "peer", "{p:#}");
        assert!(p["throughput_bytes_per_s"].is_null(), "{p:#}");
        let row = table.lines().find(|l| l.starts_with(name));
        assert!(
            row.is_some_and(|r| r.contains("not installed")),
            "no 'not installed' row for {name}:\n{table}"
        );
    }
    assert_empty(dir.path());
}

#[test]
fn a_failing_peer_is_an_error_row_and_the_exit_code_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let tools = TempDir::new().unwrap();
    let nc = tools.path().join("nc");
    fs::write(&nc, "#!/bin/sh\necho 'nc: broken on purpose' >&2\nexit 3\n").unwrap();
    fs::set_permissions(&nc, fs::Permissions::from_mode(0o755)).unwrap();
    let assert = Command::new(ZCP)
        .args(["bench", "--size", "1M", "--rounds", "2", "--json", "--compare"])
        .args(["--methods", "buffered:buffered", "--dir"])
        .arg(dir.path())
        .env("PATH", tools.path())
        .timeout(LIMIT)
        .assert()
        .code(1);
    let report = stdout_json(&assert);
    let row = pair(&report, "nc");
    assert_eq!(row["status"], "failed", "{row:#}");
    assert_eq!(row["failed_round"], 1, "{row:#}");
    assert!(row["throughput_bytes_per_s"].is_null(), "a failed run has no number: {row:#}");
    let error = row["error"].as_str().unwrap_or_default();
    assert!(error.contains("broken on purpose") && error.contains("code 3"), "{error}");
    assert_eq!(pair(&report, "buffered:buffered")["runs"], 2, "{report:#}");
    let table = stderr(&assert);
    assert!(table.lines().any(|l| l.starts_with("nc") && l.contains("failed")), "{table}");
    assert_empty(dir.path());
}

#[test]
fn a_users_file_is_sent_and_left_untouched() {
    let home = TempDir::new().unwrap();
    let work = TempDir::new().unwrap();
    let file = home.path().join("video.mkv");
    let data: Vec<u8> =
        (0..3u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    fs::write(&file, &data).unwrap();
    let before = fs::metadata(&file).unwrap();
    let file_arg = file.to_str().expect("a UTF-8 temp path");
    let methods = "sendfile:splice,buffered:buffered";
    let assert = bench(work.path(), &["--methods", methods, "--file", file_arg]).success();
    let report = stdout_json(&assert);
    assert_eq!(report["file_bytes"], data.len());
    assert_eq!(pair(&report, "sendfile:splice")["status"], "ok", "{report:#}");
    let after = fs::metadata(&file).expect("the user's file is still there");
    assert_eq!(fs::read(&file).unwrap(), data, "the user's file changed");
    assert_eq!((after.mtime(), after.mtime_nsec()), (before.mtime(), before.mtime_nsec()));
    assert_eq!(after.mode(), before.mode());
    let names: Vec<_> =
        fs::read_dir(home.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["video.mkv"], "bench wrote beside the user's file");
    assert_empty(work.path());
}

#[test]
fn markdown_export_names_the_machine_and_the_command() {
    let dir = TempDir::new().unwrap();
    let out = TempDir::new().unwrap();
    let md = out.path().join("results.md");
    let assert = Command::new(ZCP)
        .args(["bench", "--size", "1M", "--rounds", "1", "--quiet"])
        .args(["--methods", "splice:buffered", "--dir"])
        .arg(dir.path())
        .arg("--export-markdown")
        .arg(&md)
        .timeout(LIMIT)
        .assert()
        .success();
    assert!(stderr(&assert).is_empty(), "--quiet printed: {}", stderr(&assert));
    let text = fs::read_to_string(&md).expect("the Markdown file was written");
    assert!(text.contains("| pair |"), "{text}");
    assert!(text.contains("| splice:buffered | splice | buffered |"), "{text}");
    assert!(text.contains("cores"), "{text}");
    assert!(text.contains("`zcp bench --size 1M"), "{text}");
    assert_empty(dir.path());
}

#[test]
fn an_unknown_method_pair_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    bench(dir.path(), &["--methods", "sendfile:sendfile"])
        .code(2)
        .stderr(contains("sendfile:sendfile"));
    assert_empty(dir.path());
}

/// Starts a long benchmark, waits until its runs have started, sends `signal` to the bench
/// process alone, and checks how it ended.
fn stop_mid_run(signal: nix::sys::signal::Signal, expected_code: i32) {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let dir = TempDir::new().unwrap();
    let mut child = StdCommand::new(ZCP)
        .args(["bench", "--size", "16M", "--rounds", "1000", "--quiet"])
        .args(["--methods", "buffered:buffered", "--dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawning zcp bench");
    let deadline = Instant::now() + LIMIT;
    while !has_run_dir(dir.path()) {
        assert!(Instant::now() < deadline, "the benchmark never started a run");
        // Polling for the run directory, bounded by the deadline.
        thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), signal).expect("signalling the benchmark");
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling zcp bench") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the benchmark did not stop after {signal}");
        }
        // Polling for the exit, bounded by the deadline.
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(expected_code));
    assert_empty(dir.path());
    let survivors = processes_mentioning(dir.path());
    assert!(survivors.is_empty(), "children outlived the benchmark: {survivors:?}");
}

/// Command lines of running processes that name `path` (a receiver's --output does).
fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let Ok(procs) = fs::read_dir("/proc") else { return Vec::new() };
    procs
        .flatten()
        .filter_map(|p| fs::read(p.path().join("cmdline")).ok())
        .map(|cmd| String::from_utf8_lossy(&cmd).replace('\0', " "))
        .filter(|cmd| cmd.contains(&needle))
        .collect()
}

/// Whether the benchmark's scratch directory holds a run's directory yet.
fn has_run_dir(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else { return false };
    entries.flatten().any(|scratch| {
        fs::read_dir(scratch.path()).is_ok_and(|mut inner| {
            inner.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("run-")))
        })
    })
}

#[test]
fn ctrl_c_stops_with_130_and_removes_everything() {
    stop_mid_run(nix::sys::signal::Signal::SIGINT, 130);
}

#[test]
fn sigterm_stops_with_143_and_removes_everything() {
    stop_mid_run(nix::sys::signal::Signal::SIGTERM, 143);
}

#[test]
fn a_failing_tar_pipeline_leaves_no_process_behind() {
    use std::os::unix::fs::PermissionsExt;
    let Some(real_nc) = ["/usr/bin/nc", "/bin/nc"].into_iter().find(|p| Path::new(p).exists())
    else {
        return skip("nc is not installed");
    };
    let dir = TempDir::new().unwrap();
    let tools = TempDir::new().unwrap();
    // An nc that listens as usual but fails as the sender, so the receiving pipeline waits.
    let nc = tools.path().join("nc");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = -N ] && {{ echo 'nc: no -N' >&2; exit 3; }}; done\nexec {real_nc} \"$@\"\n"
    );
    fs::write(&nc, script).unwrap();
    fs::set_permissions(&nc, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", tools.path().display(), std::env::var("PATH").unwrap_or_default());
    let assert = Command::new(ZCP)
        .args(["bench", "--files", "20", "--rounds", "1", "--json", "--compare"])
        .args(["--methods", "auto:auto", "--dir"])
        .arg(dir.path())
        .env("PATH", path)
        .timeout(LIMIT)
        .assert()
        .code(1);
    let report = stdout_json(&assert);
    assert_eq!(pair(&report, "tar | nc")["status"], "failed", "{report:#}");
    assert_empty(dir.path());
    let survivors = processes_mentioning(dir.path());
    assert!(survivors.is_empty(), "the pipeline outlived the benchmark: {survivors:?}");
}

#[test]
fn the_http_rows_fetch_the_file_with_curl_from_zcp_python_and_memory() {
    for (tool, args) in [("curl", "--version"), ("python3", "--version")] {
        if let Some(why) = crate::util::unusable(tool, &[args]) {
            return skip(&why);
        }
    }
    let dir = TempDir::new().unwrap();
    let assert = Command::new(ZCP)
        .args(["bench", "--size", "4M", "--rounds", "1", "--json", "--compare"])
        .args(["--methods", "buffered:buffered", "--dir"])
        .arg(dir.path())
        .timeout(LIMIT)
        .assert();
    let report = stdout_json(&assert);
    // "ok" means curl's copy had the file's size (a short body fails the row).
    let rows = ["zcp send --http | curl", "python3 http.server | curl", "memory | curl (ceiling)"];
    for name in rows {
        let row = pair(&report, name);
        assert_eq!(row["status"], "ok", "{row:#}");
        let median = row["throughput_bytes_per_s"]["median"].as_f64();
        assert!(median.is_some_and(|t| t > 0.0), "{row:#}");
    }
    assert_empty(dir.path());
}

#[test]
fn fsync_rows_compare_recv_with_recv_fsync_on_a_tree() {
    let dir = TempDir::new().unwrap();
    let assert = bench(dir.path(), &["--fsync", "--files", "40", "--size", "4K"]).success();
    let report = stdout_json(&assert);
    assert_eq!(report["files"], 40, "{report:#}");
    let names: Vec<&str> = pairs(&report).iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["recv", "recv --fsync"], "{report:#}");
    for name in names {
        let p = pair(&report, name);
        assert_eq!(p["status"], "ok", "{name}: {p:#}");
        assert!(p["files_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {p:#}");
        assert!(p["source_blocks"].is_null(), "only --sparse counts blocks: {p:#}");
    }
    assert!(stderr(&assert).contains("recv --fsync"), "{}", stderr(&assert));
    assert_empty(dir.path());
}

#[test]
fn fsync_is_not_combined_with_method_pairs() {
    let dir = TempDir::new().unwrap();
    bench(dir.path(), &["--fsync", "--methods", "auto:auto"])
        .code(2)
        .stderr(contains("--fsync").and(contains("--methods")));
}

#[test]
fn sparse_rows_report_the_blocks_of_source_and_copy() {
    let dir = TempDir::new().unwrap();
    // 1 MiB of data in 8 extents over 64 MiB; a 4 KiB block holds 8 sectors.
    let assert = bench(dir.path(), &["--sparse", "--size", "1M"]).success();
    let report = stdout_json(&assert);
    let names: Vec<&str> = pairs(&report).iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["sparse", "dense", "sparse --no-sparse"], "{report:#}");
    let sizes = (report["file_bytes"].as_u64(), report["sparse_bytes"].as_u64());
    assert_eq!(sizes, (Some(1 << 20), Some(64 << 20)), "{report:#}");
    let blocks = |name: &str| {
        let p = pair(&report, name);
        assert_eq!(p["status"], "ok", "{name}: {p:#}");
        let count = |key: &str| p[key].as_u64().unwrap_or_else(|| panic!("no {key}: {p:#}"));
        (count("source_blocks"), count("copy_blocks"))
    };
    let data = (1 << 20) / 512;
    let (sparse_source, sparse_copy) = blocks("sparse");
    let (dense_source, dense_copy) = blocks("dense");
    let (_, full_copy) = blocks("sparse --no-sparse");
    assert!(sparse_source < 2 * data, "the source has holes: {sparse_source}");
    assert!(sparse_copy < 2 * data, "the copy keeps them: {sparse_copy}");
    assert!(dense_source >= data && dense_copy >= data, "{dense_source} {dense_copy}");
    assert!(full_copy >= 64 * data, "--no-sparse writes the zeros: {full_copy}");
    let table = stderr(&assert);
    assert!(table.contains("sparse: allocated 512-byte blocks: source"), "{table}");
    assert_empty(dir.path());
}

#[test]
fn encrypt_adds_encrypted_pairs_and_socat_with_tls() {
    for tool in ["socat", "openssl"] {
        if let Some(why) =
            crate::util::unusable(tool, &["-h"]).filter(|w| w.contains("not installed"))
        {
            return skip(&why);
        }
    }
    let dir = TempDir::new().unwrap();
    let args = ["--size", "4M", "--methods", "auto:auto", "--encrypt"];
    let assert = bench(dir.path(), &[&args[..], &["--compare"]].concat()).success();
    let report = stdout_json(&assert);
    let names: Vec<&str> = pairs(&report).iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.starts_with(&["auto:auto", "auto:auto --encrypt"]), "{names:?}");
    assert!(names.contains(&"socat OPENSSL -b 131072"), "{names:?}");
    for name in ["auto:auto --encrypt", "socat OPENSSL -b 131072"] {
        assert_eq!(pair(&report, name)["status"], "ok", "{name}: {report:#}");
    }
    assert_empty(dir.path());
}

#[test]
fn a_saved_report_is_printed_again_as_it_was_measured() {
    let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let out = TempDir::new().unwrap();
    let assert = Command::new(ZCP)
        .args(["bench", "--rounds", "2", "--json", "--size", "1M", "--methods", "splice:buffered"])
        .arg("--dir")
        .arg(a.path())
        .arg("--dir")
        .arg(b.path())
        .timeout(LIMIT)
        .assert()
        .success();
    let saved = out.path().join("bench.json");
    fs::write(&saved, &assert.get_output().stdout).unwrap();
    let md = out.path().join("again.md");
    let again = Command::new(ZCP)
        .args(["bench", "--json", "--from-json"])
        .arg(&saved)
        .arg("--export-markdown")
        .arg(&md)
        .timeout(LIMIT)
        .assert()
        .success();
    assert_eq!(stdout_json(&again), stdout_json(&assert), "the same report, both directories");
    let table = stderr(&again);
    assert_eq!(table.matches("splice:buffered").count(), 2, "one table per directory: {table}");
    let markdown = fs::read_to_string(&md).expect("the Markdown was written");
    assert!(markdown.contains("| splice:buffered | splice | buffered |"), "{markdown}");
    assert!(markdown.contains("`zcp bench --rounds 2 --json --size 1M"), "its command: {markdown}");
}

#[test]
fn a_file_that_is_not_a_report_is_a_usage_error() {
    let dir = TempDir::new().unwrap();
    let (json, md) = (dir.path().join("notes.json"), dir.path().join("out.md"));
    fs::write(&json, r#"{"pairs": "none"}"#).unwrap();
    let assert = Command::new(ZCP)
        .args(["bench", "--from-json"])
        .arg(&json)
        .arg("--export-markdown")
        .arg(&md)
        .timeout(LIMIT)
        .assert()
        .code(2)
        .stderr(contains("notes.json: not a zcp bench report"));
    assert_eq!(stderr(&assert).lines().count(), 1, "{}", stderr(&assert));
    assert!(!md.exists(), "Markdown from no report");
    let missing = dir.path().join("missing.json");
    Command::new(ZCP)
        .args(["bench", "--from-json"])
        .arg(&missing)
        .timeout(LIMIT)
        .assert()
        .code(7)
        .stderr(contains("missing.json"));
}

#[test]
fn from_json_measures_nothing_so_takes_no_measuring_options() {
    Command::new(ZCP)
        .args(["bench", "--from-json", "r.json", "--size", "8M"])
        .timeout(LIMIT)
        .assert()
        .code(2)
        .stderr(contains("--from-json").and(contains("--size")));
}

#[test]
fn star_compares_three_ways_and_leaves_nothing_behind() {
    let dir = TempDir::new().unwrap();
    let ran = bench(dir.path(), &["--star", "2", "--size", "1M"]).success();
    let json = stdout_json(&ran);
    let names: Vec<&str> =
        json["rows"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    let expected =
        ["2 zcp send, one after another", "2 zcp send at once", "1 zcp send --to x2 (star)"];
    assert_eq!(names, expected, "{json:#}");
    for row in json["rows"].as_array().unwrap() {
        assert!(row["sender_cpu_s"].as_f64().unwrap() > 0.0, "{row:#}");
        assert!(row["wall_s"].as_f64().unwrap() > 0.0, "{row:#}");
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "the workspace is removed");
    bench(dir.path(), &["--star", "2", "--compare"]).code(2);
}

/// `--against` an older build: one from before `--resume-wait` (a stand-in that refuses the
/// option, as clap would, and runs this zcp otherwise) still runs every round.
#[test]
fn against_a_build_without_resume_wait_runs_its_rounds() {
    let dir = TempDir::new().unwrap();
    let old = dir.path().join("zcp-old");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --resume-wait ] && {{ echo \"error: unexpected \
         argument '--resume-wait' found\" >&2; exit 2; }}; done\n\
         [ \"$1 $2\" = \"recv --help\" ] && {{ {ZCP} recv --help | grep -v resume-wait; exit 0; }}\n\
         exec {ZCP} \"$@\"\n"
    );
    fs::write(&old, script).unwrap();
    fs::set_permissions(&old, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let against = format!("old={}", old.display());
    let with_old =
        bench(dir.path(), &["--size", "1M", "--methods", "sendfile:splice", "--against", &against])
            .success();
    let report = stdout_json(&with_old);
    let row = pair(&report, "sendfile:splice @ old");
    assert_eq!(row["status"], "ok", "{row:#}");
}
