//! The client side of a multiplexed connection: one per manager per process, shared by every
//! async call of the process, whatever task or thread makes it.
//!
//! A call registers a slot under a fresh request id, writes its frame (a [`Tagged`] header,
//! then the request) and waits for the slot to be filled. One reader thread per connection
//! reads the replies, fills the slots and wakes their tasks. So 10,000 pending calls cost
//! 10,000 slots, one connection and one thread.
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
use crate::wire::frames::{FrameReader, FrameWriter};
use crate::wire::message::{Reply, Request, Tagged};
use crate::wire::{self, Bytes};
use rustc_hash::FxHashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

/// What a call's future hands to the connection when it is dropped after its result came:
/// the method that puts the result back (called with the result as its argument).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Undo {
    pub(crate) object: u64,
    pub(crate) method: &'static str,
}

enum Slot {
    /// The call waits; the waker of its task, once polled.
    Waiting(Option<Waker>),
    /// The reply came and its future has not taken it yet.
    Done(Result<Vec<u8>>),
    /// The future was dropped first: the reply, when it comes, is undone (or dropped).
    Abandoned(Option<(Undo, u64)>),
}

struct State {
    pending: FxHashMap<u64, Slot>,
    /// Why the connection ended; no call is made on it again.
    dead: Option<String>,
}

/// One multiplexed connection to a manager.
pub(crate) struct Mux {
    address: Address,
    writer: Mutex<FrameWriter<Stream>>,
    max_request: usize,
    state: Mutex<State>,
    next_id: AtomicU64,
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

    fn connect(address: &Address) -> Result<Arc<Mux>> {
        let mut conn = Conn::open(address)?;
        conn.request(&Request::Multiplex)?;
        let (reader, writer, max_request) = conn.into_parts();
        let mux = Arc::new(Mux {
            address: address.clone(),
            writer: Mutex::new(writer),
            max_request,
            state: Mutex::new(State { pending: FxHashMap::default(), dead: None }),
            next_id: AtomicU64::new(1),
        });
        let m = mux.clone();
        std::thread::Builder::new()
            .name("procman-async".into())
            .spawn(move || m.read_replies(reader))
            .map_err(|e| Error::io("starting the thread of an async connection", e))?;
        Ok(mux)
    }

    fn is_alive(&self) -> bool {
        crate::unpoison::lock(&self.state).dead.is_none()
    }

    fn lost(&self, reason: &str) -> Error {
        crate::client::lost_connection(&self.address, reason)
    }

    /// The reader thread: fills the slots until the connection ends, then fails the calls
    /// still waiting.
    fn read_replies(self: Arc<Self>, mut reader: FrameReader<Stream>) {
        let reason = loop {
            match reader.read(None) {
                Ok(true) => {}
                Ok(false) => break "the manager closed the connection".to_string(),
                Err(e) => break e.to_string(),
            }
            let (id, reply) = match decode_reply(reader.body()) {
                Ok(r) => r,
                Err(e) => break e,
            };
            if id == MULTIPLEXED_CONNECTION {
                match reply {
                    Err(e) => break e.to_string(),
                    Ok(_) => continue,
                }
            }
            let undo = {
                let mut state = crate::unpoison::lock(&self.state);
                match state.pending.remove(&id) {
                    Some(Slot::Waiting(waker)) => {
                        state.pending.insert(id, Slot::Done(reply));
                        drop(state);
                        if let Some(w) = waker {
                            w.wake();
                        }
                        None
                    }
                    Some(Slot::Abandoned(Some(undo))) => reply.ok().map(|bytes| (undo, bytes)),
                    // An abandoned call without undo, or an id this side never sent.
                    _ => None,
                }
            };
            if let Some(((undo, owner), bytes)) = undo {
                self.undo(undo, owner, &bytes);
            }
        };
        self.end(&reason);
    }

