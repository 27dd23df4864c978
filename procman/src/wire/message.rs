//! The messages of the manager protocol.

use super::Bytes;
use crate::error::Error;
use crate::schema::Fingerprint;
pub(crate) use crate::typecheck::Expect;
use serde::{Deserialize, Serialize};

/// A request from a client connection. Every request but `DecRef` gets one [`Reply`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request<'a> {
    /// First frame after authentication: who the client process is.
    Hello { client: u128 },
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
    /// The type description of an object (`id`) or of what a creator makes (`typeid`): what a
    /// client compares its own with to name a type mismatch.
    Describe {
        #[serde(borrow)]
        typeid: &'a str,
        id: Option<u64>,
    },
}

/// The answer to a request. The server sends `Reply<&Error>`, the client reads `Reply<Error>`:
/// both have the same encoding.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply<'a, E = Error> {
    Ok(#[serde(borrow)] Bytes<'a>),
    Err(E),
}

/// What the server returns for a created object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NewObject {
    pub(crate) id: u64,
    pub(crate) typeid: String,
    /// The hash of the object's type description, which the receiving proxy checks.
    pub(crate) fingerprint: Fingerprint,
}

/// One line of [`crate::BaseManager::debug_info`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The object id.
    pub id: u64,
    /// The typeid it was created with (or its type name, for objects returned by methods).
    pub typeid: String,
    /// References held by clients and by proxies in transit.
    pub refcount: usize,
}
