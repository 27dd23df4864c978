//! Values a manager holds encoded: [`Encoded<T>`], its untyped [`Opaque`] form, and the bytes
//! behind them.
//!
//! See [`Encoded`].

use crate::error::Result;
use crate::proxy::{TicketRef, collect_tickets};
use crate::server::Pins;
use crate::wire;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// A value encoded by a client. Built-in containers and queues store these, so a manager holds
/// `Queue<T>` or `Dict<K, V>` for any `T` its clients use, even types it was not compiled with.
/// Keys compare by their encoding.
///
/// A value may contain proxies. The blob carries their tickets, and a server that receives it
/// pins them: the objects stay alive while the value is stored, every copy handed out adopts a
/// reference of its own, and a value taken out (`pop`, `get` from a queue) hands its references
/// to the client that receives it.
#[derive(Clone, Default)]
pub(crate) struct Blob {
    // The encoded value.
    pub(crate) bytes: Vec<u8>,
    tickets: Vec<TicketRef>,
    pins: Option<Arc<Pins>>,
}

impl PartialEq for Blob {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Blob {}

impl std::hash::Hash for Blob {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state)
    }
}

impl Blob {
    pub(crate) fn encode<T: ?Sized + Serialize>(value: &T) -> Result<Blob> {
        let (bytes, tickets) = collect_tickets(|| wire::encode(value, "a value"));
        Ok(Blob { bytes: bytes?, tickets, pins: None })
    }

    /// Decodes a `T` from the whole value: bytes left over mean another type was encoded.
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        // Under the thread's decoding depth limit, as every value from another process.
        wire::decode(&self.bytes, ValueOf::<T>(PhantomData))
    }
}

/// "a value of type `T`", for an error: written only when one is made, not on every decode.
struct ValueOf<T: ?Sized>(PhantomData<fn() -> *const T>);

impl<T: ?Sized> fmt::Display for ValueOf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of type {}", crate::__private::short_type_name::<T>())
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.bytes.len())
    }
}

#[derive(Serialize)]
struct WireBlob<'a> {
    bytes: crate::wire::Bytes<'a>,
    tickets: &'a [TicketRef],
}

#[derive(Deserialize)]
struct OwnedBlob {
    bytes: ByteBuf,
    tickets: Vec<TicketRef>,
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if let Some(pins) = &self.pins {
            // The last holder of a stored value sends it away: its proxies go with it.
            if Arc::strong_count(pins) == 1 {
                pins.hand_over();
            }
        }
        WireBlob { bytes: crate::wire::Bytes(&self.bytes), tickets: &self.tickets }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let OwnedBlob { bytes, tickets } = OwnedBlob::deserialize(d)?;
        let pins = if tickets.is_empty() { None } else { crate::server::pin_tickets(tickets.clone()).map(Arc::new) };
        Ok(Blob { bytes: bytes.0, tickets, pins })
    }
}

