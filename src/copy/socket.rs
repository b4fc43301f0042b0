//! The sockets a session talks through: the TCP connection itself, or, under `--encrypt` with
//! records sealed in user space, the session's end of a Unix stream pair whose other end is
//! the record layer (`link::pump`). Both are stream sockets, so reads, writes,
//! `sendfile`, `splice`, `poll`, timeouts and `shutdown` work the same on either; the type says
//! which it is. Where the connection's network peer is, the channel that made it knows.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A socket the session owns: TCP, or its end of the record layer's Unix stream pair.
#[derive(Debug)]
pub enum Socket {
    /// The connection to the peer itself (plaintext, or TLS records sealed by the kernel).
    Tcp(TcpStream),
    /// The session's end of the pair whose other end seals and opens TLS records.
    Local(UnixStream),
}

/// A borrowed socket, as the data paths take it: it reads and writes through a shared
/// reference, as `&TcpStream` does.
#[derive(Debug, Clone, Copy)]
pub enum Stream<'a> {
    /// A TCP connection.
    Tcp(&'a TcpStream),
    /// A Unix stream socket.
    Local(&'a UnixStream),
}

impl Socket {
    /// The socket borrowed, for the data paths.
    pub fn stream(&self) -> Stream<'_> {
        match self {
            Socket::Tcp(s) => Stream::Tcp(s),
            Socket::Local(s) => Stream::Local(s),
        }
    }

    /// A second handle on the same socket.
    pub fn try_clone(&self) -> io::Result<Socket> {
        Ok(match self {
            Socket::Tcp(s) => Socket::Tcp(s.try_clone()?),
            Socket::Local(s) => Socket::Local(s.try_clone()?),
        })
    }

    /// Sets or clears the timeout of each read.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_read_timeout(timeout),
            Socket::Local(s) => s.set_read_timeout(timeout),
        }
    }

    /// The timeout of each read, if set.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        match self {
            Socket::Tcp(s) => s.read_timeout(),
            Socket::Local(s) => s.read_timeout(),
        }
    }

    /// Sets or clears the timeout of each write.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_write_timeout(timeout),
            Socket::Local(s) => s.set_write_timeout(timeout),
        }
    }

    /// Shuts down one direction of the socket, or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown(how),
            Socket::Local(s) => s.shutdown(how),
        }
    }
}

impl From<TcpStream> for Socket {
    fn from(socket: TcpStream) -> Socket {
        Socket::Tcp(socket)
    }
}

impl From<UnixStream> for Socket {
    fn from(socket: UnixStream) -> Socket {
        Socket::Local(socket)
    }
}

impl<'a> From<&'a TcpStream> for Stream<'a> {
    fn from(socket: &'a TcpStream) -> Stream<'a> {
        Stream::Tcp(socket)
    }
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Local(s) => s.read(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_vectored(bufs),
            Stream::Local(s) => s.read_vectored(bufs),
        }
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Local(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Local(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for &Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream().read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.stream().read_vectored(bufs)
    }
}

impl Write for &Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream().write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.stream().write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Local(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for Stream<'_> {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Local(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}
