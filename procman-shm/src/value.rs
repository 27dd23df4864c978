//! Plain-data objects in the arena: [`SharedValue`], [`SharedStruct`], [`SharedArray`], and the
//! fixed-capacity string [`FixedStr`].

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::Ordering;

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::arena::{Arena, Block, Kind};
use crate::error::{Result, ShmError};
use crate::handle::{deserialize_block, serialize_block, short_type_name};

pub(crate) const CLASS_VALUE: u8 = 1;
pub(crate) const CLASS_STRUCT: u8 = 2;
pub(crate) const CLASS_ARRAY: u8 = 3;

/// A fixed-capacity UTF-8 string of at most `N` bytes, stored inline (4-byte length + `N` bytes),
/// so it is plain data that can live in shared memory: the spec's `'256p'` format is
/// `SharedValue<FixedStr<256>>`.
///
/// ```
/// use procman_shm::FixedStr;
///
/// let s = FixedStr::<8>::new("hello")?;
/// assert_eq!(s.as_str(), "hello");
/// assert_eq!(format!("{s:?}"), "\"hello\"");
/// assert!(FixedStr::<4>::new("hello").is_err());
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FixedStr<const N: usize> {
    /// Length in bytes, little-endian (a byte array keeps the type free of padding at any `N`).
    len: [u8; 4],
    bytes: [u8; N],
}

// SAFETY: `FixedStr<N>` is `repr(C)` with fields `[u8; 4]` and `[u8; N]`: alignment 1, size
// `4 + N`, no padding; the all-zero bit pattern is a valid value (the empty string).
unsafe impl<const N: usize> Zeroable for FixedStr<N> {}
// SAFETY: as above there is no padding and every bit pattern is a valid value: the fields are
// byte arrays, and `as_str` copes with any length or byte content (it clamps the length to `N`
// and stops at the first invalid UTF-8 sequence). The type is `Copy` and `'static`.
unsafe impl<const N: usize> Pod for FixedStr<N> {}

impl<const N: usize> FixedStr<N> {
    /// The capacity `N` in bytes.
    ///
    /// ```
    /// assert_eq!(procman_shm::FixedStr::<256>::CAPACITY, 256);
    /// ```
    pub const CAPACITY: usize = N;

    /// Copies `s`; [`ShmError::StringTooLong`] if it has more than `N` bytes.
    ///
    /// ```
    /// let s = procman_shm::FixedStr::<16>::new("goodbye")?;
    /// assert_eq!(s.len(), 7);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new(s: &str) -> Result<Self> {
        if s.len() > N || s.len() > u32::MAX as usize {
            return Err(ShmError::StringTooLong { len: s.len(), capacity: N });
        }
        let mut out = Self::zeroed();
        out.bytes[..s.len()].copy_from_slice(s.as_bytes());
        out.len = (s.len() as u32).to_le_bytes();
        Ok(out)
    }

    /// The string. (Bytes written by anything other than [`FixedStr::new`] are read up to the
    /// capacity and the first invalid UTF-8 sequence.)
    ///
    /// ```
    /// assert_eq!(procman_shm::FixedStr::<8>::new("hi")?.as_str(), "hi");
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        let n = (u32::from_le_bytes(self.len) as usize).min(N);
        match std::str::from_utf8(&self.bytes[..n]) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&self.bytes[..e.valid_up_to()]).unwrap_or_default(),
        }
    }

    /// Length in bytes.
    ///
    /// ```
    /// assert_eq!(procman_shm::FixedStr::<8>::new("héllo")?.len(), 6);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    /// Whether the string is empty.
    ///
    /// ```
    /// assert!(procman_shm::FixedStr::<8>::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> PartialEq for FixedStr<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<const N: usize> Eq for FixedStr<N> {}

impl<const N: usize> std::hash::Hash for FixedStr<N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl<const N: usize> PartialEq<str> for FixedStr<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<&str> for FixedStr<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<const N: usize> TryFrom<&str> for FixedStr<N> {
    type Error = ShmError;
    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl<const N: usize> std::ops::Deref for FixedStr<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Storage of one plain value: a single atomic word when it fits in 8 bytes, otherwise bytes
/// copied under the block's lock.
struct Slot<T> {
    block: Block,
    _t: PhantomData<T>,
}

impl<T: Pod> Slot<T> {
    const WORD: bool = size_of::<T>() <= 8;

