//! procman: Python's manager objects for Rust, typed and checked at compile time.
//!
//! A **manager** is a server process that holds objects; other processes, on this machine or
//! others, use them through **proxies**. A proxy has exactly the methods its type exposes, so
//! calling anything else does not compile, and the server checks again at run time because a
//! remote client may be another program.
//!
//! ```
//! use procman::prelude::*;
//!
//! #[derive(Shared, Debug)]
//! pub struct Counter { n: i64 }
//!
//! #[shared]
//! impl Counter {
//!     pub fn incr(&mut self, by: i64) -> i64 { self.n += by; self.n }
//!     pub fn get(&self) -> i64 { self.n }
//!     fn audit(&self) {}                  // not pub: CounterProxy has no `audit`
//! }
//!
//! #[manager]
//! pub struct AppManager;
//!
//! #[manager]
//! impl AppManager {
//!     fn counter(start: i64) -> Counter { Counter { n: start } }   // runs in the server
//! }
//!
//! fn main() -> procman::Result<()> {
//!     procman::init();                    // first line: lets re-executed children take their role
//!     // `start()` runs the manager in a child process; this example serves on a thread.
//!     let m = AppManager::new().serve_in_background()?;
//!     let c = m.counter(5)?;
//!     assert_eq!(c.incr(2)?, 7);
//!     assert_eq!(c.repr()?, "Counter { n: 7 }");
//!     m.shutdown()
//! }
//! ```
//!
//! Calling the private method does not compile:
//!
//! ```compile_fail
//! # use procman::prelude::*;
//! # #[derive(Shared, Debug)]
//! # pub struct Counter { n: i64 }
//! # #[shared]
//! # impl Counter {
//! #     pub fn get(&self) -> i64 { self.n }
//! #     fn audit(&self) {}
//! # }
//! fn check(c: CounterProxy) {
//!     c.audit(); // error[E0599]: no method named `audit` found for struct `CounterProxy`
//! }
//! ```
//!
//! # Async proxies
//!
//! Beside each proxy `CounterProxy`, `#[derive(Shared)]` generates the async proxy
//! `AsyncCounterProxy` ([`AsyncProxy`]), whose methods are the same, as `async fn`s:
//! `counter.into_async()` makes one and `into_blocking()` turns it back, keeping the same
//! reference; it travels to other processes as the proxy does. A `#[shared(proxy)]` method
//! returns the new object's async proxy there, and the `#[shared(client)]` helpers are mirrored
//! with their calls awaited. The built-in types get theirs the same way
//! ([`sync::AsyncQueueProxy`], ...). Managers start, connect and shut down without blocking
//! the executor ([`ManagerBuilder::start_async`], [`ManagerBuilder::connect_async`],
//! [`BaseManager::shutdown_async`]); [`Process::join_async`] waits for a child.
//!
//! ```no_run
//! # use procman::prelude::*;
//! # #[derive(Shared, Debug)]
//! # pub struct Counter { n: i64 }
//! # #[shared]
//! # impl Counter {
//! #     pub fn incr(&mut self, by: i64) -> i64 { self.n += by; self.n }
//! # }
//! async fn bump(counter: CounterProxy) -> procman::Result<i64> {
//!     let counter: AsyncCounterProxy = counter.into_async();
//!     counter.incr(1).await
//! }
//! ```
//!
//! **How a call travels.** Every async call of a process goes through one connection per
//! manager, multiplexed: each request carries an id and its owner. The task that makes a call
//! waits briefly for its reply in place and reads it itself (spinning on the shared-memory ring,
//! or polling the socket and yielding its CPU between looks, within an adaptive bound of at
//! most 50 µs, as the same-host fast path does), so a call that is
//! answered at once costs what a blocking call costs: no thread hand-off on either side. A call
//! that is not answered within the bound returns pending, and the connection's one reader
//! thread wakes its task when the reply comes. The manager runs each call of that connection where it read it, and a watchdog that
//! ticks while calls run hands the reading to another thread when a call has run for a tick
//! (250 µs) without ending; calls of that method on that object then start on a thread of
//! their own. So a `get` that waits an hour delays no other call by more than a tick, and
//! 10,000 pending calls cost 10,000 slots, one connection and one reader thread in the client
//! (and 10,000 waiting threads in the manager, as 10,000 blocking clients would). A call is a
//! plain future: it needs no particular executor. Blocking proxies keep their thread's
//! connection (and the same-host fast path) as before.
//!
//! **Who owns what.** The owner of a call is the tokio task that makes it (with the `tokio`
//! feature, on by default), or else the thread: an `RLock` taken by one task is not re-entered
//! by another task on the same connection, and it stays its task's when the task moves between
//! worker threads. A lock an owner holds is released when the process's async connection closes
//! (the process ended), as a blocking client's is when its connection closes; a task that ends
//! holding one keeps it until then, as a thread that ends holding a lock keeps it until its
//! connection closes.
//!
//! ## Cancellation
//!
//! Dropping the future of a pending call (a `tokio::time::timeout` that expires, a `select!`
//! that takes another branch) cancels it: the manager ends the call's wait at once, and a call
//! that had already finished has what it took given back. What each blocking method of the
//! built-in types guarantees when its future is dropped:
//!
//! | method | when its future is dropped |
//! | --- | --- |
//! | `Queue::get`, `get_nowait` | no item is lost: the wait ends without taking one, or the item it took is put back at the front (`Queue::put_back`) |
//! | `Queue::put` (a full bounded queue) | the item is put, or not put at all; never twice |
//! | `Lock`, `RLock`, `Condition`, `Semaphore`, `BoundedSemaphore`: `acquire` | nothing is held: the wait ends without taking it, or what it took is released (`release_acquired`); an acquire that reports [`Error::Abandoned`] holds the lock, as a returning one does |
//! | `Condition::wait` | the owner holds the lock again, as after any wait: the manager takes it back before it runs the owner's next call |
//! | `Event::wait`, `Queue::join` | nothing is left behind |
//! | `Barrier::wait` | as a wait whose caller died: the barrier is broken for the other parties, as a timeout breaks it |
//!
//! An owner's next calls after a cancel run once its cancelled calls have ended, so they see
//! what those left. On a type of your own, `#[shared(undo = method)]` names the exposed method
//! that takes a result back: when the caller has gone after the manager produced a successful
//! result, the client calls `method` with that result, as the same owner (see
//! [`macro@shared`]). The blocking methods are unaffected.
//!
//! # From Python to procman
//!
//! The specification is the manager chapter of Python's `processing` package; its living
//! descendant is `multiprocessing.managers`. Both spellings map to one procman item:
//!
//! | `processing` | `multiprocessing` | procman |
//! | --- | --- | --- |
//! | `CreatorMethod(callable, typeid=…)` | `BaseManager.register(typeid, callable)` | a `fn` in a `#[manager]` impl; typeid = the fn's name or `#[manager(typeid = "…")]` |
//! | `CreatorMethod(typeid=…)` without callable | `register(typeid)` on the client side | a `fn` without a body in a `#[manager]` impl |
//! | `exposed`, methods not starting with `_` | `exposed=`, `method_to_typeid=` | `#[shared]` exposes every `pub fn` taking `&self` / `&mut self`; `#[shared(skip)]`, `#[shared(exposed(a, b))]`, `#[shared(proxy)]`, `#[shared(rename = "…")]` |
//! | `_callmethod(name, args)` | `_callmethod(name, args)` | [`BaseProxy::call_method`] |
//! | `repr(proxy)`, `_getvalue()` | `repr(proxy)`, `_getvalue()` | [`BaseProxy::repr`], [`Proxy::get_value`] |
//! | `BaseManager(address, authkey)` | `BaseManager(address, authkey)` | `M::new().address(…).authkey(…)` ([`ManagerBuilder`]) |
//! | `start()`, `serve_forever()`, `connect()`, `shutdown()`, `address` | the same, and `get_server()` | [`ManagerBuilder::start`], [`ManagerBuilder::serve_forever`], [`ManagerBuilder::connect`], [`BaseManager::shutdown`], [`BaseManager::address`] |
//! | `_debug_info()`, `_number_of_objects()` | the same | [`BaseManager::debug_info`] (a typed [`inspect::Snapshot`]: objects, their holders, clients, lock holders and waiters), [`BaseManager::number_of_objects`] |
//! | `processing.Manager()` | `multiprocessing.Manager()` | `SyncManager::new().start()` ([`sync::SyncManager`]) |
//! | `m.Queue()`, `m.dict()`, `m.list()`, `m.Namespace()`, `m.Lock()`, … | the same, and `m.JoinableQueue()` | `m.queue::<T>(0)` (joinable), `m.dict::<K, V>()`, `m.list(&items)`, `m.namespace()`, `m.lock()`, … |
//! | `class M(SyncManager)` | `class M(SyncManager)` | `#[manager(sync)] pub struct M;` |
//! | `Process(target, args)` | `Process(target, args)` | [`Process::spawn`] |
//! | `currentProcess().getAuthKey()` | `current_process().authkey` | [`authkey()`] |
//!
//! Where procman differs, it is on purpose:
//!
//! - `start()` consumes the builder and returns the started manager, which has no `start`:
//!   starting twice does not compile. After [`BaseManager::shutdown`], calls fail with
//!   [`Error::Shutdown`].
//! - A method returning `Result<T, E>` comes back as `procman::Result<Result<T, E>>`: the outer
//!   error is procman's (the call failed), the inner one is the method's, typed. A method
//!   returning a one-argument `Result<T>` (such as `procman::Result<T>`) is flattened: its error
//!   becomes the call's error, so a queue's `Error::Empty` reaches the caller as such.
//! - A client process that dies gives back its references (Python leaks them), and a proxy
//!   sent to another process holds a reference while in transit, so its object cannot be freed
//!   before the receiver holds it.
//! - A lock whose holder dies is released, and the next acquirer is told
//!   ([`Error::Abandoned`]); Python deadlocks.
//! - [`Process::spawn`] takes a `fn` (or a closure that captures nothing), not a registered
//!   name: the child finds it at the same place in the same executable.
//! - CPython's exceptions a caller acts on are variants: [`Error::Empty`], [`Error::Full`],
//!   [`Error::NotHeld`] (`RuntimeError` of a release), [`Error::ReleasedTooManyTimes`] and
//!   [`Error::TaskDoneTooManyTimes`] (`ValueError`), [`Error::BrokenBarrier`],
//!   [`Error::NotFound`] (`KeyError`), [`Error::IndexOutOfRange`] (`IndexError`).
//!
//! # Typed across the wire
//!
//! Every type that travels derives [`Schema`] beside `Serialize` and `Deserialize` (all three are
//! in the [`prelude`]). The manager and the client compare the description of each shared type
//! — its exposed methods with the fingerprints of their arguments and results, and its type
//! parameters — once per proxy, when it is bound: at creation (before anything is created), when
//! a `#[shared(proxy)]` method returns it, and on the first call of a proxy received from
//! another process. A difference is [`Error::TypeMismatch`], naming it; calls carry no extra
//! bytes. See [`schema`] for what a fingerprint covers.
//!
//! # Processes
//!
//! `start()` and [`Process::spawn`] re-execute the current binary; the child finds its role in
//! [`init`], which `main` must call first (or use `#[procman::main]`). An integration test file
//! needs one line instead: `procman::child_entry_point!();`.
//!
//! # Wire and authentication
//!
//! Frames are a 4-byte length and postcard; the length is checked against a limit before any
//! allocation, and decoding is bounded in depth ([`ManagerBuilder::max_decode_depth`]), so a
//! deeply nested value cannot overflow a stack. Both sides prove the key with HMAC-SHA256 (keyed
//! by HKDF from the authkey, so only the same key authenticates) over random challenges of 32
//! bytes before anything else is read, and compare in constant time; a wrong key gives
//! [`Error::Authentication`] and creates nothing. The handshake and the first frame after it
//! must be done within one deadline. Over TCP every frame after the handshake is sealed with
//! AES-256-GCM, one key and one counter per direction, derived from the key and both
//! challenges: a relay on the path reads nothing, and a frame it changes, replays or injects
//! closes the connection without running. Unix-socket connections are not sealed (the README's
//! Security section says why). Each client thread has its own connection to each manager, so a
//! blocking call blocks only that thread.
//!
//! # The same-host fast path
//!
//! A client on the same host as its manager (a Unix path or an abstract address) talks to it
//! through shared memory once it is authenticated: the manager creates a memfd for the
//! connection, seals its size and passes it over the socket with `SCM_RIGHTS`; it holds two
//! rings of 128 KiB, one each way, and the connection's frames go through them instead of the
//! socket, byte for byte the same frames. Nothing above the transport changes: proxies, macros,
//! limits, deadlines and errors are the same on both paths, and a frame larger than a ring
//! streams through it.
//!
//! A ring holds records, each on its own cache lines and ended by a commit word that the
//! reader polls, so a small frame arrives in the one cache line that tells it came; the writer
//! of a record of up to 4 KiB asks for all its lines at once before it copies, and pushes
//! those of one of up to 1 KiB to the shared cache after, where the reader finds them sooner
//! (a 1 KiB echo takes about 18% less time with both). A side
//! waiting for bytes (a reply, the next request) spins on the ring for a short, bounded time,
//! then sleeps in `FUTEX_WAIT` on a flag in the shared header; the side that writes sees the
//! flag and wakes it (`FUTEX_WAKE`, one system call, and no hint to the scheduler to run the
//! woken thread on the waker's core, which a socket write gives). The socket stays as the
//! liveness signal: a side that drops its channel shuts it and wakes the peer, and a sleep
//! lasts at most 100 ms before it looks at the socket, so a peer that died (killed) is noticed
//! within that. The spin budget adapts to how long recent waits took (at most 50 µs,
//! `PROCMAN_SPIN_US` to change it, 0 to never spin), no more threads of a process spin at once
//! than it has cores, a spin gives its core away every few microseconds (`sched_yield`), and a
//! one-core machine never spins; a spin that runs out while its peer was not woken by it
//! backs off (the next waits sleep at once, twice as many each time, until a spin pays again),
//! so with more runnable threads than cores the fast path sleeps as the socket does instead of
//! spinning against its own peer. A call blocked for an hour (a `get`, an `acquire`) uses next
//! to no CPU after its spin. A proxy call then costs about half a microsecond where a socket
//! round trip costs five to twenty (see the README's benchmarks).
//!
//! With more client threads than cores, the manager's connection threads take turns: a
//! thread answers its connection's requests only while it holds one of the process's serving
//! slots (one per two cores), keeps it while its client keeps calling, for up to a millisecond
//! when other connections wait, and gives it up when it sleeps, when its call blocks (a `get`,
//! an `acquire`, a call it makes itself) and when its connection ends. A client spins for its
//! reply only while the manager shows, in the channel's header, that its connection holds a
//! slot; the others sleep. The manager's thread also moves off a core that it finds its
//! client on, since two threads that spin for each other on one core take turns at it. So 64
//! client threads on 2 cores run one hot pair at a time, at the speed of a lone client, and
//! switch pairs a few hundred times a second: a call costs about the CPU time of a lone
//! client's, where every call otherwise paid two wake-ups. The price is fairness at the scale
//! of a millisecond, as a scheduler's: a call that arrives while 63 connections wait their
//! turn waits for their quanta. A method that blocks where procman cannot see it (a sleep, a
//! condition variable of its own) loses its slot to a waiting connection that finds its
//! thread asleep, within 20 µs of that connection's arrival, or at the next look of the
//! waiter that watches (every millisecond). A type whose callers wait for each other that
//! way (a mailbox on a condition variable of its own) pays for it on every exchange: about
//! twice the socket path's round trip, so [`Transport::Socket`] suits a manager of such types.
//!
//! The peer may write the shared pages at any time: each side keeps its own positions, checks
//! the peer's against the ring, and copies bytes out before anything decodes them; a broken
//! position or frame closes only that connection.
//!
//! Off per manager with [`ManagerBuilder::transport`]`(`[`Transport::Socket`]`)`, or for a
//! whole process with `PROCMAN_TRANSPORT=socket` (debugging, `strace`); TCP connections are
//! never moved. Connections used for a single request (shutdown, checks) stay on the socket.
//!
//! # Architecture
//!
//! The crates: `procman` (this one, the runtime), `procman-derive` (the macros, re-exported
//! here; generated code names only `::procman::__private`), `procman-shm` (the shared-memory
//! arena of [`LocalManager`], re-exported as [`shm`]). Neither of the other two depends on
//! anything of ours.
//!
//! The modules of the runtime, from the bottom up:
//!
//! - `error`, `address`, `wire` (framing and messages), `auth` (the handshake), `transport`
//!   (sockets and the same-host shared-memory channel: the only module that makes socket
//!   system calls), [`inspect`] (the snapshot
//!   types that [`BaseManager::debug_info`] returns);
//! - `encoded` ([`Encoded`], values held as bytes), `shared` (the [`Shared`], [`Proxy`],
//!   [`AsyncProxy`] and `Dispatch` traits), `registry` (creators and child roles, below both the server and the
//!   processes that start it);
//! - `server` (the object table, the connection loop, the pins of proxies stored in
//!   containers, the snapshot that answers `Inspect`), `client` (a thread's connection to a
//!   manager), `proxy` ([`BaseProxy`], [`Token`]);
//! - `manager` ([`BaseManager`], [`ManagerBuilder`]), `child` ([`Process`], re-execution),
//!   `local` ([`LocalManager`]), `asynchronous` (the calls of the async proxies' methods);
//! - [`sync`]: the built-in types, written with the macros like a user's types.
//!
//! A call's path: `counter.incr(2)` on a `CounterProxy` (generated by `#[shared]`) encodes its
//! arguments with postcard into a request `Call { id, method: "incr", args }`, which the
//! calling thread's connection (`client`) frames and writes to the manager's socket. The
//! manager's thread for that connection (`server`) reads the frame (length checked first),
//! finds the object by id, and calls `Dispatch::call` — the generated `match` on the method
//! name — which decodes the arguments, runs `Counter::incr` under the referent's write lock,
//! and encodes the result. The reply travels back the same way and the proxy method decodes
//! it; a panic in the method becomes [`Error::Remote`], and the manager goes on.
//!

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[allow(unused_extern_crates)] // the generated code of the built-in types names `::procman`
extern crate self as procman;

