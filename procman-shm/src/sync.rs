//! Process-shared synchronization primitives living in the arena: [`Lock`], [`RLock`],
//! [`Semaphore`], [`BoundedSemaphore`], [`Condition`], [`Event`] and [`Barrier`].
//!
//! All of them are futexes on words of the shared mapping (`FUTEX_WAIT`/`FUTEX_WAKE` without
//! `FUTEX_PRIVATE_FLAG`), and all are handles like the values: `Clone` adds a reference,
//! `Serialize` hands one to another process.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::arena::{Arena, Block, Kind};
use crate::error::{Result, ShmError};
use crate::handle::{deserialize_block, serialize_block};
use crate::lock_core::{Acquire, RawLock};
use crate::sys::{self, Wake};

const CLASS_LOCK: u8 = 4;
const CLASS_RLOCK: u8 = 5;
const CLASS_SEMAPHORE: u8 = 6;
const CLASS_BOUNDED_SEMAPHORE: u8 = 7;
const CLASS_CONDITION: u8 = 8;
const CLASS_EVENT: u8 = 9;
const CLASS_BARRIER: u8 = 10;

pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|d| Instant::now().checked_add(d).unwrap_or_else(far_future))
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Time left until `deadline`: `Ok(None)` for no deadline, `Err(())` if it has passed.
pub(crate) fn remaining(deadline: Option<Instant>) -> std::result::Result<Option<Duration>, ()> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let now = Instant::now();
            if now >= d { Err(()) } else { Ok(Some(d - now)) }
        }
    }
}

/// Clone, Debug, Serialize, Deserialize, `ref_count` and `arena` for a handle with a `block` field.
macro_rules! handle_impls {
    ($name:ident) => {
        impl Clone for $name {
            /// Another handle to the same object (increments its reference count).
            fn clone(&self) -> Self {
                Self {
                    block: self.block.clone(),
                }
            }
        }

        impl Serialize for $name {
            /// Serializes the handle and adds the reference its receiver adopts; deserialize each
            /// serialized copy exactly once.
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                serialize_block(&self.block, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// Maps the arena if needed and adopts the serialized reference.
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                Ok(Self {
                    block: deserialize_block(d, Self::KIND, || stringify!($name).to_owned())?,
                })
            }
        }

        impl $name {
            /// Number of handles to this object in all processes (serialized ones included).
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let x = procman_shm::", stringify!($name), "::new_in(&arena", handle_impls!(@args $name), ")?;")]
            /// let y = x.clone();
            /// assert_eq!(x.ref_count(), 2);
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            pub fn ref_count(&self) -> u64 {
                self.block.ref_count()
            }

            /// The arena the object lives in.
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let x = procman_shm::", stringify!($name), "::new_in(&arena", handle_impls!(@args $name), ")?;")]
            /// assert!(x.arena().same_arena(&arena));
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            pub fn arena(&self) -> &Arena {
                self.block.arena()
            }
        }
    };
    (@args Semaphore) => { ", 1" };
    (@args BoundedSemaphore) => { ", 1" };
    (@args Barrier) => { ", 2" };
    (@args $other:ident) => { "" };
}

// ---------------------------------------------------------------------------------------------
// Lock

