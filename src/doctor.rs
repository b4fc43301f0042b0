//! `zcp doctor [PATH...]`: tells, before a big transfer, which data path zcp will take for each
//! path and why. It runs zcp's real data paths on a few hundred KiB over loopback (sendfile
//! from the path's file system, splice into it) and reports the kernel, pipe and socket limits
//! that shape them. It changes nothing: its scratch files are removed, the user's only read.

mod print;
mod probe;
mod system;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::DoctorArgs;
use crate::datapath::{DataPath, Method};
use crate::error::ExitCode;
use crate::sys::machine::Machine;
use crate::terminal;
pub use probe::{PROBE_BYTES, Probe};
pub use system::{KernelTls, PipeSizes, SocketLimits};

/// Everything `zcp doctor` found.
#[derive(Debug, Clone)]
pub struct Findings {
    /// The kernel, CPU and cores.
    pub machine: Machine,
    /// How large a splice pipe may grow.
    pub pipe: PipeSizes,
    /// The socket buffer limits.
    pub sockets: SocketLimits,
    /// Kernel TLS, for `--encrypt`.
    pub ktls: KernelTls,
    /// One set of probes per PATH.
    pub paths: Vec<PathFindings>,
}

/// What a path is, as far as the probes care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A directory: probed inside it.
    Directory,
    /// A regular file (procfs and sysfs files included).
    File,
    /// A FIFO, device or socket: only its directory is probed.
    Other,
}

/// The probes of one PATH and what they mean.
#[derive(Debug, Clone)]
pub struct PathFindings {
    /// The PATH as given.
    pub path: PathBuf,
    /// What it is.
    pub kind: PathKind,
    /// Its file system type, from statfs.
    pub file_system: String,
    /// Where the scratch files went: the directory, or the file's parent.
    pub tested_in: PathBuf,
    /// sendfile from a scratch file on this file system to a socket.
    pub sendfile: Probe,
    /// sendfile from the file itself (file PATHs only).
    pub sendfile_direct: Option<Probe>,
    /// splice socket → pipe → scratch file on this file system.
    pub splice: Probe,
    /// With sendfile failing, what zcp's chooser sends by instead.
    pub send_fallback: Option<Probe>,
    /// With splice failing, what zcp's chooser receives by instead.
    pub recv_fallback: Option<Probe>,
}

impl PathFindings {
    /// The probe that decides how this path is sent: the file itself when it was probed.
    pub fn send_probe(&self) -> &Probe {
        self.sendfile_direct.as_ref().unwrap_or(&self.sendfile)
    }

    /// The path zcp will send by, if any works.
    pub fn send_path(&self) -> Option<DataPath> {
        let fallback = self.send_fallback.as_ref().filter(|p| p.works());
        fallback.map_or_else(
            || self.send_probe().works().then_some(DataPath::Sendfile),
            |p| p.data_path,
        )
    }

    /// The path zcp will receive by, if any works.
    pub fn recv_path(&self) -> Option<DataPath> {
        let fallback = self.recv_fallback.as_ref().filter(|p| p.works());
        fallback.map_or_else(|| self.splice.works().then_some(DataPath::Splice), |p| p.data_path)
    }

    /// `/dev/shm: send by sendfile, receive by splice`.
    pub fn verdict(&self) -> String {
        let send = match self.send_path() {
            Some(DataPath::Sendfile) => "send by sendfile".to_string(),
            Some(path) => format!("send by {path} (sendfile does not work here)"),
            None => "sending fails (see above)".to_string(),
        };
        let recv = match self.recv_path() {
            Some(DataPath::Splice) => "receive by splice".to_string(),
            Some(path) => format!("receive by {path} (splice does not work here)"),
            None => "receiving fails (see above)".to_string(),
        };
        format!("{}: {send}, {recv}", self.path.display())
    }
}

/// Checks every PATH (a missing one is an error naming it, exit code 7), probes, prints.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let targets =
        args.paths.iter().map(|p| Target::resolve(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let findings = Findings {
        machine: Machine::this(),
        pipe: system::pipe_sizes(),
        sockets: system::socket_limits(),
        ktls: system::kernel_tls(),
        paths: targets.iter().map(Target::probe).collect(),
    };
    if args.json {
        crate::report::line_to_stdout(&print::json(&findings))
            .context("writing the JSON findings")?;
    } else {
        terminal::lines(&print::human(&findings));
    }
    Ok(ExitCode::Success)
}

/// A PATH that exists, with where its scratch files go.
struct Target {
    path: PathBuf,
    kind: PathKind,
    dir: PathBuf,
}

impl Target {
    fn resolve(path: &Path) -> anyhow::Result<Target> {
        let meta = std::fs::metadata(path).with_context(|| path.display().to_string())?;
        let kind = if meta.is_dir() {
            PathKind::Directory
        } else if meta.is_file() {
            PathKind::File
        } else {
            PathKind::Other
        };
        let dir = match (kind, path.parent()) {
            (PathKind::Directory, _) => path.to_path_buf(),
            (_, Some(parent)) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Target { path: path.to_path_buf(), kind, dir })
    }

    fn probe(&self) -> PathFindings {
        let sendfile = probe::send_from(&self.dir, Method::Only(DataPath::Sendfile));
        let sendfile_direct = (self.kind == PathKind::File)
            .then(|| probe::send_file(&self.path, Method::Only(DataPath::Sendfile)));
        let splice = probe::recv_into(&self.dir, Method::Only(DataPath::Splice));
        let send_works = sendfile_direct.as_ref().unwrap_or(&sendfile).works();
        let send_fallback = (!send_works).then(|| match self.kind {
            PathKind::File => probe::send_file(&self.path, Method::Auto),
            _ => probe::send_from(&self.dir, Method::Auto),
        });
        let recv_fallback = (!splice.works()).then(|| probe::recv_into(&self.dir, Method::Auto));
        PathFindings {
            path: self.path.clone(),
            kind: self.kind,
            file_system: system::file_system(&self.path),
            tested_in: self.dir.clone(),
            sendfile,
            sendfile_direct,
            splice,
            send_fallback,
            recv_fallback,
        }
    }
}
