//! The futex lock every process-shared lock in the crate is built on.
//!
//! A [`RawLock`] is three words in shared memory:
//!
//! * `word: AtomicU32` — `0` when free, otherwise the holder's kernel thread id, with bit 31
//!   ([`WAITERS`]) set when some thread may be sleeping in `FUTEX_WAIT` on the word. This is the
//!   layout of Linux robust futexes; the tid names both the process and the thread, which is what
//!   re-entrancy (`RLock`) and abandonment detection need.
//! * `meta: AtomicU64` — `(holder tid << 32) | low 32 bits of the holder's start time`, written
//!   right after the holder's compare-exchange. It only guards against tid reuse: a waiter that
//!   finds the tid alive but with a different start time knows the original holder died.
//! * `pid: AtomicU32` — the holder's process id, written with `meta`, only for reporting.
//!
//! Contract (what callers rely on):
//! * `lock` returns `Acquired` or `Abandoned` only when the calling thread now holds the lock, and
//!   `Acquire` ordering makes everything written before the previous `unlock` visible.
//! * `unlock` is a `Release` swap; it issues `FUTEX_WAKE` only if the waiters bit was set, so an
//!   uncontended acquire/release pair is one compare-exchange, one relaxed store and one swap.
//! * Waiters sleep in slices of [`SLICE`]; whenever the same holder has been seen for a slice, they
//!   read `/proc/<tid>/stat`. A dead (or zombie) holder is replaced by a compare-exchange, so at
//!   most one waiter takes over, and it learns the holder died (`Abandoned`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sync::deadline::remaining;
use crate::sys::{self, ThreadState};

/// Bit 31 of the lock word: a thread may be asleep on the word; unlock must wake one.
pub(crate) const WAITERS: u32 = 1 << 31;
/// The holder tid part of the lock word.
pub(crate) const TID_MASK: u32 = !WAITERS;
/// How long a waiter sleeps before checking whether the holder is still alive.
pub(crate) const SLICE: Duration = Duration::from_millis(25);
/// Spins before sleeping: short critical sections (a queue put) are usually over by then.
const SPIN: u32 = 100;

/// Outcome of [`RawLock::lock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquire {
    /// The caller holds the lock.
    Acquired,
    /// The caller holds the lock, taken over from thread `tid` (of process `pid`) which died
    /// holding it.
    Abandoned {
        /// The dead holder's thread.
        tid: u32,
        /// Its process (as recorded by the holder; best effort).
        pid: u32,
    },
    /// Not acquired: non-blocking attempt failed or the deadline passed.
    TimedOut,
}

/// A futex lock over three words of shared memory (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawLock<'a> {
    word: &'a AtomicU32,
    pid: &'a AtomicU32,
    meta: &'a AtomicU64,
}

impl<'a> RawLock<'a> {
    /// Wraps the words. They must only ever be used through `RawLock`.
    #[inline]
    pub(crate) fn new(word: &'a AtomicU32, pid: &'a AtomicU32, meta: &'a AtomicU64) -> Self {
        Self { word, pid, meta }
    }

    /// Resets to unlocked (only for freshly allocated, unpublished memory).
    pub(crate) fn init(&self) {
        self.word.store(0, Ordering::Relaxed);
        self.pid.store(0, Ordering::Relaxed);
        self.meta.store(0, Ordering::Relaxed);
    }

    /// The holder's tid, or `None` if free.
    pub(crate) fn holder(&self) -> Option<u32> {
        match self.word.load(Ordering::Relaxed) & TID_MASK {
            0 => None,
            tid => Some(tid),
        }
    }

    /// Whether the calling thread holds the lock.
    pub(crate) fn is_held_by_current_thread(&self) -> bool {
        self.holder() == Some(sys::current_thread().tid)
    }

    #[inline]
    fn record_holder(&self, me: sys::ThreadIdentity) {
        self.pid.store(me.pid, Ordering::Relaxed);
        self.meta.store((u64::from(me.tid) << 32) | u64::from(me.start), Ordering::Relaxed);
    }