/// A process-shared mutual-exclusion lock (the spec's `Lock`), a futex on the shared mapping.
///
/// Uncontended `acquire` + `release` is one compare-exchange, one relaxed store and one swap; a
/// `FUTEX_WAKE` happens only if a waiter is recorded. As in Python, any thread may release a held
/// `Lock`; releasing a free one is [`ShmError::NotHeld`].
///
/// **Abandonment**: if the holder dies (its thread or process ends, SIGKILL included), the next
/// waiter notices within ~25-50 ms, takes the lock over and is told: [`Lock::lock`] returns a
/// guard whose [`LockGuard::was_abandoned`] is true, and [`Lock::acquire`] returns
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

    /// Allocates an unlocked lock in `arena`.
    ///
    /// ```
    /// let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// assert!(!lock.is_locked());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena) -> Result<Lock> {
        Ok(Lock { block: Block::alloc(arena, Self::KIND, 0, 0)? })
    }

    #[inline]
    fn raw(&self) -> RawLock<'_> {
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
            Acquire::Acquired => Some(LockGuard { lock: self, abandoned_by: None }),
            Acquire::Abandoned { pid, .. } => Some(LockGuard { lock: self, abandoned_by: Some(pid) }),
            Acquire::TimedOut => None,
        }
    }

    /// Blocks until the lock is acquired and returns a guard that releases it on drop. A lock
    /// taken over from a dead holder is reported by [`LockGuard::was_abandoned`].
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

handle_impls!(Lock);

/// Holds a [`Lock`] until dropped.
///
/// ```
/// # let arena = procman_shm::Arena::create(4096)?;
/// let lock = procman_shm::Lock::new_in(&arena)?;
/// let guard = lock.lock()?;
/// assert_eq!(guard.abandoned_by(), None);
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    abandoned_by: Option<u32>,
}

impl LockGuard<'_> {
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

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("lock", self.lock).field("abandoned_by", &self.abandoned_by).finish()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}

// ---------------------------------------------------------------------------------------------
// RLock

/// A re-entrant process-shared lock (the spec's `RLock`): the holding thread (identified by its
/// kernel thread id, hence by process and thread) may acquire it again; it is free once released
/// as many times. Releasing from a thread that does not hold it is [`ShmError::NotHeld`].
/// Abandonment is handled as for [`Lock`].
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

    /// Allocates a free re-entrant lock in `arena`.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let r = procman_shm::RLock::new_in(&arena)?;
    /// assert_eq!(r.recursion_level(), 0);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena) -> Result<RLock> {
        Ok(RLock { block: Block::alloc(arena, Self::KIND, 1, 0)? })
    }

    #[inline]
    fn raw(&self) -> RawLock<'_> {
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
    /// abandonment through [`RLockGuard::was_abandoned`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let r = procman_shm::RLock::new_in(&arena)?;
    /// let g = r.lock()?;
    /// assert!(!g.was_abandoned());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn lock(&self) -> Result<RLockGuard<'_>> {
        match self.acquire(true, None) {
            Ok(_) => Ok(RLockGuard { rlock: self, abandoned_by: None }),
            Err(ShmError::Abandoned { pid, .. }) => Ok(RLockGuard { rlock: self, abandoned_by: Some(pid) }),
            Err(e) => Err(e),
        }
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

handle_impls!(RLock);

/// Holds one level of an [`RLock`] until dropped.
///
/// ```
/// # let arena = procman_shm::Arena::create(4096)?;
/// let r = procman_shm::RLock::new_in(&arena)?;
/// let g = r.lock()?;
/// assert_eq!(g.abandoned_by(), None);
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct RLockGuard<'a> {
    rlock: &'a RLock,
    abandoned_by: Option<u32>,
}

impl RLockGuard<'_> {
    /// True if the lock was taken over from a holder that died holding it.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// # let r = procman_shm::RLock::new_in(&arena)?;
    /// assert!(!r.lock()?.was_abandoned());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn was_abandoned(&self) -> bool {
        self.abandoned_by.is_some()
    }

    /// The process id of the dead previous holder, if the lock was abandoned.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// # let r = procman_shm::RLock::new_in(&arena)?;
    /// assert_eq!(r.lock()?.abandoned_by(), None);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn abandoned_by(&self) -> Option<u32> {
        self.abandoned_by
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").field("rlock", self.rlock).field("abandoned_by", &self.abandoned_by).finish()
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.rlock.release();
    }
}

// ---------------------------------------------------------------------------------------------
// Semaphores

