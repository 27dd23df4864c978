//! A multiplexed connection: many calls in flight at once on one connection, for async clients.
//!
//! A client switches its connection with `Request::Multiplex`; from then on each frame it sends
//! is a [`Tagged`] header followed by a request, and each reply frame the server sends is the
//! request's id followed by the reply. The connection's thread only reads: every request runs
//! on a worker thread (see `workers.rs`), so a call that blocks (a `get` waiting an hour) never
//! delays another on the same connection, and replies go back in the order calls finish.
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
//! the cancelled call left (the lock a cancelled `wait` took back).

use super::connection::{Session, send_tagged_reply};
use super::listen::Core;
use super::scope::{Cancel, Serving};
use super::workers;
use crate::shared::Caller;
use crate::transport::Stream;
use crate::wire;
use crate::wire::depth::ThreadLimit;
use crate::wire::frames::{FrameReader, FrameWriter};
use crate::wire::message::{Request, Tagged};
use rustc_hash::{FxHashMap, FxHashSet};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};

/// The id of a reply about the whole connection (why it closes), not about one request.
pub(crate) const CONNECTION: u64 = u64::MAX;

/// The most owners one multiplexed connection may name.
pub(super) const MAX_OWNERS: usize = 1 << 16;

/// The most calls in flight on one multiplexed connection; more wait for one to finish before
/// the connection reads on.
const MAX_IN_FLIGHT: usize = 1 << 14;

/// What the calls of one multiplexed connection share.
struct Shared {
    writer: Mutex<FrameWriter<Stream>>,
    calls: Mutex<Calls>,
    /// Signalled when a call ends.
    ended: Condvar,
    /// The objects the calls touched, told at close.
    touched: Mutex<FxHashSet<u64>>,
}

/// The calls in flight (queued or running).
#[derive(Default)]
struct Calls {
    /// By request id: the call's cancel flag and owner.
    in_flight: FxHashMap<u64, (Arc<Cancel>, u64)>,
    /// The owners with cancelled calls still running: how many, and their calls that wait.
    draining: FxHashMap<u64, Draining>,
}

#[derive(Default)]
struct Draining {
    running: usize,
    queued: Vec<Job>,
}

/// A request ready to run on a worker.
struct Job {
    id: u64,
    caller: Caller,
    cancelled: Arc<Cancel>,
    request: Vec<u8>,
}

impl Shared {
    /// Tells the client why its connection closes: a reply to [`CONNECTION`], which it gives
    /// to every call in flight.
    fn fail(&self, e: crate::Error) {
        let _ = send_tagged_reply(&mut crate::unpoison::lock(&self.writer), CONNECTION, Err(e));
    }
}

/// What a job needs of the connection.
#[derive(Clone)]
struct Context {
    core: Arc<Core>,
    shared: Arc<Shared>,
    connection: Arc<Stream>,
    peer: Arc<str>,
}

impl Context {
    /// Starts `job` on a worker; when none can be started, answers it with the error.
    fn start(&self, job: Job, owner: u64) {
        let (cx, id) = (self.clone(), job.id);
        let depth = self.core.config.max_decode_depth;
        let started = workers::run(Box::new(move || {
            let _depth = ThreadLimit::set(depth);
            cx.run(job, owner);
        }));
        if let Err(e) = started {
            let reply = Err(crate::Error::io("starting a thread for a call", e));
            let _ = send_tagged_reply(&mut crate::unpoison::lock(&self.shared.writer), id, reply);
            self.finished(id, owner);
        }
    }

    /// Runs one request and sends its reply.
    fn run(&self, job: Job, owner: u64) {
        let Job { id, caller, cancelled, request } = job;
        let core = &self.core;
        let reply = if cancelled.is_set() {
            Some(Err(crate::Error::ConnectionLost {
                address: "the caller".into(),
                reason: "the caller cancelled the call before it ran".into(),
            }))
        } else {
            let serving = Rc::new(Serving {
                core: Arc::downgrade(core),
                connection: self.connection.clone(),
                cancelled: Some(cancelled),
            });
            let mut session = Session::new(caller, serving);
            let mut freed = Vec::new();
            let reply = match wire::take::<Request<'_>>(&request) {
                Ok((req, [])) if req.multiplexable() => core.handle_guarded(req, &mut session, &mut freed, &self.peer),
                Ok((_, [])) => Some(Err(core.protocol("a request that a multiplexed connection cannot carry"))),
                Ok((_, rest)) => Some(Err(core.protocol(format!("{} unexpected bytes after the request", rest.len())))),
                Err(e) => Some(Err(core.protocol(format!("undecodable request: {e}")))),
            };
            super::object::release(&core.address, freed.drain(..));
            crate::unpoison::lock(&self.shared.touched).extend(session.touched_ids());
            reply
        };
        if let Some(reply) = reply {
            // A reply that cannot be sent: the connection is gone, and its reader ends.
            let _ = send_tagged_reply(&mut crate::unpoison::lock(&self.shared.writer), id, reply);
        }
        self.finished(id, owner);
    }

    /// Call `id` ended: the owner's queued calls start when it was the last cancelled one.
    fn finished(&self, id: u64, owner: u64) {
        let ready = {
            let mut calls = crate::unpoison::lock(&self.shared.calls);
            let cancelled = calls.in_flight.remove(&id).is_some_and(|(flag, _)| flag.is_set());
            match calls.draining.get_mut(&owner) {
                Some(d) if cancelled => {
                    d.running = d.running.saturating_sub(1);
                    if d.running == 0 { calls.draining.remove(&owner).map(|d| d.queued) } else { None }
                }
                _ => None,
            }
        };
        self.shared.ended.notify_all();
        for job in ready.into_iter().flatten() {
            self.start(job, owner);
        }
    }
}

