//! Unix sockets: socket files (`unix:/path`), Linux abstract names (`@name`), and the socket
//! pair that links a parent to a child process it starts.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

pub(super) fn connect(path: &Path) -> io::Result<UnixStream> {
    UnixStream::connect(path)
}

pub(super) fn connect_abstract(name: &str) -> io::Result<UnixStream> {
    UnixStream::connect_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)
}

pub(super) fn bind(path: &Path) -> io::Result<UnixListener> {
    UnixListener::bind(path)
}

pub(super) fn bind_abstract(name: &str) -> io::Result<UnixListener> {
    UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)
}

/// Clears close-on-exec on `socket` in the child that `cmd` starts (after `fork`, before
/// `exec`), so that exactly that child inherits it; returns the descriptor's number.
pub(super) fn inherit_into(socket: BorrowedFd<'_>, cmd: &mut Command) -> RawFd {
    let fd = socket.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which is
    // async-signal-safe. If the caller closed `fd` before spawning, fcntl fails with EBADF and
    // so does the spawn; no memory is touched either way.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    fd
}

/// The socket a parent passed with [`inherit_into`], as a stream that programs this process
/// starts do not inherit.
///
/// # Safety
///
/// `fd` must be an open socket that nothing else in this process owns or will close.
pub(super) unsafe fn from_inherited(fd: RawFd) -> io::Result<UnixStream> {
    // SAFETY: the caller guarantees that `fd` is open and ours alone.
    let inherited = unsafe { OwnedFd::from_raw_fd(fd) };
    // A duplicate is close-on-exec; the inherited descriptor is closed when `inherited` drops.
    Ok(UnixStream::from(inherited.try_clone()?))
}
