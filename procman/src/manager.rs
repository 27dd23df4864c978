//! Managers: the handle to a server, its builder, and the registry of creators.

use crate::address::Address;
use crate::auth::{self, AuthKey};
use crate::child::{self, ChildProcess, Role};
use crate::client;
use crate::error::{Error, Result};
use crate::proxy::BaseProxy;
use crate::server::{Core, Object, Server, ServerConfig};
use crate::shared::Proxy;
use crate::wire::message::{ObjectInfo, Request};
use crate::wire::{self, Bytes};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A manager type declared with `#[manager]`: a handle to a server process whose creators are
/// the `fn`s of its `#[manager]` impl block.
pub trait Manager: Sized + Send + Sync + 'static {
    /// A name unique in the program (`module::path::TypeName`), which creators register under.
    const NAME: &'static str;
    /// Other managers whose typeids this one serves too (`#[manager(sync)]` includes
    /// `SyncManager`'s), the way a Python manager subclasses another.
    const INCLUDES: &'static [&'static str];
    /// Wraps an untyped handle.
    fn from_base(base: BaseManager) -> Self;
    /// The untyped handle.
    fn base(&self) -> &BaseManager;
}

/// One creator: registered by `#[manager]` through `inventory`.
#[derive(Debug)]
pub struct CreatorEntry {
    /// `Manager::NAME` of the manager that declares it.
    pub manager: &'static str,
    /// The typeid clients ask for.
    pub typeid: &'static str,
    /// Builds the object from encoded arguments, in the server.
    pub create: fn(&[u8]) -> Result<Object>,
    /// One object shared by every caller.
    pub singleton: bool,
    /// Where it is declared.
    pub file: &'static str,
    /// Where it is declared.
    pub line: u32,
}

inventory::collect!(CreatorEntry);

/// The creators of `manager` and of the managers it includes; a typeid declared twice is an error.
pub(crate) fn registry(manager: &str, includes: &[String]) -> Result<HashMap<&'static str, &'static CreatorEntry>> {
    let mut map: HashMap<&'static str, &'static CreatorEntry> = HashMap::new();
    for e in inventory::iter::<CreatorEntry> {
        if e.manager != manager && !includes.iter().any(|i| i == e.manager) {
            continue;
        }
        if let Some(first) = map.insert(e.typeid, e) {
            return Err(Error::DuplicateTypeid {
                manager: manager.into(),
                typeid: e.typeid.into(),
                first: format!("{}:{}", first.file, first.line),
                second: format!("{}:{}", e.file, e.line),
            });
        }
    }
    Ok(map)
}

/// The typeids a manager serves, sorted (for diagnostics and tools).
///
/// ```
/// assert!(procman::typeids::<procman::NoManager>().unwrap().is_empty());
/// ```
pub fn typeids<M: Manager>() -> Result<Vec<&'static str>> {
    let includes: Vec<String> = M::INCLUDES.iter().map(|s| s.to_string()).collect();
    let mut v: Vec<_> = registry(M::NAME, &includes)?.into_keys().collect();
    v.sort_unstable();
    Ok(v)
}

/// A manager with no creators: for tools that only connect and use [`BaseManager`]'s untyped API.
#[derive(Debug)]
pub struct NoManager(BaseManager);

impl Manager for NoManager {
    const NAME: &'static str = "procman::NoManager";
    const INCLUDES: &'static [&'static str] = &[];
    fn from_base(base: BaseManager) -> Self {
        NoManager(base)
    }
    fn base(&self) -> &BaseManager {
        &self.0
    }
}

impl std::ops::Deref for NoManager {
    type Target = BaseManager;
    fn deref(&self) -> &BaseManager {
        &self.0
    }
}

