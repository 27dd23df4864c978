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
//!   `Clone`, `Debug`, `Deref<Target = BaseProxy>`, `Serialize` and `Deserialize` for the proxy.
//! - `#[shared]` on `impl Counter { ... }` keeps the block as written (minus the helper
//!   attributes) and adds `impl Dispatch for Counter` — the exposed names and a `match` on the
//!   method name that decodes the arguments, calls the method under the referent's read lock
//!   (`&self`) or write lock (`&mut self`) and encodes the result — plus one method on
//!   `CounterProxy` per exposed method, with the same name, arguments, docs and `cfg`s,
//!   returning `procman::Result<_>`.
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
//! | `X::Result<T>` (a `Result` with one argument) | `procman::Result<T>`: the error is converted with `Into<procman::Error>` |
//! | `Result<T, E>` (two arguments) | `procman::Result<Result<T, E>>`: the caller gets `E` back |
//! | `U` or `X::Result<U>` with `#[shared(proxy)]` | `procman::Result<UProxy>` |
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
/// ```ignore
/// use procman::{Shared, shared};
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
/// // `CounterProxy::incr(&self, by: i64) -> procman::Result<i64>`
/// ```
#[proc_macro_derive(Shared)]
pub fn derive_shared(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive_shared(&input).unwrap_or_else(syn::Error::into_compile_error).into()
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
///
/// Exposed methods cannot take `self` by value, be generic, `async` or `unsafe`, or take `&mut`
/// arguments or borrowed types other than a top-level `&str`, `&[T]` or `&T`: each of these is
/// a compile error at the offending tokens.
///
/// ```ignore
/// use procman::{Shared, shared};
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
///     fn audit(&self) {} // private: `RegistryProxy` has no `audit`
/// }
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
/// its error is the caller's. Methods with `self` are kept as they are.
///
/// ```ignore
/// use procman::manager;
/// # #[derive(procman::Shared)] pub struct Counter { n: i64 }
/// # #[procman::shared] impl Counter {}
///
/// #[manager]
/// pub struct AppManager;
///
/// #[manager]
/// impl AppManager {
///     fn counter(start: i64) -> Counter {
///         Counter { n: start }
///     }
///     #[manager(typeid = "get_counter")]
///     fn remote_counter() -> Counter;
/// }
/// ```
#[proc_macro_attribute]
pub fn manager(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::manager(args.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Inserts `::procman::init();` as the first statement of `main`, so that a process that
/// procman re-executes (a manager server, a spawned function) takes its role there.
///
/// ```ignore
/// #[procman::main]
/// fn main() {
///     // `procman::init();` runs here first.
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::main(args.into(), item.into()).unwrap_or_else(syn::Error::into_compile_error).into()
}
