//! [`Namespace`]: the specification's `Namespace`, named attributes held by a manager.

use super::SyncManager;
use crate::Schema;
use crate::encoded::{Encoded, Opaque};
use crate::error::{Error, Result};
use crate::schema::Fingerprint;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;

/// Named attributes any process can set, get and delete (the specification's `Namespace`).
/// Its `repr()` reads `Namespace(x=10, y="hello")`, sorted by name.
///
/// In Python, an attribute whose name starts with `_` belongs to the proxy, not to the shared
/// object. A procman proxy has no attributes of its own, so such names are refused
/// ([`Error::Usage`]) rather than silently shared.
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let ns = m.namespace()?;
/// ns.set("x", &10)?;
/// ns.set("y", &"hello")?;
/// assert_eq!(ns.get::<i32>("x")?, 10);
/// assert_eq!(ns.repr()?, r#"Namespace(x=10, y="hello")"#);
/// assert!(ns.set("_private", &1).is_err());
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(Default, crate::Shared)]
pub struct Namespace {
    attributes: BTreeMap<String, Attribute>,
}

/// One attribute: its value, its `Debug` form and the fingerprint of its type.
struct Attribute {
    value: Encoded<Opaque>,
    repr: String,
    fingerprint: Fingerprint,
    type_name: String,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Namespace(")?;
        for (i, (name, Attribute { repr, .. })) in self.attributes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={repr}")?;
        }
        f.write_str(")")
    }
}

fn no_attribute(name: &str) -> Error {
    Error::NotFound { what: format!("namespace attribute `{name}`") }
}

fn mismatch(name: &str, attribute: &Attribute, client: &str) -> Error {
    Error::TypeMismatch {
        typeid: "Namespace".into(),
        what: format!("attribute `{name}`"),
        manager: format!("`{}`", attribute.type_name),
        client: format!("`{client}`"),
    }
}

#[crate::shared]
impl Namespace {
    #[shared(rename = "get")]
    pub(crate) fn get_encoded(
        &self,
        name: &str,
        fingerprint: Fingerprint,
        type_name: String,
    ) -> Result<Encoded<Opaque>> {
        let attribute = self.attributes.get(name).ok_or_else(|| no_attribute(name))?;
        if attribute.fingerprint != fingerprint {
            return Err(mismatch(name, attribute, &type_name));
        }
        Ok(attribute.value.clone())
    }

    /// Sets an attribute; one that exists keeps its type unless `retype`.
    #[shared(rename = "set")]
    pub(crate) fn set_encoded(
        &mut self,
        name: &str,
        value: Encoded<Opaque>,
        repr: String,
        (fingerprint, type_name): (Fingerprint, String),
        retype: bool,
    ) -> Result<()> {
        if name.starts_with('_') {
            return Err(Error::usage(format_args!(
                "namespace attribute `{name}`: names starting with `_` are refused (in Python they belong to the \
                 proxy, which in procman has no attributes of its own)"
            )));
        }
        if let Some(old) = self.attributes.get(name)
            && old.fingerprint != fingerprint
            && !retype
        {
            return Err(mismatch(name, old, &type_name));
        }
        self.attributes.insert(name.to_owned(), Attribute { value, repr, fingerprint, type_name });
        Ok(())
    }

    /// Deletes attribute `name`; [`Error::NotFound`] when there is none.
    pub fn delete(&mut self, name: &str) -> Result<()> {
        self.attributes.remove(name).map(drop).ok_or_else(|| no_attribute(name))
    }

    /// The attribute names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.attributes.keys().cloned().collect()
    }

    /// The value of attribute `name`. Fails with [`Error::NotFound`] when there is none, and
    /// [`Error::TypeMismatch`] when it holds another type (it is then unchanged).
    #[shared(client)]
    pub fn get<T: DeserializeOwned + Schema>(&self, name: &str) -> Result<T> {
        let (fingerprint, type_name) = crate::__private::fingerprint::<T>();
        self.get_encoded(name, fingerprint, type_name)?.cast::<T>().decode()
    }

    /// Sets attribute `name`. An attribute keeps the type it was first set with: setting it to
    /// a value of another type is [`Error::TypeMismatch`] and changes nothing (use
    /// [`replace`](Self::replace) to change its type). [`Error::Usage`] for a name starting
    /// with `_`.
    #[shared(client)]
    pub fn set<T: Serialize + Schema + fmt::Debug + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        let encoded = Encoded::<Opaque>::encode_any(value)?;
        self.set_encoded(name, encoded, format!("{value:?}"), crate::__private::fingerprint::<T>(), false)
    }

    /// Sets attribute `name` to a value of any type, replacing its value and its type.
    #[shared(client)]
    pub fn replace<T: Serialize + Schema + fmt::Debug + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        let encoded = Encoded::<Opaque>::encode_any(value)?;
        self.set_encoded(name, encoded, format!("{value:?}"), crate::__private::fingerprint::<T>(), true)
    }
}

#[crate::manager]
impl SyncManager {
    /// A new, empty [`Namespace`] (Python's `manager.Namespace()`).
    #[manager(typeid = "Namespace")]
    pub fn namespace() -> Namespace {
        Namespace::default()
    }
}

impl crate::shared::Inspect for Namespace {
    fn state(&self) -> crate::inspect::ObjectState {
        crate::inspect::ObjectState::Namespace { names: self.attributes.keys().cloned().collect() }
    }
}
