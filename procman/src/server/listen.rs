//! The listening server ([`Server`]: binds, accepts) and what its connection threads share ([`Core`]).

use super::inspect::Connections;
use super::registry::{self, Creators};
use super::table::Table;
use crate::address::Address;
use crate::auth::AuthKey;
use crate::error::{Error, Result};
use crate::role::ServerConfig;
use crate::transport::{Listener, Stream};
use crate::unpoison;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

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
    pub(super) unauthenticated: AtomicUsize,
    next_connection: AtomicU64,
    /// The authenticated connections as snapshots show them.
    pub(super) connections: Connections,
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
            unauthenticated: AtomicUsize::new(0),
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
            if core.unauthenticated.load(Ordering::Relaxed) >= core.config.max_unauthenticated {
                tracing::warn!(
                    manager = %core.address,
                    peer = %stream.peer(),
                    limit = core.config.max_unauthenticated,
                    "refused a connection: too many unauthenticated connections"
                );
                continue;
            }
            core.unauthenticated.fetch_add(1, Ordering::Relaxed);
            let c = core.clone();
            let spawned =
                std::thread::Builder::new().name("procman-connection".into()).spawn(move || c.serve_connection(stream));
            if let Err(e) = spawned {
                core.unauthenticated.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!(manager = %core.address, error = %e, "cannot start a connection thread");
            }
        }
        core.close_all();
        core.connections.wait_all_closed(STOP_GRACE);
    }
}