/// Settings of a manager before it starts, serves or connects (Python's
/// `BaseManager(address, authkey)`).
///
/// Made by the generated `M::new()`. Without an address the server listens on a fresh Linux
/// abstract socket; without a key it uses [`procman::authkey()`](crate::authkey), which the
/// processes procman starts inherit.
pub struct ManagerBuilder<M> {
    address: Option<Result<Address>>,
    authkey: Option<AuthKey>,
    allow_empty_authkey: bool,
    max_frame_size: usize,
    handshake_timeout: Duration,
    max_unauthenticated: usize,
    keepalive: Option<Duration>,
    _manager: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for ManagerBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("manager", &std::any::type_name::<M>())
            .field("address", &self.address)
            .field("authkey", &self.authkey)
            .field("max_frame_size", &self.max_frame_size)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Default for ManagerBuilder<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Manager> ManagerBuilder<M> {
    /// Default settings: a fresh local address, this process's key, 16 MiB frames.
    pub fn new() -> Self {
        ManagerBuilder {
            address: None,
            authkey: None,
            allow_empty_authkey: false,
            max_frame_size: wire::DEFAULT_MAX_FRAME_SIZE,
            handshake_timeout: Duration::from_secs(5),
            max_unauthenticated: 64,
            keepalive: Some(Duration::from_secs(30)),
            _manager: PhantomData,
        }
    }

    /// The address to listen on or connect to (`"127.0.0.1:0"`, `"unix:/path"`, `"@name"`, or an
    /// [`Address`]). A malformed address is reported by `start`, `serve_forever` or `connect`.
    pub fn address<A>(mut self, address: A) -> Self
    where
        A: TryInto<Address>,
        A::Error: Into<Error>,
    {
        self.address = Some(address.try_into().map_err(Into::into));
        self
    }

    /// The authentication key.
    pub fn authkey(mut self, key: impl Into<AuthKey>) -> Self {
        self.authkey = Some(key.into());
        self
    }

    /// Accepts an empty key (refused by default: it authenticates nobody).
    pub fn allow_empty_authkey(mut self) -> Self {
        self.allow_empty_authkey = true;
        self
    }

    /// The largest frame the server accepts (default 16 MiB). A larger frame closes that
    /// connection with [`Error::FrameTooLarge`]; other clients are not affected.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// How long a new connection may take to authenticate (default 5 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How many connections may be authenticating at once (default 64); more are closed at once.
    pub fn max_unauthenticated(mut self, n: usize) -> Self {
        self.max_unauthenticated = n.max(1);
        self
    }

    /// How long a TCP client may stay silent before the server starts probing whether it is
    /// still there (default 30 s; `None` turns probing off). A client that vanished without
    /// closing its connection (network cut, crashed host) is dropped about `2 * idle` later,
    /// and what it held is released. Unix-socket clients are detected at once anyway.
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle;
        self
    }

    fn key(&self) -> Result<AuthKey> {
        let key = self.authkey.clone().unwrap_or_else(auth::authkey);
        if key.is_empty() && !self.allow_empty_authkey {
            return Err(Error::usage(
                "an empty authentication key authenticates nobody; call allow_empty_authkey() to use one anyway",
            ));
        }
        Ok(key)
    }

    fn config(&self) -> Result<ServerConfig> {
        let address = match &self.address {
            None => Address::unique_local(),
            Some(Ok(a)) => a.clone(),
            Some(Err(e)) => return Err(Error::usage(e)),
        };
        Ok(ServerConfig {
            manager: M::NAME.into(),
            includes: M::INCLUDES.iter().map(|s| s.to_string()).collect(),
            address,
            authkey: self.key()?.bytes().to_vec(),
            max_frame_size: self.max_frame_size,
            handshake_timeout: self.handshake_timeout,
            max_unauthenticated: self.max_unauthenticated,
            keepalive: self.keepalive,
        })
    }

    /// Starts the server in a child process (the current binary, re-executed; see
    /// [`crate::init`]) and returns when it listens. The server stops on
    /// [`BaseManager::shutdown`], when the returned handle is dropped, and when this process
    /// dies (SIGKILL included).
    ///
    /// Fails when the address cannot be bound, a typeid is declared twice, or the child cannot
    /// be started.
    pub fn start(self) -> Result<M> {
        child::check_not_unclaimed_child();
        let config = self.config()?;
        let key = AuthKey::new(&config.authkey);
        let mut process = child::spawn(Role::Server(config))?;
        let address = process.wait_ready(Duration::from_secs(30))?;
        auth::remember(&address, &key);
        client::unmark_shut_down(&address);
        Ok(M::from_base(BaseManager::new(address, Owner::Child(process))))
    }

    /// Serves in this process until a client asks it to shut down (Python's
    /// `serve_forever()`). Objects run on connection threads of this process.
    pub fn serve_forever(self) -> Result<()> {
        let server = Server::bind(self.config()?)?;
        let file = server.socket_file();
        server.serve();
        if let Some(f) = file {
            let _ = std::fs::remove_file(f);
        }
        Ok(())
    }

    /// Serves on a background thread of this process and returns a handle, as `start` does
    /// but without a child process. Handy in tests and benchmarks.
    pub fn serve_in_background(self) -> Result<M> {
        let config = self.config()?;
        let key = AuthKey::new(&config.authkey);
        let server = Server::bind(config)?;
        let address = server.address().clone();
        let core = server.core();
        let thread = std::thread::Builder::new()
            .name("procman-server".into())
            .spawn(move || server.serve())
            .map_err(|e| Error::io("starting the server thread", e))?;
        auth::remember(&address, &key);
        client::unmark_shut_down(&address);
        Ok(M::from_base(BaseManager::new(address, Owner::Thread(core, Some(thread)))))
    }

