//! What machine a measurement or a diagnosis was made on: kernel (from `uname(2)`), CPU model,
//! usable cores. Shared by `bench` and `doctor`; it measures nothing itself.

use serde::Serialize;

/// The facts about this machine that a benchmark result or a diagnosis is read against.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// The CPU model (`model name` in /proc/cpuinfo), or the architecture when unknown.
    pub cpu: String,
    /// `x86_64`, `aarch64`, …
    pub arch: String,
    /// Kernel name and release, as `uname -sr` prints them: `Linux 6.8.0-45-generic`.
    pub kernel: String,
    /// CPUs this process may run on (affinity and cgroup limits included).
    pub cores: usize,
}

impl Machine {
    /// Reads this machine's kernel, CPU model and usable cores.
    pub fn this() -> Machine {
        let uts = Uname::read();
        Machine {
            cpu: cpu_model().unwrap_or_else(|| uts.machine.clone()),
            arch: uts.machine,
            kernel: format!("{} {}", uts.sysname, uts.release),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// One line for people: `Intel Xeon … (x86_64), 8 cores, Linux 6.8.0`.
    pub fn describe(&self) -> String {
        let cores = if self.cores == 1 { "core" } else { "cores" };
        let arch = if self.cpu == self.arch { String::new() } else { format!(" ({})", self.arch) };
        format!("{}{arch}, {} {cores}, {}", self.cpu, self.cores, self.kernel)
    }
}

/// The fields of `uname(2)` we use.
struct Uname {
    sysname: String,
    release: String,
    machine: String,
}

impl Uname {
    fn read() -> Uname {
        let Ok(uts) = nix::sys::utsname::uname() else {
            let unknown = || "unknown".to_string();
            return Uname { sysname: unknown(), release: unknown(), machine: unknown() };
        };
        let field = |f: &std::ffi::OsStr| f.to_string_lossy().into_owned();
        Uname {
            sysname: field(uts.sysname()),
            release: field(uts.release()),
            machine: field(uts.machine()),
        }
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, value)| value.split_whitespace().collect::<Vec<_>>().join(" "))
}
