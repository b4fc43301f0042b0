//! Random bytes for tokens and session nonces, from the kernel's getrandom(2) as a system call.
//! The `getrandom` crate finds glibc's wrapper with `dlsym`, which a static binary cannot do, and
//! then reads /dev/urandom, which an empty chroot or a scratch container does not have (see
//! [`crate::manual::static_build`]).

use std::io;

use anyhow::Context;

/// Fills `buf` with random bytes: from getrandom(2), or from /dev/urandom where the kernel has
/// no getrandom(2) (before Linux 3.17) or a seccomp filter refuses it.
pub fn fill(buf: &mut [u8]) -> anyhow::Result<()> {
    match getrandom(buf) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
            urandom(buf).with_context(|| format!("getrandom(2) is not available ({e})"))
        }
        Err(e) => Err(e).context("getrandom(2)"),
    }
}

#[cfg(target_os = "linux")]
fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    use rustix::rand::{GetRandomFlags, getrandom};
    let mut filled = 0;
    while filled < buf.len() {
        match getrandom(&mut buf[filled..], GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(|e| {
        e.raw_os_error()
            .map_or_else(|| io::Error::other(e.to_string()), io::Error::from_raw_os_error)
    })
}

fn urandom(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| io::Error::new(e.kind(), format!("reading /dev/urandom: {e}")))
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fills_the_whole_buffer_with_fresh_bytes() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, [0u8; 64]);
        assert_ne!(a, b);
    }
}
