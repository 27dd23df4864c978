//! The floors procman is compared with, measured in the same run: a raw socket ping-pong of a
//! proxy call's sizes, a spin-then-futex ping-pong through one shared page, a raw atomic
//! store + load, a raw compare-exchange pair, and `memcpy`.

use crate::measure::{BoxResult, best_of, now_ns, per_op};
use procman::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::UnsafeCell;
use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The frame sizes of a `Counter::incr(1)` call on the wire (4-byte length + postcard body):
/// the request `Call { id, method: "incr", args: (±1,) }` and the reply `Ok(0 or 1)` (checked
/// with strace). The raw ping-pongs send exactly these sizes.
pub(crate) const CALL_REQUEST_BYTES: usize = 13;
pub(crate) const CALL_REPLY_BYTES: usize = 7;

/// The transport of a proxy call and of its raw ping-pong.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) enum Net {
    Unix,
    Tcp,
}

trait Duplex: Read + Write {}
impl<T: Read + Write> Duplex for T {}

/// The peer process of a raw ping-pong: connects to `addr`, answers every `req`-byte message
/// with a `rep`-byte one until the connection closes; returns how many it answered.
fn echo_peer((net, addr, req, rep): (Net, String, usize, usize)) -> u64 {
    let mut s: Box<dyn Duplex> = match net {
        Net::Unix => {
            let sa = UnixAddr::from_abstract_name(addr.as_bytes()).expect("abstract address");
            Box::new(UnixStream::connect_addr(&sa).expect("connect to the harness"))
        }
        Net::Tcp => {
            let s = TcpStream::connect(&addr).expect("connect to the harness");
            s.set_nodelay(true).expect("nodelay");
            Box::new(s)
        }
    };
    let mut rb = vec![0u8; req];
    let wb = vec![7u8; rep];
    let mut n = 0;
    while s.read_exact(&mut rb).is_ok() {
        if s.write_all(&wb).is_err() {
            break;
        }
        n += 1;
    }
    n
}

/// A connected raw peer process: the floor of a proxy call's round trip.
pub(crate) struct RawPeer {
    stream: Box<dyn Duplex>,
    process: Process<u64>,
    req: Vec<u8>,
    rep: Vec<u8>,
}

impl RawPeer {
    /// Starts the peer process and accepts its connection over `net`.
    pub(crate) fn start(net: Net) -> BoxResult<RawPeer> {
        let (stream, process): (Box<dyn Duplex>, Process<u64>) = match net {
            Net::Unix => {
                let name = format!("procman-bench-{}-{}", std::process::id(), now_ns());
                let l = UnixListener::bind_addr(&UnixAddr::from_abstract_name(name.as_bytes())?)?;
                l.set_nonblocking(true)?;
                let p = Process::spawn(echo_peer, (net, name, CALL_REQUEST_BYTES, CALL_REPLY_BYTES))?;
                let s = accept_within(|| l.accept().map(|(s, _)| s))?;
                s.set_nonblocking(false)?;
                (Box::new(s), p)
            }
            Net::Tcp => {
                let l = TcpListener::bind("127.0.0.1:0")?;
                l.set_nonblocking(true)?;
                let addr = l.local_addr()?.to_string();
                let p = Process::spawn(echo_peer, (net, addr, CALL_REQUEST_BYTES, CALL_REPLY_BYTES))?;
                let s = accept_within(|| l.accept().map(|(s, _)| s))?;
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
                (Box::new(s), p)
            }
        };
        Ok(RawPeer { stream, process, req: vec![1; CALL_REQUEST_BYTES], rep: vec![0; CALL_REPLY_BYTES] })
    }

    /// One request out, one reply back.
    pub(crate) fn round_trip(&mut self) {
        self.stream.write_all(&self.req).expect("raw write");
        self.stream.read_exact(&mut self.rep).expect("raw read");
    }

    /// Closes the connection and waits for the peer; returns how many requests it answered.
    pub(crate) fn finish(self) -> BoxResult<u64> {
        drop(self.stream);
        Ok(self.process.join()?)
    }
}

/// The bytes a spin-then-futex round trip copies each way, for the floor of a proxy call.
pub(crate) const FUTEX_PAYLOAD_BYTES: usize = 16;
/// The bytes each way of the spin-then-futex round trip beside the 1 KiB echo: what moving a
/// kibibyte between two cores costs, and how it compares with 16 bytes.
pub(crate) const FUTEX_KIB_BYTES: usize = 1024;

/// How long a side spins on the turn word before it sleeps in `FUTEX_WAIT`.
const SPIN: Duration = Duration::from_micros(20);

/// The values of the turn word of a [`FutexPage`].
const IDLE: u32 = 0;
const REQUEST: u32 = 1;
const REPLY: u32 = 2;
const QUIT: u32 = 3;