/// Counter (half-slot 0, the futex word), sleeping waiters (1), bound (2, bounded only).
struct SemCore<'a> {
    value: &'a AtomicU32,
    waiters: &'a AtomicU32,
}

impl<'a> SemCore<'a> {
    fn of(block: &'a Block) -> Self {
        SemCore { value: block.atomic_u32(0), waiters: block.atomic_u32(1) }
    }

    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> bool {
        let deadline = deadline_after(timeout);
        loop {
            let v = self.value.load(Ordering::Relaxed);
            if v > 0 {
                if self.value.compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return true;
                }
                continue;
            }
            if !blocking {
                return false;
            }
            let Ok(left) = remaining(deadline) else {
                return false;
            };
            // SeqCst pairs with `release`: either it sees us counted, or we see its increment.
            self.waiters.fetch_add(1, Ordering::SeqCst);
            sys::futex_wait(self.value, 0, left);
            self.waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn release(&self, n: u32, max: u32, object: &'static str) -> Result<()> {
        let mut v = self.value.load(Ordering::Relaxed);
        loop {
            let new = v.checked_add(n).filter(|&x| x <= max).ok_or(ShmError::ReleasedTooManyTimes { object, max })?;
            match self.value.compare_exchange_weak(v, new, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(cur) => v = cur,
            }
        }
        if self.waiters.load(Ordering::SeqCst) > 0 {
            sys::futex_wake(self.value, n);
        }
        Ok(())
    }
}

/// A process-shared counting semaphore (the spec's `Semaphore`).
///
/// ```
/// use procman_shm::{Arena, Semaphore};
///
/// let arena = Arena::create(4096)?;
/// let sem = Semaphore::new_in(&arena, 2)?;
/// assert!(sem.acquire(true, None)?);
/// assert!(sem.acquire(true, None)?);
/// assert!(!sem.acquire(false, None)?);
/// sem.release()?;
/// assert_eq!(sem.value(), 1);
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct Semaphore {
    block: Block,
}

impl Semaphore {
    const KIND: Kind = Kind::new(CLASS_SEMAPHORE, 0, 0);

    /// Allocates a semaphore with initial `value`.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let sem = procman_shm::Semaphore::new_in(&arena, 3)?;
    /// assert_eq!(sem.value(), 3);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena, value: u32) -> Result<Semaphore> {
        let block = Block::alloc(arena, Self::KIND, 1, 0)?;
        block.atomic_u32(0).store(value, Ordering::Release);
        Ok(Semaphore { block })
    }

    /// Decrements the counter, waiting while it is zero: `Ok(false)` if `blocking` is false and
    /// the counter is zero, or the `timeout` expired.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let sem = procman_shm::Semaphore::new_in(&arena, 0)?;
    /// assert!(!sem.acquire(true, Some(std::time::Duration::from_millis(5)))?);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        Ok(SemCore::of(&self.block).acquire(blocking, timeout))
    }

    /// Increments the counter, waking one waiter if any;
    /// [`ShmError::ReleasedTooManyTimes`] if it would overflow `u32`.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let sem = procman_shm::Semaphore::new_in(&arena, 0)?;
    /// sem.release()?;
    /// assert_eq!(sem.value(), 1);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<()> {
        SemCore::of(&self.block).release(1, u32::MAX, "Semaphore")
    }

    /// The current counter value.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert_eq!(procman_shm::Semaphore::new_in(&arena, 4)?.value(), 4);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn value(&self) -> u32 {
        self.block.atomic_u32(0).load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Semaphore(value={})", self.value())
    }
}

handle_impls!(Semaphore);

/// A semaphore that may not be released above its initial value (the spec's
/// `BoundedSemaphore`): such a release is [`ShmError::ReleasedTooManyTimes`].
///
/// ```
/// use procman_shm::{Arena, BoundedSemaphore, ShmError};
///
/// let arena = Arena::create(4096)?;
/// let sem = BoundedSemaphore::new_in(&arena, 1)?;
/// assert!(matches!(sem.release(), Err(ShmError::ReleasedTooManyTimes { max: 1, .. })));
/// assert!(sem.acquire(true, None)?);
/// sem.release()?;
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct BoundedSemaphore {
    block: Block,
}

