//! [`Array`]: the specification's `SharedArray` in a `SyncManager`, held by a manager.

use super::SyncManager;
use super::sequence::{self, span};
use crate::encoded::Encoded;
use crate::error::{Error, Result};
use std::fmt;

/// A fixed-length array held by a manager (the specification's `SharedArray` in a
/// `SyncManager`). Indices may be negative, as in Python.
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let a = m.shared_array(&[0i32; 4])?;
/// a.set_slice(None, Some(2), &[1, 2])?;
/// assert_eq!(a.to_vec()?, vec![1, 2, 0, 0]);
/// assert!(a.set_slice(None, Some(2), &[1]).is_err()); // the length is fixed
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(crate::Shared)]
pub struct Array<T> {
    items: Vec<Encoded<T>>,
}

impl<T> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Array(len={})", self.items.len())
    }
}

#[crate::shared]
impl<T: 'static> Array<T> {
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
        sequence::set(&mut self.items, index, value)
    }

    /// The items from `start` to `end` (Python's `a[start:end]`; `None` for an open end).
    pub fn slice(&self, start: Option<i64>, end: Option<i64>) -> Vec<Encoded<T>> {
        sequence::slice(&self.items, start, end)
    }

    /// Replaces the items from `start` to `end` with as many `values` (the specification's
    /// `arr[:5] = [1, 2, 3, 4, 5]`); [`Error::Usage`] when the lengths differ.
    pub fn set_slice(&mut self, start: Option<i64>, end: Option<i64>, values: &[Encoded<T>]) -> Result<()> {
        let range = span(start, end, self.items.len());
        if values.len() != range.len() {
            return Err(Error::usage(format_args!(
                "an array's length is fixed: cannot assign {} items to a slice of {}",
                values.len(),
                range.len()
            )));
        }
        self.items.splice(range, values.iter().cloned());
        Ok(())
    }

    /// A copy of every item.
    pub fn to_vec(&self) -> Vec<Encoded<T>> {
        self.items.clone()
    }
}

#[crate::manager]
impl SyncManager {
    /// A new fixed-length [`Array`] holding `items` (the specification's
    /// `SharedArray(format, sequence)`).
    #[manager(typeid = "Array")]
    pub fn shared_array<T>(items: &[Encoded<T>]) -> Array<T> {
        Array { items: items.to_vec() }
    }
}

impl<T> crate::shared::Inspect for Array<T> {
    fn state(&self) -> crate::inspect::ObjectState {
        crate::inspect::ObjectState::Items { len: self.items.len() }
    }
}
