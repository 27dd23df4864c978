//! Tokens and the untyped proxy.

use crate::address::Address;
use crate::client;
use crate::error::{Error, Result};
use crate::schema::Fingerprint;
use crate::wire;
use crate::wire::message::{NewObject, Request};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// What identifies a shared object: its typeid, the address of its manager and its id there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Token {
    typeid: String,
    address: Address,
    id: u64,
}

impl Token {
    /// The typeid the object was created with (its type name, for objects returned by methods).
    pub fn typeid(&self) -> &str {
        &self.typeid
    }

    /// The address of the manager holding the object.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The object's id in its manager.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{} at {}", self.typeid, self.id, self.address)
    }
}

/// A proxy without a type: a token and one reference to the object.
///
/// Every typed proxy dereferences to it. [`call_method`](Self::call_method) is Python's
/// `_callmethod`: the server checks the name against the exposed set and answers
/// [`Error::NotExposed`] for any other name.
///
/// Dropping a `BaseProxy` sends a one-way decref; cloning it takes a new reference. Serializing
/// it (to send it to another process, through a queue, a dict or as a spawn argument) takes a
/// reference for the proxy in transit, which the first deserialization adopts, so the object
/// cannot be freed while the proxy travels. Serialize a proxy only to send it: each serialized
/// copy that is never deserialized keeps its object alive until the manager stops.
pub struct BaseProxy {
    token: Token,
    // False for a proxy received from another process until its type is checked.
    verified: std::sync::atomic::AtomicBool,
}

impl BaseProxy {
    /// A proxy for a reference the server has already counted for this process.
    pub(crate) fn adopt(token: Token) -> Result<BaseProxy> {
        client::ensure_anchor(&token.address)?;
        Ok(BaseProxy { token, verified: std::sync::atomic::AtomicBool::new(true) })
    }

    pub(crate) fn from_new(address: &Address, bytes: &[u8]) -> Result<BaseProxy> {
        BaseProxy::from_new_checked(address, bytes).map(|(p, _)| p)
    }

    /// The new object's proxy and the fingerprint of its type.
    pub(crate) fn from_new_checked(address: &Address, bytes: &[u8]) -> Result<(BaseProxy, Fingerprint)> {
        let new: NewObject = wire::decode(bytes, "a new object's token")?;
        let proxy = BaseProxy::adopt(Token { typeid: new.typeid, address: address.clone(), id: new.id })?;
        Ok((proxy, new.fingerprint))
    }

