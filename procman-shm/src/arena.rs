//! The shared mapping, its allocator and the refcounted [`Block`]s objects live in.
//!
//! All raw-memory `unsafe` of the crate is in this module. Layout of an arena (all offsets from
//! the start of the mapping, all integers native-endian):
//!
//! ```text
//! 0      arena header (HEADER_SIZE bytes): magic, version, id, capacity, free-list head,
//!        allocator lock, statistics -- every field an AtomicU64/AtomicU32
//! 4096   heap: blocks, each 64-byte aligned:
//!        +0  block header (64 bytes, all atomics): size, state, next free, refcount, kind,
//!            lock word, lock meta, area sizes
//!        +64 atomic area: `atomic_words` u64 slots, only ever accessed through atomics
//!        +64+round64(8*atomic_words)  locked area: `locked_len` bytes, only ever accessed
//!            with plain copies while holding the block's lock (through a `DataGuard`)
//! ```
//!
//! The split between the atomic and the locked area is what makes the crate free of data races:
//! code outside this module can only get `&Atomic*` references into headers and atomic areas
//! ([`Block::atomic_u32`], [`Block::atomic_u64`]) and byte copies into locked areas only through a
//! [`DataGuard`], which exists only while the block's lock is held. Freed blocks are touched
//! only under the allocator lock, after their refcount reached zero (no handle exists anywhere).

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::Instant;

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Result, ShmError};
use crate::lock_core::{Acquire, RawLock};
use crate::sys;

const MAGIC: u64 = u64::from_le_bytes(*b"PROCMSHM");
const VERSION: u64 = 1;
/// Bytes reserved for the arena header; the heap starts page-aligned after it.
const HEADER_SIZE: u64 = 4096;
/// Block alignment and header size (a cache line, so objects do not share lines).
pub(crate) const BLOCK_ALIGN: u64 = 64;
/// Smallest remainder worth splitting off as a free block.
const MIN_SPLIT: u64 = 2 * BLOCK_ALIGN;

// Arena header fields (byte offsets).
const H_MAGIC: u64 = 0;
const H_VERSION: u64 = 8;
const H_ID_LO: u64 = 16;
const H_ID_HI: u64 = 24;
const H_CAPACITY: u64 = 32;
const H_FREE_HEAD: u64 = 40;
const H_USED: u64 = 48;
const H_BLOCKS: u64 = 56;
const H_LOCK_WORD: u64 = 64;
const H_LOCK_PID: u64 = 68;
const H_LOCK_META: u64 = 72;

// Block header fields (byte offsets from the block).
const B_SIZE: u64 = 0;
const B_STATE: u64 = 8;
const B_NEXT_FREE: u64 = 16;
const B_REFCOUNT: u64 = 24;
const B_KIND: u64 = 32;
const B_LOCK_WORD: u64 = 40;
const B_LOCK_PID: u64 = 44;
const B_LOCK_META: u64 = 48;
/// `atomic_words << 48 | locked_len`.
const B_AREAS: u64 = 56;

const STATE_FREE: u64 = u64::from_le_bytes(*b"freeblk!");
const STATE_USED: u64 = u64::from_le_bytes(*b"usedblk!");

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

/// One process's mapping of an arena.
struct ArenaInner {
    map: MmapRaw,
    /// Kept open so other processes can open `/proc/<our pid>/fd/<fd>`.
    file: File,
    id: u128,
    capacity: u64,
    len: u64,
}

impl Drop for ArenaInner {
    fn drop(&mut self) {
        let mut reg = registry();
        if reg.get(&self.id).is_some_and(|w| w.strong_count() == 0) {
            reg.remove(&self.id);
        }
    }
}

