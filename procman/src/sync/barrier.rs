//! [`Barrier`]: CPython's `threading.Barrier`, held by a manager.

use super::SyncManager;
use super::core::{Waiters, lock, wait_until};
use crate::child::CodeRef;
use crate::error::{Error, Result};
use crate::inspect::ObjectState;
use crate::shared::Inspect;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A barrier for a fixed number of parties (CPython's `threading.Barrier`).
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let b = m.barrier(1, None)?;
/// assert_eq!(b.wait(None)?, 0); // one party: passes at once
/// assert_eq!(b.parties()?, 1);
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(Debug, crate::Shared)]
pub struct Barrier {
    core: BarrierCore,
}

impl Barrier {
    /// A barrier for `parties` waiters; `timeout` is the default for `wait`. Fails when
    /// `parties` is 0.
    pub fn new(parties: usize, timeout: Option<Duration>) -> Result<Self> {
        Ok(Barrier { core: BarrierCore::new(parties, timeout, None)? })
    }

    /// A barrier whose last arriving party runs `action` (in the manager) before the parties
    /// are released; a panicking action breaks the barrier.
    pub fn with_action(parties: usize, timeout: Option<Duration>, action: fn()) -> Result<Self> {
        Ok(Barrier { core: BarrierCore::new(parties, timeout, Some(action))? })
    }
}

#[crate::shared]
impl Barrier {
    /// Waits until all parties have arrived; returns this caller's arrival index (0 to
    /// parties - 1). Fails with [`Error::BrokenBarrier`] when the barrier is or becomes broken
    /// (aborted, reset while waiting, or a wait timed out).
    ///
    /// Async, cancelled (its future dropped before it completes): as a wait whose caller died,
    /// the barrier is broken for the other parties, as a timeout breaks it.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<usize> {
        self.core.wait(timeout)
    }

    /// Breaks the barrier: current and future waits fail until `reset`.
    pub fn abort(&self) {
        self.core.abort()
    }

    /// Returns the barrier to its initial state; current waiters get `BrokenBarrier`.
    pub fn reset(&self) {
        self.core.reset()
    }

    /// The number of parties.
    pub fn parties(&self) -> usize {
        self.core.parties()
    }

    /// How many parties are waiting.
    pub fn n_waiting(&self) -> usize {
        self.core.n_waiting()
    }

    /// True when the barrier is broken.
    pub fn broken(&self) -> bool {
        self.core.broken()
    }
}

impl Inspect for Barrier {
    fn state(&self) -> ObjectState {
        let core = &self.core;
        ObjectState::Barrier { parties: core.parties, broken: core.broken(), waiting: core.waiters.parties() }
    }
}

#[crate::manager]
impl SyncManager {
    /// A new [`Barrier`] for `parties`; `timeout` is the default for its waits (Python's
    /// `manager.Barrier(parties, timeout=timeout)`).
    pub fn barrier(&self, parties: usize, timeout: Option<Duration>) -> Result<BarrierProxy> {
        self.barrier_over(parties, timeout, None)
    }

    /// A new [`Barrier`] whose last arriving party runs `action` in the manager process before
    /// the parties are released (Python's `manager.Barrier(parties, action)`). `action` must be
    /// registered with [`procman::action!`](crate::action), and the manager must run this
    /// executable (one started with `start()`); otherwise [`Error::Usage`].
    pub fn barrier_with_action(&self, parties: usize, action: fn(), timeout: Option<Duration>) -> Result<BarrierProxy> {
        self.barrier_over(parties, timeout, Some(CodeRef::of(action)?))
    }