impl BoundedSemaphore {
    const KIND: Kind = Kind::new(CLASS_BOUNDED_SEMAPHORE, 0, 0);

    /// Allocates a bounded semaphore whose initial `value` is also its maximum.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let sem = procman_shm::BoundedSemaphore::new_in(&arena, 2)?;
    /// assert_eq!(sem.max_value(), 2);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena, value: u32) -> Result<BoundedSemaphore> {
        let block = Block::alloc(arena, Self::KIND, 2, 0)?;
        block.atomic_u32(2).store(value, Ordering::Relaxed);
        block.atomic_u32(0).store(value, Ordering::Release);
        Ok(BoundedSemaphore { block })
    }

    /// As [`Semaphore::acquire`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let sem = procman_shm::BoundedSemaphore::new_in(&arena, 1)?;
    /// assert!(sem.acquire(false, None)?);
    /// assert!(!sem.acquire(false, None)?);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        Ok(SemCore::of(&self.block).acquire(blocking, timeout))
    }

    /// Increments the counter; [`ShmError::ReleasedTooManyTimes`] above the initial value.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let sem = procman_shm::BoundedSemaphore::new_in(&arena, 1)?;
    /// assert!(sem.release().is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<()> {
        SemCore::of(&self.block).release(1, self.max_value(), "BoundedSemaphore")
    }

    /// The current counter value.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert_eq!(procman_shm::BoundedSemaphore::new_in(&arena, 3)?.value(), 3);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn value(&self) -> u32 {
        self.block.atomic_u32(0).load(Ordering::Relaxed)
    }

    /// The bound (the initial value).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert_eq!(procman_shm::BoundedSemaphore::new_in(&arena, 3)?.max_value(), 3);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn max_value(&self) -> u32 {
        self.block.atomic_u32(2).load(Ordering::Relaxed)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BoundedSemaphore(value={}, max={})", self.value(), self.max_value())
    }
}

handle_impls!(BoundedSemaphore);

// ---------------------------------------------------------------------------------------------
// Condition

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

/// Releases a [`Condition`]'s lock once when dropped. Made by [`Condition::lock`].
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct ConditionGuard<'a> {
    lock: &'a ConditionLock,
    abandoned_by: Option<u32>,
}

impl ConditionGuard<'_> {
    /// True when the previous holder died holding the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// assert!(!cond.lock()?.was_abandoned());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn was_abandoned(&self) -> bool {
        self.abandoned_by.is_some()
    }

    /// The pid of the dead previous holder, if any.
    pub fn abandoned_by(&self) -> Option<u32> {
        self.abandoned_by
    }
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
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

    /// Acquires the condition's lock, waiting as long as needed; the guard releases it on drop.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let cond = procman_shm::Condition::new_in(&arena)?;
    /// let _guard = cond.lock()?;
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> Result<ConditionGuard<'_>> {
        match self.lock.acquire(true, None) {
            Ok(_) => Ok(ConditionGuard { lock: &self.lock, abandoned_by: None }),
            Err(ShmError::Abandoned { pid, .. }) => Ok(ConditionGuard { lock: &self.lock, abandoned_by: Some(pid) }),
            Err(e) => Err(e),
        }
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
        let notified = loop {
            let Ok(left) = remaining(deadline) else {
                break self.seq().load(Ordering::Relaxed) != seq;
            };
            match sys::futex_wait(self.seq(), seq, left) {
                Wake::Woken | Wake::Changed => break true,
                Wake::TimedOut | Wake::Interrupted => {}
            }
        };
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

// ---------------------------------------------------------------------------------------------
// Event