/// Arenas mapped by this process, by id, so a handle's arena is mapped once however many handles
/// of it are deserialized.
static REGISTRY: LazyLock<Mutex<HashMap<u128, Weak<ArenaInner>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The locked [`REGISTRY`]. A panic while it was held cannot leave the map inconsistent (every
/// update is one insert or remove), so a poisoned lock is used as is.
fn registry() -> MutexGuard<'static, HashMap<u128, Weak<ArenaInner>>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

impl ArenaInner {
    /// `&AtomicU64` at byte offset `off` of the mapping.
    ///
    /// Panics if `off` is misaligned or out of bounds (an internal bug or a corrupt arena).
    fn u64_at(&self, off: u64) -> &AtomicU64 {
        assert!(off.is_multiple_of(8) && off + 8 <= self.len, "arena offset {off} out of bounds");
        // SAFETY: the mapping is `self.len` bytes long and lives as long as `self` (the returned
        // reference borrows `self`); `off` is in bounds and 8-aligned (the mapping is
        // page-aligned). `AtomicU64` has the size and alignment of `u64` and every bit pattern is
        // valid. By the module's layout rules these bytes (header, block headers, atomic areas)
        // are only ever accessed atomically, in every process, so no data race is possible.
        unsafe { &*self.map.as_mut_ptr().add(off as usize).cast::<AtomicU64>() }
    }

    /// `&AtomicU32` at byte offset `off`; same rules as [`Self::u64_at`].
    fn u32_at(&self, off: u64) -> &AtomicU32 {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len, "arena offset {off} out of bounds");
        // SAFETY: as in `u64_at`, with 4-byte alignment and size.
        unsafe { &*self.map.as_mut_ptr().add(off as usize).cast::<AtomicU32>() }
    }

    fn alloc_lock(&self) -> RawLock<'_> {
        RawLock::new(self.u32_at(H_LOCK_WORD), self.u32_at(H_LOCK_PID), self.u64_at(H_LOCK_META))
    }

    fn heap_end(&self) -> u64 {
        HEADER_SIZE + self.capacity
    }

    /// Validates that `off` may be a block of the heap.
    fn plausible_block(&self, off: u64) -> bool {
        off >= HEADER_SIZE && off.is_multiple_of(BLOCK_ALIGN) && off + BLOCK_ALIGN <= self.heap_end()
    }
}

/// A shared-memory arena: one `memfd` mapping holding a heap of shared objects.
///
/// Cheap to clone (an `Arc` inside). Nothing is created in `/dev/shm`: the memory belongs to the
/// memfd and the kernel frees it when the last process holding a mapping or descriptor of it
/// exits, however it exits. Other processes reach the arena by deserializing a handle of an
/// object in it; they open it through `/proc/<pid>/fd/<fd>` of the serializing process.
///
/// ```
/// use procman_shm::{Arena, SharedValue};
///
/// let arena = Arena::create(1 << 20)?;
/// let v = SharedValue::new_in(&arena, 7u32)?;
/// assert_eq!(v.get(), 7);
/// assert!(arena.used_bytes() > 0);
/// drop(v);
/// assert_eq!(arena.used_bytes(), 0);
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
#[derive(Clone)]
pub struct Arena {
    inner: Arc<ArenaInner>,
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("id", &format_args!("{:032x}", self.inner.id))
            .field("capacity", &self.inner.capacity)
            .field("used", &self.used_bytes())
            .field("fd", &self.inner.file.as_raw_fd())
            .finish()
    }
}

impl std::os::fd::AsFd for Arena {
    /// The memfd backing the arena in this process (for diagnostics: `fstat`, `/proc` lookups).
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// let arena = procman_shm::Arena::create(4096)?;
    /// let fd = arena.as_fd().try_clone_to_owned().unwrap();
    /// assert_eq!(std::fs::File::from(fd).metadata().unwrap().len(), 4096 + 4096);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.file.as_fd()
    }
}

