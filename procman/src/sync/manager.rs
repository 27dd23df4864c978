//! [`SyncManager`], the manager of the built-in types, and [`SyncTypes`], what every manager
//! that serves them has.
//!
//! The creators are not listed here: each type's file declares its own, in a
//! `#[manager] impl SyncManager` block beside the type.

use crate::Manager;

/// The manager of the built-in types (Python's `SyncManager`, what `multiprocessing.Manager()`
/// returns): `manager.lock()`, `manager.queue::<T>(maxsize)`, `manager.dict::<K, V>()`, ...
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// // `start()` runs the manager in a child process; this example serves on a thread.
/// let m = SyncManager::new().serve_in_background()?;
/// let q = m.queue::<String>(0)?;
/// q.put("hello".to_string())?;
/// assert_eq!(q.get()?, "hello");
/// m.shutdown()?;
/// # Ok::<(), procman::Error>(())
/// ```
///
/// A manager of your own serves the same types when declared with `#[manager(sync)]`, the way
/// a Python manager subclasses `SyncManager`: it dereferences to a `SyncManager`, so the
/// built-in creators are its methods too.
///
/// ```
/// use procman::prelude::*;
///
/// #[derive(Shared, Debug, Default)]
/// pub struct Counter { n: i64 }
///
/// #[shared]
/// impl Counter {
///     pub fn incr(&mut self) -> i64 { self.n += 1; self.n }
/// }
///
/// #[manager(sync)]
/// pub struct AppManager;
///
/// #[manager]
/// impl AppManager {
///     fn counter() -> Counter { Counter::default() }
/// }
///
/// procman::init();
/// let m = AppManager::new().serve_in_background()?;
/// let (counter, lock) = (m.counter()?, m.lock()?);
/// let _held = lock.guard()?;
/// assert_eq!(counter.incr()?, 1);
/// # Ok::<(), procman::Error>(())
/// ```
#[crate::manager]
pub struct SyncManager;

/// A manager that serves the built-in types: [`SyncManager`] and every manager declared with
/// `#[manager(sync)]`. Generic code reaches the creators through [`sync`](Self::sync).
///
/// ```
/// use procman::sync::{SyncManager, SyncTypes};
///
/// fn jobs<M: SyncTypes>(m: &M) -> procman::Result<procman::sync::QueueProxy<u32>> {
///     m.sync().queue(0)
/// }
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// jobs(&m)?.put(7)?;
/// # Ok::<(), procman::Error>(())
/// ```
pub trait SyncTypes: Manager {
    /// The manager as a [`SyncManager`], whose methods create the built-in types.
    fn sync(&self) -> &SyncManager;
}

impl SyncTypes for SyncManager {
    fn sync(&self) -> &SyncManager {
        self
    }
}
