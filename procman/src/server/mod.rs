//! The server: an object table with reference counts, one thread per connection, dispatch by
//! method name.
//!
//! Reference counts are kept per client process (see [`crate::client`]): when the last
//! connection of a client closes, whatever it still held is released, so a client that dies
//! (SIGKILL included) leaks nothing. A proxy in transit holds a reference of its own, adopted by
//! the process that receives it.
//!
//! Objects are called outside the table's lock, each on the thread of the calling connection,
//! so a blocking method (a queue's `get`) blocks only its caller. Objects are dropped outside the
//! lock too: a referent whose `Drop` talks to this server cannot deadlock it.

use crate::address::Address;
use crate::auth::{self, AuthKey};
use crate::error::{Error, Result};
use crate::manager::CreatorEntry;
use crate::shared::{Caller, Dispatch, Referent};
use crate::transport::{Listener, Stream, wake_listener};
use crate::wire::message::{NewObject, ObjectInfo, Reply, Request};
use crate::wire::{self, Bytes};
use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Write};
use std::os::fd::RawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A referent in the object table.
pub type Object = Arc<dyn ServerObject>;

/// What the server needs of a referent; implemented for every `#[shared]` type.
#[doc(hidden)]
pub trait ServerObject: Send + Sync + 'static {
    /// Calls an exposed method.
    fn call(&self, method: &str, args: &[u8], cx: &mut CallCx<'_>) -> Result<Vec<u8>>;
    /// The referent's `Debug` form.
    fn repr(&self) -> String;
    /// The referent encoded.
    fn encode_value(&self) -> Result<Vec<u8>>;
    /// The exposed method names.
    fn exposed(&self) -> &'static [&'static str];
    /// Tells the referent that a connection that called it closed.
    fn connection_closed(&self, caller: Caller);
    /// The referent as `Any`, to find the concrete type of an object of this server.
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

impl<T: Dispatch> ServerObject for Referent<T> {
    fn call(&self, method: &str, args: &[u8], cx: &mut CallCx<'_>) -> Result<Vec<u8>> {
        T::call(self, method, args, cx)
    }
    fn repr(&self) -> String {
        T::repr(&self.read())
    }
    fn encode_value(&self) -> Result<Vec<u8>> {
        T::encode_value(&self.read())
    }
    fn exposed(&self) -> &'static [&'static str] {
        T::EXPOSED
    }
    fn connection_closed(&self, caller: Caller) {
        T::connection_closed(self, caller)
    }
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

thread_local! {
    /// The server whose connection this thread serves.
    static CURRENT_SERVER: std::cell::RefCell<Option<std::sync::Weak<Core>>> = const { std::cell::RefCell::new(None) };
}

/// The referent of `proxy` when it lives in the server running the current call (a creator or
/// method that received a proxy of its own server, as `Condition(lock)` does); `None` elsewhere
/// or when it has another type.
pub(crate) fn local_referent<T: Dispatch>(proxy: &crate::BaseProxy) -> Option<Arc<Referent<T>>> {
    let core = CURRENT_SERVER.with(|c| c.borrow().as_ref().and_then(std::sync::Weak::upgrade))?;
    if proxy.token().address() != &core.address {
        return None;
    }
    let (object, _) = core.object(proxy.token().id()).ok()?;
    object.as_any().downcast::<Referent<T>>().ok()
}

pub(crate) fn new_object<T: Dispatch>(value: T) -> Object {
    Arc::new(Referent::new(value))
}

/// The context of one call in the server.
#[derive(Debug)]
pub struct CallCx<'a> {
    core: Option<&'a Core>,
    caller: Caller,
}

impl CallCx<'_> {
    /// Who is calling.
    pub fn caller(&self) -> Caller {
        self.caller
    }

    /// Puts `value` in the object table with one reference held by the caller, and returns the
    /// encoded token that a `#[shared(proxy)]` method sends back.
    pub fn register<U: Dispatch>(&mut self, value: U) -> Result<Vec<u8>> {
        let Some(core) = self.core else {
            return Err(Error::usage("a detached call context cannot register objects"));
        };
        let typeid = crate::__private::short_type_name::<U>();
        let id = core.insert(typeid.clone().into(), new_object(value), self.caller.client, false);
        wire::encode(&NewObject { id, typeid }, "a new object's token")
    }
}

