//! The listening server ([`Server`]: binds, accepts) and what its connection threads share
//! ([`Core`]), with the admission of new connections.
//!
//! At most `max_unauthenticated` connections authenticate at once, each on a thread of its own
//! and each under the handshake's deadline, so a slot frees within `handshake_timeout` whatever
//! the peer does. A connection that arrives while every slot is taken waits (unread, without a
//! thread) for the next free slot, up to as many connections as there are slots; one more is
//! told that the manager is busy (`procbusy` instead of the handshake's first message, which
//! the client reports as [`Error::Unreachable`]) and closed. A waiting connection that did not
//! get a slot within the handshake deadline is told the same.

use super::inspect::Connections;
use super::object::release;
use super::registry::{self, Creators};
use super::table::Table;
use crate::address::Address;
use crate::auth::{self, AuthKey};
use crate::error::{Error, Result};
use crate::role::ServerConfig;
use crate::transport::{Listener, Stream};
use crate::unpoison;
use crate::wire::depth;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// The stack of a connection thread, before the room for decoding (std's default).
const CONNECTION_STACK: usize = 2 << 20;

/// How long a stopping server waits for its connections' threads to tell their clients that it
/// shut down (a call that ignores its caller may keep one longer; it is not waited for).
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What every connection thread of a server shares.
pub(crate) struct Core {
    pub(super) address: Address,
    pub(super) authkey: AuthKey,
    pub(super) config: ServerConfig,
    pub(super) creators: Creators,
    table: Mutex<Table>,
    /// Held while a singleton is created, so that racing first callers share one object.
    pub(super) singleton_creation: Mutex<()>,
    stopping: AtomicBool,
    /// The accept loop owns the listener; this only wakes it.
    listener: Weak<Listener>,
    /// Authenticated connections by number, shut down when the server stops.
    open: Mutex<HashMap<u64, Arc<Stream>>>,
    /// Connections accepted and not yet authenticated.
    admission: Mutex<Admission>,
    next_connection: AtomicU64,
    /// The authenticated connections as snapshots show them.
    pub(super) connections: Connections,
}

/// The connections authenticating now, and those waiting for a slot to do so.
#[derive(Default)]
struct Admission {
    authenticating: usize,
    waiting: VecDeque<(Stream, Instant)>,
}

/// What becomes of an accepted connection.
enum Admitted {
    /// It has a slot: serve it.
    Now(Stream),
    /// It waits for a slot.
    Waiting,
    /// Every slot is taken and as many connections wait: it is refused.
    Busy(Stream),
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("address", &self.address.to_string()).finish_non_exhaustive()
    }
}

impl Core {
    /// The object table, locked.
    pub(super) fn table(&self) -> MutexGuard<'_, Table> {
        unpoison::lock(&self.table)
    }

    /// Stops accepting and closes every connection.
    pub(crate) fn stop(&self) {
        if !self.stopping.swap(true, Ordering::AcqRel)
            && let Some(listener) = self.listener.upgrade()
        {
            listener.wake();
        }
        self.close_all();
    }

    pub(super) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Wakes every connection's thread by ending the reading half of its socket; each tells
    /// its client that the server shut down, then closes (see `connection.rs`).
    fn close_all(&self) {
        let open: Vec<Arc<Stream>> = unpoison::lock(&self.open).drain().map(|(_, s)| s).collect();
        for s in open {
            s.shutdown_read();
        }
        let waiting = std::mem::take(&mut unpoison::lock(&self.admission).waiting);
        drop(waiting);
    }

    fn admit(&self, stream: Stream) -> Admitted {
        let mut a = unpoison::lock(&self.admission);
        if a.authenticating < self.config.max_unauthenticated {
            a.authenticating += 1;
            Admitted::Now(stream)
        } else if a.waiting.len() < self.config.max_unauthenticated {
            a.waiting.push_back((stream, Instant::now()));
            Admitted::Waiting
        } else {
            Admitted::Busy(stream)
        }
    }

    /// A connection finished authenticating (or failed to): its slot goes to the connection
    /// that has waited longest, if any is still within the deadline, else it frees.
    pub(super) fn authenticated(self: &Arc<Self>) {
        let mut expired = Vec::new();
        let next = {
            let mut a = unpoison::lock(&self.admission);
            let next = loop {
                match a.waiting.pop_front() {
                    Some((s, since)) if since.elapsed() < self.config.handshake_timeout => break Some(s),
                    Some((s, _)) => expired.push(s),
                    None => break None,
                }
            };
            if next.is_none() {
                a.authenticating = a.authenticating.saturating_sub(1);
            }
            next
        };
        for s in expired {
            self.refuse_busy(s);
        }
        if let Some(s) = next {
            self.clone().spawn_connection(s);
        }
    }

    /// Serves `stream` on a thread of its own; it holds an authentication slot.
    fn spawn_connection(self: Arc<Self>, stream: Stream) {
        let core = self.clone();
        // Room for a value nested as deep as the limit allows, beside the referents' own code.
        let stack = CONNECTION_STACK + self.config.max_decode_depth.saturating_mul(depth::STACK_PER_LEVEL).min(1 << 30);
        let spawned = std::thread::Builder::new()
            .name("procman-connection".into())
            .stack_size(stack)
            .spawn(move || core.serve_connection(stream));
        if let Err(e) = spawned {
            tracing::warn!(manager = %self.address, error = %e, "cannot start a connection thread");
            self.authenticated();
        }
    }

    /// Tells the peer that the manager is busy, and closes the connection.
    fn refuse_busy(&self, mut stream: Stream) {
        tracing::warn!(
            manager = %self.address,
            peer = %stream.peer(),
            limit = self.config.max_unauthenticated,
            "refused a connection: too many unauthenticated connections"
        );
        // Eight bytes into a new socket's empty buffer: the write does not wait.
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = stream.write_all(auth::BUSY);
    }

    /// Registers an authenticated connection, so that [`stop`](Self::stop) closes it; returns
    /// its number, or `None` when the server is stopping.
    pub(super) fn open(&self, stream: Arc<Stream>) -> Option<u64> {
        let mut open = unpoison::lock(&self.open);
        // Checked under the lock that `close_all` takes: a connection is closed by `stop` or
        // never registered.
        if self.is_stopping() {
            return None;
        }
        let number = self.next_connection.fetch_add(1, Ordering::Relaxed);
        open.insert(number, stream);
        Some(number)
    }

    /// A connection number that no connection has: for the owners of a multiplexed
    /// connection's calls.
    pub(super) fn connection_number(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn close(&self, connection: u64) {
        unpoison::lock(&self.open).remove(&connection);
    }

    pub(super) fn protocol(&self, message: impl std::fmt::Display) -> Error {
        Error::Protocol { address: self.address.to_string(), message: message.to_string() }
    }

    /// What the clients of a stopping server are told.
    pub(super) fn shut_down(&self) -> Error {
        Error::Shutdown { address: self.address.to_string() }
    }

    pub(super) fn unknown_object(&self, id: u64) -> Error {
        Error::UnknownObject { id, address: self.address.to_string() }
    }
}

