//! [`Guard`]: the one guard type of the lockable primitives, generic over what it releases (as
//! `lock_api`'s `MutexGuard` is over its raw mutex).

use std::fmt;

use super::{ConditionLock, Lock, RLock};
use crate::error::{Result, ShmError};

mod sealed {
    /// Keeps [`RawRelease`](super::RawRelease) to the primitives of this crate.
    pub trait Sealed {}
}

/// A lock a [`Guard`] can hold: [`Lock`], [`RLock`] and [`ConditionLock`] (the lock of a
/// [`Condition`](crate::Condition)).
/// Sealed: only this crate's primitives implement it.
pub trait RawRelease: sealed::Sealed {
    /// Releases the lock once (one level of a re-entrant lock); what a [`Guard`] does on drop.
    fn release_once(&self) -> Result<()>;
}

/// `RawRelease` as their `release`, for the lockable primitives.
macro_rules! raw_release {
    ($($lock:ty),*) => {$(
        impl sealed::Sealed for $lock {}

        impl RawRelease for $lock {
            fn release_once(&self) -> Result<()> {
                self.release()
            }
        }
    )*};
}

raw_release!(Lock, RLock, ConditionLock);

/// Holds a lock (one level of an [`RLock`]) until dropped. Made by the `lock` methods of
/// [`Lock`], [`RLock`] and [`Condition`](crate::Condition), and by [`Lock::try_lock`] and
/// [`Lock::lock_timeout`]; named [`LockGuard`](crate::LockGuard),
/// [`RLockGuard`](crate::RLockGuard) and [`ConditionGuard`](crate::ConditionGuard) there.
///
/// ```
/// # let arena = procman_shm::Arena::create(4096)?;
/// let lock = procman_shm::Lock::new_in(&arena)?;
/// let guard = lock.lock()?;
/// assert_eq!(guard.abandoned_by(), None);
/// drop(guard);
/// assert!(!lock.is_locked());
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct Guard<'a, L: RawRelease> {
    lock: &'a L,
    abandoned_by: Option<u32>,
}

impl<'a, L: RawRelease> Guard<'a, L> {
    /// Wraps `lock`, which the caller holds; `abandoned_by` is the pid of the previous holder if
    /// it died holding the lock.
    pub(super) fn new(lock: &'a L, abandoned_by: Option<u32>) -> Self {
        Guard { lock, abandoned_by }
    }

    /// The guard for what a blocking `acquire` of `lock` without timeout returned: the lock is
    /// held after `Ok(_)` and after `Err(ShmError::Abandoned)`; other errors are passed on.
    pub(super) fn acquired(lock: &'a L, acquire: Result<bool>) -> Result<Self> {
        match acquire {
            Ok(_) => Ok(Guard::new(lock, None)),
            Err(ShmError::Abandoned { pid, .. }) => Ok(Guard::new(lock, Some(pid))),
            Err(e) => Err(e),
        }
    }

    /// True if the lock was taken over from a holder that died holding it; the data the lock
    /// protects may be half-updated.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// # let lock = procman_shm::Lock::new_in(&arena)?;
    /// assert!(!lock.lock()?.was_abandoned());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn was_abandoned(&self) -> bool {
        self.abandoned_by.is_some()
    }

    /// The process id of the dead previous holder, if the lock was abandoned.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// # let lock = procman_shm::Lock::new_in(&arena)?;
    /// assert_eq!(lock.lock()?.abandoned_by(), None);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn abandoned_by(&self) -> Option<u32> {
        self.abandoned_by
    }
}

impl<L: RawRelease + fmt::Debug> fmt::Debug for Guard<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("lock", self.lock).field("abandoned_by", &self.abandoned_by).finish()
    }
}

impl<L: RawRelease> Drop for Guard<'_, L> {
    fn drop(&mut self) {
        let _ = self.lock.release_once();
    }
}
