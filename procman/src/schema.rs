//! Type fingerprints: what makes two programs agree on a type before they exchange values.
//!
//! A [`Schema`] type describes its shape — for a struct its name and its fields in order with
//! their types, for an enum its variants with theirs — and the shape hashes to a
//! [`Fingerprint`]. Two builds of one type, in two programs, have the same fingerprint; a field
//! reordered, added or retyped, or a variant added, gives another. procman compares
//! fingerprints once, when a proxy is bound to an object (see
//! [`Error::TypeMismatch`](crate::Error::TypeMismatch)), never per call.
//!
//! ```
//! use procman::prelude::*;
//! use procman::schema::Fingerprint;
//!
//! #[derive(Serialize, Deserialize, Schema)]
//! struct Job { id: u64, name: String }
//!
//! #[derive(Serialize, Deserialize, Schema)]
//! struct Reordered { name: String, id: u64 }
//!
//! assert_eq!(Fingerprint::of::<Job>(), Fingerprint::of::<Job>());
//! assert_ne!(Fingerprint::of::<Job>(), Fingerprint::of::<Reordered>());
//! assert_ne!(Fingerprint::of::<u64>(), Fingerprint::of::<String>());
//! ```
//!
//! # Why procman has its own
//!
//! The postcard ecosystem's answer is the `postcard-schema` crate, whose schemas are `const`
//! data. procman does not use it for two reasons: a `const` schema cannot describe a recursive
//! type (a linked list, a tree: the constant would contain itself), which procman must accept as
//! arguments; and its derive, re-exported by another crate, needs a `#[postcard(crate = ...)]`
//! attribute on every type. procman's [`Schema`] is described at run time, with recursion
//! broken by back-references, and `#[derive(Schema)]` from the prelude is one more name in a
//! `#[derive(...)]`. The shape model is postcard's data model, as in `postcard-schema`.
//!
//! # What a shape covers
//!
//! The std types that cross the wire have fingerprints; with the cargo features `chrono` and
//! `uuid`, so do chrono's `DateTime<Tz>`, `NaiveDate`, `NaiveDateTime`, `NaiveTime` and
//! `uuid::Uuid`.
//!
//! Names of structs, enums, fields and variants (as serde writes them: `#[serde(rename)]` is
//! followed, `#[serde(skip)]` fields are left out), field order, and every type inside. Not
//! covered: the type's module path (moving a type keeps its fingerprint) and serde attributes
//! that change the encoding in other ways (`untagged`, `flatten`, `with`): a value whose
//! encoding postcard cannot read back is refused where it is written instead (see
//! [`Encoded::encode`](crate::Encoded::encode)).

use std::any::TypeId;
use std::fmt;

/// A type whose shape procman can fingerprint. Derive it with `#[derive(Schema)]` (in the
/// prelude) beside `Serialize` and `Deserialize`; the std types that cross the wire (integers,
/// `String`, `Vec`, `Option`, maps, sets, tuples, arrays, `Duration`, ...) have it.
///
/// ```
/// use procman::prelude::*;
///
/// #[derive(Serialize, Deserialize, Schema)]
/// enum Shape { Circle { r: f64 }, Square(f64), Empty }
///
/// assert_eq!(procman::schema::Fingerprint::of::<Shape>(), procman::schema::Fingerprint::of::<Shape>());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no type fingerprint: it cannot be checked across the wire",
    label = "add `#[derive(Schema)]` to this type",
    note = "a type that travels between processes derives `Serialize`, `Deserialize` and `Schema` (all three in `procman::prelude`): `#[derive(Serialize, Deserialize, Schema)]`"
)]
pub trait Schema: 'static {
    /// Writes the type's shape.
    fn describe(shape: &mut Shape);
}

/// A type's shape being written: what [`Schema::describe`] writes into.
#[derive(Debug, Default)]
pub struct Shape {
    bytes: Vec<u8>,
    // The types being described, outermost first: a type met again is written as a reference
    // to its place here, so recursive types have finite shapes.
    stack: Vec<TypeId>,
}

/// The kinds of shapes, as postcard's data model has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum Kind {
    /// `bool`.
    Bool = 1,
    /// A signed integer; `describe` writes its width in bytes after it.
    Int,
    /// An unsigned integer; its width follows.
    Uint,
    /// `f32` or `f64`; its width follows.
    Float,
    /// `char`.
    Char,
    /// A string.
    String,
    /// A byte string.
    Bytes,
    /// `()`.
    Unit,
    /// `Option<T>`: one type follows.
    Option,
    /// A sequence: one element type follows.
    Seq,
    /// A tuple or fixed-size array: a length and the element types follow.
    Tuple,
    /// A map: key and value types follow.
    Map,
    /// A struct: a name, a field count, then each field's name and type.
    Struct,
    /// A tuple struct: a name, a count, then the types.
    TupleStruct,
    /// A unit struct: a name.
    UnitStruct,
    /// A newtype struct: a name and one type.
    NewtypeStruct,
    /// An enum: a name, a variant count, then each variant.
    Enum,
    /// A value held encoded by a manager ([`Encoded`](crate::Encoded)): its type is checked
    /// where the container records it, not in the method's signature.
    Encoded,
    /// A type the manager does not know ([`Opaque`](crate::Opaque)).
    Opaque,
    /// A proxy: the shared type's name and type parameters follow.
    Proxy,
    /// A reference to a type being described further out (recursion): its depth follows.
    Recursion,
}