impl CallCx<'static> {
    /// A context outside any server, for tests of generated dispatch code: `caller()` is
    /// `Caller { client: 0, connection: 0 }` and `register` fails with `Error::Usage`.
    #[doc(hidden)]
    pub fn detached() -> Self {
        CallCx { core: None, caller: Caller { client: 0, connection: 0 } }
    }
}

/// How the server is configured.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ServerConfig {
    pub(crate) manager: String,
    pub(crate) includes: Vec<String>,
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    pub(crate) max_frame_size: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_unauthenticated: usize,
    pub(crate) keepalive: Option<Duration>,
}

struct Entry {
    typeid: Arc<str>,
    object: Object,
    refs: usize,
}

#[derive(Default)]
struct Client {
    connections: usize,
    refs: HashMap<u64, usize>,
}

#[derive(Default)]
struct State {
    objects: HashMap<u64, Entry>,
    clients: HashMap<u128, Client>,
    /// Proxies in transit: ticket -> (object id, pinned by a container).
    transit: HashMap<u64, (u64, bool)>,
    singletons: HashMap<&'static str, u64>,
    open: HashMap<u64, Stream>,
    next_id: u64,
    next_ticket: u64,
}

/// The shared part of a running server.
pub(crate) struct Core {
    address: Address,
    authkey: AuthKey,
    config: ServerConfig,
    registry: HashMap<&'static str, &'static CreatorEntry>,
    state: Mutex<State>,
    singleton_creation: Mutex<()>,
    stopping: AtomicBool,
    listener_fd: RawFd,
    unauthenticated: AtomicUsize,
    next_conn: AtomicU64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("address", &self.address.to_string()).finish_non_exhaustive()
    }
}

/// The objects a connection has called, told when it closes (see
/// [`Dispatch::connection_closed`](crate::shared::Dispatch::connection_closed)).
struct Touched {
    ids: HashSet<u64>,
    /// Freed objects are forgotten when the set reaches this size.
    prune_at: usize,
}

/// A bound server, not yet serving.
pub(crate) struct Server {
    core: Arc<Core>,
    listener: Listener,
}

impl Server {
    pub(crate) fn bind(config: ServerConfig) -> Result<Server> {
        let registry = crate::manager::registry(&config.manager, &config.includes)?;
        let (listener, address) = Listener::bind(&config.address)
            .map_err(|e| Error::io(format_args!("cannot listen on {}", config.address), e))?;
        let core = Core {
            address,
            authkey: AuthKey::new(&config.authkey),
            registry,
            state: Mutex::new(State { next_id: 1, next_ticket: 1, ..State::default() }),
            singleton_creation: Mutex::new(()),
            stopping: AtomicBool::new(false),
            listener_fd: listener.raw_fd(),
            unauthenticated: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            config,
        };
        Ok(Server { core: Arc::new(core), listener })
    }

    pub(crate) fn address(&self) -> &Address {
        &self.core.address
    }

    pub(crate) fn core(&self) -> Arc<Core> {
        self.core.clone()
    }

    pub(crate) fn socket_file(&self) -> Option<std::path::PathBuf> {
        self.listener.socket_file().cloned()
    }

