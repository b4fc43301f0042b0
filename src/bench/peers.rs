//! The tools zcp is compared with under `--compare`: OpenBSD netcat, `socat -b 131072` (both
//! file to file, like zcp) and `iperf3` memory to memory, the TCP ceiling of this machine; for a
//! tree, `tar | nc` on both ends; and a file fetched by curl over HTTP from `zcp send --http`,
//! from `python3 -m http.server`, and from memory, curl's ceiling (see `http`). Each is found on
//! PATH; one that is missing is reported as such by the caller, never skipped silently.

use std::env;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

use super::run::{Ready, RunContext, free_port, transfer, unreported_side};
use super::stats::Sample;

/// Where nc and socat write the received copy, inside the run's directory.
const COPY: &str = "copy";
/// The name socat opens the source by (a link to it), as a relative path: socat would read
/// `:` or `,` in a real path as part of its address syntax.
const SOURCE_LINK: &str = "source";

/// A tool compared with zcp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Netcat,
    Socat,
    /// socat with TLS 1.3 (`OPENSSL-LISTEN:` into `OPENSSL:`), for `--encrypt`.
    SocatTls,
    Iperf3,
    /// `tar -cf - | nc` into `nc -l | tar -xf -`: how trees are moved without zcp.
    TarNc,
    /// `curl -o` from `zcp send --http`.
    ZcpHttp,
    /// `curl -o` from `python3 -m http.server`.
    PythonHttp,
    /// `curl -o` from a server that sends one cached buffer over and over: curl's ceiling.
    MemoryHttp,
}

impl Peer {
    /// The peers for one file.
    pub const FILE: [Peer; 6] = [
        Peer::Netcat,
        Peer::Socat,
        Peer::Iperf3,
        Peer::ZcpHttp,
        Peer::PythonHttp,
        Peer::MemoryHttp,
    ];
    /// The peers for a tree.
    pub const TREE: [Peer; 1] = [Peer::TarNc];

    /// The row name in the results.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Netcat => "nc",
            Peer::Socat => "socat -b 131072",
            Peer::SocatTls => "socat OPENSSL -b 131072",
            Peer::Iperf3 => "iperf3 (memory)",
            Peer::TarNc => "tar | nc",
            Peer::ZcpHttp => "zcp send --http | curl",
            Peer::PythonHttp => "python3 http.server | curl",
            Peer::MemoryHttp => "memory | curl (ceiling)",
        }
    }

    /// The programs it needs, looked up on PATH; the first is the one `run` is given.
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Peer::Netcat => &["nc"],
            Peer::Socat => &["socat"],
            Peer::SocatTls => &["socat", "openssl"],
            Peer::Iperf3 => &["iperf3"],
            Peer::TarNc => &["tar", "nc"],
            Peer::ZcpHttp => &["curl"],
            Peer::PythonHttp | Peer::MemoryHttp => &["python3", "curl"],
        }
    }

    /// The path of its first program, when all of them are installed.
    pub fn locate(self) -> Option<PathBuf> {
        let mut found = self.programs().iter().map(|p| find(p));
        let first = found.next()??;
        found.all(|p| p.is_some()).then_some(first)
    }

    /// One run of this tool by `program`, in the run's directory `dir`.
    pub fn run(self, program: &Path, ctx: &RunContext<'_>, dir: &Path) -> anyhow::Result<Sample> {
        match self {
            Peer::Netcat => netcat(program, ctx, dir),
            Peer::Socat => socat(program, ctx, dir),
            Peer::SocatTls => socat_tls(program, ctx, dir),
            Peer::Iperf3 => iperf3(program, ctx),
            Peer::TarNc => tar_nc(program, ctx, dir),
            Peer::ZcpHttp => http_sample(ctx, dir, super::http::zcp_curl(program, ctx, dir)),
            Peer::PythonHttp => {
                let curl = find("curl").context("curl is not installed")?;
                http_sample(ctx, dir, super::http::python_curl(program, &curl, ctx, dir))
            }
            Peer::MemoryHttp => {
                let curl = find("curl").context("curl is not installed")?;
                http_sample(ctx, dir, super::http::memory_curl(program, &curl, ctx, dir))
            }
        }
    }
}

