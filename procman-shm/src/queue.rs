//! [`Queue`]: a bounded multi-producer multi-consumer queue of encoded messages in the arena.
//!
//! The block's locked area is a ring of `capacity` bytes holding records
//! `[len: u32][postcard bytes]`, each padded to 8 bytes; a record never wraps: if it does not fit
//! before the end of the ring, a wrap marker (`len == u32::MAX`) fills the rest of the line and
//! the record starts at offset 0. `head`/`tail` are monotonically increasing byte positions
//! (physical offset = position % capacity).
//!
//! Every operation runs under the block's process-shared lock and publishes its effect with one
//! store (`tail` for `put`, after the bytes are copied; `head` for `get`), so a process killed in
//! the middle of either leaves no half-written message visible. The lock recovery of
//! [`crate::Lock`] applies: the next user takes the lock over and re-derives the message count by
//! walking the ring (`repair`), which also clears anything inconsistent.
//!
//! Sleeping: getters wait on the `not_empty` futex word and putters on `not_full`; a side only
//! issues `FUTEX_WAKE` when the other side has recorded a sleeping waiter, so a busy queue does
//! not make one system call per message.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::arena::{Arena, Block, DataGuard, Kind};
use crate::error::{Result, ShmError};
use crate::handle::{deserialize_block, serialize_block, short_type_name};
use crate::sync::deadline::{deadline_after, remaining};
use crate::sys;

const CLASS_QUEUE: u8 = 11;
const WRAP: u32 = u32::MAX;
const HEADER: usize = 4;
/// Spins (re-checking without the lock) before a getter goes to sleep.
const SPIN: u32 = 200;

// Atomic slots.
const S_HEAD: usize = 0;
const S_TAIL: usize = 1;
const S_COUNT: usize = 2;
const S_CAPACITY: usize = 3;
// Half-slots (u32) in slots 4 and 5.
const H_NOT_EMPTY: usize = 8;
const H_GETTERS: usize = 9;
const H_NOT_FULL: usize = 10;
const H_PUTTERS: usize = 11;
const ATOMIC_SLOTS: usize = 6;

fn record_len(payload: usize) -> usize {
    (HEADER + payload).div_ceil(8) * 8
}

/// With the queue's lock held (`g`), waits for the other side: counts the caller in `sleepers`,
/// releases the lock and sleeps on `word` until woken or `deadline`. False, without sleeping, if
/// `blocking` is false or the deadline has passed; the caller then gives up.
fn sleep(g: DataGuard<'_>, word: &AtomicU32, sleepers: &AtomicU32, blocking: bool, deadline: Option<Instant>) -> bool {
    if !blocking {
        return false;
    }
    let Ok(left) = remaining(deadline) else {
        return false;
    };
    let seq = word.load(Ordering::Relaxed);
    sleepers.fetch_add(1, Ordering::Relaxed);
    drop(g);
    sys::futex_wait(word, seq, left);
    // Keep holding our place in the count until we hold the lock again? Not needed: a waker
    // that sees no sleepers simply skips the wake, and we re-check under the lock.
    sleepers.fetch_sub(1, Ordering::Relaxed);
    true
}

/// With the queue's lock held (`g`), after a change the other side waits for: if some thread
/// sleeps (`sleepers`), bumps `word` and, once the lock is released, wakes `n` sleepers on it.
fn wake(g: DataGuard<'_>, word: &AtomicU32, sleepers: &AtomicU32, n: u32) {
    let wake = sleepers.load(Ordering::Relaxed) > 0;
    if wake {
        word.fetch_add(1, Ordering::Relaxed);
    }
    drop(g);
    if wake {
        sys::futex_wake(word, n);
    }
}

/// A bounded, process-shared FIFO queue of `T`s, encoded with postcard into a ring buffer of
/// `capacity_bytes` in the arena (the spec's `Queue`).
///
/// Messages from one producer are received in the order they were put. `get` with an expired
/// timeout is [`ShmError::Empty`] and `put` with an expired timeout is [`ShmError::Full`], as in
/// Python's `queue` module.
///
/// ```
/// use procman_shm::{Arena, Queue, ShmError};
///
/// let arena = Arena::create(1 << 16)?;
/// let q: Queue<(u32, String)> = Queue::new_in(&arena, 4096)?;
/// q.put(&(1, "one".into()), None)?;
/// q.put_nowait(&(2, "two".into()))?;
/// assert_eq!(q.len(), 2);
/// assert_eq!(q.get(None)?, (1, "one".to_string()));
/// assert_eq!(q.get_nowait()?.0, 2);
/// assert!(matches!(q.get_nowait(), Err(ShmError::Empty)));
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct Queue<T> {
    block: Block,
    capacity: usize,
    _t: PhantomData<fn(T) -> T>,
}

