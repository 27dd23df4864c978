//! Serialized form of object handles, shared by every handle type.
//!
//! A serialized handle is `(arena id, pid, fd, block offset)`; the receiving type checks the
//! block's kind. Serializing adds one
//! reference to the block (the *transit* reference); deserializing adopts it. Hence each serialized
//! copy must be deserialized exactly once: an extra deserialization would drop a reference nobody
//! added, and a copy never deserialized keeps its block alive until the arena itself goes away.
//!
//! `handle_impls!` writes `Clone`, `Serialize`, `Deserialize`, `ref_count` and `arena` for the
//! handle types whose only state is their block.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::arena::{Arena, Block, Kind};
use crate::error::ShmError;

#[derive(Serialize, Deserialize)]
struct Wire {
    arena: u128,
    pid: u32,
    fd: i32,
    offset: u64,
}

/// Serializes `block`, adding the transit reference the receiver adopts.
pub(crate) fn serialize_block<S: Serializer>(block: &Block, s: S) -> Result<S::Ok, S::Error> {
    let (arena, pid, fd) = block.arena().locator();
    let wire = Wire { arena, pid, fd, offset: block.offset() };
    block.add_transit_reference();
    wire.serialize(s)
}

/// Deserializes a block of kind `kind`, adopting the transit reference; `what` names the handle
/// type for error messages.
pub(crate) fn deserialize_block<'de, D: Deserializer<'de>>(
    d: D,
    kind: Kind,
    what: impl FnOnce() -> String,
) -> Result<Block, D::Error> {
    let wire = Wire::deserialize(d)?;
    let arena = Arena::open(wire.arena, wire.pid, wire.fd).map_err(serde::de::Error::custom)?;
    Block::adopt(arena, wire.offset, kind).map_err(|reason| {
        serde::de::Error::custom(ShmError::InvalidHandle {
            what: what(),
            arena_id: wire.arena,
            offset: wire.offset,
            reason,
        })
    })
}

/// `Clone`, `Serialize`, `Deserialize`, `ref_count` and `arena` for a handle type `$name` (with
/// at most one type parameter `$p: $bound`) that has a `block: Block` field, a `KIND` constant
/// and a `from_block` constructor. `what` names the type in errors; `new` is the constructor
/// call, after `procman_shm::`, of the doc examples.
macro_rules! handle_impls {
    ($name:ident $(<$p:ident: $bound:path>)?, what: $what:expr, new: $new:literal) => {
        impl$(<$p: $bound>)? Clone for $name$(<$p>)? {
            /// Another handle to the same object (increments its reference count).
            fn clone(&self) -> Self {
                Self::from_block(self.block.clone())
            }
        }

        impl$(<$p: $bound>)? ::serde::Serialize for $name$(<$p>)? {
            /// Serializes the handle and adds the reference its receiver adopts; deserialize each
            /// serialized copy exactly once.
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                $crate::handle::serialize_block(&self.block, s)
            }
        }

        impl<'de $(, $p: $bound)?> ::serde::Deserialize<'de> for $name$(<$p>)? {
            /// Maps the arena if needed and adopts the serialized reference.
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let block = $crate::handle::deserialize_block(d, Self::KIND, || ($what).to_owned())?;
                Ok(Self::from_block(block))
            }
        }

        impl$(<$p: $bound>)? $name$(<$p>)? {
            /// Number of handles to this object in all processes (serialized ones included).
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let x = procman_shm::", $new, "?;")]
            /// let y = x.clone();
            /// assert_eq!(x.ref_count(), 2);
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            pub fn ref_count(&self) -> u64 {
                self.block.ref_count()
            }

            /// The arena the object lives in.
            ///
            /// ```
            /// # let arena = procman_shm::Arena::create(4096)?;
            #[doc = concat!("let x = procman_shm::", $new, "?;")]
            /// assert!(x.arena().same_arena(&arena));
            /// # Ok::<(), procman_shm::ShmError>(())
            /// ```
            pub fn arena(&self) -> &$crate::arena::Arena {
                self.block.arena()
            }
        }
    };
}
pub(crate) use handle_impls;

/// `core::any::type_name` without module paths: `procman_shm::FixedStr<256>` -> `FixedStr<256>`;
/// public but hidden from the docs so that the `procman` crate can reuse it.
#[doc(hidden)]
pub fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment_start = 0;
    let mut chars = full.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == ':' && chars.peek().is_some_and(|&(_, n)| n == ':') {
            chars.next();
            out.truncate(segment_start);
            continue;
        }
        out.push(c);
        if !(c.is_alphanumeric() || c == '_') {
            segment_start = out.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name::<i64>(), "i64");
        assert_eq!(short_type_name::<std::collections::HashMap<String, Vec<u8>>>(), "HashMap<String, Vec<u8>>");
        assert_eq!(short_type_name::<[u8; 4]>(), "[u8; 4]");
    }
}
