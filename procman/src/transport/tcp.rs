//! TCP: `host:port` addresses.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Connects to the first address `host` resolves to that answers. With a `timeout`, all the
/// attempts together take at most that long.
pub(super) fn connect(host: &str, port: u16, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last = None;
    for sa in (host, port).to_socket_addrs()? {
        match attempt(&sa, deadline) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host name resolved to no address")))
}

fn attempt(sa: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    match deadline {
        None => TcpStream::connect(sa),
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => TcpStream::connect_timeout(sa, left),
            _ => Err(io::Error::new(io::ErrorKind::TimedOut, "connection timed out")),
        },
    }
}

/// Binds `host:port` and returns the listener with its port (the one the OS chose for 0).
pub(super) fn bind(host: &str, port: u16) -> io::Result<(TcpListener, u16)> {
    // std sets SO_REUSEADDR on Unix, so a restart on the same port works at once.
    let l = TcpListener::bind((host, port))?;
    let port = l.local_addr()?.port();
    Ok((l, port))
}

pub(super) fn accept(l: &TcpListener) -> io::Result<TcpStream> {
    let (s, _) = l.accept()?;
    s.set_nodelay(true)?;
    Ok(s)
}

pub(super) fn peer(s: &TcpStream) -> String {
    s.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "tcp peer".into())
}

/// Makes a connection detect a peer that vanished without closing it (a cut cable, a crashed
/// host): after `idle` without traffic the kernel probes it three times, `idle / 3` apart, and
/// then fails the connection; unacknowledged data fails it after `2 * idle`.
pub(super) fn set_keepalive(s: &TcpStream, idle: Duration) -> io::Result<()> {
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

fn setsockopt<T: Copy>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: T) -> io::Result<()> {
    // SAFETY: `value` is a plain integer option passed by pointer with its exact size, and `fd`
    // is an open socket borrowed by the caller for the duration of the call.
    let r = unsafe {
        libc::setsockopt(fd, level, name, (&raw const value).cast(), std::mem::size_of::<T>() as libc::socklen_t)
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}
