//! The one error type of procman.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;

/// `Result<T, procman::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when using a manager, a proxy or a child process.
///
/// Each message says what happened and to which object, method or address. Errors raised in a
/// server travel back to the caller with their variant intact, so a caller can match on
/// `Error::Empty` whether the queue is local or remote.
///
/// ```
/// let e = procman::Error::NotExposed { typeid: "counter".into(), method: "audit".into() };
/// assert_eq!(e.to_string(), "method `audit` of `counter` is not exposed");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer did not prove that it knows the authentication key (or the key was refused).
    #[error("authentication with {address} failed: {reason}")]
    Authentication {
        /// The address of the peer.
        address: String,
        /// What went wrong, without the key.
        reason: String,
    },
    /// The connection to the manager broke: the server died, shut down or closed the connection.
    #[error("connection to manager at {address} lost: {reason}")]
    ConnectionLost {
        /// The address of the manager.
        address: String,
        /// What was observed.
        reason: String,
    },
    /// The method is not in the exposed set of the object's type.
    #[error("method `{method}` of `{typeid}` is not exposed")]
    NotExposed {
        /// The typeid (or type name) of the referent.
        typeid: String,
        /// The method that was asked for.
        method: String,
    },
    /// The manager has no creator for this typeid.
    #[error("unknown typeid `{typeid}` at manager {address}")]
    UnknownTypeid {
        /// The typeid that was asked for.
        typeid: String,
        /// The address of the manager.
        address: String,
    },
    /// The same typeid is declared twice for one manager.
    #[error("typeid `{typeid}` is declared twice for manager `{manager}`: at {first} and at {second}")]
    DuplicateTypeid {
        /// The manager.
        manager: String,
        /// The typeid.
        typeid: String,
        /// Where the first declaration is (`file:line`).
        first: String,
        /// Where the second declaration is (`file:line`).
        second: String,
    },
    /// The object id is not (or no longer) held by the server.
    #[error("no object with id {id} at manager {address}")]
    UnknownObject {
        /// The object id.
        id: u64,
        /// The address of the manager.
        address: String,
    },
    /// The method panicked inside the server; the server keeps serving.
    #[error("`{typeid}.{method}` panicked in the manager: {message}")]
    Remote {
        /// The typeid (or type name) of the referent.
        typeid: String,
        /// The method that panicked.
        method: String,
        /// The panic message.
        message: String,
    },
    /// Bytes could not be decoded into the expected type.
    #[error("could not decode {what}: {message}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// The decoder's message.
        message: String,
    },
    /// A value could not be encoded.
    #[error("could not encode {what}: {message}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The encoder's message.
        message: String,
    },
    /// A frame was larger than the configured limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The announced size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The peer broke the protocol (garbage, an unexpected message).
    #[error("protocol error with {address}: {message}")]
    Protocol {
        /// The address of the peer.
        address: String,
        /// What was wrong.
        message: String,
    },
    /// An operation did not complete in time.
    #[error("timed out: {what}")]
    Timeout {
        /// What timed out.
        what: String,
    },
    /// A non-blocking get found the queue empty (or a blocking one timed out).
    #[error("queue is empty")]
    Empty,
    /// A non-blocking put found the queue full (or a blocking one timed out).
    #[error("queue is full")]
    Full,
    /// The holder of a lock died; the lock was recovered and is now held by the caller.
    #[error("the previous holder of the lock died; the lock is now held by the caller")]
    Abandoned,
    /// A barrier was broken (aborted, reset or timed out) while or before waiting.
    #[error("barrier is broken")]
    BrokenBarrier,
    /// A key, attribute or item that is not there (Python's `KeyError`, `AttributeError`,
    /// `ValueError` of `list.remove`).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// An index outside a sequence (Python's `IndexError`).
    #[error("index {index} out of range for a sequence of length {len}")]
    IndexOutOfRange {
        /// The index asked for.
        index: i64,
        /// The length of the sequence.
        len: usize,
    },
    /// A synchronization primitive was used against its rules (release of an unheld lock, ...).
    #[error("{0}")]
    Usage(String),
    /// The manager was shut down.
    #[error("manager at {address} is shut down")]
    Shutdown {
        /// The address of the manager.
        address: String,
    },
    /// A child process panicked; the message is the panic payload.
    #[error("child process {pid} panicked: {message}")]
    ChildPanicked {
        /// The child's process id.
        pid: u32,
        /// The panic message.
        message: String,
    },
    /// A child process ended without reporting a result.
    #[error("child process {pid} exited without a result ({status})")]
    ChildExited {
        /// The child's process id.
        pid: u32,
        /// How it ended, as the OS reported it.
        status: String,
    },
    /// An error from a shared-memory object of a [`LocalManager`](crate::LocalManager).
    #[error(transparent)]
    Shm(#[from] procman_shm::ShmError),
    /// An operating-system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::Io { context: "I/O error".into(), source }
    }
}

impl Error {
    pub(crate) fn io(context: impl fmt::Display, source: io::Error) -> Self {
        Error::Io { context: context.to_string(), source }
    }

    pub(crate) fn decode(what: impl fmt::Display, e: impl fmt::Display) -> Self {
        Error::Decode { what: what.to_string(), message: e.to_string() }
    }