    /// Accepts connections until [`Core::stop`]; then closes every connection.
    pub(crate) fn serve(self) {
        let Server { core, listener } = self;
        tracing::debug!(address = %core.address, "manager listening");
        loop {
            match listener.accept() {
                Ok(stream) => {
                    if core.stopping.load(Ordering::Acquire) {
                        break;
                    }
                    if core.unauthenticated.load(Ordering::Relaxed) >= core.config.max_unauthenticated {
                        tracing::warn!(peer = %stream.peer(), "refused a connection: too many unauthenticated connections");
                        continue;
                    }
                    core.unauthenticated.fetch_add(1, Ordering::Relaxed);
                    let c = core.clone();
                    let spawned = std::thread::Builder::new()
                        .name("procman-connection".into())
                        .spawn(move || c.serve_connection(stream));
                    if let Err(e) = spawned {
                        core.unauthenticated.fetch_sub(1, Ordering::Relaxed);
                        tracing::warn!("cannot start a connection thread: {e}");
                    }
                }
                Err(e) => {
                    if core.stopping.load(Ordering::Acquire) {
                        break;
                    }
                    tracing::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        core.close_all();
        drop(listener);
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops accepting and closes every connection.
    pub(crate) fn stop(&self) {
        if !self.stopping.swap(true, Ordering::AcqRel) {
            wake_listener(self.listener_fd);
        }
        self.close_all();
    }

    fn close_all(&self) {
        let open: Vec<Stream> = self.lock().open.drain().map(|(_, s)| s).collect();
        for s in open {
            s.shutdown();
        }
    }

    fn insert(&self, typeid: Arc<str>, object: Object, client: u128, pin: bool) -> u64 {
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.objects.insert(id, Entry { typeid, object, refs: 1 + usize::from(pin) });
        *st.clients.entry(client).or_default().refs.entry(id).or_default() += 1;
        id
    }

    fn object(&self, id: u64) -> Result<(Object, Arc<str>)> {
        let st = self.lock();
        match st.objects.get(&id) {
            Some(e) => Ok((e.object.clone(), e.typeid.clone())),
            None => Err(Error::UnknownObject { id, address: self.address.to_string() }),
        }
    }

    fn incref(&self, id: u64, client: u128) -> Result<()> {
        let mut st = self.lock();
        let Some(e) = st.objects.get_mut(&id) else {
            return Err(Error::UnknownObject { id, address: self.address.to_string() });
        };
        e.refs += 1;
        *st.clients.entry(client).or_default().refs.entry(id).or_default() += 1;
        Ok(())
    }

    /// Releases `n` references of `client` on `id`; returns the object if that freed it.
    /// Takes `n` references off object `id`; returns the object when that was the last, for
    /// the caller to drop outside the table's lock.
    fn release(st: &mut State, id: u64, n: usize) -> Option<Object> {
        let e = st.objects.get_mut(&id)?;
        e.refs = e.refs.saturating_sub(n);
        if e.refs == 0 {
            return st.objects.remove(&id).map(|e| e.object);
        }
        None
    }

    fn decref(&self, id: u64, client: u128) -> Option<Object> {
        let mut st = self.lock();
        let held = st.clients.get_mut(&client).and_then(|c| c.refs.get_mut(&id));
        match held {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0
                    && let Some(c) = st.clients.get_mut(&client)
                {
                    c.refs.remove(&id);
                }
                Self::release(&mut st, id, 1)
            }
            _ => {
                tracing::debug!(id, "ignored a decref for a reference the client does not hold");
                None
            }
        }
    }

    fn create(&self, typeid: &str, args: &[u8], caller: Caller) -> Result<Vec<u8>> {
        let entry = *self
            .registry
            .get(typeid)
            .ok_or_else(|| Error::UnknownTypeid { typeid: typeid.into(), address: self.address.to_string() })?;
        // Singletons are created one at a time, so that racing first callers share one object.
        let _creating = entry.singleton.then(|| self.singleton_creation.lock().unwrap_or_else(|e| e.into_inner()));
        if entry.singleton {
            let mut st = self.lock();
            if let Some(&id) = st.singletons.get(entry.typeid)
                && let Some(e) = st.objects.get_mut(&id)
            {
                e.refs += 1;
                *st.clients.entry(caller.client).or_default().refs.entry(id).or_default() += 1;
                return wire::encode(&NewObject { id, typeid: typeid.into() }, "a new object's token");
            }
        }
        Caller::set_current(Some(caller));
        let made = catch_unwind(AssertUnwindSafe(|| (entry.create)(args)));
        Caller::set_current(None);
        let object = match made {
            Ok(r) => r?,
            Err(p) => {
                return Err(Error::Remote {
                    typeid: typeid.into(),
                    method: "<create>".into(),
                    message: panic_message(&*p),
                });
            }
        };
        let id = self.insert(entry.typeid.into(), object, caller.client, entry.singleton);
        if entry.singleton {
            self.lock().singletons.insert(entry.typeid, id);
        }
        wire::encode(&NewObject { id, typeid: typeid.into() }, "a new object's token")
    }

    fn pin(&self, ticket: u64) {
        if let Some(t) = self.lock().transit.get_mut(&ticket) {
            t.1 = true;
        }
    }

    /// Ends a pin; returns the object if releasing its reference freed it.
    fn unpin(&self, ticket: u64, to_transit: bool) -> Option<Object> {
        let mut st = self.lock();
        if to_transit {
            if let Some(t) = st.transit.get_mut(&ticket) {
                t.1 = false;
            }
            return None;
        }
        let (id, _) = st.transit.remove(&ticket)?;
        Self::release(&mut st, id, 1)
    }

    fn debug_info(&self) -> Vec<ObjectInfo> {
        let st = self.lock();
        let mut v: Vec<ObjectInfo> = st
            .objects
            .iter()
            .map(|(&id, e)| ObjectInfo { id, typeid: e.typeid.to_string(), refcount: e.refs })
            .collect();
        v.sort_by_key(|o| o.id);
        v
    }

    fn handle(
        &self,
        req: Request<'_>,
        caller: Caller,
        touched: &mut Touched,
        freed: &mut Vec<Object>,
    ) -> Option<Result<Vec<u8>>> {
        Some(match req {
            Request::Hello { .. } => Err(self.protocol("a second hello")),
            Request::Create { typeid, args } => self.create(typeid, args.0, caller),
            Request::Call { id, method, args } => self.call(id, method, args.0, caller, touched),
            Request::Repr { id } => self
                .object(id)
                .and_then(|(o, typeid)| guarded(&typeid, "repr", || Ok(o.repr())))
                .and_then(|s| wire::encode(&s, "a repr")),
            Request::GetValue { id } => {
                self.object(id).and_then(|(o, typeid)| guarded(&typeid, "get_value", || o.encode_value()))
            }
            Request::IncRef { id } => self.incref(id, caller.client).map(|()| Vec::new()),
            Request::DecRef { id } => {
                freed.extend(self.decref(id, caller.client));
                return None;
            }
            Request::Transit { id } => {
                let mut st = self.lock();
                match st.objects.get_mut(&id) {
                    Some(e) => {
                        e.refs += 1;
                        let ticket = st.next_ticket;
                        st.next_ticket += 1;
                        st.transit.insert(ticket, (id, false));
                        wire::encode(&ticket, "a ticket")
                    }
                    None => Err(Error::UnknownObject { id, address: self.address.to_string() }),
                }
            }
            Request::Claim { id, ticket } => {
                let mut st = self.lock();
                if st.transit.get(&ticket) == Some(&(id, false)) {
                    st.transit.remove(&ticket);
                    *st.clients.entry(caller.client).or_default().refs.entry(id).or_default() += 1;
                    Ok(Vec::new())
                } else {
                    drop(st);
                    self.incref(id, caller.client).map(|()| Vec::new())
                }
            }
            Request::Pin { ticket } => {
                self.pin(ticket);
                Ok(Vec::new())
            }
            Request::Unpin { ticket, to_transit } => {
                freed.extend(self.unpin(ticket, to_transit));
                Ok(Vec::new())
            }
            Request::DebugInfo => wire::encode(&self.debug_info(), "debug info"),
            Request::Shutdown => Ok(Vec::new()),
            Request::Ping => Ok(Vec::new()),
        })
    }

    fn call(&self, id: u64, method: &str, args: &[u8], caller: Caller, touched: &mut Touched) -> Result<Vec<u8>> {
        let (object, typeid) = self.object(id)?;
        if touched.ids.insert(id) && touched.ids.len() >= touched.prune_at {
            // A long-lived connection that calls many short-lived objects: forget the freed ones.
            let st = self.lock();
            touched.ids.retain(|id| st.objects.contains_key(id));
            touched.prune_at = (2 * touched.ids.len()).max(1024);
        }
        let mut cx = CallCx { core: Some(self), caller };
        Caller::set_current(Some(caller));
        let r = guarded(&typeid, method, || object.call(method, args, &mut cx));
        Caller::set_current(None);
        match r {
            Err(Error::NotExposed { method, .. }) => Err(Error::NotExposed { typeid: typeid.to_string(), method }),
            r => r,
        }
    }

    fn protocol(&self, message: &str) -> Error {
        Error::Protocol { address: self.address.to_string(), message: message.into() }
    }

    fn serve_connection(self: Arc<Self>, mut stream: Stream) {
        let peer = stream.peer();
        if let Some(idle) = self.config.keepalive {
            let _ = stream.set_keepalive(idle);
        }
        let timeout = Some(self.config.handshake_timeout);
        let _ = stream.set_read_timeout(timeout);
        let _ = stream.set_write_timeout(timeout);
        let authenticated = auth::server_handshake(&mut stream, &self.authkey, &peer);
        self.unauthenticated.fetch_sub(1, Ordering::Relaxed);
        if let Err(e) = authenticated {
            tracing::warn!(%peer, "refused a connection: {e}");
            return;
        }
        let mut reader = BufReader::with_capacity(
            64 * 1024,
            match stream.try_clone() {
                Ok(s) => s,
                Err(_) => return,
            },
        );
        let mut rbuf = Vec::new();
        let mut wbuf = Vec::new();
        let client = match wire::read_frame(&mut reader, &mut rbuf, 1024) {
            Ok(true) => match postcard::from_bytes::<Request<'_>>(&rbuf) {
                Ok(Request::Hello { client }) => client,
                _ => {
                    tracing::warn!(%peer, "closed a connection: it did not start with a hello");
                    return;
                }
            },
            _ => return,
        };
        let _ = stream.set_read_timeout(None);
        let _ = stream.set_write_timeout(None);
        let connection = self.next_conn.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = self.lock();
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            st.clients.entry(client).or_default().connections += 1;
            if let Ok(s) = stream.try_clone() {
                st.open.insert(connection, s);
            }
        }
        let caller = Caller { client, connection };
        CURRENT_SERVER.with(|c| *c.borrow_mut() = Some(Arc::downgrade(&self)));
        CONNECTION_FD.with(|c| c.set(Some(std::os::fd::AsRawFd::as_raw_fd(&stream))));
        let mut touched = Touched { ids: HashSet::new(), prune_at: 1024 };
        let mut freed = Vec::new();
        let limit = wire::encode(&(self.config.max_frame_size as u64), "the frame limit").unwrap_or_default();
        let _ = send_reply(&mut stream, &mut wbuf, Ok(limit));
        loop {
            match wire::read_frame(&mut reader, &mut rbuf, self.config.max_frame_size) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    if let Some(big) = e.get_ref().and_then(|x| x.downcast_ref::<wire::FrameTooLarge>()) {
                        tracing::warn!(%peer, "closed a connection: {big}");
                        let _ = send_reply(
                            &mut stream,
                            &mut wbuf,
                            Err(Error::FrameTooLarge { size: big.size, limit: big.limit }),
                        );
                    }
                    break;
                }
            }
            let req = match postcard::take_from_bytes::<Request<'_>>(&rbuf) {
                Ok((r, [])) => r,
                Ok((_, rest)) => {
                    tracing::warn!(%peer, "closed a connection: {} bytes after a request", rest.len());
                    let msg = format!("{} unexpected bytes after the request", rest.len());
                    let _ = send_reply(&mut stream, &mut wbuf, Err(self.protocol(&msg)));
                    break;
                }
                Err(e) => {
                    tracing::warn!(%peer, "closed a connection: undecodable request: {e}");
                    let _ =
                        send_reply(&mut stream, &mut wbuf, Err(self.protocol(&format!("undecodable request: {e}"))));
                    break;
                }
            };
            let shutdown = matches!(req, Request::Shutdown);
            let reply = self.handle(req, caller, &mut touched, &mut freed);
            freed.clear(); // dropped here, outside the table's lock
            if let Some(reply) = reply
                && send_reply(&mut stream, &mut wbuf, reply).is_err()
            {
                break;
            }
            if shutdown {
                tracing::debug!(address = %self.address, "shutdown requested");
                self.stop();
                break;
            }
        }
        CONNECTION_FD.with(|c| c.set(None));
        self.end_connection(caller, touched);
    }

    fn end_connection(&self, caller: Caller, touched: Touched) {
        let mut freed = Vec::new();
        let mut notify = Vec::new();
        {
            let mut st = self.lock();
            st.open.remove(&caller.connection);
            for id in &touched.ids {
                if let Some(e) = st.objects.get(id) {
                    notify.push(e.object.clone());
                }
            }
            let gone = match st.clients.get_mut(&caller.client) {
                Some(c) => {
                    c.connections = c.connections.saturating_sub(1);
                    c.connections == 0
                }
                None => false,
            };
            if gone && let Some(c) = st.clients.remove(&caller.client) {
                for (id, n) in c.refs {
                    freed.extend(Self::release(&mut st, id, n));
                }
            }
        }
        for o in notify {
            let _ = catch_unwind(AssertUnwindSafe(|| o.connection_closed(caller)));
        }
        drop(freed);
    }
}