/// Which side announces its sleep in which slot of [`FutexPage::sleeping`].
const PARENT: usize = 0;
const CHILD: usize = 1;

/// The shared page of the spin-then-futex ping-pong of `N` bytes each way, at the start of a
/// `MAP_SHARED` mapping of one memfd in both processes. For 16 bytes, all of it fits in one
/// cache line.
#[repr(C, align(64))]
struct FutexPage<const N: usize> {
    /// Whose turn it is: `REQUEST` (the child's), `REPLY` (the parent's), `QUIT`; the futex word.
    turn: AtomicU32,
    /// 1 while that side may be asleep in `FUTEX_WAIT` on `turn` (`PARENT`, `CHILD`).
    sleeping: [AtomicU32; 2],
    request: UnsafeCell<[u8; N]>,
    reply: UnsafeCell<[u8; N]>,
}

/// A shared mapping of a memfd holding a [`FutexPage`], unmapped on drop.
struct SharedPage {
    ptr: *mut libc::c_void,
    len: usize,
}

impl SharedPage {
    /// Maps one page of `fd` read-write and shared.
    fn map(fd: RawFd) -> std::io::Result<SharedPage> {
        let len = 4096;
        // SAFETY: a fresh mapping chosen by the kernel (address null), of a file descriptor the
        // caller owns and has sized to at least `len` bytes; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(SharedPage { ptr, len })
    }

    fn page<const N: usize>(&self) -> &FutexPage<N> {
        const { assert!(std::mem::size_of::<FutexPage<N>>() <= 4096) };
        // SAFETY: the mapping is page-aligned, at least `size_of::<FutexPage<N>>()` long, readable
        // and writable, starts zeroed (a fresh memfd: `IDLE`, nobody asleep), and lives as long as
        // `self`. Every field is an atomic or an `UnsafeCell`, so both processes may access it
        // through shared references.
        unsafe { &*(self.ptr as *const FutexPage<N>) }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping made in `map`, unmapped only here; no reference
        // from `page()` outlives `self`.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// Sleeps in `FUTEX_WAIT` on `word` while it holds `seen`, at most 100 ms.
fn futex_wait(word: &AtomicU32, seen: u32) {
    let timeout = libc::timespec { tv_sec: 0, tv_nsec: 100_000_000 };
    // SAFETY: `word` is a valid, aligned u32 for the call's duration; `timeout` lives across the
    // call; the other arguments are ignored by FUTEX_WAIT. Not FUTEX_PRIVATE_FLAG: the word is
    // shared with another process. Spurious returns (EAGAIN, EINTR, timeout) are fine: the
    // caller re-checks the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &timeout as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes one process asleep in `FUTEX_WAIT` on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE only reads its address. Not private:
    // the sleeper is another process.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1i32, std::ptr::null::<libc::timespec>());
    }
}

impl<const N: usize> FutexPage<N> {
    /// Waits until `turn` holds a value `want` accepts and returns it: spins for up to
    /// [`SPIN`], then announces its sleep in `sleeping[me]` and sleeps in `FUTEX_WAIT`. `None`
    /// when `deadline` passes first.
    fn wait(&self, me: usize, want: impl Fn(u32) -> bool, deadline: Option<Instant>) -> Option<u32> {
        let spin_start = Instant::now();
        let mut spins = 0u32;
        loop {
            let v = self.turn.load(Ordering::Acquire);
            if want(v) {
                return Some(v);
            }
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(32) && spin_start.elapsed() >= SPIN {
                break;
            }
        }
        self.sleeping[me].store(1, Ordering::SeqCst);
        let got = loop {
            // SeqCst with the waker's SeqCst store of `turn` and load of `sleeping`: either this
            // load sees the new turn or the waker sees the announcement and wakes.
            let v = self.turn.load(Ordering::SeqCst);
            if want(v) {
                break Some(v);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break None;
            }
            futex_wait(&self.turn, v);
        };
        self.sleeping[me].store(0, Ordering::Relaxed);
        got
    }

