//! The built-in shared types of [`SyncManager`]: locks, semaphores, conditions, events,
//! barriers, queues, namespaces, dicts, lists, values and arrays, with CPython's semantics.
//!
//! Each type is written with procman's own macros: the server side is an ordinary
//! `#[derive(Shared)]` type whose `#[shared]` methods work on encoded values, and its proxy adds
//! the typed methods users call. Values are encoded by the client and stored as bytes, so a
//! manager can hold a `Queue<T>` or a `Dict<K, V>` of any `T` its clients use — even a remote
//! manager compiled without `T`.
//!
//! Get them from a [`SyncManager`], or from your own manager declared with `#[manager(sync)]`,
//! through the [`SyncTypes`] trait:
//!
//! ```rust,no_run
//! use procman::sync::{SyncManager, SyncTypes};
//!
//! fn main() -> procman::Result<()> {
//!     procman::init();
//!     let m = SyncManager::new().start()?;
//!     let q = m.queue::<String>(0)?;
//!     q.put("hello".to_string())?;
//!     assert_eq!(q.get()?, "hello");
//!     let d = m.dict::<String, i64>()?;
//!     d.insert("x".into(), 1)?;
//!     assert_eq!(d.get(&"x".into())?, Some(1));
//!     Ok(())
//! }
//! ```
//!
//! Locks differ from CPython in one way: when the connection of a client thread that holds a
//! `Lock` or `RLock` closes (the thread or its process ended, SIGKILL included), the lock is
//! released and the next acquirer gets [`Error::Abandoned`] — while holding the lock — instead
//! of waiting forever. A blocked call whose client goes away stops waiting, so a queue item is
//! never handed to a dead client.

mod blob;
mod prims;

use crate::error::{Error, Result};
use crate::proxy::BaseProxy;
use crate::shared::{Caller, Proxy};
use blob::{Blob, decode_all, encode_all};
use prims::{Acquirer, BarrierCore, ConditionCore, EventCore, LockCore, QueueCore, RLockCore, SemaphoreCore};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A type parameter for objects created by a manager that does not know the client's types:
/// their values are encoded by clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opaque {}

// ---------------------------------------------------------------------------------------------
// Lock

/// A lock held by a manager (CPython's `threading.Lock`): any client may release it.
#[derive(Debug, Default, crate::Shared)]
pub struct Lock {
    core: Arc<LockCore>,
}

#[crate::shared]
impl Lock {
    pub(crate) fn acquire_raw(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        self.core.acquire(blocking, timeout)
    }

    pub(crate) fn release_raw(&self) -> Result<()> {
        self.core.release()
    }

    pub(crate) fn locked_raw(&self) -> bool {
        self.core.locked()
    }

    #[shared(on_disconnect)]
    fn disconnected(&self, caller: Caller) {
        self.core.connection_closed(caller);
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A manager object with a `release`: what a [`LockGuard`] releases.
pub trait Release: sealed::Sealed {
    /// Releases the object once.
    fn release_once(&self) -> Result<()>;
}

/// Releases a manager lock (or semaphore, or condition) when dropped. Made by `guard()`.
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard<'a, L: Release> {
    lock: &'a L,
    abandoned: bool,
}

impl<L: Release> LockGuard<'_, L> {
    /// True when the previous holder died holding the lock (see [`Error::Abandoned`]): the
    /// state it protects may be half-updated.
    pub fn was_abandoned(&self) -> bool {
        self.abandoned
    }
}

impl<L: Release> Drop for LockGuard<'_, L> {
    fn drop(&mut self) {
        let _ = self.lock.release_once();
    }
}

macro_rules! acquirer_methods {
    ($proxy:ident, $what:literal) => {
        impl sealed::Sealed for $proxy {}

        impl Release for $proxy {
            fn release_once(&self) -> Result<()> {
                self.release_raw()
            }
        }

        impl $proxy {
            #[doc = concat!("Acquires the ", $what, ": waits while it is taken (not at all when `blocking` is")]
            /// false; at most `timeout` when one is given). Returns whether it was acquired.
            ///
            /// Fails with [`Error::Abandoned`] when the previous holder of a lock died holding
            /// it: the caller then holds the lock. A timeout with `blocking == false` is an error.
            pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
                self.acquire_raw(blocking, timeout)
            }

            #[doc = concat!("Releases the ", $what, ".")]
            ///
            /// Fails with [`Error::Usage`] when it is not held (by the caller, for a re-entrant
            /// lock) or, for a bounded semaphore, released more often than acquired.
            pub fn release(&self) -> Result<()> {
                self.release_raw()
            }

            #[doc = concat!("Acquires the ", $what, ", waiting as long as needed, and returns a guard that")]
            /// releases it when dropped. A lock abandoned by a dead holder is acquired too: see
            /// [`LockGuard::was_abandoned`].
            pub fn guard(&self) -> Result<LockGuard<'_, Self>> {
                let abandoned = match self.acquire_raw(true, None) {
                    Ok(_) => false,
                    Err(Error::Abandoned) => true,
                    Err(e) => return Err(e),
                };
                Ok(LockGuard { lock: self, abandoned })
            }
        }
    };
}

acquirer_methods!(LockProxy, "lock");

impl LockProxy {
    /// True while some client holds the lock.
    pub fn locked(&self) -> Result<bool> {
        self.locked_raw()
    }
}

// ---------------------------------------------------------------------------------------------
// RLock

/// A re-entrant lock held by a manager (CPython's `threading.RLock`), owned by the client thread
/// that acquired it.
#[derive(Debug, Default, crate::Shared)]
pub struct RLock {
    core: Arc<RLockCore>,
}

#[crate::shared]
impl RLock {
    pub(crate) fn acquire_raw(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        self.core.acquire(blocking, timeout)
    }

