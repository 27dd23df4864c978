//! Snapshots of a live manager: its objects and who holds them, its clients and their
//! connections, and the state of the built-in synchronization types — who holds each lock and
//! for how long, who waits on each lock, condition, event, barrier and queue.
//!
//! [`BaseManager::debug_info`](crate::BaseManager::debug_info) asks the server for a
//! [`Snapshot`] (the `Inspect` request of the protocol, answered by any authenticated client);
//! the `procman inspect` command prints one as a table or as JSON. Python's `_debug_info()`
//! gives the first two columns of [`ObjectSnapshot`] only.
//!
//! ```
//! use procman::inspect::ObjectState;
//! use procman::sync::SyncManager;
//!
//! procman::init();
//! let m = SyncManager::new().serve_in_background()?;
//! let jobs = m.queue::<String>(0)?;
//! jobs.put("first".to_string())?;
//! let lock = m.lock()?;
//! let _held = lock.guard()?;
//!
//! let snapshot = m.debug_info()?;
//! let me = snapshot.clients.iter().find(|c| c.pid == Some(std::process::id())).unwrap();
//! assert_eq!(me.objects, [1, 2]); // this process holds both objects
//! for object in &snapshot.objects {
//!     match &object.state {
//!         Some(ObjectState::Queue { len, .. }) => assert_eq!(*len, 1),
//!         Some(ObjectState::Lock { holder: Some(holder), waiting }) => {
//!             assert_eq!(holder.client, me.id);
//!             assert!(waiting.is_empty());
//!         }
//!         other => panic!("unexpected state {other:?}"),
//!     }
//! }
//! # Ok::<(), procman::Error>(())
//! ```
//!
//! # Serialized form
//!
//! Every type here is `Serialize` and `Deserialize`: postcard on the wire, and any serde format
//! elsewhere (`procman inspect --json` is `serde_json`). Durations are seconds as a
//! floating-point number; a [`ClientId`] is a number in binary formats and a string of 32 hex
//! digits in human-readable ones (JSON), where 128-bit numbers do not survive most parsers.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, Instant};

/// The random id a client process chose for its lifetime (it names the process in the server:
/// a process has one id whatever its connections).
///
/// Shown as 32 hex digits; [`short`](Self::short) gives the first 8, enough to tell clients
/// apart on one screen.
///
/// ```
/// let id = procman::inspect::ClientId(0x3f2a_9c1e_0000_0000_0000_0000_0000_0001);
/// assert_eq!(id.to_string(), "3f2a9c1e000000000000000000000001");
/// assert_eq!(id.short(), "3f2a9c1e");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u128);

impl ClientId {
    /// The first 8 hex digits.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(8);
        s
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Serialize for ClientId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { s.collect_str(self) } else { s.serialize_u128(self.0) }
    }
}

impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            u128::from_str_radix(&s, 16).map(ClientId).map_err(serde::de::Error::custom)
        } else {
            u128::deserialize(d).map(ClientId)
        }
    }
}

/// What a manager holds and who uses it, at one moment: the answer to
/// [`BaseManager::debug_info`](crate::BaseManager::debug_info).
///
/// Objects and clients are sorted by id. The snapshot is taken object by object, not under one
/// lock, so a call that ran meanwhile may show in one object and not in another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The address the manager listens on.
    pub address: String,
    /// The process id of the manager.
    pub pid: u32,
    /// How long the manager has been serving.
    #[serde(with = "seconds")]
    pub uptime: Duration,
    /// Every live object.
    pub objects: Vec<ObjectSnapshot>,
    /// Every connected client process, and any that still holds references.
    pub clients: Vec<ClientSnapshot>,
}

impl Snapshot {
    /// The object with this id, if it is live.
    ///
    /// ```
    /// # use procman::sync::SyncManager;
    /// # procman::init();
    /// let m = SyncManager::new().serve_in_background()?;
    /// let event = m.event()?;
    /// let snapshot = m.debug_info()?;
    /// assert_eq!(snapshot.object(event.token().id()).unwrap().typeid, "Event");
    /// assert!(snapshot.object(999).is_none());
    /// # Ok::<(), procman::Error>(())
    /// ```
    pub fn object(&self, id: u64) -> Option<&ObjectSnapshot> {
        self.objects.iter().find(|o| o.id == id)
    }

