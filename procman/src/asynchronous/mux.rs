//! The client side of a multiplexed connection: one per manager per process, shared by every
//! async call of the process, whatever task or thread makes it.
//!
//! A call registers a slot under a fresh request id, writes its frame (a [`Tagged`] header,
//! then the request) and waits for the slot to be filled. So 10,000 pending calls cost 10,000
//! slots, one connection and one thread.
//!
//! # Who reads the replies
//!
//! The task that made a call reads the replies itself when it is first polled: it takes the
//! reader (if no one else holds it), waits in place a short, bounded time for bytes, and hands
//! every reply it reads to its slot, its own included. On the same-host fast path it waits as
//! a blocking call does, spinning on the channel's ring and then sleeping on its doorbell; on a
//! socket it looks at the socket (`poll(2)` with no timeout), yielding its CPU between looks to
//! the manager's thread that its write woke (see `Source::wait_for_bytes`), until the reply is
//! there. Most calls are answered within it, and then an async call costs what a blocking one
//! does: no thread hand-off, no extra wake-up. A call that is not answered in time (a `get`
//! that waits) registers its waker and returns pending; from then on the connection's reader
//! thread reads for it, sleeping on the socket (the channel's doorbell) while anyone waits, and
//! wakes the task when its reply comes. How long a call waits
//! in place follows how long replies took, as the fast path's spin does (`Spin`, with its
//! backoff): calls that wait long (gets of an empty queue, a slow remote manager) soon stop
//! holding their executor thread at all, so it is held for at most 50 µs a call, and mostly
//! not at all.
//!
//! # Cancellation
//!
//! Dropping a pending call's future leaves its slot abandoned and sends `Cancel`: the manager
//! stops the call's waits (a `get` takes no item, an `acquire` takes nothing). When the reply
//! was on its way already (the call had finished), the result is not lost: if the method
//! declares an undo (`#[shared(undo = ..)]`: a queue's `get` puts the item back, a lock's
//! `acquire` releases), the client calls it with the result, as the same owner.

use crate::address::Address;
use crate::client::Conn;
use crate::error::{Error, Result};
use crate::server::MULTIPLEXED_CONNECTION;
use crate::transport::Stream;
use crate::transport::shm::{Channel, Spin, Spinning};
use crate::wire::frames::{FrameReader, FrameWriter};
use crate::wire::message::{Reply, Request, Tagged};
use crate::wire::{self, Bytes};
use rustc_hash::FxHashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, TryLockError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The longest a polled call reads replies for others before it leaves the reading to the
/// reader thread.
const MAX_READING: Duration = Duration::from_micros(200);

/// The longest the reader thread sleeps before it looks again (see `Channel::sleep_for_bytes`).
const REPOLL: Duration = Duration::from_millis(10);

/// How often the reader thread, while no call needs it, looks whether the manager closed the
/// connection: a connection to a manager that stopped is closed (and its thread ends) within
/// this time, not at the process's next call to it.
const IDLE_LOOK: Duration = Duration::from_secs(1);

/// Where the bytes of the replies arrive, as the readers of a connection wait for them.
enum Source {
    /// The same-host fast path: the channel's ring, and its socket as doorbell.
    Shm(Arc<Channel>),
    /// A socket (TCP, or the fast path off): polled, with a spin budget of its own.
    Socket(Stream, Spin),
}

impl Source {
    /// True when bytes wait (or the connection ended, which a read then reports).
    fn has_bytes(&self) -> bool {
        match self {
            Source::Shm(c) => c.has_bytes() || c.is_gone(),
            Source::Socket(s, _) => s.poll_readable(Some(Duration::ZERO)),
        }
    }

