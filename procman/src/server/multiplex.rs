//! A multiplexed connection: many calls in flight at once on one connection, for async clients.
//!
//! A client switches its connection with `Request::Multiplex`; from then on each frame it sends
//! is a [`Tagged`] header followed by a request, and each reply frame the server sends is the
//! request's id followed by the reply; replies go back in the order calls finish.
//!
//! # Where calls run
//!
//! The thread that reads the connection runs each call itself, as a blocking connection's
//! thread does: a call that ends at once costs no hand-off to another thread. While it runs
//! one, the reading waits in [`Mux::reading`], and the watchdog (`watchdog.rs`) looks at the
//! connection every tick: a call that has run for a whole tick has the reading taken from its
//! thread and handed to a worker (`workers.rs`), which reads on; the thread in the call sends
//! its reply when the call ends and leaves. The connection remembers the (object, method) of
//! a call that ran that long, and starts the next calls of it on a worker at once, until one of
//! them ends within a tick (a method that blocked once, or a thread that the OS did not run for
//! a tick, is not sent to workers for ever). So a call that blocks (a `get` waiting an hour)
//! delays the calls behind it by one to two ticks.
//! Whoever reads when the connection ends closes it; the connection's own thread waits for
//! that, and releases what its owners held, as at any close.
//!
//! # Who calls
//!
//! Each request names its owner: the logical caller in the client (a task). Each owner is a
//! [`Caller`] of its own, with a connection number of its own, so an `RLock` taken by one task
//! is not re-entered by another on the same connection; when the connection closes, every
//! owner's locks are released as a closing connection's are. A connection has at most
//! [`MAX_OWNERS`] owners: a peer cannot grow the server's memory without bound with made-up ones.
//!
//! # Cancellation
//!
//! `Cancel { id }` raises the cancel flag of a call in flight: its waits end as when its caller
//! hangs up (a cancelled `get` takes no item, a cancelled `acquire` takes nothing; a cancelled
//! condition `wait` still takes its lock back, as a wait always does) and its reply, an error,
//! is sent all the same. A cancel that arrives after the reply was sent does nothing; the
//! client undoes what that reply gave (see the client side, `asynchronous/mux.rs`).
//!
//! The calls of one owner run concurrently (a task may `join!` two calls), except after a
//! cancel: the owner's next calls wait until its cancelled calls have ended, so they see what
//! the cancelled call left (the lock a cancelled `wait` took back). A call cancelled while it
//! waits so is not waited for in its turn: it has not started, and ends as soon as it does.
//!
//! A connection has at most `max_calls_in_flight` calls in flight (running on workers, or
//! waiting); a call beyond them is answered with an error at once, not run. The reading never
//! waits for calls to end: what would end them may come on this very connection.

use super::connection::{Session, send_tagged_reply};
use super::listen::Core;
use super::scope::{Cancel, Serving};
use super::watchdog::{self, Watch, Watched};
use super::workers;
use crate::shared::Caller;
use crate::transport::Stream;
use crate::wire;
use crate::wire::depth::ThreadLimit;
use crate::wire::frames::{FrameReader, FrameWriter};
use crate::wire::message::{Request, Tagged};
use rustc_hash::{FxHashMap, FxHashSet};
use std::hash::{BuildHasher, BuildHasherDefault};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The id of a reply about the whole connection (why it closes), not about one request.
pub(crate) const CONNECTION: u64 = u64::MAX;

/// The most owners one multiplexed connection may name.
pub(super) const MAX_OWNERS: usize = 1 << 16;

/// The most calls in flight on one multiplexed connection unless the builder says otherwise
/// (`ManagerBuilder::max_calls_in_flight`); a call beyond them is refused.
pub(crate) const DEFAULT_MAX_CALLS_IN_FLIGHT: usize = 1 << 14;

/// The most (object, method) pairs a connection remembers as blocking.
const MAX_BLOCKING: usize = 1 << 12;