struct Words<'a> {
    head: &'a AtomicU64,
    tail: &'a AtomicU64,
    count: &'a AtomicU64,
    not_empty: &'a AtomicU32,
    getters: &'a AtomicU32,
    not_full: &'a AtomicU32,
    putters: &'a AtomicU32,
}

impl<T> Queue<T> {
    const KIND: Kind = Kind::new(CLASS_QUEUE, size_of::<T>(), align_of::<T>());

    fn words(&self) -> Words<'_> {
        let b = &self.block;
        Words {
            head: b.atomic_u64(S_HEAD),
            tail: b.atomic_u64(S_TAIL),
            count: b.atomic_u64(S_COUNT),
            not_empty: b.atomic_u32(H_NOT_EMPTY),
            getters: b.atomic_u32(H_GETTERS),
            not_full: b.atomic_u32(H_NOT_FULL),
            putters: b.atomic_u32(H_PUTTERS),
        }
    }

    /// Number of messages in the queue.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// let q = procman_shm::Queue::<u8>::new_in(&arena, 256)?;
    /// q.put(&1, None)?;
    /// assert_eq!(q.len(), 1);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.words().count.load(Ordering::Relaxed) as usize
    }

    /// Whether the queue holds no message.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// assert!(procman_shm::Queue::<u8>::new_in(&arena, 256)?.is_empty());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        let w = self.words();
        w.head.load(Ordering::Relaxed) == w.tail.load(Ordering::Relaxed)
    }

    /// Size of the ring buffer in bytes (each message takes its encoded size + 4, rounded up
    /// to 8).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// assert_eq!(procman_shm::Queue::<u8>::new_in(&arena, 250)?.capacity_bytes(), 256);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn capacity_bytes(&self) -> usize {
        self.capacity
    }

    /// Number of handles to this queue in all processes (serialized ones included).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// let q = procman_shm::Queue::<u8>::new_in(&arena, 256)?;
    /// assert_eq!(q.clone().ref_count(), 2);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn ref_count(&self) -> u64 {
        self.block.ref_count()
    }

    /// The arena the queue lives in.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// let q = procman_shm::Queue::<u8>::new_in(&arena, 256)?;
    /// assert!(q.arena().same_arena(&arena));
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn arena(&self) -> &Arena {
        self.block.arena()
    }

    /// Re-derives `count` (and fixes `tail`) after the lock was taken over from a dead holder.
    fn repair(&self, g: &DataGuard<'_>) {
        let w = self.words();
        let cap = self.capacity as u64;
        let head = w.head.load(Ordering::Relaxed);
        let mut tail = w.tail.load(Ordering::Relaxed);
        if tail < head || tail - head > cap || !head.is_multiple_of(8) || !tail.is_multiple_of(8) {
            tail = head;
        }
        let mut pos = head;
        let mut n = 0;
        while pos < tail {
            let phys = (pos % cap) as usize;
            let len: u32 = g.read_pod(phys);
            if len == WRAP {
                pos += cap - phys as u64;
                continue;
            }
            let rec = record_len(len as usize) as u64;
            if rec > cap - phys as u64 || pos + rec > tail {
                break;
            }
            pos += rec;
            n += 1;
        }
        w.tail.store(pos.min(tail), Ordering::Relaxed);
        w.count.store(n, Ordering::Relaxed);
    }

    /// Takes the queue's lock. A non-blocking `put`/`get` still waits for the lock, which is only
    /// ever held for a copy (or, after its holder died, until a waiter takes it over), as
    /// CPython's `put_nowait`/`get_nowait` take the queue's mutex: "non-blocking" is about room
    /// and items, and a busy lock must not pass for a full or empty queue.
    fn lock(&self, blocking: bool, deadline: Option<Instant>) -> Option<DataGuard<'_>> {
        let deadline = if blocking { deadline } else { None };
        let (g, abandoned) = self.block.lock_data(true, deadline)?;
        if abandoned.is_some() {
            self.repair(&g);
        }
        Some(g)
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Allocates a queue whose ring buffer has `capacity_bytes` (rounded up to 8; at least 16).
    ///
    /// Fails with [`ShmError::OutOfMemory`] if the arena is full.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// let q = procman_shm::Queue::<String>::new_in(&arena, 1024)?;
    /// assert!(q.is_empty());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena, capacity_bytes: usize) -> Result<Queue<T>> {
        let capacity = capacity_bytes.max(16).div_ceil(8) * 8;
        let block = Block::alloc(arena, Self::KIND, ATOMIC_SLOTS, capacity)?;
        block.atomic_u64(S_CAPACITY).store(capacity as u64, Ordering::Release);
        Ok(Queue { block, capacity, _t: PhantomData })
    }

    /// Appends a message, waiting while there is no room: at most `timeout` (forever if `None`),
    /// then [`ShmError::Full`]. [`ShmError::MessageTooLarge`] if the message can never fit.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// let q = procman_shm::Queue::<Vec<u8>>::new_in(&arena, 64)?;
    /// q.put(&vec![1; 40], None)?;
    /// let t = Some(std::time::Duration::from_millis(5));
    /// assert!(matches!(q.put(&vec![1; 40], t), Err(procman_shm::ShmError::Full)));
    /// assert!(matches!(q.put(&vec![1; 100], None), Err(procman_shm::ShmError::MessageTooLarge { .. })));
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn put(&self, item: &T, timeout: Option<Duration>) -> Result<()> {
        self.put_impl(item, true, deadline_after(timeout))
    }

    /// Appends a message if there is room right now, else [`ShmError::Full`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// let q = procman_shm::Queue::<u64>::new_in(&arena, 16)?;
    /// q.put_nowait(&1)?;
    /// q.put_nowait(&2)?;
    /// assert!(q.put_nowait(&3).is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn put_nowait(&self, item: &T) -> Result<()> {
        self.put_impl(item, false, None)
    }

    fn put_impl(&self, item: &T, blocking: bool, deadline: Option<Instant>) -> Result<()> {
        let bytes = postcard::to_allocvec(item)?;
        let rec = record_len(bytes.len());
        let cap = self.capacity;
        if rec > cap || bytes.len() >= WRAP as usize {
            return Err(ShmError::MessageTooLarge { size: rec, capacity: cap });
        }
        let w = self.words();
        loop {
            let Some(mut g) = self.lock(blocking, deadline) else {
                return Err(ShmError::Full);
            };
            let head = w.head.load(Ordering::Relaxed);
            let mut tail = w.tail.load(Ordering::Relaxed);
            let used = (tail - head) as usize;
            let phys = (tail % cap as u64) as usize;
            let contiguous = cap - phys;
            let pad = if rec <= contiguous { 0 } else { contiguous };
            if used + pad + rec <= cap {
                if pad > 0 {
                    g.write_pod(phys, &WRAP);
                    tail += pad as u64;
                }
                let at = (tail % cap as u64) as usize;
                g.write_pod(at, &(bytes.len() as u32));
                g.write(at + HEADER, &bytes);
                // The publishing store: everything above is invisible until here.
                w.tail.store(tail + rec as u64, Ordering::Relaxed);
                w.count.fetch_add(1, Ordering::Relaxed);
                wake(g, w.not_empty, w.getters, 1);
                return Ok(());
            }
            if used == 0 && pad > 0 {
                // Empty but the record would straddle the end: restart at offset 0.
                let restart = tail + contiguous as u64;
                w.head.store(restart, Ordering::Relaxed);
                w.tail.store(restart, Ordering::Relaxed);
                continue;
            }
            if !sleep(g, w.not_full, w.putters, blocking, deadline) {
                return Err(ShmError::Full);
            }
        }
    }

    /// Removes and returns the oldest message, waiting while the queue is empty: at most
    /// `timeout` (forever if `None`), then [`ShmError::Empty`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// let q = procman_shm::Queue::<u8>::new_in(&arena, 256)?;
    /// let t = Some(std::time::Duration::from_millis(5));
    /// assert!(matches!(q.get(t), Err(procman_shm::ShmError::Empty)));
    /// q.put(&9, None)?;
    /// assert_eq!(q.get(t)?, 9);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn get(&self, timeout: Option<Duration>) -> Result<T> {
        self.get_impl(true, deadline_after(timeout))
    }

    /// Removes and returns the oldest message if there is one, else [`ShmError::Empty`].
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(1 << 16)?;
    /// let q = procman_shm::Queue::<u8>::new_in(&arena, 256)?;
    /// assert!(q.get_nowait().is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn get_nowait(&self) -> Result<T> {
        self.get_impl(false, None)
    }

    fn get_impl(&self, blocking: bool, deadline: Option<Instant>) -> Result<T> {
        let cap = self.capacity as u64;
        let w = self.words();
        let mut spins = 0;
        loop {
            if blocking && spins < SPIN && self.is_empty() {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let Some(g) = self.lock(blocking, deadline) else {
                return Err(ShmError::Empty);
            };
            let mut head = w.head.load(Ordering::Relaxed);
            let tail = w.tail.load(Ordering::Relaxed);
            if head != tail {
                let mut phys = (head % cap) as usize;
                let mut len: u32 = g.read_pod(phys);
                if len == WRAP {
                    head += cap - phys as u64;
                    phys = 0;
                    len = g.read_pod(0);
                }
                let mut bytes = vec![0u8; len as usize];
                g.read(phys + HEADER, &mut bytes);
                w.head.store(head + record_len(len as usize) as u64, Ordering::Relaxed);
                w.count.fetch_sub(1, Ordering::Relaxed);
                wake(g, w.not_full, w.putters, u32::MAX);
                return Ok(postcard::from_bytes(&bytes)?);
            }
            if !sleep(g, w.not_empty, w.getters, blocking, deadline) {
                return Err(ShmError::Empty);
            }
            spins = 0;
        }
    }
}