/// A process-shared event flag (the spec's `Event`).
///
/// ```
/// use procman_shm::{Arena, Event};
/// use std::time::Duration;
///
/// let arena = Arena::create(4096)?;
/// let ev = Event::new_in(&arena)?;
/// assert!(!ev.wait(Some(Duration::from_millis(5))));
/// ev.set();
/// assert!(ev.is_set() && ev.wait(None));
/// ev.clear();
/// assert!(!ev.is_set());
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct Event {
    block: Block,
}

impl Event {
    const KIND: Kind = Kind::new(CLASS_EVENT, 0, 0);

    /// Allocates a cleared event.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert!(!procman_shm::Event::new_in(&arena)?.is_set());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena) -> Result<Event> {
        Ok(Event { block: Block::alloc(arena, Self::KIND, 1, 0)? })
    }

    fn flag(&self) -> &AtomicU32 {
        self.block.atomic_u32(0)
    }

    fn waiters(&self) -> &AtomicU32 {
        self.block.atomic_u32(1)
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let ev = procman_shm::Event::new_in(&arena)?;
    /// ev.set();
    /// assert!(ev.is_set());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn set(&self) {
        self.flag().store(1, Ordering::SeqCst);
        if self.waiters().load(Ordering::SeqCst) > 0 {
            sys::futex_wake(self.flag(), u32::MAX);
        }
    }

    /// Clears the flag.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let ev = procman_shm::Event::new_in(&arena)?;
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn clear(&self) {
        self.flag().store(0, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert!(!procman_shm::Event::new_in(&arena)?.is_set());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag().load(Ordering::Acquire) != 0
    }

    /// Waits until the flag is set or `timeout` expires; returns the flag.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let ev = procman_shm::Event::new_in(&arena)?;
    /// assert!(!ev.wait(Some(std::time::Duration::ZERO)));
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = deadline_after(timeout);
        loop {
            if self.is_set() {
                return true;
            }
            let Ok(left) = remaining(deadline) else {
                return false;
            };
            self.waiters().fetch_add(1, Ordering::SeqCst);
            sys::futex_wait(self.flag(), 0, left);
            self.waiters().fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Event(set={})", self.is_set())
    }
}

handle_impls!(Event);

// ---------------------------------------------------------------------------------------------
// Barrier

const FILLING: u32 = 0;
const DRAINING: u32 = 1;
const RESETTING: u32 = 2;
const BROKEN: u32 = 3;

/// A process-shared barrier for a fixed number of parties (the spec's / Python's `Barrier`, with
/// the same state machine: filling, draining, resetting, broken).
///
/// ```
/// use procman_shm::{Arena, Barrier};
///
/// let arena = Arena::create(4096)?;
/// let barrier = Barrier::new_in(&arena, 2)?;
/// let b2 = barrier.clone();
/// let t = std::thread::spawn(move || b2.wait(None));
/// let mine = barrier.wait(None)?;
/// let theirs = t.join().unwrap()?;
/// assert_eq!(mine + theirs, 1); // arrival indices 0 and 1
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct Barrier {
    block: Block,
}

/// Barrier words (half-slots): futex sequence, state, arrived count, parties. All but `seq` are
/// only touched under the block's lock.
struct BarrierState<'a> {
    seq: &'a AtomicU32,
    state: &'a AtomicU32,
    count: &'a AtomicU32,
    parties: u32,
    lock: RawLock<'a>,
}

