//! All printing of `zcp doctor`: the report a person reads on stderr and the one JSON object
//! for stdout. It only formats `Findings`.

use humansize::{BINARY, format_size};
use serde::Serialize;

use super::system::{KernelTls, PipeSizes, SocketLimits};
use super::{Findings, PathFindings, PathKind, Probe};
use crate::error::errno_name;

/// The findings for stderr: the machine and its limits, then each path and its verdict.
pub fn human(f: &Findings) -> String {
    let mut out = format!(
        "machine   {}\npipes     {}\nsockets   {}\nktls      {}\n",
        f.machine.describe(),
        pipes(&f.pipe),
        sockets(&f.sockets),
        kernel_tls(&f.ktls)
    );
    for p in &f.paths {
        out.push_str(&path_block(p));
    }
    out.trim_end().to_string()
}

fn path_block(p: &PathFindings) -> String {
    let fs = &p.file_system;
    let mut out = format!("\n{} ({}, {fs})\n", p.path.display(), kind(p.kind));
    out.push_str(&format!("  sendfile  {fs} file to TCP: {}\n", outcome(&p.sendfile, false)));
    if let Some(direct) = &p.sendfile_direct {
        out.push_str(&format!("  sendfile  this file to TCP: {}\n", outcome(direct, false)));
    }
    if let Some(fallback) = &p.send_fallback {
        out.push_str(&format!("  send      zcp's fallback: {}\n", outcome(fallback, true)));
    }
    out.push_str(&format!("  splice    TCP to pipe to {fs} file: {}\n", outcome(&p.splice, false)));
    if let Some(fallback) = &p.recv_fallback {
        out.push_str(&format!("  receive   zcp's fallback: {}\n", outcome(fallback, true)));
    }
    out.push_str(&format!("  verdict   {}\n", p.verdict()));
    out
}

fn kind(k: PathKind) -> &'static str {
    match k {
        PathKind::Directory => "directory",
        PathKind::File => "file",
        PathKind::Other => "not a regular file: its directory was tested",
    }
}

/// `works (256 KiB verified)`, or `FAILS: why (EINVAL)`; `with_path` names the path that
/// served, for the fallback probes where zcp chose it.
fn outcome(p: &Probe, with_path: bool) -> String {
    match (&p.error, p.data_path) {
        (None, Some(path)) if with_path => {
            format!("works by {path} ({} verified)", format_size(p.bytes, BINARY))
        }
        (None, _) => format!("works ({} verified)", format_size(p.bytes, BINARY)),
        (Some(error), _) => match p.errno.map(errno_name) {
            // io::Error says "(os error 22)"; the name says more.
            Some(name) if !error.contains(&name) => {
                let os_error = format!(" (os error {})", p.errno.unwrap_or_default());
                format!("FAILS: {} ({name})", error.replace(&os_error, ""))
            }
            _ => format!("FAILS: {error}"),
        },
    }
}

fn pipes(p: &PipeSizes) -> String {
    let max = p.max_size.map_or_else(|| "unknown".into(), |n| format_size(n, BINARY));
    let granted = match (p.granted, &p.error) {
        (Some(n), _) => format_size(n, BINARY),
        (None, Some(e)) => format!("nothing ({e})"),
        (None, None) => "unknown".into(),
    };
    format!(
        "pipe-max-size {max}; a new pipe asked for {} got {granted}",
        format_size(p.asked, BINARY)
    )
}

fn sockets(s: &SocketLimits) -> String {
    let triple = |v: &Option<Vec<u64>>| match v {
        Some(v) => v.iter().map(|n| format_size(*n, BINARY)).collect::<Vec<_>>().join(" / "),
        None => "unknown".into(),
    };
    let one = |v: Option<u64>| v.map_or_else(|| "unknown".into(), |n| format_size(n, BINARY));
    format!(
        "tcp_wmem {} · tcp_rmem {} (min / default / max) · wmem_max {} · rmem_max {}",
        triple(&s.tcp_wmem),
        triple(&s.tcp_rmem),
        one(s.wmem_max),
        one(s.rmem_max)
    )
}