/// One multiplexed connection, as its reading thread, its workers and the watchdog share it.
struct Mux {
    core: Arc<Core>,
    writer: Mutex<FrameWriter<Stream>>,
    calls: Mutex<Calls>,
    /// Signalled when a call ends and someone waits for that (`Calls::waiters`).
    ended: Condvar,
    /// The objects the calls touched, told at close.
    touched: Mutex<FxHashSet<u64>>,
    /// An object in `touched` (the last one a call added).
    last_touched: AtomicU64,
    connection: Arc<Stream>,
    peer: Arc<str>,
    /// The client process, whose owners the calls' callers are.
    client: u128,
    /// The reading, while its thread runs a call (so that a rescuer can take it).
    reading: Mutex<Option<Box<Reading>>>,
    /// The (object, method) pairs whose last call ran past the watchdog's tick: their calls
    /// start on a worker at once, until one of them ends within a tick.
    blocking: Mutex<FxHashSet<(u64, u64)>>,
    /// Whether `blocking` has any pair (read without its lock).
    any_blocking: AtomicBool,
    /// Whether `Calls::in_flight` has any call (read without its lock).
    any_in_flight: AtomicBool,
    /// Whether an owner has cancelled calls running (`Calls::draining` is not empty; read
    /// without its lock).
    any_draining: AtomicBool,
    watch: Watch,
    /// The owners, once the connection closed and its calls ended.
    closed: Mutex<Option<Vec<Caller>>>,
    closed_cv: Condvar,
}

/// What the thread that reads the connection holds.
struct Reading {
    reader: FrameReader<Stream>,
    owners: FxHashMap<u64, Caller>,
    /// The call the reading thread runs now.
    inline: Option<Inline>,
}

/// A call that the reading thread runs itself.
struct Inline {
    /// Its (object, method).
    key: Option<(u64, u64)>,
    id: u64,
    owner: u64,
    cancelled: Arc<Cancel>,
}

/// The calls in flight (queued or running).
#[derive(Default)]
struct Calls {
    /// By request id.
    in_flight: FxHashMap<u64, Flight>,
    /// The owners with cancelled calls still running: how many, and their calls that wait.
    draining: FxHashMap<u64, Draining>,
    /// Threads waiting on `ended`.
    waiters: usize,
}

/// A call in flight: queued or running.
struct Flight {
    cancelled: Arc<Cancel>,
    owner: u64,
    /// It waits in its owner's `Draining::queued`: it has not started.
    queued: bool,
    /// Its cancel is counted in its owner's `Draining::running`.
    counted: bool,
}

impl Flight {
    fn running(cancelled: Arc<Cancel>, owner: u64) -> Flight {
        Flight { cancelled, owner, queued: false, counted: false }
    }
}

/// An owner's cancelled calls that still run, and the calls it made since, which wait for
/// them. A queued call that is cancelled in its turn is not counted: it has not started, and
/// when it starts it ends at once.
#[derive(Default)]
struct Draining {
    running: usize,
    queued: Vec<Job>,
}

/// A request ready to run.
struct Job {
    id: u64,
    /// Its (object, method), for a call.
    key: Option<(u64, u64)>,
    caller: Caller,
    cancelled: Arc<Cancel>,
    /// The frame it came in (taken from the reader, not copied); the request is
    /// `frame[at..len]`.
    frame: Vec<u8>,
    at: usize,
    len: usize,
}