/// Bytes deserialized from a byte string.
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> std::result::Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> std::result::Result<ByteBuf, A::Error> {
                let mut v = Vec::with_capacity(a.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = a.next_element::<u8>()? {
                    v.push(b);
                }
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// The type parameter of objects a manager creates without knowing the client's types: a
/// generic creator's object is created with `Opaque` for each parameter, so its values stay
/// encoded (`Encoded<Opaque>`). `Opaque` has no values and implements no serde trait: a type
/// that would have to decode one does not compile as a generic creator's object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opaque {}

/// A value of `T` as a client encoded it. A manager stores it as bytes and never decodes it, so
/// one manager holds values of any type its clients use, even types it was not compiled with.
/// Two values are equal when their encodings are (which is equality for integers, strings,
/// tuples and structs of them, not for floats' `-0.0` or maps).
///
/// In a `#[shared]` method's signature, the proxy takes and returns `T` where the method has
/// `Encoded<T>`. A container is written once, generic over its element type:
///
/// ```
/// use procman::prelude::*;
/// use procman::{Encoded, Opaque};
///
/// #[derive(Shared, Debug, Default)]
/// pub struct Stack<T> { items: Vec<Encoded<T>> }
///
/// #[shared]
/// impl<T: 'static> Stack<T> {
///     pub fn push(&mut self, item: Encoded<T>) { self.items.push(item) }
///     pub fn pop(&mut self) -> Option<Encoded<T>> { self.items.pop() }
/// }
///
/// #[manager]
/// pub struct Stacks;
///
/// #[manager]
/// impl Stacks {
///     // The client picks `T`; the manager creates a `Stack<Opaque>` and never decodes an item.
///     fn stack<T>() -> Stack<T> { Stack { items: Vec::new() } }
/// }
///
/// fn main() -> procman::Result<()> {
///     procman::init();
///     let m = Stacks::new().serve_in_background()?;
///     let s = m.stack::<String>()?;
///     s.push("hello".to_string())?; // the proxy takes a `String` and encodes it
///     assert_eq!(s.pop()?, Some("hello".to_string()));
///     m.shutdown()
/// }
/// ```
///
/// The proxy method of `push(&mut self, item: Encoded<T>)` takes a `T`; the one of
/// `pop(&mut self) -> Option<Encoded<T>>` returns an `Option<T>`: the macros replace each
/// `Encoded<X>` of a signature by `X` on the proxy, and [`Form`] converts between them (for
/// `Encoded`, `Option`, `Vec`, pairs and plain values). `Encoded<Opaque>` stays encoded on both
/// sides.
///
/// A value may hold proxies: they stay alive while the value is stored, and each copy handed
/// out holds its own reference.
pub struct Encoded<T> {
    blob: Blob,
    _type: PhantomData<fn() -> T>,
}

impl<T> Encoded<T> {
    pub(crate) fn from_blob(blob: Blob) -> Self {
        Encoded { blob, _type: PhantomData }
    }

    pub(crate) fn into_blob(self) -> Blob {
        self.blob
    }

    /// The encoded bytes (postcard).
    pub fn as_bytes(&self) -> &[u8] {
        &self.blob.bytes
    }

    /// The same bytes, read as another type (as a typeid declaration of a client does).
    pub fn cast<U>(self) -> Encoded<U> {
        Encoded { blob: self.blob, _type: PhantomData }
    }
}

impl Encoded<Opaque> {
    /// Encodes a value of any type, kept untyped.
    pub(crate) fn encode_any<U: Serialize + ?Sized>(value: &U) -> Result<Self> {
        Blob::encode(value).map(Self::from_blob)
    }
}

impl<T: Serialize> Encoded<T> {
    /// Encodes `value`.
    ///
    /// ```
    /// let e = procman::Encoded::encode(&7u32)?;
    /// assert_eq!(e.as_bytes(), &[7]);
    /// assert_eq!(e.decode()?, 7);
    /// # Ok::<(), procman::Error>(())
    /// ```
    pub fn encode(value: &T) -> Result<Self> {
        Blob::encode(value).map(Self::from_blob)
    }
}

impl<T: DeserializeOwned> Encoded<T> {
    /// Decodes the value; [`Error::Decode`](crate::Error::Decode) when the bytes are no `T`.
    pub fn decode(&self) -> Result<T> {
        self.blob.decode()
    }
}

impl<T> Clone for Encoded<T> {
    fn clone(&self) -> Self {
        Encoded { blob: self.blob.clone(), _type: PhantomData }
    }
}

impl<T> PartialEq for Encoded<T> {
    fn eq(&self, other: &Self) -> bool {
        self.blob == other.blob
    }
}

impl<T> Eq for Encoded<T> {}

impl<T> std::hash::Hash for Encoded<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.blob.hash(state)
    }
}

impl<T> fmt::Debug for Encoded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encoded<{}>({} bytes)", crate::__private::short_type_name::<T>(), self.blob.bytes.len())
    }
}

