//! [`List`]: CPython's `list` proxy, held by a manager.

use super::SyncManager;
use super::sequence::{self, clamp, resolve, span};
use crate::Wire;
use crate::encoded::Encoded;
use crate::error::{Error, Result};
use std::fmt;

/// A list held by a manager (CPython's `list` proxy). Indices may be negative, counting from
/// the end, as in Python. Equality (`count`, `index`, `remove`) compares encodings.
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let l = m.list(&[3, 1, 2])?;
/// l.append(0)?;
/// assert_eq!(l.get(-1)?, 0);
/// l.sort()?;
/// assert_eq!(l.to_vec()?, vec![0, 1, 2, 3]);
/// assert_eq!(l.slice(Some(1), None)?, vec![1, 2, 3]);
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(crate::Shared)]
pub struct List<T> {
    items: Vec<Encoded<T>>,
    version: u64,
}

impl<T> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "List(len={})", self.items.len())
    }
}

impl<T> List<T> {
    fn changed(&mut self) {
        self.version += 1;
    }

    fn position(&self, value: &Encoded<T>) -> Result<usize> {
        self.items.iter().position(|v| v == value).ok_or_else(|| Error::NotFound { what: "list item".into() })
    }
}

#[crate::shared]
impl<T: 'static> List<T> {
    /// The number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there is no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item at `index` (negative: from the end); [`Error::IndexOutOfRange`] outside.
    pub fn get(&self, index: i64) -> Result<Encoded<T>> {
        sequence::get(&self.items, index)
    }

    /// Replaces the item at `index`; [`Error::IndexOutOfRange`] outside.
    pub fn set(&mut self, index: i64, value: Encoded<T>) -> Result<()> {
        sequence::set(&mut self.items, index, value)?;
        self.changed();
        Ok(())
    }

    /// The items from `start` to `end` (Python's `s[start:end]`; `None` for an open end).
    pub fn slice(&self, start: Option<i64>, end: Option<i64>) -> Vec<Encoded<T>> {
        sequence::slice(&self.items, start, end)
    }

    /// Replaces the items from `start` to `end` with `values` (Python's `l[start:end] = values`).
    pub fn set_slice(&mut self, start: Option<i64>, end: Option<i64>, values: &[Encoded<T>]) {
        self.items.splice(span(start, end, self.items.len()), values.iter().cloned());
        self.changed();
    }

    /// Removes the item at `index` (Python's `del l[index]`).
    pub fn delete(&mut self, index: i64) -> Result<()> {
        let i = resolve(index, self.items.len())?;
        self.items.remove(i);
        self.changed();
        Ok(())
    }

    /// Appends an item.
    pub fn append(&mut self, value: Encoded<T>) {
        self.items.push(value);
        self.changed();
    }

    /// Appends every item, in one call.
    pub fn extend(&mut self, values: &[Encoded<T>]) {
        self.items.extend(values.iter().cloned());
        self.changed();
    }

    /// Inserts before `index` (clamped to the list, as in Python).
    pub fn insert(&mut self, index: i64, value: Encoded<T>) {
        let i = clamp(Some(index), self.items.len(), 0);
        self.items.insert(i, value);
        self.changed();
    }

    #[shared(rename = "pop")]
    pub(crate) fn pop_index(&mut self, index: Option<i64>) -> Result<Encoded<T>> {
        let i = resolve(index.unwrap_or(-1), self.items.len())?;
        self.changed();
        Ok(self.items.remove(i))
    }

    /// Removes the first item equal to `value`; [`Error::NotFound`] when there is none.
    pub fn remove(&mut self, value: &Encoded<T>) -> Result<()> {
        let i = self.position(value)?;
        self.items.remove(i);
        self.changed();
        Ok(())
    }

    /// How many items equal `value`.
    pub fn count(&self, value: &Encoded<T>) -> usize {
        self.items.iter().filter(|v| *v == value).count()
    }

    /// The index of the first item equal to `value`; [`Error::NotFound`] when there is none.
    pub fn index(&self, value: &Encoded<T>) -> Result<usize> {
        self.position(value)
    }

    /// Reverses the list in place.
    pub fn reverse(&mut self) {
        self.items.reverse();
        self.changed();
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.items.clear();
        self.changed();
    }

    /// A copy of every item.
    pub fn to_vec(&self) -> Vec<Encoded<T>> {
        self.items.clone()
    }

    /// The items with the version they have: what `sort` orders in the client.
    pub(crate) fn snapshot(&self) -> (u64, Vec<Encoded<T>>) {
        (self.version, self.items.clone())
    }

    /// Replaces the items if nobody changed the list since `version`.
    pub(crate) fn replace_if(&mut self, version: u64, values: Vec<Encoded<T>>) -> bool {
        if self.version != version {
            return false;
        }
        self.items = values;
        self.changed();
        true
    }

    /// Removes and returns the last item; [`Error::IndexOutOfRange`] when empty.
    #[shared(client)]
    pub fn pop(&self) -> Result<T>
    where
        T: Wire,
    {
        self.pop_index(None)
    }

    /// Removes and returns the item at `index`; [`Error::IndexOutOfRange`] outside.
    #[shared(client)]
    pub fn pop_at(&self, index: i64) -> Result<T>
    where
        T: Wire,
    {
        self.pop_index(Some(index))
    }

    /// Sorts the list in place. The items are compared in the caller's process; the sorted
    /// list replaces the old one only if nobody changed it meanwhile (else it starts again).
    #[shared(client)]
    pub fn sort(&self) -> Result<()>
    where
        T: Wire + Ord,
    {
        self.sort_by(Ord::cmp)
    }

    /// Sorts the list in place by a key computed in the caller's process (see [`sort`](Self::sort)).
    #[shared(client)]
    pub fn sort_by_key<Key: Ord>(&self, mut key: impl FnMut(&T) -> Key) -> Result<()>
    where
        T: Wire,
    {
        self.sort_by(|a, b| key(a).cmp(&key(b)))
    }

    /// Sorts the list in place with a comparison run in the caller's process (see
    /// [`sort`](Self::sort)).
    #[shared(client)]
    pub fn sort_by(&self, mut compare: impl FnMut(&T, &T) -> std::cmp::Ordering) -> Result<()>
    where
        T: Wire,
    {
        loop {
            let (version, mut items) = self.snapshot()?;
            items.sort_by(&mut compare);
            if self.replace_if(version, items)? {
                return Ok(());
            }
        }
    }

    /// Iterates over a snapshot of the items, taken in one call.
    #[shared(client)]
    pub fn iter(&self) -> Result<std::vec::IntoIter<T>>
    where
        T: Wire,
    {
        Ok(self.to_vec()?.into_iter())
    }
}

#[crate::manager]
impl SyncManager {
    /// A new [`List`] holding `items` (Python's `manager.list(items)`).
    #[manager(typeid = "list")]
    pub fn list<T>(items: &[Encoded<T>]) -> List<T> {
        List { items: items.to_vec(), version: 0 }
    }
}

impl<T> crate::shared::Inspect for List<T> {
    fn state(&self) -> crate::inspect::ObjectState {
        crate::inspect::ObjectState::Items { len: self.items.len() }
    }
}
