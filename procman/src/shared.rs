//! The traits that make a type shareable, and the server-side cell that holds a referent.

use crate::error::{Error, Result};
use crate::inspect::ObjectState;
use crate::proxy::BaseProxy;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A type whose values can live in a manager and be used through a proxy.
///
/// Implemented by `#[derive(Shared)]`; the methods come from `#[shared]` on the type's `impl`
/// block (see [`macro@crate::shared`]). Referents are shared between the server's connection
/// threads, so they are `Send + Sync`: `&self` methods run concurrently under a read lock,
/// `&mut self` methods exclusively under a write lock.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a shared type",
    label = "a creator must return a type with `#[derive(Shared)]`",
    note = "add `#[derive(Shared)]` to the type and `#[shared]` to its `impl` block"
)]
pub trait Shared: Sized + Send + Sync + 'static {
    /// The proxy type generated for this type (`Counter` -> `CounterProxy`).
    type Proxy: Proxy<Referent = Self>;
}

/// A typed proxy: a handle, in any process, to an object held by a manager.
///
/// Every generated proxy implements this trait and dereferences to [`BaseProxy`], which gives
/// [`repr`](BaseProxy::repr), the untyped [`call_method`](BaseProxy::call_method) and the
/// token. Dropping a proxy releases its reference; cloning one takes a new reference.
pub trait Proxy: Sized + Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The type of the object this proxy refers to.
    type Referent;

    /// The async proxy of the same type (`CounterProxy` -> `AsyncCounterProxy`): the same
    /// methods as `async fn`s. See [`AsyncProxy`].
    type Async: AsyncProxy<Blocking = Self>;

    /// Wraps an untyped proxy. The caller vouches that the referent has type `Self::Referent`.
    fn from_base(base: BaseProxy) -> Self;

    /// The untyped proxy inside.
    fn base(&self) -> &BaseProxy;

    /// Returns a copy of the referent, for types that are `Serialize + DeserializeOwned`
    /// (Python's `_getvalue()`).
    ///
    /// Fails with [`Error::NotExposed`] (method `get_value`) when the server cannot encode the
    /// referent.
    fn get_value(&self) -> Result<Self::Referent>
    where
        Self::Referent: DeserializeOwned,
    {
        let bytes = self.base().get_value_bytes()?;
        crate::wire::decode::<Self::Referent>(&bytes, "the value of a shared object")
    }

    /// Turns this proxy into the async proxy of the same object, keeping its reference
    /// (nothing is sent to the manager). [`AsyncProxy::into_blocking`] turns it back.
    fn into_async(self) -> Self::Async {
        Self::Async::from_blocking(self)
    }
}

