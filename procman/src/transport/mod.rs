//! Sockets: the one place where the runtime makes socket system calls.
//!
//! Every other module sees two types, whatever the address:
//!
//! - [`Stream`]: a connected byte stream (`Read + Write`), with timeouts, keepalive probing, a
//!   check that the peer hung up, and `shutdown` to wake the threads blocked on it;
//! - [`Listener`]: a bound socket that accepts [`Stream`]s, with [`Listener::wake`] to end a
//!   blocked `accept` when the server stops;
//! - [`Until`]: a stream whose reads and writes all end by one deadline (the handshake's).
//!
//! The backends, one file each, are reached only from here:
//!
//! | file | addresses | notes |
//! | --- | --- | --- |
//! | `tcp.rs` | `host:port` | no Nagle delay; keepalive probing finds a peer that vanished |
//! | `unix.rs` | `unix:/path`, `@name` (Linux abstract) | also the socket pair that links a parent to a child it starts; `SCM_RIGHTS` |
//! | `shm.rs` | a Unix connection, after its hello | the same-host fast path: two rings in a sealed memfd, the socket as doorbell |
//! | `gate.rs` | (no address: a server's scheduling) | which fast-path connections run hot: the serving slots their threads take turns at |
//!
//! A new transport is a new file here and one arm in each `match` below; nothing outside this
//! module changes. Sealing is not a transport's business:
//! frames are sealed above it (`wire/sealed.rs`), on every TCP connection.

pub(crate) mod gate;
pub(crate) mod shm;
mod tcp;
mod unix;

/// How a manager's clients on the same host talk to it once they are authenticated (see
/// [`ManagerBuilder::transport`](crate::ManagerBuilder::transport)).
///
/// Whatever the choice, the handshake runs on the connection's socket, and TCP connections
/// keep all their (sealed) frames there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Transport {
    /// A shared-memory channel per connection, with the socket as its doorbell and liveness
    /// signal (the default): see the crate docs, "The same-host fast path".
    #[default]
    SharedMemory,
    /// Every frame on the socket.
    Socket,
}

use crate::address::Address;
use crate::wire::frames::{Medium, Timed};
use shm::Channel;
pub(crate) use shm::{enabled as shared_memory_enabled, fuzz_channel};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connected socket.
#[derive(Debug)]
pub(crate) struct Stream(Backend);

#[derive(Debug)]
enum Backend {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// A Unix connection whose frames moved to shared memory (`shm.rs`); its socket stays
    /// inside, as doorbell and liveness signal.
    Shm(Arc<Channel>),
}

impl Stream {
    /// Connects to `address`. With a `timeout`, a TCP connection attempt that gets no answer
    /// fails with `TimedOut` when it is over (without one, the OS decides, about two minutes).
    pub(crate) fn connect(address: &Address, timeout: Option<Duration>) -> io::Result<Stream> {
        let backend = match address {
            Address::Tcp { host, port } => Backend::Tcp(tcp::connect(host, *port, timeout)?),
            Address::Unix(path) => Backend::Unix(unix::connect(path)?),
            Address::Abstract(name) => Backend::Unix(unix::connect_abstract(name)?),
        };
        Ok(Stream(backend))
    }