    /// Connects to a running manager (Python's `connect()`): checks the address and the key
    /// with one round trip.
    ///
    /// Fails with [`Error::Authentication`] for a wrong key and [`Error::ConnectionLost`] when
    /// nothing listens there.
    pub fn connect(self) -> Result<M> {
        let address = match self.address {
            Some(Ok(ref a)) => a.clone(),
            Some(Err(ref e)) => return Err(Error::usage(e)),
            None => return Err(Error::usage("connect() needs an address")),
        };
        let key = self.key()?;
        client::unmark_shut_down(&address);
        client::Conn::open_with(&address, &key, client::client_id())?.request(&Request::Ping)?;
        auth::remember(&address, &key);
        Ok(M::from_base(BaseManager::new(address, Owner::Connected)))
    }
}

enum Owner {
    Child(ChildProcess),
    Thread(Arc<Core>, Option<std::thread::JoinHandle<()>>),
    Connected,
    Stopped,
}

struct Inner {
    address: Address,
    owner: Mutex<Owner>,
}

/// The untyped handle to a manager (Python's `BaseManager`), inside every `#[manager]` type.
///
/// Cloning it gives another handle to the same manager; the server a handle started stops when
/// [`shutdown`](Self::shutdown) is called or the last clone is dropped.
#[derive(Clone)]
pub struct BaseManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for BaseManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseManager")
            .field("address", &self.inner.address.to_string())
            .field("pid", &self.pid())
            .finish()
    }
}

impl BaseManager {
    fn new(address: Address, owner: Owner) -> BaseManager {
        BaseManager { inner: Arc::new(Inner { address, owner: Mutex::new(owner) }) }
    }

    /// The address the server listens on: the real one, also when port 0 was asked for.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// The process id of the server, for a manager started with `start()`.
    pub fn pid(&self) -> Option<u32> {
        match &*self.inner.owner.lock().unwrap_or_else(|e| e.into_inner()) {
            Owner::Child(c) => Some(c.pid()),
            _ => None,
        }
    }

    /// Creates an object of `typeid` with encoded arguments (the fields of a tuple, in order)
    /// and returns an untyped proxy. Generated creator methods call this.
    ///
    /// Fails with [`Error::UnknownTypeid`] when the server has no such creator.
    pub fn create_untyped(&self, typeid: &str, args: &[u8]) -> Result<BaseProxy> {
        let req = Request::Create { typeid, args: Bytes(args) };
        let bytes = client::with_conn(&self.inner.address, |c| c.request(&req))?;
        BaseProxy::from_new(&self.inner.address, &bytes)
    }

    /// Creates an object of `typeid` with `args` (a tuple) and returns a typed proxy; for
    /// typeids a `#[manager]` does not declare.
    pub fn create<P: Proxy, A: serde::Serialize>(&self, typeid: &str, args: &A) -> Result<P> {
        let args = wire::encode(args, format_args!("the arguments of `{typeid}`"))?;
        self.create_untyped(typeid, &args).map(P::from_base)
    }

    /// Every live object with its reference count (Python's `_debug_info`).
    pub fn debug_info(&self) -> Result<Vec<ObjectInfo>> {
        let bytes = client::with_conn(&self.inner.address, |c| c.request(&Request::DebugInfo))?;
        wire::decode(&bytes, "debug info")
    }

    /// How many objects the server holds (Python's `_number_of_objects`).
    pub fn number_of_objects(&self) -> Result<usize> {
        self.debug_info().map(|v| v.len())
    }

    /// Stops the server this handle started and waits for it (up to a second, then kills it).
    /// Does nothing for a handle made by `connect()`, and nothing the second time. Proxies of
    /// the manager then fail with [`Error::Shutdown`].
    pub fn shutdown(&self) -> Result<()> {
        let mut owner = self.inner.owner.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*owner, Owner::Connected) {
            return Ok(());
        }
        stop(&self.inner.address, std::mem::replace(&mut *owner, Owner::Stopped))
    }

    /// Asks the server at this address to stop, whoever started it (any authenticated client
    /// may). For remote managers run with `serve_forever`.
    pub fn request_shutdown(&self) -> Result<()> {
        let r = client::request_once(&self.inner.address, &Request::Shutdown).map(drop);
        client::mark_shut_down(&self.inner.address);
        r
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let owner = std::mem::replace(self.owner.get_mut().unwrap_or_else(|e| e.into_inner()), Owner::Stopped);
        let _ = stop(&self.address, owner);
    }
}

/// Stops the server `owner` runs, if any: asks it to shut down, then waits for it (a child
/// process is killed after a second).
fn stop(address: &Address, owner: Owner) -> Result<()> {
    match owner {
        Owner::Child(mut process) => {
            client::mark_shut_down(address);
            let asked = client::request_once(address, &Request::Shutdown);
            process.wait_or_kill(Duration::from_secs(1));
            asked.map(drop).or_else(|e| if e.is_connection_lost() { Ok(()) } else { Err(e) })
        }
        Owner::Thread(core, thread) => {
            client::mark_shut_down(address);
            core.stop();
            if let Some(t) = thread {
                let _ = t.join();
            }
            Ok(())
        }
        Owner::Connected | Owner::Stopped => Ok(()),
    }
}