/// `program`'s path on PATH, if it is there.
fn find(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `nc -l 127.0.0.1 PORT > copy` and `nc -N 127.0.0.1 PORT < file`.
fn netcat(program: &Path, ctx: &RunContext<'_>, dir: &Path) -> anyhow::Result<Sample> {
    let port = free_port()?;
    let copy = dir.join(COPY);
    let out = File::create(&copy).with_context(|| format!("creating {}", copy.display()))?;
    let input =
        File::open(ctx.source).with_context(|| format!("opening {}", ctx.source.display()))?;
    let mut receiver = Command::new(program);
    receiver.args(["-l", "127.0.0.1", &port.to_string()]).stdout(out);
    let run = transfer("nc", &mut receiver, Ready::Listening(port), |_| {
        let mut sender = Command::new(program);
        sender.args(["-N", "127.0.0.1", &port.to_string()]).stdin(input).stdout(Stdio::null());
        sender
    })?;
    ctx.verify_copy(&copy)?;
    Ok(file_sample(ctx, &run))
}

/// `socat -b 131072 -u TCP-LISTEN:PORT,… OPEN:copy,creat,trunc` and `… OPEN:file TCP:…`.
fn socat(program: &Path, ctx: &RunContext<'_>, dir: &Path) -> anyhow::Result<Sample> {
    let port = free_port()?;
    std::os::unix::fs::symlink(ctx.source, dir.join(SOURCE_LINK))
        .with_context(|| format!("linking {} into {}", ctx.source.display(), dir.display()))?;
    let mut receiver = Command::new(program);
    receiver
        .args(["-b", "131072", "-u"])
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"))
        .arg(format!("OPEN:{COPY},creat,trunc"))
        .current_dir(dir)
        .stdout(Stdio::null());
    let run = transfer("socat", &mut receiver, Ready::Listening(port), |_| {
        let mut sender = Command::new(program);
        sender.args(["-b", "131072", "-u"]).arg(format!("OPEN:{SOURCE_LINK}"));
        sender.arg(format!("TCP:127.0.0.1:{port}")).current_dir(dir);
        sender.stdin(Stdio::null()).stdout(Stdio::null());
        sender
    })?;
    ctx.verify_copy(&dir.join(COPY))?;
    Ok(file_sample(ctx, &run))
}

/// TLS 1.3 between two socats, with zcp's preferred suite (AES-128-GCM, pinned through an
/// OpenSSL config file) and a throwaway certificate made with `openssl req` before the clock
/// starts; the client does not verify it (zcp's TLS layer checks no certificate either).
fn socat_tls(program: &Path, ctx: &RunContext<'_>, dir: &Path) -> anyhow::Result<Sample> {
    let port = free_port()?;
    std::os::unix::fs::symlink(ctx.source, dir.join(SOURCE_LINK))
        .with_context(|| format!("linking {} into {}", ctx.source.display(), dir.display()))?;
    throwaway_cert(dir)?;
    let conf = dir.join("openssl.cnf");
    std::fs::write(&conf, OPENSSL_CONF).context("writing the OpenSSL config")?;
    let mut receiver = Command::new(program);
    receiver
        .args(["-b", "131072", "-u"])
        .arg(format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert=cert.pem,key=key.pem,verify=0"
        ))
        .arg(format!("OPEN:{COPY},creat,trunc"))
        .env("OPENSSL_CONF", &conf)
        .current_dir(dir)
        .stdout(Stdio::null());
    let run = transfer("socat OPENSSL", &mut receiver, Ready::Listening(port), |_| {
        let mut sender = Command::new(program);
        sender.args(["-b", "131072", "-u"]).arg(format!("OPEN:{SOURCE_LINK}"));
        sender.arg(format!("OPENSSL:127.0.0.1:{port},verify=0")).current_dir(dir);
        sender.env("OPENSSL_CONF", &conf).stdin(Stdio::null()).stdout(Stdio::null());
        sender
    })?;
    ctx.verify_copy(&dir.join(COPY))?;
    Ok(file_sample(ctx, &run))
}

/// OpenSSL settings for both socats: TLS 1.3 with AES-128-GCM only.
const OPENSSL_CONF: &str = "openssl_conf = zcp_bench
[zcp_bench]
ssl_conf = zcp_ssl
[zcp_ssl]
system_default = zcp_tls
[zcp_tls]
MinProtocol = TLSv1.3
Ciphersuites = TLS_AES_128_GCM_SHA256
";

