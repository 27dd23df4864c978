//! `LocalManager`: objects in shared memory, no server process.

use crate::error::Result;
use procman_shm::{
    Arena, Barrier, BoundedSemaphore, Condition, ConditionLock, Event, FixedStr, Lock, Pod, Queue, RLock, Semaphore,
    SharedArray, SharedStruct, SharedValue,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The default size of a `LocalManager`'s arena: 64 MiB of address space; pages are used only
/// when touched.
pub const DEFAULT_ARENA_CAPACITY: u64 = 64 << 20;

/// A manager whose objects live in a shared-memory arena (the specification's `LocalManager`):
/// values, structs and arrays of plain data, and process-shared locks, semaphores, conditions,
/// events, barriers and queues.
///
/// There is no server: every access is a load or store in shared memory, or a futex wait. The
/// handles it returns are `Serialize`: pass them to [`Process::spawn`](crate::Process::spawn)
/// and the child maps the same arena. The arena is a `memfd`, so nothing appears in `/dev/shm`
/// and the kernel frees it when the last process using it exits, SIGKILL included; an object's
/// memory is freed when its last handle anywhere is dropped.
///
/// ```
/// use procman::LocalManager;
///
/// let manager = LocalManager::new()?;
/// let string = manager.shared_string::<256>("hello")?;
/// assert_eq!(format!("{string:?}"), r#"SharedValue<FixedStr<256>>("hello")"#);
/// string.set_str("goodbye")?;
/// assert_eq!(string.get_string(), "goodbye");
///
/// let arr = manager.shared_array(&[0i32; 10])?;
/// arr.set_range(0, &[1, 2, 3, 4, 5])?;
/// assert_eq!(format!("{arr:?}"), "SharedArray<i32>([1, 2, 3, 4, 5, 0, 0, 0, 0, 0])");
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LocalManager {
    arena: Arena,
}

impl LocalManager {
    /// A manager with an arena of [`DEFAULT_ARENA_CAPACITY`] bytes.
    pub fn new() -> Result<Self> {
        Self::with_capacity(DEFAULT_ARENA_CAPACITY)
    }

    /// A manager with an arena of `bytes` bytes. A full arena fails allocations with an
    /// out-of-memory error naming the request and the capacity.
    pub fn with_capacity(bytes: u64) -> Result<Self> {
        Ok(LocalManager { arena: Arena::create(bytes)? })
    }

    /// The arena, for the `new_in` constructors of `procman::shm`.
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The specification's `SharedValue(format, value)` for a plain value.
    pub fn shared_value<T: Pod>(&self, value: T) -> Result<SharedValue<T>> {
        Ok(SharedValue::new_in(&self.arena, value)?)
    }

    /// The specification's `SharedValue('256p', 'hello')`: a string of at most `N` bytes.
    pub fn shared_string<const N: usize>(&self, value: &str) -> Result<SharedValue<FixedStr<N>>> {
        Ok(SharedValue::new_in(&self.arena, FixedStr::new(value)?)?)
    }

    /// The specification's `SharedStruct(format, value)` for a `#[repr(C)]` plain struct.
    pub fn shared_struct<T: Pod>(&self, value: T) -> Result<SharedStruct<T>> {
        Ok(SharedStruct::new_in(&self.arena, value)?)
    }

    /// The specification's `SharedArray(format, sequence)`: a fixed-length array.
    pub fn shared_array<T: Pod>(&self, items: &[T]) -> Result<SharedArray<T>> {
        Ok(SharedArray::new_in(&self.arena, items)?)
    }

    /// A process-shared lock.
    pub fn lock(&self) -> Result<Lock> {
        Ok(Lock::new_in(&self.arena)?)
    }

    /// A process-shared re-entrant lock, owned by a thread of a process.
    pub fn rlock(&self) -> Result<RLock> {
        Ok(RLock::new_in(&self.arena)?)
    }

    /// A process-shared semaphore with `value` permits.
    pub fn semaphore(&self, value: u32) -> Result<Semaphore> {
        Ok(Semaphore::new_in(&self.arena, value)?)
    }

    /// A process-shared semaphore that cannot be released above `value`.
    pub fn bounded_semaphore(&self, value: u32) -> Result<BoundedSemaphore> {
        Ok(BoundedSemaphore::new_in(&self.arena, value)?)
    }

    /// A process-shared condition over a re-entrant lock of its own (Python's default).
    pub fn condition(&self) -> Result<Condition> {
        Ok(Condition::new_in(&self.arena)?)
    }

    /// A process-shared condition over `lock`: a [`Lock`] or an [`RLock`] of this manager.
    pub fn condition_with(&self, lock: impl Into<ConditionLock>) -> Result<Condition> {
        Ok(Condition::with_lock(&self.arena, lock)?)
    }

    /// A process-shared event.
    pub fn event(&self) -> Result<Event> {
        Ok(Event::new_in(&self.arena)?)
    }

    /// A process-shared barrier for `parties`.
    pub fn barrier(&self, parties: u32) -> Result<Barrier> {
        Ok(Barrier::new_in(&self.arena, parties)?)
    }

    /// A process-shared queue: a ring buffer of `capacity_bytes` bytes of encoded messages.
    pub fn queue<T: Serialize + DeserializeOwned>(&self, capacity_bytes: usize) -> Result<Queue<T>> {
        Ok(Queue::new_in(&self.arena, capacity_bytes)?)
    }

    /// Does nothing: there is no process to stop (the specification's compatibility `shutdown`).
    pub fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}