    /// Waits a short, bounded time for bytes in place (see `Channel::wait_for_bytes`). On a
    /// socket it spins on `poll(2)` with a zero timeout, yielding its CPU between two looks: a
    /// sleep with a timeout this short (`ppoll`) was measured to wake two to three times later
    /// than the reply came, where a look every fraction of a microsecond sees it at once. The
    /// yield is what makes the spin pay: the manager's thread, asleep in its read, is woken by
    /// this call's write onto this CPU (the kernel's wake-up of a socket's reader prefers the
    /// writer's CPU, which it expects to sleep), so a spin that kept the CPU would hold up the
    /// very reply it waits for until the scheduler preempted it. On the development machine,
    /// where a blocking call over a Unix socket took 5.5 µs, an async one took 25–35 µs that
    /// way and takes 7.5–10 µs with the yield. True when they came.
    fn wait_for_bytes(&self) -> bool {
        let (stream, spin) = match self {
            Source::Shm(c) => return c.wait_for_bytes(),
            Source::Socket(s, spin) => (s, spin),
        };
        let budget = spin.budget();
        if budget.is_zero() {
            return false;
        }
        let Some(_spinning) = Spinning::enter() else { return false };
        let start = Instant::now();
        loop {
            if stream.poll_readable(Some(Duration::ZERO)) {
                spin.waited(start.elapsed());
                spin.paid();
                return true;
            }
            if start.elapsed() >= budget {
                spin.missed();
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// Sleeps until bytes wait, the connection ended, or [`REPOLL`] passed, without reading
    /// them.
    fn sleep_for_bytes(&self) {
        match self {
            Source::Shm(c) => c.sleep_for_bytes(REPOLL),
            Source::Socket(s, _) => {
                s.poll_readable(Some(REPOLL));
            }
        }
    }

    /// Counts a wait for a reply that the reader thread read (see `Channel::waited`).
    fn waited(&self, w: Duration) {
        match self {
            Source::Shm(c) => c.waited(w),
            Source::Socket(_, spin) => spin.waited(w),
        }
    }
}

/// What a call's future hands to the connection when it is dropped after its result came:
/// the method that puts the result back (called with the result as its argument).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Undo {
    pub(crate) object: u64,
    pub(crate) method: &'static str,
}

enum Slot {
    /// The call waits; the waker of its task, once it returned pending.
    Waiting(Option<Waker>),
    /// The reply came and its future has not taken it yet.
    Done(Result<Vec<u8>>),
    /// The future was dropped first: the reply, when it comes, is undone (or dropped).
    Abandoned(Option<(Undo, u64)>),
}

impl Slot {
    /// Whether only the reader thread will read this slot's reply: its task sleeps, or is gone.
    fn needs_reader(&self) -> bool {
        matches!(self, Slot::Waiting(Some(_)) | Slot::Abandoned(_))
    }
}

struct State {
    pending: FxHashMap<u64, Slot>,
    /// Why the connection ended; no call is made on it again.
    dead: Option<String>,
    /// How many slots need the reader thread (see [`Slot::needs_reader`]).
    background: usize,
    /// The reader thread waits for `background` to become non-zero.
    idle: bool,
}

impl State {
    /// Puts `slot` (or nothing) at `id`, and returns what was there; keeps `background`. True
    /// in the second place when the reader thread must be woken.
    fn replace(&mut self, id: u64, slot: Option<Slot>) -> (Option<Slot>, bool) {
        let adds = slot.as_ref().is_some_and(Slot::needs_reader);
        let old = match slot {
            Some(s) => self.pending.insert(id, s),
            None => self.pending.remove(&id),
        };
        if old.as_ref().is_some_and(Slot::needs_reader) {
            self.background -= 1;
        }
        let mut wake = false;
        if adds {
            self.background += 1;
            wake = self.background == 1 && self.idle;
        }
        (old, wake)
    }
}

/// One multiplexed connection to a manager.
pub(crate) struct Mux {
    address: Address,
    writer: Mutex<FrameWriter<Stream>>,
    max_request: usize,
    reader: Mutex<FrameReader<Stream>>,
    /// Where the replies arrive.
    source: Source,
    state: Mutex<State>,
    /// Set once `State::dead` is (read without its lock).
    ended: std::sync::atomic::AtomicBool,
    /// The reader thread waits here while no slot needs it.
    work: Condvar,
    next_id: AtomicU64,
}

/// What a call that read the replies itself got.
enum Own<'a> {
    /// Its reply, decoded: the last `n` bytes of the frame the reader read last (see
    /// [`own_reply`]), or the error the manager sent.
    Mine(MutexGuard<'a, FrameReader<Stream>>, Result<usize>),
    /// The connection ended, for this reason.
    Ended(String),
    /// Not its reply, yet: it still holds the reader.
    NotYet(MutexGuard<'a, FrameReader<Stream>>),
}

/// A manager's connection in the registry: up, or being made (by one thread, whatever the
/// number of calls that wait for it).
enum Entry {
    Ready(Arc<Mux>),
    Connecting(Vec<Waker>),
    /// The last attempt failed: the calls that waited for it get its error; a new call tries
    /// again.
    Failed(Error),
}

thread_local! {
    /// The manager this thread's last async call went to, and its connection.
    static LAST: std::cell::RefCell<Option<(Address, std::sync::Weak<Mux>)>> = const { std::cell::RefCell::new(None) };
}

fn muxes() -> &'static Mutex<FxHashMap<Address, Entry>> {
    static M: OnceLock<Mutex<FxHashMap<Address, Entry>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

impl Mux {
    /// This process's multiplexed connection to `address`, made when there is none or it
    /// ended: by one thread of its own (so that no executor thread blocks on the handshake),
    /// whatever the number of calls that wait for it.
    pub(crate) fn get(address: &Address) -> impl Future<Output = Result<Arc<Mux>>> + Send + '_ {
        let mut waited = false;
        std::future::poll_fn(move |cx| {
            let mut map = crate::unpoison::lock(muxes());
            match map.get_mut(address) {
                Some(Entry::Ready(m)) if m.is_alive() => return Poll::Ready(Ok(m.clone())),
                Some(Entry::Connecting(waiters)) => {
                    waiters.push(cx.waker().clone());
                    waited = true;
                    return Poll::Pending;
                }
                Some(Entry::Failed(e)) if waited => return Poll::Ready(Err(e.duplicate())),
                _ => {}
            }
            waited = true;
            map.insert(address.clone(), Entry::Connecting(vec![cx.waker().clone()]));
            drop(map);
            let a = address.clone();
            let spawned = std::thread::Builder::new().name("procman-async-connect".into()).spawn(move || {
                let made = Mux::connect(&a);
                let mut map = crate::unpoison::lock(muxes());
                let waiters = match map.remove(&a) {
                    Some(Entry::Connecting(w)) => w,
                    _ => Vec::new(),
                };
                match made {
                    Ok(m) => {
                        map.insert(a, Entry::Ready(m));
                    }
                    Err(e) => {
                        map.insert(a, Entry::Failed(e));
                    }
                }
                drop(map);
                for w in waiters {
                    w.wake();
                }
            });
            if let Err(e) = spawned {
                crate::unpoison::lock(muxes()).remove(address);
                return Poll::Ready(Err(Error::io("starting a thread to connect", e)));
            }
            Poll::Pending
        })
    }

    /// The connection to `address` that this thread used last: the registry's lock and lookup
    /// are not needed again for each call.
    fn cached(address: &Address) -> Option<Arc<Mux>> {
        LAST.with(|last| {
            let last = last.borrow();
            let (a, m) = last.as_ref()?;
            if a == address { m.upgrade() } else { None }
        })
    }

    /// Forgets `mux` as this thread's last connection; true when it was.
    fn forget(mux: &Arc<Mux>) -> bool {
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            let was = last.as_ref().is_some_and(|(_, m)| std::ptr::eq(m.as_ptr(), Arc::as_ptr(mux)));
            if was {
                *last = None;
            }
            was
        })
    }

