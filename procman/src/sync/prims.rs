//! The synchronization primitives a manager holds: their state lives in the server and each
//! blocking call blocks only the calling client's connection.
//!
//! Ownership follows CPython: a `Lock` may be released by anyone, an `RLock` only by the client
//! thread that holds it (its connection). Unlike CPython, a holder whose connection closes
//! (its thread or process ended, SIGKILL included) does not deadlock the others: the lock is
//! released and the next acquirer gets [`Error::Abandoned`] while holding it.

use crate::error::{Error, Result};
use crate::shared::Caller;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How often a blocked call checks that its caller is still connected.
const LIVENESS_SLICE: Duration = Duration::from_millis(50);

/// Waits on `cv` until `done(state)` or the deadline; returns the guard and whether `done`.
///
/// In a server, a caller whose connection closed while it waited (its process died) stops
/// waiting with `Error::ConnectionLost`, so it cannot, say, take an item from a queue that
/// nobody would receive.
pub(crate) fn wait_until<'a, T>(
    cv: &Condvar,
    mut g: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    mut done: impl FnMut(&mut T) -> bool,
) -> Result<(MutexGuard<'a, T>, bool)> {
    let watched = crate::server::caller_connection_watched();
    loop {
        if done(&mut g) {
            return Ok((g, true));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok((g, false));
        }
        let slice = match (deadline, watched) {
            (None, false) => None,
            (None, true) => Some(LIVENESS_SLICE),
            (Some(d), false) => Some(d - now),
            (Some(d), true) => Some((d - now).min(LIVENESS_SLICE)),
        };
        g = match slice {
            None => cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            Some(s) => cv.wait_timeout(g, s).unwrap_or_else(|e| e.into_inner()).0,
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

/// The deadline of a queue call: as CPython's `queue.Queue`, a non-blocking call ignores its
/// timeout and fails at once.
fn queue_deadline(block: bool, timeout: Option<Duration>) -> Option<Instant> {
    if block { timeout.map(|t| Instant::now() + t) } else { Some(Instant::now()) }
}

fn not_owner(what: &str) -> Error {
    Error::NotHeld { object: "RLock".into(), reason: format!("{what} of a lock the calling thread has not acquired") }
}

fn me() -> Option<Caller> {
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
}

#[derive(Debug, Default)]
struct LockState {
    held: bool,
    holder: Option<Caller>,
    abandoned: bool,
}

/// A mutual-exclusion lock (CPython's `threading.Lock`).
#[derive(Debug, Default)]
pub(crate) struct LockCore {
    state: Mutex<LockState>,
    cv: Condvar,
}

impl LockCore {
    pub(crate) fn locked(&self) -> bool {
        lock(&self.state).held
    }
}

impl Acquirer for LockCore {
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline(blocking, timeout)?;
        let g = lock(&self.state);
        let (mut g, ok) = wait_until(&self.cv, g, deadline, |s| !s.held)?;
        if !ok {
            return Ok(false);
        }
        g.held = true;
        g.holder = me();
        if std::mem::take(&mut g.abandoned) {
            return Err(Error::Abandoned);
        }
        Ok(true)
    }

    fn release(&self) -> Result<()> {
        let mut g = lock(&self.state);
        if !g.held {
            return Err(Error::NotHeld { object: "Lock".into(), reason: "release of an unlocked lock".into() });
        }
        g.held = false;
        g.holder = None;
        drop(g);
        self.cv.notify_one();
        Ok(())
    }

    fn is_owned(&self) -> bool {
        lock(&self.state).held
    }

    fn release_save(&self) -> Result<usize> {
        self.release().map(|()| 1)
    }

    fn restore(&self, _saved: usize) {
        let _ = self.acquire(true, None);
    }

    fn connection_closed(&self, caller: Caller) {
        let mut g = lock(&self.state);
        if g.held && g.holder == Some(caller) {
            g.held = false;
            g.holder = None;
            g.abandoned = true;
            drop(g);
            self.cv.notify_one();
        }
    }
}

#[derive(Debug, Default)]
struct RLockState {
    owner: Option<Caller>,
    count: usize,
    abandoned: bool,
}

/// A re-entrant lock (CPython's `threading.RLock`), owned by the calling client thread.
#[derive(Debug, Default)]
pub(crate) struct RLockCore {
    state: Mutex<RLockState>,
    cv: Condvar,
}

impl RLockCore {
    pub(crate) fn describe(&self) -> (bool, usize) {
        let g = lock(&self.state);
        (g.owner.is_some(), g.count)
    }
}

impl Acquirer for RLockCore {
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline(blocking, timeout)?;
        let caller = me();
        let mut g = lock(&self.state);
        if g.count > 0 && g.owner == caller {
            g.count += 1;
            return Ok(true);
        }
        let (mut g, ok) = wait_until(&self.cv, g, deadline, |s| s.count == 0)?;
        if !ok {
            return Ok(false);
        }
        g.owner = caller;
        g.count = 1;
        if std::mem::take(&mut g.abandoned) {
            return Err(Error::Abandoned);
        }
        Ok(true)
    }

    fn release(&self) -> Result<()> {
        let mut g = lock(&self.state);
        if g.count == 0 || g.owner != me() {
            return Err(not_owner("release"));
        }
        g.count -= 1;
        if g.count == 0 {
            g.owner = None;
            drop(g);
            self.cv.notify_one();
        }
        Ok(())
    }

    fn is_owned(&self) -> bool {
        let g = lock(&self.state);
        g.count > 0 && g.owner == me()
    }

    fn release_save(&self) -> Result<usize> {
        let mut g = lock(&self.state);
        if g.count == 0 || g.owner != me() {
            return Err(not_owner("release"));
        }
        let n = std::mem::take(&mut g.count);
        g.owner = None;
        drop(g);
        self.cv.notify_one();
        Ok(n)
    }

    fn restore(&self, saved: usize) {
        let caller = me();
        let mut g = lock(&self.state);
        while g.count != 0 {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        g.owner = caller;
        g.count = saved.max(1);
    }

    fn connection_closed(&self, caller: Caller) {
        let mut g = lock(&self.state);
        if g.count > 0 && g.owner == Some(caller) {
            g.count = 0;
            g.owner = None;
            g.abandoned = true;
            drop(g);
            self.cv.notify_one();
        }
    }
}

/// A counting semaphore (CPython's `threading.Semaphore` / `BoundedSemaphore`).
#[derive(Debug)]
pub(crate) struct SemaphoreCore {
    value: Mutex<usize>,
    cv: Condvar,
    bound: Option<usize>,
}

impl SemaphoreCore {
    pub(crate) fn new(value: usize, bounded: bool) -> Self {
        SemaphoreCore { value: Mutex::new(value), cv: Condvar::new(), bound: bounded.then_some(value) }
    }

    pub(crate) fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline(blocking, timeout)?;
        let g = lock(&self.value);
        let (mut g, ok) = wait_until(&self.cv, g, deadline, |v| *v > 0)?;
        if ok {
            *g -= 1;
        }
        Ok(ok)
    }

    pub(crate) fn release(&self, n: usize) -> Result<()> {
        if n < 1 {
            return Err(Error::usage("n must be one or more"));
        }
        let mut g = lock(&self.value);
        if let Some(bound) = self.bound
            && *g + n > bound
        {
            return Err(Error::ReleasedTooManyTimes { object: "BoundedSemaphore".into() });
        }
        *g += n;
        drop(g);
        for _ in 0..n {
            self.cv.notify_one();
        }
        Ok(())
    }

    pub(crate) fn value(&self) -> usize {
        *lock(&self.value)
    }
}

/// One waiter of a condition.
#[derive(Debug, Default)]
struct Waiter {
    signaled: Mutex<bool>,
    cv: Condvar,
}

/// A condition variable over a lock (CPython's `threading.Condition`).
pub(crate) struct ConditionCore {
    lock: Arc<dyn Acquirer>,
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
}

impl std::fmt::Debug for ConditionCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition").field("waiters", &lock(&self.waiters).len()).finish()
    }
}