impl Arena {
    /// Creates an arena with `capacity_bytes` of heap (rounded up to 64 bytes; each object takes
    /// a 64-byte block header plus its data rounded up to 64 bytes).
    ///
    /// Fails with [`ShmError::ArenaCreate`] if the memfd cannot be created or mapped, and with
    /// [`ShmError::InvalidArgument`] for a zero capacity.
    ///
    /// ```
    /// let arena = procman_shm::Arena::create(64 * 1024)?;
    /// assert_eq!(arena.capacity(), 64 * 1024);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn create(capacity_bytes: u64) -> Result<Arena> {
        if capacity_bytes == 0 {
            return Err(ShmError::InvalidArgument("arena capacity must be non-zero"));
        }
        let capacity = round_up(capacity_bytes, BLOCK_ALIGN);
        let err = |source| ShmError::ArenaCreate { capacity: capacity_bytes, source };
        let len = HEADER_SIZE.checked_add(capacity).ok_or_else(|| err(io::Error::other("capacity too large")))?;
        let id = sys::random_u128().map_err(err)?;
        let file = sys::memfd_create("procman-arena", len).map_err(err)?;
        let map = MmapOptions::new().len(len as usize).map_raw(&file).map_err(err)?;
        let inner = Arc::new(ArenaInner { map, file, id, capacity, len });
        // The memfd is zero-filled; only non-zero fields need writing. Nobody else can see the
        // arena before this function returns.
        inner.u64_at(H_ID_LO).store(id as u64, Ordering::Relaxed);
        inner.u64_at(H_ID_HI).store((id >> 64) as u64, Ordering::Relaxed);
        inner.u64_at(H_CAPACITY).store(capacity, Ordering::Relaxed);
        inner.u64_at(H_VERSION).store(VERSION, Ordering::Relaxed);
        let first = HEADER_SIZE;
        inner.u64_at(first + B_SIZE).store(capacity, Ordering::Relaxed);
        inner.u64_at(first + B_STATE).store(STATE_FREE, Ordering::Relaxed);
        inner.u64_at(H_FREE_HEAD).store(first, Ordering::Relaxed);
        inner.u64_at(H_MAGIC).store(MAGIC, Ordering::Release);
        registry().insert(id, Arc::downgrade(&inner));
        Ok(Arena { inner })
    }

    /// The arena's random 128-bit id (also stored in its header).
    ///
    /// ```
    /// let a = procman_shm::Arena::create(4096)?;
    /// assert_ne!(a.id(), procman_shm::Arena::create(4096)?.id());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn id(&self) -> u128 {
        self.inner.id
    }

    /// Usable heap bytes.
    ///
    /// ```
    /// assert_eq!(procman_shm::Arena::create(1000)?.capacity(), 1024);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// Heap bytes currently allocated (block headers included), across all processes.
    ///
    /// ```
    /// let arena = procman_shm::Arena::create(4096)?;
    /// assert_eq!(arena.used_bytes(), 0);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn used_bytes(&self) -> u64 {
        self.inner.u64_at(H_USED).load(Ordering::Relaxed)
    }

    /// Number of live objects (allocated blocks), across all processes.
    ///
    /// ```
    /// let arena = procman_shm::Arena::create(4096)?;
    /// let lock = procman_shm::Lock::new_in(&arena)?;
    /// assert_eq!(arena.live_objects(), 1);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn live_objects(&self) -> u64 {
        self.inner.u64_at(H_BLOCKS).load(Ordering::Relaxed)
    }

    /// Whether two handles refer to the same arena.
    ///
    /// ```
    /// let a = procman_shm::Arena::create(4096)?;
    /// assert!(a.same_arena(&a.clone()));
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn same_arena(&self, other: &Arena) -> bool {
        self.inner.id == other.inner.id
    }

    /// `(arena id, our pid, our fd)` for a serialized handle.
    pub(crate) fn locator(&self) -> (u128, u32, i32) {
        (self.inner.id, std::process::id(), self.inner.file.as_raw_fd())
    }

    /// Finds the arena `id` in this process, or maps it through `/proc/<pid>/fd/<fd>`.
    pub(crate) fn open(id: u128, pid: u32, fd: i32) -> Result<Arena> {
        let mut reg = registry();
        if let Some(inner) = reg.get(&id).and_then(Weak::upgrade) {
            return Ok(Arena { inner });
        }
        let err = |source| ShmError::ArenaUnavailable { arena_id: id, pid, fd, source };
        let path = format!("/proc/{pid}/fd/{fd}");
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        if len < HEADER_SIZE {
            return Err(err(io::Error::other(format!("{path} is not a procman arena (only {len} bytes)"))));
        }
        let map = MmapOptions::new().len(len as usize).map_raw(&file).map_err(err)?;
        let mut inner = ArenaInner { map, file, id, capacity: 0, len };
        let magic = inner.u64_at(H_MAGIC).load(Ordering::Acquire);
        let version = inner.u64_at(H_VERSION).load(Ordering::Relaxed);
        let found_id = u128::from(inner.u64_at(H_ID_LO).load(Ordering::Relaxed))
            | (u128::from(inner.u64_at(H_ID_HI).load(Ordering::Relaxed)) << 64);
        let capacity = inner.u64_at(H_CAPACITY).load(Ordering::Relaxed);
        let problem = if magic != MAGIC {
            Some(format!("{path} is not a procman arena (bad magic)"))
        } else if version != VERSION {
            Some(format!("arena version {version}, this build expects {VERSION}"))
        } else if found_id != id {
            Some(format!("{path} holds arena {found_id:032x}, not {id:032x} (descriptor reused?)"))
        } else if HEADER_SIZE + capacity > len {
            Some(format!("arena header claims {capacity} bytes, file has {len}"))
        } else {
            None
        };
        if let Some(p) = problem {
            // Not registered: make the Drop impl leave the registry alone, and run it only after
            // the registry lock is released (it takes that lock).
            inner.id = !id;
            drop(reg);
            drop(inner);
            return Err(err(io::Error::other(p)));
        }
        inner.capacity = capacity;
        let inner = Arc::new(inner);
        reg.insert(id, Arc::downgrade(&inner));
        Ok(Arena { inner })
    }

    fn alloc_block(&self, need: u64) -> Result<u64> {
        let a = &*self.inner;
        let lock = a.alloc_lock();
        // A dead holder may have left the free list half-updated; the update order below makes
        // that a leak at worst, so carrying on is the right thing.
        let _ = lock.lock(true, None);
        let result = (|| {
            let mut prev: u64 = 0;
            let mut cur = a.u64_at(H_FREE_HEAD).load(Ordering::Relaxed);
            while cur != 0 {
                if !a.plausible_block(cur) || cur <= prev {
                    break; // corrupt list: treat as exhausted
                }
                let size = a.u64_at(cur + B_SIZE).load(Ordering::Relaxed);
                let next = a.u64_at(cur + B_NEXT_FREE).load(Ordering::Relaxed);
                if size >= need {
                    let (taken, replacement) = if size - need >= MIN_SPLIT {
                        let rest = cur + need;
                        a.u64_at(rest + B_SIZE).store(size - need, Ordering::Relaxed);
                        a.u64_at(rest + B_NEXT_FREE).store(next, Ordering::Relaxed);
                        a.u64_at(rest + B_STATE).store(STATE_FREE, Ordering::Relaxed);
                        (need, rest)
                    } else {
                        (size, next)
                    };
                    // The single store that commits the allocation.
                    let link = if prev == 0 { H_FREE_HEAD } else { prev + B_NEXT_FREE };
                    a.u64_at(link).store(replacement, Ordering::Relaxed);
                    a.u64_at(cur + B_SIZE).store(taken, Ordering::Relaxed);
                    a.u64_at(cur + B_STATE).store(STATE_USED, Ordering::Relaxed);
                    a.u64_at(H_USED).fetch_add(taken, Ordering::Relaxed);
                    a.u64_at(H_BLOCKS).fetch_add(1, Ordering::Relaxed);
                    return Some(cur);
                }
                prev = cur;
                cur = next;
            }
            None
        })();
        let _ = lock.unlock();
        result.ok_or(ShmError::OutOfMemory { requested: need, capacity: a.capacity })
    }

    fn free_block(&self, off: u64) {
        let a = &*self.inner;
        let lock = a.alloc_lock();
        let _ = lock.lock(true, None);
        let size = a.u64_at(off + B_SIZE).load(Ordering::Relaxed);
        // Find the free neighbours (the list is sorted by offset).
        let mut prev: u64 = 0;
        let mut next = a.u64_at(H_FREE_HEAD).load(Ordering::Relaxed);
        while next != 0 && next < off && a.plausible_block(next) {
            prev = next;
            next = a.u64_at(next + B_NEXT_FREE).load(Ordering::Relaxed);
        }
        let mut start = off;
        let mut merged = size;
        let mut after = next;
        if next != 0 && off + size == next {
            merged += a.u64_at(next + B_SIZE).load(Ordering::Relaxed);
            after = a.u64_at(next + B_NEXT_FREE).load(Ordering::Relaxed);
        }
        if prev != 0 && prev + a.u64_at(prev + B_SIZE).load(Ordering::Relaxed) == off {
            start = prev;
            merged += a.u64_at(prev + B_SIZE).load(Ordering::Relaxed);
            // Unlink first, grow second: dying in between only leaks the freed space.
            a.u64_at(prev + B_NEXT_FREE).store(after, Ordering::Relaxed);
            a.u64_at(prev + B_SIZE).store(merged, Ordering::Relaxed);
        } else {
            a.u64_at(start + B_SIZE).store(merged, Ordering::Relaxed);
            a.u64_at(start + B_NEXT_FREE).store(after, Ordering::Relaxed);
            a.u64_at(start + B_STATE).store(STATE_FREE, Ordering::Relaxed);
            let link = if prev == 0 { H_FREE_HEAD } else { prev + B_NEXT_FREE };
            a.u64_at(link).store(start, Ordering::Relaxed);
        }
        if start != off {
            a.u64_at(off + B_STATE).store(STATE_FREE, Ordering::Relaxed);
        }
        a.u64_at(H_USED).fetch_sub(size, Ordering::Relaxed);
        a.u64_at(H_BLOCKS).fetch_sub(1, Ordering::Relaxed);
        let _ = lock.unlock();
    }
}