    /// The connection ended: every waiting call fails, and the next call makes a new one.
    fn end(self: &Arc<Self>, reason: &str) {
        let wakers: Vec<Waker> = {
            let mut state = crate::unpoison::lock(&self.state);
            state.dead = Some(reason.to_string());
            let mut wakers = Vec::new();
            for slot in state.pending.values_mut() {
                if let Slot::Waiting(w) = slot {
                    wakers.extend(w.take());
                    *slot = Slot::Done(Err(self.lost(reason)));
                }
            }
            state.pending.retain(|_, s| matches!(s, Slot::Done(_)));
            wakers
        };
        for w in wakers {
            w.wake();
        }
        let mut map = crate::unpoison::lock(muxes());
        if matches!(map.get(&self.address), Some(Entry::Ready(m)) if Arc::ptr_eq(m, self)) {
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

    /// Calls the undo of a result that nobody awaits any more, as its owner; its own reply is
    /// not awaited.
    fn undo(&self, undo: Undo, owner: u64, result: &[u8]) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        crate::unpoison::lock(&self.state).pending.insert(id, Slot::Abandoned(None));
        let req = Request::Call { id: undo.object, method: undo.method, args: Bytes(result) };
        if self.send(id, owner, &req).is_err() {
            crate::unpoison::lock(&self.state).pending.remove(&id);
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
fn decode_reply(body: &[u8]) -> std::result::Result<(u64, Result<Vec<u8>>), String> {
    let (id, rest) = wire::take::<u64>(body).map_err(|e| format!("an undecodable reply: {e}"))?;
    match wire::take::<Reply<'_>>(rest) {
        Ok((Reply::Ok(Bytes(b)), [])) => Ok((id, Ok(b.to_vec()))),
        Ok((Reply::Err(e), [])) => Ok((id, Err(e))),
        Ok((_, rest)) => Err(format!("{} unexpected bytes after a reply", rest.len())),
        Err(e) => Err(format!("an undecodable reply: {e}")),
    }
}

/// Sends `req` on this process's multiplexed connection to `address`, as `owner`, and waits
/// for its reply; dropping the future cancels the call (see the module docs), undoing its
/// result with `undo` if it had come.
pub(crate) async fn request(address: &Address, owner: u64, req: &Request<'_>, undo: Option<Undo>) -> Result<Vec<u8>> {
    let mux = Mux::get(address).await?;
    let id = mux.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut state = crate::unpoison::lock(&mux.state);
        if let Some(reason) = &state.dead {
            return Err(mux.lost(reason));
        }
        state.pending.insert(id, Slot::Waiting(None));
    }
    let pending = Pending { mux, id, undo: undo.map(|u| (u, owner)), finished: false };
    if let Err(e) = pending.mux.send(id, owner, req) {
        let mut pending = pending;
        pending.finished = true;
        crate::unpoison::lock(&pending.mux.state).pending.remove(&id);
        return Err(e);
    }
    pending.await
}

/// A call whose frame was sent, until its reply is taken.
struct Pending {
    mux: Arc<Mux>,
    id: u64,
    undo: Option<(Undo, u64)>,
    finished: bool,
}

impl Future for Pending {
    type Output = Result<Vec<u8>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        let mut state = crate::unpoison::lock(&self.mux.state);
        match state.pending.get_mut(&id) {
            Some(Slot::Waiting(w)) => {
                if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *w = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Some(Slot::Done(_)) => {
                let Some(Slot::Done(r)) = state.pending.remove(&id) else { unreachable!("matched above") };
                drop(state);
                self.finished = true;
                Poll::Ready(r)
            }
            _ => {
                let reason = state.dead.clone().unwrap_or_else(|| "the reply went missing".into());
                drop(state);
                self.finished = true;
                Poll::Ready(Err(self.mux.lost(&reason)))
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Under one lock: the reader finds either a waiting slot or an abandoned one.
        let mut state = crate::unpoison::lock(&self.mux.state);
        let came = match state.pending.get_mut(&self.id) {
            Some(slot @ Slot::Waiting(_)) => {
                *slot = Slot::Abandoned(self.undo);
                None
            }
            Some(Slot::Done(_)) => state.pending.remove(&self.id),
            _ => return,
        };
        drop(state);
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
