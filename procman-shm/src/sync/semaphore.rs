//! [`Semaphore`] and [`BoundedSemaphore`]: one [`CountingSemaphore`], without or with a bound.
//!
//! The block's atomic area holds the counter (half-slot 0, the futex word), the number of
//! sleeping waiters (1) and, for a bounded semaphore only, the bound (2).

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::deadline::{deadline_after, remaining};
use super::{CLASS_BOUNDED_SEMAPHORE, CLASS_SEMAPHORE};
use crate::arena::{Arena, Block, Kind};
use crate::error::{Result, ShmError};
use crate::handle::handle_impls;
use crate::sys;

mod private {
    /// What tells the two semaphores apart; kept out of the public API.
    pub trait BoundKind {
        /// The block class, so that a handle of one kind cannot be deserialized as the other.
        const CLASS: u8;
        /// The type's name in errors and `Debug`.
        const NAME: &'static str;
        /// Whether `release` is limited to the initial value.
        const BOUNDED: bool;
    }
}

/// Whether a [`CountingSemaphore`] may be released above its initial value: [`Unbounded`] (a
/// [`Semaphore`]) or [`Bounded`] (a [`BoundedSemaphore`]). Sealed.
pub trait Bound: private::BoundKind {}

/// The [`Bound`] of a [`Semaphore`]: the counter may grow up to `u32::MAX`.
#[derive(Debug)]
pub enum Unbounded {}

/// The [`Bound`] of a [`BoundedSemaphore`]: the counter may not exceed its initial value.
#[derive(Debug)]
pub enum Bounded {}

impl private::BoundKind for Unbounded {
    const CLASS: u8 = CLASS_SEMAPHORE;
    const NAME: &'static str = "Semaphore";
    const BOUNDED: bool = false;
}

impl private::BoundKind for Bounded {
    const CLASS: u8 = CLASS_BOUNDED_SEMAPHORE;
    const NAME: &'static str = "BoundedSemaphore";
    const BOUNDED: bool = true;
}

impl Bound for Unbounded {}
impl Bound for Bounded {}

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
pub type Semaphore = CountingSemaphore<Unbounded>;

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
/// assert_eq!(sem.max_value(), 1);
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub type BoundedSemaphore = CountingSemaphore<Bounded>;

/// The process-shared counting semaphore behind [`Semaphore`] and [`BoundedSemaphore`]; use it
/// by those names. `B` says whether `release` may raise the counter above its initial value.
pub struct CountingSemaphore<B: Bound> {
    block: Block,
    _bound: PhantomData<B>,
}

impl<B: Bound> CountingSemaphore<B> {
    const KIND: Kind = Kind::new(B::CLASS, 0, 0);

    fn from_block(block: Block) -> Self {
        CountingSemaphore { block, _bound: PhantomData }
    }

    /// Allocates a semaphore with initial `value`; for a [`BoundedSemaphore`] it is also the
    /// maximum.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let sem = procman_shm::Semaphore::new_in(&arena, 3)?;
    /// assert_eq!(sem.value(), 3);
    /// let bounded = procman_shm::BoundedSemaphore::new_in(&arena, 2)?;
    /// assert_eq!(bounded.max_value(), 2);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena, value: u32) -> Result<Self> {
        let block = Block::alloc(arena, Self::KIND, if B::BOUNDED { 2 } else { 1 }, 0)?;
        if B::BOUNDED {
            block.atomic_u32(2).store(value, Ordering::Relaxed);
        }
        block.atomic_u32(0).store(value, Ordering::Release);
        Ok(Self::from_block(block))
    }

    /// The counter, also the futex word.
    fn counter(&self) -> &AtomicU32 {
        self.block.atomic_u32(0)
    }

    /// Number of threads asleep in `acquire`.
    fn waiters(&self) -> &AtomicU32 {
        self.block.atomic_u32(1)
    }

    /// The largest value `release` may reach.
    fn max(&self) -> u32 {
        if B::BOUNDED { self.block.atomic_u32(2).load(Ordering::Relaxed) } else { u32::MAX }
    }

    /// Decrements the counter, waiting while it is zero: `Ok(false)` if `blocking` is false and
    /// the counter is zero, or the `timeout` expired.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let sem = procman_shm::Semaphore::new_in(&arena, 0)?;
    /// assert!(!sem.acquire(true, Some(std::time::Duration::from_millis(5)))?);
    /// let sem = procman_shm::BoundedSemaphore::new_in(&arena, 1)?;
    /// assert!(sem.acquire(false, None)?);
    /// assert!(!sem.acquire(false, None)?);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline_after(timeout);
        let (value, waiters) = (self.counter(), self.waiters());
        loop {
            let v = value.load(Ordering::Relaxed);
            if v > 0 {
                if value.compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return Ok(true);
                }
                continue;
            }
            if !blocking {
                return Ok(false);
            }
            let Ok(left) = remaining(deadline) else {
                return Ok(false);
            };
            // SeqCst pairs with `release`: either it sees us counted, or we see its increment.
            waiters.fetch_add(1, Ordering::SeqCst);
            sys::futex_wait(value, 0, left);
            waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Increments the counter, waking one waiter if any; [`ShmError::ReleasedTooManyTimes`] if it
    /// would overflow `u32` or, for a [`BoundedSemaphore`], exceed the initial value.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let sem = procman_shm::Semaphore::new_in(&arena, 0)?;
    /// sem.release()?;
    /// assert_eq!(sem.value(), 1);
    /// let bounded = procman_shm::BoundedSemaphore::new_in(&arena, 1)?;
    /// assert!(bounded.release().is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<()> {
        let max = self.max();
        let value = self.counter();
        let mut v = value.load(Ordering::Relaxed);
        loop {
            let new = v
                .checked_add(1)
                .filter(|&x| x <= max)
                .ok_or(ShmError::ReleasedTooManyTimes { object: B::NAME, max })?;
            match value.compare_exchange_weak(v, new, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(cur) => v = cur,
            }
        }
        if self.waiters().load(Ordering::SeqCst) > 0 {
            sys::futex_wake(value, 1);
        }
        Ok(())
    }

    /// The current counter value.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert_eq!(procman_shm::Semaphore::new_in(&arena, 4)?.value(), 4);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn value(&self) -> u32 {
        self.counter().load(Ordering::Relaxed)
    }
}

impl CountingSemaphore<Bounded> {
    /// The bound (the initial value).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert_eq!(procman_shm::BoundedSemaphore::new_in(&arena, 3)?.max_value(), 3);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn max_value(&self) -> u32 {
        self.max()
    }
}

impl<B: Bound> fmt::Debug for CountingSemaphore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(value={}", B::NAME, self.value())?;
        if B::BOUNDED {
            write!(f, ", max={}", self.max())?;
        }
        f.write_str(")")
    }
}

handle_impls!(CountingSemaphore<B: Bound>, what: B::NAME, new: "Semaphore::new_in(&arena, 1)");

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::sync::testing::{SHORT, arena};

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
}
