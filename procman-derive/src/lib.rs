//! The macros of [procman](https://docs.rs/procman): `#[derive(Shared)]`, `#[shared]`,
//! `#[manager]` and `#[procman::main]`. Use them through `procman`, which re-exports them; the
//! generated code names only `::procman::…` paths.
//!
//! # What they generate
//!
//! For a shared type `Counter`:
//!
//! - `#[derive(Shared)]` adds the proxy struct `CounterProxy` (same visibility and generic
//!   parameters, without bounds), `impl Shared for Counter`, `impl Proxy for CounterProxy`, and
//!   `Clone`, `Debug`, `Deref<Target = BaseProxy>`, `Serialize` and `Deserialize` for the proxy;
//!   and the async proxy `AsyncCounterProxy(CounterProxy)` (the same visibility and parameters),
//!   with `impl AsyncProxy`, `Clone`, `Debug`, `Serialize`, `Deserialize` and `Schema` (those of
//!   the proxy: the same bytes) and `From` both ways.
//! - `#[shared]` on `impl Counter { ... }` keeps the block as written (minus the helper
//!   attributes) and adds `impl Dispatch for Counter` — the exposed names and a `match` on the
//!   method name that decodes the arguments, calls the method under the referent's read lock
//!   (`&self`) or write lock (`&mut self`) and encodes the result — plus one method on
//!   `CounterProxy` per exposed method, with the same name, arguments, docs and `cfg`s,
//!   returning `procman::Result<_>`, and its twin on `AsyncCounterProxy`: an `async fn` that
//!   encodes the arguments the same way, then awaits the call (`__private::asynch`).
//! - `#[manager]` on `struct AppManager;` makes it a handle on a manager process
//!   (`AppManager::new()` returns a `ManagerBuilder`); on `impl AppManager { ... }` it turns each
//!   fn without `self` into a creator: a client method `m.counter(..)` returning the proxy, and,
//!   for a fn with a body, an `inventory` entry through which the manager process finds it.
//! - `#[procman::main]` inserts `::procman::init();` at the start of `main`.
//!
//! # How values travel
//!
//! | written in the method | the proxy takes | the server decodes and passes |
//! | --- | --- | --- |
//! | `&str` | `&str` | `String`, as `&s` |
//! | `&[E]` | `&[E]` | `Vec<E>`, as `&v[..]` |
//! | `&E` | `&E` | `E`, as `&v` |
//! | `T` | `T` | `T` |
//!
//! | the method returns | the proxy returns |
//! | --- | --- |
//! | nothing, `()` | `procman::Result<()>` |
//! | `T` (`&str`, `&[E]`, `&E`: `String`, `Vec<E>`, `E`) | `procman::Result<T>` |
//! | `procman::Result<T>` or `io::Result<T>` (a `Result` with one argument) | `procman::Result<T>`: the error becomes the call's error; a one-argument `Result<T>` of another error type (a crate's own alias) is a compile error that says to write `Result<T, E>` |
//! | `Result<T, E>` (two arguments) | `procman::Result<Result<T, E>>`: the caller gets `E` back |
//! | `U` or `X::Result<U>` with `#[shared(proxy)]` | `procman::Result<UProxy>` |
//!
//! `procman::Encoded<T>` anywhere in an argument or result type (not `Encoded<Opaque>`) is `T`
//! on the proxy: `&[Encoded<T>]` takes a `&[T]`, `Option<Encoded<V>>` returns an `Option<V>`.
//!
//! Bytes travel as one serde byte string each (one copy, not one serializer call per byte):
//! the arguments `Vec<u8>`, `&[u8]`, `[u8; N]` (any `N`) and `Option<Vec<u8>>`, and the results
//! `Vec<u8>`, `&[u8]`, `Option<Vec<u8>>`, `Result<Vec<u8>, E>` and `Result<Vec<u8>>`, found by
//! their spelling (`u8` or `core::primitive::u8`; an alias keeps serde's sequence). Both sides
//! are generated from the same signature; the fingerprints stay those of the written types.
//!
//! Each travelling type must be `Serialize + DeserializeOwned`. This is checked once, on the
//! proxy method, by a bound spanned at the user's type, so a `std::fs::File` argument is one
//! error, at `File`.
//!
//! # Layout
//!
//! Each macro runs `ast` (the model, keeping the user's tokens) -> `attr` (the helper
//! attributes) -> `valid` (the rules; every error at its tokens, all reported at once) ->
//! `expand` (one generator per emitted item). An attribute macro always re-emits the user's
//! item, so one mistake gives one message.

mod ast;
mod attr;
mod ctxt;
mod expand;
mod symbol;
mod ty;
mod valid;

use proc_macro::TokenStream;