/// `cert.pem` and `key.pem` in `dir`: a P-256 key and a self-signed certificate for a day.
fn throwaway_cert(dir: &Path) -> anyhow::Result<()> {
    let openssl = find("openssl").context("openssl is not installed")?;
    let out = Command::new(openssl)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1"])
        .args(["-subj", "/CN=zcp-bench"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("running openssl req")?;
    if !out.status.success() {
        bail!("openssl req failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// `tar -C PARENT -cf - TREE | nc -N 127.0.0.1 PORT` into `nc -l 127.0.0.1 PORT | tar -C DIR
/// -xf -`, each end one shell pipeline (whose CPU time includes both of its programs) in its
/// own process group, so that killing the group stops its programs too.
fn tar_nc(tar: &Path, ctx: &RunContext<'_>, dir: &Path) -> anyhow::Result<Sample> {
    let nc = find("nc").context("nc is not installed")?;
    let (Some(parent), Some(tree)) = (ctx.source.parent(), ctx.source.file_name()) else {
        bail!("{} is not a tree to send", ctx.source.display());
    };
    let port = free_port()?.to_string();
    let mut receiver = Command::new("sh");
    receiver
        .args(["-c", r#""$1" -l 127.0.0.1 "$2" | "$3" -C "$4" -xf -"#, "sh"])
        .arg(&nc)
        .arg(&port)
        .arg(tar)
        .arg(dir)
        .stdout(Stdio::null())
        .process_group(0);
    let ready = Ready::Listening(port.parse().context("a port number")?);
    let run = transfer("tar | nc", &mut receiver, ready, |_| {
        let mut sender = Command::new("sh");
        sender.args(["-c", r#""$1" -C "$2" -cf - "$3" | "$4" -N 127.0.0.1 "$5""#, "sh"]);
        sender.arg(tar).arg(parent).arg(tree).arg(&nc).arg(&port);
        sender.stdin(Stdio::null()).stdout(Stdio::null()).process_group(0);
        sender
    })?;
    ctx.verify_copy(&dir.join(tree))?;
    Ok(file_sample(ctx, &run))
}

/// A sample of an HTTP fetch, once the copy checked out.
fn http_sample(
    ctx: &RunContext<'_>,
    dir: &Path,
    run: anyhow::Result<super::run::Transfer>,
) -> anyhow::Result<Sample> {
    let run = run?;
    ctx.verify_copy(&dir.join(COPY))?;
    Ok(file_sample(ctx, &run))
}

fn file_sample(ctx: &RunContext<'_>, run: &super::run::Transfer) -> Sample {
    Sample {
        throughput: ctx.rate(run.wall),
        cpu: run.cpu(),
        send: unreported_side(run.sent.usage),
        recv: unreported_side(run.received.usage),
        blocks: None,
    }
}

/// `iperf3 -s -1 -p PORT` and `iperf3 -c 127.0.0.1 -p PORT -n SIZE -J`: memory to memory, so
/// its rate is the one iperf3 reports as received, not the file size over the wall time.
fn iperf3(program: &Path, ctx: &RunContext<'_>) -> anyhow::Result<Sample> {
    let port_number = free_port()?;
    let port = port_number.to_string();
    let mut server = Command::new(program);
    server.args(["-s", "-1", "-p", &port]).stdout(Stdio::null());
    let run = transfer("iperf3", &mut server, Ready::Listening(port_number), |_| {
        let mut client = Command::new(program);
        client.args(["-c", "127.0.0.1", "-p", &port, "-n", &ctx.size.to_string(), "-J"]);
        client.stdin(Stdio::null()).stdout(Stdio::piped());
        client
    })?;
    Ok(Sample {
        throughput: iperf3_received_rate(&run.sent.stdout, ctx.size)?,
        cpu: run.cpu(),
        send: unreported_side(run.sent.usage),
        recv: unreported_side(run.received.usage),
        blocks: None,
    })
}

/// The received rate, in bytes per second, from `iperf3 -J` output of a test of `size` bytes.
/// The sender must have sent them all; the receiver's byte count is not checked against it,
/// since iperf3 takes it when the test ends, often before a short test's last bytes were read.
fn iperf3_received_rate(json: &str, size: u64) -> anyhow::Result<f64> {
    let report: Value = serde_json::from_str(json).context("iperf3 printed no JSON report")?;
    if let Some(error) = report["error"].as_str() {
        bail!("iperf3: {error}");
    }
    let sent = report["end"]["sum_sent"]["bytes"].as_u64();
    let received = report["end"]["sum_received"]["bits_per_second"].as_f64();
    let (Some(sent), Some(bits_per_s)) = (sent, received) else {
        bail!("iperf3's report has no end.sum_sent and end.sum_received");
    };
    if sent < size {
        bail!("iperf3 sent {sent} of {size} bytes");
    }
    Ok(bits_per_s / 8.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf3_rate_is_the_received_one() {
        let json = r#"{"end":{"sum_sent":{"bytes":100,"bits_per_second":1600},
            "sum_received":{"bytes":60,"bits_per_second":800}}}"#;
        assert_eq!(iperf3_received_rate(json, 100).unwrap(), 100.0);
        assert!(iperf3_received_rate(json, 200).is_err(), "short transfers are failures");
        assert!(iperf3_received_rate(r#"{"error":"busy"}"#, 1).is_err());
        assert!(iperf3_received_rate("not json", 1).is_err());
    }
}