/// What kind of object a block holds; checked when a handle is deserialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kind(pub(crate) u64);

impl Kind {
    /// `class` identifies the handle type, `size`/`align` its element type.
    pub(crate) const fn new(class: u8, size: usize, align: usize) -> Kind {
        Kind(((class as u64) << 56) | ((size as u64 & 0x00ff_ffff_ffff) << 8) | (align as u64 & 0xff))
    }
}

/// A counted reference to one object's block. Clone increments the block's refcount, drop
/// decrements it and frees the block at zero, in whichever process that happens.
///
/// The block's address in this process and its area sizes are cached, so the hot paths
/// (`SharedValue::get`, `Lock::acquire`) are a pointer offset and a bounds comparison away from
/// the atomic they use.
pub(crate) struct Block {
    arena: Arena,
    offset: u64,
    /// Start of the block in this process's mapping (kept alive by `arena`).
    base: NonNull<u8>,
    atomic_words: u64,
    locked_len: u64,
}

// SAFETY: `base` points into the mapping owned by `arena` (an `Arc`, itself Send + Sync), which
// outlives the `Block`. Through it the block is only accessed with atomics or with copies under
// the block's process-shared lock (see the module docs), both of which are sound from any thread.
unsafe impl Send for Block {}
// SAFETY: as for `Send`: all shared access goes through atomics or the block's lock.
unsafe impl Sync for Block {}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("arena", &format_args!("{:032x}", self.arena.inner.id))
            .field("offset", &self.offset)
            .finish()
    }
}

