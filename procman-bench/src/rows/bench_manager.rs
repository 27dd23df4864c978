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

/// The object of the user-blocking row: callers that wait for each other inside its methods,
/// on a `Condvar` of its own (which procman does not see).
#[derive(Shared, Debug, Default)]
pub(crate) struct Mailbox {
    items: std::sync::Mutex<Vec<u64>>,
    put: std::sync::Condvar,
}

#[shared]
impl Mailbox {
    /// Leaves `v` and wakes whoever takes.
    pub(crate) fn put(&self, v: u64) {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).push(v);
        self.put.notify_all();
    }

    /// Takes a value, waiting inside the method until one is there.
    pub(crate) fn take(&self) -> u64 {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(v) = items.pop() {
                return v;
            }
            items = self.put.wait(items).unwrap_or_else(|p| p.into_inner());
        }
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

    /// A new, empty mailbox.
    pub(crate) fn mailbox() -> Mailbox {
        Mailbox::default()
    }
}