/// Pins the tickets of a value that a container of this server received: its proxies stay
/// alive while the container holds the value. Returns the pins, released when dropped.
pub(crate) fn pin_tickets(tickets: Vec<crate::proxy::TicketRef>) -> Option<Pins> {
    let core = CURRENT_SERVER.with(|c| c.borrow().clone())?;
    let strong = core.upgrade()?;
    for t in &tickets {
        if t.address == strong.address {
            strong.pin(t.ticket);
        } else {
            let _ = crate::client::with_conn(&t.address, |c| c.request(&Request::Pin { ticket: t.ticket }));
        }
    }
    Some(Pins { core, tickets, handed_over: AtomicBool::new(false) })
}

/// The pinned tickets of a value stored in this server (see [`pin_tickets`]).
#[derive(Debug)]
pub(crate) struct Pins {
    core: std::sync::Weak<Core>,
    tickets: Vec<crate::proxy::TicketRef>,
    handed_over: AtomicBool,
}

impl Pins {
    /// The value leaves the server for one client: its proxies become ordinary proxies in
    /// transit, adopted by that client.
    pub(crate) fn hand_over(&self) {
        if self.handed_over.swap(true, Ordering::AcqRel) {
            return;
        }
        self.unpin_all(true);
    }

    fn unpin_all(&self, to_transit: bool) {
        let core = self.core.upgrade();
        for t in &self.tickets {
            match &core {
                Some(core) if t.address == core.address => drop(core.unpin(t.ticket, to_transit)),
                _ => {
                    let req = Request::Unpin { ticket: t.ticket, to_transit };
                    let _ = crate::client::with_conn(&t.address, |c| c.request(&req));
                }
            }
        }
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        if !*self.handed_over.get_mut() {
            self.unpin_all(false);
        }
    }
}