    fn unverified(self) -> Self {
        self.verified.store(false, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// True unless this proxy was received from another process and its type is not checked yet.
    pub(crate) fn is_verified(&self) -> bool {
        self.verified.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn mark_verified(&self) {
        self.verified.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The token of the referent.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Calls `method` with `args` (a tuple: `()`, `(x,)`, `(x, y)`) and decodes the result as `R`
    /// (Python's `_callmethod`). The typed proxy methods do the same, checked at compile time.
    ///
    /// Fails with [`Error::NotExposed`] when the method is not exposed, [`Error::Decode`] when
    /// the arguments or the result do not have the types the method uses, [`Error::Remote`]
    /// when the method panicked, and [`Error::ConnectionLost`] when the manager is gone.
    ///
    /// The arguments are encoded as they are given. A typed proxy sends a method's `Vec<u8>`,
    /// `&[u8]`, `Option<Vec<u8>>` and `[u8; N]` arguments (and reads its `Vec<u8>`,
    /// `Option<Vec<u8>>` and `Result<Vec<u8>, E>` results) as serde byte strings; for the first
    /// three a `Vec<u8>` given here is the same bytes on the wire, but a `[u8; N]` argument must
    /// be given as a byte string ([`ByteBuf`](crate::ByteBuf) of exactly `N` bytes), not as an
    /// array, which serde writes as a tuple.
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
    ///     fn audit(&self) -> i64 { self.n } // not pub: not exposed
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
    ///     let m = AppManager::new().serve_in_background()?;
    ///     let c = m.counter(5)?;
    ///     assert_eq!(c.call_method::<_, i64>("incr", &(2i64,))?, 7);
    ///     let e = c.call_method::<_, i64>("audit", &()).unwrap_err();
    ///     assert_eq!(e.to_string(), "method `audit` of `counter` is not exposed");
    ///     let e = c.call_method::<_, i64>("incr", &("two",)).unwrap_err();
    ///     assert!(matches!(e, Error::Decode { .. }), "{e}");
    /// #   let _ = Counter { n: 0 }.audit();
    ///     m.shutdown()
    /// }
    /// ```
    pub fn call_method<A: Serialize, R: DeserializeOwned>(&self, method: &str, args: &A) -> Result<R> {
        let args = wire::encode(args, format_args!("the arguments of `{method}`"))?;
        self.call_with(method, &args, |bytes| wire::decode(bytes, format_args!("the result of `{method}`")))
    }

    /// Calls `method` with encoded arguments and returns the encoded result.
    pub fn call_raw(&self, method: &str, args: Vec<u8>) -> Result<Vec<u8>> {
        self.call_with(method, &args, |bytes| Ok(bytes.to_vec()))
    }

    /// [`call_raw`](Self::call_raw), with the encoded result read by `f` in the reply's frame
    /// (no copy of it).
    pub(crate) fn call_with<R>(&self, method: &str, args: &[u8], f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        self.call_with_parts(method, args, &[], f)
    }

    /// [`call_with`](Self::call_with), with the encoded arguments in two parts, `args` then
    /// `tail`, each written into the frame from where it lies.
    pub(crate) fn call_with_parts<R>(
        &self,
        method: &str,
        args: &[u8],
        tail: &[u8],
        f: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<R> {
        client::with_conn(&self.token.address, |c| c.call_with(self.token.id, method, args, tail, f))
    }

    /// Calls a method whose result is a new shared object and returns a proxy for it.
    pub fn call_for_proxy(&self, method: &str, args: Vec<u8>) -> Result<BaseProxy> {
        self.call_for_checked_proxy(method, args).map(|(p, _)| p)
    }

    /// [`call_for_proxy`](Self::call_for_proxy), with the fingerprint of the new object's type.
    pub(crate) fn call_for_checked_proxy(&self, method: &str, args: Vec<u8>) -> Result<(BaseProxy, Fingerprint)> {
        let bytes = self.call_raw(method, args)?;
        BaseProxy::from_new_checked(&self.token.address, &bytes)
    }

    /// The referent's `Debug` form, computed in the manager (Python's `repr(proxy)`); types
    /// without `Debug` give `<TypeName: no Debug>` (as `<Stack<i32>: no Debug>`): derive or
    /// implement `Debug` on the shared type for a real repr.
    pub fn repr(&self) -> Result<String> {
        let bytes = client::with_conn(&self.token.address, |c| c.request(&Request::Repr { id: self.token.id }))?;
        wire::decode(&bytes, "a repr")
    }

    pub(crate) fn get_value_bytes(&self) -> Result<Vec<u8>> {
        client::with_conn(&self.token.address, |c| c.request(&Request::GetValue { id: self.token.id }))
    }

    /// A new reference to the same object, or the error that prevented taking one.
    pub fn try_clone(&self) -> Result<BaseProxy> {
        client::with_conn(&self.token.address, |c| c.request(&Request::IncRef { id: self.token.id }))?;
        let copy = BaseProxy::adopt(self.token.clone())?;
        copy.verified.store(self.is_verified(), std::sync::atomic::Ordering::Relaxed);
        Ok(copy)
    }
}

impl Clone for BaseProxy {
    /// Takes a new reference. If the manager cannot be reached the clone holds none, and its
    /// calls fail like the original's would; use [`BaseProxy::try_clone`] to see the error.
    fn clone(&self) -> Self {
        self.try_clone().unwrap_or_else(|_| BaseProxy {
            token: self.token.clone(),
            verified: std::sync::atomic::AtomicBool::new(self.is_verified()),
        })
    }
}

impl Drop for BaseProxy {
    fn drop(&mut self) {
        client::send_existing(&self.token.address, &Request::DecRef { id: self.token.id });
    }
}

impl fmt::Debug for BaseProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseProxy")
            .field("typeid", &self.token.typeid)
            .field("id", &self.token.id)
            .field("address", &self.token.address.to_string())
            .finish()
    }
}

/// The ticket of a proxy serialized inside a value, as [`collect_tickets`] records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct TicketRef {
    pub(crate) address: Address,
    pub(crate) id: u64,
    pub(crate) ticket: u64,
}

thread_local! {
    static COLLECTOR: std::cell::RefCell<Option<Vec<TicketRef>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (an encoding) and returns the tickets of the proxies it serialized.
pub(crate) fn collect_tickets<R>(f: impl FnOnce() -> R) -> (R, Vec<TicketRef>) {
    let outer = COLLECTOR.with(|c| c.borrow_mut().replace(Vec::new()));
    let r = f();
    let mine = COLLECTOR.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer)).unwrap_or_default();
    if !mine.is_empty() {
        // Tickets belong to every enclosing collection too.
        COLLECTOR.with(|c| {
            if let Some(outer) = c.borrow_mut().as_mut() {
                outer.extend(mine.iter().cloned());
            }
        });
    }
    (r, mine)
}

#[derive(Serialize, Deserialize)]
struct InTransit {
    token: Token,
    ticket: u64,
}

impl Serialize for BaseProxy {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let bytes = client::with_conn(&self.token.address, |c| c.request(&Request::Transit { id: self.token.id }))
            .map_err(|e| serde::ser::Error::custom(format_args!("cannot send proxy {}: {e}", self.token)))?;
        let ticket: u64 = wire::decode(&bytes, "a transit ticket").map_err(serde::ser::Error::custom)?;
        COLLECTOR.with(|c| {
            if let Some(v) = c.borrow_mut().as_mut() {
                v.push(TicketRef { address: self.token.address.clone(), id: self.token.id, ticket });
            }
        });
        InTransit { token: self.token.clone(), ticket }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for BaseProxy {
    /// Receives a proxy in transit. Its type is checked on the first call of the typed proxy
    /// that wraps it (one request), before any value is exchanged.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let t = InTransit::deserialize(d)?;
        let claim = Request::Claim { id: t.token.id, ticket: t.ticket };
        let result: Result<BaseProxy> =
            client::with_conn(&t.token.address, |c| c.request(&claim)).and_then(|_| BaseProxy::adopt(t.token.clone()));
        result
            .map(|p| p.unverified())
            .map_err(|e: Error| serde::de::Error::custom(format_args!("cannot receive proxy {}: {e}", t.token)))
    }
}
