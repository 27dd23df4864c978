//! Managers: the handle to a server ([`BaseManager`]) and the builder that starts, binds or
//! connects one ([`ManagerBuilder`]).

use crate::address::Address;
use crate::auth::{self, AuthKey};
use crate::child::{self, ChildProcess};
use crate::client;
use crate::error::{Error, Result};
use crate::inspect::Snapshot;
use crate::proxy::BaseProxy;
use crate::role::{self, Role, ServerConfig};
use crate::server::{Core, Server, registry};
use crate::shared::Proxy;
use crate::transport::Transport;
use crate::unpoison;
use crate::wire::message::{ObjectInfo, Request};
use crate::wire::{self, Bytes};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The typeids a manager serves, sorted (for diagnostics and tools). Fails with
/// [`Error::DuplicateTypeid`] when a typeid is declared twice for it.
///
/// ```
/// assert!(procman::typeids::<procman::NoManager>().unwrap().is_empty());
/// ```
pub fn typeids<M: Manager>() -> Result<Vec<&'static str>> {
    let includes: Vec<String> = M::INCLUDES.iter().map(|s| s.to_string()).collect();
    registry::typeids(M::NAME, &includes)
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
/// processes procman starts inherit. Then one of:
///
/// | method | the server runs | returns |
/// | --- | --- | --- |
/// | [`start`](Self::start) | in a child process (this program, re-executed) | the manager handle |
/// | [`serve_in_background`](Self::serve_in_background) | on a thread of this process | the manager handle |
/// | [`serve_forever`](Self::serve_forever) | on this thread, until a client shuts it down | when it stops |
/// | [`bind`](Self::bind) | not yet: bound, so its real address is known | a [`BoundServer`] |
/// | [`connect`](Self::connect) | elsewhere, already (a remote manager) | the manager handle |
///
/// ```
/// use procman::prelude::*;
///
/// #[derive(Shared, Debug)]
/// pub struct Counter { n: i64 }
///
/// #[shared]
/// impl Counter {
///     pub fn incr(&mut self, by: i64) -> i64 { self.n += by; self.n }
/// }
///
/// #[manager]
/// pub struct AppManager;
///
/// #[manager]
/// impl AppManager {
///     fn counter(start: i64) -> Counter { Counter { n: start } }
/// }
///
/// fn main() -> procman::Result<()> {
///     procman::init();
///     let server = AppManager::new().address("127.0.0.1:0").authkey("secret").serve_in_background()?;
///     let client = AppManager::new().address(server.address().clone()).authkey("secret").connect()?;
///     assert_eq!(client.counter(1)?.incr(1)?, 2);
///     server.shutdown()
/// }
/// ```
///
/// # Logs
///
/// A server logs through [`tracing`](https://docs.rs/tracing), target `procman::server`. It
/// logs the peers it refuses at `warn`, each with the fields `manager` (its address) and `peer`
/// (`ip:port`, or `local peer`); the connection is closed and every other client is served on.
/// Keys are never logged.
///
/// | the peer | message | more fields |
/// | --- | --- | --- |
/// | has a wrong key, or sends bytes that are not procman's handshake | `refused a connection: authentication failed` | `reason = "the client does not know the key"` |
/// | does not finish the handshake within [`handshake_timeout`](Self::handshake_timeout) | `refused a connection: authentication failed` | `reason = "the handshake deadline passed"` |
/// | hangs up during the handshake | `refused a connection: authentication failed` | `reason = "the peer closed the connection during the handshake"` |
/// | arrives when every slot of [`max_unauthenticated`](Self::max_unauthenticated) is taken and as many connections wait for one (it is told the manager is busy) | `refused a connection: too many unauthenticated connections` | `limit` |
/// | has [`max_calls_in_flight`](Self::max_calls_in_flight) calls in flight on an async connection and sends one more (refused, the connection goes on) | `refused a call: too many calls in flight` | `limit` |
/// | sends a frame larger than [`max_frame_size`](Self::max_frame_size) | `closed a connection: frame too large` | `size`, `limit` |
/// | sends an undecodable request (or one nested deeper than [`max_decode_depth`](Self::max_decode_depth)), or bytes after one | `closed a connection: protocol error` | `reason` |
/// | sends a sealed frame that does not open (changed, replayed or injected on the way) | `closed a connection: a sealed frame did not open` | |
/// | starts a frame and does not finish it within [`frame_timeout`](Self::frame_timeout) | `closed a connection: a frame did not arrive whole in time` | `timeout` |
/// | authenticates, then sends something other than a hello | `closed a connection: it did not start with a hello` | |
///
/// At `debug` it logs `manager listening` when it starts serving, `shutdown requested` (with
/// `peer`), and decrefs it ignored (with the object `id`); at `warn`, without `peer`, `accept
/// failed` and `cannot start a connection thread` (with `error`), after which it goes on.
pub struct ManagerBuilder<M> {
    address: Option<Result<Address>>,
    authkey: Option<AuthKey>,
    allow_empty_authkey: bool,
    max_frame_size: usize,
    handshake_timeout: Duration,
    max_unauthenticated: usize,
    max_calls_in_flight: usize,
    keepalive: Option<Duration>,
    connect_timeout: Option<Duration>,
    max_decode_depth: usize,
    frame_timeout: Duration,
    unsealed_tcp: bool,
    transport: Transport,
    _manager: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for ManagerBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("manager", &std::any::type_name::<M>())
            .field("address", &self.address)
            .field("authkey", &self.authkey)
            .field("max_frame_size", &self.max_frame_size)
            .field("connect_timeout", &self.connect_timeout)
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
            max_calls_in_flight: crate::server::DEFAULT_MAX_CALLS_IN_FLIGHT,
            keepalive: Some(Duration::from_secs(30)),
            connect_timeout: None,
            max_decode_depth: wire::DEFAULT_MAX_DECODE_DEPTH,
            frame_timeout: Duration::from_secs(60),
            unsealed_tcp: false,
            transport: Transport::SharedMemory,
            _manager: PhantomData,
        }
    }

    /// The address to listen on or connect to (`"127.0.0.1:0"`, `"unix:/path"`, `"@name"`, or an
    /// [`Address`]). A malformed address is reported by `start`, `bind`, `serve_*` or `connect`.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let m = AppManager::new().address("127.0.0.1:0").serve_in_background()?;
    /// assert!(matches!(m.address(), procman::Address::Tcp { port, .. } if *port != 0));
    ///
    /// let e = AppManager::new().address("no port").serve_in_background().unwrap_err();
    /// assert!(e.to_string().starts_with("invalid address `no port`"), "{e}");
    /// # m.shutdown()
    /// # }
    /// ```
    pub fn address<A>(mut self, address: A) -> Self
    where
        A: TryInto<Address>,
        A::Error: Into<Error>,
    {
        self.address = Some(address.try_into().map_err(Into::into));
        self
    }

    /// The authentication key. Both sides prove that they know it before anything else is
    /// sent; a client with another key gets [`Error::Authentication`] and nothing is created.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let m = AppManager::new().authkey("right key").serve_in_background()?;
    /// let wrong = AppManager::new().address(m.address().clone()).authkey("wrong key").connect();
    /// assert!(matches!(wrong, Err(procman::Error::Authentication { .. })));
    /// assert!(AppManager::new().address(m.address().clone()).authkey("right key").connect().is_ok());
    /// # m.shutdown()
    /// # }
    /// ```
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

    /// How long a new connection may take to authenticate (default 5 s): the whole handshake
    /// and the hello after it, together, whatever the peer sends meanwhile.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How many connections may be authenticating at once (default 64). As many more wait for a
    /// slot (each frees within the handshake deadline); one more is told that the manager is
    /// busy, and its client gets [`Error::Unreachable`].
    pub fn max_unauthenticated(mut self, n: usize) -> Self {
        self.max_unauthenticated = n.max(1);
        self
    }

    /// How many calls one async client process may have in flight on its connection (default
    /// 16,384): running, or blocked in the manager (a `get` waiting for an item), each blocked
    /// one on a thread of the manager. A call beyond them fails at once with
    /// [`Error::Protocol`] and runs nothing; the others go on. Lower it to bound the threads one
    /// client can hold blocked in the manager: the OS gives a process some 16,000 to 30,000.
    ///
    /// ```
    /// use procman::sync::SyncManager;
    ///
    /// procman::init();
    /// let m = SyncManager::new().max_calls_in_flight(1024).serve_in_background()?;
    /// m.shutdown()?;
    /// # Ok::<(), procman::Error>(())
    /// ```
    pub fn max_calls_in_flight(mut self, n: usize) -> Self {
        self.max_calls_in_flight = n.max(1);
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

    /// Makes [`connect`](Self::connect) wait up to `timeout` for a manager that is not up
    /// yet: while nothing answers at the address it tries again, after 10 ms, then doubling up
    /// to 200 ms between attempts, and fails with [`Error::Unreachable`] when the time is over.
    /// A wrong key is not retried: it fails at once with [`Error::Authentication`]. Without it,
    /// `connect` tries once. It applies to `connect` only, not to the connections proxies open
    /// later.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # use std::time::Duration;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let address = procman::Address::unique_local();
    /// // Nothing listens there yet.
    /// let e = AppManager::new().address(address.clone()).connect_timeout(Duration::from_millis(50)).connect();
    /// assert!(matches!(e, Err(procman::Error::Unreachable { .. })));
    ///
    /// // A server that comes up a little later.
    /// let at = address.clone();
    /// let server = std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_millis(100));
    ///     AppManager::new().address(at).serve_forever()
    /// });
    /// let m = AppManager::new().address(address).connect_timeout(Duration::from_secs(10)).connect()?;
    /// m.request_shutdown()?;
    /// server.join().unwrap()
    /// # }
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How deeply nested a decoded value may be (default
    /// [`DEFAULT_MAX_DECODE_DEPTH`](crate::DEFAULT_MAX_DECODE_DEPTH), 128 levels of structs,
    /// enums, sequences, maps and options). The server refuses a request, argument or value
    /// nested deeper with [`Error::Decode`] naming the limit, and goes on; so does this
    /// process for replies and results (with the largest limit any builder of it was given), so
    /// a deep value from a peer can overflow neither side's stack. A linked list of `enum`
    /// nodes uses one level per node.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let m = AppManager::new().max_decode_depth(32).serve_in_background()?;
    /// # m.shutdown()
    /// # }
    /// ```
    pub fn max_decode_depth(mut self, levels: usize) -> Self {
        self.max_decode_depth = levels;
        wire::depth::raise_process_limit(levels);
        self
    }

    /// How long a frame may take to arrive whole once its first byte has (default 60 s). A
    /// client that starts a request and stalls has its connection closed then. (The handshake
    /// and the first frame after it have [`handshake_timeout`](Self::handshake_timeout)
    /// instead, for all of it together.)
    pub fn frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = timeout;
        self
    }

    /// How clients on the same host talk to this manager after the handshake (default
    /// [`Transport::SharedMemory`]: a shared-memory channel per connection, several times faster
    /// than the socket). [`Transport::Socket`] keeps every frame on the socket, as a TCP
    /// connection does; the environment variable `PROCMAN_TRANSPORT=socket` does the same for
    /// every manager and client of a process, for debugging. TCP connections always use the
    /// socket.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// use procman::Transport;
    /// let m = AppManager::new().transport(Transport::Socket).serve_in_background()?;
    /// m.shutdown()
    /// # }
    /// ```
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// For measurement only: TCP connections to this manager carry plain frames instead of
    /// sealed ones (the figure beside which the benchmark shows what sealing costs). Both sides
    /// must ask for it: the manager's builder and the builder of each process that connects;
    /// a client that does not ask seals, and a manager that was not told refuses plain frames,
    /// so a peer cannot downgrade a connection. Never use it where the network is not trusted.
    #[doc(hidden)]
    pub fn unsealed_tcp_for_measurement(mut self) -> Self {
        self.unsealed_tcp = true;
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
            max_calls_in_flight: self.max_calls_in_flight,
            keepalive: self.keepalive,
            max_decode_depth: self.max_decode_depth,
            frame_timeout: self.frame_timeout,
            allow_unsealed_tcp: self.unsealed_tcp,
            shared_memory: self.transport == Transport::SharedMemory,
        })
    }

    /// Starts the server in a child process (the current binary, re-executed; see
    /// [`crate::init`]) and returns when it listens. The server stops on
    /// [`BaseManager::shutdown`], when the returned handle is dropped, and when this process
    /// dies (SIGKILL included).
    ///
    /// Fails when the address cannot be bound, a typeid is declared twice, or the child cannot
    /// be started; with [`Error::InitMissing`] when `main` does not call [`crate::init`] first.
    ///
    /// ```rust,no_run
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// fn main() -> procman::Result<()> {
    ///     procman::init(); // the child takes its role here
    ///     let m = AppManager::new().start()?;
    ///     assert!(m.pid().is_some());
    ///     m.shutdown()
    /// }
    /// ```
    pub fn start(self) -> Result<M> {
        self.start_blocking()
    }

    /// [`start`](Self::start), without blocking the executor: the manager process is started
    /// and waited for on a thread of its own.
    ///
    /// ```rust,no_run
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// fn main() -> procman::Result<()> {
    ///     procman::init();
    ///     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    ///     rt.block_on(async {
    ///         let m = AppManager::new().start_async().await?;
    ///         assert!(m.pid().is_some());
    ///         m.shutdown_async().await
    ///     })
    /// }
    /// ```
    pub async fn start_async(self) -> Result<M> {
        crate::asynchronous::off_thread(move || self.start_blocking()).await
    }

    fn start_blocking(self) -> Result<M> {
        role::check_not_unclaimed_child();
        let config = self.config()?;
        let key = AuthKey::new(&config.authkey);
        let unsealed = config.allow_unsealed_tcp;
        let mut process = child::spawn(Role::Server(config))?;
        let address = process.wait_ready(Duration::from_secs(30))?;
        auth::remember(&address, &key);
        if unsealed {
            auth::allow_unsealed(&address);
        }
        client::unmark_shut_down(&address);
        Ok(M::from_base(BaseManager::new(address, Owner::Child(process))))
    }

    /// Binds the server's address without serving yet (Python's `manager.get_server()`), so
    /// that the real address is known first: the port the OS chose for port 0.
    ///
    /// Fails when the address cannot be bound or a typeid is declared twice.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let server = AppManager::new().address("127.0.0.1:0").authkey("k").bind()?;
    /// let address = server.address().clone(); // say, 127.0.0.1:41873
    /// let serving = std::thread::spawn(move || server.serve_forever());
    /// let client = AppManager::new().address(address).authkey("k").connect()?;
    /// client.request_shutdown()?;
    /// serving.join().unwrap()
    /// # }
    /// ```
    pub fn bind(self) -> Result<BoundServer<M>> {
        Ok(BoundServer { server: Server::bind(self.config()?)?, _manager: PhantomData })
    }

    /// Serves in this process until a client asks it to shut down (Python's
    /// `serve_forever()`); the same as [`bind`](Self::bind) then
    /// [`BoundServer::serve_forever`]. Objects run on connection threads of this process.
    pub fn serve_forever(self) -> Result<()> {
        self.bind()?.serve_forever()
    }

    /// Serves on a background thread of this process and returns a handle, as `start` does
    /// but without a child process. Handy in tests, benchmarks and examples.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let m = AppManager::new().serve_in_background()?;
    /// assert_eq!(m.pid(), None); // no child process
    /// assert_eq!(m.number_of_objects()?, 0);
    /// m.shutdown()
    /// # }
    /// ```
    pub fn serve_in_background(self) -> Result<M> {
        let config = self.config()?;
        let key = AuthKey::new(&config.authkey);
        let unsealed = config.allow_unsealed_tcp;
        let server = Server::bind(config)?;
        let address = server.address().clone();
        if unsealed {
            auth::allow_unsealed(&address);
        }
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
    /// Fails with [`Error::Unreachable`] when nothing answers at the address (see
    /// [`connect_timeout`](Self::connect_timeout) to wait for a manager that is starting),
    /// and with [`Error::Authentication`] for a wrong key.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let server = AppManager::new().address("127.0.0.1:0").authkey("k").serve_in_background()?;
    /// let client = AppManager::new().address(server.address().clone()).authkey("k").connect()?;
    /// assert_eq!(client.address(), server.address());
    /// client.shutdown()?; // does nothing: the client did not start the server
    /// assert_eq!(client.number_of_objects()?, 0);
    ///
    /// server.shutdown()?;
    /// let gone = AppManager::new().address(server.address().clone()).authkey("k").connect();
    /// assert!(matches!(gone, Err(procman::Error::Unreachable { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(self) -> Result<M> {
        self.connect_blocking()
    }

    /// [`connect`](Self::connect), without blocking the executor: the connection and the
    /// handshake run on a thread of their own.
    pub async fn connect_async(self) -> Result<M> {
        crate::asynchronous::off_thread(move || self.connect_blocking()).await
    }

    fn connect_blocking(self) -> Result<M> {
        let address = match self.address {
            Some(Ok(ref a)) => a.clone(),
            Some(Err(ref e)) => return Err(Error::usage(e)),
            None => return Err(Error::usage("connect() needs an address")),
        };
        let key = self.key()?;
        client::unmark_shut_down(&address);
        if self.unsealed_tcp {
            auth::allow_unsealed(&address);
        }
        let mut conn = match self.connect_timeout {
            None => client::Conn::open_with(&address, &key, client::client_id(), false)?,
            Some(within) => client::open_waiting(&address, &key, within)?,
        };
        conn.request(&Request::Ping)?;
        auth::remember(&address, &key);
        Ok(M::from_base(BaseManager::new(address, Owner::Connected)))
    }
}