mod address;
mod asynchronous;
mod auth;
mod bytes;
mod child;
mod client;
mod encoded;
mod entry;
mod error;
pub mod inspect;
mod local;
mod manager;
mod proxy;
mod role;
pub mod schema;
mod server;
mod shared;
pub mod sync;
mod transport;
mod typecheck;
mod unpoison;
mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use __private::Wire;
pub use address::Address;
pub use auth::{AuthKey, authkey, set_authkey};
pub use bytes::ByteBuf;
pub use child::{Action, Process};
pub use encoded::{Encoded, Opaque};
pub use entry::init;
pub use error::{Error, Result};
pub use local::{DEFAULT_ARENA_CAPACITY, LocalManager};
pub use manager::{BaseManager, BoundServer, Manager, ManagerBuilder, NoManager, ShutdownHandle, typeids};
pub use proxy::{BaseProxy, Token};
pub use server::CreatorEntry;
pub use shared::{AsyncProxy, Caller, Proxy, Shared};
pub use transport::Transport;
pub use wire::{DEFAULT_MAX_DECODE_DEPTH, DEFAULT_MAX_FRAME_SIZE};

pub use procman_derive::{Schema, Shared, main, manager, shared};
pub use schema::Schema;

/// The shared-memory arena and its objects (the `procman-shm` crate), which a
/// [`LocalManager`] creates.
#[doc(inline)]
pub use procman_shm as shm;