    fn cache(address: &Address, mux: &Arc<Mux>) {
        LAST.with(|last| *last.borrow_mut() = Some((address.clone(), Arc::downgrade(mux))));
    }

    fn connect(address: &Address) -> Result<Arc<Mux>> {
        let mut conn = Conn::open(address)?;
        conn.request(&Request::Multiplex)?;
        let (reader, writer, max_request) = conn.into_parts();
        let source = match reader.get_ref().channel() {
            Some(c) => Source::Shm(c.clone()),
            None => Source::Socket(
                reader.get_ref().try_clone().map_err(|e| Error::io("watching an async connection", e))?,
                Spin::new(),
            ),
        };
        let mux = Arc::new(Mux {
            address: address.clone(),
            writer: Mutex::new(writer),
            max_request,
            reader: Mutex::new(reader),
            source,
            state: Mutex::new(State { pending: FxHashMap::default(), dead: None, background: 0, idle: false }),
            ended: std::sync::atomic::AtomicBool::new(false),
            work: Condvar::new(),
            next_id: AtomicU64::new(1),
        });
        let m = mux.clone();
        std::thread::Builder::new()
            .name("procman-async".into())
            .spawn(move || {
                let reason = m.read_replies();
                m.end(&reason);
            })
            .map_err(|e| Error::io("starting the thread of an async connection", e))?;
        Ok(mux)
    }

