//! [`Dict`]: CPython's `dict` proxy, held by a manager.

use super::SyncManager;
use crate::Wire;
use crate::encoded::Encoded;
use crate::error::{Error, Result};
use std::fmt;
use std::marker::PhantomData;

/// A dictionary held by a manager (CPython's `dict` proxy), in insertion order.
///
/// Keys are compared by their encoding, which is equality for the usual key types (integers,
/// strings, tuples and structs of them); floats and maps make poor keys, as in Python.
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let d = m.dict::<String, i64>()?;
/// d.insert("x".into(), 1)?;
/// assert_eq!(d.get(&"x".into())?, Some(1));
/// assert_eq!(d.setdefault("y".into(), 2)?, 2);
/// assert_eq!(d.items()?, vec![("x".to_string(), 1), ("y".to_string(), 2)]);
/// assert!(matches!(d.get_item(&"z".into()), Err(procman::Error::NotFound { .. })));
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(crate::Shared)]
pub struct Dict<K, V> {
    map: indexmap::IndexMap<Encoded<K>, Encoded<V>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Default for Dict<K, V> {
    fn default() -> Self {
        Dict { map: Default::default(), _types: PhantomData }
    }
}

impl<K, V> fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dict(len={})", self.map.len())
    }
}

fn no_key() -> Error {
    Error::NotFound { what: "key".into() }
}

#[crate::shared]
impl<K: 'static, V: 'static> Dict<K, V> {
    /// The value of `key`, if any (Python's `d.get(key)`).
    pub fn get(&self, key: &Encoded<K>) -> Option<Encoded<V>> {
        self.map.get(key).cloned()
    }

    /// Sets `key` to `value`; returns the previous value (Python's `d[key] = value`).
    pub fn insert(&mut self, key: Encoded<K>, value: Encoded<V>) -> Option<Encoded<V>> {
        self.map.insert(key, value)
    }

    /// Removes `key`; returns its value, if it was there.
    pub fn remove(&mut self, key: &Encoded<K>) -> Option<Encoded<V>> {
        self.map.shift_remove(key)
    }

    /// True when `key` is present (Python's `key in d`).
    pub fn contains_key(&self, key: &Encoded<K>) -> bool {
        self.map.contains_key(key)
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there is no item.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> Vec<Encoded<K>> {
        self.map.keys().cloned().collect()
    }

    /// The values, in insertion order.
    pub fn values(&self) -> Vec<Encoded<V>> {
        self.map.values().cloned().collect()
    }

    /// The items, in insertion order.
    pub fn items(&self) -> Vec<(Encoded<K>, Encoded<V>)> {
        self.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Removes and returns the last item inserted; [`Error::NotFound`] when empty.
    pub fn popitem(&mut self) -> Result<(Encoded<K>, Encoded<V>)> {
        self.map.pop().ok_or_else(|| Error::NotFound { what: "item in an empty dict".into() })
    }

    /// The value of `key`, inserting `default` first when absent.
    pub fn setdefault(&mut self, key: Encoded<K>, default: Encoded<V>) -> Encoded<V> {
        self.map.entry(key).or_insert(default).clone()
    }

    /// Inserts every item, in one call.
    pub fn update(&mut self, items: &[(Encoded<K>, Encoded<V>)]) {
        self.map.extend(items.iter().cloned());
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// The value of `key`; [`Error::NotFound`] when absent (Python's `d[key]`).
    #[shared(client)]
    pub fn get_item(&self, key: &K) -> Result<V>
    where
        K: Wire,
        V: Wire,
    {
        self.get(key)?.ok_or_else(no_key)
    }

    /// Removes `key` and returns its value; [`Error::NotFound`] when absent (Python's `pop`).
    #[shared(client)]
    pub fn pop(&self, key: &K) -> Result<V>
    where
        K: Wire,
        V: Wire,
    {
        self.remove(key)?.ok_or_else(no_key)
    }

    /// Removes `key`; [`Error::NotFound`] when absent (Python's `del d[key]`).
    #[shared(client)]
    pub fn del_item(&self, key: &K) -> Result<()>
    where
        K: Wire,
        V: Wire,
    {
        self.pop(key).map(drop)
    }

    /// Iterates over a snapshot of the items, taken in one call.
    #[shared(client)]
    pub fn iter(&self) -> Result<std::vec::IntoIter<(K, V)>>
    where
        K: Wire,
        V: Wire,
    {
        Ok(self.items()?.into_iter())
    }

    /// A copy of the items (Python's `d.copy()`), in insertion order.
    #[shared(client)]
    pub fn copy(&self) -> Result<Vec<(K, V)>>
    where
        K: Wire,
        V: Wire,
    {
        self.items()
    }
}

#[crate::manager]
impl SyncManager {
    /// A new, empty [`Dict`] (Python's `manager.dict()`).
    pub fn dict<K: Wire + 'static, V: Wire + 'static>(&self) -> Result<DictProxy<K, V>> {
        self.dict_from::<K, V>(&[])
    }

    /// A new [`Dict`] holding `items` (Python's `manager.dict(items)`).
    #[manager(typeid = "dict")]
    pub fn dict_from<K, V>(items: &[(Encoded<K>, Encoded<V>)]) -> Dict<K, V> {
        Dict { map: items.iter().cloned().collect(), _types: PhantomData }
    }
}

impl<K, V> crate::shared::Inspect for Dict<K, V> {
    fn state(&self) -> crate::inspect::ObjectState {
        crate::inspect::ObjectState::Items { len: self.map.len() }
    }
}
