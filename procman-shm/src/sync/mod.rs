//! Process-shared synchronization primitives living in the arena: [`Lock`], [`RLock`],
//! [`Semaphore`], [`BoundedSemaphore`], [`Condition`], [`Event`] and [`Barrier`].
//!
//! All of them are futexes on words of the shared mapping (`FUTEX_WAIT`/`FUTEX_WAKE` without
//! `FUTEX_PRIVATE_FLAG`), and all are handles like the values: `Clone` adds a reference,
//! `Serialize` hands one to another process. The lockable ones (a `Lock`, an `RLock`, the lock of
//! a `Condition`) hand out a [`Guard`] that releases them when dropped and tells whether the
//! previous holder died holding the lock.
//!
//! ```
//! use procman_shm::{Arena, Condition, Event, Lock, Semaphore};
//! use std::time::Duration;
//!
//! let arena = Arena::create(1 << 16)?;
//! let (lock, ready) = (Lock::new_in(&arena)?, Event::new_in(&arena)?);
//! let (lock2, ready2) = (lock.clone(), ready.clone()); // in a child process: serialize them
//! let worker = std::thread::spawn(move || {
//!     let _guard = lock2.lock().unwrap();
//!     ready2.set();
//! });
//! assert!(ready.wait(Some(Duration::from_secs(10))));
//! worker.join().unwrap();
//! let guard = lock.lock()?;
//! assert!(!guard.was_abandoned());
//! drop(guard);
//!
//! let permits = Semaphore::new_in(&arena, 1)?;
//! assert!(permits.acquire(false, None)?);
//! assert!(!permits.acquire(false, None)?);
//! permits.release()?;
//!
//! let cond = Condition::new_in(&arena)?;
//! let _guard = cond.lock()?;
//! assert!(!cond.wait(Some(Duration::from_millis(5)))?); // timed out, lock held again
//! # Ok::<(), procman_shm::ShmError>(())
//! ```
//!
//! Files:
//! * `lock.rs`: [`Lock`], a mutual-exclusion lock any thread may release.
//! * `rlock.rs`: [`RLock`], a re-entrant lock owned by one thread of one process.
//! * `semaphore.rs`: [`Semaphore`] and [`BoundedSemaphore`], both a [`CountingSemaphore`].
//! * `condition.rs`: [`Condition`], a condition variable over a [`ConditionLock`].
//! * `event.rs`: [`Event`], a flag that threads can wait for.
//! * `barrier.rs`: [`Barrier`], Python's barrier for a fixed number of parties.
//! * `guard.rs`: [`Guard`], the one guard of the lockable primitives, over a [`RawRelease`] lock.
//! * `deadline.rs`: the deadline helpers of every timed wait (the queue's and `RawLock`'s too).

mod barrier;
mod condition;
pub(crate) mod deadline;
mod event;
mod guard;
mod lock;
mod rlock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard, ConditionLock};
pub use event::Event;
pub use guard::{Guard, RawRelease};
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{Bound, Bounded, BoundedSemaphore, CountingSemaphore, Semaphore, Unbounded};

// Block classes of the primitives (the values and the queue have the others).
const CLASS_LOCK: u8 = 4;
const CLASS_RLOCK: u8 = 5;
const CLASS_SEMAPHORE: u8 = 6;
const CLASS_BOUNDED_SEMAPHORE: u8 = 7;
const CLASS_CONDITION: u8 = 8;
const CLASS_EVENT: u8 = 9;
const CLASS_BARRIER: u8 = 10;

/// What the tests of every primitive share.
#[cfg(test)]
mod testing {
    use std::time::Duration;

    use crate::arena::Arena;

    pub(super) fn arena() -> Arena {
        Arena::create(1 << 16).unwrap()
    }

    pub(super) const SHORT: Duration = Duration::from_millis(40);
}

#[cfg(test)]
mod tests {
    use super::testing::arena;
    use super::*;

    #[test]
    fn primitives_serialize_and_free() {
        let a = arena();
        {
            let lock = Lock::new_in(&a).unwrap();
            let cond = Condition::with_lock(&a, lock.clone()).unwrap();
            let ev = Event::new_in(&a).unwrap();
            let wire = postcard::to_allocvec(&(&lock, &cond, &ev)).unwrap();
            let (l2, c2, e2): (Lock, Condition, Event) = postcard::from_bytes(&wire).unwrap();
            let _g = l2.lock().unwrap();
            assert!(lock.is_locked());
            c2.notify_all().unwrap();
            e2.set();
            assert!(ev.is_set());
            assert_eq!(lock.ref_count(), 4); // lock, cond's, l2, c2's
            assert!(Condition::with_lock(&arena(), lock.clone()).is_err());
        }
        assert_eq!(a.live_objects(), 0);
    }
}