    /// The client with this process id, if one is connected (the first, if several say so).
    pub fn client_with_pid(&self, pid: u32) -> Option<&ClientSnapshot> {
        self.clients.iter().find(|c| c.pid == Some(pid))
    }
}

/// One live object of a manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ObjectSnapshot {
    /// The object id (what its proxies' tokens carry).
    pub id: u64,
    /// The typeid it was created with (or its type name, for objects returned by methods).
    pub typeid: String,
    /// References held by clients, by proxies in transit, and by the manager itself (one, for
    /// a singleton): the object lives while this is above zero.
    pub refcount: usize,
    /// The clients holding references, by client id.
    pub holders: Vec<Reference>,
    /// The state of a built-in type; `None` for other types.
    pub state: Option<ObjectState>,
    /// The Rust type of the object, with the element types a generic container recorded when it
    /// was created (`Queue<u64>`; `Queue<Opaque>` for one created untyped).
    pub type_name: String,
}

/// The references one client holds to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reference {
    /// The client process.
    pub client: ClientId,
    /// How many references it holds (one per proxy, clones included).
    pub refs: usize,
}

/// One client process of a manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientSnapshot {
    /// The client's id.
    pub id: ClientId,
    /// Its process id, as the client said in its hello (`None` for clients of older versions).
    /// A client on another host has a process id of that host.
    pub pid: Option<u32>,
    /// Its open connections (one per client thread that used the manager, plus one that anchors
    /// the process's references), by number.
    pub connections: Vec<ConnectionSnapshot>,
    /// The ids of the objects it holds references to, sorted.
    pub objects: Vec<u64>,
}

/// One open connection of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionSnapshot {
    /// The connection's number, unique within the manager (what [`Party::connection`] names).
    pub number: u64,
    /// The peer: `ip:port` for TCP, `local peer` for a Unix socket.
    pub peer: String,
    /// How long the connection has been open.
    #[serde(with = "seconds")]
    pub connected_for: Duration,
}

/// A client thread that holds or waits for an object: its process, its connection (one per
/// client thread), and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Party {
    /// The client process.
    pub client: ClientId,
    /// The process id of the client, where known.
    pub pid: Option<u32>,
    /// The connection of the client thread.
    pub connection: u64,
    /// How long it has held the object (a holder) or waited for it (a waiter).
    #[serde(with = "seconds")]
    pub elapsed: Duration,
}

impl Party {
    /// The connection `connection` of client `client`, since `since`; the process id is filled
    /// in by the server.
    pub(crate) fn new(client: u128, connection: u64, since: Instant) -> Party {
        Party { client: ClientId(client), pid: None, connection, elapsed: since.elapsed() }
    }
}

impl fmt::Display for Party {
    /// `3f2a9c1e/7 (pid 1234) for 2.3s`: short client id, connection, pid, elapsed time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.client.short(), self.connection)?;
        if let Some(pid) = self.pid {
            write!(f, " (pid {pid})")?;
        }
        write!(f, " for {}", Elapsed(self.elapsed))
    }
}

/// A duration the way the snapshot's readers want it: `850ms`, `2.3s`, `4m05s`, `3h02m`.
///
/// ```
/// use procman::inspect::Elapsed;
/// use std::time::Duration;
///
/// assert_eq!(Elapsed(Duration::from_micros(850_400)).to_string(), "850ms");
/// assert_eq!(Elapsed(Duration::from_millis(2345)).to_string(), "2.3s");
/// assert_eq!(Elapsed(Duration::from_secs(245)).to_string(), "4m05s");
/// assert_eq!(Elapsed(Duration::from_secs(3 * 3600 + 150)).to_string(), "3h02m");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(pub Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        match secs {
            0 => write!(f, "{}ms", d.as_millis()),
            1..60 => write!(f, "{:.1}s", d.as_secs_f64()),
            60..3600 => write!(f, "{}m{:02}s", secs / 60, secs % 60),
            _ => write!(f, "{}h{:02}m", secs / 3600, secs % 3600 / 60),
        }
    }
}

