//! [`LockGuard`]: one guard for every manager object with `acquire` and `release`.

use crate::error::{Error, Result};

mod sealed {
    pub trait Sealed {}
}

/// A proxy of a manager object that is acquired and released: [`LockProxy`](super::LockProxy),
/// [`RLockProxy`](super::RLockProxy), [`SemaphoreProxy`](super::SemaphoreProxy),
/// [`BoundedSemaphoreProxy`](super::BoundedSemaphoreProxy) and
/// [`ConditionProxy`](super::ConditionProxy). What a [`LockGuard`] holds.
pub trait Acquire: sealed::Sealed {
    /// Acquires once, waiting as long as needed.
    fn acquire_once(&self) -> Result<bool>;
    /// Releases once.
    fn release_once(&self) -> Result<()>;
}

macro_rules! acquire_impls {
    ($($proxy:ty),*) => {$(
        impl sealed::Sealed for $proxy {}

        impl Acquire for $proxy {
            fn acquire_once(&self) -> Result<bool> {
                self.acquire(true, None)
            }

            fn release_once(&self) -> Result<()> {
                self.release()
            }
        }
    )*};
}

acquire_impls!(
    super::LockProxy,
    super::RLockProxy,
    super::SemaphoreProxy,
    super::BoundedSemaphoreProxy,
    super::ConditionProxy
);

/// Releases a manager lock (or semaphore, or condition's lock) when dropped. Made by the
/// proxies' `guard()`.
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let lock = m.lock()?;
/// {
///     let _held = lock.guard()?;
///     assert!(lock.locked()?);
/// }
/// assert!(!lock.locked()?);
/// # Ok::<(), procman::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard<'a, L: Acquire> {
    lock: &'a L,
    abandoned: bool,
}

impl<'a, L: Acquire> LockGuard<'a, L> {
    /// Acquires `lock`, waiting as long as needed. A lock abandoned by a dead holder is
    /// acquired too: see [`was_abandoned`](Self::was_abandoned).
    pub fn acquire(lock: &'a L) -> Result<Self> {
        let abandoned = match lock.acquire_once() {
            Ok(_) => false,
            Err(Error::Abandoned) => true,
            Err(e) => return Err(e),
        };
        Ok(LockGuard { lock, abandoned })
    }

    /// True when the previous holder died holding the lock (see [`Error::Abandoned`]): the
    /// state it protects may be half-updated.
    pub fn was_abandoned(&self) -> bool {
        self.abandoned
    }
}

impl<L: Acquire> Drop for LockGuard<'_, L> {
    fn drop(&mut self) {
        let _ = self.lock.release_once();
    }
}