/// An async proxy: a handle, in any process, to an object held by a manager, whose methods are
/// `async fn`s.
///
/// `#[derive(Shared)]` generates one beside each proxy: `AsyncCounterProxy` beside
/// `CounterProxy`, with the same visibility and type parameters. It wraps the blocking proxy
/// and holds the same reference: [`Proxy::into_async`] (or `AsyncCounterProxy::from(proxy)`)
/// makes one, [`into_blocking`](Self::into_blocking) gives the blocking proxy back and
/// [`blocking`](Self::blocking) lends it. `#[shared]` gives it one `async fn` per exposed
/// method, with the same name and arguments, returning the same `procman::Result<_>`; a
/// `#[shared(proxy)]` method returns the new object's async proxy. The `#[shared(client)]`
/// helpers are mirrored as `async fn`s too, where they can be (see [`macro@crate::shared`]).
///
/// It serializes exactly as the blocking proxy does (the same bytes, the same fingerprint), so
/// it travels to other processes the same way: as a [`Process::spawn`](crate::Process::spawn)
/// argument, in a queue or a dict. It does not dereference to [`BaseProxy`], whose methods
/// block: use [`blocking`](Self::blocking) for those.
///
/// The futures its methods return need no particular executor. A future is `Send` when the
/// method's arguments are `Send + Sync`, so it can be spawned on a multi-threaded runtime.
///
/// ```
/// use procman::prelude::*;
/// # use std::future::Future;
/// # use std::sync::Arc;
/// # use std::task::{Context, Poll, Wake, Waker};
/// # // A minimal executor: polls the future on this thread, parking between wake-ups.
/// # fn block_on<F: Future>(future: F) -> F::Output {
/// #     struct Unpark(std::thread::Thread);
/// #     impl Wake for Unpark {
/// #         fn wake(self: Arc<Self>) {
/// #             self.0.unpark();
/// #         }
/// #     }
/// #     let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
/// #     let mut cx = Context::from_waker(&waker);
/// #     let mut future = std::pin::pin!(future);
/// #     loop {
/// #         match future.as_mut().poll(&mut cx) {
/// #             Poll::Ready(output) => return output,
/// #             Poll::Pending => std::thread::park(),
/// #         }
/// #     }
/// # }
///
/// #[derive(Shared, Debug, Default)]
/// pub struct Counter {
///     n: i64,
/// }
///
/// #[shared]
/// impl Counter {
///     pub fn incr(&mut self, by: i64) -> i64 {
///         self.n += by;
///         self.n
///     }
/// }
///
/// #[manager]
/// pub struct Counters;
///
/// #[manager]
/// impl Counters {
///     fn counter() -> Counter { Counter::default() }
/// }
///
/// procman::init();
/// let m = Counters::new().serve_in_background()?;
/// let c: AsyncCounterProxy = m.counter()?.into_async();
/// // `AsyncCounterProxy::incr(&self, by: i64) -> impl Future<Output = procman::Result<i64>>`
/// assert_eq!(block_on(c.incr(2))?, 2);
/// let sum = block_on(async {
///     let a = c.incr(1).await?;
///     let b = c.incr(1).await?;
///     Ok::<_, procman::Error>(a + b)
/// })?;
/// assert_eq!(sum, 3 + 4);
/// // The same object, through the blocking proxy.
/// let blocking: CounterProxy = c.into_blocking();
/// assert_eq!(blocking.incr(0)?, 4);
/// # Ok::<(), procman::Error>(())
/// ```
pub trait AsyncProxy: Sized + Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The blocking proxy of the same type (`AsyncCounterProxy` -> `CounterProxy`).
    type Blocking: Proxy<Async = Self>;

    /// Wraps a blocking proxy, keeping its reference.
    fn from_blocking(proxy: Self::Blocking) -> Self;

    /// The blocking proxy inside: its methods block the calling thread.
    fn blocking(&self) -> &Self::Blocking;

    /// Unwraps the blocking proxy, keeping its reference.
    fn into_blocking(self) -> Self::Blocking;
}

/// The server-side dispatch table of a shared type. Generated by `#[shared]`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a shared type with a `#[shared]` impl block",
    label = "a creator returns a shared type",
    note = "add `#[derive(Shared)]` to the type and `#[shared]` to one of its `impl` blocks: they generate the proxy and the dispatch table"
)]
pub trait Dispatch: Shared {
    /// The exposed method names, in declaration order.
    const EXPOSED: &'static [&'static str];

    /// Calls `method` with encoded `args` and returns the encoded result.
    fn call(this: &Referent<Self>, method: &str, args: &[u8], cx: &mut crate::server::CallCx<'_>) -> Result<Vec<u8>>;

    /// The referent's `Debug` form, or `<TypeName: no Debug>` when it has none.
    fn repr(this: &Self) -> String;

    /// The referent encoded, or an error when the type is not `Serialize`.
    fn encode_value(this: &Self) -> Result<Vec<u8>>;

    /// Called when a connection that called this object closes (its thread or process ended).
    fn connection_closed(_this: &Referent<Self>, _caller: Caller) {}

    /// The exposed methods with the fingerprints of their argument and result types.
    fn methods() -> Vec<crate::typecheck::MethodDesc>;

    /// The type parameters with their fingerprints (`Opaque` ones unknown).
    fn params() -> Vec<crate::typecheck::ParamDesc>;

    /// The object's state for snapshots ([`BaseManager::debug_info`](crate::BaseManager::debug_info)):
    /// the generated impl reports it for types that implement `inspect::Inspect` (the built-in
    /// types), `None` for the others.
    fn state(_this: &Referent<Self>) -> Option<ObjectState> {
        None
    }
}