    pub(crate) fn encode(what: impl fmt::Display, e: impl fmt::Display) -> Self {
        Error::Encode { what: what.to_string(), message: e.to_string() }
    }

    /// A usage error (for shared types written by users): the caller broke a rule of the type.
    ///
    /// ```
    /// let e = procman::Error::usage("release of an unheld lock");
    /// assert_eq!(e.to_string(), "release of an unheld lock");
    /// ```
    pub fn usage(message: impl fmt::Display) -> Self {
        Error::Usage(message.to_string())
    }

    /// True for errors that mean the manager can no longer be reached.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Error::ConnectionLost { .. } | Error::Shutdown { .. })
    }
}

/// The form in which an [`Error`] crosses the wire. I/O and shared-memory errors keep their
/// message; every other variant keeps its fields.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    Authentication(String, String),
    ConnectionLost(String, String),
    NotExposed(String, String),
    UnknownTypeid(String, String),
    DuplicateTypeid(String, String, String, String),
    UnknownObject(u64, String),
    Remote(String, String, String),
    Decode(String, String),
    Encode(String, String),
    FrameTooLarge(u64, u64),
    Protocol(String, String),
    Timeout(String),
    Empty,
    Full,
    Abandoned,
    BrokenBarrier,
    NotFound(String),
    IndexOutOfRange(i64, usize),
    Usage(String),
    Shutdown(String),
    ChildPanicked(u32, String),
    ChildExited(u32, String),
    Other(String),
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> Self {
        use Error as E;
        match e {
            E::Authentication { address, reason } => Self::Authentication(address.clone(), reason.clone()),
            E::ConnectionLost { address, reason } => Self::ConnectionLost(address.clone(), reason.clone()),
            E::NotExposed { typeid, method } => Self::NotExposed(typeid.clone(), method.clone()),
            E::UnknownTypeid { typeid, address } => Self::UnknownTypeid(typeid.clone(), address.clone()),
            E::DuplicateTypeid { manager, typeid, first, second } => {
                Self::DuplicateTypeid(manager.clone(), typeid.clone(), first.clone(), second.clone())
            }
            E::UnknownObject { id, address } => Self::UnknownObject(*id, address.clone()),
            E::Remote { typeid, method, message } => Self::Remote(typeid.clone(), method.clone(), message.clone()),
            E::Decode { what, message } => Self::Decode(what.clone(), message.clone()),
            E::Encode { what, message } => Self::Encode(what.clone(), message.clone()),
            E::FrameTooLarge { size, limit } => Self::FrameTooLarge(*size, *limit),
            E::Protocol { address, message } => Self::Protocol(address.clone(), message.clone()),
            E::Timeout { what } => Self::Timeout(what.clone()),
            E::Empty => Self::Empty,
            E::Full => Self::Full,
            E::Abandoned => Self::Abandoned,
            E::BrokenBarrier => Self::BrokenBarrier,
            E::NotFound { what } => Self::NotFound(what.clone()),
            E::IndexOutOfRange { index, len } => Self::IndexOutOfRange(*index, *len),
            E::Usage(m) => Self::Usage(m.clone()),
            E::Shutdown { address } => Self::Shutdown(address.clone()),
            E::ChildPanicked { pid, message } => Self::ChildPanicked(*pid, message.clone()),
            E::ChildExited { pid, status } => Self::ChildExited(*pid, status.clone()),
            E::Shm(_) | E::Io { .. } => Self::Other(e.to_string()),
        }
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        use WireError as W;
        match e {
            W::Authentication(address, reason) => Error::Authentication { address, reason },
            W::ConnectionLost(address, reason) => Error::ConnectionLost { address, reason },
            W::NotExposed(typeid, method) => Error::NotExposed { typeid, method },
            W::UnknownTypeid(typeid, address) => Error::UnknownTypeid { typeid, address },
            W::DuplicateTypeid(manager, typeid, first, second) => {
                Error::DuplicateTypeid { manager, typeid, first, second }
            }
            W::UnknownObject(id, address) => Error::UnknownObject { id, address },
            W::Remote(typeid, method, message) => Error::Remote { typeid, method, message },
            W::Decode(what, message) => Error::Decode { what, message },
            W::Encode(what, message) => Error::Encode { what, message },
            W::FrameTooLarge(size, limit) => Error::FrameTooLarge { size, limit },
            W::Protocol(address, message) => Error::Protocol { address, message },
            W::Timeout(what) => Error::Timeout { what },
            W::Empty => Error::Empty,
            W::Full => Error::Full,
            W::Abandoned => Error::Abandoned,
            W::BrokenBarrier => Error::BrokenBarrier,
            W::NotFound(what) => Error::NotFound { what },
            W::IndexOutOfRange(index, len) => Error::IndexOutOfRange { index, len },
            W::Usage(m) => Error::Usage(m),
            W::Shutdown(address) => Error::Shutdown { address },
            W::ChildPanicked(pid, message) => Error::ChildPanicked { pid, message },
            W::ChildExited(pid, status) => Error::ChildExited { pid, status },
            W::Other(m) => Error::Io { context: "in the manager".into(), source: io::Error::other(m) },
        }
    }
}

/// Errors travel between processes (a spawned function may return `procman::Result<T>`):
/// I/O errors keep their message, every other variant its fields.
impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        WireError::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Error {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        WireError::deserialize(d).map(Error::from)
    }
}