    fn new_in(arena: &Arena, kind: Kind, v: T) -> Result<Self> {
        let block =
            if Self::WORD { Block::alloc(arena, kind, 1, 0)? } else { Block::alloc(arena, kind, 0, size_of::<T>())? };
        let slot = Slot { block, _t: PhantomData };
        slot.set(v);
        Ok(slot)
    }

    #[inline]
    fn get(&self) -> T {
        if Self::WORD {
            let bits = self.block.first_word().load(Ordering::Acquire);
            bytemuck::pod_read_unaligned(&bits.to_ne_bytes()[..size_of::<T>()])
        } else {
            self.block.lock_data_blocking().read_pod(0)
        }
    }

    #[inline]
    fn set(&self, v: T) {
        if Self::WORD {
            let mut bytes = [0u8; 8];
            bytes[..size_of::<T>()].copy_from_slice(bytemuck::bytes_of(&v));
            self.block.first_word().store(u64::from_ne_bytes(bytes), Ordering::Release);
        } else {
            self.block.lock_data_blocking().write_pod(0, &v);
        }
    }

    fn swap(&self, v: T) -> T {
        if Self::WORD {
            let mut bytes = [0u8; 8];
            bytes[..size_of::<T>()].copy_from_slice(bytemuck::bytes_of(&v));
            let old = self.block.atomic_u64(0).swap(u64::from_ne_bytes(bytes), Ordering::AcqRel);
            bytemuck::pod_read_unaligned(&old.to_ne_bytes()[..size_of::<T>()])
        } else {
            let mut g = self.block.lock_data_blocking();
            let old = g.read_pod(0);
            g.write_pod(0, &v);
            old
        }
    }
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot { block: self.block.clone(), _t: PhantomData }
    }
}

macro_rules! value_handle {
    ($name:ident, $class:expr, $doc_example:literal) => {
        impl<T: Pod> $name<T> {
            const KIND: Kind = Kind::new($class, size_of::<T>(), align_of::<T>());

            /// Allocates the object in `arena`, initialized to `v`.
            ///
            /// Fails with [`ShmError::OutOfMemory`] if the arena is full.
            #[doc = $doc_example]
            pub fn new_in(arena: &Arena, v: T) -> Result<Self> {
                Ok(Self { slot: Slot::new_in(arena, Self::KIND, v)? })
            }

            /// Reads the current value.
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let v = procman_shm::", stringify!($name), "::new_in(&arena, 3u16)?;")]
            /// assert_eq!(v.get(), 3);
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            #[inline]
            pub fn get(&self) -> T {
                self.slot.get()
            }

            /// Replaces the value; every process sees the new value on its next `get`.
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let v = procman_shm::", stringify!($name), "::new_in(&arena, 3u16)?;")]
            /// v.set(4);
            /// assert_eq!(v.get(), 4);
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            #[inline]
            pub fn set(&self, v: T) {
                self.slot.set(v)
            }

            /// Alias of [`Self::get`] (the spec's `value` property).
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let v = procman_shm::", stringify!($name), "::new_in(&arena, 1u8)?;")]
            /// assert_eq!(v.value(), 1);
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            pub fn value(&self) -> T {
                self.get()
            }

            /// Alias of [`Self::set`] (assigning the spec's `value` property).
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let v = procman_shm::", stringify!($name), "::new_in(&arena, 1u8)?;")]
            /// v.set_value(2);
            /// assert_eq!(v.value(), 2);
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            pub fn set_value(&self, v: T) {
                self.set(v)
            }

            /// Stores `v` and returns the previous value, atomically.
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let v = procman_shm::", stringify!($name), "::new_in(&arena, 1u32)?;")]
            /// assert_eq!(v.swap(5), 1);
            /// assert_eq!(v.get(), 5);
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            pub fn swap(&self, v: T) -> T {
                self.slot.swap(v)
            }

            /// Number of handles to this object in all processes (serialized ones included).
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let v = procman_shm::", stringify!($name), "::new_in(&arena, 1u32)?;")]
            /// let w = v.clone();
            /// assert_eq!(v.ref_count(), 2);
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            pub fn ref_count(&self) -> u64 {
                self.slot.block.ref_count()
            }

            /// The arena the object lives in.
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let v = procman_shm::", stringify!($name), "::new_in(&arena, 1u32)?;")]
            /// assert!(v.arena().same_arena(&arena));
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            pub fn arena(&self) -> &Arena {
                self.slot.block.arena()
            }
        }

        impl<T> Clone for $name<T> {
            /// Another handle to the same object (increments its reference count).
            fn clone(&self) -> Self {
                Self { slot: self.slot.clone() }
            }
        }

        impl<T: Pod + fmt::Debug> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "<{}>({:?})"), short_type_name::<T>(), self.get())
            }
        }

        impl<T> Serialize for $name<T> {
            /// Serializes the handle and adds the reference its receiver adopts; deserialize each
            /// serialized copy exactly once.
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                serialize_block(&self.slot.block, s)
            }
        }

        impl<'de, T: Pod> Deserialize<'de> for $name<T> {
            /// Maps the arena if needed and adopts the serialized reference.
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let block = deserialize_block(d, Self::KIND, || {
                    format!(concat!(stringify!($name), "<{}>"), short_type_name::<T>())
                })?;
                Ok(Self { slot: Slot { block, _t: PhantomData } })
            }
        }
    };
}

