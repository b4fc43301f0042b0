//! # The static binary: one file to copy to a host
//!
//! `cargo static` (an alias in `.cargo/config.toml`) is `cargo install` for the target
//! x86_64-unknown-linux-gnu with `-C target-feature=+crt-static`, as target/static/bin/zcp:
//! glibc linked into a static-pie executable of about 5 MB that runs on any x86_64 Linux,
//! also in an empty root (no /dev, /proc or /etc). The target is named so that build scripts
//! and proc macros stay dynamic. `zcp --version` says `static`. musl would be the other way;
//! its target was not installed where this was built, so it is neither built nor measured.
//!
//! ## What it takes from the system, and what it does without
//!
//! - **Random bytes** (tokens, session nonces): getrandom(2) as a system call
//!   (`sys::random`). The `getrandom` crate looks glibc's wrapper up with `dlsym`,
//!   which fails in a static binary, and falls back to /dev/urandom; ring and the key
//!   exchange already call the system call. /dev/urandom is read only where the kernel lacks
//!   getrandom(2) or a seccomp filter refuses it, and a failure names both.
//! - **Host names**: static glibc reads /etc/hosts and asks DNS itself, but an NSS module
//!   that /etc/nsswitch.conf names (mdns, sss, systemd) is loaded with `dlopen`, and brings
//!   the host's libc.so.6 along (strace shows both opened for a name /etc/hosts lacks). That
//!   works where the host's glibc is the one linked in, and is undefined elsewhere. Numeric
//!   addresses are parsed, never looked up, and need none of it. With neither /etc/hosts nor
//!   /etc/resolv.conf, a failed lookup says to give a numeric address.
//! - **/proc**: `doctor` prints "unknown" for the sysctls it reads there; the splice path's
//!   pipe asks for 1 MiB and keeps what the kernel grants without /proc/sys/fs/pipe-max-size;
//!   peak memory comes from getrusage(2) instead of VmHWM. A received file written unnamed
//!   (`O_TMPFILE`) is linked by descriptor, which needs CAP_DAC_READ_SEARCH (root has it),
//!   else through /proc/self/fd; with neither, the receiver takes part files from then on, as
//!   on file systems without `O_TMPFILE`.
//! - **kTLS**: `--encrypt` seals records in user space when the kernel's `tls` module is not
//!   loaded; a chroot cannot load it, since modprobe runs in the host's root.
//! - **/dev**: only `--events-fd N` needs it, to reopen `/dev/fd/N`; without it, it says so.
//!
//! `tests/empty_root.rs` runs all of this under chroot(2): a file and a tree sent and received
//! (also with `--encrypt`), `--http` fetched by curl from outside, `doctor`, a host name,
//! `--events-fd`.
//!
//! ## Static or dynamic: which ships
//!
//! The static one, as the copyable binary and inside the Debian package (which then depends
//! on nothing). In two interleaved runs of the release builds of one commit, each build
//! driving one (`zcp bench --size 512M --rounds 5 --dir /dev/shm --methods
//! sendfile:splice,buffered:buffered --encrypt --against OTHER=PATH`, on a shared 2-core VM),
//! the CPU per GiB of each pair differs between the two builds by less than each pair's own
//! spread across rounds, and the throughput medians go either way: glibc's string and memory
//! functions are the same code either way, and the zero-copy paths spend their time in the
//! kernel. The numbers are in the commits that added and revised this note.
