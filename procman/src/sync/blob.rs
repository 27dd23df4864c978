//! Encoded values as the server stores them.

use crate::error::Result;
use crate::proxy::{TicketRef, collect_tickets};
use crate::server::Pins;
use crate::wire;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
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

    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        wire::decode(&self.bytes, format_args!("a value of type {}", std::any::type_name::<T>()))
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

pub(crate) fn encode_all<'a, T: Serialize + 'a>(items: impl IntoIterator<Item = &'a T>) -> Result<Vec<Blob>> {
    items.into_iter().map(Blob::encode).collect()
}

pub(crate) fn decode_all<T: DeserializeOwned>(blobs: Vec<Blob>) -> Result<Vec<T>> {
    blobs.iter().map(Blob::decode).collect()
}
