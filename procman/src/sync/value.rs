//! [`Value`]: CPython's `Value` proxy (the specification's `SharedValue` and `SharedStruct` in a
//! `SyncManager`), held by a manager.

use super::SyncManager;
use crate::Wire;
use crate::encoded::Encoded;
use crate::error::Result;
use std::fmt;

/// One value held by a manager (CPython's `Value` proxy; the specification's `SharedValue` and
/// `SharedStruct` in a `SyncManager`).
///
/// ```
/// use procman::sync::SyncManager;
///
/// procman::init();
/// let m = SyncManager::new().serve_in_background()?;
/// let v = m.value(&(1i16, 2i16))?;
/// v.set((3, 4))?;
/// assert_eq!(v.get()?, (3, 4));
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(crate::Shared)]
pub struct Value<T> {
    value: Encoded<T>,
}

impl<T> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({:?})", self.value)
    }
}

#[crate::shared]
impl<T: 'static> Value<T> {
    /// The value.
    pub fn get(&self) -> Encoded<T> {
        self.value.clone()
    }

    /// Replaces the value.
    pub fn set(&mut self, value: Encoded<T>) {
        self.value = value;
    }
}

#[crate::manager]
impl SyncManager {
    /// A new [`Value`] holding `value` (Python's `manager.Value(typecode, value)`).
    #[manager(typeid = "Value")]
    pub fn value<T>(value: &Encoded<T>) -> Value<T> {
        Value { value: value.clone() }
    }

    /// The specification's `SharedValue(format, value)`: a [`Value`].
    pub fn shared_value<T: Wire + 'static>(&self, value: &T) -> Result<ValueProxy<T>> {
        self.value(value)
    }

    /// The specification's `SharedStruct(format, value)`: a [`Value`] of a struct or tuple.
    pub fn shared_struct<T: Wire + 'static>(&self, value: &T) -> Result<ValueProxy<T>> {
        self.value(value)
    }
}

impl<T> crate::shared::Inspect for Value<T> {
    fn state(&self) -> crate::inspect::ObjectState {
        crate::inspect::ObjectState::Value { bytes: self.value.as_bytes().len() }
    }
}