/// Whether `--encrypt` keeps sendfile and splice here, and why not.
fn kernel_tls(k: &KernelTls) -> String {
    let ulp = k.available_ulp.as_deref().map_or_else(String::new, |u| {
        format!(" (tcp_available_ulp: {})", if u.is_empty() { "none" } else { u })
    });
    match (k.available, &k.errno_name, &k.error) {
        (true, _, _) if k.ciphers.is_empty() => format!(
            "the tls module loads but took no cipher's keys{ulp}: --encrypt seals records in user space"
        ),
        (true, _, _) => {
            format!("available: {}; --encrypt keeps sendfile and splice", k.ciphers.join(", "))
        }
        (false, Some(errno), _) => format!(
            "not available: setsockopt(TCP_ULP, \"tls\") fails ({errno}){ulp}; --encrypt seals \
             records in user space"
        ),
        (false, None, Some(e)) => format!("not probed: {e}"),
        (false, None, None) => "not probed".to_string(),
    }
}

/// The one JSON object for stdout; its keys are a contract.
pub fn json(f: &Findings) -> String {
    let view = JsonFindings {
        kernel: &f.machine.kernel,
        cpu: &f.machine.cpu,
        arch: &f.machine.arch,
        cores: f.machine.cores,
        pipe: &f.pipe,
        sockets: &f.sockets,
        ktls: &f.ktls,
        paths: f.paths.iter().map(JsonPath::of).collect(),
    };
    crate::report::json_text(&view)
}

#[derive(Serialize)]
struct JsonFindings<'a> {
    kernel: &'a str,
    cpu: &'a str,
    arch: &'a str,
    cores: usize,
    pipe: &'a PipeSizes,
    sockets: &'a SocketLimits,
    ktls: &'a KernelTls,
    paths: Vec<JsonPath<'a>>,
}

#[derive(Serialize)]
struct JsonPath<'a> {
    path: String,
    kind: &'static str,
    file_system: &'a str,
    tested_in: String,
    sendfile: JsonProbe<'a>,
    sendfile_direct: Option<JsonProbe<'a>>,
    splice: JsonProbe<'a>,
    send_fallback: Option<JsonProbe<'a>>,
    recv_fallback: Option<JsonProbe<'a>>,
    send_path: Option<&'static str>,
    recv_path: Option<&'static str>,
    verdict: String,
}

impl<'a> JsonPath<'a> {
    fn of(p: &'a PathFindings) -> Self {
        JsonPath {
            path: p.path.display().to_string(),
            kind: match p.kind {
                PathKind::Directory => "directory",
                PathKind::File => "file",
                PathKind::Other => "other",
            },
            file_system: &p.file_system,
            tested_in: p.tested_in.display().to_string(),
            sendfile: JsonProbe::of(&p.sendfile),
            sendfile_direct: p.sendfile_direct.as_ref().map(JsonProbe::of),
            splice: JsonProbe::of(&p.splice),
            send_fallback: p.send_fallback.as_ref().map(JsonProbe::of),
            recv_fallback: p.recv_fallback.as_ref().map(JsonProbe::of),
            send_path: p.send_path().map(|d| d.as_str()),
            recv_path: p.recv_path().map(|d| d.as_str()),
            verdict: p.verdict(),
        }
    }
}

#[derive(Serialize)]
struct JsonProbe<'a> {
    works: bool,
    path: Option<&'static str>,
    bytes: u64,
    error: Option<&'a str>,
    errno: Option<i32>,
    errno_name: Option<String>,
}

impl<'a> JsonProbe<'a> {
    fn of(p: &'a Probe) -> Self {
        JsonProbe {
            works: p.works(),
            path: p.data_path.map(|d| d.as_str()),
            bytes: p.bytes,
            error: p.error.as_deref(),
            errno: p.errno,
            errno_name: p.errno.map(errno_name),
        }
    }
}