impl BarrierState<'_> {
    fn lock(&self) {
        // A dead party cannot leave the state half-updated (single stores), so abandonment is
        // harmless here.
        let _ = self.lock.lock(true, None);
    }

    fn unlock(&self) {
        let _ = self.lock.unlock();
    }

    fn notify_all(&self) {
        self.seq.fetch_add(1, Ordering::Release);
        sys::futex_wake(self.seq, u32::MAX);
    }

    /// With the lock held: releases it, sleeps until notified or `deadline`, re-locks.
    /// Returns false on timeout.
    fn wait(&self, deadline: Option<Instant>) -> bool {
        let seq = self.seq.load(Ordering::Relaxed);
        self.unlock();
        let result = loop {
            let Ok(left) = remaining(deadline) else {
                break false;
            };
            match sys::futex_wait(self.seq, seq, left) {
                Wake::Woken | Wake::Changed => break true,
                Wake::TimedOut | Wake::Interrupted => {}
            }
        };
        self.lock();
        result
    }

    fn get(&self, w: &AtomicU32) -> u32 {
        w.load(Ordering::Relaxed)
    }

    fn put(&self, w: &AtomicU32, v: u32) {
        w.store(v, Ordering::Relaxed);
    }

    fn break_barrier(&self) {
        self.put(self.state, BROKEN);
        self.notify_all();
    }

    /// Leaving `wait`: the last one out of a draining/resetting barrier re-opens it.
    fn exit(&self) {
        if self.get(self.count) == 0 {
            let s = self.get(self.state);
            if s == DRAINING || s == RESETTING {
                self.put(self.state, FILLING);
                self.notify_all();
            }
        }
    }
}

impl Barrier {
    const KIND: Kind = Kind::new(CLASS_BARRIER, 0, 0);

