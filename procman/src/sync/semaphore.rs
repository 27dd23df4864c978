//! [`Semaphore`] and [`BoundedSemaphore`], from one definition: CPython's
//! `threading.Semaphore` and `threading.BoundedSemaphore`, held by a manager.

use super::core::{Waiters, deadline, lock, wait_until};
use super::{LockGuard, SyncManager};
use crate::error::{Error, Result};
use crate::inspect::ObjectState;
use crate::shared::Inspect;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A semaphore type: the plain one and the bounded one differ only in the bound.
macro_rules! semaphore {
    ($(#[$doc:meta])* $name:ident, $proxy:ident, $typeid:literal, $creator:ident, bounded: $bounded:expr) => {
        $(#[$doc])*
        #[derive(Debug, crate::Shared)]
        pub struct $name {
            core: SemaphoreCore,
        }

        impl $name {
            #[doc = concat!("A ", stringify!($name), " with `value` permits.")]
            pub fn new(value: usize) -> Self {
                $name { core: SemaphoreCore::new(value, $bounded) }
            }
        }

        #[crate::shared]
        impl $name {
            /// Takes a permit: waits while there is none (not at all when `blocking` is false;
            /// at most `timeout`). Returns whether one was taken.
            ///
            /// Async, cancelled (its future dropped before it completes): no permit is held;
            /// the wait ends without taking one, or the permit it took is given back.
            #[shared(undo = release_acquired)]
            pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
                self.core.acquire(blocking, timeout)
            }

            /// Gives a permit back; a bounded semaphore fails with
            /// [`Error::ReleasedTooManyTimes`] above its initial value.
            pub fn release(&self) -> Result<()> {
                self.core.release(1)
            }

            /// Gives the permit back if `acquired`. An async `acquire` whose future was dropped
            /// after it had taken a permit runs this on its result, so a dropped `acquire` never
            /// keeps a permit.
            pub fn release_acquired(&self, acquired: bool) -> Result<()> {
                if acquired { self.core.release(1) } else { Ok(()) }
            }

            /// The number of free permits.
            pub fn value(&self) -> usize {
                self.core.value()
            }

            /// Takes a permit, waiting as long as needed, and returns a guard that gives it back
            /// when dropped.
            #[shared(client)]
            pub fn guard(&self) -> Result<LockGuard<'_, Self>> {
                LockGuard::acquire(self)
            }
        }

        impl Inspect for $name {
            fn state(&self) -> ObjectState {
                self.core.state()
            }
        }

        #[crate::manager]
        impl SyncManager {
            #[doc = concat!("A new [`", stringify!($name), "`] with `value` permits (Python's `manager.", $typeid, "(value)`).")]
            #[manager(typeid = $typeid)]
            pub fn $creator(value: usize) -> $name {
                $name::new(value)
            }
        }
    };
}

semaphore!(
    /// A counting semaphore held by a manager (CPython's `threading.Semaphore`).
    Semaphore,
    SemaphoreProxy,
    "Semaphore",
    semaphore,
    bounded: false
);

semaphore!(
    /// A semaphore that refuses to be released above its initial value (CPython's
    /// `threading.BoundedSemaphore`).
    BoundedSemaphore,
    BoundedSemaphoreProxy,
    "BoundedSemaphore",
    bounded_semaphore,
    bounded: true
);

/// A counting semaphore (CPython's `threading.Semaphore` / `BoundedSemaphore`).
#[derive(Debug)]
pub(crate) struct SemaphoreCore {
    value: Mutex<usize>,
    cv: Condvar,
    bound: Option<usize>,
    waiters: Waiters,
}

impl SemaphoreCore {
    pub(crate) fn new(value: usize, bounded: bool) -> Self {
        SemaphoreCore {
            value: Mutex::new(value),
            cv: Condvar::new(),
            bound: bounded.then_some(value),
            waiters: Waiters::default(),
        }
    }

    pub(crate) fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline(blocking, timeout)?;
        let g = lock(&self.value);
        let (mut g, ok) = wait_until(&self.cv, g, deadline, &self.waiters, |v| *v > 0)?;
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
        // Under the lock: an acquirer takes its place in `waiters` under it before it sleeps.
        let wake = self.waiters.anyone();
        drop(g);
        if wake {
            for _ in 0..n {
                self.cv.notify_one();
            }
        }
        Ok(())
    }

    pub(crate) fn value(&self) -> usize {
        *lock(&self.value)
    }

    pub(crate) fn state(&self) -> ObjectState {
        ObjectState::Semaphore { value: self.value(), bound: self.bound, waiting: self.waiters.parties() }
    }
}