/// Bytes used by a block with these areas (header included).
fn block_bytes(atomic_words: u64, locked_len: u64) -> Option<u64> {
    BLOCK_ALIGN.checked_add(round_up(atomic_words * 8, BLOCK_ALIGN))?.checked_add(round_up(locked_len, BLOCK_ALIGN))
}

impl Block {
    fn at(arena: Arena, offset: u64) -> Block {
        let a = &*arena.inner;
        let areas = a.u64_at(offset + B_AREAS).load(Ordering::Relaxed);
        let (atomic_words, locked_len) = (areas >> 48, areas & ((1 << 48) - 1));
        // Callers checked that the block lies in the heap with room for its areas.
        debug_assert!(block_bytes(atomic_words, locked_len).is_some_and(|n| offset + n <= a.len));
        // SAFETY: `offset` is inside the mapping (checked by the callers: a block of the heap),
        // so the result is in bounds of the same allocation and non-null.
        let base = unsafe { NonNull::new_unchecked(a.map.as_mut_ptr().add(offset as usize)) };
        Block { arena, offset, base, atomic_words, locked_len }
    }

    /// Allocates a zeroed block with `atomic_words` u64 slots and a locked area of `locked_len`
    /// bytes (aligned to 64), refcount 1.
    pub(crate) fn alloc(arena: &Arena, kind: Kind, atomic_words: usize, locked_len: usize) -> Result<Block> {
        assert!(atomic_words < 1 << 16, "too many atomic words");
        // Every block has at least one atomic slot, so `first_word` needs no bounds check.
        let atomic_words = atomic_words.max(1);
        let locked = locked_len as u64;
        let too_big = || ShmError::OutOfMemory { requested: locked, capacity: arena.capacity() };
        if locked >= 1 << 48 {
            return Err(too_big());
        }
        let need = block_bytes(atomic_words as u64, locked).ok_or_else(too_big)?;
        let off = arena.alloc_block(need)?;
        let a = &*arena.inner;
        let data_start = off + BLOCK_ALIGN;
        let data_len = a.u64_at(off + B_SIZE).load(Ordering::Relaxed) - BLOCK_ALIGN;
        // SAFETY: [data_start, data_start + data_len) lies inside the mapping (the block is in the
        // heap) and belongs to a block that was just allocated under the allocator lock: no
        // handle to it exists in any process, so nothing else reads or writes these bytes. The
        // allocator lock's acquire/release ordering makes the previous owner's accesses happen
        // before this write.
        unsafe {
            std::ptr::write_bytes(a.map.as_mut_ptr().add(data_start as usize), 0, data_len as usize);
        }
        a.u64_at(off + B_NEXT_FREE).store(0, Ordering::Relaxed);
        a.u64_at(off + B_KIND).store(kind.0, Ordering::Relaxed);
        a.u64_at(off + B_AREAS).store(((atomic_words as u64) << 48) | locked, Ordering::Relaxed);
        RawLock::new(a.u32_at(off + B_LOCK_WORD), a.u32_at(off + B_LOCK_PID), a.u64_at(off + B_LOCK_META)).init();
        // Release: a process that adopts this block through a handle sees it initialized.
        a.u64_at(off + B_REFCOUNT).store(1, Ordering::Release);
        Ok(Block::at(arena.clone(), off))
    }