    fn is_alive(&self) -> bool {
        crate::unpoison::lock(&self.state).dead.is_none()
    }

    fn lost(&self, reason: &str) -> Error {
        crate::client::lost_connection(&self.address, reason)
    }

    /// The reader thread: reads the replies that no polled call reads, until the connection
    /// ends; returns why it ended.
    fn read_replies(&self) -> String {
        loop {
            let idle = {
                let mut state = crate::unpoison::lock(&self.state);
                let mut idle = false;
                while state.background == 0 && state.dead.is_none() && !idle {
                    state.idle = true;
                    let (s, waited) = crate::unpoison::wait_timeout(&self.work, state, IDLE_LOOK);
                    state = s;
                    idle = waited.timed_out() && state.background == 0;
                }
                state.idle = false;
                if let Some(reason) = &state.dead {
                    return reason.clone();
                }
                idle
            };
            if idle {
                // Nobody waits: only a manager that closed the connection (or a reply that a
                // call reading for itself is about to take) leaves bytes to read.
                if self.source.has_bytes()
                    && let Some(mut reader) = self.try_reader()
                    && let Err(reason) = self.read_waiting(&mut reader, None)
                {
                    return reason;
                }
                continue;
            }
            let mut reader = crate::unpoison::lock(&self.reader);
            if let Err(reason) = self.read_waiting(&mut reader, None) {
                return reason;
            }
            drop(reader);
            if crate::unpoison::lock(&self.state).background > 0 {
                self.source.sleep_for_bytes();
            }
        }
    }

    /// Reads the replies whose bytes are there (and the end of the connection, if it ended),
    /// each to its slot; stops at `own`'s reply and returns it.
    fn read_waiting(
        &self,
        reader: &mut FrameReader<Stream>,
        own: Option<u64>,
    ) -> std::result::Result<Option<Result<usize>>, String> {
        while reader.buffered() > 0 || self.source.has_bytes() {
            if let Some(reply) = self.read_one(reader, own)? {
                return Ok(Some(reply));
            }
        }
        Ok(None)
    }

