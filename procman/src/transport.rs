//! Sockets behind one type: TCP and Unix (path or abstract) streams and listeners.

use crate::address::Address;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

/// A connected socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub(crate) fn connect(address: &Address) -> io::Result<Stream> {
        match address {
            Address::Tcp { host, port } => {
                let mut last = None;
                for sa in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect(sa) {
                        Ok(s) => {
                            s.set_nodelay(true)?;
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host name resolved to no address")))
            }
            Address::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            Address::Abstract(name) => {
                let sa = UnixAddr::from_abstract_name(name.as_bytes())?;
                UnixStream::connect_addr(&sa).map(Stream::Unix)
            }
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        match self {
            Stream::Tcp(s) => s.try_clone().map(Stream::Tcp),
            Stream::Unix(s) => s.try_clone().map(Stream::Unix),
        }
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }

    /// Wakes every thread blocked on this socket, in this process, with end-of-stream.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// Makes a TCP connection detect a peer that vanished without closing it (a cut cable, a
    /// crashed host): after `idle` without traffic the kernel probes it three times, `idle / 3`
    /// apart, and then fails the connection; unacknowledged data fails it after `2 * idle`.
    /// Unix sockets need nothing: the kernel closes them when the peer dies.
    pub(crate) fn set_keepalive(&self, idle: Duration) -> io::Result<()> {
        let Stream::Tcp(s) = self else { return Ok(()) };
        let fd = s.as_raw_fd();
        let secs = idle.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
        let interval = (secs / 3).max(1);
        let user_timeout = (idle.as_millis().saturating_mul(2)).min(u128::from(u32::MAX)) as libc::c_uint;
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1 as libc::c_int)?;
        setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
        setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, interval)?;
        setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3 as libc::c_int)?;
        setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, user_timeout)?;
        Ok(())
    }

    pub(crate) fn peer(&self) -> String {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "tcp peer".into()),
            Stream::Unix(_) => "local peer".into(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

fn setsockopt<T: Copy>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: T) -> io::Result<()> {
    // SAFETY: `value` is a plain integer option passed by pointer with its exact size, and `fd`
    // is an open socket owned by the caller for the duration of the call.
    let r = unsafe {
        libc::setsockopt(fd, level, name, (&raw const value).cast(), std::mem::size_of::<T>() as libc::socklen_t)
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// A listening socket. A Unix socket file is removed when the listener is dropped.
#[derive(Debug)]
pub(crate) struct Listener {
    kind: ListenerKind,
    remove_on_drop: Option<PathBuf>,
}

#[derive(Debug)]
enum ListenerKind {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// Binds `address` and returns the listener with the real address (the port the OS chose).
    pub(crate) fn bind(address: &Address) -> io::Result<(Listener, Address)> {
        match address {
            Address::Tcp { host, port } => {
                // std sets SO_REUSEADDR on Unix, so a restart on the same port works at once.
                let l = TcpListener::bind((host.as_str(), *port))?;
                let real = Address::Tcp { host: host.clone(), port: l.local_addr()?.port() };
                Ok((Listener { kind: ListenerKind::Tcp(l), remove_on_drop: None }, real))
            }
            Address::Unix(path) => {
                let l = UnixListener::bind(path)?;
                Ok((Listener { kind: ListenerKind::Unix(l), remove_on_drop: Some(path.clone()) }, address.clone()))
            }
            Address::Abstract(name) => {
                let sa = UnixAddr::from_abstract_name(name.as_bytes())?;
                let l = UnixListener::bind_addr(&sa)?;
                Ok((Listener { kind: ListenerKind::Unix(l), remove_on_drop: None }, address.clone()))
            }
        }
    }

    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match &self.kind {
            ListenerKind::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            ListenerKind::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        match &self.kind {
            ListenerKind::Tcp(l) => l.as_raw_fd(),
            ListenerKind::Unix(l) => l.as_raw_fd(),
        }
    }

    /// The socket file to remove when the server ends, if any.
    pub(crate) fn socket_file(&self) -> Option<&PathBuf> {
        self.remove_on_drop.as_ref()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(p) = &self.remove_on_drop {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Wakes a thread blocked in `accept` on `fd` (Linux returns an error from `accept` once the
/// listening socket is shut down).
pub(crate) fn wake_listener(fd: RawFd) {
    // SAFETY: shutdown(2) on a descriptor only changes socket state; the listener that owns `fd`
    // outlives this call (the server holds it until its accept loop has returned).
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}