    /// Adopts a reference carried by a serialized handle (no increment), after checking that the
    /// offset names a live block of kind `kind`.
    pub(crate) fn adopt(arena: Arena, offset: u64, kind: Kind) -> std::result::Result<Block, &'static str> {
        let a = &*arena.inner;
        if !a.plausible_block(offset) {
            return Err("offset is not a block of the arena");
        }
        if a.u64_at(offset + B_STATE).load(Ordering::Relaxed) != STATE_USED {
            return Err("block is not allocated");
        }
        if a.u64_at(offset + B_KIND).load(Ordering::Relaxed) != kind.0 {
            return Err("block holds an object of another type");
        }
        if a.u64_at(offset + B_REFCOUNT).load(Ordering::Acquire) == 0 {
            return Err("block has no references");
        }
        let size = a.u64_at(offset + B_SIZE).load(Ordering::Relaxed);
        let areas = a.u64_at(offset + B_AREAS).load(Ordering::Relaxed);
        let fits = block_bytes(areas >> 48, areas & ((1 << 48) - 1))
            .is_some_and(|n| n <= size && offset.checked_add(size).is_some_and(|end| end <= a.heap_end()));
        if !fits || areas >> 48 == 0 {
            return Err("block header is corrupt");
        }
        Ok(Block::at(arena, offset))
    }

    /// Adds the reference a serialized handle carries to its receiver.
    pub(crate) fn add_transit_reference(&self) {
        self.refcount().fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn arena(&self) -> &Arena {
        &self.arena
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// `&AtomicU64` at byte `off` of the block (header or atomic area).
    #[inline]
    fn word64(&self, off: u64) -> &AtomicU64 {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= BLOCK_ALIGN + 8 * self.atomic_words);
        // SAFETY: callers pass a header field offset, an atomic-area offset checked against
        // `atomic_words`, or slot 0 (every block has it: `alloc` and `adopt` ensure
        // `atomic_words >= 1`); the block (header + areas) lies inside the mapping, which `self.arena`
        // keeps alive for the lifetime of the returned reference. The address is 8-aligned
        // (blocks are 64-aligned in a page-aligned mapping). These bytes are only ever accessed
        // atomically, in every process (module docs), and any bit pattern is a valid `AtomicU64`.
        unsafe { &*self.base.as_ptr().add(off as usize).cast::<AtomicU64>() }
    }

    /// `&AtomicU32` at byte `off` of the block (header or atomic area).
    #[inline]
    fn word32(&self, off: u64) -> &AtomicU32 {
        debug_assert!(off.is_multiple_of(4) && off + 4 <= BLOCK_ALIGN + 8 * self.atomic_words);
        // SAFETY: as in `word64`, with 4-byte size and alignment.
        unsafe { &*self.base.as_ptr().add(off as usize).cast::<AtomicU32>() }
    }

    fn refcount(&self) -> &AtomicU64 {
        self.word64(B_REFCOUNT)
    }

    /// Current reference count (all processes, handles in transit included).
    pub(crate) fn ref_count(&self) -> u64 {
        self.refcount().load(Ordering::Relaxed)
    }

    /// Slot `i` of the atomic area as a u64.
    #[inline]
    pub(crate) fn atomic_u64(&self, i: usize) -> &AtomicU64 {
        assert!((i as u64) < self.atomic_words, "atomic slot {i} out of range");
        self.word64(BLOCK_ALIGN + 8 * i as u64)
    }

    /// Slot 0 of the atomic area (every block has one): [`Self::atomic_u64`]`(0)` without the
    /// bounds check, for the word-sized `SharedValue` hot path.
    #[inline]
    pub(crate) fn first_word(&self) -> &AtomicU64 {
        self.word64(BLOCK_ALIGN)
    }

    /// Half-slot `i` of the atomic area as a u32 (slot `i / 2`, low or high half in memory order).
    #[inline]
    pub(crate) fn atomic_u32(&self, i: usize) -> &AtomicU32 {
        assert!((i as u64) < 2 * self.atomic_words, "atomic half-slot {i} out of range");
        self.word32(BLOCK_ALIGN + 4 * i as u64)
    }

    /// The block's own lock. Only for blocks without a locked area (for those the lock belongs to
    /// their [`DataGuard`]s); used by `Lock`, `RLock` and `Condition`.
    #[inline]
    pub(crate) fn raw_lock(&self) -> RawLock<'_> {
        assert_eq!(self.locked_len, 0, "raw_lock on a block with a locked area");
        self.block_lock()
    }

    #[inline]
    fn block_lock(&self) -> RawLock<'_> {
        RawLock::new(self.word32(B_LOCK_WORD), self.word32(B_LOCK_PID), self.word64(B_LOCK_META))
    }

    /// Length of the locked area.
    pub(crate) fn locked_len(&self) -> usize {
        self.locked_len as usize
    }

    /// Takes the block's lock and returns access to the locked area, or `None` if the deadline
    /// passed (or `blocking` is false and the lock is busy). The flag is `Some(pid)` if the
    /// previous holder, of process `pid`, died holding the lock.
    #[inline]
    pub(crate) fn lock_data(&self, blocking: bool, deadline: Option<Instant>) -> Option<(DataGuard<'_>, Option<u32>)> {
        let lock = self.block_lock();
        let abandoned = match lock.lock(blocking, deadline) {
            Acquire::Acquired => None,
            Acquire::Abandoned { pid, .. } => Some(pid),
            Acquire::TimedOut => return None,
        };
        let start = BLOCK_ALIGN + round_up(self.atomic_words * 8, BLOCK_ALIGN);
        Some((
            DataGuard {
                block: self,
                // SAFETY: the locked area starts `start` bytes into the block and lies inside the
                // mapping, which outlives the guard (the guard borrows the block, which holds the
                // arena).
                base: unsafe { self.base.as_ptr().add(start as usize) },
                len: self.locked_len as usize,
            },
            abandoned,
        ))
    }

    /// Like [`Self::lock_data`] blocking without deadline.
    #[inline]
    pub(crate) fn lock_data_blocking(&self) -> DataGuard<'_> {
        match self.lock_data(true, None) {
            Some((g, _)) => g,
            None => unreachable!("a blocking lock without deadline always succeeds"),
        }
    }
}

