//! Client connections: one per thread per manager, plus one per process that anchors the
//! process's references.
//!
//! A server counts references per client *process*, and releases them when the last connection
//! of that process closes. Threads come and go, so each process keeps one extra connection per
//! manager (the anchor) open from the first proxy it holds until it exits: a proxy moved to
//! another thread keeps working after the thread that created it has ended, and a process that
//! dies (SIGKILL included) closes the anchor and so gives back everything it held.

use crate::address::Address;
use crate::auth;
use crate::error::{Error, Result};
use crate::transport::Stream;
use crate::unpoison;
use crate::wire::frames::{FrameReader, FrameWriter, ReadError};
use crate::wire::message::{self, Reply, Request};
use crate::wire::{self, Bytes};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a client waits for a server's side of the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a TCP connection to a manager may stay silent before the client probes it.
const CLIENT_KEEPALIVE: Duration = Duration::from_secs(30);

/// The largest reply a client accepts.
const MAX_REPLY: usize = 1 << 30;

/// The random id of this process as a client, fixed for its lifetime.
pub(crate) fn client_id() -> u128 {
    static ID: OnceLock<u128> = OnceLock::new();
    *ID.get_or_init(|| {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).expect("the OS random number generator failed");
        u128::from_le_bytes(b)
    })
}

/// Addresses of managers this process shut down: calls to them fail with `Error::Shutdown`.
fn shut_down() -> &'static Mutex<HashSet<Address>> {
    static S: OnceLock<Mutex<HashSet<Address>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

pub(crate) fn mark_shut_down(address: &Address) {
    unpoison::lock(shut_down()).insert(address.clone());
    unpoison::lock(anchors()).remove(address);
    let _ = CONNS.try_with(|c| c.try_borrow_mut().map(|mut m| m.remove(address)));
}

pub(crate) fn unmark_shut_down(address: &Address) {
    unpoison::lock(shut_down()).remove(address);
}

/// `Error::Shutdown` for a manager this process shut down, else the error `otherwise` makes.
fn unless_shut_down(address: &Address, otherwise: impl FnOnce(String) -> Error) -> Error {
    if unpoison::lock(shut_down()).contains(address) {
        Error::Shutdown { address: address.to_string() }
    } else {
        otherwise(address.to_string())
    }
}

/// A connection that was up broke.
fn lost(address: &Address, reason: impl std::fmt::Display) -> Error {
    unless_shut_down(address, |address| Error::ConnectionLost { address, reason: reason.to_string() })
}

/// [`lost`], for the async connections.
pub(crate) fn lost_connection(address: &Address, reason: &str) -> Error {
    lost(address, reason)
}

/// No connection could be made.
fn unreachable(address: &Address, reason: impl std::fmt::Display) -> Error {
    unless_shut_down(address, |address| Error::Unreachable { address, reason: reason.to_string() })
}

/// One authenticated connection to a manager: sealed frames over TCP, plain ones over a Unix
/// socket (see `auth.rs`).
#[derive(Debug)]
pub(crate) struct Conn {
    reader: FrameReader<Stream>,
    writer: FrameWriter<Stream>,
    address: Address,
    max_request: usize,
}

impl Conn {
    /// A connection for a thread's calls: on the same host, its frames move to a shared-memory
    /// channel when the manager offers one.
    pub(crate) fn open(address: &Address) -> Result<Conn> {
        Conn::open_with(address, &auth::key_for(address), client_id(), true)
    }

    /// A connection for one request, or for holding references (the anchor): its frames stay
    /// on the socket, since setting up a channel would cost more than it saves.
    pub(crate) fn open_once(address: &Address) -> Result<Conn> {
        Conn::open_with(address, &auth::key_for(address), client_id(), false)
    }

    /// Connects as client `client` (this process, except in fault-injection tests), asking for
    /// a shared-memory channel when `channel`.
    pub(crate) fn open_with(address: &Address, key: &auth::AuthKey, client: u128, channel: bool) -> Result<Conn> {
        Conn::establish(address, key, client, None, channel)
    }