/// The names most programs use: `use procman::prelude::*;`.
pub mod prelude {
    pub use crate::sync::SyncTypes;
    pub use crate::{AsyncProxy, BaseManager, Error, LocalManager, Manager, Process, Proxy, Schema, Shared};
    pub use procman_derive::{manager, shared};
    pub use serde::{Deserialize, Serialize};
}

/// Registers a `fn()` that a manager may run for its clients: a barrier's action
/// ([`SyncTypes::barrier_with_action`](crate::sync::SyncManager::barrier_with_action)). A manager
/// runs only registered functions, so a client cannot make it run anything else.
///
/// ```
/// fn all_arrived() {
///     println!("everyone is here");
/// }
/// procman::action!(all_arrived);
/// ```
#[macro_export]
macro_rules! action {
    ($function:path) => {
        $crate::__private::inventory::submit! {
            $crate::Action { function: $function, name: ::core::stringify!($function) }
        }
    };
}

/// Declares, in an integration-test file (`tests/*.rs`), the entry point through which the
/// processes procman starts from that test binary take their role. One line at the top level of
/// the file:
///
/// ```rust,ignore
/// procman::child_entry_point!();
/// ```
///
/// It adds an ignored test named `procman_child_entry`, which procman runs in the child (the
/// test harness owns `main`, so [`init`] cannot be called there).
#[macro_export]
macro_rules! child_entry_point {
    () => {
        #[test]
        #[ignore = "procman child-process entry point: procman runs it in the processes it starts"]
        fn procman_child_entry() {
            $crate::__private::child_entry();
        }

        $crate::__private::inventory::submit! {
            $crate::__private::ChildEntry { module: ::core::module_path!() }
        }
    };
}
