//! Objects as the server holds them, the context of a call, and the panic boundary around the
//! code of user types: their methods and creators ([`guarded`]), and their `Drop` ([`release`]).

use super::listen::Core;
use crate::address::Address;
use crate::error::{Error, Result, panic_message};
use crate::shared::{Caller, Dispatch, Referent};
use crate::typecheck::{ParamDesc, TypeDesc};
use crate::wire::{self, message::NewObject};
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

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
    /// Tells the referent that a connection that called it closed.
    fn connection_closed(&self, caller: Caller);
    /// The referent as `Any`, to find the concrete type of an object of this server.
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
    /// The object's type as the wire sees it, with the type parameters it was created with
    /// (no methods and no parameters for an object that is not a `#[shared]` type).
    fn describe(&self) -> Arc<TypeDesc> {
        Arc::new(TypeDesc::new(String::new(), Vec::new(), Vec::new()))
    }
    /// Records the type parameters a client gave for an object made by a generic creator.
    fn record_params(&self, _params: Vec<ParamDesc>) {}
    /// The referent's state, for snapshots; `None` for types that do not report one.
    fn state(&self) -> Option<crate::inspect::ObjectState> {
        None
    }
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
    fn connection_closed(&self, caller: Caller) {
        T::connection_closed(self, caller)
    }
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
    fn describe(&self) -> Arc<TypeDesc> {
        let desc = crate::typecheck::describe::<T>();
        match self.recorded_params() {
            Some(params) => Arc::new(desc.adopt(params)),
            None => desc,
        }
    }
    fn record_params(&self, params: Vec<ParamDesc>) {
        self.set_params(params);
    }
    fn state(&self) -> Option<crate::inspect::ObjectState> {
        T::state(self)
    }
}

pub(crate) fn new_object<T: Dispatch>(value: T) -> Object {
    Arc::new(Referent::new(value))
}

/// The context of one call in the server.
#[derive(Debug)]
pub struct CallCx<'a> {
    pub(super) core: Option<&'a Core>,
    pub(super) caller: Caller,
    /// The bytes of a `Vec<u8>` result that the server sends from where they lie, after the
    /// length the method's encoded result holds (see [`CallCx::encode_bytes`]); only a server's
    /// calls keep one.
    pub(super) tail: Option<Vec<u8>>,
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
        let fingerprint = crate::typecheck::describe::<U>().fingerprint();
        let id = core.table().insert(typeid.clone().into(), new_object(value), self.caller.client, false);
        wire::encode(&NewObject { id, typeid, fingerprint }, "a new object's token")
    }

    /// Encodes `bytes`, a method's `Vec<u8>` result, as a byte string. In a server the bytes
    /// are kept for it to send from where they lie, and the encoding returned holds their
    /// length only; a detached call, or a short result (copied as cheaply), is encoded whole.
    pub(crate) fn encode_bytes(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>> {
        if self.core.is_none() || self.tail.is_some() || bytes.len() < KEPT_TAIL {
            return wire::encode(&crate::bytes::ByteArg(&bytes), "a return value");
        }
        let head = wire::encode(&bytes.len(), "a result's length");
        self.tail = Some(bytes);
        head
    }
}

impl CallCx<'static> {
    /// A context outside any server, for tests of generated dispatch code: `caller()` is
    /// `Caller { client: 0, connection: 0 }` and `register` fails with `Error::Usage`.
    #[doc(hidden)]
    pub fn detached() -> Self {
        CallCx { core: None, caller: Caller { client: 0, connection: 0 }, tail: None }
    }
}

/// The shortest `Vec<u8>` result sent from where it lies: a shorter one is copied into its
/// encoding, which costs less than a frame of three parts.
const KEPT_TAIL: usize = 256;

/// A call's encoded result as the server sends it: `head`, then `tail` (the bytes of a
/// `Vec<u8>` result, written into the frame from the vector the method returned).
#[derive(Debug, Default)]
pub(super) struct Payload {
    pub(super) head: Vec<u8>,
    pub(super) tail: Vec<u8>,
}