/// The state of a built-in object of [`SyncManager`](crate::sync::SyncManager). Waiters are
/// listed oldest first; a call that does not have to wait never appears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ObjectState {
    /// A [`Lock`](crate::sync::Lock).
    Lock {
        /// The client thread that acquired it, if it is held.
        holder: Option<Party>,
        /// The threads waiting in `acquire`.
        waiting: Vec<Party>,
    },
    /// An [`RLock`](crate::sync::RLock).
    RLock {
        /// The client thread that owns it, if it is held.
        holder: Option<Party>,
        /// How many times the owner has acquired it.
        count: usize,
        /// The threads waiting in `acquire`.
        waiting: Vec<Party>,
    },
    /// A [`Semaphore`](crate::sync::Semaphore) or [`BoundedSemaphore`](crate::sync::BoundedSemaphore).
    Semaphore {
        /// Free permits.
        value: usize,
        /// The bound of a bounded semaphore (its initial value).
        bound: Option<usize>,
        /// The threads waiting in `acquire`.
        waiting: Vec<Party>,
    },
    /// A [`Condition`](crate::sync::Condition).
    Condition {
        /// The state of its lock (an `RLock` of its own, or the `Lock` or `RLock` it was made
        /// over).
        lock: Box<ObjectState>,
        /// The threads waiting in `wait` to be notified.
        waiting: Vec<Party>,
    },
    /// An [`Event`](crate::sync::Event).
    Event {
        /// Whether the flag is set.
        set: bool,
        /// The threads waiting in `wait`.
        waiting: Vec<Party>,
    },
    /// A [`Barrier`](crate::sync::Barrier).
    Barrier {
        /// The number of parties.
        parties: usize,
        /// Whether it is broken.
        broken: bool,
        /// The threads waiting in `wait`: for the others to arrive, or for the previous round
        /// to drain.
        waiting: Vec<Party>,
    },
    /// A [`Queue`](crate::sync::Queue).
    Queue {
        /// Items in the queue.
        len: usize,
        /// The bound (0: none).
        maxsize: usize,
        /// Items put and not yet marked done with `task_done`.
        unfinished: usize,
        /// The threads waiting in `get` for an item.
        getting: Vec<Party>,
        /// The threads waiting in `put` for room.
        putting: Vec<Party>,
        /// The threads waiting in `join`.
        joining: Vec<Party>,
    },
    /// A [`Dict`](crate::sync::Dict), [`List`](crate::sync::List) or [`Array`](crate::sync::Array).
    Items {
        /// How many items (entries, for a dict).
        len: usize,
    },
    /// A [`Namespace`](crate::sync::Namespace).
    Namespace {
        /// Its attribute names, sorted.
        names: Vec<String>,
    },
    /// A [`Value`](crate::sync::Value).
    Value {
        /// The size of its encoded value.
        bytes: usize,
    },
}

impl ObjectState {
    /// The holder of a lock (a condition's lock too), if it is held.
    ///
    /// ```
    /// # use procman::sync::SyncManager;
    /// # procman::init();
    /// let m = SyncManager::new().serve_in_background()?;
    /// let lock = m.lock()?;
    /// let state = |m: &SyncManager| m.debug_info().map(|s| s.objects[0].state.clone().unwrap());
    /// assert!(state(&m)?.holder().is_none());
    /// let _held = lock.guard()?;
    /// assert_eq!(state(&m)?.holder().unwrap().pid, Some(std::process::id()));
    /// # Ok::<(), procman::Error>(())
    /// ```
    pub fn holder(&self) -> Option<&Party> {
        match self {
            ObjectState::Lock { holder, .. } | ObjectState::RLock { holder, .. } => holder.as_ref(),
            ObjectState::Condition { lock, .. } => lock.holder(),
            _ => None,
        }
    }