impl Shape {
    /// Writes a kind.
    pub fn kind(&mut self, kind: Kind) -> &mut Self {
        self.bytes.push(kind as u8);
        self
    }

    /// Writes a name (of a type, field or variant) or any string.
    pub fn name(&mut self, name: &str) -> &mut Self {
        self.len(name.len());
        self.bytes.extend_from_slice(name.as_bytes());
        self
    }

    /// Writes a count or a width.
    pub fn len(&mut self, n: usize) -> &mut Self {
        self.bytes.extend_from_slice(&(n as u64).to_le_bytes());
        self
    }

    /// Writes the shape of `T`; a type already being described is written as a reference to
    /// it, so a recursive type's shape is finite.
    pub fn ty<T: Schema + ?Sized>(&mut self) -> &mut Self {
        let id = TypeId::of::<T>();
        if let Some(depth) = self.stack.iter().position(|t| *t == id) {
            self.kind(Kind::Recursion).len(depth);
            return self;
        }
        self.stack.push(id);
        T::describe(self);
        self.stack.pop();
        self
    }

    /// The shape's bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A hash of a type's shape. Equal fingerprints mean the same shape (up to a 64-bit hash
/// collision); [`Fingerprint::UNKNOWN`] stands for a type the manager does not know.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, crate::Schema)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// The fingerprint of a type a manager does not know ([`Opaque`](crate::Opaque)): it
    /// adopts the fingerprint a client gives when it creates the object.
    pub const UNKNOWN: Fingerprint = Fingerprint(0);

    /// The fingerprint of `T`.
    pub fn of<T: Schema + ?Sized>() -> Fingerprint {
        if TypeId::of::<T>() == TypeId::of::<crate::Opaque>() {
            return Fingerprint::UNKNOWN;
        }
        let mut shape = Shape::default();
        shape.ty::<T>();
        Fingerprint::of_bytes(shape.as_bytes())
    }

    /// FNV-1a over `bytes` (never 0, which is [`UNKNOWN`](Self::UNKNOWN)).
    pub(crate) fn of_bytes(bytes: &[u8]) -> Fingerprint {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Fingerprint(h.max(1))
    }

    /// Combines fingerprints in order.
    pub(crate) fn combine(parts: impl IntoIterator<Item = Fingerprint>) -> Fingerprint {
        let mut bytes = Vec::new();
        for p in parts {
            bytes.extend_from_slice(&p.0.to_le_bytes());
        }
        Fingerprint::of_bytes(&bytes)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({:016x})", self.0)
    }
}

macro_rules! numbers {
    ($($t:ty => $kind:ident),* $(,)?) => {$(
        impl Schema for $t {
            fn describe(shape: &mut Shape) {
                shape.kind(Kind::$kind).len(std::mem::size_of::<$t>());
            }
        }
    )*};
}

numbers!(
    i8 => Int, i16 => Int, i32 => Int, i64 => Int, i128 => Int, isize => Int,
    u8 => Uint, u16 => Uint, u32 => Uint, u64 => Uint, u128 => Uint, usize => Uint,
    f32 => Float, f64 => Float,
);

macro_rules! simple {
    ($($t:ty => $kind:ident),* $(,)?) => {$(
        impl Schema for $t {
            fn describe(shape: &mut Shape) {
                shape.kind(Kind::$kind);
            }
        }
    )*};
}

simple!(bool => Bool, char => Char, String => String, str => String, () => Unit);

impl<T: Schema + ?Sized> Schema for &'static T {
    fn describe(shape: &mut Shape) {
        T::describe(shape);
    }
}

impl<T: Schema + ?Sized> Schema for Box<T> {
    fn describe(shape: &mut Shape) {
        T::describe(shape);
    }
}

impl<T: Schema + ?Sized> Schema for std::sync::Arc<T> {
    fn describe(shape: &mut Shape) {
        T::describe(shape);
    }
}

impl<T: Schema + ToOwned + ?Sized> Schema for std::borrow::Cow<'static, T> {
    fn describe(shape: &mut Shape) {
        T::describe(shape);
    }
}

impl<T: Schema> Schema for Option<T> {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Option).ty::<T>();
    }
}

macro_rules! sequences {
    ($($t:ident),*) => {$(
        impl<T: Schema> Schema for std::collections::$t<T> {
            fn describe(shape: &mut Shape) {
                shape.kind(Kind::Seq).ty::<T>();
            }
        }
    )*};
}