/// What a built-in type reports about itself, for snapshots ([`crate::inspect`]). Implemented by
/// the types of [`crate::sync`]; `#[shared]` types that implement it report their state
/// through [`StateProbe`] in their `Dispatch::state`.
#[doc(hidden)]
pub trait Inspect {
    /// The object's state now.
    fn state(&self) -> ObjectState;
}

/// Autoref probe: `(&&StateProbe(referent)).procman_state()` is the referent's state when its
/// type implements [`Inspect`], else `None`. Used by the `Dispatch` impls `#[shared]` generates.
#[doc(hidden)]
#[derive(Debug)]
pub struct StateProbe<'a, T>(pub &'a Referent<T>);

/// Chosen when the type implements [`Inspect`].
#[doc(hidden)]
pub trait StateInspect {
    /// The referent's state.
    fn procman_state(&self) -> Option<ObjectState>;
}

impl<T: Inspect> StateInspect for &StateProbe<'_, T> {
    fn procman_state(&self) -> Option<ObjectState> {
        Some(self.0.read().state())
    }
}

/// Chosen when the type does not implement [`Inspect`].
#[doc(hidden)]
pub trait StateNone {
    /// `None`.
    fn procman_state(&self) -> Option<ObjectState>;
}

impl<T> StateNone for StateProbe<'_, T> {
    fn procman_state(&self) -> Option<ObjectState> {
        None
    }
}

/// A referent as the server holds it: the value behind a read-write lock.
///
/// Poisoning is ignored: a panic inside a method is reported to its caller and the object
/// stays usable, like an object whose method raised in Python.
#[doc(hidden)]
#[derive(Debug)]
pub struct Referent<T> {
    cell: RwLock<T>,
    // The type parameters a client gave when a generic creator made the object (the manager
    // knows them only as `Opaque`).
    params: std::sync::OnceLock<Vec<crate::typecheck::ParamDesc>>,
}

impl<T> Referent<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Referent { cell: RwLock::new(value), params: std::sync::OnceLock::new() }
    }

    /// Records the type parameters of an object made by a generic creator.
    pub(crate) fn set_params(&self, params: Vec<crate::typecheck::ParamDesc>) {
        let _ = self.params.set(params);
    }

    /// The recorded type parameters, if any.
    pub(crate) fn recorded_params(&self) -> Option<&[crate::typecheck::ParamDesc]> {
        self.params.get().map(Vec::as_slice)
    }

    /// Shared access, for `&self` methods.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        crate::unpoison::read(&self.cell)
    }

    /// Exclusive access, for `&mut self` methods.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        crate::unpoison::write(&self.cell)
    }
}

/// Who is calling a method in the server: the client process and its connection (one per
/// client thread). Available inside shared methods through [`Caller::current`].
///
/// Built-in types use it for ownership (an `RLock` belongs to the calling client thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller {
    /// A random id of the client process, fixed for its lifetime.
    pub client: u128,
    /// The connection, unique within the server: one per client thread.
    pub connection: u64,
}

thread_local! {
    static CURRENT_CALLER: std::cell::Cell<Option<Caller>> = const { std::cell::Cell::new(None) };
}

impl Caller {
    /// The caller of the method running on this thread, inside a manager; `None` elsewhere.
    ///
    /// ```
    /// assert_eq!(procman::Caller::current(), None);
    /// ```
    pub fn current() -> Option<Caller> {
        CURRENT_CALLER.with(|c| c.get())
    }

    pub(crate) fn set_current(caller: Option<Caller>) {
        CURRENT_CALLER.with(|c| c.set(caller));
    }
}

pub(crate) fn not_serializable<T>() -> Error {
    Error::NotExposed { typeid: std::any::type_name::<T>().into(), method: "get_value".into() }
}
