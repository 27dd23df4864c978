//! The floors procman is compared with, measured in the same run: a raw socket ping-pong of a
//! proxy call's sizes, a raw atomic store + load, a raw compare-exchange pair, and `memcpy`.

use crate::measure::{BoxResult, best_of, now_ns, per_op};
use procman::prelude::*;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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