sequences!(VecDeque, BTreeSet, HashSet, LinkedList, BinaryHeap);

impl<T: Schema> Schema for Vec<T> {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Seq).ty::<T>();
    }
}

impl<T: Schema> Schema for [T] {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Seq).ty::<T>();
    }
}

impl<T: Schema, const N: usize> Schema for [T; N] {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Tuple).len(N);
        for _ in 0..N {
            shape.ty::<T>();
        }
    }
}

impl<K: Schema, V: Schema, S: 'static> Schema for std::collections::HashMap<K, V, S> {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Map).ty::<K>().ty::<V>();
    }
}

impl<K: Schema, V: Schema> Schema for std::collections::BTreeMap<K, V> {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Map).ty::<K>().ty::<V>();
    }
}

impl<T: ?Sized + 'static> Schema for std::marker::PhantomData<T> {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::UnitStruct).name("PhantomData");
    }
}

macro_rules! tuples {
    ($(($($t:ident),+)),*) => {$(
        impl<$($t: Schema),+> Schema for ($($t,)+) {
            fn describe(shape: &mut Shape) {
                shape.kind(Kind::Tuple).len([$(stringify!($t)),+].len());
                $(shape.ty::<$t>();)+
            }
        }
    )*};
}

tuples!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H)
);

impl<T: Schema, E: Schema> Schema for Result<T, E> {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Enum).name("Result").len(2);
        shape.name("Ok").kind(Kind::NewtypeStruct).ty::<T>();
        shape.name("Err").kind(Kind::NewtypeStruct).ty::<E>();
    }
}

/// serde writes a `Duration` as a struct of `secs` and `nanos`.
impl Schema for std::time::Duration {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Struct).name("Duration").len(2);
        shape.name("secs").ty::<u64>();
        shape.name("nanos").ty::<u32>();
    }
}

/// serde writes a `SystemTime` as a struct of `secs_since_epoch` and `nanos_since_epoch`.
impl Schema for std::time::SystemTime {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Struct).name("SystemTime").len(2);
        shape.name("secs_since_epoch").ty::<u64>();
        shape.name("nanos_since_epoch").ty::<u32>();
    }
}

impl Schema for std::path::PathBuf {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::String);
    }
}

impl Schema for std::net::SocketAddr {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::String).name("SocketAddr");
    }
}

/// An encoded value's shape is its container's business: the container records the element
/// type's fingerprint when it is created, so the methods of a `Queue<T>` have the same shape for
/// every `T`.
impl<T: 'static> Schema for crate::Encoded<T> {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Encoded);
    }
}

impl Schema for crate::Opaque {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Opaque);
    }
}

impl Schema for crate::BaseProxy {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Proxy).name("BaseProxy");
    }
}

impl Schema for crate::Error {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Enum).name("procman::Error");
    }
}

/// chrono writes its date and time types as strings (RFC 3339 / ISO 8601), named here so that a
/// date is not taken for a time.
#[cfg(feature = "chrono")]
mod chrono_types {
    use super::{Kind, Schema, Shape};

    impl<Tz: chrono::TimeZone + 'static> Schema for chrono::DateTime<Tz> {
        fn describe(shape: &mut Shape) {
            shape.kind(Kind::String).name("DateTime");
        }
    }

    macro_rules! named_strings {
        ($($t:ident),*) => {$(
            impl Schema for chrono::$t {
                fn describe(shape: &mut Shape) {
                    shape.kind(Kind::String).name(stringify!($t));
                }
            }
        )*};
    }

    named_strings!(NaiveDate, NaiveDateTime, NaiveTime);
}

/// uuid writes a `Uuid` to postcard (not human-readable) as 16 bytes.
#[cfg(feature = "uuid")]
impl Schema for uuid::Uuid {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Bytes).name("Uuid");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    enum List {
        Cons(i32, Box<List>),
        Nil,
    }

    impl Schema for List {
        fn describe(shape: &mut Shape) {
            shape.kind(Kind::Enum).name("List").len(2);
            shape.name("Cons").kind(Kind::Tuple).len(2).ty::<i32>().ty::<Box<List>>();
            shape.name("Nil").kind(Kind::Unit);
        }
    }

    #[test]
    fn recursive_types_have_finite_shapes_and_shapes_differ_by_structure() {
        let list = Fingerprint::of::<List>();
        assert_eq!(list, Fingerprint::of::<List>());
        assert_ne!(list, Fingerprint::UNKNOWN);
        assert_ne!(Fingerprint::of::<Vec<u8>>(), Fingerprint::of::<Vec<i8>>());
        assert_ne!(Fingerprint::of::<(u8, u16)>(), Fingerprint::of::<(u16, u8)>());
        assert_ne!(Fingerprint::of::<Option<u32>>(), Fingerprint::of::<u32>());
        assert_eq!(Fingerprint::of::<Box<u32>>(), Fingerprint::of::<u32>());
    }
}