/// A plain value (`T: Pod`) in shared memory, readable and writable from every process holding a
/// handle.
///
/// Values of at most 8 bytes are one atomic word (`get` is an acquire load, `set` a release
/// store); larger ones are copied under the object's process-shared lock, so a reader never sees
/// a torn value.
///
/// ```
/// use procman_shm::{Arena, FixedStr, SharedValue};
///
/// let arena = Arena::create(1 << 16)?;
/// let n = SharedValue::new_in(&arena, 5i64)?;
/// assert_eq!(format!("{n:?}"), "SharedValue<i64>(5)");
///
/// let s = SharedValue::new_in(&arena, FixedStr::<256>::new("hello")?)?;
/// assert_eq!(format!("{s:?}"), "SharedValue<FixedStr<256>>(\"hello\")");
/// s.set(FixedStr::new("goodbye")?);
/// assert_eq!(s.get(), "goodbye");
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct SharedValue<T> {
    slot: Slot<T>,
}

value_handle!(
    SharedValue,
    CLASS_VALUE,
    "```\nlet arena = procman_shm::Arena::create(4096)?;\nlet v = procman_shm::SharedValue::new_in(&arena, 1.5f64)?;\nassert_eq!(v.get(), 1.5);\n# Ok::<(), procman_shm::ShmError>(())\n```"
);

impl<const N: usize> SharedValue<FixedStr<N>> {
    /// Stores a string; [`ShmError::StringTooLong`] if it has more than `N` bytes.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// use procman_shm::{FixedStr, SharedValue};
    /// let s = SharedValue::new_in(&arena, FixedStr::<8>::new("a")?)?;
    /// s.set_str("bcd")?;
    /// assert_eq!(s.get_string(), "bcd");
    /// assert!(s.set_str("much too long").is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn set_str(&self, s: &str) -> Result<()> {
        self.set(FixedStr::new(s)?);
        Ok(())
    }

    /// The current string as an owned `String`.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let s = procman_shm::SharedValue::new_in(&arena, procman_shm::FixedStr::<8>::new("x")?)?;
    /// assert_eq!(s.get_string(), "x");
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn get_string(&self) -> String {
        self.get().as_str().to_owned()
    }
}

