//! The messages of the manager protocol.
//!
//! Messages cross the wire as postcard, which encodes an enum as its variant's index: new
//! variants go at the end of each enum, and a new field at the end of its variant, read so that
//! the older form still decodes (see [`hello`]).

use super::Bytes;
use crate::error::Error;
use crate::schema::Fingerprint;
pub(crate) use crate::typecheck::Expect;
use serde::{Deserialize, Serialize};

/// A request from a client connection. Every request but `DecRef` gets one [`Reply`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request<'a> {
    /// First frame after authentication: who the client process is (its random id, fixed for
    /// its lifetime, and its process id). Read with [`hello`].
    Hello { client: u128, pid: u32 },
    /// Create an object with a registered creator. `expect` is what the client's proxy type
    /// needs (absent for untyped creation): the manager refuses a mismatch before creating.
    Create {
        #[serde(borrow)]
        typeid: &'a str,
        #[serde(borrow)]
        args: Bytes<'a>,
        expect: Option<Expect>,
    },
    /// Call an exposed method.
    Call {
        id: u64,
        #[serde(borrow)]
        method: &'a str,
        #[serde(borrow)]
        args: Bytes<'a>,
    },
    /// The referent's `Debug` form.
    Repr { id: u64 },
    /// A copy of the referent.
    GetValue { id: u64 },
    /// One more reference for the calling client.
    IncRef { id: u64 },
    /// One reference less; no reply.
    DecRef { id: u64 },
    /// A reference for a proxy in transit; the reply is a ticket.
    Transit { id: u64 },
    /// Adopt the reference of a proxy in transit (or take a new one when the ticket is used).
    Claim { id: u64, ticket: u64 },
    /// Keep a proxy in transit stored (in a container): claims of its ticket take new
    /// references and leave the ticket in place.
    Pin { ticket: u64 },
    /// The stored proxy was dropped (`to_transit == false`: release the ticket's reference) or
    /// handed to one client (`to_transit == true`: the next claim adopts it).
    Unpin { ticket: u64, to_transit: bool },
    /// Objects and their reference counts.
    DebugInfo,
    /// Stop the server.
    Shutdown,
    /// Nothing; checks the connection.
    Ping,
    // New variants go last: a request crosses the wire as its variant's index.
    /// The type description of an object (`id`) or of what a creator makes (`typeid`): what a
    /// client compares its own with to name a type mismatch.
    Describe {
        #[serde(borrow)]
        typeid: &'a str,
        id: Option<u64>,
    },
    /// A [`Snapshot`](crate::inspect::Snapshot) of the server: objects, clients, states.
    Inspect,
    /// Move this connection's frames to a shared-memory channel (a client on the same host,
    /// right after its hello). The reply is `Option<u64>`: the ring size of the channel whose
    /// memfd travels beside the reply, after which both sides use it; or `None`, and the
    /// frames stay on the socket.
    Channel,
    /// Switch this connection to multiplexed frames (the reply is empty): from then on each
    /// frame of the client is a [`Tagged`] header and, for a request, the request; each of the
    /// server's is the request's id and the reply. Many calls are then in flight at once.
    Multiplex,
}

impl Request<'_> {
    /// True for the requests a multiplexed connection carries: all but those that set up or
    /// end a connection.
    pub(crate) fn multiplexable(&self) -> bool {
        !matches!(self, Request::Hello { .. } | Request::Shutdown | Request::Channel | Request::Multiplex)
    }
}

/// The header of a client's frame on a multiplexed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Tagged {
    /// A request follows, with its id (unique among the connection's calls in flight) and its
    /// owner (the logical caller: a task).
    Request { id: u64, owner: u64 },
    /// The caller of request `id` gave up on it.
    Cancel { id: u64 },
}

/// What a client's hello says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) client: u128,
    /// `None` from clients older than the field.
    pub(crate) pid: Option<u32>,
}

