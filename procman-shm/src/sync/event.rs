//! [`Event`]: a process-shared flag that threads can wait for.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::CLASS_EVENT;
use super::deadline::{deadline_after, remaining};
use crate::arena::{Arena, Block, Kind};
use crate::error::Result;
use crate::handle::handle_impls;
use crate::sys;

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

    fn from_block(block: Block) -> Event {
        Event { block }
    }

    /// Allocates a cleared event.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert!(!procman_shm::Event::new_in(&arena)?.is_set());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena) -> Result<Event> {
        Ok(Event::from_block(Block::alloc(arena, Self::KIND, 1, 0)?))
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

handle_impls!(Event, what: "Event", new: "Event::new_in(&arena)");

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::sync::testing::{SHORT, arena};

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
}