/// A `#[repr(C)]` plain struct in shared memory; the same API as [`SharedValue`], and the whole
/// struct is always read and written at once.
///
/// ```
/// use procman_shm::{Arena, SharedStruct, bytemuck};
///
/// #[repr(C)]
/// #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
/// struct Pair {
///     a: i16,
///     b: i16,
/// }
///
/// let arena = Arena::create(4096)?;
/// let s = SharedStruct::new_in(&arena, Pair { a: 0, b: 0 })?;
/// s.set(Pair { a: 1, b: 2 });
/// assert_eq!(format!("{s:?}"), "SharedStruct<Pair>(Pair { a: 1, b: 2 })");
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct SharedStruct<T> {
    slot: Slot<T>,
}

value_handle!(
    SharedStruct,
    CLASS_STRUCT,
    "```\nlet arena = procman_shm::Arena::create(4096)?;\nlet v = procman_shm::SharedStruct::new_in(&arena, [1u32, 2, 3])?;\nassert_eq!(v.get(), [1, 2, 3]);\n# Ok::<(), procman_shm::ShmError>(())\n```"
);

/// A fixed-length array of plain values in shared memory, like the spec's `SharedArray`.
///
/// Every access copies under the array's process-shared lock (one `memcpy` for bulk
/// operations), so each call sees and makes a consistent snapshot. Indices past the end are
/// [`ShmError::IndexOutOfRange`], never a panic.
///
/// ```
/// use procman_shm::{Arena, SharedArray};
///
/// let arena = Arena::create(4096)?;
/// let arr = SharedArray::new_in(&arena, &[0i32; 10])?;
/// arr.set_range(0, &[1, 2, 3, 4, 5])?; // arr[:5] = [1, 2, 3, 4, 5]
/// assert_eq!(format!("{arr:?}"), "SharedArray<i32>([1, 2, 3, 4, 5, 0, 0, 0, 0, 0])");
/// assert_eq!(arr.get_range(..3)?, vec![1, 2, 3]);
/// assert_eq!(&arr.bytes()[..8], &[1, 0, 0, 0, 2, 0, 0, 0]); // tostring(), little-endian
/// # Ok::<(), procman_shm::ShmError>(())
/// ```
pub struct SharedArray<T> {
    block: Block,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Pod> SharedArray<T> {
    const KIND: Kind = Kind::new(CLASS_ARRAY, size_of::<T>(), align_of::<T>());

    /// Allocates an array holding a copy of `values`.
    ///
    /// Fails with [`ShmError::OutOfMemory`] if the arena is full.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[1u8, 2, 3])?;
    /// assert_eq!(arr.len(), 3);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn new_in(arena: &Arena, values: &[T]) -> Result<Self> {
        let bytes = size_of_val(values);
        let block = Block::alloc(arena, Self::KIND, 1, bytes)?;
        block.atomic_u64(0).store(values.len() as u64, Ordering::Relaxed);
        block.lock_data_blocking().write_slice(0, values);
        Ok(Self { block, len: values.len(), _t: PhantomData })
    }

