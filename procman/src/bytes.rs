//! Byte buffers that travel as one byte string.
//!
//! serde gives `Vec<u8>`, `&[u8]` and `[u8; N]` the shape of a sequence of numbers, which
//! postcard writes byte by byte (each byte one call into the serializer): about 0.3 GB/s. The
//! same bytes as a serde byte string (`serialize_bytes`) are one length and one copy. For
//! postcard the two layouts are the same bytes (a length, then the bytes: a `u8` is written as
//! itself), so switching costs no compatibility for `Vec<u8>` and `&[u8]`; `[u8; N]`, a tuple
//! for serde, gains a length in front.
//!
//! The macros send the byte arguments and results of exposed methods and creators this way on
//! their own (see [`shared`](crate::shared)); [`ByteBuf`] is for fields of the user's own
//! types.

use crate::schema::{Kind, Schema, Shape};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// A `Vec<u8>` that serializes as a serde byte string: a field of this type in a user's struct
/// is encoded and decoded as one copy of its bytes, where a `Vec<u8>` field goes byte by byte
/// (ten times slower for large buffers).
///
/// procman has its own type rather than asking for `serde_bytes`: it carries a fingerprint
/// ([`Schema`], of [`Kind::Bytes`]) so that a struct holding it derives `Schema`, and it needs
/// no other dependency. `#[serde(with = "serde_bytes")]` on a `Vec<u8>` field works as well (the
/// field keeps the fingerprint of a `Vec<u8>`). Arguments and results of exposed methods need
/// neither: a `Vec<u8>`, `&[u8]` or `[u8; N]` there is sent as a byte string already.
///
/// ```
/// use procman::ByteBuf;
/// use procman::prelude::*;
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize, Schema)]
/// struct Chunk {
///     offset: u64,
///     data: ByteBuf,
/// }
///
/// let chunk = Chunk { offset: 8, data: ByteBuf::from(vec![1, 2, 3]) };
/// let bytes = postcard::to_stdvec(&chunk).unwrap();
/// assert_eq!(bytes, [8, 3, 1, 2, 3]); // the offset, the length, the bytes
/// let back: Chunk = postcard::from_bytes(&bytes).unwrap();
/// assert_eq!(back, chunk);
/// assert_eq!(&back.data[..], [1, 2, 3]);
/// assert_eq!(back.data.into_vec(), vec![1, 2, 3]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteBuf(pub Vec<u8>);

impl ByteBuf {
    /// An empty buffer.
    pub const fn new() -> Self {
        ByteBuf(Vec::new())
    }

    /// The bytes, as a `Vec<u8>`.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for ByteBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Vec<u8>> for ByteBuf {
    fn from(bytes: Vec<u8>) -> Self {
        ByteBuf(bytes)
    }
}

impl From<&[u8]> for ByteBuf {
    fn from(bytes: &[u8]) -> Self {
        ByteBuf(bytes.to_vec())
    }
}

impl From<ByteBuf> for Vec<u8> {
    fn from(bytes: ByteBuf) -> Self {
        bytes.0
    }
}

impl Deref for ByteBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for ByteBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl AsRef<[u8]> for ByteBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for ByteBuf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(BytesVisitor).map(ByteBuf)
    }
}

impl Schema for ByteBuf {
    fn describe(shape: &mut Shape) {
        shape.kind(Kind::Bytes).name("ByteBuf");
    }
}

/// Reads a byte string (or, from a format that wrote a sequence, its numbers) into a `Vec`.
struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// Borrowed bytes that serialize as a byte string: what a proxy sends for a `Vec<u8>`, `&[u8]`
/// or `[u8; N]` argument and what the server returns for a `Vec<u8>` or `&[u8]` result.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct ByteArg<'a>(pub &'a [u8]);

impl Serialize for ByteArg<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// A `[u8; N]` read from a byte string of exactly `N` bytes (any `N`: serde's own arrays stop
/// at 32).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct ByteArray<const N: usize>(pub [u8; N]);

impl<const N: usize> Serialize for ByteArray<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for ByteArray<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ArrayVisitor<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a byte string of {N} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; N], E> {
                v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(ArrayVisitor::<N>).map(ByteArray)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_strings_are_the_postcard_bytes_of_a_vec_of_u8() {
        let data: Vec<u8> = (0..=255).collect();
        let as_seq = postcard::to_stdvec(&data).unwrap();
        assert_eq!(postcard::to_stdvec(&ByteArg(&data)).unwrap(), as_seq);
        assert_eq!(postcard::to_stdvec(&ByteBuf(data.clone())).unwrap(), as_seq);
        let back: ByteBuf = postcard::from_bytes(&as_seq).unwrap();
        assert_eq!(back.0, data);
        let back: Vec<u8> = postcard::from_bytes(&postcard::to_stdvec(&ByteArg(&data)).unwrap()).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn arrays_of_any_length_check_their_length() {
        let a = [7u8; 100];
        let enc = postcard::to_stdvec(&ByteArray(a)).unwrap();
        assert_eq!(enc.len(), 101);
        let back: ByteArray<100> = postcard::from_bytes(&enc).unwrap();
        assert_eq!(back.0, a);
        assert!(postcard::from_bytes::<ByteArray<99>>(&enc).is_err());
    }

    #[test]
    fn a_byte_buf_has_the_fingerprint_of_bytes() {
        use crate::schema::Fingerprint;
        assert_ne!(Fingerprint::of::<ByteBuf>(), Fingerprint::of::<Vec<u8>>());
    }
}
