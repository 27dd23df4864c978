//! [`RLock`]: CPython's `threading.RLock`, held by a manager.

use super::core::{Acquirer, Holding, Waiters, deadline, lock, me, wait_until};
use super::{LockGuard, SyncManager};
use crate::error::{Error, Result};
use crate::inspect::ObjectState;
use crate::shared::Caller;
use crate::shared::Inspect;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A re-entrant lock held by a manager (CPython's `threading.RLock`), owned by the client
/// thread that acquired it: that thread may acquire it again, and only it may release it.
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let lock = m.rlock()?;
/// lock.acquire(true, None)?;
/// lock.acquire(true, None)?; // the same thread again
/// assert_eq!(lock.state()?, (true, 2));
/// lock.release()?;
/// lock.release()?;
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(Debug, Default, crate::Shared)]
pub struct RLock {
    core: Arc<RLockCore>,
}

#[crate::shared]
impl RLock {
    /// Acquires the lock, or acquires it once more when the calling thread holds it: waits
    /// while another thread holds it (not at all when `blocking` is false; at most `timeout`).
    /// Returns whether it was acquired. [`Error::Abandoned`] as for [`Lock`](super::Lock).
    ///
    /// Async, cancelled (its future dropped before it completes): nothing is held; the wait
    /// ends without taking the lock, or the level it took is released once.
    #[shared(undo = release_acquired)]
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        self.core.acquire(blocking, timeout)
    }

    /// Releases the lock once; [`Error::NotHeld`] when the calling thread does not hold it.
    pub fn release(&self) -> Result<()> {
        self.core.release()
    }

    /// Releases the lock once if `acquired`. An async `acquire` whose future was dropped after it
    /// had taken the lock runs this on its result, so a dropped `acquire` never leaves the lock
    /// held.
    pub fn release_acquired(&self, acquired: bool) -> Result<()> {
        if acquired { self.core.release() } else { Ok(()) }
    }

    /// Whether some client thread holds the lock, and how many times.
    pub fn state(&self) -> (bool, usize) {
        self.core.describe()
    }

    /// Acquires the lock, waiting as long as needed, and returns a guard that releases it once
    /// when dropped.
    #[shared(client)]
    pub fn guard(&self) -> Result<LockGuard<'_, Self>> {
        LockGuard::acquire(self)
    }

    #[shared(on_disconnect)]
    fn disconnected(&self, caller: Caller) {
        self.core.connection_closed(caller);
    }
}

impl RLock {
    pub(crate) fn core(&self) -> Arc<dyn Acquirer> {
        self.core.clone()
    }
}

#[crate::manager]
impl SyncManager {
    /// A new [`RLock`] (Python's `manager.RLock()`).
    #[manager(typeid = "RLock")]
    pub fn rlock() -> RLock {
        RLock::default()
    }
}

fn not_owner(what: &str) -> Error {
    Error::NotHeld { object: "RLock".into(), reason: format!("{what} of a lock the calling thread has not acquired") }
}

impl Inspect for RLock {
    fn state(&self) -> ObjectState {
        self.core.state()
    }
}

/// A re-entrant lock (CPython's `threading.RLock`), owned by the calling client thread.
#[derive(Debug, Default)]
pub(crate) struct RLockCore {
    state: Mutex<Holding>,
    cv: Condvar,
    waiters: Waiters,
}

impl RLockCore {
    pub(crate) fn describe(&self) -> (bool, usize) {
        let g = lock(&self.state);
        (g.is_held(), g.count)
    }
}

impl Acquirer for RLockCore {
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline(blocking, timeout)?;
        let caller = me();
        let mut g = lock(&self.state);
        if g.is_held_by(caller) {
            g.count += 1;
            return Ok(true);
        }
        let (mut g, ok) = wait_until(&self.cv, g, deadline, &self.waiters, |s| !s.is_held())?;
        if !ok {
            return Ok(false);
        }
        g.take(caller, 1);
        if std::mem::take(&mut g.abandoned) {
            return Err(Error::Abandoned);
        }
        Ok(true)
    }

    fn release(&self) -> Result<()> {
        let mut g = lock(&self.state);
        if !g.is_held_by(me()) {
            return Err(not_owner("release"));
        }
        g.count -= 1;
        if g.count == 0 {
            g.free();
            // Under the lock: an acquirer takes its place in `waiters` under it before it sleeps.
            let wake = self.waiters.anyone();
            drop(g);
            if wake {
                self.cv.notify_one();
            }
        }
        Ok(())
    }

    fn is_owned(&self) -> bool {
        lock(&self.state).is_held_by(me())
    }

    fn release_save(&self) -> Result<usize> {
        let mut g = lock(&self.state);
        if !g.is_held_by(me()) {
            return Err(not_owner("release"));
        }
        let n = g.count;
        g.free();
        let wake = self.waiters.anyone();
        drop(g);
        if wake {
            self.cv.notify_one();
        }
        Ok(n)
    }

    fn restore(&self, saved: usize) {
        let caller = me();
        let mut g = lock(&self.state);
        let _place = (g.count != 0).then(|| {
            crate::transport::gate::pause(); // it blocks: its serving slot goes to the next
            self.waiters.enter()
        });
        while g.count != 0 {
            g = crate::unpoison::wait(&self.cv, g);
        }
        g.take(caller, saved.max(1));
    }

    fn connection_closed(&self, caller: Caller) {
        if lock(&self.state).abandon(caller) {
            self.cv.notify_one();
        }
    }

    fn state(&self) -> ObjectState {
        let g = lock(&self.state);
        let (holder, count) = (g.party(), g.count);
        drop(g);
        ObjectState::RLock { holder, count, waiting: self.waiters.parties() }
    }
}