    #[manager(typeid = "Barrier")]
    pub(crate) fn barrier_over(parties: usize, timeout: Option<Duration>, action: Option<CodeRef>) -> Result<Barrier> {
        match action {
            Some(action) => Barrier::with_action(parties, timeout, action.resolve()?),
            None => Barrier::new(parties, timeout),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BarrierState {
    Filling,
    Draining,
    Resetting,
    Broken,
}

#[derive(Debug)]
struct BarrierInner {
    state: BarrierState,
    count: usize,
}

/// A barrier for a fixed number of parties (CPython's `threading.Barrier`).
#[derive(Debug)]
pub(crate) struct BarrierCore {
    parties: usize,
    timeout: Option<Duration>,
    action: Option<fn()>,
    inner: Mutex<BarrierInner>,
    cv: Condvar,
    waiters: Waiters,
}

impl BarrierCore {
    pub(crate) fn new(parties: usize, timeout: Option<Duration>, action: Option<fn()>) -> Result<Self> {
        if parties < 1 {
            return Err(Error::usage("parties must be 1 or more"));
        }
        Ok(BarrierCore {
            parties,
            timeout,
            action,
            inner: Mutex::new(BarrierInner { state: BarrierState::Filling, count: 0 }),
            cv: Condvar::new(),
            waiters: Waiters::default(),
        })
    }

    pub(crate) fn parties(&self) -> usize {
        self.parties
    }

    pub(crate) fn n_waiting(&self) -> usize {
        let g = lock(&self.inner);
        if g.state == BarrierState::Filling { g.count } else { 0 }
    }

    pub(crate) fn broken(&self) -> bool {
        lock(&self.inner).state == BarrierState::Broken
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Result<usize> {
        let timeout = timeout.or(self.timeout);
        let g = lock(&self.inner);
        // Wait while the barrier drains or resets.
        let (mut g, _) = wait_until(&self.cv, g, None, &self.waiters, |s| {
            !matches!(s.state, BarrierState::Draining | BarrierState::Resetting)
        })?;
        if g.state == BarrierState::Broken {
            return Err(Error::BrokenBarrier);
        }
        let index = g.count;
        g.count += 1;
        let result = if index + 1 == self.parties {
            // The last to arrive runs the action before anyone is released; if it panics the
            // barrier breaks, as in CPython.
            let acted = match self.action {
                Some(action) => std::panic::catch_unwind(action).map_err(|p| crate::error::panic_message(&*p)),
                None => Ok(()),
            };
            match acted {
                Ok(()) => {
                    g.state = BarrierState::Draining;
                    self.cv.notify_all();
                    Ok(index)
                }
                Err(message) => {
                    g.state = BarrierState::Broken;
                    self.cv.notify_all();
                    Err(Error::Remote { typeid: "Barrier".into(), method: "action".into(), message })
                }
            }
        } else {
            let waited = wait_until(&self.cv, g, timeout.map(|t| Instant::now() + t), &self.waiters, |s| {
                s.state != BarrierState::Filling
            });
            let (g2, ok) = match waited {
                Ok(w) => w,
                Err(e) => {
                    // The caller is gone: it leaves the barrier broken, as a timeout would.
                    let mut g = lock(&self.inner);
                    g.count -= 1;
                    g.state = BarrierState::Broken;
                    self.cv.notify_all();
                    return Err(e);
                }
            };
            g = g2;
            if !ok {
                g.state = BarrierState::Broken;
                self.cv.notify_all();
                Err(Error::BrokenBarrier)
            } else if matches!(g.state, BarrierState::Broken | BarrierState::Resetting) {
                Err(Error::BrokenBarrier)
            } else {
                Ok(index)
            }
        };
        g.count -= 1;
        if g.count == 0 && matches!(g.state, BarrierState::Resetting | BarrierState::Draining) {
            g.state = BarrierState::Filling;
            self.cv.notify_all();
        }
        result
    }

    pub(crate) fn reset(&self) {
        let mut g = lock(&self.inner);
        if g.count > 0 {
            if matches!(g.state, BarrierState::Filling | BarrierState::Broken) {
                g.state = BarrierState::Resetting;
            }
        } else {
            g.state = BarrierState::Filling;
        }
        self.cv.notify_all();
    }

    pub(crate) fn abort(&self) {
        lock(&self.inner).state = BarrierState::Broken;
        self.cv.notify_all();
    }
}