    /// Every thread waiting on the object, with the method it waits in: `acquire` (a lock or a
    /// semaphore), `wait` (a condition, an event, a barrier), `get`, `put` or `join` (a queue).
    /// A condition's list has its own waiters (`wait`), then its lock's (`acquire`).
    pub fn waiting(&self) -> Vec<(&'static str, &Party)> {
        let mut all: Vec<(&'static str, &Party)> =
            self.lists().into_iter().flat_map(|(method, list)| list.iter().map(move |p| (method, p))).collect();
        if let ObjectState::Condition { lock, .. } = self {
            all.extend(lock.waiting());
        }
        all
    }

    /// The lists of waiters of this object (not of a condition's lock), by method.
    fn lists(&self) -> Vec<(&'static str, &Vec<Party>)> {
        match self {
            ObjectState::Lock { waiting, .. }
            | ObjectState::RLock { waiting, .. }
            | ObjectState::Semaphore { waiting, .. } => vec![("acquire", waiting)],
            ObjectState::Condition { waiting, .. }
            | ObjectState::Event { waiting, .. }
            | ObjectState::Barrier { waiting, .. } => vec![("wait", waiting)],
            ObjectState::Queue { getting, putting, joining, .. } => {
                vec![("get", getting), ("put", putting), ("join", joining)]
            }
            ObjectState::Items { .. } | ObjectState::Namespace { .. } | ObjectState::Value { .. } => Vec::new(),
        }
    }

    /// Every party: holders and waiters, a condition's lock's included.
    fn parties_mut(&mut self) -> Vec<&mut Party> {
        match self {
            ObjectState::Lock { holder, waiting } | ObjectState::RLock { holder, waiting, .. } => {
                holder.iter_mut().chain(waiting).collect()
            }
            ObjectState::Semaphore { waiting, .. }
            | ObjectState::Event { waiting, .. }
            | ObjectState::Barrier { waiting, .. } => waiting.iter_mut().collect(),
            ObjectState::Condition { lock, waiting } => waiting.iter_mut().chain(lock.parties_mut()).collect(),
            ObjectState::Queue { getting, putting, joining, .. } => {
                getting.iter_mut().chain(putting).chain(joining).collect()
            }
            ObjectState::Items { .. } | ObjectState::Namespace { .. } | ObjectState::Value { .. } => Vec::new(),
        }
    }

    /// Sets the process id of every party, from its client id.
    pub(crate) fn fill_pids(&mut self, pid_of: &impl Fn(ClientId) -> Option<u32>) {
        for p in self.parties_mut() {
            p.pid = pid_of(p.client);
        }
    }
}

impl fmt::Display for ObjectState {
    /// One line: `held by 3f2a9c1e/7 (pid 1234) for 2.3s; 1 waiting in acquire`,
    /// `2 items (max 10), 1 unfinished; 1 waiting in get`, ...
    ///
    /// ```
    /// use procman::inspect::ObjectState;
    ///
    /// # procman::init();
    /// let m = procman::sync::SyncManager::new().serve_in_background()?;
    /// let queue = m.queue::<u32>(10)?;
    /// queue.put(7)?;
    /// let state = m.debug_info()?.objects[0].state.clone().unwrap();
    /// assert!(matches!(state, ObjectState::Queue { len: 1, .. }));
    /// assert_eq!(state.to_string(), "1 item (max 10), 1 unfinished");
    /// # Ok::<(), procman::Error>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectState::Lock { holder, .. } | ObjectState::RLock { holder, .. } => match holder {
                Some(h) => write!(f, "held by {h}")?,
                None => f.write_str("free")?,
            },
            ObjectState::Semaphore { value, bound, .. } => {
                write!(f, "{value} free")?;
                if let Some(bound) = bound {
                    write!(f, " of {bound}")?;
                }
            }
            ObjectState::Condition { lock, .. } => match lock.holder() {
                Some(h) => write!(f, "lock held by {h}")?,
                None => f.write_str("lock free")?,
            },
            ObjectState::Event { set, .. } => f.write_str(if *set { "set" } else { "clear" })?,
            ObjectState::Barrier { parties, broken, .. } => {
                write!(f, "{parties} parties")?;
                if *broken {
                    f.write_str(", broken")?;
                }
            }
            ObjectState::Queue { len, maxsize, unfinished, .. } => {
                write!(f, "{len} item{}", if *len == 1 { "" } else { "s" })?;
                if *maxsize > 0 {
                    write!(f, " (max {maxsize})")?;
                }
                if *unfinished > 0 {
                    write!(f, ", {unfinished} unfinished")?;
                }
            }
            ObjectState::Items { len } => write!(f, "{len} item{}", if *len == 1 { "" } else { "s" })?,
            ObjectState::Namespace { names } if names.is_empty() => f.write_str("no attributes")?,
            ObjectState::Namespace { names } => write!(f, "attributes {}", names.join(", "))?,
            ObjectState::Value { bytes } => write!(f, "{bytes} bytes encoded")?,
        }
        if let ObjectState::RLock { count, holder: Some(_), .. } = self {
            write!(f, ", {count} time{}", if *count == 1 { "" } else { "s" })?;
        }
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for (method, _) in self.waiting() {
            match counts.iter_mut().find(|(m, _)| *m == method) {
                Some((_, n)) => *n += 1,
                None => counts.push((method, 1)),
            }
        }
        for (method, n) in counts {
            write!(f, "; {n} waiting in {method}")?;
        }
        Ok(())
    }
}