thread_local! {
    /// The socket of the connection this server thread serves.
    static CONNECTION_FD: std::cell::Cell<Option<RawFd>> = const { std::cell::Cell::new(None) };
}

/// True on a server thread, where a blocked call can check that its caller is still there.
pub(crate) fn caller_connection_watched() -> bool {
    CONNECTION_FD.with(|c| c.get().is_some())
}

/// True when the peer of this server thread's connection has closed it (its process died or
/// its thread ended) while a call was running.
pub(crate) fn caller_gone() -> bool {
    let Some(fd) = CONNECTION_FD.with(|c| c.get()) else { return false };
    let mut p = libc::pollfd { fd, events: libc::POLLRDHUP, revents: 0 };
    // SAFETY: poll(2) with one valid pollfd and a zero timeout; `fd` is the connection socket,
    // open for as long as this thread serves it.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

fn guarded<T>(typeid: &str, method: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Error::Remote { typeid: typeid.into(), method: method.into(), message: panic_message(&*p) }),
    }
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".into()
    }
}

fn send_reply(stream: &mut Stream, buf: &mut Vec<u8>, r: Result<Vec<u8>>) -> io::Result<()> {
    let framed = match &r {
        Ok(b) => wire::frame(&Reply::<&Error>::Ok(Bytes(b)), buf),
        Err(e) => wire::frame(&Reply::Err(e), buf),
    };
    if let Err(e) = framed {
        wire::frame(&Reply::Err(&e), buf).map_err(|e| io::Error::other(e.to_string()))?;
    }
    stream.write_all(buf)
}