    pub(crate) fn release_raw(&self) -> Result<()> {
        self.core.release()
    }

    pub(crate) fn owned_raw(&self) -> (bool, usize) {
        self.core.describe()
    }

    #[shared(on_disconnect)]
    fn disconnected(&self, caller: Caller) {
        self.core.connection_closed(caller);
    }
}

acquirer_methods!(RLockProxy, "lock");

impl RLockProxy {
    /// Whether some client thread holds the lock, and how many times.
    pub fn state(&self) -> Result<(bool, usize)> {
        self.owned_raw()
    }
}

// ---------------------------------------------------------------------------------------------
// Semaphores

/// A semaphore type: the plain one and the bounded one differ only in the bound.
macro_rules! semaphore {
    ($(#[$doc:meta])* $name:ident, $proxy:ident, bounded: $bounded:expr) => {
        $(#[$doc])*
        #[derive(Debug, crate::Shared)]
        pub struct $name {
            core: SemaphoreCore,
        }

        impl $name {
            #[doc = concat!("A ", stringify!($name), " with `value` permits.")]
            pub fn new(value: usize) -> Self {
                $name { core: SemaphoreCore::new(value, $bounded) }
            }
        }

        #[crate::shared]
        impl $name {
            pub(crate) fn acquire_raw(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
                self.core.acquire(blocking, timeout)
            }

            pub(crate) fn release_raw(&self) -> Result<()> {
                self.core.release(1)
            }

            pub(crate) fn value_raw(&self) -> usize {
                self.core.value()
            }
        }

        acquirer_methods!($proxy, "semaphore");

        impl $proxy {
            /// The number of free permits.
            pub fn value(&self) -> Result<usize> {
                self.value_raw()
            }
        }
    };
}

semaphore!(
    /// A counting semaphore held by a manager (CPython's `threading.Semaphore`).
    Semaphore,
    SemaphoreProxy,
    bounded: false
);

semaphore!(
    /// A semaphore that refuses to be released above its initial value (CPython's
    /// `threading.BoundedSemaphore`).
    BoundedSemaphore,
    BoundedSemaphoreProxy,
    bounded: true
);

// ---------------------------------------------------------------------------------------------
// Condition

/// A condition variable held by a manager (CPython's `threading.Condition`), over its own
/// re-entrant lock or over a manager `Lock` / `RLock` of the same manager.
#[derive(crate::Shared)]
pub struct Condition {
    core: ConditionCore,
    // Keeps the lock object alive for as long as the condition uses it.
    _lock: Option<BaseProxy>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl Condition {
    /// A condition over a new re-entrant lock of its own.
    pub fn new() -> Self {
        Condition { core: ConditionCore::new(Arc::new(RLockCore::default())), _lock: None }
    }

    /// A condition over the lock `proxy` refers to, which must be a `Lock` or an `RLock` of
    /// the manager running this code (call it inside a creator).
    pub fn with_lock(proxy: BaseProxy) -> Result<Self> {
        let lock: Arc<dyn Acquirer> = if let Some(l) = crate::server::local_referent::<Lock>(&proxy) {
            l.read().core.clone()
        } else if let Some(l) = crate::server::local_referent::<RLock>(&proxy) {
            l.read().core.clone()
        } else {
            return Err(Error::usage(format_args!(
                "a condition's lock must be a Lock or an RLock of the same manager, not {}",
                proxy.token()
            )));
        };
        Ok(Condition { core: ConditionCore::new(lock), _lock: Some(proxy) })
    }
}

impl Default for Condition {
    fn default() -> Self {
        Self::new()
    }
}

#[crate::shared]
impl Condition {
    pub(crate) fn acquire_raw(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        self.core.lock().acquire(blocking, timeout)
    }

    pub(crate) fn release_raw(&self) -> Result<()> {
        self.core.lock().release()
    }

    pub(crate) fn wait_raw(&self, timeout: Option<Duration>) -> Result<bool> {
        self.core.wait(timeout)
    }

    pub(crate) fn notify_raw(&self, n: usize) -> Result<()> {
        self.core.notify(n)
    }

    pub(crate) fn notify_all_raw(&self) -> Result<()> {
        self.core.notify_all()
    }

    #[shared(on_disconnect)]
    fn disconnected(&self, caller: Caller) {
        self.core.lock().connection_closed(caller);
    }
}

acquirer_methods!(ConditionProxy, "condition's lock");

impl ConditionProxy {
    /// Releases the lock, waits until notified (or `timeout` passes), then re-acquires it.
    /// Returns false on timeout. The caller must hold the lock.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.wait_raw(timeout)
    }

    /// Waits until `predicate()` is true, evaluating it in the caller's process after each
    /// wake-up, for at most `timeout`. Returns the last value of the predicate.
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool> {
        let end = timeout.map(|t| Instant::now() + t);
        let mut result = predicate();
        while !result {
            let wait = match end {
                Some(end) => {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    Some(end - now)
                }
                None => None,
            };
            self.wait_raw(wait)?;
            result = predicate();
        }
        Ok(result)
    }

    /// Wakes up to `n` waiters. The caller must hold the lock.
    pub fn notify(&self, n: usize) -> Result<()> {
        self.notify_raw(n)
    }

    /// Wakes every waiter. The caller must hold the lock.
    pub fn notify_all(&self) -> Result<()> {
        self.notify_all_raw()
    }
}

// ---------------------------------------------------------------------------------------------
// Event

/// A flag processes can wait for (CPython's `threading.Event`).
#[derive(Debug, Default, crate::Shared)]
pub struct Event {
    core: EventCore,
}

#[crate::shared]
impl Event {
    pub(crate) fn is_set_raw(&self) -> bool {
        self.core.is_set()
    }

    pub(crate) fn set_raw(&self) {
        self.core.set()
    }

    pub(crate) fn clear_raw(&self) {
        self.core.clear()
    }

    pub(crate) fn wait_raw(&self, timeout: Option<Duration>) -> Result<bool> {
        self.core.wait(timeout)
    }
}

impl EventProxy {
    /// True when the flag is set.
    pub fn is_set(&self) -> Result<bool> {
        self.is_set_raw()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) -> Result<()> {
        self.set_raw()
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<()> {
        self.clear_raw()
    }

    /// Waits until the flag is set, for at most `timeout`; returns the flag.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.wait_raw(timeout)
    }
}

// ---------------------------------------------------------------------------------------------
// Barrier

/// A barrier for a fixed number of parties (CPython's `threading.Barrier`).
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
    pub(crate) fn wait_raw(&self, timeout: Option<Duration>) -> Result<usize> {
        self.core.wait(timeout)
    }

    pub(crate) fn abort_raw(&self) {
        self.core.abort()
    }

    pub(crate) fn reset_raw(&self) {
        self.core.reset()
    }

    pub(crate) fn parties_raw(&self) -> usize {
        self.core.parties()
    }

    pub(crate) fn n_waiting_raw(&self) -> usize {
        self.core.n_waiting()
    }

    pub(crate) fn broken_raw(&self) -> bool {
        self.core.broken()
    }
}

impl BarrierProxy {
    /// Waits until all parties have arrived; returns this caller's arrival index (0 to
    /// parties - 1). Fails with [`Error::BrokenBarrier`] when the barrier is or becomes broken
    /// (aborted, reset while waiting, or a wait timed out).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<usize> {
        self.wait_raw(timeout)
    }

    /// Breaks the barrier: current and future waits fail until `reset`.
    pub fn abort(&self) -> Result<()> {
        self.abort_raw()
    }

    /// Returns the barrier to its initial state; current waiters get `BrokenBarrier`.
    pub fn reset(&self) -> Result<()> {
        self.reset_raw()
    }

    /// The number of parties.
    pub fn parties(&self) -> Result<usize> {
        self.parties_raw()
    }

    /// How many parties are waiting.
    pub fn n_waiting(&self) -> Result<usize> {
        self.n_waiting_raw()
    }

    /// True when the barrier is broken.
    pub fn broken(&self) -> Result<bool> {
        self.broken_raw()
    }
}