/// Reads a hello frame: the current form, or the older one without a process id. `None` when
/// the frame is no hello.
pub(crate) fn hello(frame: &[u8]) -> Option<Hello> {
    /// `Request::Hello` before it had `pid`: the same variant index, fewer fields.
    #[derive(Deserialize)]
    enum Before {
        Hello { client: u128 },
    }
    match postcard::from_bytes::<Request<'_>>(frame) {
        Ok(Request::Hello { client, pid }) => Some(Hello { client, pid: Some(pid) }),
        Ok(_) => None,
        Err(_) => match postcard::from_bytes::<Before>(frame) {
            Ok(Before::Hello { client }) => Some(Hello { client, pid: None }),
            Err(_) => None,
        },
    }
}

/// The answer to a request. The server sends `Reply<&Error>`, the client reads `Reply<Error>`:
/// both have the same encoding.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply<'a, E = Error> {
    Ok(#[serde(borrow)] Bytes<'a>),
    Err(E),
}

/// The encoding of `Request::Call { id, method, args }` up to the bytes of `args` (their
/// length included): a large call's arguments are sent from where they lie.
pub(crate) fn call_head(id: u64, method: &str, args_len: usize) -> impl Serialize + '_ {
    // postcard writes a variant as its index, a varint; `Call` is the third.
    (2u32, id, method, args_len)
}

/// The encoding of `Reply::Ok(Bytes(payload))` up to the bytes of `payload`.
pub(crate) fn ok_head(payload_len: usize) -> impl Serialize {
    (0u32, payload_len)
}

/// What the server returns for a created object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NewObject {
    pub(crate) id: u64,
    pub(crate) typeid: String,
    /// The hash of the object's type description, which the receiving proxy checks.
    pub(crate) fingerprint: Fingerprint,
}

/// One object and its count, in the reply to `DebugInfo` (what
/// [`crate::BaseManager::number_of_objects`] counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ObjectInfo {
    /// The object id.
    pub(crate) id: u64,
    /// The typeid it was created with (or its type name, for objects returned by methods).
    pub(crate) typeid: String,
    /// References held by clients and by proxies in transit.
    pub(crate) refcount: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_is_read_with_or_without_the_process_id() {
        let now = postcard::to_stdvec(&Request::Hello { client: 7, pid: 42 }).unwrap();
        assert_eq!(hello(&now), Some(Hello { client: 7, pid: Some(42) }));
        // What a client sent before the field: variant 0, then the client id.
        let before = postcard::to_stdvec(&(0u8, 7u128)).unwrap();
        assert_eq!(hello(&before), Some(Hello { client: 7, pid: None }));
        assert_eq!(hello(&postcard::to_stdvec(&Request::Ping).unwrap()), None);
        assert_eq!(hello(b"garbage that is no hello"), None);
    }

    #[test]
    fn the_heads_of_calls_and_replies_are_their_encodings_without_the_bytes() {
        for len in [0usize, 1, 127, 128, 70_000, 3 << 20] {
            let bytes = vec![9u8; len];
            let call = postcard::to_stdvec(&Request::Call { id: u64::MAX - 3, method: "echo", args: Bytes(&bytes) });
            let mut head = postcard::to_stdvec(&call_head(u64::MAX - 3, "echo", len)).unwrap();
            head.extend_from_slice(&bytes);
            assert_eq!(call.unwrap(), head);
            let reply = postcard::to_stdvec(&Reply::<Error>::Ok(Bytes(&bytes))).unwrap();
            let mut head = postcard::to_stdvec(&ok_head(len)).unwrap();
            head.extend_from_slice(&bytes);
            assert_eq!(reply, head);
        }
    }

    #[test]
    fn new_requests_keep_the_indices_of_the_old_ones() {
        // `Ping` stays 13; `Describe` and `Inspect` come after it: older peers decode what they
        // know.
        assert_eq!(postcard::to_stdvec(&Request::Ping).unwrap(), [13]);
        assert_eq!(postcard::to_stdvec(&Request::Describe { typeid: "", id: None }).unwrap(), [14, 0, 0]);
        assert_eq!(postcard::to_stdvec(&Request::Inspect).unwrap(), [15]);
    }
}