impl<T> Serialize for Encoded<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.blob.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Encoded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Blob::deserialize(d).map(Self::from_blob)
    }
}

/// How a proxy converts what its user passes into what the server's method takes, and back:
/// `Encoded<T>` from and to `T`, and the same through `Option`, `Vec` and pairs. Plain values
/// pass as they are. Used by the code `#[shared]` generates.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be converted by a proxy",
    note = "`Encoded<T>` needs `T: Serialize + Deserialize`; around it, `Option`, `Vec`, pairs and plain integers, `bool` and `String` are supported"
)]
pub trait Form: Sized + Serialize + DeserializeOwned {
    /// What the proxy's user passes and receives.
    type Client;
    /// Converts (encodes) a value the proxy's user passed.
    fn from_client(value: &Self::Client) -> Result<Self>;
    /// Converts (decodes) a value the server returned.
    fn into_client(self) -> Result<Self::Client>;
}

/// A proxy encodes a value once and decodes it again before sending it, so a type whose serde
/// shape postcard cannot read back (`#[serde(untagged)]`, `flatten`, `skip_serializing_if`,
/// `deserialize_any`) is refused where it is written, naming the type, instead of by a reader
/// in another process (a value that holds proxies is not checked this way: decoding a proxy
/// takes a reference). A value that fails to decode when it comes back is returned whole in
/// [`Error::Undecodable`](crate::Error::Undecodable): a queue item is never lost.
impl<T: Serialize + DeserializeOwned> Form for Encoded<T> {
    type Client = T;
    fn from_client(value: &T) -> Result<Self> {
        let encoded = Encoded::encode(value)?;
        // A value holding proxies is not decoded here: decoding a proxy claims its reference.
        if let Err(e) = encoded.blob.tickets.is_empty().then(|| encoded.blob.decode::<T>()).transpose() {
            return Err(crate::Error::encode(
                format_args!("a value of type {}", crate::__private::short_type_name::<T>()),
                format_args!(
                    "postcard cannot read it back ({e}); types with `#[serde(untagged)]`, `flatten`, \
                     `skip_serializing_if` or a `deserialize_any` impl cannot travel"
                ),
            ));
        }
        Ok(encoded)
    }
    fn into_client(self) -> Result<T> {
        self.blob.decode().map_err(|e| match e {
            crate::Error::Decode { what, message } => {
                crate::Error::Undecodable { what, message, value: self.blob.bytes.clone() }
            }
            other => other,
        })
    }
}

impl<A: Form> Form for Option<A> {
    type Client = Option<A::Client>;
    fn from_client(value: &Self::Client) -> Result<Self> {
        value.as_ref().map(A::from_client).transpose()
    }
    fn into_client(self) -> Result<Self::Client> {
        self.map(A::into_client).transpose()
    }
}

impl<A: Form> Form for Vec<A> {
    type Client = Vec<A::Client>;
    fn from_client(value: &Self::Client) -> Result<Self> {
        value.iter().map(A::from_client).collect()
    }
    fn into_client(self) -> Result<Self::Client> {
        self.into_iter().map(A::into_client).collect()
    }
}

impl<A: Form, B: Form> Form for (A, B) {
    type Client = (A::Client, B::Client);
    fn from_client((a, b): &Self::Client) -> Result<Self> {
        Ok((A::from_client(a)?, B::from_client(b)?))
    }
    fn into_client(self) -> Result<Self::Client> {
        Ok((self.0.into_client()?, self.1.into_client()?))
    }
}

macro_rules! plain_forms {
    ($($t:ty),*) => {$(
        impl Form for $t {
            type Client = $t;
            fn from_client(value: &$t) -> Result<$t> {
                Ok(value.clone())
            }
            fn into_client(self) -> Result<$t> {
                Ok(self)
            }
        }
    )*};
}

plain_forms!(bool, u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, String, std::time::Duration);