    /// A connected pair of Unix sockets: the link between a parent and a child it starts.
    pub(crate) fn pair() -> io::Result<(Stream, Stream)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Stream(Backend::Unix(a)), Stream(Backend::Unix(b))))
    }

    /// Lets the child process that `cmd` starts inherit this socket, and returns the number
    /// of the descriptor there. The socket must stay open until the child is spawned.
    pub(crate) fn inherit_into(&self, cmd: &mut Command) -> RawFd {
        unix::inherit_into(self.as_fd(), cmd)
    }

    /// Takes the socket that the parent passed with [`inherit_into`](Self::inherit_into).
    ///
    /// # Safety
    ///
    /// `fd` must be an open socket that nothing else in this process owns or will close.
    pub(crate) unsafe fn from_inherited(fd: RawFd) -> io::Result<Stream> {
        // SAFETY: forwarded from this function's contract.
        unsafe { unix::from_inherited(fd) }.map(|s| Stream(Backend::Unix(s)))
    }

    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        let backend = match &self.0 {
            Backend::Tcp(s) => Backend::Tcp(s.try_clone()?),
            Backend::Unix(s) => Backend::Unix(s.try_clone()?),
            Backend::Shm(c) => Backend::Shm(c.clone()),
        };
        Ok(Stream(backend))
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match &self.0 {
            Backend::Tcp(s) => s.set_read_timeout(t),
            Backend::Unix(s) => s.set_read_timeout(t),
            Backend::Shm(c) => {
                c.set_read_timeout(t);
                Ok(())
            }
        }
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match &self.0 {
            Backend::Tcp(s) => s.set_write_timeout(t),
            Backend::Unix(s) => s.set_write_timeout(t),
            Backend::Shm(c) => {
                c.set_write_timeout(t);
                Ok(())
            }
        }
    }

    /// Wakes every thread blocked on this socket, in this process, with end-of-stream.
    pub(crate) fn shutdown(&self) {
        let _ = match &self.0 {
            Backend::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Backend::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Backend::Shm(c) => {
                c.shutdown(std::net::Shutdown::Both);
                Ok(())
            }
        };
    }

    /// Ends the reading half only: a thread blocked reading this socket, in this process, wakes
    /// with end-of-stream and [`hung_up`](Self::hung_up) turns true, while the writing half
    /// stays open for a last message (a stopping server's goodbye).
    pub(crate) fn shutdown_read(&self) {
        let _ = match &self.0 {
            Backend::Tcp(s) => s.shutdown(std::net::Shutdown::Read),
            Backend::Unix(s) => s.shutdown(std::net::Shutdown::Read),
            Backend::Shm(c) => {
                c.shutdown(std::net::Shutdown::Read);
                Ok(())
            }
        };
    }

    /// Makes the connection detect a peer that vanished without closing it (a cut cable, a
    /// crashed host): see [`tcp::set_keepalive`]. Unix sockets need nothing: the kernel
    /// closes them when the peer dies.
    pub(crate) fn set_keepalive(&self, idle: Duration) -> io::Result<()> {
        match &self.0 {
            Backend::Tcp(s) => tcp::set_keepalive(s, idle),
            Backend::Unix(_) | Backend::Shm(_) => Ok(()),
        }
    }

    /// The server's side of the same-host fast path: a shared-memory channel for this Unix
    /// connection, as a stream, with the memfd to pass to the client and the ring size to tell
    /// it. `None` for a connection that is not a plain Unix socket.
    pub(crate) fn offer_channel(&self) -> io::Result<Option<(Stream, OwnedFd, u64)>> {
        let Backend::Unix(s) = &self.0 else { return Ok(None) };
        let (channel, fd) = Channel::create(s.try_clone()?)?;
        Ok(Some((Stream::from_channel(Arc::new(channel)), fd, shm::RING as u64)))
    }

    /// The client's side: the channel the server passed as `fd`, as a stream.
    pub(crate) fn accept_channel(&self, fd: OwnedFd, ring: u64) -> io::Result<Stream> {
        let Backend::Unix(s) = &self.0 else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "a channel needs a Unix socket"));
        };
        Ok(Stream::from_channel(Arc::new(Channel::open(s.try_clone()?, fd, ring)?)))
    }

    fn from_channel(channel: Arc<Channel>) -> Stream {
        Stream(Backend::Shm(channel))
    }

    /// Sends `bytes` with `fd` beside them (`SCM_RIGHTS`), on a Unix socket.
    pub(crate) fn send_with_fd(&self, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
        let Backend::Unix(s) = &self.0 else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "descriptors travel on Unix sockets"));
        };
        unix::send_with_fd(s, bytes, fd)
    }

    /// Reads what is there into `buf` (at least one byte), with the descriptor sent beside it,
    /// if any, on a Unix socket.
    pub(crate) fn recv_with_fd(&self, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
        let Backend::Unix(s) = &self.0 else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "descriptors travel on Unix sockets"));
        };
        unix::recv_with_fd(s, buf)
    }

    /// The shared-memory channel the connection's frames go through, if they moved to one.
    pub(crate) fn channel(&self) -> Option<&Arc<Channel>> {
        match &self.0 {
            Backend::Shm(c) => Some(c),
            _ => None,
        }
    }

    /// True when the frames go through shared memory.
    pub(crate) fn is_shared_memory(&self) -> bool {
        matches!(self.0, Backend::Shm(_))
    }

    /// True for a TCP connection (whose frames are sealed), false for a Unix socket.
    pub(crate) fn is_tcp(&self) -> bool {
        matches!(self.0, Backend::Tcp(_))
    }

    /// The peer, for logs and errors: `ip:port`, or `local peer` for a Unix socket.
    pub(crate) fn peer(&self) -> String {
        match &self.0 {
            Backend::Tcp(s) => tcp::peer(s),
            Backend::Unix(_) | Backend::Shm(_) => "local peer".into(),
        }
    }

    /// True when the peer has closed its end (its process died, or it closed the connection),
    /// checked without waiting and without reading.
    pub(crate) fn hung_up(&self) -> bool {
        hung_up(self.as_fd())
    }

    /// Waits up to `timeout` (`None`: for ever) until the socket has bytes to read or reached
    /// its end; true when it has. Reads nothing.
    pub(crate) fn poll_readable(&self, timeout: Option<Duration>) -> bool {
        poll_for(self.as_fd(), timeout)
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.0 {
            Backend::Tcp(s) => s.as_fd(),
            Backend::Unix(s) => s.as_fd(),
            Backend::Shm(c) => c.socket().as_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            Backend::Tcp(s) => s.read(buf),
            Backend::Unix(s) => s.read(buf),
            Backend::Shm(c) => c.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Backend::Tcp(s) => s.write(buf),
            Backend::Unix(s) => s.write(buf),
            Backend::Shm(c) => c.write(&[io::IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.0 {
            Backend::Tcp(s) => s.write_vectored(bufs),
            Backend::Unix(s) => s.write_vectored(bufs),
            Backend::Shm(c) => c.write(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Timed for Stream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Stream::set_read_timeout(self, timeout)
    }
}

impl Medium for Stream {
    fn in_memory(&self) -> bool {
        self.is_shared_memory()
    }

    fn has_available(&self, n: usize) -> bool {
        match &self.0 {
            Backend::Shm(c) => c.available(n) >= n,
            Backend::Tcp(_) | Backend::Unix(_) => false,
        }
    }
}

/// A stream whose reads and writes must all be done by one instant: each operation that has to
/// wait waits only for the time left, so a peer that sends one byte now and then gains nothing.
/// Past the deadline every operation fails with `TimedOut`.
#[derive(Debug)]
pub(crate) struct Until<'a> {
    stream: &'a mut Stream,
    deadline: Instant,
}

impl<'a> Until<'a> {
    pub(crate) fn new(stream: &'a mut Stream, deadline: Instant) -> Self {
        Until { stream, deadline }
    }

    fn left(&self) -> io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(io::Error::new(io::ErrorKind::TimedOut, "the deadline passed")),
        }
    }
}

impl Read for Until<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for Until<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `ppoll(2)` for `POLLIN` on `fd`, at most `timeout` (`None`: for ever; to the nanosecond,
/// where `poll(2)` counts milliseconds): true when it has bytes to read or reached its end.
fn poll_for(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: ppoll(2) on one valid pollfd on this stack frame, with a timespec on this stack
    // frame (or none) and no signal mask; the descriptor is borrowed, so it stays open for the
    // duration of the call.
    let n = unsafe { libc::ppoll(&mut p, 1, ts_ptr, std::ptr::null()) };
    n > 0
}

/// `poll(2)` for `POLLRDHUP` with a zero timeout: the peer of `fd` closed its end.
fn hung_up(fd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLRDHUP, revents: 0 };
    // SAFETY: poll(2) on one valid pollfd with a zero timeout; the descriptor is borrowed, so
    // it stays open for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// A listening socket. A Unix socket file is removed when the listener is dropped.
#[derive(Debug)]
pub(crate) struct Listener {
    backend: ListenerBackend,
    socket_file: Option<PathBuf>,
}

#[derive(Debug)]
enum ListenerBackend {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// Binds `address` and returns the listener with the real address (the port the OS chose).
    pub(crate) fn bind(address: &Address) -> io::Result<(Listener, Address)> {
        match address {
            Address::Tcp { host, port } => {
                let (l, port) = tcp::bind(host, *port)?;
                let real = Address::Tcp { host: host.clone(), port };
                Ok((Listener { backend: ListenerBackend::Tcp(l), socket_file: None }, real))
            }
            Address::Unix(path) => {
                let l = unix::bind(path)?;
                let listener = Listener { backend: ListenerBackend::Unix(l), socket_file: Some(path.clone()) };
                Ok((listener, address.clone()))
            }
            Address::Abstract(name) => {
                let l = unix::bind_abstract(name)?;
                Ok((Listener { backend: ListenerBackend::Unix(l), socket_file: None }, address.clone()))
            }
        }
    }

    /// Waits for the next connection. Fails, among other cases, once [`wake`](Self::wake) was
    /// called.
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        let backend = match &self.backend {
            ListenerBackend::Tcp(l) => Backend::Tcp(tcp::accept(l)?),
            ListenerBackend::Unix(l) => Backend::Unix(l.accept()?.0),
        };
        Ok(Stream(backend))
    }

    /// Makes a thread blocked in [`accept`](Self::accept) return, and every later `accept`
    /// fail: the listener stops taking connections (Linux fails `accept` on a listening socket
    /// that was shut down).
    pub(crate) fn wake(&self) {
        let fd = match &self.backend {
            ListenerBackend::Tcp(l) => l.as_fd(),
            ListenerBackend::Unix(l) => l.as_fd(),
        };
        shutdown(fd);
    }

    /// The socket file to remove when the server ends, if any.
    pub(crate) fn socket_file(&self) -> Option<&PathBuf> {
        self.socket_file.as_ref()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(p) = &self.socket_file {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `shutdown(2)` of both directions of a socket (std offers it for streams, not listeners).
fn shutdown(fd: BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: shutdown(2) only changes the state of the socket; the descriptor is borrowed, so
    // it stays open for the duration of the call.
    unsafe {
        libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One suite, run against every backend.
    fn each_address() -> Vec<Address> {
        let dir = std::env::temp_dir().join(format!("procman-transport-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        vec![
            Address::Tcp { host: "127.0.0.1".into(), port: 0 },
            Address::Unix(dir.join(format!("t-{:x}.sock", rand_u64()))),
            Address::unique_local(),
        ]
    }

    fn rand_u64() -> u64 {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        u64::from_le_bytes(b)
    }

    #[test]
    fn every_backend_connects_echoes_sees_hang_ups_and_wakes_its_listener() {
        for address in each_address() {
            let (listener, real) = Listener::bind(&address).unwrap();
            if address.is_tcp() {
                assert_ne!(real, address, "the port is resolved");
            } else {
                assert_eq!(real, address);
            }
            let mut client = Stream::connect(&real, Some(Duration::from_secs(5))).unwrap();
            let mut served = listener.accept().unwrap();
            client.write_all(b"ping").unwrap();
            let mut got = [0u8; 4];
            served.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping", "{real}");
            assert!(!served.hung_up(), "{real}");
            drop(client);
            let end = std::time::Instant::now() + Duration::from_secs(2);
            while !served.hung_up() && std::time::Instant::now() < end {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(served.hung_up(), "{real}: the peer closed");

            let listener = std::sync::Arc::new(listener);
            let l2 = listener.clone();
            let t = std::thread::spawn(move || l2.accept().map(drop));
            std::thread::sleep(Duration::from_millis(50));
            listener.wake();
            assert!(t.join().unwrap().is_err(), "{real}: a woken accept fails");
            let file = listener.socket_file().cloned();
            drop(listener);
            if let Some(f) = file {
                assert!(!f.exists(), "{real}: the socket file is removed");
            }
        }
    }

    #[test]
    fn nothing_listening_is_refused_or_not_found() {
        for address in each_address() {
            let address = match address {
                Address::Tcp { .. } => {
                    let (l, real) = Listener::bind(&address).unwrap();
                    drop(l);
                    real
                }
                other => other,
            };
            let e = Stream::connect(&address, None).unwrap_err();
            assert!(matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound), "{address}: {e:?}");
        }
    }

    #[test]
    fn a_deadline_bounds_all_the_reads_together_not_each_one() {
        let (mut a, b) = Stream::pair().unwrap();
        // A peer that sends one byte every 50 ms: each read is quick, the whole never arrives.
        let drip = std::thread::spawn(move || {
            let mut b = b;
            for _ in 0..40 {
                if b.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let start = Instant::now();
        let mut got = [0u8; 40];
        let e = Until::new(&mut a, start + Duration::from_millis(300)).read_exact(&mut got).unwrap_err();
        assert!(matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock), "{e:?}");
        let took = start.elapsed();
        assert!(took < Duration::from_millis(600), "ended after {took:?}");
        drop(a);
        drip.join().unwrap();
    }

    #[test]
    fn a_socket_pair_is_a_stream() {
        let (mut a, mut b) = Stream::pair().unwrap();
        a.write_all(b"x").unwrap();
        let mut got = [0u8; 1];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"x");
        assert_eq!(a.peer(), "local peer");
    }
}