impl Clone for Block {
    fn clone(&self) -> Self {
        let old = self.refcount().fetch_add(1, Ordering::Relaxed);
        if old > i64::MAX as u64 {
            std::process::abort(); // as Arc does: overflow would free a live block
        }
        Block { arena: self.arena.clone(), ..*self }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.refcount().fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            self.arena.free_block(self.offset);
        }
    }
}

/// Exclusive access to a block's locked area, for as long as the block's lock is held.
/// Dropping the guard releases the lock.
pub(crate) struct DataGuard<'a> {
    block: &'a Block,
    base: *mut u8,
    len: usize,
}

impl fmt::Debug for DataGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataGuard").field("block", self.block).field("len", &self.len).finish()
    }
}

impl DataGuard<'_> {
    fn check(&self, off: usize, n: usize) {
        assert!(
            off.checked_add(n).is_some_and(|end| end <= self.len),
            "locked-area access {off}+{n} out of bounds ({})",
            self.len
        );
    }

    /// Copies `dst.len()` bytes from offset `off` of the locked area.
    pub(crate) fn read(&self, off: usize, dst: &mut [u8]) {
        self.check(off, dst.len());
        // SAFETY: the range is inside the locked area (checked), which lies inside the live
        // mapping. The block's lock is held by this guard and every access to locked areas, in
        // every process, happens under that lock, so nothing writes these bytes concurrently.
        // `dst` is a distinct Rust buffer, so the regions do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off), dst.as_mut_ptr(), dst.len()) }
    }

    /// Copies `src` to offset `off` of the locked area.
    pub(crate) fn write(&mut self, off: usize, src: &[u8]) {
        self.check(off, src.len());
        // SAFETY: as in `read`: in bounds, exclusive under the block's lock, no overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.add(off), src.len()) }
    }

    /// Reads a plain value at `off` (any alignment).
    pub(crate) fn read_pod<T: bytemuck::Pod>(&self, off: usize) -> T {
        let mut v = T::zeroed();
        self.read(off, bytemuck::bytes_of_mut(&mut v));
        v
    }

    /// Writes a plain value at `off`.
    pub(crate) fn write_pod<T: bytemuck::Pod>(&mut self, off: usize, v: &T) {
        self.write(off, bytemuck::bytes_of(v));
    }

    /// Copies `dst.len()` elements starting at byte offset `off`.
    pub(crate) fn read_slice<T: bytemuck::Pod>(&self, off: usize, dst: &mut [T]) {
        self.read(off, bytemuck::cast_slice_mut(dst));
    }

    /// Copies `src` to byte offset `off`.
    pub(crate) fn write_slice<T: bytemuck::Pod>(&mut self, off: usize, src: &[T]) {
        self.write(off, bytemuck::cast_slice(src));
    }
}