    /// Allocates a barrier for `parties` participants ([`ShmError::InvalidArgument`] if zero).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let b = procman_shm::Barrier::new_in(&arena, 3)?;
    /// assert_eq!(b.parties(), 3);
    /// assert!(procman_shm::Barrier::new_in(&arena, 0).is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena, parties: u32) -> Result<Barrier> {
        if parties == 0 {
            return Err(ShmError::InvalidArgument("a Barrier needs at least 1 party"));
        }
        let block = Block::alloc(arena, Self::KIND, 2, 0)?;
        block.atomic_u32(3).store(parties, Ordering::Release);
        Ok(Barrier { block })
    }

    fn state(&self) -> BarrierState<'_> {
        BarrierState {
            seq: self.block.atomic_u32(0),
            state: self.block.atomic_u32(1),
            count: self.block.atomic_u32(2),
            parties: self.block.atomic_u32(3).load(Ordering::Relaxed),
            lock: self.block.raw_lock(),
        }
    }

    /// Waits until `parties` threads (in any processes) have called `wait`, and returns this
    /// caller's arrival index (`0..parties`). [`ShmError::BrokenBarrier`] if the barrier is or
    /// becomes broken (aborted, reset while waiting), or if `timeout` expires — which breaks the
    /// barrier for everyone, as in Python.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let b = procman_shm::Barrier::new_in(&arena, 1)?;
    /// assert_eq!(b.wait(None)?, 0);
    /// let b = procman_shm::Barrier::new_in(&arena, 2)?;
    /// assert!(b.wait(Some(std::time::Duration::from_millis(5))).is_err());
    /// assert!(b.broken());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<usize> {
        self.wait_with_action(timeout, || {})
    }

    /// [`wait`](Self::wait), and if the caller is the last to arrive, runs `action` before any
    /// party is released (Python's `Barrier(parties, action)`, with the action given by each
    /// caller: every process passes the same one). A panicking action breaks the barrier: its
    /// caller gets the panic back as [`ShmError::BrokenBarrier`], the others too.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let b = procman_shm::Barrier::new_in(&arena, 1)?;
    /// let mut ran = false;
    /// assert_eq!(b.wait_with_action(None, || ran = true)?, 0);
    /// assert!(ran);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn wait_with_action(&self, timeout: Option<Duration>, action: impl FnOnce()) -> Result<usize> {
        let st = self.state();
        let deadline = deadline_after(timeout);
        st.lock();
        // Block while the previous cycle drains or resets.
        while matches!(st.get(st.state), DRAINING | RESETTING) {
            st.wait(None);
        }
        if st.get(st.state) == BROKEN {
            st.unlock();
            return Err(ShmError::BrokenBarrier);
        }
        let index = st.get(st.count);
        st.put(st.count, index + 1);
        let result = if index + 1 == st.parties {
            // The last to arrive runs the action before anyone is released.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(action)).is_ok() {
                st.put(st.state, DRAINING);
                st.notify_all();
                Ok(index as usize)
            } else {
                st.break_barrier();
                Err(ShmError::BrokenBarrier)
            }
        } else {
            let mut ok = true;
            while st.get(st.state) == FILLING {
                if !st.wait(deadline) && st.get(st.state) == FILLING {
                    ok = false;
                    break;
                }
            }
            if !ok {
                st.break_barrier();
                Err(ShmError::BrokenBarrier)
            } else if matches!(st.get(st.state), BROKEN | RESETTING) {
                Err(ShmError::BrokenBarrier)
            } else {
                Ok(index as usize)
            }
        };
        st.put(st.count, st.get(st.count) - 1);
        st.exit();
        st.unlock();
        result
    }

    /// Returns the barrier to its initial state; threads currently waiting get
    /// [`ShmError::BrokenBarrier`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let b = procman_shm::Barrier::new_in(&arena, 2)?;
    /// b.abort();
    /// b.reset();
    /// assert!(!b.broken());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn reset(&self) {
        let st = self.state();
        st.lock();
        if st.get(st.count) > 0 {
            let s = st.get(st.state);
            if s == FILLING || s == BROKEN {
                st.put(st.state, RESETTING);
            }
        } else {
            st.put(st.state, FILLING);
        }
        st.notify_all();
        st.unlock();
    }

    /// Breaks the barrier: current and future waiters get [`ShmError::BrokenBarrier`] until
    /// [`Self::reset`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let b = procman_shm::Barrier::new_in(&arena, 2)?;
    /// b.abort();
    /// assert!(b.broken());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn abort(&self) {
        let st = self.state();
        st.lock();
        st.break_barrier();
        st.unlock();
    }

    /// Number of parties needed to trip the barrier.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert_eq!(procman_shm::Barrier::new_in(&arena, 4)?.parties(), 4);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn parties(&self) -> usize {
        self.state().parties as usize
    }

    /// Number of parties currently waiting (0 unless filling).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert_eq!(procman_shm::Barrier::new_in(&arena, 4)?.n_waiting(), 0);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn n_waiting(&self) -> usize {
        let st = self.state();
        if st.get(st.state) == FILLING { st.get(st.count) as usize } else { 0 }
    }

    /// Whether the barrier is broken.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert!(!procman_shm::Barrier::new_in(&arena, 4)?.broken());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn broken(&self) -> bool {
        let st = self.state();
        st.get(st.state) == BROKEN
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Barrier(parties={}, n_waiting={}, broken={})", self.parties(), self.n_waiting(), self.broken())
    }
}

