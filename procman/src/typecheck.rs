//! What a proxy and its object must agree on, and the check at bind time.
//!
//! A shared type's description ([`TypeDesc`]) lists its exposed methods, each with the
//! fingerprints of its argument and result types, and the fingerprints of its type parameters
//! (a `Queue<T>`'s `T`). The macros generate it from the `#[shared]` impl block, on both sides.
//! A client sends the hash of the description its proxy type expects when it creates an object,
//! claims a proxy it received, or gets one back from a `#[shared(proxy)]` method; the manager
//! compares it with the object's. A manager that created an object without knowing its type
//! parameters (a generic creator: `Queue<Opaque>`) records the client's. On a mismatch the
//! client asks for the manager's description and names the first difference in
//! [`Error::TypeMismatch`](crate::Error::TypeMismatch).

use crate::address::Address;
use crate::error::{Error, Result};
use crate::manager::BaseManager;
use crate::proxy::BaseProxy;
use crate::schema::Fingerprint;
use crate::shared::{Dispatch, Proxy};
use crate::wire::{self, message::Request};
use serde::{Deserialize, Serialize};
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// One exposed method: its wire name and the shapes of what it takes and returns.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodDesc {
    /// The wire name.
    pub name: String,
    /// The argument types' fingerprints, in order.
    pub args: Vec<Fingerprint>,
    /// The result type's fingerprint.
    pub ret: Fingerprint,
    /// The signature with Rust type names, for messages: `(u64, bool) -> String`.
    pub signature: String,
}

/// One type parameter of a shared type.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamDesc {
    /// The parameter as written in the impl block (`T`), for messages.
    pub name: String,
    /// Its fingerprint; [`Fingerprint::UNKNOWN`] when the manager does not know it.
    pub fingerprint: Fingerprint,
    /// Its Rust type name, for messages.
    pub type_name: String,
}

/// A creator's argument types: their combined fingerprint, and their Rust names for messages.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The fingerprints of the argument types, combined.
    pub fingerprint: Fingerprint,
    /// `(usize, Option<Duration>)`.
    pub text: String,
}

impl Signature {
    /// A creator's signature, from what the macros generate.
    pub fn new(parts: Vec<(Fingerprint, String)>) -> Self {
        let names: Vec<&str> = parts.iter().map(|(_, n)| n.as_str()).collect();
        Signature {
            text: format!("({})", names.join(", ")),
            fingerprint: Fingerprint::combine(parts.iter().map(|(f, _)| *f)),
        }
    }
}

/// A shared type as the wire sees it.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeDesc {
    /// The Rust type name, for messages.
    pub type_name: String,
    /// The exposed methods, sorted by wire name.
    pub methods: Vec<MethodDesc>,
    /// The type parameters, in order.
    pub params: Vec<ParamDesc>,
    /// [`fingerprint`](Self::fingerprint), computed once.
    #[serde(skip)]
    cached: OnceLock<Fingerprint>,
}

impl MethodDesc {
    /// A method's description, from what the macros generate.
    pub fn new(name: &str, args: Vec<(Fingerprint, String)>, ret: (Fingerprint, String)) -> Self {
        let names: Vec<&str> = args.iter().map(|(_, n)| n.as_str()).collect();
        MethodDesc {
            name: name.into(),
            args: args.iter().map(|(f, _)| *f).collect(),
            ret: ret.0,
            signature: format!("({}) -> {}", names.join(", "), ret.1),
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        let name = Fingerprint::of_bytes(self.name.as_bytes());
        Fingerprint::combine(std::iter::once(name).chain(self.args.iter().copied()).chain([self.ret]))
    }
}

impl ParamDesc {
    /// A parameter's description, from what the macros generate.
    pub fn new(name: &str, (fingerprint, type_name): (Fingerprint, String)) -> Self {
        ParamDesc { name: name.into(), fingerprint, type_name }
    }
}

impl TypeDesc {
    /// A description from its parts; the methods are sorted here.
    pub fn new(type_name: String, mut methods: Vec<MethodDesc>, params: Vec<ParamDesc>) -> Self {
        methods.sort_by(|a, b| a.name.cmp(&b.name));
        TypeDesc { type_name, methods, params, cached: OnceLock::new() }
    }