impl ConditionCore {
    pub(crate) fn new(lock: Arc<dyn Acquirer>) -> Self {
        ConditionCore { lock, waiters: Mutex::new(VecDeque::new()) }
    }

    pub(crate) fn lock(&self) -> &dyn Acquirer {
        &*self.lock
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        if !self.lock.is_owned() {
            return Err(Error::NotHeld { object: "Condition".into(), reason: "wait on an un-acquired lock".into() });
        }
        let waiter = Arc::new(Waiter::default());
        lock(&self.waiters).push_back(waiter.clone());
        let saved = self.lock.release_save()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let g = lock(&waiter.signaled);
        let waited = wait_until(&waiter.cv, g, deadline, |s| *s).map(|(_, signaled)| signaled);
        let signaled = waited.as_ref().is_ok_and(|s| *s);
        if !signaled {
            lock(&self.waiters).retain(|w| !Arc::ptr_eq(w, &waiter));
        }
        self.lock.restore(saved);
        waited
    }

    pub(crate) fn notify(&self, n: usize) -> Result<()> {
        if !self.lock.is_owned() {
            return Err(Error::NotHeld { object: "Condition".into(), reason: "notify on an un-acquired lock".into() });
        }
        let mut waiters = lock(&self.waiters);
        for _ in 0..n {
            let Some(w) = waiters.pop_front() else { break };
            *lock(&w.signaled) = true;
            w.cv.notify_one();
        }
        Ok(())
    }