// ---------------------------------------------------------------------------------------------
// Queue

/// A FIFO queue held by a manager (CPython's `queue.Queue`, also its joinable use). Items are
/// encoded by clients; `T` is the type clients use.
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
    pub(crate) fn put_raw(&self, item: Blob, block: bool, timeout: Option<Duration>) -> Result<()> {
        self.core.put(item, block, timeout)
    }

    pub(crate) fn get_raw(&self, block: bool, timeout: Option<Duration>) -> Result<Blob> {
        self.core.get(block, timeout)
    }

    pub(crate) fn qsize_raw(&self) -> usize {
        self.core.qsize()
    }

    pub(crate) fn maxsize_raw(&self) -> usize {
        self.core.maxsize()
    }

    pub(crate) fn task_done_raw(&self) -> Result<()> {
        self.core.task_done()
    }

    pub(crate) fn join_raw(&self, timeout: Option<Duration>) -> Result<bool> {
        self.core.join(timeout)
    }
}

impl<T: Serialize + DeserializeOwned + 'static> QueueProxy<T> {
    /// Puts an item, waiting for room in a bounded queue.
    pub fn put(&self, item: T) -> Result<()> {
        self.put_raw(Blob::encode(&item)?, true, None)
    }

    /// Puts an item: waits for room when `block` (at most `timeout`), else fails at once with
    /// [`Error::Full`]; a wait that times out fails with `Error::Full` too.
    pub fn put_with(&self, item: T, block: bool, timeout: Option<Duration>) -> Result<()> {
        self.put_raw(Blob::encode(&item)?, block, timeout)
    }

    /// Puts an item without waiting: [`Error::Full`] when there is no room.
    pub fn put_nowait(&self, item: T) -> Result<()> {
        self.put_raw(Blob::encode(&item)?, false, None)
    }

    /// Takes the oldest item, waiting for one.
    pub fn get(&self) -> Result<T> {
        self.get_raw(true, None)?.decode()
    }

    /// Takes the oldest item: waits when `block` (at most `timeout`), else fails at once with
    /// [`Error::Empty`]; a wait that times out fails with `Error::Empty` too.
    pub fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<T> {
        self.get_raw(block, timeout)?.decode()
    }

    /// Takes the oldest item without waiting: [`Error::Empty`] when there is none.
    pub fn get_nowait(&self) -> Result<T> {
        self.get_raw(false, None)?.decode()
    }

    /// The number of items.
    pub fn qsize(&self) -> Result<usize> {
        self.qsize_raw()
    }

    /// True when the queue holds no item.
    pub fn empty(&self) -> Result<bool> {
        Ok(self.qsize_raw()? == 0)
    }

    /// True when a bounded queue holds `maxsize` items.
    pub fn full(&self) -> Result<bool> {
        let max = self.maxsize_raw()?;
        Ok(max > 0 && self.qsize_raw()? >= max)
    }

    /// The bound given at creation (0: none).
    pub fn maxsize(&self) -> Result<usize> {
        self.maxsize_raw()
    }

    /// Marks one item taken with `get` as processed. [`Error::Usage`] when called more often
    /// than items were put.
    pub fn task_done(&self) -> Result<()> {
        self.task_done_raw()
    }

    /// Waits until every item put has been marked done with `task_done`.
    pub fn join(&self) -> Result<()> {
        self.join_raw(None).map(drop)
    }

    /// Like `join`, for at most `timeout`; returns false on timeout.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        self.join_raw(Some(timeout))
    }
}

