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

/// Sends `bytes` on `socket` with `fd` beside them (`SCM_RIGHTS`, on the first byte), then the
/// rest of them if one `sendmsg` did not take them all.
pub(super) fn send_with_fd(socket: &UnixStream, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    use std::io::Write;
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
    // Room for one descriptor's control message, aligned as cmsghdr needs.
    let mut control = [0u64; 8];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    assert!(space <= std::mem::size_of_val(&control));
    // SAFETY: an all-zero msghdr is a valid empty message; the fields set below point to
    // `iov` and `control`, which live on this stack frame for the whole call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` describes `control`, which has room for the one header CMSG_FIRSTHDR
    // returns (checked above); the descriptor is written inside it at CMSG_DATA.
    let sent = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
        libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    (&mut &*socket).write_all(&bytes[sent as usize..])
}

/// Reads what is there on `socket` into `buf` (at least one byte, unless the stream ended),
/// with the descriptor sent beside it, if any (close-on-exec). Descriptors beyond the first are
/// closed.
pub(super) fn recv_with_fd(socket: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is a valid empty message; the fields set below point to `iov`
    // and `control`, which live on this stack frame for the whole call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = loop {
        // SAFETY: `msg` describes buffers on this stack frame (`buf` is borrowed mutably for
        // the call); the kernel writes at most their lengths.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut first = None;
    // SAFETY: the kernel filled `control` with `msg_controllen` bytes of control messages;
    // CMSG_FIRSTHDR/CMSG_NXTHDR walk them within that length, and each SCM_RIGHTS message's
    // data holds `(cmsg_len - CMSG_LEN(0)) / size_of::<RawFd>()` descriptors, now open in this
    // process and owned by nothing else, so each is taken into an `OwnedFd` exactly once.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let fd = OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i)));
                    if first.is_none() {
                        first = Some(fd);
                    } // the others close here
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n, first))
}
