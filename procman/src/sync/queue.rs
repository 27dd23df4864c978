//! [`Queue`]: CPython's `queue.Queue` (joinable, as `JoinableQueue`), held by a manager.

use super::SyncManager;
use super::core::{Waiters, lock, wait_until};
use crate::Wire;
use crate::encoded::{Blob, Encoded};
use crate::error::{Error, Result};
use crate::inspect::ObjectState;
use crate::shared::Inspect;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A FIFO queue held by a manager (CPython's `queue.Queue`, also its joinable use). Items are
/// encoded by clients; `T` is the type clients use.
///
/// Every blocking method blocks only the calling thread; a caller whose process dies while it
/// waits in `get` takes no item.
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let q = m.queue::<String>(2)?;
/// q.put("a".to_string())?;
/// q.put("b".to_string())?;
/// assert!(matches!(q.put_nowait("c".to_string()), Err(procman::Error::Full)));
/// assert_eq!(q.get()?, "a");
/// assert_eq!(q.qsize()?, 1);
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(crate::Shared)]
pub struct Queue<T> {
    core: QueueCore,
    _items: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Queue(maxsize={}, qsize={})", self.core.maxsize(), self.core.qsize())
    }
}

impl<T> Queue<T> {
    /// A queue holding at most `maxsize` items; 0 means no limit.
    pub fn new(maxsize: usize) -> Self {
        Queue { core: QueueCore::new(maxsize), _items: PhantomData }
    }
}

#[crate::shared]
impl<T: 'static> Queue<T> {
    /// Puts an item: waits for room when `block` (at most `timeout`), else fails at once with
    /// [`Error::Full`] (a timeout is then ignored, as in CPython); a wait that times out fails
    /// with `Error::Full` too.
    ///
    /// Async, cancelled (its future dropped before it completes): the item is put, or not put
    /// at all; never twice.
    #[shared(rename = "put")]
    pub fn put_with(&self, item: Encoded<T>, block: bool, timeout: Option<Duration>) -> Result<()> {
        self.core.put(item.into_blob(), block, timeout)
    }

    /// Takes the oldest item: waits when `block` (at most `timeout`), else fails at once with
    /// [`Error::Empty`] (a timeout is then ignored, as in CPython); a wait that times out fails
    /// with `Error::Empty` too.
    ///
    /// Async, cancelled (its future dropped before it completes): no item is lost; the wait
    /// ends without taking one, or the item it took is put back at the front
    /// ([`put_back`](QueueProxy::put_back)).
    #[shared(rename = "get", undo = put_back)]
    pub fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<Encoded<T>> {
        self.core.get(block, timeout).map(Encoded::from_blob)
    }

    /// Puts an item back at the front, where the next `get` takes it; it counts as not yet
    /// taken (no `task_done` is owed for it twice). An async `get` whose future was dropped
    /// after it had taken an item runs this on the item, so a dropped `get` loses nothing.
    pub fn put_back(&self, item: Encoded<T>) -> Result<()> {
        self.core.put_back(item.into_blob());
        Ok(())
    }

    /// The number of items.
    pub fn qsize(&self) -> usize {
        self.core.qsize()
    }

    /// The bound given at creation (0: none).
    pub fn maxsize(&self) -> usize {
        self.core.maxsize()
    }

    /// Marks one item taken with `get` as processed; [`Error::TaskDoneTooManyTimes`] when
    /// called more often than items were put.
    pub fn task_done(&self) -> Result<()> {
        self.core.task_done()
    }

    #[shared(rename = "join")]
    pub(crate) fn join_until(&self, timeout: Option<Duration>) -> Result<bool> {
        self.core.join(timeout)
    }

    /// Puts an item, waiting for room in a bounded queue.
    #[shared(client)]
    pub fn put(&self, item: T) -> Result<()>
    where
        T: Wire,
    {
        self.put_with(item, true, None)
    }

    /// Puts an item without waiting: [`Error::Full`] when there is no room.
    #[shared(client)]
    pub fn put_nowait(&self, item: T) -> Result<()>
    where
        T: Wire,
    {
        self.put_with(item, false, None)
    }

    /// Takes the oldest item, waiting for one.
    #[shared(client)]
    pub fn get(&self) -> Result<T>
    where
        T: Wire,
    {
        self.get_with(true, None)
    }

    /// Takes the oldest item without waiting: [`Error::Empty`] when there is none.
    #[shared(client)]
    pub fn get_nowait(&self) -> Result<T>
    where
        T: Wire,
    {
        self.get_with(false, None)
    }

    /// True when the queue holds no item.
    #[shared(client)]
    pub fn empty(&self) -> Result<bool> {
        Ok(self.qsize()? == 0)
    }

    /// True when a bounded queue holds `maxsize` items.
    #[shared(client)]
    pub fn full(&self) -> Result<bool> {
        let max = self.maxsize()?;
        Ok(max > 0 && self.qsize()? >= max)
    }

    /// Waits until every item put has been marked done with `task_done`.
    ///
    /// Async, cancelled (its future dropped before it completes): the wait ends; nothing is
    /// left behind.
    #[shared(client)]
    pub fn join(&self) -> Result<()> {
        self.join_until(None).map(drop)
    }

    /// Like `join`, for at most `timeout`; returns false on timeout.
    #[shared(client)]
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        self.join_until(Some(timeout))
    }
}