impl<T> Clone for Queue<T> {
    /// Another handle to the same queue (increments its reference count).
    fn clone(&self) -> Self {
        Queue { block: self.block.clone(), capacity: self.capacity, _t: PhantomData }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Queue<{}>(len={}, capacity_bytes={})", short_type_name::<T>(), self.len(), self.capacity)
    }
}

impl<T> Serialize for Queue<T> {
    /// Serializes the handle and adds the reference its receiver adopts; deserialize each
    /// serialized copy exactly once.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_block(&self.block, s)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    /// Maps the arena if needed and adopts the serialized reference.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let block = deserialize_block(d, Self::KIND, || format!("Queue<{}>", short_type_name::<T>()))?;
        let capacity = block.atomic_u64(S_CAPACITY).load(Ordering::Acquire) as usize;
        if capacity == 0 || capacity > block.locked_len() {
            return Err(serde::de::Error::custom("corrupt Queue capacity"));
        }
        Ok(Queue { block, capacity, _t: PhantomData })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn fifo_wraparound_and_errors() {
        let arena = Arena::create(1 << 16).unwrap();
        let q: Queue<u64> = Queue::new_in(&arena, 64).unwrap();
        // Each u64 record: postcard varint (1-10 bytes) + 4 -> 8 or 16 bytes.
        let mut next_in = 0u64;
        let mut next_out = 0u64;
        for round in 0..50 {
            let burst = 1 + round % 7;
            for _ in 0..burst {
                match q.put_nowait(&(next_in * 1_000_003)) {
                    Ok(()) => next_in += 1,
                    Err(ShmError::Full) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            while let Ok(v) = q.get_nowait() {
                assert_eq!(v, next_out * 1_000_003);
                next_out += 1;
            }
            assert_eq!(next_in, next_out);
            assert!(q.is_empty());
            assert_eq!(q.len(), 0);
        }
        assert!(matches!(q.get_nowait(), Err(ShmError::Empty)));
        let big: Queue<Vec<u8>> = Queue::new_in(&arena, 64).unwrap();
        assert!(matches!(big.put_nowait(&vec![0; 61]), Err(ShmError::MessageTooLarge { .. })));
        // A record as large as the ring fits when the queue is empty, wherever the tail is.
        big.put_nowait(&vec![1; 8]).unwrap();
        big.get_nowait().unwrap();
        big.put_nowait(&vec![7; 59]).unwrap();
        assert!(matches!(big.put_nowait(&vec![]), Err(ShmError::Full)));
        assert_eq!(big.get_nowait().unwrap(), vec![7; 59]);
    }

    #[test]
    fn timeouts_are_honoured() {
        let arena = Arena::create(1 << 16).unwrap();
        let q: Queue<u32> = Queue::new_in(&arena, 16).unwrap();
        let t = Instant::now();
        assert!(matches!(q.get(Some(Duration::from_millis(50))), Err(ShmError::Empty)));
        assert!(t.elapsed() >= Duration::from_millis(50));
        q.put(&1, None).unwrap();
        q.put(&2, None).unwrap();
        let t = Instant::now();
        assert!(matches!(q.put(&3, Some(Duration::from_millis(50))), Err(ShmError::Full)));
        assert!(t.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn blocking_get_and_put_wake_up() {
        let arena = Arena::create(1 << 16).unwrap();
        let q: Queue<u32> = Queue::new_in(&arena, 64).unwrap();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    let q = q.clone();
                    s.spawn(move || {
                        let mut got = Vec::new();
                        loop {
                            match q.get(None).unwrap() {
                                u32::MAX => break got,
                                v => got.push(v),
                            }
                        }
                    })
                })
                .collect();
            for i in 0..20_000 {
                q.put(&i, None).unwrap();
            }
            q.put(&u32::MAX, None).unwrap();
            q.put(&u32::MAX, None).unwrap();
            let mut all: Vec<u32> = Vec::new();
            for c in consumers {
                let got = c.join().unwrap();
                assert!(got.windows(2).all(|w| w[0] < w[1]), "per-consumer order");
                all.extend(got);
            }
            all.sort_unstable();
            assert_eq!(all, (0..20_000).collect::<Vec<_>>());
            done.store(true, Ordering::Relaxed);
        });
        assert!(done.load(Ordering::Relaxed));
    }