    /// Reads one reply and gives it to its slot; when it is `own`'s, returns it as it lies in
    /// the reader (the length of its payload at the end of the frame; see [`own_reply`]).
    fn read_one(
        &self,
        reader: &mut FrameReader<Stream>,
        own: Option<u64>,
    ) -> std::result::Result<Option<Result<usize>>, String> {
        match reader.read(None) {
            Ok(true) => {}
            Ok(false) => return Err("the manager closed the connection".to_string()),
            Err(e) => return Err(e.to_string()),
        }
        let (id, reply) = decode_reply(reader.body())?;
        if Some(id) == own {
            return Ok(Some(reply.map(<[u8]>::len)));
        }
        if id == MULTIPLEXED_CONNECTION {
            return match reply {
                Err(e) => Err(e.to_string()),
                Ok(_) => Ok(None),
            };
        }
        let reply = reply.map(<[u8]>::to_vec);
        let mut state = crate::unpoison::lock(&self.state);
        match state.replace(id, None).0 {
            Some(Slot::Waiting(waker)) => {
                state.replace(id, Some(Slot::Done(reply)));
                drop(state);
                if let Some(w) = waker {
                    w.wake();
                }
            }
            Some(Slot::Abandoned(Some((undo, owner)))) => {
                drop(state);
                if let Ok(bytes) = reply {
                    self.undo(undo, owner, &bytes);
                }
            }
            // An abandoned call without undo, or an id this side never sent.
            _ => {}
        }
        Ok(None)
    }

    /// The reader, unless another call or the reader thread holds it.
    fn try_reader(&self) -> Option<MutexGuard<'_, FrameReader<Stream>>> {
        match self.reader.try_lock() {
            Ok(r) => Some(r),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Call `id` reads the replies itself (see the module docs), holding the reader: its own
    /// when it comes within the wait in place. The others go to their slots.
    fn read_own<'a>(&self, mut reader: MutexGuard<'a, FrameReader<Stream>>, id: u64) -> Own<'a> {
        let (mut start, mut first): (Option<Instant>, bool) = (None, true);
        loop {
            match self.read_waiting(&mut reader, Some(id)) {
                Ok(Some(reply)) => return Own::Mine(reader, reply),
                Ok(None) => {}
                Err(reason) => {
                    drop(reader);
                    self.end(&reason);
                    return Own::Ended(reason);
                }
            }
            // After a first wait, the replies that came were others': this call reads for
            // them only so long.
            if let Some(start) = start
                && start.elapsed() > MAX_READING
            {
                return Own::NotYet(reader);
            }
            if !self.source.wait_for_bytes() {
                return Own::NotYet(reader);
            }
            if start.is_none() && !first {
                start = Some(Instant::now());
            }
            first = false;
        }
    }

    /// A call that has a slot, polled for the first time, reads the replies itself when it
    /// can take the reader: `None` when its reply did not come (or went to its slot).
    fn read_own_slotted(&self, id: u64) -> Option<Result<Vec<u8>>> {
        match self.read_own(self.try_reader()?, id) {
            Own::Mine(reader, reply) => {
                let reply = own_reply(&reader, reply, |b| Ok(b.to_vec()));
                drop(reader);
                crate::unpoison::lock(&self.state).replace(id, None);
                Some(reply)
            }
            // The slot holds the error.
            Own::Ended(_) | Own::NotYet(_) => None,
        }
    }

    /// The connection ended: every waiting call fails, and the next call makes a new one.
    fn end(&self, reason: &str) {
        let wakers: Vec<Waker> = {
            let mut state = crate::unpoison::lock(&self.state);
            if state.dead.is_some() {
                return;
            }
            state.dead = Some(reason.to_string());
            self.ended.store(true, Ordering::Release);
            let mut wakers = Vec::new();
            for slot in state.pending.values_mut() {
                if let Slot::Waiting(w) = slot {
                    wakers.extend(w.take());
                    *slot = Slot::Done(Err(crate::client::lost_connection(&self.address, reason)));
                }
            }
            state.pending.retain(|_, s| matches!(s, Slot::Done(_)));
            state.background = 0;
            wakers
        };
        self.work.notify_all();
        for w in wakers {
            w.wake();
        }
        let mut map = crate::unpoison::lock(muxes());
        if matches!(map.get(&self.address), Some(Entry::Ready(m)) if std::ptr::eq(Arc::as_ptr(m), self)) {
            map.remove(&self.address);
        }
    }

    /// Sends `req` as request `id` of `owner`.
    fn send(&self, id: u64, owner: u64, req: &Request<'_>) -> Result<()> {
        let mut w = crate::unpoison::lock(&self.writer);
        let size = w.encode(&(Tagged::Request { id, owner }, req))?;
        if size > self.max_request {
            return Err(Error::FrameTooLarge { size: size as u64, limit: self.max_request as u64 });
        }
        w.send().map_err(|e| self.lost(&e.to_string()))
    }

    /// Puts `slot` at `id`, waking the reader thread when it is needed now.
    fn set_slot(&self, mut state: MutexGuard<'_, State>, id: u64, slot: Slot) {
        let (_, wake) = state.replace(id, Some(slot));
        drop(state);
        if wake {
            self.work.notify_one();
        }
    }

    /// Calls the undo of a result that nobody awaits any more, as its owner; its own reply is
    /// not awaited.
    fn undo(&self, undo: Undo, owner: u64, result: &[u8]) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = crate::unpoison::lock(&self.state);
        self.set_slot(state, id, Slot::Abandoned(None));
        let req = Request::Call { id: undo.object, method: undo.method, args: Bytes(result) };
        if self.send(id, owner, &req).is_err() {
            crate::unpoison::lock(&self.state).replace(id, None);
        }
    }

    fn cancel(&self, id: u64) {
        let mut w = crate::unpoison::lock(&self.writer);
        if w.encode(&Tagged::Cancel { id }).is_ok() {
            let _ = w.send();
        }
    }
}

