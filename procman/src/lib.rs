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
//! # From Python's `processing` to procman
//!
//! | `processing` | procman |
//! | --- | --- |
//! | `CreatorMethod(callable, typeid=…)` | a `fn` in a `#[manager]` impl; typeid = the fn's name or `#[manager(typeid = "…")]`; a fn without a body declares a typeid for clients of a remote manager |
//! | `exposed`, methods not starting with `_` | `#[shared]` exposes every `pub fn` taking `&self` / `&mut self`; `#[shared(skip)]`, `#[shared(exposed(a, b))]` |
//! | `_callmethod(name, args)` | [`BaseProxy::call_method`] |
//! | `repr(proxy)`, `_getvalue()` | [`BaseProxy::repr`], [`Proxy::get_value`] |
//! | `BaseManager(address, authkey)` | `M::new().address(…).authkey(…)` ([`ManagerBuilder`]) |
//! | `start()`, `serve_forever()`, `connect()`, `shutdown()`, `address` | [`ManagerBuilder::start`], [`ManagerBuilder::serve_forever`], [`ManagerBuilder::connect`], [`BaseManager::shutdown`], [`BaseManager::address`] |
//! | `Process(target, args)` | [`Process::spawn`] |
//! | `currentProcess().getAuthKey()` | [`authkey()`] |
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
//! - [`Process::spawn`] takes a `fn` (or a closure that captures nothing), not a registered
//!   name: the child finds it at the same place in the same executable.
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
//! allocation. Both sides prove the key with HMAC-SHA256 over random challenges before anything
//! else is read (see the `auth` module docs in the source). Each client thread has its own
//! connection to each manager, so a blocking call blocks only that thread.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[allow(unused_extern_crates)] // the generated code of the built-in types names `::procman`
extern crate self as procman;

mod address;
mod auth;
mod child;
mod client;
mod entry;
mod error;
mod local;
mod manager;
mod proxy;
mod role;
mod server;
mod shared;
pub mod sync;
mod transport;
mod unpoison;
mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use __private::Wire;
pub use address::Address;
pub use auth::{AuthKey, authkey, set_authkey};
pub use child::{Action, Process};
pub use entry::init;
pub use error::{Error, Result};
pub use local::{DEFAULT_ARENA_CAPACITY, LocalManager};
pub use manager::{BaseManager, BoundServer, Manager, ManagerBuilder, NoManager, typeids};
pub use proxy::{BaseProxy, Token};
pub use server::CreatorEntry;
pub use shared::{Caller, Proxy, Shared};
pub use wire::DEFAULT_MAX_FRAME_SIZE;
pub use wire::message::ObjectInfo;

pub use procman_derive::{Shared, main, manager, shared};

/// The shared-memory arena and its objects (the `procman-shm` crate), which a
/// [`LocalManager`] creates.
pub use procman_shm as shm;

/// The names most programs use: `use procman::prelude::*;`.
pub mod prelude {
    pub use crate::sync::SyncTypes;
    pub use crate::{BaseManager, Error, LocalManager, Manager, Process, Proxy, Shared};
    pub use procman_derive::{manager, shared};
}

/// Registers a `fn()` that a manager may run for its clients: a barrier's action
/// ([`SyncTypes::barrier_with_action`](crate::sync::SyncTypes::barrier_with_action)). A manager
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