/// A server bound to its address and not serving yet (Python's `manager.get_server()`): made
/// by [`ManagerBuilder::bind`], so that its real address can be read (and passed on) before it
/// serves. Dropping it unbinds the address.
pub struct BoundServer<M> {
    server: Server,
    _manager: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for BoundServer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundServer")
            .field("manager", &std::any::type_name::<M>())
            .field("address", &self.server.address().to_string())
            .finish()
    }
}

impl<M: Manager> BoundServer<M> {
    /// The address the server is bound to: the real one, with the port the OS chose for port 0.
    pub fn address(&self) -> &Address {
        self.server.address()
    }

    /// Serves in this process until a client asks it to shut down
    /// ([`BaseManager::request_shutdown`]) or its [`ShutdownHandle`] is used; see
    /// [`ManagerBuilder::bind`] for an example.
    pub fn serve_forever(self) -> Result<()> {
        self.server.serve();
        Ok(())
    }

    /// A handle that stops this server from another thread (a signal handler's, say) once it
    /// serves: Python's `server.stop_event.set()`.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let server = AppManager::new().bind()?;
    /// let stop = server.shutdown_handle();
    /// let serving = std::thread::spawn(move || server.serve_forever());
    /// stop.shutdown();
    /// serving.join().unwrap()
    /// # }
    /// ```
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle { core: self.server.core() }
    }
}