    /// Allocates an array of the iterator's items.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::from_iter_in(&arena, 0..5u64)?;
    /// assert_eq!(arr.to_vec(), vec![0, 1, 2, 3, 4]);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn from_iter_in(arena: &Arena, iter: impl IntoIterator<Item = T>) -> Result<Self> {
        let v: Vec<T> = iter.into_iter().collect();
        Self::new_in(arena, &v)
    }

    /// Number of elements (fixed at creation).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert_eq!(procman_shm::SharedArray::new_in(&arena, &[0f32; 4])?.len(), 4);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// assert!(procman_shm::SharedArray::<u8>::new_in(&arena, &[])?.is_empty());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check_index(&self, index: usize) -> Result<()> {
        if index < self.len { Ok(()) } else { Err(ShmError::IndexOutOfRange { index, len: self.len }) }
    }

    /// Element `index`; [`ShmError::IndexOutOfRange`] past the end.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[7i32, 8])?;
    /// assert_eq!(arr.get(1)?, 8);
    /// assert!(arr.get(2).is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn get(&self, index: usize) -> Result<T> {
        self.check_index(index)?;
        Ok(self.block.lock_data_blocking().read_pod(index * size_of::<T>()))
    }

    /// Sets element `index`; [`ShmError::IndexOutOfRange`] past the end.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[7i32, 8])?;
    /// arr.set(0, 9)?;
    /// assert_eq!(arr.to_vec(), vec![9, 8]);
    /// assert!(arr.set(5, 1).is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn set(&self, index: usize, v: T) -> Result<()> {
        self.check_index(index)?;
        self.block.lock_data_blocking().write_pod(index * size_of::<T>(), &v);
        Ok(())
    }

    fn bounds(&self, range: impl RangeBounds<usize>) -> Result<(usize, usize)> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => self.len,
        };
        if end > self.len {
            return Err(ShmError::IndexOutOfRange { index: end - 1, len: self.len });
        }
        if start > end {
            return Err(ShmError::IndexOutOfRange { index: start, len: self.len });
        }
        Ok((start, end))
    }

    /// Copies the elements in `range` (the spec's `arr[a:b]`).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[1, 2, 3, 4])?;
    /// assert_eq!(arr.get_range(1..3)?, vec![2, 3]);
    /// assert!(arr.get_range(2..9).is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn get_range(&self, range: impl RangeBounds<usize>) -> Result<Vec<T>> {
        let (start, end) = self.bounds(range)?;
        let mut out = vec![T::zeroed(); end - start];
        self.block.lock_data_blocking().read_slice(start * size_of::<T>(), &mut out);
        Ok(out)
    }

    /// Overwrites `values.len()` elements starting at `start` (the spec's `arr[:5] = [...]`);
    /// [`ShmError::IndexOutOfRange`] if they do not fit, in which case nothing is written.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[0; 4])?;
    /// arr.set_range(2, &[5, 6])?;
    /// assert_eq!(arr.to_vec(), vec![0, 0, 5, 6]);
    /// assert!(arr.set_range(3, &[1, 2]).is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn set_range(&self, start: usize, values: &[T]) -> Result<()> {
        let end =
            start.checked_add(values.len()).ok_or(ShmError::IndexOutOfRange { index: usize::MAX, len: self.len })?;
        self.bounds(start..end)?;
        self.block.lock_data_blocking().write_slice(start * size_of::<T>(), values);
        Ok(())
    }

    /// All elements (the spec's `tolist()` / `arr[:]`).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[1u16, 2])?;
    /// assert_eq!(arr.to_vec(), vec![1, 2]);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        let mut out = vec![T::zeroed(); self.len];
        self.block.lock_data_blocking().read_slice(0, &mut out);
        out
    }

    /// Copies all elements into `dst`, which must have exactly [`Self::len`] elements
    /// ([`ShmError::LengthMismatch`] otherwise). One `memcpy` under the lock: the bulk path.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[1u16, 2])?;
    /// let mut buf = [0u16; 2];
    /// arr.read_into(&mut buf)?;
    /// assert_eq!(buf, [1, 2]);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn read_into(&self, dst: &mut [T]) -> Result<()> {
        if dst.len() != self.len {
            return Err(ShmError::LengthMismatch { expected: self.len, actual: dst.len() });
        }
        self.block.lock_data_blocking().read_slice(0, dst);
        Ok(())
    }

    /// Overwrites all elements from `src`, which must have exactly [`Self::len`] elements
    /// ([`ShmError::LengthMismatch`] otherwise). One `memcpy` under the lock.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[0u16; 2])?;
    /// arr.copy_from_slice(&[3, 4])?;
    /// assert_eq!(arr.to_vec(), vec![3, 4]);
    /// assert!(arr.copy_from_slice(&[1]).is_err());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn copy_from_slice(&self, src: &[T]) -> Result<()> {
        if src.len() != self.len {
            return Err(ShmError::LengthMismatch { expected: self.len, actual: src.len() });
        }
        self.block.lock_data_blocking().write_slice(0, src);
        Ok(())
    }

    /// The raw bytes of the elements in native byte order (the spec's `tostring()`).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[1u16, 2])?;
    /// assert_eq!(arr.bytes(), 1u16.to_ne_bytes().into_iter().chain(2u16.to_ne_bytes()).collect::<Vec<_>>());
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len * size_of::<T>()];
        self.block.lock_data_blocking().read(0, &mut out);
        out
    }

    /// Number of handles to this array in all processes (serialized ones included).
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[1u8])?;
    /// assert_eq!(arr.ref_count(), 1);
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn ref_count(&self) -> u64 {
        self.block.ref_count()
    }

    /// The arena the array lives in.
    ///
    /// ```
    /// # let arena = procman_shm::Arena::create(4096)?;
    /// let arr = procman_shm::SharedArray::new_in(&arena, &[1u8])?;
    /// assert!(arr.arena().same_arena(&arena));
    /// # Ok::<(), procman_shm::ShmError>(())
    /// ```
    pub fn arena(&self) -> &Arena {
        self.block.arena()
    }
}

