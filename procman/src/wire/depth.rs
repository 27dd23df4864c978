//! A bound on how deeply nested a decoded value may be.
//!
//! postcard decodes a recursive type (a linked list as an `enum`, a tree of boxes) by recursion,
//! one set of stack frames per level, and has no limit of its own: a 100,000-deep value that a
//! peer sends overflows the stack of the thread that decodes it, which aborts the whole process.
//! [`Limited`] wraps postcard's deserializer and counts the containers it enters (sequences,
//! tuples, maps, structs, enums, options, newtypes); past the limit it refuses, and the decode
//! fails with a message that names the limit.
//!
//! The limit in force on a thread is the one a server set for its connection threads
//! ([`ThreadLimit`], from `ManagerBuilder::max_decode_depth`), else the process's
//! ([`raise_process_limit`]: the largest any builder of this process asked for, at least
//! [`DEFAULT_MAX_DECODE_DEPTH`]).

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The default decoding depth limit: how many containers (structs, enums, sequences, maps,
/// options, ...) a decoded value may nest. A linked list of `enum` nodes uses one level per
/// node; `Option<Box<Node>>` with a struct node uses two.
pub const DEFAULT_MAX_DECODE_DEPTH: usize = 128;

static PROCESS_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_DECODE_DEPTH);

thread_local! {
    static THREAD_LIMIT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Stack a thread needs per level of the limit: a few hundred bytes in an optimized build, up
/// to 4 KiB in a debug build (measured: 500 levels fit in 2 MiB there, 1,000 do not).
pub(crate) const STACK_PER_LEVEL: usize = 4 << 10;

/// The limit for decodes on this thread.
pub(crate) fn limit() -> usize {
    THREAD_LIMIT.with(Cell::get).unwrap_or_else(|| PROCESS_LIMIT.load(Ordering::Relaxed))
}

/// Lets this process decode values (replies, results) nested up to `depth` levels, if that is
/// more than it allowed so far.
pub(crate) fn raise_process_limit(depth: usize) {
    PROCESS_LIMIT.fetch_max(depth, Ordering::Relaxed);
}

/// While it lives, decodes on this thread use its limit (a server's connection thread uses the
/// server's); dropping it restores the previous one.
#[derive(Debug)]
pub(crate) struct ThreadLimit {
    previous: Option<usize>,
}

impl ThreadLimit {
    pub(crate) fn set(depth: usize) -> ThreadLimit {
        ThreadLimit { previous: THREAD_LIMIT.with(|l| l.replace(Some(depth))) }
    }
}

impl Drop for ThreadLimit {
    fn drop(&mut self) {
        THREAD_LIMIT.with(|l| l.set(self.previous));
    }
}

/// Why a decode failed: the value nests deeper than the limit, or the decoder's own error.
#[derive(Debug)]
pub(crate) enum Failure {
    TooDeep { limit: usize },
    Postcard(postcard::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::TooDeep { limit } => write!(
                f,
                "the value nests deeper than the decoding depth limit of {limit} levels \
                 (ManagerBuilder::max_decode_depth)"
            ),
            Failure::Postcard(e) => e.fmt(f),
        }
    }
}

/// Decodes a `T` from the front of `bytes` under the thread's depth limit; returns it with the
/// bytes after it.
pub(crate) fn take<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<(T, &'de [u8]), Failure> {
    take_with_limit(bytes, limit())
}

pub(crate) fn take_with_limit<'de, T: de::Deserialize<'de>>(
    bytes: &'de [u8],
    limit: usize,
) -> Result<(T, &'de [u8]), Failure> {
    let budget = Budget { limit, exceeded: Cell::new(false) };
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let value = T::deserialize(Limited { inner: &mut de, depth: 0, budget: &budget });
    match value {
        // A type may catch an error and fall back; what it returned is bounded all the same.
        Ok(v) => de.finalize().map(|rest| (v, rest)).map_err(Failure::Postcard),
        Err(_) if budget.exceeded.get() => Err(Failure::TooDeep { limit }),
        Err(e) => Err(Failure::Postcard(e)),
    }
}

/// The limit of one decode, and whether it was hit (postcard drops the messages of custom
/// errors, so the reason travels beside the error).
struct Budget {
    limit: usize,
    exceeded: Cell<bool>,
}

impl Budget {
    /// The depth inside a container entered at `depth`, or the error past the limit.
    fn enter<E: de::Error>(&self, depth: usize) -> Result<usize, E> {
        if depth >= self.limit {
            self.exceeded.set(true);
            Err(E::custom(format_args!("nesting deeper than {} levels", self.limit)))
        } else {
            Ok(depth + 1)
        }
    }
}

/// A deserializer that counts the containers it is inside.
struct Limited<'b, D> {
    inner: D,
    depth: usize,
    budget: &'b Budget,
}

/// The same wrapper around what a deserializer hands a visitor: the visitor itself, the
/// accessors of sequences, maps and enums, and the seeds of their elements.
struct Nested<'b, X> {
    inner: X,
    depth: usize,
    budget: &'b Budget,
}