/// Durations as seconds in a floating-point number.
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(connection: u64) -> Party {
        Party { client: ClientId(0xabcdef12 << 96), pid: None, connection, elapsed: Duration::from_millis(2300) }
    }

    #[test]
    fn states_read_as_one_line() {
        let lock = ObjectState::Lock { holder: Some(party(7)), waiting: vec![party(8), party(9)] };
        assert_eq!(lock.to_string(), "held by abcdef12/7 for 2.3s; 2 waiting in acquire");
        let cond = ObjectState::Condition { lock: Box::new(lock.clone()), waiting: vec![party(3)] };
        assert_eq!(cond.to_string(), "lock held by abcdef12/7 for 2.3s; 1 waiting in wait; 2 waiting in acquire");
        assert_eq!(cond.holder(), Some(&party(7)));
        let methods: Vec<&str> = cond.waiting().iter().map(|(m, _)| *m).collect();
        assert_eq!(methods, ["wait", "acquire", "acquire"]);
        let queue = ObjectState::Queue {
            len: 0,
            maxsize: 0,
            unfinished: 0,
            getting: vec![party(1)],
            putting: vec![],
            joining: vec![],
        };
        assert_eq!(queue.to_string(), "0 items; 1 waiting in get");
        let rlock = ObjectState::RLock { holder: Some(party(2)), count: 2, waiting: vec![] };
        assert_eq!(rlock.to_string(), "held by abcdef12/2 for 2.3s, 2 times");
    }

    #[test]
    fn pids_are_filled_in_everywhere() {
        let mut cond = ObjectState::Condition {
            lock: Box::new(ObjectState::RLock { holder: Some(party(1)), count: 1, waiting: vec![party(2)] }),
            waiting: vec![party(3)],
        };
        cond.fill_pids(&|_| Some(42));
        let mut all: Vec<&Party> = cond.waiting().into_iter().map(|(_, p)| p).collect();
        all.extend(cond.holder());
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|p| p.pid == Some(42)));
        assert_eq!(cond.holder().unwrap().to_string(), "abcdef12/1 (pid 42) for 2.3s");
    }

    #[test]
    fn client_ids_cross_the_wire_as_numbers_and_show_as_32_hex_digits() {
        let id = ClientId(u128::MAX - 1);
        let wire = postcard::to_stdvec(&id).unwrap();
        assert_eq!(postcard::from_bytes::<ClientId>(&wire).unwrap(), id);
        assert_eq!(id.to_string().len(), 32);
    }
}