/// Stops a server served with [`BoundServer::serve_forever`]: made by
/// [`BoundServer::shutdown_handle`]. Cloned handles stop the same server.
#[derive(Clone)]
pub struct ShutdownHandle {
    core: Arc<Core>,
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShutdownHandle").field(&self.core).finish()
    }
}

impl ShutdownHandle {
    /// Stops accepting connections and closes every client's connection; `serve_forever`
    /// returns. Nothing happens the second time, nor for a server that has stopped.
    pub fn shutdown(&self) {
        self.core.stop();
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
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let m = AppManager::new().address("127.0.0.1:0").serve_in_background()?;
    /// let procman::Address::Tcp { host, port } = m.address() else { unreachable!() };
    /// assert_eq!(host, "127.0.0.1");
    /// assert_ne!(*port, 0);
    /// # m.shutdown()
    /// # }
    /// ```
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// The process id of the server, for a manager started with `start()`.
    pub fn pid(&self) -> Option<u32> {
        match &*unpoison::lock(&self.inner.owner) {
            Owner::Child(c) => Some(c.pid()),
            _ => None,
        }
    }

    /// Creates an object of `typeid` with encoded arguments (the fields of a tuple, in order,
    /// encoded with postcard: nothing for no arguments) and returns an untyped proxy (Python's
    /// `_create`). Generated creator methods call this; tools that know a manager only by its
    /// typeids use it with [`BaseProxy::call_method`].
    ///
    /// Fails with [`Error::UnknownTypeid`] when the server has no such creator, and with
    /// [`Error::Decode`] when the arguments are not the creator's.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[derive(Shared, Debug)]
    /// # pub struct Counter { n: i64 }
    /// # #[shared]
    /// # impl Counter {
    /// #     pub fn incr(&mut self, by: i64) -> i64 { self.n += by; self.n }
    /// # }
    /// #[manager]
    /// pub struct AppManager;
    ///
    /// #[manager]
    /// impl AppManager {
    ///     fn zero() -> Counter { Counter { n: 0 } }
    /// }
    ///
    /// # fn main() -> procman::Result<()> {
    /// let m = AppManager::new().serve_in_background()?;
    /// let c = m.create_untyped("zero", &[])?;
    /// assert_eq!(c.token().typeid(), "zero");
    /// assert_eq!(c.call_method::<_, i64>("incr", &(2i64,))?, 2);
    /// assert!(matches!(m.create_untyped("one", &[]), Err(procman::Error::UnknownTypeid { .. })));
    /// # m.shutdown()
    /// # }
    /// ```
    pub fn create_untyped(&self, typeid: &str, args: &[u8]) -> Result<BaseProxy> {
        self.create_expecting(typeid, args, None)
    }

    /// Creates an object whose type the manager checks against `expect` first.
    pub(crate) fn create_expecting(
        &self,
        typeid: &str,
        args: &[u8],
        expect: Option<crate::typecheck::Expect>,
    ) -> Result<BaseProxy> {
        let req = Request::Create { typeid, args: Bytes(args), expect };
        let bytes = client::with_conn(&self.inner.address, |c| c.request(&req))?;
        BaseProxy::from_new(&self.inner.address, &bytes)
    }

    /// Creates an object of `typeid` with `args` (a tuple) and returns a typed proxy; for
    /// typeids a `#[manager]` does not declare. The object's type is checked against `P`'s
    /// ([`Error::TypeMismatch`]); the creator's argument types are not.
    pub fn create<P: Proxy, A: serde::Serialize>(&self, typeid: &str, args: &A) -> Result<P>
    where
        P::Referent: crate::shared::Dispatch,
    {
        let args = wire::encode(args, format_args!("the arguments of `{typeid}`"))?;
        crate::typecheck::create::<P>(self, typeid, &args, None)
    }

    /// What the manager holds and who uses it, now (Python's `_debug_info`, and more): every
    /// live object with its reference count and the clients that hold it, every client
    /// process with its connections, and the state of the built-in types (who holds each lock
    /// and for how long, who waits on what, queue lengths). See [`crate::inspect`].
    ///
    /// Any authenticated client may ask (the `Inspect` request). Fails as any request does:
    /// [`Error::Unreachable`], [`Error::ConnectionLost`]; a manager of an older version closes
    /// the connection with [`Error::Protocol`].
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[derive(Shared, Debug)]
    /// # pub struct Counter { n: i64 }
    /// # #[shared]
    /// # impl Counter {
    /// #     pub fn get(&self) -> i64 { self.n }
    /// # }
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {
    /// #     fn counter(start: i64) -> Counter { Counter { n: start } }
    /// # }
    /// # fn main() -> procman::Result<()> {
    /// let m = AppManager::new().serve_in_background()?;
    /// let c = m.counter(0)?;
    /// let d = c.clone();
    /// let info = m.debug_info()?;
    /// let counter = &info.objects[0];
    /// assert_eq!((counter.typeid.as_str(), counter.refcount), ("counter", 2));
    /// let me = info.client_with_pid(std::process::id()).unwrap();
    /// assert_eq!(counter.holders[0].client, me.id);
    /// assert_eq!(me.objects, [counter.id]);
    /// assert!(counter.state.is_none()); // only the built-in types report a state
    /// drop((c, d));
    /// assert!(m.debug_info()?.objects.is_empty());
    /// # m.shutdown()
    /// # }
    /// ```
    pub fn debug_info(&self) -> Result<Snapshot> {
        let bytes = client::with_conn(&self.inner.address, |c| c.request(&Request::Inspect))?;
        wire::decode(&bytes, "a snapshot of the manager")
    }

    /// How many objects the server holds (Python's `_number_of_objects`).
    pub fn number_of_objects(&self) -> Result<usize> {
        let bytes = client::with_conn(&self.inner.address, |c| c.request(&Request::DebugInfo))?;
        wire::decode::<Vec<ObjectInfo>>(&bytes, "debug info").map(|v| v.len())
    }

    /// One round trip to the manager on this thread's connection (opened first if needed, and
    /// not counted): returns how long the request and its reply took.
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {}
    /// # fn main() -> procman::Result<()> {
    /// let m = AppManager::new().serve_in_background()?;
    /// assert!(m.ping()? < std::time::Duration::from_secs(1));
    /// m.shutdown()?;
    /// assert!(matches!(m.ping(), Err(procman::Error::Shutdown { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn ping(&self) -> Result<Duration> {
        client::with_conn(&self.inner.address, |c| {
            let sent = Instant::now();
            c.request(&Request::Ping)?;
            Ok(sent.elapsed())
        })
    }

    /// Stops the server this handle started and waits for it (up to a second, then kills it).
    /// Does nothing for a handle made by `connect()`, and nothing the second time. Proxies of
    /// the manager then fail with [`Error::Shutdown`].
    ///
    /// ```
    /// # use procman::prelude::*;
    /// # #[derive(Shared, Debug)]
    /// # pub struct Counter { n: i64 }
    /// # #[shared]
    /// # impl Counter {
    /// #     pub fn get(&self) -> i64 { self.n }
    /// # }
    /// # #[manager]
    /// # pub struct AppManager;
    /// # #[manager]
    /// # impl AppManager {
    /// #     fn counter(start: i64) -> Counter { Counter { n: start } }
    /// # }
    /// # fn main() -> procman::Result<()> {
    /// let m = AppManager::new().serve_in_background()?;
    /// let c = m.counter(3)?;
    /// m.shutdown()?;
    /// m.shutdown()?; // nothing the second time
    /// assert!(matches!(c.get(), Err(procman::Error::Shutdown { .. })));
    /// assert!(matches!(m.counter(0), Err(procman::Error::Shutdown { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown(&self) -> Result<()> {
        self.shutdown_blocking()
    }

    /// [`shutdown`](Self::shutdown), without blocking the executor: the manager is asked to
    /// stop and waited for on a thread of its own.
    pub async fn shutdown_async(&self) -> Result<()> {
        let m = self.clone();
        crate::asynchronous::off_thread(move || m.shutdown_blocking()).await
    }

    fn shutdown_blocking(&self) -> Result<()> {
        let mut owner = unpoison::lock(&self.inner.owner);
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
        let owner = std::mem::replace(unpoison::get_mut(&mut self.owner), Owner::Stopped);
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
