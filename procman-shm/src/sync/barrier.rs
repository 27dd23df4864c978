//! [`Barrier`]: a process-shared barrier for a fixed number of parties, with Python's state
//! machine.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::CLASS_BARRIER;
use super::deadline::{deadline_after, futex_wait_until};
use crate::arena::{Arena, Block, Kind};
use crate::error::{Result, ShmError};
use crate::handle::handle_impls;
use crate::lock_core::RawLock;
use crate::sys;

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
        let result = futex_wait_until(self.seq, seq, deadline);
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

    fn from_block(block: Block) -> Barrier {
        Barrier { block }
    }

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
        Ok(Barrier::from_block(block))
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

handle_impls!(Barrier, what: "Barrier", new: "Barrier::new_in(&arena, 2)");

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::sync::testing::{SHORT, arena};

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