// ---------------------------------------------------------------------------------------------
// Namespace

/// Named attributes any process can set, get and delete (the specification's `Namespace`).
/// Its `repr()` reads `Namespace(x=10, y="hello")`, sorted by name.
#[derive(Default, crate::Shared)]
pub struct Namespace {
    attributes: BTreeMap<String, (Blob, String)>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Namespace(")?;
        for (i, (name, (_, repr))) in self.attributes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={repr}")?;
        }
        f.write_str(")")
    }
}

fn no_attribute(name: &str) -> Error {
    Error::NotFound { what: format!("namespace attribute `{name}`") }
}

#[crate::shared]
impl Namespace {
    pub(crate) fn get_raw(&self, name: String) -> Result<Blob> {
        self.attributes.get(&name).map(|(b, _)| b.clone()).ok_or_else(|| no_attribute(&name))
    }

    pub(crate) fn set_raw(&mut self, name: String, value: Blob, repr: String) {
        self.attributes.insert(name, (value, repr));
    }

    pub(crate) fn delete_raw(&mut self, name: String) -> Result<()> {
        self.attributes.remove(&name).map(drop).ok_or_else(|| no_attribute(&name))
    }

    pub(crate) fn names_raw(&self) -> Vec<String> {
        self.attributes.keys().cloned().collect()
    }
}

impl NamespaceProxy {
    /// The value of attribute `name`. Fails with [`Error::NotFound`] when there is none, and
    /// [`Error::Decode`] when it holds another type.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        self.get_raw(name.to_owned())?.decode()
    }

    /// Sets attribute `name`.
    pub fn set<T: Serialize + fmt::Debug>(&self, name: &str, value: &T) -> Result<()> {
        self.set_raw(name.to_owned(), Blob::encode(value)?, format!("{value:?}"))
    }

    /// Deletes attribute `name`; [`Error::NotFound`] when there is none.
    pub fn delete(&self, name: &str) -> Result<()> {
        self.delete_raw(name.to_owned())
    }

    /// The attribute names, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        self.names_raw()
    }
}

// ---------------------------------------------------------------------------------------------
// Dict

/// A dictionary held by a manager (CPython's `dict` proxy), in insertion order.
///
/// Keys are compared by their encoding, which is equality for the usual key types (integers,
/// strings, tuples and structs of them); floats and maps make poor keys, as in Python.
#[derive(crate::Shared)]
pub struct Dict<K, V> {
    map: indexmap::IndexMap<Blob, Blob>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Default for Dict<K, V> {
    fn default() -> Self {
        Dict { map: Default::default(), _types: PhantomData }
    }
}

impl<K, V> fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dict(len={})", self.map.len())
    }
}

fn no_key() -> Error {
    Error::NotFound { what: "key".into() }
}

#[crate::shared]
impl<K: 'static, V: 'static> Dict<K, V> {
    pub(crate) fn get_raw(&self, key: Blob) -> Option<Blob> {
        self.map.get(&key).cloned()
    }

    pub(crate) fn insert_raw(&mut self, key: Blob, value: Blob) -> Option<Blob> {
        self.map.insert(key, value)
    }

    pub(crate) fn remove_raw(&mut self, key: Blob) -> Option<Blob> {
        self.map.shift_remove(&key)
    }

    pub(crate) fn contains_raw(&self, key: Blob) -> bool {
        self.map.contains_key(&key)
    }

    pub(crate) fn len_raw(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn keys_raw(&self) -> Vec<Blob> {
        self.map.keys().cloned().collect()
    }

    pub(crate) fn values_raw(&self) -> Vec<Blob> {
        self.map.values().cloned().collect()
    }

    pub(crate) fn items_raw(&self) -> Vec<(Blob, Blob)> {
        self.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(crate) fn popitem_raw(&mut self) -> Result<(Blob, Blob)> {
        self.map.pop().ok_or_else(|| Error::NotFound { what: "item in an empty dict".into() })
    }

    pub(crate) fn setdefault_raw(&mut self, key: Blob, default: Blob) -> Blob {
        self.map.entry(key).or_insert(default).clone()
    }

    pub(crate) fn update_raw(&mut self, items: Vec<(Blob, Blob)>) {
        self.map.extend(items);
    }

    pub(crate) fn clear_raw(&mut self) {
        self.map.clear();
    }
}

fn decode_opt<T: DeserializeOwned>(b: Option<Blob>) -> Result<Option<T>> {
    b.map(|b| b.decode()).transpose()
}

impl<K, V> DictProxy<K, V>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    /// The value of `key`, if any (Python's `d.get(key)`).
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        decode_opt(self.get_raw(Blob::encode(key)?)?)
    }

    /// The value of `key`; [`Error::NotFound`] when absent (Python's `d[key]`).
    pub fn get_item(&self, key: &K) -> Result<V> {
        self.get(key)?.ok_or_else(no_key)
    }

