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

/// The object of the bulk rows: it returns the bytes it is given.
#[derive(Shared, Debug, Default)]
pub(crate) struct Echo;

#[shared]
impl Echo {
    /// The bytes `b`, back.
    pub(crate) fn echo(&self, b: Vec<u8>) -> Vec<u8> {
        b
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

    /// A new echo.
    pub(crate) fn echo() -> Echo {
        Echo
    }
}
