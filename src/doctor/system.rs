//! The system limits `zcp doctor` reports: pipe sizes (the splice path's pipe), socket buffer
//! limits, and the name of a path's file system. Linux reads them from /proc and the kernel;
//! elsewhere they are reported as unknown.

use serde::Serialize;

/// The pipe capacity zcp asks for (see `copy::linux`).
pub const PIPE_WANTED: u64 = 1 << 20;

/// What the splice path's pipe can be.
#[derive(Debug, Clone, Serialize)]
pub struct PipeSizes {
    /// /proc/sys/fs/pipe-max-size.
    pub max_size: Option<u64>,
    /// What a fresh pipe was asked to grow to.
    pub asked: u64,
    /// What the kernel granted (F_SETPIPE_SZ), or why it refused.
    pub granted: Option<u64>,
    /// Why the pipe size could not be read or set.
    pub error: Option<String>,
}

/// Socket buffer limits, in bytes.
#[derive(Debug, Clone, Serialize)]
pub struct SocketLimits {
    /// min, default, max of a TCP socket's send buffer.
    pub tcp_wmem: Option<Vec<u64>>,
    /// min, default, max of a TCP socket's receive buffer.
    pub tcp_rmem: Option<Vec<u64>>,
    /// Largest send buffer SO_SNDBUF may ask for.
    pub wmem_max: Option<u64>,
    /// Largest receive buffer SO_RCVBUF may ask for.
    pub rmem_max: Option<u64>,
}

pub fn socket_limits() -> SocketLimits {
    SocketLimits {
        tcp_wmem: numbers("/proc/sys/net/ipv4/tcp_wmem"),
        tcp_rmem: numbers("/proc/sys/net/ipv4/tcp_rmem"),
        wmem_max: number("/proc/sys/net/core/wmem_max"),
        rmem_max: number("/proc/sys/net/core/rmem_max"),
    }
}

fn numbers(path: &str) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    text.split_whitespace().map(|n| n.parse().ok()).collect()
}

fn number(path: &str) -> Option<u64> {
    numbers(path).and_then(|n| n.first().copied())
}

/// pipe-max-size, and what F_SETPIPE_SZ grants a fresh pipe asked for 1 MiB.
#[cfg(target_os = "linux")]
pub fn pipe_sizes() -> PipeSizes {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let granted = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .and_then(|(_read, write)| fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_WANTED as i32)));
    let (granted, error) = match granted {
        Ok(n) => (Some(n as u64), None),
        Err(e) => (None, Some(format!("F_SETPIPE_SZ {PIPE_WANTED}: {} ({e:?})", e.desc()))),
    };
    PipeSizes { max_size: number("/proc/sys/fs/pipe-max-size"), asked: PIPE_WANTED, granted, error }
}

#[cfg(not(target_os = "linux"))]
pub fn pipe_sizes() -> PipeSizes {
    PipeSizes {
        max_size: None,
        asked: PIPE_WANTED,
        granted: None,
        error: Some("pipe sizes can only be set on Linux".into()),
    }
}

/// The name of the file system `path` is on: `ext4`, `tmpfs`, …, or its magic number.
#[cfg(target_os = "linux")]
pub fn file_system(path: &std::path::Path) -> String {
    use nix::sys::statfs::{self, statfs};
    let Ok(fs) = statfs(path) else { return "unknown".into() };
    let magic = fs.filesystem_type();
    [
        (statfs::EXT4_SUPER_MAGIC, "ext2/3/4"),
        (statfs::XFS_SUPER_MAGIC, "xfs"),
        (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
        (statfs::TMPFS_MAGIC, "tmpfs"),
        (statfs::OVERLAYFS_SUPER_MAGIC, "overlayfs"),
        (statfs::NFS_SUPER_MAGIC, "nfs"),
        (statfs::FUSE_SUPER_MAGIC, "fuse"),
        (statfs::F2FS_SUPER_MAGIC, "f2fs"),
        (statfs::MSDOS_SUPER_MAGIC, "vfat"),
        (statfs::PROC_SUPER_MAGIC, "procfs"),
        (statfs::SYSFS_MAGIC, "sysfs"),
        (statfs::HUGETLBFS_MAGIC, "hugetlbfs"),
        (statfs::SMB_SUPER_MAGIC, "smb"),
    ]
    .into_iter()
    .find(|(m, _)| *m == magic)
    .map_or_else(|| format!("{:#x}", magic.0), |(_, name)| name.to_string())
}

#[cfg(not(target_os = "linux"))]
pub fn file_system(_path: &std::path::Path) -> String {
    "unknown".into()
}

/// Whether this kernel can seal TLS records itself (kTLS), for `--encrypt`.
#[derive(Debug, Clone, Serialize)]
pub struct KernelTls {
    /// Whether the kernel took the `tls` upper-layer protocol.
    pub available: bool,
    /// The errno of `setsockopt(TCP_ULP, "tls")` when it failed (`ENOENT`: no tls module).
    pub errno_name: Option<String>,
    /// The ciphers whose keys the kernel took, on a throwaway loopback socket.
    pub ciphers: Vec<&'static str>,
    /// `/proc/sys/net/ipv4/tcp_available_ulp`, when readable.
    pub available_ulp: Option<String>,
    /// Why the probe itself could not run (no loopback socket).
    pub error: Option<String>,
}

/// Probes kTLS on a loopback connection made for it.
pub fn kernel_tls() -> KernelTls {
    use crate::link::ktls::{self, Support};
    let available_ulp = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp")
        .ok()
        .map(|s| s.trim().to_string());
    let mut found = KernelTls {
        available: false,
        errno_name: None,
        ciphers: Vec::new(),
        available_ulp,
        error: None,
    };
    match loopback() {
        Ok(socket) => match ktls::probe(&socket) {
            Support::Available(ciphers) => {
                found.available = true;
                found.ciphers = ciphers.into_iter().map(|c| c.name()).collect();
            }
            Support::Missing(errno) => found.errno_name = Some(format!("{errno:?}")),
        },
        Err(e) => found.error = Some(format!("{e:#}")),
    }
    found
}

fn loopback() -> anyhow::Result<std::net::TcpStream> {
    use anyhow::Context;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("listening on loopback")?;
    let addr = listener.local_addr().context("reading the loopback address")?;
    let client = std::net::TcpStream::connect(addr).context("connecting over loopback")?;
    listener.accept().context("accepting over loopback")?;
    Ok(client)
}
