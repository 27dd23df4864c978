//! What the macros' generated code names: `::procman::__private::…`. Not a public API.

pub use inventory;
pub use postcard;
pub use serde;

pub use crate::child::ChildEntry;
pub use crate::manager::CreatorEntry;
pub use crate::server::{CallCx, Object, ServerObject};
pub use crate::shared::{Dispatch, Referent};

use crate::error::{Error, Result};
use crate::proxy::BaseProxy;
use crate::shared::{Proxy, Shared};
use crate::wire;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The encoded arguments of one call, built one argument at a time so that a type error lands
/// on that argument's tokens.
#[derive(Debug, Default)]
pub struct ArgsBuf {
    bytes: Vec<u8>,
}

impl ArgsBuf {
    /// An empty argument list.
    pub fn new() -> Self {
        ArgsBuf { bytes: Vec::new() }
    }

    /// Appends one argument. postcard encodes a tuple as its fields one after the other, so
    /// arguments pushed one by one decode as a tuple.
    pub fn push<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        wire::encode_into(value, &mut self.bytes, "an argument")
    }

    /// The encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads the arguments of one call in the server, one at a time.
#[derive(Debug)]
pub struct ArgsReader<'a> {
    rest: &'a [u8],
    method: &'a str,
}

impl<'a> ArgsReader<'a> {
    /// Starts reading `bytes`, the arguments of `method`.
    pub fn new(bytes: &'a [u8], method: &'a str) -> Self {
        ArgsReader { rest: bytes, method }
    }

    /// Decodes the next argument.
    pub fn next<T: DeserializeOwned>(&mut self) -> Result<T> {
        match postcard::take_from_bytes::<T>(self.rest) {
            Ok((value, rest)) => {
                self.rest = rest;
                Ok(value)
            }
            Err(e) => Err(Error::decode(
                format_args!("the arguments of `{}` (expected {})", self.method, std::any::type_name::<T>()),
                e,
            )),
        }
    }

    /// Checks that every byte was used: extra bytes mean the caller sent other arguments.
    pub fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::decode(
                format_args!("the arguments of `{}`", self.method),
                format_args!("{} unexpected trailing bytes (wrong argument types?)", self.rest.len()),
            ))
        }
    }
}

/// Calls `method` on the proxy's referent and decodes a plain return value.
pub fn call<P: Proxy, R: DeserializeOwned>(proxy: &P, method: &str, args: ArgsBuf) -> Result<R> {
    let bytes = proxy.base().call_raw(method, args.into_bytes())?;
    wire::decode::<R>(&bytes, format_args!("the result of `{method}`"))
}

/// Calls `method`, whose result is a new shared object in the server, and returns its proxy.
pub fn call_proxy<P: Proxy, Q: Proxy>(proxy: &P, method: &str, args: ArgsBuf) -> Result<Q> {
    let base = proxy.base().call_for_proxy(method, args.into_bytes())?;
    Ok(Q::from_base(base))
}

/// Creates an object of `typeid` through a manager and returns its typed proxy.
pub fn create<P: Proxy>(manager: &crate::BaseManager, typeid: &str, args: ArgsBuf) -> Result<P> {
    manager.create_untyped(typeid, &args.into_bytes()).map(P::from_base)
}

/// Encodes a method's return value in the server.
pub fn ret<T: ?Sized + Serialize>(value: &T) -> Result<Vec<u8>> {
    wire::encode(value, "a return value")
}

/// Converts the error of a method returning `Result<T>` (one argument: `procman::Result` or an
/// error that converts into it) into the call's error.
pub fn into_error<E: Into<Error>>(e: E) -> Error {
    e.into()
}

/// Wraps a value for the object table.
pub fn object<T: Dispatch>(value: T) -> Object {
    crate::server::new_object(value)
}

/// Compile-time check: an argument can be sent to the server.
pub fn assert_arg<T: ?Sized + Serialize>() {}

/// Compile-time check: an argument can be received in the server.
pub fn assert_arg_owned<T: DeserializeOwned>() {}

/// Compile-time check: a return value can travel back.
pub fn assert_return<T: Serialize + DeserializeOwned>() {}

/// Compile-time check: a creator or `#[shared(proxy)]` method returns a shared type.
pub fn assert_shared<T: Shared>() {}

/// The untyped proxy a generated proxy wraps.
pub type Base = BaseProxy;

/// Autoref specialization: `(&&Repr(x)).procman_repr()` uses `Debug` when the type has it.
#[derive(Debug)]
pub struct Repr<'a, T>(pub &'a T);

/// Chosen when the type is `Debug`.
pub trait ReprDebug {
    /// The `Debug` form.
    fn procman_repr(&self) -> String;
}

impl<T: std::fmt::Debug> ReprDebug for &Repr<'_, T> {
    fn procman_repr(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// Chosen when the type is not `Debug`.
pub trait ReprName {
    /// `<TypeName object>`.
    fn procman_repr(&self) -> String;
}

impl<T> ReprName for Repr<'_, T> {
    fn procman_repr(&self) -> String {
        format!("<{} object>", std::any::type_name::<T>())
    }
}

/// Autoref specialization: `(&&Value(x)).procman_encode_value()` encodes when the type is
/// `Serialize`.
#[derive(Debug)]
pub struct Value<'a, T>(pub &'a T);

/// Chosen when the type is `Serialize`.
pub trait ValueSerialize {
    /// The encoded value.
    fn procman_encode_value(&self) -> Result<Vec<u8>>;
}

impl<T: Serialize> ValueSerialize for &Value<'_, T> {
    fn procman_encode_value(&self) -> Result<Vec<u8>> {
        wire::encode(self.0, "the value of a shared object")
    }
}

/// Chosen when the type is not `Serialize`.
pub trait ValueOpaque {
    /// An error saying the type cannot be copied out.
    fn procman_encode_value(&self) -> Result<Vec<u8>>;
}

impl<T> ValueOpaque for Value<'_, T> {
    fn procman_encode_value(&self) -> Result<Vec<u8>> {
        Err(crate::shared::not_serializable::<T>())
    }
}

/// The error for a method name outside the exposed set.
pub fn not_exposed<T>(method: &str) -> Error {
    Error::NotExposed { typeid: short_type_name::<T>(), method: method.into() }
}

/// `Counter` for `my_crate::Counter`, `Queue<String>` for `procman::sync::Queue<alloc::string::String>`.
pub fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    for ch in full.chars() {
        if ch.is_alphanumeric() || ch == '_' || ch == ':' {
            word.push(ch);
        } else {
            out.push_str(word.rsplit("::").next().unwrap_or(&word));
            word.clear();
            out.push(ch);
        }
    }
    out.push_str(word.rsplit("::").next().unwrap_or(&word));
    out
}

/// The entry point run by `procman::child_entry_point!()`.
pub fn child_entry() {
    crate::init();
}