/// Makes a struct or enum shareable through a manager: generates its proxy type.
///
/// For `Foo<T>` it generates `FooProxy<T>`, with `Foo`'s visibility, `impl Shared for Foo<T>`
/// and `impl Proxy for FooProxy<T>`. The proxy is `Clone` (a new reference), `Debug`,
/// `Serialize` and `Deserialize` (to send it to another process), and dereferences to
/// `procman::BaseProxy`. Its methods come from `#[shared]` on the type's impl block.
///
/// Shared types are `Send + Sync + 'static`: lifetime parameters are refused; a type that is
/// not `Send + Sync` is reported at its name.
///
/// Beside the proxy it generates the async proxy `AsyncFooProxy<T>`, a wrapper of `FooProxy<T>`
/// with the same visibility and parameters, implementing `procman::AsyncProxy`: get one with
/// `proxy.into_async()` or `AsyncFooProxy::from(proxy)`, and the proxy back with
/// `into_blocking()` or `FooProxy::from(async_proxy)`. It is `Clone`, `Debug`, and serializes
/// as the proxy does (the same bytes and fingerprint), so it travels to other processes the
/// same way. Its methods, `async fn`s, come from `#[shared]` too.
///
/// ```
/// use procman::prelude::*;
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
/// // `CounterProxy::incr(&self, by: i64) -> procman::Result<i64>`
/// let c: CounterProxy = m.counter()?;
/// assert_eq!(c.incr(2)?, 2);
/// let again = c.clone(); // another reference to the same object
/// assert_eq!(again.incr(1)?, 3);
/// # Ok::<(), procman::Error>(())
/// ```
///
/// Generic types get a generic proxy; the bounds their methods need come back on the proxy's
/// methods:
///
/// ```
/// use procman::prelude::*;
///
/// #[derive(Shared, Debug, Default)]
/// pub struct Stack<T> {
///     items: Vec<T>,
/// }
///
/// #[shared]
/// impl<T: Send + Sync + 'static> Stack<T> {
///     pub fn push(&mut self, item: T) { self.items.push(item) }
///     pub fn pop(&mut self) -> Option<T> { self.items.pop() }
/// }
///
/// #[manager]
/// pub struct Stacks;
///
/// #[manager]
/// impl Stacks {
///     fn words() -> Stack<String> { Stack { items: Vec::new() } }
/// }
///
/// procman::init();
/// let m = Stacks::new().serve_in_background()?;
/// let s: StackProxy<String> = m.words()?;
/// s.push("a".into())?;
/// assert_eq!(s.pop()?, Some("a".to_string()));
/// # Ok::<(), procman::Error>(())
/// ```
#[proc_macro_derive(Shared)]
pub fn derive_shared(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive_shared(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Gives a type its fingerprint: `impl procman::Schema`, the shape procman compares across the
/// wire (see `procman::schema`). Derive it beside `Serialize` and `Deserialize` on every type
/// that travels between processes.
///
/// The shape is the type's name, its fields in order (named as serde names them:
/// `#[serde(rename)]` is followed, `#[serde(skip)]` fields left out) with their types, and for
/// an enum its variants. Type parameters must have fingerprints too.
///
/// ```
/// use procman::prelude::*;
///
/// #[derive(Serialize, Deserialize, Schema)]
/// pub struct Job<T> {
///     id: u64,
///     #[serde(rename = "body")]
///     payload: T,
/// }
///
/// #[derive(Serialize, Deserialize, Schema)]
/// pub enum Tree { Leaf(u32), Node(Box<Tree>, Box<Tree>) }
///
/// use procman::schema::Fingerprint;
/// assert_ne!(Fingerprint::of::<Job<String>>(), Fingerprint::of::<Job<u64>>());
/// assert_eq!(Fingerprint::of::<Tree>(), Fingerprint::of::<Tree>());
/// ```
#[proc_macro_derive(Schema, attributes(serde))]
pub fn derive_schema(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive_schema(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Exposes the methods of a shared type's impl block through its proxy.
///
/// Goes on one inherent impl block of a type with `#[derive(Shared)]`. Exposed are the `pub`
/// methods (any `pub(...)`) taking `&self` or `&mut self`, or, with
/// `#[shared(exposed(a, b))]`, exactly the methods named. Each exposed method gets a twin on
/// the proxy, with the same name, visibility, docs and `cfg`s, taking `&self` and returning
/// `procman::Result<_>`; the server also refuses any other name at run time.
///
/// Options on methods:
///
/// - `#[shared(skip)]`: not exposed.
/// - `#[shared(proxy)]`: the method returns a shared type `U` (or `Result<U>`); the manager
///   keeps the new object and the caller gets its proxy.
/// - `#[shared(on_disconnect)]`: `fn(&self, caller: procman::Caller)`, not exposed, called when
///   a client connection that used the object closes.
/// - `#[shared(rename = "name")]`: the method's name on the wire (what the server's exposed set
///   and `call_method` know) differs from its Rust name.
/// - `#[shared(client)]`: a method taking `&self` that runs in the caller's process, as a method
///   of the proxy (there `self` is the proxy): defaults and conveniences written once beside the
///   methods they call. It is not exposed and not kept on the type. The async proxy gets it
///   too, as an `async fn` with the same signature (see below).
/// - `#[shared(undo = method)]`: for the async proxy. When the caller of the async method has
///   gone (its future was dropped) after the server produced a successful result, the client
///   calls `method` with that result's encoded bytes as its argument, so nothing is lost (a
///   queue's `get` puts the item back; a lock's `acquire` releases). `method` is another exposed
///   method of the same impl block taking exactly one argument besides `&self`; anything else
///   is a compile error at the attribute. Its argument must decode from those bytes: it has the
///   type of the result as the server sends it (the `T` of a `T` or of a flattened `Result<T>`,
///   the whole `Option<T>` or `Result<T, E>` otherwise), which the macro does not check. The
///   blocking methods are unaffected.
///
/// # Async proxies
///
/// Each exposed method also gets a twin on the async proxy `AsyncFooProxy` (see
/// [`derive@Shared`]): `async fn` with the same name, arguments, docs and `cfg`s, returning the
/// same `procman::Result<_>`, except that a `#[shared(proxy)]` method returns the new object's
/// async proxy. The arguments are encoded before the first await, so the future is `Send` when
/// the argument types are `Send + Sync`.
///
/// A `#[shared(client)]` helper becomes an `async fn` of the async proxy with the same
/// signature, whose body is the helper's with each call `self.method(..)` of a proxy method
/// (an exposed method or another helper) awaited: `self.get(key)?` becomes
/// `self.get(key).await?`; a `#[shared(proxy)]` method's result is turned back into the
/// blocking proxy there, the type the body was written for. The async proxy lacks the helpers
/// this cannot serve; their blocking form stays on the proxy:
///
/// - one that calls a proxy method on `self` inside a closure, an `async` block or a nested fn
///   or item, where it cannot be awaited;
/// - one that uses `self` in any other way (passes it on, calls a method of `BaseProxy` through
///   it, names it inside a macro call or a format string) or names `Self`, which would mean the
///   async proxy where the helper means the blocking one (`LockGuard<'_, Self>`);
/// - one that calls a helper the async proxy lacks, or that calls itself, directly or through
///   other helpers.
///
/// Where a method takes or returns `procman::Encoded<T>`, the proxy takes or returns `T`: the
/// manager keeps the value encoded and never needs `T` (see `procman::Encoded`). The same holds
/// inside `Option`, `Vec`, pairs and slices.
///
/// Exposed methods cannot take `self` by value, be generic, `async` or `unsafe`, or take `&mut`
/// arguments or borrowed types other than a top-level `&str`, `&[T]` or `&T`: each of these is
/// a compile error at the offending tokens.
///
/// ```
/// use procman::prelude::*;
///
/// #[derive(Shared, Debug, Default)]
/// pub struct Registry {
///     names: Vec<String>,
/// }
///
/// #[shared]
/// impl Registry {
///     /// Adds a name; the proxy method has this doc too.
///     pub fn add(&mut self, name: &str) {
///         self.names.push(name.to_owned());
///     }
///     pub fn find(&self, name: &str) -> Option<usize> {
///         self.names.iter().position(|n| n == name)
///     }
///     #[shared(skip)]
///     pub fn names_mut(&mut self) -> &mut Vec<String> {
///         &mut self.names
///     }
///     /// Adds a name unless it is there; runs in the caller, as two calls.
///     #[shared(client)]
///     pub fn add_once(&self, name: &str) -> procman::Result<usize> {
///         match self.find(name)? {
///             Some(i) => Ok(i),
///             None => {
///                 self.add(name)?;
///                 Ok(self.count()? - 1)
///             }
///         }
///     }
///     /// On the wire as `len`, for clients that call it by that name.
///     #[shared(rename = "len")]
///     pub fn count(&self) -> usize {
///         self.names.len()
///     }
///     /// A registry of its own, held by the manager: the caller gets its proxy.
///     #[shared(proxy)]
///     pub fn fork(&self) -> Registry {
///         Registry { names: self.names.clone() }
///     }
///     fn audit(&self) {} // private: `RegistryProxy` has no `audit`
/// }
///
/// #[manager]
/// pub struct Registries;
///
/// #[manager]
/// impl Registries {
///     fn registry() -> Registry { Registry::default() }
/// }
///
/// procman::init();
/// let m = Registries::new().serve_in_background()?;
/// let r = m.registry()?;
/// assert_eq!(r.add_once("ada")?, 0);
/// assert_eq!(r.add_once("ada")?, 0);
/// let copy: RegistryProxy = r.fork()?;
/// copy.add("bob")?;
/// assert_eq!((r.count()?, copy.count()?), (1, 2));
/// assert_eq!(r.call_method::<_, usize>("len", &())?, 1);
/// # Ok::<(), procman::Error>(())
/// ```
///
/// The same object through its async proxy; `undo` says what takes a result back:
///
/// ```
/// use procman::prelude::*;
/// # use std::future::Future;
/// # use std::sync::Arc;
/// # use std::task::{Context, Poll, Wake, Waker};
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
/// pub struct Jobs {
///     queue: Vec<String>,
/// }
///
/// #[shared]
/// impl Jobs {
///     pub fn push(&mut self, job: String) {
///         self.queue.push(job);
///     }
///     /// A job taken by a caller that went away is pushed back.
///     #[shared(undo = push)]
///     pub fn pop(&mut self) -> procman::Result<String> {
///         self.queue.pop().ok_or(procman::Error::Empty)
///     }
///     #[shared(client)]
///     pub fn push_all(&self, jobs: Vec<String>) -> procman::Result<()> {
///         for job in jobs {
///             self.push(job)?; // `self.push(job).await?` on the async proxy
///         }
///         Ok(())
///     }
/// }
///
/// #[manager]
/// pub struct JobManager;
///
/// #[manager]
/// impl JobManager {
///     fn jobs() -> Jobs { Jobs::default() }
/// }
///
/// procman::init();
/// let m = JobManager::new().serve_in_background()?;
/// let jobs: AsyncJobsProxy = m.jobs()?.into_async();
/// block_on(async {
///     jobs.push_all(vec!["a".into(), "b".into()]).await?;
///     assert_eq!(jobs.pop().await?, "b");
///     Ok::<(), procman::Error>(())
/// })?;
/// # Ok::<(), procman::Error>(())
/// ```
#[proc_macro_attribute]
pub fn shared(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::shared(args.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Declares a manager: on a unit struct, the handle; on its impl block, the creators.
///
/// On `pub struct AppManager;` it makes `AppManager` a handle on a manager process:
/// `AppManager::new()` returns a `procman::ManagerBuilder<AppManager>` (`.start()`,
/// `.connect()`, `.serve_forever()`); the handle implements `procman::Manager` and dereferences
/// to `procman::BaseManager`. `#[manager(sync)]` also serves the built-in types of
/// `SyncManager`.
///
/// On `impl AppManager { ... }`, each fn without `self` is a creator of the typeid named after
/// it (`#[manager(typeid = "...")]` to choose another; `#[manager(singleton)]` for one shared
/// instance). It becomes a method `m.counter(args)` that asks the manager to run the fn and
/// returns the new object's proxy. A fn without a body only names a typeid of a remote
/// manager: it gets the client method and nothing runs here. A creator may return `Result<U>`:
/// its error is the caller's. Methods with `self` are kept as they are. A creator may have
/// type parameters: the client chooses them, and the manager creates the object with
/// `procman::Opaque` for each, so only types that hold their parameters as
/// `procman::Encoded<T>` can be created that way (others do not compile).
///
/// ```
/// use procman::prelude::*;
/// # #[derive(Shared, Debug)] pub struct Counter { n: i64 }
/// # #[shared] impl Counter { pub fn get(&self) -> i64 { self.n } }
///
/// #[manager]
/// pub struct AppManager;
///
/// #[manager]
/// impl AppManager {
///     fn counter(start: i64) -> Counter {
///         Counter { n: start }
///     }
///     #[manager(typeid = "shared_counter", singleton)]
///     fn the_counter() -> Counter {
///         Counter { n: 100 }
///     }
/// }
///
/// // A client program of a remote `AppManager` declares the typeids it uses, without bodies.
/// #[manager]
/// pub struct AppClient;
///
/// #[manager]
/// impl AppClient {
///     #[manager(typeid = "shared_counter")]
///     fn remote_counter() -> Counter;
/// }
///
/// procman::init();
/// let m = AppManager::new().serve_in_background()?;
/// assert_eq!(m.counter(5)?.get()?, 5);
/// let client = AppClient::new().address(m.address().clone()).connect()?;
/// assert_eq!(client.remote_counter()?.get()?, 100);
/// # Ok::<(), procman::Error>(())
/// ```
#[proc_macro_attribute]
pub fn manager(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::manager(args.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Inserts `::procman::init();` as the first statement of `main`, so that a process that
/// procman re-executes (a manager server, a spawned function) takes its role there.
///
/// ```
/// #[procman::main]
/// fn main() {
///     // `procman::init();` runs here first.
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::main(args.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}
