//! [`Event`]: CPython's `threading.Event`, held by a manager.

use super::SyncManager;
use super::core::{Waiters, lock, wait_until};
use crate::error::Result;
use crate::inspect::ObjectState;
use crate::shared::Inspect;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A flag processes can wait for (CPython's `threading.Event`).
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let e = m.event()?;
/// assert!(!e.wait(Some(std::time::Duration::from_millis(1)))?);
/// e.set()?;
/// assert!(e.is_set()? && e.wait(None)?);
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(Debug, Default, crate::Shared)]
pub struct Event {
    core: EventCore,
}

#[crate::shared]
impl Event {
    /// True when the flag is set.
    pub fn is_set(&self) -> bool {
        self.core.is_set()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.core.set()
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.core.clear()
    }

    /// Waits until the flag is set, for at most `timeout`; returns the flag.
    ///
    /// Async, cancelled (its future dropped before it completes): the wait ends; nothing is
    /// left behind.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.core.wait(timeout)
    }
}

impl Inspect for Event {
    fn state(&self) -> ObjectState {
        ObjectState::Event { set: self.core.is_set(), waiting: self.core.waiters.parties() }
    }
}

#[crate::manager]
impl SyncManager {
    /// A new [`Event`] (Python's `manager.Event()`).
    #[manager(typeid = "Event")]
    pub fn event() -> Event {
        Event::default()
    }
}

/// A flag with waiters (CPython's `threading.Event`).
#[derive(Debug, Default)]
pub(crate) struct EventCore {
    flag: Mutex<bool>,
    cv: Condvar,
    waiters: Waiters,
}

impl EventCore {
    pub(crate) fn is_set(&self) -> bool {
        *lock(&self.flag)
    }

    pub(crate) fn set(&self) {
        *lock(&self.flag) = true;
        self.cv.notify_all();
    }

    pub(crate) fn clear(&self) {
        *lock(&self.flag) = false;
    }

    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let g = lock(&self.flag);
        Ok(wait_until(&self.cv, g, timeout.map(|t| Instant::now() + t), &self.waiters, |f| *f)?.1)
    }
}
