//! [`RLock`]: a re-entrant process-shared lock, owned by a thread of a process.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::CLASS_RLOCK;
use super::deadline::deadline_after;
use super::guard::Guard;
use crate::arena::{Arena, Block, Kind};
use crate::error::{Result, ShmError};
use crate::handle::handle_impls;
use crate::lock_core::{Acquire, RawLock};
use crate::sys;

/// A re-entrant process-shared lock (the spec's `RLock`): the holding thread (identified by its
/// kernel thread id, hence by process and thread) may acquire it again; it is free once released
/// as many times. Releasing from a thread that does not hold it is [`ShmError::NotHeld`].
/// Abandonment is handled as for [`Lock`](crate::Lock).
///
/// ```
/// use procman_shm::{Arena, RLock};
///
/// let arena = Arena::create(4096)?;
/// let rlock = RLock::new_in(&arena)?;
/// let a = rlock.lock()?;
/// let b = rlock.lock()?; // re-entrant
/// assert_eq!(rlock.recursion_level(), 2);
/// drop((a, b));
/// assert!(rlock.release().is_err());
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct RLock {
    block: Block,
}

impl RLock {
    const KIND: Kind = Kind::new(CLASS_RLOCK, 0, 0);

    fn from_block(block: Block) -> RLock {
        RLock { block }
    }

    /// Allocates a free re-entrant lock in `arena`.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let r = procman_shm::RLock::new_in(&arena)?;
    /// assert_eq!(r.recursion_level(), 0);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena) -> Result<RLock> {
        Ok(RLock::from_block(Block::alloc(arena, Self::KIND, 1, 0)?))
    }

    #[inline]
    pub(super) fn raw(&self) -> RawLock<'_> {
        self.block.raw_lock()
    }

    /// Recursion count; only the holder reads or writes it.
    fn count(&self) -> &AtomicU32 {
        self.block.atomic_u32(0)
    }

    /// Acquires (or re-enters) the lock: `Ok(true)` on success, `Ok(false)` on timeout or a failed
    /// non-blocking attempt. `Err(ShmError::Abandoned)` means the previous holder died and the
    /// caller now holds the lock (recursion level 1).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let r = procman_shm::RLock::new_in(&arena)?;
    /// assert!(r.acquire(true, None)?);
    /// assert!(r.acquire(false, None)?);
    /// r.release()?;
    /// r.release()?;
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let raw = self.raw();
        if raw.is_held_by_current_thread() {
            let c = self.count().load(Ordering::Relaxed);
            if c == u32::MAX {
                return Err(ShmError::InvalidArgument("RLock recursion level overflow"));
            }
            self.count().store(c + 1, Ordering::Relaxed);
            return Ok(true);
        }
        match raw.lock(blocking, deadline_after(timeout)) {
            Acquire::Acquired => {
                self.count().store(1, Ordering::Relaxed);
                Ok(true)
            }
            Acquire::TimedOut => Ok(false),
            Acquire::Abandoned { tid, pid } => {
                self.count().store(1, Ordering::Relaxed);
                Err(ShmError::Abandoned { object: "RLock", pid, tid })
            }
        }
    }

    /// Releases one level; [`ShmError::NotHeld`] if the calling thread does not hold the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let r = procman_shm::RLock::new_in(&arena)?;
    /// assert!(r.release().is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<()> {
        let raw = self.raw();
        let me = sys::current_thread().tid;
        match raw.holder() {
            Some(tid) if tid == me => {}
            Some(tid) => {
                return Err(ShmError::NotHeld {
                    object: "RLock",
                    reason: format!("it is held by thread {tid}, not by the calling thread {me}"),
                });
            }
            None => {
                return Err(ShmError::NotHeld { object: "RLock", reason: "it is not held".into() });
            }
        }
        let c = self.count().load(Ordering::Relaxed).saturating_sub(1);
        self.count().store(c, Ordering::Relaxed);
        if c == 0 {
            let _ = raw.unlock();
        }
        Ok(())
    }

    /// Blocks until acquired (or re-entered); the guard releases one level on drop and reports
    /// abandonment through [`Guard::was_abandoned`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let r = procman_shm::RLock::new_in(&arena)?;
    /// let g = r.lock()?;
    /// assert!(!g.was_abandoned());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn lock(&self) -> Result<RLockGuard<'_>> {
        Guard::acquired(self, self.acquire(true, None))
    }

    /// How many times the calling thread holds the lock (0 if it does not).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let r = procman_shm::RLock::new_in(&arena)?;
    /// let _g = r.lock()?;
    /// assert_eq!(r.recursion_level(), 1);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn recursion_level(&self) -> u32 {
        if self.raw().is_held_by_current_thread() { self.count().load(Ordering::Relaxed) } else { 0 }
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.raw().holder() {
            Some(tid) => write!(f, "RLock(locked by thread {tid})"),
            None => write!(f, "RLock(unlocked)"),
        }
    }
}

handle_impls!(RLock, what: "RLock", new: "RLock::new_in(&arena)");

/// Holds one level of an [`RLock`] until dropped: see [`Guard`].
pub type RLockGuard<'a> = Guard<'a, RLock>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::testing::{SHORT, arena};

    #[test]
    fn rlock_reentrancy_and_ownership() {
        let a = arena();
        let r = RLock::new_in(&a).unwrap();
        assert!(r.acquire(true, None).unwrap());
        assert!(r.acquire(false, None).unwrap());
        assert_eq!(r.recursion_level(), 2);
        let r2 = r.clone();
        std::thread::spawn(move || {
            assert!(!r2.acquire(false, None).unwrap());
            assert!(!r2.acquire(true, Some(SHORT)).unwrap());
            assert!(matches!(r2.release(), Err(ShmError::NotHeld { .. })));
            assert_eq!(r2.recursion_level(), 0);
        })
        .join()
        .unwrap();
        r.release().unwrap();
        r.release().unwrap();
        assert!(matches!(r.release(), Err(ShmError::NotHeld { .. })));
        let r3 = r.clone();
        std::thread::spawn(move || {
            let g = r3.lock().unwrap();
            std::mem::forget(g);
        })
        .join()
        .unwrap();
        let g = r.lock().unwrap();
        assert!(g.was_abandoned());
        assert_eq!(r.recursion_level(), 1);
    }
}
