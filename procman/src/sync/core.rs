//! What the primitives share: waiting on a condition variable with a deadline while watching
//! that the caller is still connected, the list of who waits (for snapshots), and what a
//! condition needs of its lock.
//!
//! Ownership follows CPython: a `Lock` may be released by anyone, an `RLock` only by the client
//! thread that holds it (its connection). Unlike CPython, a holder whose connection closes
//! (its thread or process ended, SIGKILL included) does not deadlock the others: the lock is
//! released and the next acquirer gets [`Error::Abandoned`] while holding it.

use crate::error::{Error, Result};
use crate::inspect::{ObjectState, Party};
use crate::shared::Caller;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(crate) use crate::unpoison::lock;

/// How often a blocked call checks that its caller is still connected.
const LIVENESS_SLICE: Duration = Duration::from_millis(50);

/// How often a blocked call that a cancel wakes checks all the same.
const CANCEL_SLICE: Duration = Duration::from_secs(1);

/// Who holds a lock (a client thread's connection), how many times and since when, and whether
/// its last holder died holding it: the state of a `Lock` (held once at most) and of an `RLock`.
#[derive(Debug, Default)]
pub(crate) struct Holding {
    pub(crate) holder: Option<Caller>,
    pub(crate) count: usize,
    since: Option<Instant>,
    /// The next acquirer is told that the previous holder died.
    pub(crate) abandoned: bool,
}

impl Holding {
    pub(crate) fn is_held(&self) -> bool {
        self.count > 0
    }

    pub(crate) fn is_held_by(&self, caller: Option<Caller>) -> bool {
        self.is_held() && self.holder == caller
    }

    /// `holder` takes the lock, `count` times.
    pub(crate) fn take(&mut self, holder: Option<Caller>, count: usize) {
        self.holder = holder;
        self.count = count;
        self.since = Some(Instant::now());
    }

    pub(crate) fn free(&mut self) {
        self.holder = None;
        self.count = 0;
        self.since = None;
    }

    /// Frees the lock if `caller` holds it (its connection closed), for the next acquirer to
    /// be told; returns whether it did.
    pub(crate) fn abandon(&mut self, caller: Caller) -> bool {
        let held = self.is_held_by(Some(caller));
        if held {
            self.free();
            self.abandoned = true;
        }
        held
    }

    /// The holder, for snapshots.
    pub(crate) fn party(&self) -> Option<Party> {
        self.since.filter(|_| self.is_held()).map(|since| party(self.holder, since))
    }
}

/// `caller` (client 0 outside a server) as a snapshot shows it.
fn party(caller: Option<Caller>, since: Instant) -> Party {
    let caller = caller.unwrap_or(Caller { client: 0, connection: 0 });
    Party::new(caller.client, caller.connection, since)
}

/// The callers waiting in one method of an object, oldest first, for snapshots
/// ([`ObjectState`]). A call is listed only while it really waits.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    list: Mutex<Vec<Waiting>>,
    /// How many places are taken: changed only under the lock of the state that the waits are
    /// on (see [`wait_until`]), so that whoever changes that state, holding its lock, sees
    /// whether anyone waits and need not wake a condition variable nobody waits on.
    count: AtomicUsize,
}

#[derive(Debug)]
struct Waiting {
    /// Tells apart two waits of one caller (a condition's `wait`, then its lock's).
    ticket: u64,
    caller: Option<Caller>,
    since: Instant,
}

/// A caller's place in [`Waiters`], left when dropped.
pub(crate) struct Place<'a> {
    waiters: &'a Waiters,
    ticket: u64,
}

impl Waiters {
    /// Lists the current caller as waiting until the returned place is dropped.
    pub(crate) fn enter(&self) -> Place<'_> {
        let mut list = lock(&self.list);
        let ticket = list.last().map_or(0, |w| w.ticket.wrapping_add(1));
        list.push(Waiting { ticket, caller: me(), since: Instant::now() });
        self.count.fetch_add(1, Ordering::Relaxed);
        Place { waiters: self, ticket }
    }

    /// True when a caller waits. Read it holding the lock of the state the waits are on: a
    /// caller enters and leaves its place under that lock.
    pub(crate) fn anyone(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// The waiting callers, oldest first.
    pub(crate) fn parties(&self) -> Vec<Party> {
        lock(&self.list).iter().map(|w| party(w.caller, w.since)).collect()
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.waiters.count.fetch_sub(1, Ordering::Relaxed);
        lock(&self.waiters.list).retain(|w| w.ticket != self.ticket);
    }
}

/// Waits on `cv` until `done(state)` or the deadline; returns the guard and whether `done`.
/// While it waits, the caller is listed in `waiters`: it takes its place and leaves it holding
/// `g`'s lock, so [`Waiters::anyone`] read under that lock tells whether to notify `cv`.
///
/// In a server, a caller whose connection closed while it waited (its process died) stops
/// waiting with `Error::ConnectionLost`, so it cannot, say, take an item from a queue that
/// nobody would receive.
pub(crate) fn wait_until<'a, T>(
    cv: &Condvar,
    mut g: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    waiters: &Waiters,
    mut done: impl FnMut(&mut T) -> bool,
) -> Result<(MutexGuard<'a, T>, bool)> {
    let watched = crate::server::caller_connection_watched();
    // A call that a cancel wakes (a multiplexed connection's, whose end cancels it too) need
    // not poll: a long slice only covers a cancel that lands just before the wait begins.
    let registered = crate::server::waiting_on(cv);
    let slice_len = if registered.is_some() { CANCEL_SLICE } else { LIVENESS_SLICE };
    let mut place = None;
    loop {
        if done(&mut g) {
            return Ok((g, true));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok((g, false));
        }
        place.get_or_insert_with(|| waiters.enter());
        // A call that blocks gives its connection thread's serving slot to the next.
        crate::transport::gate::pause();
        let slice = match (deadline, watched) {
            (None, false) => None,
            (None, true) => Some(slice_len),
            (Some(d), false) => Some(d - now),
            (Some(d), true) => Some((d - now).min(slice_len)),
        };
        g = match slice {
            None => crate::unpoison::wait(cv, g),
            Some(s) => crate::unpoison::wait_timeout(cv, g, s).0,
        };
        if watched && crate::server::caller_gone() {
            return Err(Error::ConnectionLost {
                address: "the caller".into(),
                reason: "the caller disconnected while waiting".into(),
            });
        }
    }
}

/// The deadline of a call: `None` waits forever; a non-blocking call with a timeout is an
/// error, as in CPython.
pub(crate) fn deadline(blocking: bool, timeout: Option<Duration>) -> Result<Option<Instant>> {
    match (blocking, timeout) {
        (false, Some(_)) => Err(Error::usage("can't specify a timeout for a non-blocking call")),
        (false, None) => Ok(Some(Instant::now())),
        (true, t) => Ok(t.map(|t| Instant::now() + t)),
    }
}

/// The caller of the running method (its client thread's connection).
pub(crate) fn me() -> Option<Caller> {
    Caller::current()
}

/// What a condition needs of its lock.
pub(crate) trait Acquirer: Send + Sync {
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool>;
    fn release(&self) -> Result<()>;
    /// True when the calling connection may wait or notify.
    fn is_owned(&self) -> bool;
    /// Releases fully for a wait; returns what `restore` needs.
    fn release_save(&self) -> Result<usize>;
    fn restore(&self, saved: usize);
    fn connection_closed(&self, caller: Caller);
    /// The lock's state, for snapshots.
    fn state(&self) -> ObjectState;
}