    /// Hands the turn over (`v`), and wakes the peer only when it announced that it sleeps.
    fn post(&self, peer: usize, v: u32) {
        self.turn.store(v, Ordering::SeqCst);
        if self.sleeping[peer].load(Ordering::SeqCst) != 0 {
            futex_wake(&self.turn);
        }
    }
}

/// The child of the spin-then-futex ping-pong: maps the parent's memfd (`/proc/<pid>/fd/<fd>`),
/// answers every request with its bytes plus one until `QUIT`; returns how many it answered.
fn futex_peer<const N: usize>((parent, fd): (u32, RawFd)) -> u64 {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/{parent}/fd/{fd}"))
        .expect("open the parent's memfd");
    let shared = SharedPage::map(file.as_raw_fd()).expect("map the shared page");
    drop(file);
    let page = shared.page::<N>();
    let mut n = 0;
    while page.wait(CHILD, |v| v == REQUEST || v == QUIT, None) == Some(REQUEST) {
        // SAFETY: the turn is `REQUEST`: the parent wrote `request` before handing it over and
        // touches neither buffer until this side posts `REPLY`.
        unsafe {
            let mut b = *page.request.get();
            for x in &mut b {
                *x = x.wrapping_add(1);
            }
            *page.reply.get() = b;
        }
        page.post(PARENT, REPLY);
        n += 1;
    }
    n
}

/// A spin-then-futex ping-pong peer through one shared page (a memfd mapped `MAP_SHARED` in
/// both processes), `N` bytes each way: the floor of a round trip through shared memory
/// between two processes.
pub(crate) struct FutexPeer<const N: usize> {
    shared: SharedPage,
    // The memfd, kept open until the end so that the child can open it through /proc.
    _memfd: OwnedFd,
    process: Process<u64>,
    request: [u8; N],
}

impl<const N: usize> FutexPeer<N> {
    /// Creates the memfd (nothing in /dev/shm: it has no name in any file system), maps it and
    /// starts the peer process, which maps it too.
    pub(crate) fn start() -> BoxResult<FutexPeer<N>> {
        // SAFETY: a NUL-terminated name and valid flags; the returned descriptor is checked and
        // owned below.
        let fd = unsafe { libc::memfd_create(c"procman-bench-futex".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
        std::fs::File::from(memfd.try_clone()?).set_len(4096)?;
        let shared = SharedPage::map(memfd.as_raw_fd())?;
        shared.page::<N>().turn.store(IDLE, Ordering::Release);
        let process = Process::spawn(futex_peer::<N>, (std::process::id(), memfd.as_raw_fd()))?;
        Ok(FutexPeer { shared, _memfd: memfd, process, request: [0; N] })
    }

    /// `N` bytes to the peer, `N` bytes back.
    pub(crate) fn round_trip(&mut self) {
        let page = self.shared.page::<N>();
        self.request[0] = self.request[0].wrapping_add(1);
        // SAFETY: the turn is not `REQUEST` (it is `IDLE` or `REPLY`): the child does not touch
        // the buffers until this side posts `REQUEST`.
        unsafe { *page.request.get() = self.request };
        page.post(CHILD, REQUEST);
        let deadline = Some(Instant::now() + Duration::from_secs(10));
        page.wait(PARENT, |v| v == REPLY, deadline).expect("the futex peer answers within 10 s");
        // SAFETY: the turn is `REPLY`: the child wrote `reply` before handing it over and no
        // longer touches the buffers.
        let reply = unsafe { *page.reply.get() };
        assert_eq!(reply[0], self.request[0].wrapping_add(1), "the futex peer's reply");
    }

    /// Tells the peer to stop and waits for it; returns how many requests it answered.
    pub(crate) fn finish(self) -> BoxResult<u64> {
        self.shared.page::<N>().post(CHILD, QUIT);
        Ok(self.process.join()?)
    }
}

fn accept_within<S>(mut accept: impl FnMut() -> std::io::Result<S>) -> BoxResult<S> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match accept() {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Seconds per raw atomic store (Release) + load (Acquire) of `word`, `n` times: the floor of
/// `SharedValue<u64>`'s set + get.
pub(crate) fn atomic_store_load(word: &AtomicU64, n: usize) -> f64 {
    let mut acc = 0u64;
    let t = per_op(n / 10, n, || {
        let a = black_box(word);
        a.store(black_box(acc), Ordering::Release);
        acc = acc.wrapping_add(a.load(Ordering::Acquire)).wrapping_add(1);
    });
    black_box(acc);
    t
}

/// Seconds per raw compare-exchange pair (0 -> 1 Acquire, 1 -> 0 Release) on `word`, `n`
/// times: the floor of an uncontended lock's acquire + release.
pub(crate) fn compare_exchange_pair(word: &AtomicU32, n: usize) -> f64 {
    per_op(n / 10, n, || {
        let a = black_box(word);
        let _ = black_box(a.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed));
        let _ = black_box(a.compare_exchange(1, 0, Ordering::Release, Ordering::Relaxed));
    })
}

/// Seconds per `memcpy` of `src` into `dst` (private buffers): the best of `rounds` rounds of
/// `n` copies.
pub(crate) fn memcpy(dst: &mut [f64], src: &[f64], rounds: usize, n: usize) -> f64 {
    best_of(rounds, || {
        per_op(2, n, || {
            black_box(&mut *dst).copy_from_slice(black_box(src));
        })
    })
}