    /// Sets `key` to `value`; returns the previous value (Python's `d[key] = value`).
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        decode_opt(self.insert_raw(Blob::encode(&key)?, Blob::encode(&value)?)?)
    }

    /// Removes `key`; returns its value, if it was there.
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        decode_opt(self.remove_raw(Blob::encode(key)?)?)
    }

    /// Removes `key` and returns its value; [`Error::NotFound`] when absent (Python's `pop`).
    pub fn pop(&self, key: &K) -> Result<V> {
        self.remove(key)?.ok_or_else(no_key)
    }

    /// Removes `key`; [`Error::NotFound`] when absent (Python's `del d[key]`).
    pub fn del_item(&self, key: &K) -> Result<()> {
        self.pop(key).map(drop)
    }

    /// True when `key` is present (Python's `key in d`).
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        self.contains_raw(Blob::encode(key)?)
    }

    /// The number of items.
    pub fn len(&self) -> Result<usize> {
        self.len_raw()
    }

    /// True when there is no item.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len_raw()? == 0)
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> Result<Vec<K>> {
        decode_all(self.keys_raw()?)
    }

    /// The values, in insertion order.
    pub fn values(&self) -> Result<Vec<V>> {
        decode_all(self.values_raw()?)
    }

    /// The items, in insertion order.
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        self.items_raw()?.into_iter().map(|(k, v)| Ok((k.decode()?, v.decode()?))).collect()
    }

    /// Iterates over a snapshot of the items, taken in one call.
    pub fn iter(&self) -> Result<std::vec::IntoIter<(K, V)>> {
        Ok(self.items()?.into_iter())
    }

    /// Removes and returns the last item inserted; [`Error::NotFound`] when empty.
    pub fn popitem(&self) -> Result<(K, V)> {
        let (k, v) = self.popitem_raw()?;
        Ok((k.decode()?, v.decode()?))
    }

    /// The value of `key`, inserting `default` first when absent.
    pub fn setdefault(&self, key: K, default: V) -> Result<V> {
        self.setdefault_raw(Blob::encode(&key)?, Blob::encode(&default)?)?.decode()
    }

    /// Inserts every item, in one call.
    pub fn update<'a>(&self, items: impl IntoIterator<Item = (&'a K, &'a V)>) -> Result<()>
    where
        K: 'a,
        V: 'a,
    {
        let items = items.into_iter().map(|(k, v)| Ok((Blob::encode(k)?, Blob::encode(v)?))).collect::<Result<_>>()?;
        self.update_raw(items)
    }

    /// Removes every item.
    pub fn clear(&self) -> Result<()> {
        self.clear_raw()
    }

    /// A copy of the items (Python's `d.copy()`), in insertion order.
    pub fn copy(&self) -> Result<Vec<(K, V)>> {
        self.items()
    }
}

// ---------------------------------------------------------------------------------------------
// List and Array

/// A list held by a manager (CPython's `list` proxy). Indices may be negative, counting from
/// the end, as in Python. Equality (`count`, `index`, `remove`) compares encodings.
#[derive(crate::Shared)]
pub struct List<T> {
    items: Vec<Blob>,
    version: u64,
    _items: PhantomData<fn() -> T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List { items: Vec::new(), version: 0, _items: PhantomData }
    }
}

impl<T> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "List(len={})", self.items.len())
    }
}

/// Python's index rule: negative counts from the end; outside is `IndexOutOfRange`.
fn resolve(index: i64, len: usize) -> Result<usize> {
    let i = if index < 0 { index + len as i64 } else { index };
    if i < 0 || i as usize >= len { Err(Error::IndexOutOfRange { index, len }) } else { Ok(i as usize) }
}

/// Python's slice rule: bounds clamp to the sequence.
fn clamp(index: Option<i64>, len: usize, default: usize) -> usize {
    match index {
        None => default,
        Some(i) if i < 0 => (i + len as i64).max(0) as usize,
        Some(i) => (i as usize).min(len),
    }
}

/// `items[index]` with Python's index rule.
fn item(items: &mut [Blob], index: i64) -> Result<&mut Blob> {
    let i = resolve(index, items.len())?;
    Ok(&mut items[i])
}

/// The positions `items[start:end]` covers, as Python computes them.
fn span(start: Option<i64>, end: Option<i64>, len: usize) -> std::ops::Range<usize> {
    let s = clamp(start, len, 0);
    s..clamp(end, len, len).max(s)
}

#[crate::shared]
impl<T: 'static> List<T> {
    pub(crate) fn len_raw(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn get_raw(&self, index: i64) -> Result<Blob> {
        Ok(self.items[resolve(index, self.items.len())?].clone())
    }

    pub(crate) fn set_raw(&mut self, index: i64, value: Blob) -> Result<()> {
        *item(&mut self.items, index)? = value;
        self.version += 1;
        Ok(())
    }

    pub(crate) fn slice_raw(&self, start: Option<i64>, end: Option<i64>) -> Vec<Blob> {
        self.items[span(start, end, self.items.len())].to_vec()
    }

    pub(crate) fn set_slice_raw(&mut self, start: Option<i64>, end: Option<i64>, values: Vec<Blob>) {
        self.items.splice(span(start, end, self.items.len()), values);
        self.version += 1;
    }

    pub(crate) fn delete_raw(&mut self, index: i64) -> Result<()> {
        let i = resolve(index, self.items.len())?;
        self.items.remove(i);
        self.version += 1;
        Ok(())
    }

    pub(crate) fn append_raw(&mut self, value: Blob) {
        self.items.push(value);
        self.version += 1;
    }

    pub(crate) fn extend_raw(&mut self, values: Vec<Blob>) {
        self.items.extend(values);
        self.version += 1;
    }

    pub(crate) fn insert_raw(&mut self, index: i64, value: Blob) {
        let i = clamp(Some(index), self.items.len(), 0);
        self.items.insert(i, value);
        self.version += 1;
    }

    pub(crate) fn pop_raw(&mut self, index: Option<i64>) -> Result<Blob> {
        if self.items.is_empty() {
            return Err(Error::IndexOutOfRange { index: index.unwrap_or(-1), len: 0 });
        }
        let i = resolve(index.unwrap_or(-1), self.items.len())?;
        self.version += 1;
        Ok(self.items.remove(i))
    }

    pub(crate) fn remove_raw(&mut self, value: Blob) -> Result<()> {
        let i =
            self.items.iter().position(|v| *v == value).ok_or_else(|| Error::NotFound { what: "list item".into() })?;
        self.items.remove(i);
        self.version += 1;
        Ok(())
    }

    pub(crate) fn count_raw(&self, value: Blob) -> usize {
        self.items.iter().filter(|v| **v == value).count()
    }

    pub(crate) fn index_raw(&self, value: Blob) -> Result<usize> {
        self.items.iter().position(|v| *v == value).ok_or_else(|| Error::NotFound { what: "list item".into() })
    }

    pub(crate) fn reverse_raw(&mut self) {
        self.items.reverse();
        self.version += 1;
    }

    pub(crate) fn clear_raw(&mut self) {
        self.items.clear();
        self.version += 1;
    }

    pub(crate) fn snapshot_raw(&self) -> (u64, Vec<Blob>) {
        (self.version, self.items.clone())
    }

    pub(crate) fn replace_if_raw(&mut self, version: u64, values: Vec<Blob>) -> bool {
        if self.version != version {
            return false;
        }
        self.items = values;
        self.version += 1;
        true
    }
}

