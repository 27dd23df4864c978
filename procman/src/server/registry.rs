//! The registry of creators: which typeids a server builds, and how.
//!
//! `#[manager]` registers one [`CreatorEntry`] per creator `fn` through `inventory`, under its
//! manager's name. A server looks up the creators of the manager it serves, and of the managers
//! that one includes (`#[manager(sync)]`), when it binds.

use super::object::Object;
use crate::error::{Error, Result};
use std::collections::HashMap;

/// One creator: registered by `#[manager]` through `inventory`.
#[derive(Debug)]
pub struct CreatorEntry {
    /// `Manager::NAME` of the manager that declares it.
    pub manager: &'static str,
    /// The typeid clients ask for.
    pub typeid: &'static str,
    /// Builds the object from encoded arguments, in the server.
    pub create: fn(&[u8]) -> Result<Object>,
    /// One object shared by every caller.
    pub singleton: bool,
    /// The description of the type it creates (with `Opaque` type parameters for a generic
    /// creator).
    pub describe: fn() -> std::sync::Arc<crate::typecheck::TypeDesc>,
    /// The fingerprint of its argument types.
    pub signature: fn() -> crate::typecheck::Signature,
    /// Where it is declared.
    pub file: &'static str,
    /// Where it is declared.
    pub line: u32,
}

inventory::collect!(CreatorEntry);

/// The creators of one server, by typeid.
pub(crate) type Creators = HashMap<&'static str, &'static CreatorEntry>;

/// The creators of `manager` and of the managers it includes; a typeid declared twice is an
/// error naming both places.
pub(crate) fn creators(manager: &str, includes: &[String]) -> Result<Creators> {
    let mut map = Creators::new();
    for e in inventory::iter::<CreatorEntry> {
        if e.manager != manager && !includes.iter().any(|i| i == e.manager) {
            continue;
        }
        if let Some(first) = map.insert(e.typeid, e) {
            return Err(Error::DuplicateTypeid {
                manager: manager.into(),
                typeid: e.typeid.into(),
                first: format!("{}:{}", first.file, first.line),
                second: format!("{}:{}", e.file, e.line),
            });
        }
    }
    Ok(map)
}

/// The typeids a server of `manager` serves, sorted.
pub(crate) fn typeids(manager: &str, includes: &[String]) -> Result<Vec<&'static str>> {
    let mut v: Vec<_> = creators(manager, includes)?.into_keys().collect();
    v.sort_unstable();
    Ok(v)
}