impl Payload {
    pub(super) fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
}

impl From<Vec<u8>> for Payload {
    fn from(head: Vec<u8>) -> Self {
        Payload { head, tail: Vec::new() }
    }
}

/// Runs code of a user type (a method, a creator, `Debug`, `Serialize`): a panic becomes
/// [`Error::Remote`] for the caller, and the server goes on.
pub(super) fn guarded<T>(typeid: &str, method: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Error::Remote { typeid: typeid.into(), method: method.into(), message: panic_message(&*p) }),
    }
}

thread_local! {
    /// True while this thread releases objects (in the outermost [`release`]).
    static RELEASING: Cell<bool> = const { Cell::new(false) };
    /// Objects freed while this thread releases others, waiting for their turn.
    static QUEUED: RefCell<Vec<Object>> = const { RefCell::new(Vec::new()) };
}

/// Drops objects that the table freed: each inside the panic boundary, so a referent whose
/// `Drop` panics is logged and the others are dropped all the same; and one after the other,
/// never inside one another. Dropping an object may free more (a dict holding the last proxy
/// of another dict, which holds the last proxy of a third, ...): those are queued and dropped
/// by the outermost `release` on this thread, so a chain of any length takes no more stack than
/// one link.
pub(super) fn release(manager: &Address, objects: impl IntoIterator<Item = Object>) {
    if RELEASING.get() {
        QUEUED.with_borrow_mut(|q| q.extend(objects));
        return;
    }
    let drop_one = |object: Object| {
        if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(object))) {
            tracing::warn!(
                manager = %manager,
                message = %panic_message(&*p),
                "a referent panicked while being dropped; the server goes on"
            );
        }
    };
    RELEASING.set(true);
    // Most calls hand back an object that others still hold: dropping it frees nothing, and
    // nothing is queued.
    for object in objects {
        drop_one(object);
    }
    while let Some(object) = QUEUED.with_borrow_mut(Vec::pop) {
        drop_one(object);
    }
    RELEASING.set(false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    static DEEPEST: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A link of a chain: dropping it frees the next one, as a dict holding the last proxy of
    /// another does; the seventh panics.
    struct Link {
        n: usize,
        next: Mutex<Option<Object>>,
    }

    impl Drop for Link {
        fn drop(&mut self) {
            let depth = DEPTH.with(|d| d.get() + 1);
            DEPTH.with(|d| d.set(depth));
            DEEPEST.fetch_max(depth, Ordering::Relaxed);
            DROPPED.fetch_add(1, Ordering::Relaxed);
            let next = self.next.lock().unwrap().take();
            release(&Address::Abstract("test".into()), next);
            DEPTH.with(|d| d.set(depth - 1));
            assert_ne!(self.n, 7, "link 7 panics in its Drop");
        }
    }

    impl ServerObject for Link {
        fn call(&self, _: &str, _: &[u8], _: &mut CallCx<'_>) -> Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn repr(&self) -> String {
            format!("Link({})", self.n)
        }
        fn encode_value(&self) -> Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn connection_closed(&self, _: Caller) {}
        fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
            self
        }
    }

    #[test]
    fn a_long_chain_is_released_iteratively_and_a_panicking_drop_stops_nothing() {
        const N: usize = 100_000;
        let head = (0..N).fold(None, |next: Option<Object>, n| Some(Arc::new(Link { n, next: Mutex::new(next) })));
        release(&Address::Abstract("test".into()), head);
        assert_eq!(DROPPED.load(Ordering::Relaxed), N, "every link was dropped, the panicking one too");
        assert_eq!(DEEPEST.load(Ordering::Relaxed), 1, "one link at a time");
        assert!(!RELEASING.get() && QUEUED.with_borrow(Vec::is_empty), "the thread is ready for the next release");
    }
}
