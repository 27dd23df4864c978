//! [`Condition`]: a process-shared condition variable over a [`Lock`] or an [`RLock`]
//! ([`ConditionLock`]).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::deadline::{deadline_after, futex_wait_until, remaining};
use super::guard::Guard;
use super::{CLASS_CONDITION, Lock, RLock};
use crate::arena::{Arena, Block, Kind};
use crate::error::{Result, ShmError};
use crate::handle::{deserialize_block, serialize_block};
use crate::sys;

/// The lock of a [`Condition`]: a [`Lock`] or a re-entrant [`RLock`] (the default, as in Python).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ConditionLock {
    /// A plain lock.
    Lock(Lock),
    /// A re-entrant lock: `wait` releases every level and restores them.
    RLock(RLock),
}

impl From<Lock> for ConditionLock {
    fn from(lock: Lock) -> Self {
        ConditionLock::Lock(lock)
    }
}

impl From<RLock> for ConditionLock {
    fn from(lock: RLock) -> Self {
        ConditionLock::RLock(lock)
    }
}

impl ConditionLock {
    /// Acquires (or, for an `RLock`, re-enters) the lock; see [`Lock::acquire`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(cond.lock_handle().acquire(true, None)?);
    /// cond.lock_handle().release()?;
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        match self {
            ConditionLock::Lock(l) => l.acquire(blocking, timeout),
            ConditionLock::RLock(l) => l.acquire(blocking, timeout),
        }
    }

    /// Releases the lock (one level of an `RLock`).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(cond.lock_handle().release().is_err()); // not held
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        match self {
            ConditionLock::Lock(l) => l.release(),
            ConditionLock::RLock(l) => l.release(),
        }
    }

    /// True while some thread holds the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(!cond.lock_handle().is_locked());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn is_locked(&self) -> bool {
        match self {
            ConditionLock::Lock(l) => l.is_locked(),
            ConditionLock::RLock(l) => l.raw().holder().is_some(),
        }
    }

    /// True when the calling thread holds the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// let _g = cond.lock()?;
    /// assert!(cond.lock_handle().is_held_by_current_thread());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn is_held_by_current_thread(&self) -> bool {
        match self {
            ConditionLock::Lock(l) => l.is_held_by_current_thread(),
            ConditionLock::RLock(l) => l.raw().is_held_by_current_thread(),
        }
    }

    fn arena(&self) -> &Arena {
        match self {
            ConditionLock::Lock(l) => l.arena(),
            ConditionLock::RLock(l) => l.arena(),
        }
    }

    /// Releases the lock completely for a wait; returns how many levels to restore.
    fn release_save(&self) -> Result<u32> {
        match self {
            ConditionLock::Lock(l) => l.release().map(|()| 1),
            ConditionLock::RLock(l) => {
                let levels = l.recursion_level();
                for _ in 0..levels {
                    l.release()?;
                }
                Ok(levels)
            }
        }
    }

    /// Re-acquires after a wait and restores the levels `release_save` returned.
    fn restore(&self, levels: u32) -> Result<()> {
        match self {
            ConditionLock::Lock(l) => l.acquire(true, None).map(drop),
            ConditionLock::RLock(l) => {
                let first = l.acquire(true, None);
                for _ in 1..levels {
                    l.acquire(true, None)?;
                }
                first.map(drop)
            }
        }
    }
}

/// A process-shared condition variable (the spec's `Condition`) bound to a lock: its own
/// re-entrant [`RLock`] (as in Python), or a [`Lock`] or `RLock` given to [`Condition::with_lock`].
///
/// `wait` and `notify` require the calling thread to hold the lock ([`ShmError::NotHeld`]
/// otherwise). `wait` may wake spuriously, so loop on a predicate or use [`Self::wait_for`].
///
/// ```
/// use procman_shm::{Arena, Condition};
/// use std::time::Duration;
///
/// let arena = Arena::create(4096)?;
/// let cond = Condition::new_in(&arena)?;
/// let guard = cond.lock()?;
/// assert!(!cond.wait(Some(Duration::from_millis(10)))?); // timed out, lock re-acquired
/// cond.notify_all()?;
/// drop(guard);
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct Condition {
    block: Block,
    lock: ConditionLock,
}

impl Condition {
    const KIND: Kind = Kind::new(CLASS_CONDITION, 0, 0);