/// A reply frame: the request id, then the reply.
fn decode_reply(body: &[u8]) -> std::result::Result<(u64, Result<&[u8]>), String> {
    let (id, rest) = wire::take::<u64>(body).map_err(|e| format!("an undecodable reply: {e}"))?;
    match wire::take::<Reply<'_>>(rest) {
        Ok((Reply::Ok(Bytes(b)), [])) => Ok((id, Ok(b))),
        Ok((Reply::Err(e), [])) => Ok((id, Err(e))),
        Ok((_, rest)) => Err(format!("{} unexpected bytes after a reply", rest.len())),
        Err(e) => Err(format!("an undecodable reply: {e}")),
    }
}

/// The result of the reply that [`Mux::read_own`] decoded and left in `reader`, its payload
/// (the frame's last `n` bytes) read by `f` where it lies.
fn own_reply<R>(reader: &FrameReader<Stream>, reply: Result<usize>, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
    let n = reply?;
    let body = reader.body();
    f(&body[body.len() - n..])
}

/// Sends `req` on this process's multiplexed connection to `address`, as `owner`, and waits
/// for its reply; dropping the future cancels the call (see the module docs), undoing its
/// result with `undo` if it had come.
pub(crate) async fn request(address: &Address, owner: u64, req: &Request<'_>, undo: Option<Undo>) -> Result<Vec<u8>> {
    request_with(address, owner, req, undo, |b| Ok(b.to_vec())).await
}

