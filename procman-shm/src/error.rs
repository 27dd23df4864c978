//! The crate's single error type.

use std::io;

/// Everything that can go wrong in the shared-memory arena and the objects living in it.
///
/// ```
/// use procman_shm::{Arena, SharedArray, ShmError};
///
/// let arena = Arena::create(4096)?;
/// let arr = SharedArray::new_in(&arena, &[1i32, 2, 3])?;
/// match arr.get(7) {
///     Err(ShmError::IndexOutOfRange { index: 7, len: 3 }) => {}
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), ShmError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The arena has no free block large enough for an allocation.
    #[error("shared-memory arena is out of memory: {requested} bytes requested, capacity {capacity} bytes")]
    OutOfMemory {
        /// Bytes needed for the block (payload plus block header, rounded up).
        requested: u64,
        /// Usable bytes of the arena.
        capacity: u64,
    },
    /// A serialized handle names an arena this process could not open.
    #[error("shared-memory arena {arena_id:032x} is unavailable through /proc/{pid}/fd/{fd}: {source}")]
    ArenaUnavailable {
        /// Id of the arena the handle belongs to.
        arena_id: u128,
        /// Process that serialized the handle.
        pid: u32,
        /// Its descriptor for the arena.
        fd: i32,
        /// Why opening or mapping failed.
        #[source]
        source: io::Error,
    },
    /// Creating or mapping an arena failed.
    #[error("cannot create shared-memory arena of {capacity} bytes: {source}")]
    ArenaCreate {
        /// Requested usable bytes.
        capacity: u64,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A serialized handle does not refer to a live object of the expected type.
    #[error("invalid {what} handle at offset {offset} of arena {arena_id:032x}: {reason}")]
    InvalidHandle {
        /// The handle type being deserialized, e.g. `SharedValue<u64>`.
        what: String,
        /// Arena the handle points into.
        arena_id: u128,
        /// Block offset in that arena.
        offset: u64,
        /// What did not match.
        reason: &'static str,
    },
    /// An index or range went past the end of a `SharedArray`.
    #[error("index {index} out of range for shared array of length {len}")]
    IndexOutOfRange {
        /// The first offending index.
        index: usize,
        /// Length of the array.
        len: usize,
    },
    /// A source slice does not have the length the destination requires.
    #[error("length mismatch: expected {expected} elements, got {actual}")]
    LengthMismatch {
        /// Length required.
        expected: usize,
        /// Length supplied.
        actual: usize,
    },
    /// A string does not fit a `FixedStr<N>`.
    #[error("string of {len} bytes does not fit in FixedStr<{capacity}>")]
    StringTooLong {
        /// UTF-8 length of the string.
        len: usize,
        /// Capacity `N` of the `FixedStr`.
        capacity: usize,
    },
    /// Release of a lock that is not held (or not held by the calling thread, for `RLock` and
    /// `Condition`).
    #[error("cannot release {object}: {reason}")]
    NotHeld {
        /// `Lock`, `RLock`, `Condition`.
        object: &'static str,
        /// "it is not held" / "it is held by thread 1234".
        reason: String,
    },
    /// A lock's previous holder died while holding it. The caller now HOLDS the lock; the data it
    /// protects may be half-updated.
    #[error(
        "{object} was abandoned: its holder (process {pid}, thread {tid}) died while holding it; the lock is now held by the caller"
    )]
    Abandoned {
        /// `Lock`, `RLock`, `Condition`.
        object: &'static str,
        /// Process id of the dead holder.
        pid: u32,
        /// Kernel thread id of the dead holder.
        tid: u32,
    },
    /// A `BoundedSemaphore` was released more often than acquired, or a counter overflowed.
    #[error("{object} released too many times (value would exceed {max})")]
    ReleasedTooManyTimes {
        /// `BoundedSemaphore` or `Semaphore`.
        object: &'static str,
        /// Its upper bound.
        max: u32,
    },
    /// A `Barrier` is broken (aborted, reset while waiting, or a waiter timed out).
    #[error("barrier is broken")]
    BrokenBarrier,
    /// `Queue::get_nowait`, or `get` whose timeout expired, found no message.
    #[error("queue is empty")]
    Empty,
    /// `Queue::put_nowait`, or `put` whose timeout expired, found no room.
    #[error("queue is full")]
    Full,
    /// A blocking operation's timeout expired (`Lock::lock_timeout` and friends).
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// An encoded message can never fit the queue's ring buffer.
    #[error("message of {size} bytes exceeds queue capacity of {capacity} bytes")]
    MessageTooLarge {
        /// Encoded size plus the 4-byte length prefix, rounded to 8.
        size: usize,
        /// Ring buffer size.
        capacity: usize,
    },
    /// Encoding or decoding a queue message failed.
    #[error("queue message encoding failed: {0}")]
    Encoding(#[from] postcard::Error),
    /// An argument is invalid (zero parties, zero capacity...).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// An error of a shared-memory object in another process, received with its message (errors
    /// travel between processes as text).
    #[error("{0}")]
    Remote(String),
}

/// `Result` with [`ShmError`].
///
/// ```
/// fn make() -> procman_shm::Result<procman_shm::Arena> {
///     procman_shm::Arena::create(1024)
/// }
/// assert!(make().is_ok());
/// ```
pub type Result<T> = std::result::Result<T, ShmError>;