impl<'b, X> Nested<'b, X> {
    fn new(inner: X, depth: usize, budget: &'b Budget) -> Self {
        Nested { inner, depth, budget }
    }
}

macro_rules! scalars {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.inner.$method(Nested::new(visitor, self.depth, self.budget))
        }
    )*};
}

macro_rules! containers {
    ($($method:ident $(($($arg:ident: $ty:ty),*))?)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($($arg: $ty,)*)? visitor: V) -> Result<V::Value, Self::Error> {
            let depth = self.budget.enter(self.depth)?;
            self.inner.$method($($($arg,)*)? Nested::new(visitor, depth, self.budget))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<'_, D> {
    type Error = D::Error;

    scalars! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_unit deserialize_identifier
    }

    containers! {
        deserialize_any
        deserialize_ignored_any
        deserialize_option
        deserialize_seq
        deserialize_map
        deserialize_unit_struct(name: &'static str)
        deserialize_newtype_struct(name: &'static str)
        deserialize_tuple(len: usize)
        deserialize_tuple_struct(name: &'static str, len: usize)
        deserialize_struct(name: &'static str, fields: &'static [&'static str])
        deserialize_enum(name: &'static str, variants: &'static [&'static str])
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! visit_scalars {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Nested<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    visit_scalars! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64) visit_i128(i128)
        visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64) visit_u128(u128)
        visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str) visit_borrowed_str(&'de str)
        visit_string(String) visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Limited { inner: d, depth: self.depth, budget: self.budget })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Limited { inner: d, depth: self.depth, budget: self.budget })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_seq(Nested::new(a, self.depth, self.budget))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(Nested::new(a, self.depth, self.budget))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(Nested::new(a, self.depth, self.budget))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nested<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.deserialize(Limited { inner: d, depth: self.depth, budget: self.budget })
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Nested<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Nested::new(seed, self.depth, self.budget))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Nested<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Nested::new(seed, self.depth, self.budget))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(Nested::new(seed, self.depth, self.budget))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'b, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Nested<'b, A> {
    type Error = A::Error;
    type Variant = Nested<'b, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), A::Error> {
        let (depth, budget) = (self.depth, self.budget);
        let (value, variant) = self.inner.variant_seed(Nested::new(seed, depth, budget))?;
        Ok((value, Nested::new(variant, depth, budget)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Nested<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(Nested::new(seed, self.depth, self.budget))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, Nested::new(visitor, self.depth, self.budget))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(fields, Nested::new(visitor, self.depth, self.budget))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum List {
        Nil,
        Cons(u8, Box<List>),
    }

    /// The encoding of a list `depth` nodes long, written without recursion.
    fn list_bytes(depth: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(2 * depth + 1);
        for _ in 0..depth {
            b.extend([1, 7]);
        }
        b.push(0);
        b
    }

    fn list(depth: usize) -> List {
        (0..depth).fold(List::Nil, |tail, _| List::Cons(7, Box::new(tail)))
    }

    #[test]
    fn values_within_the_limit_decode_as_postcard_decodes_them() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Mixed<'a> {
            name: &'a str,
            bytes: &'a [u8],
            when: Option<Duration>,
            map: BTreeMap<String, Vec<(u8, i64)>>,
            addr: std::net::SocketAddr,
            unit: (),
        }
        let value = Mixed {
            name: "x",
            bytes: &[1, 2],
            when: Some(Duration::from_millis(5)),
            map: [("a".to_string(), vec![(1, -2)])].into(),
            addr: "127.0.0.1:80".parse().unwrap(),
            unit: (),
        };
        let bytes = postcard::to_stdvec(&(&value, 9u8)).unwrap();
        let ((back, nine), rest): ((Mixed<'_>, u8), _) = take(&bytes).unwrap();
        assert_eq!((back, nine, rest), (value, 9, &[][..]));

        let l = list(100);
        let (back, _): (List, _) = take(&list_bytes(100)).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn a_deep_value_is_refused_with_the_limit_named_and_without_recursing() {
        // Deep enough to overflow any thread's stack if it were decoded by recursion.
        let bytes = list_bytes(1_000_000);
        let e = take::<List>(&bytes).unwrap_err();
        assert!(matches!(e, Failure::TooDeep { limit: DEFAULT_MAX_DECODE_DEPTH }), "{e:?}");
        assert!(e.to_string().contains("limit of 128 levels"), "{e}");

        // The limit counts levels: exactly at it decodes, one more does not.
        assert!(take_with_limit::<List>(&list_bytes(9), 10).is_ok());
        assert!(matches!(take_with_limit::<List>(&list_bytes(10), 10), Err(Failure::TooDeep { limit: 10 })));
        // Other errors stay postcard's.
        assert!(matches!(take::<List>(&[5]), Err(Failure::Postcard(_))));
    }

    #[test]
    fn a_thread_limit_overrides_the_process_limit_until_dropped() {
        let bytes = list_bytes(200);
        assert!(take::<List>(&bytes).is_err());
        {
            let _l = ThreadLimit::set(300);
            assert!(take::<List>(&bytes).is_ok());
        }
        assert!(take::<List>(&bytes).is_err());
    }
}