/// [`request`], with the reply's payload read by `f`: where it lies in the frame when the call
/// read its own reply (the common case, no copy), else from the copy its slot kept.
pub(crate) async fn request_with<R>(
    address: &Address,
    owner: u64,
    req: &Request<'_>,
    undo: Option<Undo>,
    f: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<R> {
    let mut cached = Mux::cached(address);
    let mut tries = 0;
    let mux = loop {
        tries += 1;
        let mux = match cached.take() {
            Some(m) => m,
            None => {
                let m = Mux::get(address).await?;
                Mux::cache(address, &m);
                m
            }
        };
        if !mux.ended.load(Ordering::Acquire) {
            break mux;
        }
        // The connection this thread used last ended: the registry makes a new one.
        if !(Mux::forget(&mux) && tries == 1) {
            let reason = crate::unpoison::lock(&mux.state).dead.clone().unwrap_or_default();
            return Err(mux.lost(&reason));
        }
    };
    let id = mux.next_id.fetch_add(1, Ordering::Relaxed);
    let undo = undo.map(|u| (u, owner));
    // While this call holds the reader, nobody else reads its reply: it needs no slot unless
    // it has to leave the reading to others.
    let sent = match mux.try_reader() {
        Some(reader) => {
            mux.send(id, owner, req)?;
            let reader = match mux.read_own(reader, id) {
                Own::Mine(reader, reply) => return own_reply(&reader, reply, f),
                Own::Ended(reason) => return Err(mux.lost(&reason)),
                Own::NotYet(reader) => reader,
            };
            let mut state = crate::unpoison::lock(&mux.state);
            if let Some(reason) = &state.dead {
                return Err(mux.lost(reason));
            }
            state.replace(id, Some(Slot::Waiting(None)));
            drop(state);
            drop(reader);
            true
        }
        None => false,
    };
    if sent {
        let bytes = Pending { mux, id, undo, finished: false, slept: Some(Instant::now()) }.await?;
        return f(&bytes);
    }
    {
        let mut state = crate::unpoison::lock(&mux.state);
        if let Some(reason) = &state.dead {
            return Err(mux.lost(reason));
        }
        state.replace(id, Some(Slot::Waiting(None)));
    }
    let pending = Pending { mux, id, undo, finished: false, slept: None };
    if let Err(e) = pending.mux.send(id, owner, req) {
        let mut pending = pending;
        pending.finished = true;
        crate::unpoison::lock(&pending.mux.state).replace(id, None);
        return Err(e);
    }
    f(&pending.await?)
}

/// A call whose frame was sent, until its reply is taken.
struct Pending {
    mux: Arc<Mux>,
    id: u64,
    undo: Option<(Undo, u64)>,
    finished: bool,
    /// When the call left the reading to the reader thread; `None` before its first poll.
    slept: Option<Instant>,
}

impl Future for Pending {
    type Output = Result<Vec<u8>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        if self.slept.is_none() {
            if let Some(reply) = self.mux.read_own_slotted(id) {
                self.finished = true;
                return Poll::Ready(reply);
            }
            self.slept = Some(Instant::now());
        }
        let mux = self.mux.clone();
        let mut state = crate::unpoison::lock(&mux.state);
        match state.pending.get_mut(&id) {
            Some(Slot::Waiting(Some(w))) => {
                if !w.will_wake(cx.waker()) {
                    *w = cx.waker().clone();
                }
                Poll::Pending
            }
            Some(Slot::Waiting(None)) => {
                mux.set_slot(state, id, Slot::Waiting(Some(cx.waker().clone())));
                Poll::Pending
            }
            Some(Slot::Done(_)) => {
                let Some(Slot::Done(r)) = state.replace(id, None).0 else { unreachable!("matched above") };
                drop(state);
                self.finished = true;
                if let Some(slept) = self.slept {
                    mux.source.waited(slept.elapsed());
                }
                Poll::Ready(r)
            }
            _ => {
                let reason = state.dead.clone().unwrap_or_else(|| "the reply went missing".into());
                drop(state);
                self.finished = true;
                Poll::Ready(Err(mux.lost(&reason)))
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Under one lock: a reader finds either a waiting slot or an abandoned one.
        let mut state = crate::unpoison::lock(&self.mux.state);
        let came = match state.pending.get(&self.id) {
            Some(Slot::Waiting(_)) => {
                self.mux.set_slot(state, self.id, Slot::Abandoned(self.undo));
                None
            }
            Some(Slot::Done(_)) => {
                let came = state.replace(self.id, None).0;
                drop(state);
                came
            }
            _ => return,
        };
        match came {
            None => self.mux.cancel(self.id),
            // The result came and was never taken: put it back.
            Some(Slot::Done(Ok(bytes))) => {
                if let Some((undo, owner)) = self.undo {
                    self.mux.undo(undo, owner, &bytes);
                }
            }
            Some(_) => {}
        }
    }
}