    pub(crate) fn notify_all(&self) -> Result<()> {
        let n = lock(&self.waiters).len();
        self.notify(n)
    }
}

/// A flag with waiters (CPython's `threading.Event`).
#[derive(Debug, Default)]
pub(crate) struct EventCore {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl EventCore {
    pub(crate) fn is_set(&self) -> bool {
        *lock(&self.flag)
    }

    pub(crate) fn set(&self) {
        *lock(&self.flag) = true;
        self.cv.notify_all();
    }

    pub(crate) fn clear(&self) {
        *lock(&self.flag) = false;
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let g = lock(&self.flag);
        Ok(wait_until(&self.cv, g, timeout.map(|t| Instant::now() + t), |f| *f)?.1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BarrierState {
    Filling,
    Draining,
    Resetting,
    Broken,
}

#[derive(Debug)]
struct BarrierInner {
    state: BarrierState,
    count: usize,
}

/// A barrier for a fixed number of parties (CPython's `threading.Barrier`).
#[derive(Debug)]
pub(crate) struct BarrierCore {
    parties: usize,
    timeout: Option<Duration>,
    action: Option<fn()>,
    inner: Mutex<BarrierInner>,
    cv: Condvar,
}

impl BarrierCore {
    pub(crate) fn new(parties: usize, timeout: Option<Duration>, action: Option<fn()>) -> Result<Self> {
        if parties < 1 {
            return Err(Error::usage("parties must be 1 or more"));
        }
        Ok(BarrierCore {
            parties,
            timeout,
            action,
            inner: Mutex::new(BarrierInner { state: BarrierState::Filling, count: 0 }),
            cv: Condvar::new(),
        })
    }

    pub(crate) fn parties(&self) -> usize {
        self.parties
    }

    pub(crate) fn n_waiting(&self) -> usize {
        let g = lock(&self.inner);
        if g.state == BarrierState::Filling { g.count } else { 0 }
    }

    pub(crate) fn broken(&self) -> bool {
        lock(&self.inner).state == BarrierState::Broken
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Result<usize> {
        let timeout = timeout.or(self.timeout);
        let g = lock(&self.inner);
        // Wait while the barrier drains or resets.
        let (mut g, _) =
            wait_until(&self.cv, g, None, |s| !matches!(s.state, BarrierState::Draining | BarrierState::Resetting))?;
        if g.state == BarrierState::Broken {
            return Err(Error::BrokenBarrier);
        }
        let index = g.count;
        g.count += 1;
        let result = if index + 1 == self.parties {
            // The last to arrive runs the action before anyone is released; if it panics the
            // barrier breaks, as in CPython.
            let acted = match self.action {
                Some(action) => std::panic::catch_unwind(action).map_err(|p| crate::error::panic_message(&*p)),
                None => Ok(()),
            };
            match acted {
                Ok(()) => {
                    g.state = BarrierState::Draining;
                    self.cv.notify_all();
                    Ok(index)
                }
                Err(message) => {
                    g.state = BarrierState::Broken;
                    self.cv.notify_all();
                    Err(Error::Remote { typeid: "Barrier".into(), method: "action".into(), message })
                }
            }
        } else {
            let waited =
                wait_until(&self.cv, g, timeout.map(|t| Instant::now() + t), |s| s.state != BarrierState::Filling);
            let (g2, ok) = match waited {
                Ok(w) => w,
                Err(e) => {
                    // The caller is gone: it leaves the barrier broken, as a timeout would.
                    let mut g = lock(&self.inner);
                    g.count -= 1;
                    g.state = BarrierState::Broken;
                    self.cv.notify_all();
                    return Err(e);
                }
            };
            g = g2;
            if !ok {
                g.state = BarrierState::Broken;
                self.cv.notify_all();
                Err(Error::BrokenBarrier)
            } else if matches!(g.state, BarrierState::Broken | BarrierState::Resetting) {
                Err(Error::BrokenBarrier)
            } else {
                Ok(index)
            }
        };
        g.count -= 1;
        if g.count == 0 && matches!(g.state, BarrierState::Resetting | BarrierState::Draining) {
            g.state = BarrierState::Filling;
            self.cv.notify_all();
        }
        result
    }

    pub(crate) fn reset(&self) {
        let mut g = lock(&self.inner);
        if g.count > 0 {
            if matches!(g.state, BarrierState::Filling | BarrierState::Broken) {
                g.state = BarrierState::Resetting;
            }
        } else {
            g.state = BarrierState::Filling;
        }
        self.cv.notify_all();
    }

    pub(crate) fn abort(&self) {
        lock(&self.inner).state = BarrierState::Broken;
        self.cv.notify_all();
    }
}

#[derive(Debug)]
struct QueueInner {
    items: VecDeque<super::blob::Blob>,
    unfinished: usize,
}

/// A FIFO queue of encoded items (CPython's `queue.Queue`, joinable).
#[derive(Debug)]
pub(crate) struct QueueCore {
    maxsize: usize,
    inner: Mutex<QueueInner>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
}

impl QueueCore {
    pub(crate) fn new(maxsize: usize) -> Self {
        QueueCore {
            maxsize,
            inner: Mutex::new(QueueInner { items: VecDeque::new(), unfinished: 0 }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
        }
    }

    pub(crate) fn put(&self, item: super::blob::Blob, block: bool, timeout: Option<Duration>) -> Result<()> {
        let g = lock(&self.inner);
        let max = self.maxsize;
        let (mut g, ok) = if max == 0 {
            (g, true)
        } else {
            wait_until(&self.not_full, g, queue_deadline(block, timeout), |s| s.items.len() < max)?
        };
        if !ok {
            return Err(Error::Full);
        }
        g.items.push_back(item);
        g.unfinished += 1;
        drop(g);
        self.not_empty.notify_one();
        Ok(())
    }

    pub(crate) fn get(&self, block: bool, timeout: Option<Duration>) -> Result<super::blob::Blob> {
        let g = lock(&self.inner);
        let (mut g, ok) = wait_until(&self.not_empty, g, queue_deadline(block, timeout), |s| !s.items.is_empty())?;
        if !ok {
            return Err(Error::Empty);
        }
        let item = g.items.pop_front().expect("checked non-empty");
        drop(g);
        self.not_full.notify_one();
        Ok(item)
    }

    pub(crate) fn qsize(&self) -> usize {
        lock(&self.inner).items.len()
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize
    }

    pub(crate) fn task_done(&self) -> Result<()> {
        let mut g = lock(&self.inner);
        if g.unfinished == 0 {
            return Err(Error::TaskDoneTooManyTimes);
        }
        g.unfinished -= 1;
        if g.unfinished == 0 {
            self.all_done.notify_all();
        }
        Ok(())
    }

    pub(crate) fn join(&self, timeout: Option<Duration>) -> Result<bool> {
        let g = lock(&self.inner);
        Ok(wait_until(&self.all_done, g, timeout.map(|t| Instant::now() + t), |s| s.unfinished == 0)?.1)
    }
}