    /// Connects, authenticates and says hello. With a `connect_timeout`, the connection
    /// attempt and the manager's side of the handshake each give up after it.
    ///
    /// Fails with [`Error::Unreachable`] when no connection can be made (or the manager is too
    /// busy to take one), [`Error::Authentication`] for a wrong key, and
    /// [`Error::ConnectionLost`] when the manager closes the connection during the handshake.
    fn establish(
        address: &Address,
        key: &auth::AuthKey,
        client: u128,
        connect_timeout: Option<Duration>,
        channel: bool,
    ) -> Result<Conn> {
        let mut stream = Stream::connect(address, connect_timeout).map_err(|e| unreachable(address, e))?;
        // A blocked call learns within about a minute that a remote manager vanished.
        let _ = stream.set_keepalive(CLIENT_KEEPALIVE);
        let handshake_timeout = connect_timeout.map_or(HANDSHAKE_TIMEOUT, |t| t.min(HANDSHAKE_TIMEOUT));
        stream.set_read_timeout(Some(handshake_timeout)).map_err(|e| Error::io("setting a socket timeout", e))?;
        let keys = auth::client_handshake(&mut stream, key, address, auth::sealing_for(address))?;
        stream.set_read_timeout(None).map_err(|e| Error::io("setting a socket timeout", e))?;
        let writer = stream.try_clone().map_err(|e| Error::io("cloning a socket", e))?;
        let (open, seal) = keys.map(|k| k.client()).unzip();
        let mut conn = Conn {
            reader: FrameReader::new(stream, open, MAX_REPLY),
            writer: FrameWriter::new(writer, seal),
            address: address.clone(),
            max_request: usize::MAX,
        };
        // The server answers the hello with the largest frame it accepts, so that a request too
        // large fails here, before it is sent, and the connection stays usable.
        let limit = conn.request(&Request::Hello { client, pid: std::process::id() })?;
        conn.max_request = wire::decode::<u64>(&limit, "the manager's frame limit").map_or(usize::MAX, |l| l as usize);
        if channel && !conn.writer.get_ref().is_tcp() && crate::transport::shared_memory_enabled() {
            conn.writer
                .get_ref()
                .set_read_timeout(Some(handshake_timeout))
                .map_err(|e| Error::io("setting a socket timeout", e))?;
            conn.open_channel()?;
        }
        Ok(conn)
    }

    /// Asks the manager (on the same host) to move this connection's frames to a shared-memory
    /// channel, and moves them when it agrees (see `transport/shm.rs`). The reply is read here,
    /// not by the frame reader, because the channel's memfd travels beside it.
    fn open_channel(&mut self) -> Result<()> {
        self.send(&Request::Channel)?;
        if self.reader.buffered() != 0 {
            return Err(self.protocol("bytes after the hello's reply"));
        }
        let socket = self.writer.get_ref();
        let lost = |e: std::io::Error| lost(&self.address, e);
        // The reply is a few bytes, sent in one piece with the descriptor on its first byte.
        let mut frame = vec![0u8; 64];
        let (mut got, fd) = socket.recv_with_fd(&mut frame).map_err(lost)?;
        if got == 0 {
            return Err(lost(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before its reply")));
        }
        let read_up_to = |want: usize, got: &mut usize, frame: &mut Vec<u8>| -> Result<()> {
            if want > frame.len() {
                frame.resize(want, 0);
            }
            while *got < want {
                match socket.recv_with_fd(&mut frame[*got..want]) {
                    Ok((0, _)) => return Err(lost(std::io::ErrorKind::UnexpectedEof.into())),
                    Ok((n, _)) => *got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(lost(e)),
                }
            }
            Ok(())
        };
        read_up_to(4, &mut got, &mut frame)?;
        let len = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        if len > 1024 {
            return Err(self.protocol(format_args!("a channel offer of {len} bytes")));
        }
        read_up_to(4 + len, &mut got, &mut frame)?;
        if got != 4 + len {
            return Err(self.protocol("bytes after the channel offer"));
        }
        let ring = match wire::take::<Reply<'_>>(&frame[4..got]) {
            Ok((Reply::Ok(Bytes(b)), [])) => wire::decode::<Option<u64>>(b, "a channel offer")?,
            Ok((Reply::Err(e), [])) => return Err(e),
            _ => return Err(self.protocol("an undecodable channel offer")),
        };
        let Some(ring) = ring else {
            socket.set_read_timeout(None).map_err(|e| Error::io("setting a socket timeout", e))?;
            return Ok(());
        };
        let Some(fd) = fd else { return Err(self.protocol("a channel offer without its memfd")) };
        let _ = socket.set_read_timeout(None);
        let channel = socket.accept_channel(fd, ring).map_err(|e| self.protocol(format_args!("its channel: {e}")))?;
        self.reader = FrameReader::new(channel.try_clone().map_err(lost)?, None, MAX_REPLY);
        self.writer = FrameWriter::new(channel, None);
        Ok(())
    }

    /// Sends a request and returns the payload of its reply.
    pub(crate) fn request(&mut self, req: &Request<'_>) -> Result<Vec<u8>> {
        if let Err(e) = self.send(req) {
            return Err(self.goodbye_or(e));
        }
        self.read_reply()
    }

    /// A stopping manager says goodbye (`Error::Shutdown`) before it closes: when a write found
    /// the connection closed, that goodbye, already here, is the better error.
    fn goodbye_or(&mut self, e: Error) -> Error {
        if matches!(e, Error::ConnectionLost { .. })
            && let Err(goodbye @ Error::Shutdown { .. }) = self.read_reply()
        {
            return goodbye;
        }
        e
    }

    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.reader.set_idle_timeout(timeout)
    }