thread_local! {
    /// The set a call's session records its objects in: one a thread, its memory reused.
    static TOUCHED: std::cell::RefCell<FxHashSet<u64>> = std::cell::RefCell::new(FxHashSet::default());
    /// The objects a call hands back to be released, emptied after each call and reused.
    static FREED: std::cell::RefCell<Vec<super::object::Object>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How the reading of a connection ended for the thread that held it.
enum Led {
    /// The connection ended: this thread closes it; the owners of its calls.
    Ended(Vec<Caller>),
    /// The watchdog handed the reading to another thread while this one ran a call.
    HandedOn,
}

impl Mux {
    /// Tells the client why its connection closes: a reply to [`CONNECTION`], which it gives
    /// to every call in flight.
    fn fail(&self, e: crate::Error) {
        let _ = send_tagged_reply(&mut crate::unpoison::lock(&self.writer), CONNECTION, Err(e));
    }

    /// Starts `job` on a worker; when none can be started, answers it with the error. A call
    /// that ends within a tick takes its (object, method) off the blocking ones.
    fn start(self: &Arc<Self>, job: Job, owner: u64) {
        let (mux, id) = (self.clone(), job.id);
        let depth = self.core.config.max_decode_depth;
        let started = workers::run(Box::new(move || {
            let _depth = ThreadLimit::set(depth);
            let (key, id, began) = (job.key, job.id, Instant::now());
            drop(mux.run(job, &mut None));
            mux.finished(id, owner);
            if let Some(key) = key
                && began.elapsed() < watchdog::TICK
            {
                mux.unblock(key);
            }
        }));
        if let Err(e) = started {
            let reply = Err(crate::Error::io("starting a thread for a call", e));
            let _ = send_tagged_reply(&mut crate::unpoison::lock(&self.writer), id, reply);
            self.finished(id, owner);
        }
    }

    /// Whether calls of `key` start on a worker.
    fn blocks(&self, key: Option<(u64, u64)>) -> bool {
        key.is_some_and(|k| {
            self.any_blocking.load(Ordering::Relaxed) && crate::unpoison::lock(&self.blocking).contains(&k)
        })
    }

    /// The last call of `key` ran past a tick.
    fn block(&self, key: (u64, u64)) {
        let mut blocking = crate::unpoison::lock(&self.blocking);
        if blocking.len() < MAX_BLOCKING {
            blocking.insert(key);
            self.any_blocking.store(true, Ordering::Relaxed);
        }
    }

    /// The last call of `key` ended within a tick.
    fn unblock(&self, key: (u64, u64)) {
        let mut blocking = crate::unpoison::lock(&self.blocking);
        if blocking.remove(&key) && blocking.is_empty() {
            self.any_blocking.store(false, Ordering::Relaxed);
        }
    }

    /// What a call of this connection sees of it (see `scope.rs`), cancelled by `cancelled`:
    /// `spare` (the reading thread's last call's) when nothing else holds it, else a new one.
    fn serving(&self, cancelled: Arc<Cancel>, spare: &mut Option<Rc<Serving>>) -> Rc<Serving> {
        if let Some(mut rc) = spare.take()
            && let Some(s) = Rc::get_mut(&mut rc)
        {
            s.cancelled = Some(cancelled);
            return rc;
        }
        Rc::new(Serving {
            core: Arc::downgrade(&self.core),
            connection: self.connection.clone(),
            cancelled: Some(cancelled),
        })
    }

    /// Runs one request and sends its reply.
    /// Returns the frame's buffer, for the reader to reuse.
    /// `spare` is the `Serving` the reading thread's calls reuse (see [`serving`](Self::serving)),
    /// kept in its reading loop, so that none outlives the connection.
    fn run(self: &Arc<Self>, job: Job, spare: &mut Option<Rc<Serving>>) -> Vec<u8> {
        let Job { id, caller, cancelled, frame, at, len, .. } = job;
        let request = &frame[at..len];
        let core = &self.core;
        let reply = if cancelled.is_set() {
            Some(Err(crate::Error::ConnectionLost {
                address: "the caller".into(),
                reason: "the caller cancelled the call before it ran".into(),
            }))
        } else {
            let serving = self.serving(cancelled, spare);
            let mut session =
                Session::with_touched(caller, serving, TOUCHED.with(|t| std::mem::take(&mut *t.borrow_mut())));
            let mut freed = FREED.with(|f| std::mem::take(&mut *f.borrow_mut()));
            let reply = match wire::take::<Request<'_>>(request) {
                Ok((req, [])) if req.multiplexable() => core.handle_guarded(req, &mut session, &mut freed, &self.peer),
                Ok((_, [])) => Some(Err(core.protocol("a request that a multiplexed connection cannot carry"))),
                Ok((_, rest)) => Some(Err(core.protocol(format!("{} unexpected bytes after the request", rest.len())))),
                Err(e) => Some(Err(core.protocol(format!("undecodable request: {e}")))),
            };
            super::object::release(&core.address, freed.drain(..));
            FREED.with(|f| *f.borrow_mut() = freed);
            {
                let mut touched = session.touched_ids();
                match (touched.next(), touched.next()) {
                    (None, _) => {}
                    // The object of the last call, already told: the common case, without a lock.
                    (Some(id), None) if self.last_touched.load(Ordering::Relaxed) == id => {}
                    (Some(id), more) => {
                        let mut all = crate::unpoison::lock(&self.touched);
                        all.insert(id);
                        all.extend(more.into_iter().chain(touched));
                        self.last_touched.store(id, Ordering::Relaxed);
                    }
                }
            }
            let (mut touched, serving) = session.into_parts();
            touched.clear();
            TOUCHED.with(|t| *t.borrow_mut() = touched);
            *spare = Some(serving);
            reply
        };
        if let Some(reply) = reply {
            // A reply that cannot be sent: the connection is gone, and its reader ends.
            let _ = send_tagged_reply(&mut crate::unpoison::lock(&self.writer), id, reply);
        }
        frame
    }

    /// Call `id` ended: the owner's queued calls start when it was the last cancelled one.
    fn finished(self: &Arc<Self>, id: u64, owner: u64) {
        let (ready, notify) = {
            let mut calls = crate::unpoison::lock(&self.calls);
            let counted = calls.in_flight.remove(&id).is_some_and(|f| f.counted);
            self.any_in_flight.store(!calls.in_flight.is_empty(), Ordering::Relaxed);
            let ready = match calls.draining.get_mut(&owner) {
                Some(d) if counted => {
                    d.running = d.running.saturating_sub(1);
                    if d.running == 0 { calls.draining.remove(&owner).map(|d| d.queued) } else { None }
                }
                _ => None,
            };
            let ready = ready.unwrap_or_default();
            // Started from here on: a cancel now is waited for, as any running call's.
            for job in &ready {
                if let Some(f) = calls.in_flight.get_mut(&job.id) {
                    f.queued = false;
                }
            }
            self.any_draining.store(!calls.draining.is_empty(), Ordering::Relaxed);
            (ready, calls.waiters > 0)
        };
        if notify {
            self.ended.notify_all();
        }
        for job in ready {
            self.start(job, owner);
        }
    }

    /// Reads the connection and runs its calls until it ends, or until the watchdog hands the
    /// reading on while this thread runs a call.
    fn lead(self: &Arc<Self>, mut reading: Box<Reading>) -> Led {
        let core = &self.core;
        let peer = &*self.peer;
        let mut spare = None;
        loop {
            match reading.reader.read(None) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    if let Some(e) = core.why_unreadable(e, peer) {
                        self.fail(e);
                    }
                    break;
                }
            }
            let (tag, rest) = match wire::take::<Tagged>(reading.reader.body()) {
                Ok(t) => t,
                Err(e) => {
                    self.fail(core.refusal(peer, format!("undecodable multiplexed frame: {e}")));
                    break;
                }
            };
            let (id, owner) = match tag {
                Tagged::Cancel { id } => {
                    let mut calls = crate::unpoison::lock(&self.calls);
                    let Some(f) = calls.in_flight.get_mut(&id) else { continue };
                    // A queued call is not waited for: it ends as soon as it starts.
                    if f.cancelled.set() && !f.queued {
                        f.counted = true;
                        let owner = f.owner;
                        calls.draining.entry(owner).or_default().running += 1;
                        self.any_draining.store(true, Ordering::Relaxed);
                    }
                    continue;
                }
                Tagged::Request { id: CONNECTION, .. } => {
                    self.fail(core.refusal(peer, format!("request id {CONNECTION} is reserved")));
                    break;
                }
                Tagged::Request { id, owner } => (id, owner),
            };
            let caller = match reading.owners.get(&owner) {
                Some(c) => *c,
                None if reading.owners.len() < MAX_OWNERS => {
                    let c = Caller { client: self.client, connection: core.connection_number() };
                    reading.owners.insert(owner, c);
                    c
                }
                None => {
                    self.fail(core.refusal(peer, format!("more than {MAX_OWNERS} owners on one connection")));
                    break;
                }
            };
            let key = call_key(rest);
            let cancelled = Arc::new(Cancel::default());
            let at = reading.reader.body().len() - rest.len();
            let (frame, len) = reading.reader.take_body();
            let job = Job { id, key, caller, cancelled: cancelled.clone(), frame, at, len };
            if self.any_draining.load(Ordering::Relaxed) || self.blocks(key) {
                // A call that waits for its owner's cancelled calls, or one that blocks: it
                // starts (or waits) among the calls in flight.
                if !self.enqueue(job, owner, cancelled) {
                    break;
                }
                continue;
            }
            if self.any_in_flight.load(Ordering::Relaxed)
                && crate::unpoison::lock(&self.calls).in_flight.contains_key(&id)
            {
                self.fail(core.refusal(peer, format!("request id {id} is already in flight")));
                break;
            }
            // Run it here; the watchdog hands the reading on if it blocks. A call run here is
            // in flight for nobody else to see (no frame is read while it runs): the thread
            // that takes the reading over enters it among the calls in flight.
            reading.inline = Some(Inline { key, id, owner, cancelled });
            *crate::unpoison::lock(&self.reading) = Some(reading);
            let running = self.watch.begin();
            let frame = self.run(job, &mut spare);
            if !self.watch.end(running) && !self.resumes() {
                // The thread reading now entered this call among those in flight.
                self.finished(id, owner);
                return Led::HandedOn;
            }
            reading = crate::unpoison::lock(&self.reading).take().expect("the reading waits for its thread");
            reading.inline = None;
            reading.reader.give_back(frame);
        }
        Led::Ended(reading.owners.into_values().collect())
    }

    /// Enters `job` among the calls in flight and starts it on a worker, or queues it behind
    /// its owner's cancelled calls. False (the peer told) when its id is in flight already.
    ///
    /// A call beyond `max_calls_in_flight` is answered at once with an error, and not run: the
    /// reading does not wait for calls in flight to end, since the calls that would end them
    /// (the `put` a pending `get` waits for, a `Cancel`) may come on this very connection.
    fn enqueue(self: &Arc<Self>, job: Job, owner: u64, cancelled: Arc<Cancel>) -> bool {
        let mut calls = crate::unpoison::lock(&self.calls);
        let id = job.id;
        if calls.in_flight.contains_key(&id) {
            drop(calls);
            self.fail(self.core.refusal(&self.peer, format!("request id {id} is already in flight")));
            return false;
        }
        let limit = self.core.config.max_calls_in_flight;
        if calls.in_flight.len() >= limit {
            drop(calls);
            tracing::warn!(manager = %self.core.address, peer = %self.peer, limit, "refused a call: too many calls in flight");
            let refused = self
                .core
                .protocol(format!("more than {limit} calls in flight on one connection: this one was not run"));
            let _ = send_tagged_reply(&mut crate::unpoison::lock(&self.writer), id, Err(refused));
            return true;
        }
        self.any_in_flight.store(true, Ordering::Relaxed);
        let queued = calls.draining.contains_key(&owner);
        calls.in_flight.insert(id, Flight { cancelled, owner, queued, counted: false });
        if let Some(d) = calls.draining.get_mut(&owner) {
            d.queued.push(job);
            return true;
        }
        drop(calls);
        self.start(job, owner);
        true
    }

    /// After the watchdog took the reading from this thread: true when handing it on failed
    /// and this thread reads on.
    fn resumes(&self) -> bool {
        loop {
            if self.watch.reclaim_failed() {
                return true;
            }
            if !self.watch.handing_on() {
                return false;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// The connection ended: every call still running sees its caller gone and ends (queued
    /// ones run and end at once); waits for them, so no call takes a lock after its owner's
    /// locks were released, then hands the owners to the connection's thread.
    fn close(&self, owners: Vec<Caller>) {
        let mut calls = crate::unpoison::lock(&self.calls);
        for f in calls.in_flight.values() {
            f.cancelled.set();
        }
        calls.waiters += 1;
        while !calls.in_flight.is_empty() {
            calls = crate::unpoison::wait(&self.ended, calls);
        }
        calls.waiters -= 1;
        drop(calls);
        *crate::unpoison::lock(&self.closed) = Some(owners);
        self.closed_cv.notify_all();
    }

    /// Leads on a worker, after the watchdog took the reading from the thread in a call.
    fn lead_on_worker(self: Arc<Self>) {
        let Some(mut reading) = crate::unpoison::lock(&self.reading).take() else { return };
        if let Some(Inline { key, id, owner, cancelled }) = reading.inline.take() {
            // The call goes on running on the thread that read it, now in flight like any.
            crate::unpoison::lock(&self.calls).in_flight.insert(id, Flight::running(cancelled, owner));
            self.any_in_flight.store(true, Ordering::Relaxed);
            if let Some(k) = key {
                self.block(k);
            }
        }
        self.watch.handed_on();
        let _depth = ThreadLimit::set(self.core.config.max_decode_depth);
        match catch_unwind(AssertUnwindSafe(|| self.lead(reading))) {
            Ok(Led::Ended(owners)) => self.close(owners),
            Ok(Led::HandedOn) => {}
            Err(p) => {
                let message = crate::error::panic_message(&*p);
                tracing::warn!(manager = %self.core.address, peer = %self.peer, message, "closed a connection: the manager panicked serving it");
                // The owners went with the panic: the connection's own caller is still released.
                self.connection.shutdown();
                self.close(Vec::new());
            }
        }
    }
}

impl Watched for Mux {
    fn watch(&self) -> &Watch {
        &self.watch
    }

    fn rescue(self: Arc<Self>) {
        let mux = self.clone();
        if workers::run(Box::new(move || mux.lead_on_worker())).is_err() {
            // No thread: the thread in the call reads on once it ends.
            self.watch.hand_on_failed();
        }
    }
}

/// The (object, method) of a call request, hashed: what the connection remembers of calls
/// that blocked.
fn call_key(request: &[u8]) -> Option<(u64, u64)> {
    // A call's variant, object id and method name, read as they lie (the method's bytes are
    // hashed, not checked as UTF-8: the call's own decoding does that).
    match wire::take::<(u32, u64, wire::Bytes<'_>)>(request) {
        Ok(((CALL_VARIANT, id, wire::Bytes(method)), _)) => {
            Some((id, BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(method)))
        }
        _ => None,
    }
}

/// postcard's index of `Request::Call` (see `message::call_head`).
const CALL_VARIANT: u32 = 2;

impl Core {
    /// Serves a connection that switched to multiplexed frames, until it closes. Fills
    /// `session` with the objects its calls touched and the owners that made them, for the
    /// connection's end.
    pub(super) fn multiplexed(
        self: &Arc<Self>,
        reader: FrameReader<Stream>,
        writer: FrameWriter<Stream>,
        peer: &str,
        session: &mut Session,
    ) {
        let mux = Arc::new(Mux {
            core: self.clone(),
            writer: Mutex::new(writer),
            calls: Mutex::new(Calls::default()),
            ended: Condvar::new(),
            touched: Mutex::new(FxHashSet::default()),
            last_touched: AtomicU64::new(u64::MAX),
            connection: session.serving.connection.clone(),
            peer: peer.into(),
            client: session.caller.client,
            reading: Mutex::new(None),
            blocking: Mutex::new(FxHashSet::default()),
            any_blocking: AtomicBool::new(false),
            any_draining: AtomicBool::new(false),
            any_in_flight: AtomicBool::new(false),
            watch: Watch::default(),
            closed: Mutex::new(None),
            closed_cv: Condvar::new(),
        });
        let watched: Arc<dyn Watched> = mux.clone();
        if let Err(e) = watchdog::watch(Arc::downgrade(&watched)) {
            mux.fail(crate::Error::io("starting the watchdog of multiplexed connections", e));
            return;
        }
        // Boxed: it moves in and out of `Mux::reading` at every call.
        let reading = Box::new(Reading { reader, owners: FxHashMap::default(), inline: None });
        if let Led::Ended(owners) = mux.lead(reading) {
            mux.close(owners);
        }
        // The reading may have ended on another thread: wait for its close.
        let mut closed = crate::unpoison::lock(&mux.closed);
        let owners = loop {
            if let Some(owners) = closed.take() {
                break owners;
            }
            closed = crate::unpoison::wait(&mux.closed_cv, closed);
        };
        drop(closed);
        session.touched_extend(crate::unpoison::lock(&mux.touched).drain());
        session.owners.extend(owners);
    }
}