impl<T> Clone for SharedArray<T> {
    /// Another handle to the same array (increments its reference count).
    fn clone(&self) -> Self {
        Self { block: self.block.clone(), len: self.len, _t: PhantomData }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for SharedArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedArray<{}>({:?})", short_type_name::<T>(), self.to_vec())
    }
}

impl<T> Serialize for SharedArray<T> {
    /// Serializes the handle and adds the reference its receiver adopts; deserialize each
    /// serialized copy exactly once.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_block(&self.block, s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for SharedArray<T> {
    /// Maps the arena if needed and adopts the serialized reference.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let block = deserialize_block(d, Self::KIND, || format!("SharedArray<{}>", short_type_name::<T>()))?;
        let len = block.atomic_u64(0).load(Ordering::Relaxed) as usize;
        let elem = size_of::<T>().max(1);
        if size_of::<T>() > 0 && len * elem > block.locked_len() {
            return Err(serde::de::Error::custom("corrupt SharedArray length"));
        }
        Ok(Self { block, len, _t: PhantomData })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
    struct Pair {
        a: i32,
        b: i32,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
    struct Big {
        xs: [u64; 5],
    }

    fn roundtrip<T: Serialize + for<'de> Deserialize<'de>>(v: &T) -> T {
        postcard::from_bytes(&postcard::to_allocvec(v).unwrap()).unwrap()
    }

    #[test]
    fn values_of_every_size() {
        let arena = Arena::create(1 << 16).unwrap();
        let a = SharedValue::new_in(&arena, 1u8).unwrap();
        let b = SharedValue::new_in(&arena, [1u8, 2, 3]).unwrap();
        let c = SharedValue::new_in(&arena, -5i64).unwrap();
        let d = SharedStruct::new_in(&arena, Pair { a: 1, b: 2 }).unwrap();
        let e = SharedStruct::new_in(&arena, Big { xs: [9; 5] }).unwrap();
        let f = SharedValue::new_in(&arena, u128::MAX).unwrap();
        assert_eq!((a.get(), b.get(), c.get()), (1, [1, 2, 3], -5));
        assert_eq!(d.get(), Pair { a: 1, b: 2 });
        assert_eq!(e.get(), Big { xs: [9; 5] });
        assert_eq!(f.get(), u128::MAX);
        b.set([4, 5, 6]);
        e.set(Big { xs: [1, 2, 3, 4, 5] });
        assert_eq!(b.get(), [4, 5, 6]);
        assert_eq!(e.swap(Big { xs: [0; 5] }).xs, [1, 2, 3, 4, 5]);
        assert_eq!(e.get().xs, [0; 5]);
        assert_eq!(format!("{d:?}"), "SharedStruct<Pair>(Pair { a: 1, b: 2 })");
        assert_eq!(format!("{f:?}"), format!("SharedValue<u128>({})", u128::MAX));
    }

    #[test]
    fn fixed_str_value_like_the_spec() {
        let arena = Arena::create(4096).unwrap();
        let s = SharedValue::new_in(&arena, FixedStr::<256>::new("hello").unwrap()).unwrap();
        assert_eq!(format!("{s:?}"), "SharedValue<FixedStr<256>>(\"hello\")");
        s.set_str("goodbye").unwrap();
        assert_eq!(format!("{s:?}"), "SharedValue<FixedStr<256>>(\"goodbye\")");
        let long = "x".repeat(257);
        assert!(matches!(s.set_str(&long), Err(ShmError::StringTooLong { len: 257, capacity: 256 })));
        assert_eq!(FixedStr::<256>::new(&long[..256]).unwrap().len(), 256);
        // Garbage bytes still read as a (truncated) str.
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&100u32.to_le_bytes());
        raw[4..].copy_from_slice(&[b'a', b'b', 0xff, b'c']);
        let g: FixedStr<4> = bytemuck::cast(raw);
        assert_eq!(g.as_str(), "ab");
    }

