//! `zcp doctor` end to end, driving the real binary: on this (Linux) machine sendfile and
//! splice work in a temp dir, a file PATH is also probed directly and left untouched, scratch
//! files are removed, and a missing PATH is a one-line error with exit code 7.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use predicates::str::contains;
use serde_json::Value;
use tempfile::TempDir;

use crate::util::{ZCP, set_mtime};

const LIMIT: Duration = Duration::from_secs(60);

fn doctor(args: &[&Path]) -> Assert {
    Command::new(ZCP).arg("doctor").args(args).timeout(LIMIT).assert()
}

fn doctor_json(path: &Path) -> Value {
    let assert =
        Command::new(ZCP).args(["doctor", "--json"]).arg(path).timeout(LIMIT).assert().success();
    let out = assert.get_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        panic!("stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{stderr}")
    })
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn sendfile_and_splice_work_in_a_temp_dir() {
    let dir = TempDir::new().unwrap();
    let report = doctor_json(dir.path());
    let p = &report["paths"][0];
    assert_eq!(p["path"], dir.path().to_string_lossy().as_ref(), "{report:#}");
    assert_eq!(p["kind"], "directory");
    assert_eq!(p["sendfile"]["works"], true, "{p:#}");
    assert_eq!(p["sendfile"]["bytes"], 256 << 10, "{p:#}");
    assert_eq!(p["splice"]["works"], true, "{p:#}");
    assert_eq!(p["splice"]["path"], "splice", "{p:#}");
    assert_eq!(p["send_path"], "sendfile", "{p:#}");
    assert_eq!(p["recv_path"], "splice", "{p:#}");
    let verdict = p["verdict"].as_str().unwrap_or_default();
    assert!(verdict.ends_with("send by sendfile, receive by splice"), "{verdict}");
    assert!(report["kernel"].as_str().is_some_and(|k| !k.is_empty()), "{report:#}");
    assert!(report["pipe"]["granted"].as_u64().is_some_and(|n| n > 0), "{report:#}");
    assert!(report["sockets"]["tcp_wmem"].is_array(), "{report:#}");
    assert!(names_in(dir.path()).is_empty(), "scratch files left: {:?}", names_in(dir.path()));
}

#[test]
fn a_file_path_is_also_probed_directly_and_left_untouched() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("data.bin");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&file, &data).unwrap();
    let before = fs::metadata(&file).unwrap();
    let report = doctor_json(&file);
    let p = &report["paths"][0];
    assert_eq!(p["kind"], "file", "{p:#}");
    assert_eq!(p["tested_in"], dir.path().to_string_lossy().as_ref(), "{p:#}");
    assert_eq!(p["sendfile_direct"]["works"], true, "{p:#}");
    assert_eq!(p["sendfile_direct"]["bytes"], data.len(), "{p:#}");
    assert_eq!(p["send_path"], "sendfile", "{p:#}");
    assert_eq!(fs::read(&file).unwrap(), data, "doctor changed the file");
    let after = fs::metadata(&file).unwrap();
    assert_eq!((after.mtime(), after.mtime_nsec()), (before.mtime(), before.mtime_nsec()));
    assert_eq!(names_in(dir.path()), ["data.bin"]);
}

#[test]
fn human_output_gives_a_verdict_per_path() {
    let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let assert = doctor(&[a.path(), b.path()]).success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for dir in [a.path(), b.path()] {
        let verdict = format!("{}: send by sendfile, receive by splice", dir.display());
        assert!(stderr.contains(&verdict), "no verdict for {}:\n{stderr}", dir.display());
    }
    assert!(stderr.contains("pipe-max-size"), "{stderr}");
    assert!(stderr.contains("tcp_wmem"), "{stderr}");
    assert!(assert.get_output().stdout.is_empty(), "human output goes to stderr");
}

#[test]
fn a_missing_path_is_named_with_exit_code_7() {
    let assert = doctor(&[Path::new("/no/such/path")]).code(7).stderr(contains("/no/such/path"));
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "not one line:\n{stderr}");
}

#[test]
fn a_missing_path_stops_before_any_probe() {
    let dir = TempDir::new().unwrap();
    // A probe creates and removes scratch files in the directory, which moves its mtime.
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    set_mtime(dir.path(), long_ago);
    let assert = Command::new(ZCP)
        .args(["doctor", "--json"])
        .arg(dir.path())
        .arg("/no/such/path")
        .timeout(LIMIT)
        .assert()
        .code(7)
        .stderr(contains("/no/such/path"));
    assert!(assert.get_output().stdout.is_empty(), "findings were printed for a missing path");
    let mtime = fs::metadata(dir.path()).unwrap().modified().unwrap();
    assert_eq!(mtime, long_ago, "a directory was probed before the missing path was rejected");
    assert!(names_in(dir.path()).is_empty());
}

#[test]
fn kernel_tls_is_reported_as_the_kernel_answers() {
    let dir = TempDir::new().unwrap();
    let ktls = doctor_json(dir.path())["ktls"].clone();
    let ulps = fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp").unwrap_or_default();
    // The kernel lists "tls" once its module is loaded; zcp's probe loads it if it can.
    let has_tls = ktls["available"] == true;
    if has_tls {
        assert!(!ktls["ciphers"].as_array().unwrap().is_empty(), "{ktls:#}");
    } else {
        assert!(!ulps.split_whitespace().any(|u| u == "tls"), "kernel lists tls: {ulps}");
        assert!(ktls["errno_name"].is_string(), "{ktls:#}");
        doctor(&[dir.path()])
            .success()
            .stderr(contains("ktls      not available: setsockopt(TCP_ULP"));
    }
}