impl Core {
    /// Serves a connection that switched to multiplexed frames, until it closes. Fills
    /// `session` with the objects its calls touched and the owners that made them, for the
    /// connection's end.
    pub(super) fn multiplexed(
        self: &Arc<Self>,
        mut reader: FrameReader<Stream>,
        writer: FrameWriter<Stream>,
        peer: &str,
        session: &mut Session,
    ) {
        let shared = Arc::new(Shared {
            writer: Mutex::new(writer),
            calls: Mutex::new(Calls::default()),
            ended: Condvar::new(),
            touched: Mutex::new(FxHashSet::default()),
        });
        let cx = Context {
            core: self.clone(),
            shared: shared.clone(),
            connection: session.serving.connection.clone(),
            peer: peer.into(),
        };
        let mut owners: FxHashMap<u64, Caller> = FxHashMap::default();
        loop {
            match reader.read(None) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    if let Some(e) = self.why_unreadable(e, peer) {
                        shared.fail(e);
                    }
                    break;
                }
            }
            let (tag, rest) = match wire::take::<Tagged>(reader.body()) {
                Ok(t) => t,
                Err(e) => {
                    shared.fail(self.refusal(peer, format!("undecodable multiplexed frame: {e}")));
                    break;
                }
            };
            match tag {
                Tagged::Cancel { id } => {
                    let mut calls = crate::unpoison::lock(&shared.calls);
                    let Some((flag, owner)) = calls.in_flight.get(&id).cloned() else { continue };
                    if flag.set() {
                        calls.draining.entry(owner).or_default().running += 1;
                    }
                }
                Tagged::Request { id: CONNECTION, .. } => {
                    shared.fail(self.refusal(peer, format!("request id {CONNECTION} is reserved")));
                    break;
                }
                Tagged::Request { id, owner } => {
                    let caller = match owners.get(&owner) {
                        Some(c) => *c,
                        None if owners.len() < MAX_OWNERS => {
                            let c = Caller { client: session.caller.client, connection: self.connection_number() };
                            owners.insert(owner, c);
                            c
                        }
                        None => {
                            shared.fail(self.refusal(peer, format!("more than {MAX_OWNERS} owners on one connection")));
                            break;
                        }
                    };
                    let cancelled = Arc::new(Cancel::default());
                    let job = Job { id, caller, cancelled: cancelled.clone(), request: rest.to_vec() };
                    let mut calls = crate::unpoison::lock(&shared.calls);
                    while calls.in_flight.len() >= MAX_IN_FLIGHT {
                        calls = crate::unpoison::wait(&shared.ended, calls);
                    }
                    if calls.in_flight.insert(id, (cancelled, owner)).is_some() {
                        drop(calls);
                        shared.fail(self.refusal(peer, format!("request id {id} is already in flight")));
                        break;
                    }
                    match calls.draining.get_mut(&owner) {
                        Some(d) => d.queued.push(job),
                        None => {
                            drop(calls);
                            cx.start(job, owner);
                        }
                    }
                }
            }
        }
        // Calls still running see their caller gone and end (queued ones run and end at once);
        // the connection's end waits for them, so no call takes a lock after its owner's locks
        // were released.
        let mut calls = crate::unpoison::lock(&shared.calls);
        for (flag, _) in calls.in_flight.values() {
            flag.set();
        }
        while !calls.in_flight.is_empty() {
            calls = crate::unpoison::wait(&shared.ended, calls);
        }
        drop(calls);
        session.touched_extend(crate::unpoison::lock(&shared.touched).drain());
        session.owners.extend(owners.into_values());
    }
}