    #[test]
    fn arrays_index_and_bulk() {
        let arena = Arena::create(1 << 16).unwrap();
        let arr = SharedArray::new_in(&arena, &[0i32; 10]).unwrap();
        assert_eq!(format!("{arr:?}"), "SharedArray<i32>([0, 0, 0, 0, 0, 0, 0, 0, 0, 0])");
        arr.set_range(0, &[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(format!("{arr:?}"), "SharedArray<i32>([1, 2, 3, 4, 5, 0, 0, 0, 0, 0])");
        assert_eq!(arr.get_range(..).unwrap(), arr.to_vec());
        assert_eq!(arr.get_range(2..=3).unwrap(), vec![3, 4]);
        assert_eq!(&arr.bytes()[..12], &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
        assert!(matches!(arr.get(10), Err(ShmError::IndexOutOfRange { index: 10, len: 10 })));
        assert!(matches!(arr.set(usize::MAX, 1), Err(ShmError::IndexOutOfRange { .. })));
        assert!(arr.get_range(5..11).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = arr.get_range(6..5);
        assert!(reversed.is_err());
        assert!(arr.set_range(8, &[1, 2, 3]).is_err());
        assert!(arr.set_range(usize::MAX, &[1]).is_err());
        assert_eq!(arr.get(9).unwrap(), 0, "failed set_range wrote nothing");
        let mut buf = [0; 10];
        arr.read_into(&mut buf).unwrap();
        assert_eq!(buf[..5], [1, 2, 3, 4, 5]);
        assert!(arr.read_into(&mut [0; 3]).is_err());
        let empty = SharedArray::<u64>::new_in(&arena, &[]).unwrap();
        assert!(empty.is_empty() && empty.to_vec().is_empty());
        assert!(empty.get(0).is_err());
    }

    #[test]
    fn handles_refcount_and_serialize() {
        let arena = Arena::create(4096).unwrap();
        let v = SharedValue::new_in(&arena, 1u64).unwrap();
        let arr = SharedArray::new_in(&arena, &[1u8, 2]).unwrap();
        assert_eq!(arena.live_objects(), 2);
        let v2 = roundtrip(&v);
        let arr2 = roundtrip(&arr);
        assert_eq!(v.ref_count(), 2);
        v2.set(42);
        arr2.set(1, 9).unwrap();
        assert_eq!((v.get(), arr.to_vec()), (42, vec![1, 9]));
        // The wrong handle type is rejected.
        let bytes = postcard::to_allocvec(&v).unwrap();
        assert!(postcard::from_bytes::<SharedValue<u32>>(&bytes).is_err());
        assert!(postcard::from_bytes::<SharedArray<u64>>(&bytes).is_err());
        drop(postcard::from_bytes::<SharedValue<u64>>(&bytes).unwrap());
        drop((v, v2, arr, arr2));
        assert_eq!(arena.live_objects(), 0);
        assert_eq!(arena.used_bytes(), 0);
    }

    #[test]
    fn out_of_memory_is_an_error() {
        let arena = Arena::create(1024).unwrap();
        let err = SharedArray::new_in(&arena, &[0u8; 2048]).unwrap_err();
        assert!(matches!(err, ShmError::OutOfMemory { capacity: 1024, .. }), "{err}");
        let mut held = Vec::new();
        loop {
            match SharedValue::new_in(&arena, 0u64) {
                Ok(v) => held.push(v),
                Err(ShmError::OutOfMemory { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(held.len(), 1024 / 128);
        held.pop();
        assert!(SharedValue::new_in(&arena, 0u64).is_ok());
    }
}
