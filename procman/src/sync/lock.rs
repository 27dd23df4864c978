//! [`Lock`]: CPython's `threading.Lock`, held by a manager.

use super::core::{Acquirer, Holding, Waiters, deadline, lock, me, wait_until};
use super::{LockGuard, SyncManager};
use crate::error::{Error, Result};
use crate::inspect::ObjectState;
use crate::shared::Caller;
use crate::shared::Inspect;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A lock held by a manager (CPython's `threading.Lock`): any client may release it.
///
/// When the connection of the client thread that holds it closes (the thread or its process
/// ended, SIGKILL included), the lock is released and the next acquirer gets
/// [`Error::Abandoned`] while holding it, instead of waiting forever.
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let lock = m.lock()?;
/// assert!(lock.acquire(true, None)?);
/// assert!(!lock.acquire(false, None)?); // taken
/// lock.release()?;
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(Debug, Default, crate::Shared)]
pub struct Lock {
    core: Arc<LockCore>,
}

#[crate::shared]
impl Lock {
    /// Acquires the lock: waits while it is taken (not at all when `blocking` is false; at most
    /// `timeout` when one is given). Returns whether it was acquired.
    ///
    /// Fails with [`Error::Abandoned`] when the previous holder died holding it: the caller
    /// then holds the lock. A timeout with `blocking == false` is [`Error::Usage`], as in CPython.
    ///
    /// Async, cancelled (its future dropped before it completes): nothing is held; the wait
    /// ends without taking the lock, or the lock it took is released.
    #[shared(undo = release_acquired)]
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        self.core.acquire(blocking, timeout)
    }

    /// Releases the lock; [`Error::NotHeld`] when it is not held.
    pub fn release(&self) -> Result<()> {
        self.core.release()
    }

    /// Releases the lock if `acquired`. An async `acquire` whose future was dropped after it
    /// had taken the lock runs this on its result, so a dropped `acquire` never leaves the lock
    /// held.
    pub fn release_acquired(&self, acquired: bool) -> Result<()> {
        if acquired { self.core.release() } else { Ok(()) }
    }

    /// True while some client holds the lock.
    pub fn locked(&self) -> bool {
        self.core.locked()
    }

    /// Acquires the lock, waiting as long as needed, and returns a guard that releases it when
    /// dropped.
    #[shared(client)]
    pub fn guard(&self) -> Result<LockGuard<'_, Self>> {
        LockGuard::acquire(self)
    }

    #[shared(on_disconnect)]
    fn disconnected(&self, caller: Caller) {
        self.core.connection_closed(caller);
    }
}

impl Lock {
    pub(crate) fn core(&self) -> Arc<dyn Acquirer> {
        self.core.clone()
    }
}

#[crate::manager]
impl SyncManager {
    /// A new [`Lock`] (Python's `manager.Lock()`).
    #[manager(typeid = "Lock")]
    pub fn lock() -> Lock {
        Lock::default()
    }
}

impl Inspect for Lock {
    fn state(&self) -> ObjectState {
        self.core.state()
    }
}

/// A mutual-exclusion lock (CPython's `threading.Lock`).
#[derive(Debug, Default)]
pub(crate) struct LockCore {
    state: Mutex<Holding>,
    cv: Condvar,
    waiters: Waiters,
}

impl LockCore {
    pub(crate) fn locked(&self) -> bool {
        lock(&self.state).is_held()
    }
}

impl Acquirer for LockCore {
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline(blocking, timeout)?;
        let g = lock(&self.state);
        let (mut g, ok) = wait_until(&self.cv, g, deadline, &self.waiters, |s| !s.is_held())?;
        if !ok {
            return Ok(false);
        }
        g.take(me(), 1);
        if std::mem::take(&mut g.abandoned) {
            return Err(Error::Abandoned);
        }
        Ok(true)
    }

    fn release(&self) -> Result<()> {
        let mut g = lock(&self.state);
        if !g.is_held() {
            return Err(Error::NotHeld { object: "Lock".into(), reason: "release of an unlocked lock".into() });
        }
        g.free();
        // Under the lock: an acquirer takes its place in `waiters` under it before it sleeps.
        let wake = self.waiters.anyone();
        drop(g);
        if wake {
            self.cv.notify_one();
        }
        Ok(())
    }

    fn is_owned(&self) -> bool {
        lock(&self.state).is_held()
    }

    fn release_save(&self) -> Result<usize> {
        self.release().map(|()| 1)
    }

    fn restore(&self, _saved: usize) {
        let _ = self.acquire(true, None);
    }

    fn connection_closed(&self, caller: Caller) {
        if lock(&self.state).abandon(caller) {
            self.cv.notify_one();
        }
    }

    fn state(&self) -> ObjectState {
        let holder = lock(&self.state).party();
        ObjectState::Lock { holder, waiting: self.waiters.parties() }
    }
}
