//! [`Condition`]: CPython's `threading.Condition`, held by a manager.

use super::core::{Acquirer, Waiters, lock, wait_until};
use super::{Lock, LockGuard, LockProxy, RLock, RLockProxy, SyncManager};
use crate::error::{Error, Result};
use crate::inspect::ObjectState;
use crate::proxy::BaseProxy;
use crate::shared::Inspect;
use crate::shared::{Caller, Proxy};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A condition variable held by a manager (CPython's `threading.Condition`), over its own
/// re-entrant lock or over a manager `Lock` / `RLock` of the same manager.
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let cond = m.condition()?;
/// let _held = cond.guard()?;
/// assert!(!cond.wait(Some(std::time::Duration::from_millis(10)))?); // nobody notifies
/// cond.notify_all()?;
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(crate::Shared)]
pub struct Condition {
    core: ConditionCore,
    // Keeps the lock object alive for as long as the condition uses it.
    _lock: Option<BaseProxy>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl Condition {
    /// A condition over a new re-entrant lock of its own.
    pub fn new() -> Self {
        Condition { core: ConditionCore::new(Arc::new(super::rlock::RLockCore::default())), _lock: None }
    }

    /// A condition over the lock `proxy` refers to, which must be a `Lock` or an `RLock` of
    /// the manager running this code (call it inside a creator).
    pub fn with_lock(proxy: BaseProxy) -> Result<Self> {
        let lock: Arc<dyn Acquirer> = if let Some(l) = crate::server::local_referent::<Lock>(&proxy) {
            l.read().core()
        } else if let Some(l) = crate::server::local_referent::<RLock>(&proxy) {
            l.read().core()
        } else {
            return Err(Error::usage(format_args!(
                "a condition's lock must be a Lock or an RLock of the same manager, not {}",
                proxy.token()
            )));
        };
        Ok(Condition { core: ConditionCore::new(lock), _lock: Some(proxy) })
    }
}

impl Default for Condition {
    fn default() -> Self {
        Self::new()
    }
}

#[crate::shared]
impl Condition {
    /// Acquires the condition's lock (see [`LockProxy::acquire`] and [`RLockProxy::acquire`]).
    ///
    /// Async, cancelled: nothing is held, as for a lock's `acquire`.
    #[shared(undo = release_acquired)]
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        self.core.lock().acquire(blocking, timeout)
    }

    /// Releases the condition's lock; [`Error::NotHeld`] when the caller does not hold it.
    pub fn release(&self) -> Result<()> {
        self.core.lock().release()
    }

    /// Releases the condition's lock if `acquired`. An async `acquire` whose future was
    /// dropped after it had taken the lock runs this on its result.
    pub fn release_acquired(&self, acquired: bool) -> Result<()> {
        if acquired { self.core.lock().release() } else { Ok(()) }
    }

    /// Releases the lock, waits until notified (or `timeout` passes), then re-acquires it.
    /// Returns false on timeout. [`Error::NotHeld`] when the caller does not hold the lock.
    ///
    /// Async, cancelled (its future dropped before it completes): the owner holds the lock
    /// again, as after any wait; the manager takes it back before it runs the owner's next
    /// call.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.core.wait(timeout)
    }

    /// Wakes up to `n` waiters. The caller must hold the lock.
    pub fn notify(&self, n: usize) -> Result<()> {
        self.core.notify(n)
    }

    /// Wakes every waiter. The caller must hold the lock.
    pub fn notify_all(&self) -> Result<()> {
        self.core.notify_all()
    }

    /// Waits until `predicate()` is true, evaluating it in the caller's process after each
    /// wake-up, for at most `timeout`. Returns the last value of the predicate.
    #[shared(client)]
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool> {
        let end = timeout.map(|t| Instant::now() + t);
        let mut result = predicate();
        while !result {
            let wait = match end {
                Some(end) => match end.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break,
                },
                None => None,
            };
            self.wait(wait)?;
            result = predicate();
        }
        Ok(result)
    }

    /// Acquires the condition's lock, waiting as long as needed, and returns a guard that
    /// releases it when dropped.
    #[shared(client)]
    pub fn guard(&self) -> Result<LockGuard<'_, Self>> {
        LockGuard::acquire(self)
    }

    #[shared(on_disconnect)]
    fn disconnected(&self, caller: Caller) {
        self.core.lock().connection_closed(caller);
    }
}

impl Inspect for Condition {
    fn state(&self) -> ObjectState {
        let core = &self.core;
        ObjectState::Condition { lock: Box::new(core.lock.state()), waiting: core.waiting.parties() }
    }
}

/// A lock a [`ConditionProxy`] can be created over: a [`LockProxy`] or an [`RLockProxy`].
pub trait ConditionLockProxy: Proxy + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::LockProxy {}
    impl Sealed for super::RLockProxy {}
}

impl ConditionLockProxy for LockProxy {}
impl ConditionLockProxy for RLockProxy {}

#[crate::manager]
impl SyncManager {
    /// A new [`Condition`] over a new re-entrant lock of its own (Python's
    /// `manager.Condition()`).
    pub fn condition(&self) -> Result<ConditionProxy> {
        self.condition_over(None)
    }

    /// A new [`Condition`] over `lock`, a lock of this manager (Python's
    /// `manager.Condition(lock)`).
    pub fn condition_with(&self, lock: &impl ConditionLockProxy) -> Result<ConditionProxy> {
        self.condition_over(Some(lock.base().clone()))
    }

    #[manager(typeid = "Condition")]
    pub(crate) fn condition_over(lock: Option<BaseProxy>) -> Result<Condition> {
        match lock {
            Some(l) => Condition::with_lock(l),
            None => Ok(Condition::new()),
        }
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
    /// Who waits in `wait`, for snapshots.
    waiting: Waiters,
}

impl std::fmt::Debug for ConditionCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition").field("waiters", &lock(&self.waiters).len()).finish()
    }
}

impl ConditionCore {
    pub(crate) fn new(lock: Arc<dyn Acquirer>) -> Self {
        ConditionCore { lock, waiters: Mutex::new(VecDeque::new()), waiting: Waiters::default() }
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
        let waited = wait_until(&waiter.cv, g, deadline, &self.waiting, |s| *s).map(|(_, signaled)| signaled);
        let signaled = waited.as_ref().is_ok_and(|s| *s);
        if !signaled {
            lock(&self.waiters).retain(|w| !Arc::ptr_eq(w, &waiter));
        }
        // A cancelled wait takes its lock back too: its owner holds it again, as after any wait.
        crate::server::uncancellable(|| self.lock.restore(saved));
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
