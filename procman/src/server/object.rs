//! Objects as the server holds them, the context of a call, and the panic boundary around the
//! code of user types.

use super::listen::Core;
use crate::error::{Error, Result, panic_message};
use crate::shared::{Caller, Dispatch, Referent};
use crate::typecheck::{ParamDesc, TypeDesc};
use crate::wire::{self, message::NewObject};
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
}

impl CallCx<'static> {
    /// A context outside any server, for tests of generated dispatch code: `caller()` is
    /// `Caller { client: 0, connection: 0 }` and `register` fails with `Error::Usage`.
    #[doc(hidden)]
    pub fn detached() -> Self {
        CallCx { core: None, caller: Caller { client: 0, connection: 0 } }
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