#[crate::manager]
impl SyncManager {
    /// A new [`Queue`] of at most `maxsize` items (0: no limit); it is joinable (Python's
    /// `manager.Queue(maxsize)` and `manager.JoinableQueue(maxsize)`).
    #[manager(typeid = "Queue")]
    pub fn queue<T>(maxsize: usize) -> Queue<T> {
        Queue::new(maxsize)
    }
}

impl<T> Inspect for Queue<T> {
    fn state(&self) -> ObjectState {
        self.core.state()
    }
}

/// The deadline of a queue call: as CPython's `queue.Queue`, a non-blocking call ignores its
/// timeout and fails at once.
fn queue_deadline(block: bool, timeout: Option<Duration>) -> Option<Instant> {
    if block { timeout.map(|t| Instant::now() + t) } else { Some(Instant::now()) }
}

#[derive(Debug)]
struct QueueInner {
    items: VecDeque<Blob>,
    unfinished: usize,
}

/// A FIFO queue of encoded items (CPython's `queue.Queue`, joinable).
#[derive(Debug)]
pub(crate) struct QueueCore {
    maxsize: usize,
    inner: Mutex<QueueInner>,
    not_empty: Condvar,
    not_full: Condvar,
    all_done: Condvar,
    getting: Waiters,
    putting: Waiters,
    joining: Waiters,
}

impl QueueCore {
    pub(crate) fn new(maxsize: usize) -> Self {
        QueueCore {
            maxsize,
            inner: Mutex::new(QueueInner { items: VecDeque::new(), unfinished: 0 }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            all_done: Condvar::new(),
            getting: Waiters::default(),
            putting: Waiters::default(),
            joining: Waiters::default(),
        }
    }

    pub(crate) fn put(&self, item: Blob, block: bool, timeout: Option<Duration>) -> Result<()> {
        let g = lock(&self.inner);
        let max = self.maxsize;
        let (mut g, ok) = if max == 0 {
            (g, true)
        } else {
            wait_until(&self.not_full, g, queue_deadline(block, timeout), &self.putting, |s| s.items.len() < max)?
        };
        if !ok {
            return Err(Error::Full);
        }
        g.items.push_back(item);
        g.unfinished += 1;
        // Under the lock: a getter takes its place in `getting` under it before it sleeps.
        let wake = self.getting.anyone();
        drop(g);
        if wake {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    pub(crate) fn get(&self, block: bool, timeout: Option<Duration>) -> Result<Blob> {
        let g = lock(&self.inner);
        let (mut g, ok) =
            wait_until(&self.not_empty, g, queue_deadline(block, timeout), &self.getting, |s| !s.items.is_empty())?;
        if !ok {
            return Err(Error::Empty);
        }
        let item = g.items.pop_front().expect("checked non-empty");
        let wake = self.putting.anyone();
        drop(g);
        if wake {
            self.not_full.notify_one();
        }
        Ok(item)
    }

    /// Returns a taken item to the front, past any bound: it was in the queue a moment ago.
    pub(crate) fn put_back(&self, item: Blob) {
        let mut g = lock(&self.inner);
        g.items.push_front(item);
        let wake = self.getting.anyone();
        drop(g);
        if wake {
            self.not_empty.notify_one();
        }
    }

    pub(crate) fn qsize(&self) -> usize {
        lock(&self.inner).items.len()
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.maxsize
    }

    pub(crate) fn task_done(&self) -> Result<()> {
        let mut g = lock(&self.inner);
        if g.unfinished == 0 {
            return Err(Error::TaskDoneTooManyTimes);
        }
        g.unfinished -= 1;
        if g.unfinished == 0 {
            self.all_done.notify_all();
        }
        Ok(())
    }

    pub(crate) fn join(&self, timeout: Option<Duration>) -> Result<bool> {
        let g = lock(&self.inner);
        Ok(wait_until(&self.all_done, g, timeout.map(|t| Instant::now() + t), &self.joining, |s| s.unfinished == 0)?.1)
    }

    pub(crate) fn state(&self) -> ObjectState {
        let g = lock(&self.inner);
        let (len, unfinished) = (g.items.len(), g.unfinished);
        drop(g);
        ObjectState::Queue {
            len,
            maxsize: self.maxsize,
            unfinished,
            getting: self.getting.parties(),
            putting: self.putting.parties(),
            joining: self.joining.parties(),
        }
    }
}
