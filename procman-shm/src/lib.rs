//! Shared-memory objects for procman's `LocalManager`: an [`Arena`] (one `memfd` mapping per
//! manager), plain-data values ([`SharedValue`], [`SharedStruct`], [`SharedArray`],
//! [`FixedStr`]), process-shared synchronization ([`Lock`], [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Condition`], [`Event`], [`Barrier`]) and a [`Queue`]. Linux only.
//!
//! ```
//! use procman_shm::{Arena, Lock, SharedArray, SharedValue};
//!
//! let arena = Arena::create(1 << 20)?;
//! let counter = SharedValue::new_in(&arena, 0u64)?;
//! let lock = Lock::new_in(&arena)?;
//! {
//!     let _guard = lock.lock()?;
//!     counter.set(counter.get() + 1);
//! }
//! let arr = SharedArray::new_in(&arena, &[0i32; 10])?;
//! arr.set_range(0, &[1, 2, 3, 4, 5])?;
//! assert_eq!(format!("{arr:?}"), "SharedArray<i32>([1, 2, 3, 4, 5, 0, 0, 0, 0, 0])");
//!
//! // Handles are Serialize: another process deserializes them and sees the same memory.
//! let wire = postcard::to_allocvec(&counter).unwrap();
//! let same: SharedValue<u64> = postcard::from_bytes(&wire).unwrap();
//! assert_eq!(same.get(), 1);
//! # Ok::<(), procman_shm::ShmError>(())
//! ```
//!
//! # Arenas and lifetime
//!
//! An arena is a `memfd_create` file mapped `MAP_SHARED`; nothing is ever created in `/dev/shm`.
//! The kernel frees it when the last process that has it mapped or open is gone, whatever way the
//! processes end. Other processes map it by deserializing a handle: the handle names the
//! serializing process's pid and descriptor, opened through `/proc/<pid>/fd/<fd>` (so that process
//! must still be alive and still have the arena — some handle or `Arena` of it — when the handle
//! is deserialized, unless the receiver has the arena mapped already; otherwise the error is
//! [`ShmError::ArenaUnavailable`]). Opening another process's descriptor needs the usual
//! same-user `/proc` access (ptrace read permission). A per-process registry keyed by the arena's random id maps
//! each arena once however many handles arrive.
//!
//! Each object is a block of the arena with a reference count. Handles increment it on clone and
//! decrement it on drop; the block is freed when it reaches zero, in whichever process that
//! happens. **Serializing a handle adds a reference for the receiver, and deserializing adopts
//! it**, so a block can never be freed while a handle is in flight. Consequently every serialized
//! copy must be deserialized exactly once: deserializing the same bytes twice releases a reference
//! that was never added, and a serialized handle that is never deserialized keeps its block
//! allocated until the arena itself goes away. References held by processes that die (SIGKILL)
//! are likewise leaked until the arena goes away.
//!
//! # Memory model
//!
//! The arena is memory shared between processes, which Rust treats like memory shared between
//! threads. No byte of it is ever accessed in a way that races:
//!
//! * The arena header, every block header and each block's *atomic area* are only ever accessed
//!   through `AtomicU32`/`AtomicU64` (in every process). Allocator metadata (free list, sizes) is
//!   additionally only modified under the arena's allocator lock.
//! * Each block may have a *locked area*, which is only ever accessed with plain copies
//!   (`memcpy`) while the block's own process-shared lock is held. The lock's `Acquire`/`Release`
//!   operations order those copies between processes.
//! * [`SharedValue`]/[`SharedStruct`] of at most 8 bytes live in the atomic area: `get` is an
//!   `Acquire` load and `set` a `Release` store of one `AtomicU64`. Larger ones, [`SharedArray`]
//!   and the ring of a [`Queue`] live in the locked area: every access takes the object's lock and
//!   copies, so readers never see torn values, and bulk array operations are one `memcpy`.
//! * The primitives are futex words in atomic areas or block headers, used with
//!   `FUTEX_WAIT`/`FUTEX_WAKE` without `FUTEX_PRIVATE_FLAG` (the futex is keyed by the shared page,
//!   not by the address space).
//! * Freed memory is only touched under the allocator lock, after its block's reference count
//!   reached zero (`Release` decrement, `Acquire` fence, as in `Arc`).
//!
//! * A lock taken over from a dead holder gives no `Release` to pair with; the holder's writes
//!   are nevertheless complete (the kernel has torn its threads down before `/proc` reports it
//!   dead), and the new holder issues a `SeqCst` fence before touching the protected data.
//!
//! All processes sharing an arena are trusted to run this crate's code: a process that scribbles
//! over the mapping can break every guarantee above.
//!
//! # Dead processes
//!
//! Locks record their holder's kernel thread id (and start time, against tid reuse). A waiter
//! that has seen the same holder for 25 ms checks `/proc/<tid>/stat`; if the holder is gone or a
//! zombie, the waiter takes the lock over and is told: [`Guard::was_abandoned`], or
//! `Err(ShmError::Abandoned)` from `acquire` **with the lock held**. Objects whose internal lock
//! is abandoned (arrays, large values, queues, barriers, the allocator) carry on: their updates
//! are published by single stores, so a dead process leaves no half-visible state (at worst an
//! array or large value half-copied by the dead writer, or a leaked block).

#[cfg(not(target_os = "linux"))]
compile_error!("procman-shm needs Linux (memfd_create, futexes, /proc)");

mod arena;
mod error;
mod handle;
mod lock_core;
mod queue;
mod sync;
mod sys;
mod value;

pub use arena::Arena;
pub use bytemuck;
pub use bytemuck::{Pod, Zeroable};
pub use error::{Result, ShmError};
#[doc(hidden)]
pub use handle::short_type_name;
pub use queue::Queue;
pub use sync::{
    Barrier, Bound, Bounded, BoundedSemaphore, Condition, ConditionGuard, ConditionLock, CountingSemaphore, Event,
    Guard, Lock, LockGuard, RLock, RLockGuard, RawRelease, Semaphore, Unbounded,
};
pub use value::{FixedStr, SharedArray, SharedStruct, SharedValue};

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync_debug<T: Send + Sync + std::fmt::Debug>() {}

    #[test]
    fn handles_are_send_sync_debug() {
        send_sync_debug::<Arena>();
        send_sync_debug::<SharedValue<u64>>();
        send_sync_debug::<SharedValue<FixedStr<256>>>();
        send_sync_debug::<SharedStruct<[u16; 2]>>();
        send_sync_debug::<SharedArray<i32>>();
        send_sync_debug::<Lock>();
        send_sync_debug::<LockGuard<'static>>();
        send_sync_debug::<RLock>();
        send_sync_debug::<Semaphore>();
        send_sync_debug::<BoundedSemaphore>();
        send_sync_debug::<Condition>();
        send_sync_debug::<Event>();
        send_sync_debug::<Barrier>();
        send_sync_debug::<Queue<String>>();
        send_sync_debug::<ShmError>();
    }
}
