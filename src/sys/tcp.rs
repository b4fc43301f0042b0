//! What the kernel knows about one TCP connection that the socket API does not say: how many
//! bytes the peer has sent on it so far (`TCP_INFO`), read or not. The lobby uses it to tell a
//! peer that greeted from one that only holds a connection open.

use std::net::TcpStream;

/// Bytes the peer has sent on `socket` so far; `None` where the system cannot say.
#[cfg(target_os = "linux")]
pub fn bytes_received(socket: &TcpStream) -> Option<u64> {
    use std::mem::{offset_of, size_of};
    use std::os::fd::AsRawFd;
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a zeroed `tcp_info` of `len` bytes, which the kernel fills up to `len`
    // (fewer on an older kernel, which `len` then says); the fd is open for `socket`'s life.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let known = offset_of!(libc::tcp_info, tcpi_bytes_received) + size_of::<u64>();
    if rc != 0 || (len as usize) < known {
        return None;
    }
    // SAFETY: zero-initialised and partly filled by the kernel: every bit pattern is a valid
    // `tcp_info` (plain integers).
    Some(unsafe { info.assume_init() }.tcpi_bytes_received)
}

/// Bytes the peer has sent on `socket` so far; `None` where the system cannot say.
#[cfg(not(target_os = "linux"))]
pub fn bytes_received(_socket: &TcpStream) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn bytes_the_peer_sent_are_counted_whether_read_or_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert_eq!(bytes_received(&server), Some(0));
        client.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).unwrap();
        client.write_all(b"!").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while bytes_received(&server) != Some(6) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(bytes_received(&server), Some(6));
    }
}
