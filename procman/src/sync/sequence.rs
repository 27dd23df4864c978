//! Python's index and slice rules, which [`List`](super::List) and [`Array`](super::Array)
//! share.

use crate::error::{Error, Result};
use std::ops::Range;

/// Python's index rule: negative counts from the end; outside is `IndexOutOfRange`.
pub(crate) fn resolve(index: i64, len: usize) -> Result<usize> {
    let i = if index < 0 { index + len as i64 } else { index };
    if i < 0 || i as usize >= len { Err(Error::IndexOutOfRange { index, len }) } else { Ok(i as usize) }
}

/// Python's slice rule: bounds clamp to the sequence.
pub(crate) fn clamp(index: Option<i64>, len: usize, default: usize) -> usize {
    match index {
        None => default,
        Some(i) if i < 0 => (i + len as i64).max(0) as usize,
        Some(i) => (i as usize).min(len),
    }
}

/// The positions `items[start:end]` covers, as Python computes them.
pub(crate) fn span(start: Option<i64>, end: Option<i64>, len: usize) -> Range<usize> {
    let s = clamp(start, len, 0);
    s..clamp(end, len, len).max(s)
}

/// `items[index]`, with Python's index rule.
pub(crate) fn get<T: Clone>(items: &[T], index: i64) -> Result<T> {
    Ok(items[resolve(index, items.len())?].clone())
}

/// `items[index] = value`, with Python's index rule.
pub(crate) fn set<T>(items: &mut [T], index: i64, value: T) -> Result<()> {
    let i = resolve(index, items.len())?;
    items[i] = value;
    Ok(())
}

/// `items[start:end]`, with Python's slice rule.
pub(crate) fn slice<T: Clone>(items: &[T], start: Option<i64>, end: Option<i64>) -> Vec<T> {
    items[span(start, end, items.len())].to_vec()
}