/// The methods a list and an array share.
macro_rules! sequence_methods {
    ($proxy:ident) => {
        impl<T: Serialize + DeserializeOwned + 'static> $proxy<T> {
            /// The number of items.
            pub fn len(&self) -> Result<usize> {
                self.len_raw()
            }

            /// True when there is no item.
            pub fn is_empty(&self) -> Result<bool> {
                Ok(self.len_raw()? == 0)
            }

            /// The item at `index` (negative: from the end); [`Error::IndexOutOfRange`] outside.
            pub fn get(&self, index: i64) -> Result<T> {
                self.get_raw(index)?.decode()
            }

            /// Replaces the item at `index`; [`Error::IndexOutOfRange`] outside.
            pub fn set(&self, index: i64, value: T) -> Result<()> {
                self.set_raw(index, Blob::encode(&value)?)
            }

            /// The items from `start` to `end` (Python's `s[start:end]`; `None` for an open end).
            pub fn slice(&self, start: Option<i64>, end: Option<i64>) -> Result<Vec<T>> {
                decode_all(self.slice_raw(start, end)?)
            }
        }
    };
}

sequence_methods!(ListProxy);
sequence_methods!(ArrayProxy);

impl<T: Serialize + DeserializeOwned + 'static> ListProxy<T> {
    /// Replaces the items from `start` to `end` with `values` (Python's `l[start:end] = values`).
    pub fn set_slice(&self, start: Option<i64>, end: Option<i64>, values: &[T]) -> Result<()> {
        self.set_slice_raw(start, end, encode_all(values)?)
    }

    /// Removes the item at `index` (Python's `del l[index]`).
    pub fn delete(&self, index: i64) -> Result<()> {
        self.delete_raw(index)
    }

    /// Appends an item.
    pub fn append(&self, value: T) -> Result<()> {
        self.append_raw(Blob::encode(&value)?)
    }

    /// Appends every item, in one call.
    pub fn extend<'a>(&self, values: impl IntoIterator<Item = &'a T>) -> Result<()>
    where
        T: 'a,
    {
        self.extend_raw(encode_all(values)?)
    }

    /// Inserts before `index` (clamped to the list, as in Python).
    pub fn insert(&self, index: i64, value: T) -> Result<()> {
        self.insert_raw(index, Blob::encode(&value)?)
    }

    /// Removes and returns the last item; [`Error::IndexOutOfRange`] when empty.
    pub fn pop(&self) -> Result<T> {
        self.pop_raw(None)?.decode()
    }

    /// Removes and returns the item at `index`.
    pub fn pop_at(&self, index: i64) -> Result<T> {
        self.pop_raw(Some(index))?.decode()
    }

    /// Removes the first item equal to `value`; [`Error::NotFound`] when there is none.
    pub fn remove(&self, value: &T) -> Result<()> {
        self.remove_raw(Blob::encode(value)?)
    }

    /// How many items equal `value`.
    pub fn count(&self, value: &T) -> Result<usize> {
        self.count_raw(Blob::encode(value)?)
    }

    /// The index of the first item equal to `value`; [`Error::NotFound`] when there is none.
    pub fn index(&self, value: &T) -> Result<usize> {
        self.index_raw(Blob::encode(value)?)
    }

    /// Reverses the list in place.
    pub fn reverse(&self) -> Result<()> {
        self.reverse_raw()
    }

    /// Removes every item.
    pub fn clear(&self) -> Result<()> {
        self.clear_raw()
    }

    /// Sorts the list in place. The items are compared in the caller's process; the sorted
    /// list replaces the old one only if nobody changed it meanwhile (else it starts again).
    pub fn sort(&self) -> Result<()>
    where
        T: Ord,
    {
        self.sort_by(Ord::cmp)
    }

    /// Sorts the list in place by a key computed in the caller's process (see [`sort`](Self::sort)).
    pub fn sort_by_key<Key: Ord>(&self, mut key: impl FnMut(&T) -> Key) -> Result<()> {
        self.sort_by(|a, b| key(a).cmp(&key(b)))
    }

    /// Sorts the list in place with a comparison run in the caller's process (see
    /// [`sort`](Self::sort)).
    pub fn sort_by(&self, mut compare: impl FnMut(&T, &T) -> std::cmp::Ordering) -> Result<()> {
        loop {
            let (version, blobs) = self.snapshot_raw()?;
            let mut items: Vec<(T, Blob)> = blobs.into_iter().map(|b| Ok((b.decode()?, b))).collect::<Result<_>>()?;
            items.sort_by(|a, b| compare(&a.0, &b.0));
            if self.replace_if_raw(version, items.into_iter().map(|(_, b)| b).collect())? {
                return Ok(());
            }
        }
    }

    /// A copy of every item.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        decode_all(self.snapshot_raw()?.1)
    }

    /// Iterates over a snapshot of the items, taken in one call.
    pub fn iter(&self) -> Result<std::vec::IntoIter<T>> {
        Ok(self.to_vec()?.into_iter())
    }
}