handle_impls!(Barrier);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn arena() -> Arena {
        Arena::create(1 << 16).unwrap()
    }

    const SHORT: Duration = Duration::from_millis(40);

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

    #[test]
    fn semaphores() {
        let a = arena();
        let s = Semaphore::new_in(&a, 1).unwrap();
        assert!(s.acquire(true, None).unwrap());
        let t = Instant::now();
        assert!(!s.acquire(true, Some(SHORT)).unwrap());
        assert!(t.elapsed() >= SHORT);
        let s2 = s.clone();
        let h = std::thread::spawn(move || s2.acquire(true, Some(Duration::from_secs(5))));
        std::thread::sleep(Duration::from_millis(20));
        s.release().unwrap();
        assert!(h.join().unwrap().unwrap());
        s.release().unwrap();
        s.release().unwrap();
        assert_eq!(s.value(), 2);

        let b = BoundedSemaphore::new_in(&a, 2).unwrap();
        assert!(matches!(b.release(), Err(ShmError::ReleasedTooManyTimes { object: "BoundedSemaphore", max: 2 })));
        assert!(b.acquire(true, None).unwrap());
        assert!(b.acquire(true, None).unwrap());
        assert!(!b.acquire(false, None).unwrap());
        b.release().unwrap();
        b.release().unwrap();
        assert!(b.release().is_err());
        assert_eq!(b.value(), 2);
    }

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
    fn event() {
        let a = arena();
        let ev = Event::new_in(&a).unwrap();
        let t = Instant::now();
        assert!(!ev.wait(Some(SHORT)));
        assert!(t.elapsed() >= SHORT);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let ev = ev.clone();
                std::thread::spawn(move || ev.wait(Some(Duration::from_secs(10))))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        ev.set();
        for w in waiters {
            assert!(w.join().unwrap());
        }
        assert!(ev.wait(None));
        ev.clear();
        assert!(!ev.is_set());
    }

    #[test]
    fn barrier_indices_broken_reset() {
        let a = arena();
        let b = Barrier::new_in(&a, 3).unwrap();
        for _round in 0..3 {
            let hs: Vec<_> = (0..3)
                .map(|_| {
                    let b = b.clone();
                    std::thread::spawn(move || b.wait(Some(Duration::from_secs(10))).unwrap())
                })
                .collect();
            let mut idx: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            idx.sort_unstable();
            assert_eq!(idx, vec![0, 1, 2]);
        }
        assert_eq!(b.n_waiting(), 0);
        // A timeout breaks the barrier for everyone.
        let b2 = b.clone();
        let h = std::thread::spawn(move || b2.wait(Some(Duration::from_secs(10))));
        while b.n_waiting() < 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(matches!(b.wait(Some(SHORT)), Err(ShmError::BrokenBarrier)));
        assert!(matches!(h.join().unwrap(), Err(ShmError::BrokenBarrier)));
        assert!(b.broken());
        assert!(matches!(b.wait(None), Err(ShmError::BrokenBarrier)));
        b.reset();
        assert!(!b.broken());
        // Reset while a party waits: it gets BrokenBarrier, the barrier is usable afterwards.
        let b3 = b.clone();
        let h = std::thread::spawn(move || b3.wait(Some(Duration::from_secs(10))));
        while b.n_waiting() < 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        b.reset();
        assert!(matches!(h.join().unwrap(), Err(ShmError::BrokenBarrier)));
        assert!(!b.broken());
        // abort
        let b4 = b.clone();
        let h = std::thread::spawn(move || b4.wait(None));
        while b.n_waiting() < 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        b.abort();
        assert!(matches!(h.join().unwrap(), Err(ShmError::BrokenBarrier)));
        assert_eq!(b.parties(), 3);
    }

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

    #[test]
    fn the_last_to_arrive_runs_the_action_before_anyone_leaves() {
        let a = arena();
        let b = Barrier::new_in(&a, 2).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let seen_before_release = Arc::new(AtomicUsize::new(usize::MAX));
        let (b2, r2, s2) = (b.clone(), runs.clone(), seen_before_release.clone());
        let t = std::thread::spawn(move || {
            b2.wait_with_action(None, || {
                r2.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
            s2.store(r2.load(Ordering::SeqCst), Ordering::SeqCst);
        });
        let r1 = runs.clone();
        b.wait_with_action(None, || {
            r1.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let after_mine = runs.load(Ordering::SeqCst);
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one action per trip");
        assert_eq!(after_mine, 1, "the action ran before this party was released");
        assert_eq!(seen_before_release.load(Ordering::SeqCst), 1);

        let b = Barrier::new_in(&a, 1).unwrap();
        assert!(matches!(b.wait_with_action(None, || panic!("action failed")), Err(ShmError::BrokenBarrier)));
        assert!(b.broken());
    }
}