    /// The hash a client sends and a manager compares.
    pub fn fingerprint(&self) -> Fingerprint {
        *self.cached.get_or_init(|| {
            let methods = self.methods.iter().map(MethodDesc::fingerprint);
            let params = self.params.iter().map(|p| p.fingerprint);
            Fingerprint::combine(methods.chain([Fingerprint(u64::MAX)]).chain(params))
        })
    }

    /// The type's name with its recorded parameters: `Queue<u64>` for a `Queue<Opaque>` that
    /// recorded `u64`.
    pub(crate) fn display_name(&self) -> String {
        let base = generic_name(&self.type_name);
        if self.params.is_empty() || base == self.type_name {
            return self.type_name.clone();
        }
        let params: Vec<&str> = self.params.iter().map(|p| p.type_name.as_str()).collect();
        format!("{base}<{}>", params.join(", "))
    }

    /// True when some type parameter is unknown (`Opaque`): the object takes the client's.
    pub(crate) fn has_unknown_params(&self) -> bool {
        self.params.iter().any(|p| p.fingerprint == Fingerprint::UNKNOWN)
    }

    /// This description with the unknown parameters (`Opaque`) taken from `given`, as a manager
    /// records them for an object a generic creator made. `None` when a known parameter
    /// differs or the counts do not match.
    pub(crate) fn adopt(&self, given: &[ParamDesc]) -> TypeDesc {
        let mut out = self.clone();
        out.cached = OnceLock::new();
        if given.len() == out.params.len() {
            for (param, given) in out.params.iter_mut().zip(given) {
                if param.fingerprint == Fingerprint::UNKNOWN {
                    param.fingerprint = given.fingerprint;
                    param.type_name = given.type_name.clone();
                }
            }
        }
        out
    }

    /// The first difference between the manager's description (`self`) and a client's, as the
    /// error the client gets.
    pub(crate) fn mismatch(&self, client: &TypeDesc, typeid: &str) -> Error {
        let error = |what: String, manager: String, client: String| Error::TypeMismatch {
            typeid: typeid.into(),
            what,
            manager,
            client,
        };
        // The same generic type with other parameters: name the parameter. Other types: name the
        // first method that differs.
        let same_kind = self.params.len() == client.params.len()
            && generic_name(&self.type_name) == generic_name(&client.type_name);
        for (i, (m, c)) in self.params.iter().zip(&client.params).enumerate().filter(|_| same_kind) {
            if m.fingerprint != c.fingerprint && m.fingerprint != Fingerprint::UNKNOWN {
                let name = if c.name.is_empty() { format!("type parameter {}", i + 1) } else { c.name.clone() };
                let manager = self.param_name(m, "a type of another shape");
                // Two programs' types of one name: their fields, order or variants differ.
                let client = if manager == c.type_name {
                    format!("{} (same name, another shape)", c.type_name)
                } else {
                    c.type_name.clone()
                };
                return error(format!("element type `{name}`"), manager, client);
            }
        }
        for c in &client.methods {
            match self.methods.iter().find(|m| m.name == c.name) {
                None => {
                    return error(
                        format!("method `{}`", c.name),
                        "no such method".into(),
                        format!("`{}`", c.signature),
                    );
                }
                Some(m) if m.fingerprint() != c.fingerprint() => {
                    let what = if m.args != c.args { "arguments" } else { "result" };
                    return error(
                        format!("{what} of method `{}`", c.name),
                        format!("`{}`", m.signature),
                        format!("`{}`", c.signature),
                    );
                }
                Some(_) => {}
            }
        }
        if let Some(m) = self.methods.iter().find(|m| !client.methods.iter().any(|c| c.name == m.name)) {
            return error(format!("method `{}`", m.name), format!("`{}`", m.signature), "no such method".into());
        }
        error("type".into(), format!("`{}`", self.type_name), format!("`{}`", client.type_name))
    }