    /// A condition with a new re-entrant lock of its own.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(!cond.lock_handle().is_locked());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena) -> Result<Condition> {
        let lock = RLock::new_in(arena)?;
        Self::with_lock(arena, lock)
    }

    /// A condition using `lock` (a [`Lock`] or an [`RLock`]), which must live in `arena`
    /// ([`ShmError::InvalidArgument`] otherwise).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// let cond = procman_shm::Condition::with_lock(&arena, lock.clone())?;
    /// let _g = lock.lock()?;
    /// cond.notify(1)?; // we hold the condition's lock
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn with_lock(arena: &Arena, lock: impl Into<ConditionLock>) -> Result<Condition> {
        let lock = lock.into();
        if !lock.arena().same_arena(arena) {
            return Err(ShmError::InvalidArgument("a Condition's lock must live in the same arena"));
        }
        Ok(Condition { block: Block::alloc(arena, Self::KIND, 1, 0)?, lock })
    }

    /// The condition's lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(cond.lock_handle().acquire(true, None)?);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn lock_handle(&self) -> &ConditionLock {
        &self.lock
    }

    /// [`Lock::acquire`] on the condition's lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(cond.acquire(true, None)?);
    /// cond.release()?;
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        self.lock.acquire(blocking, timeout)
    }

    /// [`Lock::release`] on the condition's lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(cond.release().is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<()> {
        self.lock.release()
    }

    /// Acquires the condition's lock, waiting as long as needed; the guard releases it on drop
    /// and reports abandonment through [`Guard::was_abandoned`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// let guard = cond.lock()?;
    /// assert!(!guard.was_abandoned());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> Result<ConditionGuard<'_>> {
        Guard::acquired(&self.lock, self.lock.acquire(true, None))
    }

    fn seq(&self) -> &AtomicU32 {
        self.block.atomic_u32(0)
    }

    fn waiters(&self) -> &AtomicU32 {
        self.block.atomic_u32(1)
    }

    fn check_held(&self, what: &str) -> Result<()> {
        if self.lock.is_held_by_current_thread() {
            Ok(())
        } else {
            Err(ShmError::NotHeld {
                object: "Condition",
                reason: format!("{what} called without holding the condition's lock"),
            })
        }
    }

    /// Releases the lock, sleeps until notified or until `timeout`, and re-acquires the lock
    /// (without timeout) before returning. `Ok(false)` means the timeout expired. If the lock was
    /// abandoned meanwhile, returns `Err(ShmError::Abandoned)` with the lock held.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(cond.wait(None).is_err()); // lock not held
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.check_held("wait()")?;
        let deadline = deadline_after(timeout);
        // Read under the lock: a notify after our release changes `seq`, so we cannot miss it.
        let seq = self.seq().load(Ordering::Relaxed);
        self.waiters().fetch_add(1, Ordering::Relaxed);
        let levels = match self.lock.release_save() {
            Ok(levels) => levels,
            Err(e) => {
                self.waiters().fetch_sub(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        // A notify that came just as the deadline passed still counts.
        let notified = futex_wait_until(self.seq(), seq, deadline) || self.seq().load(Ordering::Relaxed) != seq;
        self.waiters().fetch_sub(1, Ordering::Relaxed);
        self.lock.restore(levels)?;
        Ok(notified)
    }

    /// Waits until `predicate()` is true (checked with the lock held), or until `timeout`;
    /// returns the last value of the predicate.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// let _g = cond.lock()?;
    /// let mut calls = 0;
    /// let ok = cond.wait_for(|| { calls += 1; calls == 1 }, None)?;
    /// assert!(ok);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline_after(timeout);
        loop {
            if predicate() {
                return Ok(true);
            }
            let Ok(left) = remaining(deadline) else {
                return Ok(false);
            };
            self.wait(left)?;
        }
    }

    /// Wakes at most `n` threads waiting on the condition (in any process). The caller must hold
    /// the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(cond.notify(1).is_err()); // lock not held
    /// let _g = cond.lock()?;
    /// cond.notify(1)?;
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn notify(&self, n: u32) -> Result<()> {
        self.check_held("notify()")?;
        if self.waiters().load(Ordering::Relaxed) > 0 {
            self.seq().fetch_add(1, Ordering::Release);
            sys::futex_wake(self.seq(), n);
        }
        Ok(())
    }

    /// Wakes every waiting thread. The caller must hold the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// let _g = cond.lock()?;
    /// cond.notify_all()?;
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn notify_all(&self) -> Result<()> {
        self.notify(u32::MAX)
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Condition({:?}, waiters={})", self.lock, self.waiters().load(Ordering::Relaxed))
    }
}

impl Clone for Condition {
    /// Another handle to the same condition and lock (increments their reference counts).
    fn clone(&self) -> Self {
        Condition { block: self.block.clone(), lock: self.lock.clone() }
    }
}

impl Serialize for Condition {
    /// Serializes the condition and its lock, adding the references the receiver adopts.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        struct B<'a>(&'a Block);
        impl Serialize for B<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                serialize_block(self.0, s)
            }
        }
        (B(&self.block), &self.lock).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Condition {
    /// Maps the arena if needed and adopts the serialized references.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct B(Block);
        impl<'de> Deserialize<'de> for B {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                Ok(B(deserialize_block(d, Condition::KIND, || "Condition".to_owned())?))
            }
        }
        let (B(block), lock) = <(B, ConditionLock)>::deserialize(d)?;
        Ok(Condition { block, lock })
    }
}

