//! The built-in shared types of [`SyncManager`]: locks, semaphores, conditions, events,
//! barriers, queues, namespaces, dicts, lists, values and arrays, with CPython's semantics.
//!
//! ```
//! use procman::sync::SyncManager;
//!
//! procman::init();
//! let m = SyncManager::new().serve_in_background()?;
//! let q = m.queue::<String>(0)?;
//! q.put("hello".to_string())?;
//! assert_eq!(q.get()?, "hello");
//! let d = m.dict::<String, i64>()?;
//! d.insert("x".into(), 1)?;
//! assert_eq!(d.get(&"x".into())?, Some(1));
//! # Ok::<(), procman::Error>(())
//! ```
//!
//! # One file, one declaration per type
//!
//! Each type is written once, with procman's own macros, in a file of its own: the struct with
//! `#[derive(Shared)]`, one `#[shared]` impl block whose methods are what the manager runs (and,
//! marked `#[shared(client)]`, helpers that run in the caller, such as `put(item)` for
//! `put_with(item, true, None)`), and its creator in a `#[manager] impl SyncManager` block. The
//! proxy, its methods, the wire names, the dispatch table and the creator's registration all
//! come from that one declaration, so the two sides cannot disagree. Elements travel as
//! [`Encoded<T>`](crate::Encoded): the manager stores them as bytes, so it holds a `Queue<T>`
//! or a `Dict<K, V>` of any `T` its clients use, even a remote manager compiled without `T`.
//!
//! Adding a built-in: write `sync/stack.rs` with `#[derive(Shared)] pub struct Stack<T>`, its
//! `#[shared] impl<T: 'static> Stack<T>` and `#[manager] impl SyncManager { #[manager(typeid =
//! "Stack")] pub fn stack<T>() -> Stack<T> { ... } }`, then add `mod stack;` and its re-export
//! below. [`Event`] (`event.rs`) is the smallest example.
//!
//! # Locks and dead clients
//!
//! Locks differ from CPython in one way: when the connection of a client thread that holds a
//! `Lock` or `RLock` closes (the thread or its process ended, SIGKILL included), the lock is
//! released and the next acquirer gets [`Error::Abandoned`](crate::Error::Abandoned) — while
//! holding the lock — instead of waiting forever. A blocked call whose client goes away stops
//! waiting, so a queue item is never handed to a dead client.
//!
//! # Files
//!
//! - `manager.rs`: [`SyncManager`] and [`SyncTypes`]
//! - `lock.rs`, `rlock.rs`, `semaphore.rs` ([`Semaphore`] and [`BoundedSemaphore`]),
//!   `condition.rs`, `event.rs`, `barrier.rs`: the synchronization primitives
//! - `queue.rs`, `namespace.rs`, `dict.rs`, `list.rs`, `array.rs`, `value.rs`: the containers
//! - `guard.rs`: [`LockGuard`], one guard for everything acquired and released
//! - `core.rs`: waiting with a deadline while watching the caller's connection
//! - `sequence.rs`: Python's index and slice rules

mod array;
mod barrier;
mod condition;
mod core;
mod dict;
mod event;
mod guard;
mod list;
mod lock;
mod manager;
mod namespace;
mod queue;
mod rlock;
mod semaphore;
mod sequence;
mod value;

pub use array::{Array, ArrayProxy, AsyncArrayProxy};
pub use barrier::{AsyncBarrierProxy, Barrier, BarrierProxy};
pub use condition::{AsyncConditionProxy, Condition, ConditionLockProxy, ConditionProxy};
pub use dict::{AsyncDictProxy, Dict, DictProxy};
pub use event::{AsyncEventProxy, Event, EventProxy};
pub use guard::{Acquire, LockGuard};
pub use list::{AsyncListProxy, List, ListProxy};
pub use lock::{AsyncLockProxy, Lock, LockProxy};
pub use manager::{SyncManager, SyncTypes};
pub use namespace::{AsyncNamespaceProxy, Namespace, NamespaceProxy};
pub use queue::{AsyncQueueProxy, Queue, QueueProxy};
pub use rlock::{AsyncRLockProxy, RLock, RLockProxy};
pub use semaphore::{
    AsyncBoundedSemaphoreProxy, AsyncSemaphoreProxy, BoundedSemaphore, BoundedSemaphoreProxy, Semaphore, SemaphoreProxy,
};
pub use value::{AsyncValueProxy, Value, ValueProxy};

/// The type parameter of objects a manager creates without knowing the client's types.
pub use crate::encoded::Opaque;