    fn param_name(&self, p: &ParamDesc, unknown: &str) -> String {
        if p.type_name.is_empty() { unknown.into() } else { p.type_name.clone() }
    }
}

/// Creates an object of `typeid` for a proxy of type `P`, checked by the manager; a mismatch is
/// explained by comparing the manager's description with `P`'s.
pub(crate) fn create<P: Proxy>(
    manager: &BaseManager,
    typeid: &str,
    args: &[u8],
    signature: Option<Signature>,
) -> Result<P>
where
    P::Referent: Dispatch,
{
    let desc = describe::<P::Referent>();
    let expect = Expect::of(&desc, signature.as_ref().map(|s| s.fingerprint));
    match manager.create_expecting(typeid, args, Some(expect)) {
        Ok(base) => Ok(P::from_base(base)),
        Err(Error::TypeMismatch { .. }) => Err(explain(manager.address(), typeid, None, &desc, signature.as_ref())),
        Err(e) => Err(e),
    }
}

/// The precise error for a mismatch the manager found: asks for its description and compares.
pub(crate) fn explain(
    address: &Address,
    typeid: &str,
    id: Option<u64>,
    client: &TypeDesc,
    signature: Option<&Signature>,
) -> Error {
    match remote_description(address, typeid, id) {
        Ok((manager, manager_signature)) => {
            if let (Some(mine), Some(theirs)) = (signature, manager_signature)
                && mine.fingerprint != theirs.fingerprint
            {
                return Error::TypeMismatch {
                    typeid: typeid.into(),
                    what: "the creator's arguments".into(),
                    manager: format!("`{}`", theirs.text),
                    client: format!("`{}`", mine.text),
                };
            }
            manager.adopt(&client.params).mismatch(client, typeid)
        }
        Err(e) => e,
    }
}

/// The manager's description of object `id`, or of what the creator of `typeid` makes (with the
/// creator's signature).
fn remote_description(address: &Address, typeid: &str, id: Option<u64>) -> Result<(TypeDesc, Option<Signature>)> {
    let req = Request::Describe { typeid, id };
    let bytes = crate::client::with_conn(address, |c| c.request(&req))?;
    wire::decode(&bytes, "a type description")
}

/// Checks a proxy returned by a `#[shared(proxy)]` method against the type `Q` it is used as.
pub(crate) fn check_returned<Q: Proxy>(base: BaseProxy, fingerprint: Fingerprint) -> Result<Q>
where
    Q::Referent: Dispatch,
{
    let desc = describe::<Q::Referent>();
    if desc.fingerprint() == fingerprint {
        return Ok(Q::from_base(base));
    }
    let token = base.token().clone();
    let error = explain(token.address(), token.typeid(), Some(token.id()), &desc, None);
    drop(base);
    Err(error)
}

/// Checks, once, the type of a proxy received from another process: asks for its object's
/// description and compares it with `T`'s.
pub(crate) fn verify<T: Dispatch>(base: &BaseProxy) -> Result<()> {
    if base.is_verified() {
        return Ok(());
    }
    let token = base.token();
    let (manager, _) = remote_description(token.address(), token.typeid(), Some(token.id()))?;
    check_description::<T>(base, manager)
}

/// [`verify`] with the manager's description of the proxy's object in hand.
pub(crate) fn check_description<T: Dispatch>(base: &BaseProxy, manager: TypeDesc) -> Result<()> {
    let token = base.token();
    let client = describe::<T>();
    if manager.fingerprint() != client.fingerprint() {
        return Err(manager.adopt(&client.params).mismatch(&client, token.typeid()));
    }
    base.mark_verified();
    Ok(())
}

/// `Queue` for `Queue<String>`.
fn generic_name(type_name: &str) -> &str {
    type_name.split('<').next().unwrap_or(type_name)
}

/// The description of `T`, computed once per type in this process.
#[doc(hidden)]
pub fn describe<T: Dispatch>() -> Arc<TypeDesc> {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, Arc<TypeDesc>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(d) = crate::unpoison::lock(cache).get(&TypeId::of::<T>()) {
        return d.clone();
    }
    let desc = Arc::new(TypeDesc::new(crate::__private::short_type_name::<T>(), T::methods(), T::params()));
    crate::unpoison::lock(cache).insert(TypeId::of::<T>(), desc.clone());
    desc
}

/// What a client says about the object it binds to: its description's hash and its type
/// parameters, which a manager records for an object made by a generic creator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Expect {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) params: Vec<ParamDesc>,
    /// The fingerprint of the creator's argument types, as the client declares them (unknown
    /// for an untyped create).
    pub(crate) signature: Option<Fingerprint>,
}

impl Expect {
    pub(crate) fn of(desc: &TypeDesc, signature: Option<Fingerprint>) -> Expect {
        Expect { fingerprint: desc.fingerprint(), params: desc.params.clone(), signature }
    }
}
