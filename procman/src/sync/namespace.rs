//! [`Namespace`]: the specification's `Namespace`, named attributes held by a manager.

use super::SyncManager;
use crate::encoded::{Encoded, Opaque};
use crate::error::{Error, Result};
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
    attributes: BTreeMap<String, (Encoded<Opaque>, String)>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Namespace(")?;
        for (i, (name, (_, repr))) in self.attributes.iter().enumerate() {
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

#[crate::shared]
impl Namespace {
    #[shared(rename = "get")]
    pub(crate) fn get_encoded(&self, name: &str) -> Result<Encoded<Opaque>> {
        self.attributes.get(name).map(|(value, _)| value.clone()).ok_or_else(|| no_attribute(name))
    }

    #[shared(rename = "set")]
    pub(crate) fn set_encoded(&mut self, name: &str, value: Encoded<Opaque>, repr: String) -> Result<()> {
        if name.starts_with('_') {
            return Err(Error::usage(format_args!(
                "namespace attribute `{name}`: names starting with `_` are refused (in Python they belong to the \
                 proxy, which in procman has no attributes of its own)"
            )));
        }
        self.attributes.insert(name.to_owned(), (value, repr));
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
    /// [`Error::Decode`] when it holds another type.
    #[shared(client)]
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        self.get_encoded(name)?.cast::<T>().decode()
    }

    /// Sets attribute `name`; [`Error::Usage`] for a name starting with `_`.
    #[shared(client)]
    pub fn set<T: Serialize + fmt::Debug>(&self, name: &str, value: &T) -> Result<()> {
        self.set_encoded(name, Encoded::encode(value)?.cast(), format!("{value:?}"))
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