/// A fixed-length array held by a manager (the specification's `SharedArray` in a
/// `SyncManager`). Indices may be negative, as in Python.
#[derive(crate::Shared)]
pub struct Array<T> {
    items: Vec<Blob>,
    _items: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Array(len={})", self.items.len())
    }
}

impl<T: Serialize> Array<T> {
    /// An array of these items.
    pub fn new(items: &[T]) -> Result<Self> {
        Ok(Array { items: encode_all(items)?, _items: PhantomData })
    }
}

#[crate::shared]
impl<T: 'static> Array<T> {
    pub(crate) fn len_raw(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn get_raw(&self, index: i64) -> Result<Blob> {
        Ok(self.items[resolve(index, self.items.len())?].clone())
    }

    pub(crate) fn set_raw(&mut self, index: i64, value: Blob) -> Result<()> {
        *item(&mut self.items, index)? = value;
        Ok(())
    }

    pub(crate) fn slice_raw(&self, start: Option<i64>, end: Option<i64>) -> Vec<Blob> {
        self.items[span(start, end, self.items.len())].to_vec()
    }

    pub(crate) fn set_slice_raw(&mut self, start: Option<i64>, end: Option<i64>, values: Vec<Blob>) -> Result<()> {
        let range = span(start, end, self.items.len());
        if values.len() != range.len() {
            return Err(Error::usage(format_args!(
                "an array's length is fixed: cannot assign {} items to a slice of {}",
                values.len(),
                range.len()
            )));
        }
        self.items.splice(range, values);
        Ok(())
    }

    pub(crate) fn all_raw(&self) -> Vec<Blob> {
        self.items.clone()
    }
}

impl<T: Serialize + DeserializeOwned + 'static> ArrayProxy<T> {
    /// Replaces the items from `start` to `end` with as many `values` (the specification's
    /// `arr[:5] = [1, 2, 3, 4, 5]`); [`Error::Usage`] when the lengths differ.
    pub fn set_slice(&self, start: Option<i64>, end: Option<i64>, values: &[T]) -> Result<()> {
        self.set_slice_raw(start, end, encode_all(values)?)
    }

    /// A copy of every item.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        decode_all(self.all_raw()?)
    }
}

// ---------------------------------------------------------------------------------------------
// Value

/// One value held by a manager (CPython's `Value` proxy; the specification's `SharedValue` and
/// `SharedStruct` in a `SyncManager`).
#[derive(crate::Shared)]
pub struct Value<T> {
    value: Blob,
    _value: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({:?})", self.value)
    }
}

impl<T: Serialize> Value<T> {
    /// A value holding `value`.
    pub fn new(value: &T) -> Result<Self> {
        Ok(Value { value: Blob::encode(value)?, _value: PhantomData })
    }
}

#[crate::shared]
impl<T: 'static> Value<T> {
    pub(crate) fn get_raw(&self) -> Blob {
        self.value.clone()
    }

    pub(crate) fn set_raw(&mut self, value: Blob) {
        self.value = value;
    }
}

impl<T: Serialize + DeserializeOwned + 'static> ValueProxy<T> {
    /// The value.
    pub fn get(&self) -> Result<T> {
        self.get_raw()?.decode()
    }

    /// Replaces the value.
    pub fn set(&self, value: T) -> Result<()> {
        self.set_raw(Blob::encode(&value)?)
    }
}

// ---------------------------------------------------------------------------------------------
// SyncManager

/// The manager of the built-in types (Python's `SyncManager`, what `processing.Manager()`
/// returns). Its creators are reached through [`SyncTypes`].
///
/// A manager of your own serves the same types when declared with `#[manager(sync)]`, the way a
/// Python manager subclasses `SyncManager`.
#[crate::manager]
pub struct SyncManager;

#[crate::manager]
impl SyncManager {
    #[manager(typeid = "Lock")]
    pub(crate) fn create_lock() -> Lock {
        Lock::default()
    }

    #[manager(typeid = "RLock")]
    pub(crate) fn create_rlock() -> RLock {
        RLock::default()
    }

    #[manager(typeid = "Semaphore")]
    pub(crate) fn create_semaphore(value: usize) -> Semaphore {
        Semaphore::new(value)
    }

    #[manager(typeid = "BoundedSemaphore")]
    pub(crate) fn create_bounded_semaphore(value: usize) -> BoundedSemaphore {
        BoundedSemaphore::new(value)
    }

    #[manager(typeid = "Condition")]
    pub(crate) fn create_condition(lock: Option<BaseProxy>) -> Result<Condition> {
        match lock {
            Some(l) => Condition::with_lock(l),
            None => Ok(Condition::new()),
        }
    }

    #[manager(typeid = "Event")]
    pub(crate) fn create_event() -> Event {
        Event::default()
    }

    #[manager(typeid = "Barrier")]
    pub(crate) fn create_barrier(
        parties: usize,
        timeout: Option<Duration>,
        action: Option<crate::child::CodeRef>,
    ) -> Result<Barrier> {
        match action {
            Some(action) => Barrier::with_action(parties, timeout, action.resolve()?),
            None => Barrier::new(parties, timeout),
        }
    }

    #[manager(typeid = "Queue")]
    pub(crate) fn create_queue(maxsize: usize) -> Queue<Opaque> {
        Queue::new(maxsize)
    }

    #[manager(typeid = "Namespace")]
    pub(crate) fn create_namespace() -> Namespace {
        Namespace::default()
    }

    #[manager(typeid = "dict")]
    pub(crate) fn create_dict(items: Vec<(Blob, Blob)>) -> Dict<Opaque, Opaque> {
        Dict { map: items.into_iter().collect(), _types: PhantomData }
    }

    #[manager(typeid = "list")]
    pub(crate) fn create_list(items: Vec<Blob>) -> List<Opaque> {
        List { items, version: 0, _items: PhantomData }
    }