    /// Reads one frame's body as it is, for fault-injection tests.
    pub(crate) fn read_frame(&mut self) -> Result<Vec<u8>> {
        match self.reader.read(None) {
            Ok(true) => Ok(self.reader.body().to_vec()),
            Ok(false) => Err(lost(&self.address, "the manager closed the connection")),
            Err(e) => Err(lost(&self.address, e)),
        }
    }

    /// Sends bytes that should be frames, for fault-injection tests; on a sealed connection
    /// each whole frame in them is sealed (see [`FrameWriter::send_raw`]).
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.send_raw(bytes)
    }

    /// Reads one reply. A reply that does not open (modified or injected on the way) or does
    /// not decode is [`Error::Protocol`], and the connection is not used again.
    pub(crate) fn read_reply(&mut self) -> Result<Vec<u8>> {
        self.read_reply_with(|payload| Ok(payload.to_vec()))
    }

    /// Calls `method` of object `id` with the encoded `args` and gives the payload of the reply
    /// to `f`, in place; large arguments are sent from where they lie.
    pub(crate) fn call_with<R>(
        &mut self,
        id: u64,
        method: &str,
        args: &[u8],
        tail: &[u8],
        f: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<R> {
        let len = args.len() + tail.len();
        let size = self.writer.encode_with_tail(&message::call_head(id, method, len), len)?;
        if size > self.max_request {
            return Err(Error::FrameTooLarge { size: size as u64, limit: self.max_request as u64 });
        }
        if let Err(e) = self.writer.send_with_tails(args, tail) {
            let e = lost(&self.address, e);
            return Err(self.goodbye_or(e));
        }
        self.read_reply_with(f)
    }

    /// [`read_reply`](Self::read_reply), with the payload read by `f` where it lies in the
    /// frame: a large result is decoded without being copied out first.
    pub(crate) fn read_reply_with<R>(&mut self, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        // A method that calls a manager (its own, say) waits here: its connection thread's
        // serving slot goes to the next, which may be the one that answers.
        crate::transport::gate::pause();
        match self.reader.read(None) {
            Ok(true) => {}
            Ok(false) => return Err(lost(&self.address, "the manager closed the connection")),
            Err(e @ ReadError::NotOpened(_)) => return Err(self.protocol(format_args!("a reply: {e}"))),
            Err(e) => return Err(lost(&self.address, e)),
        }
        match wire::take::<Reply<'_>>(self.reader.body()) {
            Ok((Reply::Ok(Bytes(b)), [])) => f(b),
            Ok((Reply::Err(e), [])) => Err(e),
            Ok((_, rest)) => Err(self.protocol(format_args!("{} unexpected bytes after a reply", rest.len()))),
            Err(e) => Err(self.protocol(format_args!("undecodable reply: {e}"))),
        }
    }

    fn protocol(&self, message: impl std::fmt::Display) -> Error {
        Error::Protocol { address: self.address.to_string(), message: message.to_string() }
    }

    /// Sends a request that gets no reply.
    pub(crate) fn send(&mut self, req: &Request<'_>) -> Result<()> {
        let size = self.writer.encode(req)?;
        if size > self.max_request {
            return Err(Error::FrameTooLarge { size: size as u64, limit: self.max_request as u64 });
        }
        self.writer.send().map_err(|e| lost(&self.address, e))
    }

    /// The frames of the connection, and the largest request the manager takes.
    pub(crate) fn into_parts(self) -> (FrameReader<Stream>, FrameWriter<Stream>, usize) {
        (self.reader, self.writer, self.max_request)
    }

    /// True when the manager closed this connection.
    fn hung_up(&self) -> bool {
        self.writer.get_ref().hung_up()
    }
}

