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
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
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
    /// A lock (or a condition's lock) was released, waited on or notified by a caller that does
    /// not hold it (CPython's `RuntimeError`).
    #[error("{object} is not held by the caller: {reason}")]
    NotHeld {
        /// `Lock`, `RLock`, `Condition`.
        object: String,
        /// What was tried, and by whom the lock is held if known.
        reason: String,
    },
    /// A bounded semaphore was released more often than it was acquired (CPython's
    /// `ValueError: Semaphore released too many times`).
    #[error("{object} released too many times")]
    ReleasedTooManyTimes {
        /// `BoundedSemaphore`.
        object: String,
    },
    /// A queue's `task_done` was called more often than items were put (CPython's
    /// `ValueError: task_done() called too many times`).
    #[error("task_done() called too many times")]
    TaskDoneTooManyTimes,
    /// The caller broke another rule of a type (an argument out of its domain, a call that
    /// cannot be made in this state).
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
    /// An error of a shared-memory object of a [`LocalManager`](crate::LocalManager) that has
    /// no variant of its own here (out of arena memory, an invalid handle, ...).
    #[error(transparent)]
    Shm(#[serde(with = "shm_message")] procman_shm::ShmError),
    /// An operating-system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        #[serde(with = "io_message")]
        source: io::Error,
    },
    // New variants go last: an error crosses the wire as its variant's index.
    /// Nothing answered at the address: no manager listens there (yet, or any more), the
    /// socket file or abstract name does not exist, or connecting timed out. No connection was
    /// made, so nothing was sent. [`ManagerBuilder::connect_timeout`](crate::ManagerBuilder::connect_timeout)
    /// makes `connect()` wait for a manager that is still starting.
    #[error("no manager at {address}: {reason}")]
    Unreachable {
        /// The address that was tried.
        address: String,
        /// What the OS said (connection refused, no such file, timed out, ...).
        reason: String,
    },
    /// A child process that procman started ended without taking its role: the program's
    /// `main` does not call [`procman::init()`](crate::init) before anything else, so the child
    /// ran the program itself instead of the manager or the function it was started for.
    #[error(
        "child process {pid} of {program} exited ({status}) without taking its role: call `procman::init()` first in `main` (or use `#[procman::main]`; in tests, `procman::child_entry_point!()`)"
    )]
    InitMissing {
        /// The child's process id.
        pid: u32,
        /// The executable, the parent's own.
        program: String,
        /// How the child ended, as the OS reported it.
        status: String,
    },
    /// A proxy's type and its object's type differ between the client and the manager (two
    /// programs built with different types): found when the proxy is bound to the object, before
    /// any value is exchanged. Nothing was created, taken or changed.
    #[error("type mismatch for `{typeid}`, {what}: the manager has {manager}, this program {client}")]
    TypeMismatch {
        /// The typeid of the object.
        typeid: String,
        /// What differs: `element type \`T\``, `arguments of method \`get\``, ...
        what: String,
        /// The manager's side, with Rust type names.
        manager: String,
        /// This program's side.
        client: String,
    },
    /// A value could not be decoded into the expected type; the value comes back whole, so
    /// nothing is lost (a queue item that fails to decode is in `value`).
    #[error("could not decode {what}: {message} ({} bytes returned in the error)", value.len())]
    Undecodable {
        /// What was being decoded.
        what: String,
        /// The decoder's message.
        message: String,
        /// The encoded value.
        value: Vec<u8>,
    },
}

impl From<procman_shm::ShmError> for Error {
    /// The shared-memory errors that mean the same as one of procman's variants become that
    /// variant, so `Error::Empty` means empty for a manager queue and a shared-memory queue alike.
    fn from(e: procman_shm::ShmError) -> Self {
        use procman_shm::ShmError as S;
        match e {
            S::Empty => Error::Empty,
            S::Full => Error::Full,
            S::BrokenBarrier => Error::BrokenBarrier,
            S::Abandoned { .. } => Error::Abandoned,
            S::NotHeld { object, reason } => Error::NotHeld { object: object.into(), reason },
            S::ReleasedTooManyTimes { object, .. } => Error::ReleasedTooManyTimes { object: object.into() },
            S::IndexOutOfRange { index, len } => Error::IndexOutOfRange { index: index as i64, len },
            S::Timeout(after) => Error::Timeout { what: format!("a shared-memory wait of {after:?}") },
            other => Error::Shm(other),
        }
    }
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
    /// A copy (an error is not `Clone`: some carry what cannot be cloned in general), for the
    /// async calls that waited for one failed connection attempt.
    pub(crate) fn duplicate(&self) -> Error {
        crate::wire::encode(self, "an error").and_then(|b| crate::wire::decode(&b, "an error")).unwrap_or_else(|e| e)
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

    /// True when the manager cannot be reached, whatever the reason: nothing answered at its
    /// address ([`Unreachable`](Error::Unreachable)), a connection that was up broke
    /// ([`ConnectionLost`](Error::ConnectionLost)), or this process shut it down
    /// ([`Shutdown`](Error::Shutdown)). Retrying can help in the first two cases only; match the
    /// variant to tell them apart. To wait for a manager that is starting, use
    /// [`ManagerBuilder::connect_timeout`](crate::ManagerBuilder::connect_timeout) rather than a
    /// loop over this.
    ///
    /// ```
    /// use procman::Error;
    /// let never_up = Error::Unreachable { address: "127.0.0.1:9".into(), reason: "connection refused".into() };
    /// let broke = Error::ConnectionLost { address: "127.0.0.1:9".into(), reason: "reset".into() };
    /// assert!(never_up.is_connection_lost() && broke.is_connection_lost());
    /// assert!(!Error::Empty.is_connection_lost());
    /// assert_eq!(never_up.to_string(), "no manager at 127.0.0.1:9: connection refused");
    /// ```
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Error::Unreachable { .. } | Error::ConnectionLost { .. } | Error::Shutdown { .. })
    }
}

/// The message of a caught panic: its payload when that is a string.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".into()
    }
}

/// `io::Error` crosses the wire as its message and comes back as `io::Error::other`.
mod io_message {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::io;

    pub(super) fn serialize<S: Serializer>(e: &io::Error, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(e)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<io::Error, D::Error> {
        String::deserialize(d).map(io::Error::other)
    }
}

/// A shared-memory error crosses the wire as its message and comes back as
/// [`ShmError::Remote`](procman_shm::ShmError::Remote). The variants a caller acts on
/// (`Empty`, `Full`, ...) never get here: they become [`Error`]'s own variants.
mod shm_message {
    use procman_shm::ShmError;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(e: &ShmError, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(e)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ShmError, D::Error> {
        String::deserialize(d).map(ShmError::Remote)
    }
}