    #[test]
    fn lock_abandoned_mid_put_is_repaired() {
        let arena = Arena::create(1 << 16).unwrap();
        let q: Queue<u32> = Queue::new_in(&arena, 256).unwrap();
        q.put(&1, None).unwrap();
        q.put(&2, None).unwrap();
        // A "process" that dies between publishing `tail` and bumping `count`, holding the lock.
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut g = q.block.lock_data_blocking();
                let w = q.words();
                let tail = w.tail.load(Ordering::Relaxed);
                let bytes = postcard::to_allocvec(&3u32).unwrap();
                let at = (tail % q.capacity as u64) as usize;
                g.write_pod(at, &(bytes.len() as u32));
                g.write(at + HEADER, &bytes);
                w.tail.store(tail + record_len(bytes.len()) as u64, Ordering::Relaxed);
                std::mem::forget(g);
            });
        });
        assert_eq!(q.len(), 2, "count is stale until the lock is recovered");
        assert_eq!(q.get(Some(Duration::from_secs(2))).unwrap(), 1);
        assert_eq!(q.len(), 2, "repaired: 3 published, 1 taken");
        // Another one dies after copying bytes but before publishing: nothing becomes visible.
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut g = q.block.lock_data_blocking();
                let tail = q.words().tail.load(Ordering::Relaxed);
                let at = (tail % q.capacity as u64) as usize;
                g.write_pod(at, &7u32);
                g.write(at + HEADER, &[0xff; 7]);
                std::mem::forget(g);
            });
        });
        assert_eq!(q.get(Some(Duration::from_secs(2))).unwrap(), 2);
        assert_eq!(q.get_nowait().unwrap(), 3);
        assert!(matches!(q.get_nowait(), Err(ShmError::Empty)));
        assert_eq!(q.len(), 0);
        q.put(&4, None).unwrap();
        assert_eq!(q.get_nowait().unwrap(), 4);
    }

    #[test]
    fn serialized_handle_shares_the_queue() {
        let arena = Arena::create(1 << 16).unwrap();
        let q: Queue<String> = Queue::new_in(&arena, 256).unwrap();
        let bytes = postcard::to_allocvec(&q).unwrap();
        let q2: Queue<String> = postcard::from_bytes(&bytes).unwrap();
        q2.put(&"hi".into(), None).unwrap();
        assert_eq!(q.get(None).unwrap(), "hi");
        assert_eq!(q.ref_count(), 2);
        drop((q, q2));
        assert_eq!(arena.live_objects(), 0);
    }
}