thread_local! {
    static CONNS: RefCell<FxHashMap<Address, Conn>> = RefCell::new(FxHashMap::default());
}

fn anchors() -> &'static Mutex<HashMap<Address, Conn>> {
    static A: OnceLock<Mutex<HashMap<Address, Conn>>> = OnceLock::new();
    A.get_or_init(Default::default)
}

/// Runs `f` on this thread's connection to `address`, opening it if needed. A connection that
/// fails is dropped, so the next call reconnects.
pub(crate) fn with_conn<R>(address: &Address, f: impl FnOnce(&mut Conn) -> Result<R>) -> Result<R> {
    let mut f = Some(f);
    let out = CONNS.try_with(|cell| {
        let mut map = cell.try_borrow_mut().ok()?;
        let f = f.take().expect("called once");
        // One lookup for a call on a connection the thread has.
        let r = match map.get_mut(address) {
            Some(conn) => f(conn),
            None => {
                let conn = match Conn::open(address) {
                    Ok(c) => map.entry(address.clone()).or_insert(c),
                    Err(e) => return Some(Err(e)),
                };
                f(conn)
            }
        };
        if let Err(e) = &r
            && (e.is_connection_lost() || matches!(e, Error::Protocol { .. }))
        {
            map.remove(address);
        }
        Some(r)
    });
    match out {
        Ok(Some(r)) => r,
        // Thread-local storage is gone (thread exit) or in use (a call from inside a call):
        // use a connection of its own.
        _ => {
            let mut conn = Conn::open_once(address)?;
            (f.take().expect("called once"))(&mut conn)
        }
    }
}

/// Makes sure this process holds its anchor connection to `address`.
pub(crate) fn ensure_anchor(address: &Address) -> Result<()> {
    let mut map = unpoison::lock(anchors());
    // An anchor to a manager that went away (and may be back at the same address) is replaced.
    if map.get(address).is_none_or(Conn::hung_up) {
        let conn = Conn::open_once(address)?;
        map.insert(address.clone(), conn);
    }
    Ok(())
}

/// Sends a one-way request on an existing connection (this thread's, else the anchor); never
/// opens one. For decrefs, which must not block a `Drop` on an unreachable manager.
pub(crate) fn send_existing(address: &Address, req: &Request<'_>) {
    let sent = CONNS
        .try_with(|cell| {
            let mut map = cell.try_borrow_mut().ok()?;
            let conn = map.get_mut(address)?;
            if conn.send(req).is_err() {
                map.remove(address);
                return None;
            }
            Some(())
        })
        .ok()
        .flatten();
    if sent.is_none() {
        let mut map = unpoison::lock(anchors());
        if let Some(conn) = map.get_mut(address)
            && conn.send(req).is_err()
        {
            map.remove(address);
        }
    }
}

/// Opens a connection of its own (not shared with the thread), for shutdown and checks.
pub(crate) fn request_once(address: &Address, req: &Request<'_>) -> Result<Vec<u8>> {
    Conn::open_once(address)?.request(req)
}

/// Opens a connection for `connect()`, waiting for a manager that is still starting: while
/// nothing answers at the address (or the manager drops the connection during the handshake),
/// tries again after 10 ms, then 20, 40, ... up to 200 ms between attempts, until `within` has
/// passed; then fails with [`Error::Unreachable`]. Other errors (a wrong key) fail at once.
pub(crate) fn open_waiting(address: &Address, key: &auth::AuthKey, within: Duration) -> Result<Conn> {
    const FIRST_PAUSE: Duration = Duration::from_millis(10);
    const LONGEST_PAUSE: Duration = Duration::from_millis(200);
    let deadline = Instant::now() + within;
    let mut pause = FIRST_PAUSE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let reason = match Conn::establish(address, key, client_id(), Some(left), false) {
            Err(Error::Unreachable { reason, .. } | Error::ConnectionLost { reason, .. }) => reason,
            r => return r,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Unreachable {
                address: address.to_string(),
                reason: format!("nothing answered within {within:?} (last: {reason})"),
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}