/// A bound server, not yet serving.
pub(crate) struct Server {
    core: Arc<Core>,
    listener: Arc<Listener>,
}

impl Server {
    /// Looks up the creators and binds the address. Fails with [`Error::DuplicateTypeid`] or
    /// when the address cannot be bound.
    pub(crate) fn bind(config: ServerConfig) -> Result<Server> {
        let creators = registry::creators(&config.manager, &config.includes)?;
        let (listener, address) = Listener::bind(&config.address)
            .map_err(|e| Error::io(format_args!("cannot listen on {}", config.address), e))?;
        let listener = Arc::new(listener);
        let core = Core {
            address,
            authkey: AuthKey::new(&config.authkey),
            creators,
            table: Mutex::new(Table::new()),
            singleton_creation: Mutex::new(()),
            stopping: AtomicBool::new(false),
            listener: Arc::downgrade(&listener),
            open: Mutex::new(HashMap::new()),
            admission: Mutex::new(Admission::default()),
            next_connection: AtomicU64::new(1),
            connections: Connections::new(),
            config,
        };
        Ok(Server { core: Arc::new(core), listener })
    }

    /// The real address (the port the OS chose for port 0).
    pub(crate) fn address(&self) -> &Address {
        &self.core.address
    }

    /// The handle that stops this server once it serves.
    pub(crate) fn core(&self) -> Arc<Core> {
        self.core.clone()
    }

    pub(crate) fn socket_file(&self) -> Option<std::path::PathBuf> {
        self.listener.socket_file().cloned()
    }

    /// Accepts connections, each served on a thread of its own, until [`Core::stop`]; then
    /// closes every connection.
    pub(crate) fn serve(self) {
        let Server { core, listener } = self;
        tracing::debug!(manager = %core.address, "manager listening");
        loop {
            let stream = match listener.accept() {
                Ok(stream) => stream,
                Err(_) if core.is_stopping() => break,
                Err(e) => {
                    tracing::warn!(manager = %core.address, error = %e, "accept failed");
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            if core.is_stopping() {
                break;
            }
            match core.admit(stream) {
                Admitted::Now(stream) => core.clone().spawn_connection(stream),
                Admitted::Waiting => {}
                Admitted::Busy(stream) => core.refuse_busy(stream),
            }
        }
        core.close_all();
        core.connections.wait_all_closed(STOP_GRACE);
    }
}

impl Drop for Core {
    /// The objects still held when the server ends are dropped one by one, inside the panic
    /// boundary: a referent whose `Drop` panics does not take the thread that drops the server
    /// with it.
    fn drop(&mut self) {
        let objects = unpoison::get_mut(&mut self.table).drain();
        release(&self.address, objects);
    }
}