impl Drop for DataGuard<'_> {
    fn drop(&mut self) {
        let _ = self.block.block_lock().unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: Kind = Kind::new(200, 1, 1);

    #[test]
    fn allocator_reuses_and_coalesces() {
        let arena = Arena::create(64 * 64).unwrap();
        let blocks: Vec<_> = (0..8).map(|_| Block::alloc(&arena, K, 1, 64 * 3).unwrap()).collect();
        // 8 blocks of 64 (header) + 64 (atomic) + 192 (locked) = 320 bytes = 2560 of 4096.
        assert_eq!(arena.used_bytes(), 8 * 320);
        assert!(matches!(Block::alloc(&arena, K, 1, 4096), Err(ShmError::OutOfMemory { capacity: 4096, .. })));
        let offsets: Vec<u64> = blocks.iter().map(Block::offset).collect();
        drop(blocks);
        assert_eq!(arena.used_bytes(), 0);
        assert_eq!(arena.live_objects(), 0);
        // Everything coalesced back into one free block: the whole heap is allocatable again.
        let big = Block::alloc(&arena, K, 1, 4096 - 128).unwrap();
        assert_eq!(big.offset(), offsets[0]);
        drop(big);
        // Free in a scattered order, then reuse.
        let blocks: Vec<_> = (0..8).map(|_| Block::alloc(&arena, K, 1, 64 * 3).unwrap()).collect();
        let (even, odd): (Vec<_>, Vec<_>) = blocks.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        drop(odd);
        let again = Block::alloc(&arena, K, 1, 64 * 3).unwrap();
        assert_eq!(again.offset(), offsets[1]);
        drop(even);
        drop(again);
        assert_eq!(arena.used_bytes(), 0);
        let big = Block::alloc(&arena, K, 1, 4096 - 128).unwrap();
        assert_eq!(big.offset(), offsets[0]);
    }

    #[test]
    fn refcount_frees_at_zero_and_adopt_checks_kind() {
        let arena = Arena::create(4096).unwrap();
        let b = Block::alloc(&arena, K, 2, 0).unwrap();
        let c = b.clone();
        assert_eq!(b.ref_count(), 2);
        drop(c);
        b.add_transit_reference();
        let adopted = Block::adopt(arena.clone(), b.offset(), K).unwrap();
        assert_eq!(adopted.ref_count(), 2);
        assert!(Block::adopt(arena.clone(), b.offset(), Kind::new(201, 1, 1)).is_err());
        assert!(Block::adopt(arena.clone(), b.offset() + 64, K).is_err());
        drop(adopted);
        drop(b);
        assert_eq!(arena.live_objects(), 0);
    }

    #[test]
    fn open_by_locator_uses_registry() {
        let arena = Arena::create(4096).unwrap();
        let (id, pid, fd) = arena.locator();
        let again = Arena::open(id, pid, fd).unwrap();
        assert!(Arc::ptr_eq(&arena.inner, &again.inner));
        // Unknown id through our own fd: the header names a different arena.
        let err = Arena::open(id ^ 1, pid, fd).unwrap_err();
        assert!(matches!(err, ShmError::ArenaUnavailable { .. }), "{err}");
        assert!(err.to_string().contains("not"), "{err}");
        let err = Arena::open(5, pid, 9999).unwrap_err();
        assert!(err.to_string().contains("/proc/"), "{err}");
    }
}
