//! The objects the benchmark manager serves.

use procman::prelude::*;

/// The object of the proxy-call rows: one word of state, one method.
#[derive(Shared, Debug, Default)]
pub(crate) struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    /// Adds `by` and returns the new value.
    pub(crate) fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }
}

/// The manager of the benchmark: `Counter` plus every built-in type.
#[manager(sync)]
pub(crate) struct BenchManager;

#[manager]
impl BenchManager {
    /// A new counter.
    pub(crate) fn counter(start: i64) -> Counter {
        Counter { n: start }
    }
}