impl Condition {
    /// Number of handles to this condition in all processes (serialized ones included).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let c = procman_shm::Condition::new_in(&arena)?;
    /// assert_eq!(c.ref_count(), 1);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn ref_count(&self) -> u64 {
        self.block.ref_count()
    }

    /// The arena the condition lives in.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let c = procman_shm::Condition::new_in(&arena)?;
    /// assert!(c.arena().same_arena(&arena));
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn arena(&self) -> &Arena {
        self.block.arena()
    }
}

/// Releases a [`Condition`]'s lock once when dropped: see [`Guard`]. Made by [`Condition::lock`].
pub type ConditionGuard<'a> = Guard<'a, ConditionLock>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use super::*;
    use crate::sync::testing::{SHORT, arena};

    #[test]
    fn condition_notify_and_wait() {
        let a = arena();
        let cond = Condition::new_in(&a).unwrap();
        let state = SharedValueU32::new(&a);
        assert!(matches!(cond.wait(None), Err(ShmError::NotHeld { .. })));
        assert!(matches!(cond.notify(1), Err(ShmError::NotHeld { .. })));
        // Timeout.
        {
            let _g = cond.lock().unwrap();
            let t = Instant::now();
            assert!(!cond.wait(Some(SHORT)).unwrap());
            assert!(t.elapsed() >= SHORT);
            assert!(cond.lock_handle().is_held_by_current_thread());
            assert!(!cond.wait_for(|| false, Some(SHORT)).unwrap());
        }
        // notify(1) wakes exactly one of three sleepers; notify_all the rest.
        let woken = Arc::new(AtomicUsize::new(0));
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                let (cond, woken) = (cond.clone(), woken.clone());
                std::thread::spawn(move || {
                    let _g = cond.lock().unwrap();
                    let r = cond.wait(Some(Duration::from_secs(10))).unwrap();
                    woken.fetch_add(1, Ordering::SeqCst);
                    r
                })
            })
            .collect();
        while cond.waiters().load(Ordering::SeqCst) < 3 {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(50)); // let them reach FUTEX_WAIT
        {
            let _g = cond.lock().unwrap();
            cond.notify(1).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        {
            let _g = cond.lock().unwrap();
            cond.notify_all().unwrap();
        }
        for s in sleepers {
            assert!(s.join().unwrap());
        }
        // wait_for with a predicate changed by another thread.
        let (c2, st2) = (cond.clone(), state.clone());
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let _g = c2.lock().unwrap();
            st2.set(7);
            c2.notify_all().unwrap();
        });
        let g = cond.lock().unwrap();
        assert!(cond.wait_for(|| state.get() == 7, Some(Duration::from_secs(5))).unwrap());
        drop(g);
        h.join().unwrap();
    }

    /// A tiny shared u32 for tests (the real SharedValue lives in `value`).
    #[derive(Clone)]
    struct SharedValueU32(crate::SharedValue<u32>);
    impl SharedValueU32 {
        fn new(a: &Arena) -> Self {
            Self(crate::SharedValue::new_in(a, 0).unwrap())
        }
        fn get(&self) -> u32 {
            self.0.get()
        }
        fn set(&self, v: u32) {
            self.0.set(v)
        }
    }

    #[test]
    fn a_condition_over_its_rlock_releases_every_level_while_waiting() {
        let a = arena();
        let cond = Condition::new_in(&a).unwrap();
        let outer = cond.lock().unwrap();
        let inner = cond.lock().unwrap(); // re-entrant: Python's default condition lock
        let other = cond.clone();
        let t = std::thread::spawn(move || {
            // Gets the lock only once `wait` has released both levels.
            let _g = other.lock().unwrap();
            other.notify_all().unwrap();
        });
        assert!(cond.wait(Some(Duration::from_secs(10))).unwrap(), "woken, not timed out");
        assert!(cond.lock_handle().is_held_by_current_thread());
        drop(inner);
        assert!(cond.lock_handle().is_held_by_current_thread(), "both levels were restored");
        drop(outer);
        assert!(!cond.lock_handle().is_locked());
        t.join().unwrap();
    }

    #[test]
    fn a_condition_over_a_given_rlock_uses_it() {
        let a = arena();
        let rlock = RLock::new_in(&a).unwrap();
        let cond = Condition::with_lock(&a, rlock.clone()).unwrap();
        let _g = rlock.lock().unwrap();
        assert!(cond.lock_handle().is_held_by_current_thread());
        assert!(!cond.wait(Some(Duration::from_millis(20))).unwrap());
        assert_eq!(rlock.recursion_level(), 1, "the level is restored after a timed-out wait");
    }
}