    #[manager(typeid = "Value")]
    pub(crate) fn create_value(value: Blob) -> Value<Opaque> {
        Value { value, _value: PhantomData }
    }

    #[manager(typeid = "Array")]
    pub(crate) fn create_array(items: Vec<Blob>) -> Array<Opaque> {
        Array { items, _items: PhantomData }
    }
}

/// A lock a [`ConditionProxy`] can be created over.
pub trait ConditionLock: sealed::Sealed {
    /// The lock's untyped proxy.
    fn lock_proxy(&self) -> &BaseProxy;
}

impl ConditionLock for LockProxy {
    fn lock_proxy(&self) -> &BaseProxy {
        self.base()
    }
}

impl ConditionLock for RLockProxy {
    fn lock_proxy(&self) -> &BaseProxy {
        self.base()
    }
}

fn create<P: Proxy>(m: &crate::BaseManager, typeid: &str, args: &impl Serialize) -> Result<P> {
    m.create::<P, _>(typeid, args)
}

/// The creators of the built-in types, for [`SyncManager`] and for every manager declared with
/// `#[manager(sync)]`.
pub trait SyncTypes: crate::Manager {
    /// A new [`Lock`].
    fn lock(&self) -> Result<LockProxy> {
        create(self.base(), "Lock", &())
    }

    /// A new [`RLock`].
    fn rlock(&self) -> Result<RLockProxy> {
        create(self.base(), "RLock", &())
    }

    /// A new [`Semaphore`] with `value` permits.
    fn semaphore(&self, value: usize) -> Result<SemaphoreProxy> {
        create(self.base(), "Semaphore", &(value,))
    }

    /// A new [`BoundedSemaphore`] with `value` permits.
    fn bounded_semaphore(&self, value: usize) -> Result<BoundedSemaphoreProxy> {
        create(self.base(), "BoundedSemaphore", &(value,))
    }

    /// A new [`Condition`] over `lock` (a lock of this manager), or over a new re-entrant lock
    /// of its own.
    fn condition(&self, lock: Option<&dyn ConditionLock>) -> Result<ConditionProxy> {
        create(self.base(), "Condition", &(lock.map(|l| l.lock_proxy()),))
    }

    /// A new [`Event`].
    fn event(&self) -> Result<EventProxy> {
        create(self.base(), "Event", &())
    }

    /// A new [`Barrier`] for `parties`; `timeout` is the default for its waits.
    fn barrier(&self, parties: usize, timeout: Option<Duration>) -> Result<BarrierProxy> {
        create(self.base(), "Barrier", &(parties, timeout, None::<crate::child::CodeRef>))
    }

    /// A new [`Barrier`] whose last arriving party runs `action` in the manager process before
    /// the parties are released (CPython's `Barrier(parties, action)`). `action` must be
    /// registered with [`procman::action!`](crate::action), and the manager must run this
    /// executable (one started with `start()`); otherwise [`Error::Usage`].
    fn barrier_with_action(&self, parties: usize, action: fn(), timeout: Option<Duration>) -> Result<BarrierProxy> {
        create(self.base(), "Barrier", &(parties, timeout, Some(crate::child::CodeRef::of(action)?)))
    }

    /// A new [`Queue`] of at most `maxsize` items (0: no limit). It is joinable.
    fn queue<T: Serialize + DeserializeOwned + 'static>(&self, maxsize: usize) -> Result<QueueProxy<T>> {
        create(self.base(), "Queue", &(maxsize,))
    }

    /// A new [`Namespace`].
    fn namespace(&self) -> Result<NamespaceProxy> {
        create(self.base(), "Namespace", &())
    }

    /// A new, empty [`Dict`].
    fn dict<K, V>(&self) -> Result<DictProxy<K, V>>
    where
        K: Serialize + DeserializeOwned + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        create(self.base(), "dict", &(Vec::<(Blob, Blob)>::new(),))
    }

    /// A new [`Dict`] holding `items`.
    fn dict_from<'a, K, V>(&self, items: impl IntoIterator<Item = (&'a K, &'a V)>) -> Result<DictProxy<K, V>>
    where
        K: Serialize + DeserializeOwned + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        let items: Vec<(Blob, Blob)> =
            items.into_iter().map(|(k, v)| Ok((Blob::encode(k)?, Blob::encode(v)?))).collect::<Result<_>>()?;
        create(self.base(), "dict", &(items,))
    }

    /// A new [`List`] holding `items`.
    fn list<T: Serialize + DeserializeOwned + 'static>(&self, items: &[T]) -> Result<ListProxy<T>> {
        create(self.base(), "list", &(encode_all(items)?,))
    }

    /// A new [`Value`] holding `value`.
    fn value<T: Serialize + DeserializeOwned + 'static>(&self, value: &T) -> Result<ValueProxy<T>> {
        create(self.base(), "Value", &(Blob::encode(value)?,))
    }

    /// The specification's `SharedValue(format, value)`: a [`Value`].
    fn shared_value<T: Serialize + DeserializeOwned + 'static>(&self, value: &T) -> Result<ValueProxy<T>> {
        self.value(value)
    }

    /// The specification's `SharedStruct(format, value)`: a [`Value`] of a struct or tuple.
    fn shared_struct<T: Serialize + DeserializeOwned + 'static>(&self, value: &T) -> Result<ValueProxy<T>> {
        self.value(value)
    }

    /// The specification's `SharedArray(format, sequence)`: a fixed-length [`Array`].
    fn shared_array<T: Serialize + DeserializeOwned + 'static>(&self, items: &[T]) -> Result<ArrayProxy<T>> {
        create(self.base(), "Array", &(encode_all(items)?,))
    }
}

impl SyncTypes for SyncManager {}