    /// One compare-exchange; true if the caller now holds the lock.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let me = sys::current_thread();
        if self.word.compare_exchange(0, me.tid, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.record_holder(me);
            true
        } else {
            false
        }
    }

    /// Acquires the lock; `deadline` bounds the wait (`None`: forever) and `blocking == false`
    /// makes it a single attempt.
    #[inline]
    pub(crate) fn lock(&self, blocking: bool, deadline: Option<Instant>) -> Acquire {
        if self.try_lock() {
            return Acquire::Acquired;
        }
        if !blocking {
            return Acquire::TimedOut;
        }
        self.lock_slow(deadline)
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> Acquire {
        let me = sys::current_thread();
        for _ in 0..SPIN {
            std::hint::spin_loop();
            if self.word.load(Ordering::Relaxed) == 0 && self.try_lock() {
                return Acquire::Acquired;
            }
        }
        // The holder we are currently waiting for and since when, for the liveness check.
        let mut watched: Option<(u32, Instant)> = None;
        loop {
            let v = self.word.load(Ordering::Relaxed);
            if v == 0 {
                // We may have been woken as a waiter and others may still sleep: keep the bit.
                if self.word.compare_exchange(0, me.tid | WAITERS, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    self.record_holder(me);
                    return Acquire::Acquired;
                }
                continue;
            }
            if v & WAITERS == 0
                && self.word.compare_exchange(v, v | WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_err()
            {
                continue;
            }
            let holder = v & TID_MASK;
            let now = Instant::now();
            match watched {
                Some((tid, since)) if tid == holder => {
                    if now.duration_since(since) >= SLICE {
                        if self.holder_is_dead(holder) {
                            if self
                                .word
                                .compare_exchange(v | WAITERS, me.tid | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                                .is_ok()
                            {
                                // The dead holder's writes are complete (the kernel tore its
                                // threads down); order our reads of the data after them.
                                std::sync::atomic::fence(Ordering::SeqCst);
                                let pid = self.pid.load(Ordering::Relaxed);
                                self.record_holder(me);
                                return Acquire::Abandoned { tid: holder, pid };
                            }
                            continue;
                        }
                        watched = Some((holder, now));
                    }
                }
                _ => watched = Some((holder, now)),
            }
            let Ok(left) = remaining(deadline) else {
                return Acquire::TimedOut;
            };
            let slice = left.map_or(SLICE, |left| left.min(SLICE));
            sys::futex_wait(self.word, v | WAITERS, Some(slice));
        }
    }

    /// Whether thread `tid`, seen holding the lock, has died (or its tid now names another thread).
    fn holder_is_dead(&self, tid: u32) -> bool {
        match sys::thread_state(tid) {
            ThreadState::Dead => true,
            ThreadState::Alive { start } => {
                let m = self.meta.load(Ordering::Relaxed);
                // Only trust the recorded start time if it belongs to this holder; right after the
                // holder's compare-exchange it may still be the previous holder's.
                (m >> 32) as u32 == tid && m as u32 != start
            }
        }
    }

    /// Releases the lock whoever holds it; `Err(())` if it was not held.
    #[inline]
    pub(crate) fn unlock(&self) -> Result<(), ()> {
        let v = self.word.swap(0, Ordering::Release);
        if v == 0 {
            return Err(());
        }
        if v & WAITERS != 0 {
            sys::futex_wake(self.word, 1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lock_unlock_and_timeout() {
        let w = AtomicU32::new(0);
        let m = AtomicU64::new(0);
        let p = AtomicU32::new(0);
        let l = RawLock::new(&w, &p, &m);
        assert_eq!(l.lock(true, None), Acquire::Acquired);
        assert!(l.is_held_by_current_thread());
        assert_eq!(l.lock(false, None), Acquire::TimedOut);
        let t = Instant::now();
        assert_eq!(l.lock(true, Some(Instant::now() + Duration::from_millis(30))), Acquire::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert_eq!(l.unlock(), Ok(()));
        assert_eq!(l.unlock(), Err(()));
    }

    #[test]
    fn dead_holder_is_taken_over() {
        let w = AtomicU32::new(0);
        let p = AtomicU32::new(0);
        let m = AtomicU64::new(0);
        // A thread that takes the lock and exits without releasing it.
        std::thread::scope(|s| {
            s.spawn(|| assert!(RawLock::new(&w, &p, &m).try_lock()));
        });
        let t = Instant::now();
        match RawLock::new(&w, &p, &m).lock(true, None) {
            Acquire::Abandoned { pid, .. } => assert_eq!(pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(RawLock::new(&w, &p, &m).is_held_by_current_thread());
    }

    #[test]
    fn mutual_exclusion_between_threads() {
        let words = Arc::new((AtomicU32::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU32::new(0)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let words = words.clone();
                std::thread::spawn(move || {
                    let l = RawLock::new(&words.0, &words.3, &words.1);
                    for _ in 0..5000 {
                        assert_ne!(l.lock(true, None), Acquire::TimedOut);
                        // Non-atomic-style read-modify-write, protected by the lock.
                        let v = words.2.load(Ordering::Relaxed);
                        words.2.store(v + 1, Ordering::Relaxed);
                        l.unlock().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(words.2.load(Ordering::Relaxed), 20_000);
    }
}
