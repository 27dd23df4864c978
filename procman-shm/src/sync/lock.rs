//! [`Lock`]: a process-shared mutual-exclusion lock.

use std::fmt;
use std::time::Duration;

use super::CLASS_LOCK;
use super::deadline::deadline_after;
use super::guard::Guard;
use crate::arena::{Arena, Block, Kind};
use crate::error::{Result, ShmError};
use crate::handle::handle_impls;
use crate::lock_core::{Acquire, RawLock};

/// A process-shared mutual-exclusion lock (the spec's `Lock`), a futex on the shared mapping.
///
/// Uncontended `acquire` + `release` is one compare-exchange, one relaxed store and one swap; a
/// `FUTEX_WAKE` happens only if a waiter is recorded. As in Python, any thread may release a held
/// `Lock`; releasing a free one is [`ShmError::NotHeld`].
///
/// **Abandonment**: if the holder dies (its thread or process ends, SIGKILL included), the next
/// waiter notices within ~25-50 ms, takes the lock over and is told: [`Lock::lock`] returns a
/// guard whose [`Guard::was_abandoned`] is true, and [`Lock::acquire`] returns
/// `Err(ShmError::Abandoned { .. })` — in both cases **the caller holds the lock**.
///
/// ```
/// use procman_shm::{Arena, Lock};
///
/// let arena = Arena::create(4096)?;
/// let lock = Lock::new_in(&arena)?;
/// {
///     let guard = lock.lock()?;
///     assert!(lock.is_locked());
///     assert!(!guard.was_abandoned());
/// }
/// assert!(lock.acquire(true, None)?);
/// assert!(!lock.acquire(false, None)?);
/// lock.release()?;
/// assert!(lock.release().is_err());
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct Lock {
    block: Block,
}

impl Lock {
    const KIND: Kind = Kind::new(CLASS_LOCK, 0, 0);

    fn from_block(block: Block) -> Lock {
        Lock { block }
    }

    /// Allocates an unlocked lock in `arena`.
    ///
    /// ```
    /// let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// assert!(!lock.is_locked());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena) -> Result<Lock> {
        Ok(Lock::from_block(Block::alloc(arena, Self::KIND, 0, 0)?))
    }

    #[inline]
    pub(super) fn raw(&self) -> RawLock<'_> {
        self.block.raw_lock()
    }

    /// Acquires the lock: `Ok(true)` when acquired, `Ok(false)` if `blocking` is false and the
    /// lock is busy or the `timeout` expired. `Err(ShmError::Abandoned)` means the previous holder
    /// died and the caller now holds the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// assert!(lock.acquire(true, None)?);
    /// let t = std::time::Duration::from_millis(10);
    /// assert!(!lock.acquire(true, Some(t))?);
    /// lock.release()?;
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        match self.raw().lock(blocking, deadline_after(timeout)) {
            Acquire::Acquired => Ok(true),
            Acquire::TimedOut => Ok(false),
            Acquire::Abandoned { tid, pid } => Err(ShmError::Abandoned { object: "Lock", pid, tid }),
        }
    }

    /// Releases the lock (whoever holds it, as in Python); [`ShmError::NotHeld`] if it is free.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// assert!(lock.release().is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<()> {
        self.raw().unlock().map_err(|()| ShmError::NotHeld { object: "Lock", reason: "it is not held".into() })
    }

    fn guard(&self, outcome: Acquire) -> Option<LockGuard<'_>> {
        match outcome {
            Acquire::Acquired => Some(Guard::new(self, None)),
            Acquire::Abandoned { pid, .. } => Some(Guard::new(self, Some(pid))),
            Acquire::TimedOut => None,
        }
    }

    /// Blocks until the lock is acquired and returns a guard that releases it on drop. A lock
    /// taken over from a dead holder is reported by [`Guard::was_abandoned`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// let guard = lock.lock()?;
    /// drop(guard);
    /// assert!(!lock.is_locked());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        match self.guard(self.raw().lock(true, None)) {
            Some(g) => Ok(g),
            None => unreachable!("blocking lock without deadline returned"),
        }
    }

    /// One attempt: `Ok(None)` if the lock is busy.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// let g = lock.try_lock()?.expect("free");
    /// assert!(lock.try_lock()?.is_none());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn try_lock(&self) -> Result<Option<LockGuard<'_>>> {
        Ok(self.guard(self.raw().lock(false, None)))
    }

    /// Like [`Self::lock`] but gives up after `timeout` with [`ShmError::Timeout`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// let _g = lock.lock()?;
    /// let t = std::time::Duration::from_millis(5);
    /// assert!(matches!(lock.lock_timeout(t), Err(procman_shm::ShmError::Timeout(_))));
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        self.guard(self.raw().lock(true, deadline_after(Some(timeout)))).ok_or(ShmError::Timeout(timeout))
    }

    /// Whether some thread (of any process) holds the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// assert!(!lock.is_locked());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn is_locked(&self) -> bool {
        self.raw().holder().is_some()
    }

    /// Whether the calling thread holds the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// let _g = lock.lock()?;
    /// assert!(lock.is_held_by_current_thread());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn is_held_by_current_thread(&self) -> bool {
        self.raw().is_held_by_current_thread()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.raw().holder() {
            Some(tid) => write!(f, "Lock(locked by thread {tid})"),
            None => write!(f, "Lock(unlocked)"),
        }
    }
}

handle_impls!(Lock, what: "Lock", new: "Lock::new_in(&arena)");

/// Holds a [`Lock`] until dropped: see [`Guard`].
pub type LockGuard<'a> = Guard<'a, Lock>;

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::sync::testing::{SHORT, arena};

    #[test]
    fn lock_semantics() {
        let a = arena();
        let lock = Lock::new_in(&a).unwrap();
        assert!(matches!(lock.release(), Err(ShmError::NotHeld { .. })));
        assert!(lock.acquire(true, None).unwrap());
        let t = Instant::now();
        assert!(!lock.acquire(true, Some(SHORT)).unwrap());
        assert!(t.elapsed() >= SHORT);
        assert!(matches!(lock.lock_timeout(SHORT), Err(ShmError::Timeout(_))));
        // Another thread may release a Lock (Python semantics).
        let l2 = lock.clone();
        std::thread::spawn(move || l2.release().unwrap()).join().unwrap();
        assert!(!lock.is_locked());
        assert_eq!(format!("{lock:?}"), "Lock(unlocked)");
    }

    #[test]
    fn lock_abandoned_by_dead_thread_is_reported_with_lock_held() {
        let a = arena();
        let lock = Lock::new_in(&a).unwrap();
        let l2 = lock.clone();
        std::thread::spawn(move || std::mem::forget(l2.lock().unwrap())).join().unwrap();
        let t = Instant::now();
        let g = lock.lock().unwrap();
        assert!(g.was_abandoned());
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(lock.is_held_by_current_thread());
        drop(g);
        // Through acquire: Err(Abandoned) and the lock is held.
        let l3 = lock.clone();
        std::thread::spawn(move || assert!(l3.acquire(true, None).unwrap())).join().unwrap();
        assert!(matches!(lock.acquire(true, None), Err(ShmError::Abandoned { object: "Lock", .. })));
        assert!(lock.is_held_by_current_thread());
        lock.release().unwrap();
    }
}
