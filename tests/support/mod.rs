//! The shared type the integration tests serve: `Counter`, one word of state with the methods
//! the tests call (and one they must not be able to call).
//!
//! Each `tests/*.rs` is a crate of its own; a test file takes this fixture with `mod support;`
//! and declares its own manager around it.

use procman::prelude::*;
use std::time::Duration;

/// A counter starting at 0 (`Counter::default()`) or at a given value (`Counter::new`).
#[derive(Shared, Debug, Default)]
pub struct Counter {
    n: i64,
}

impl Counter {
    /// A counter starting at `n`.
    pub fn new(n: i64) -> Counter {
        Counter { n }
    }
}

#[shared]
impl Counter {
    /// Adds `by` and returns the new value.
    pub fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }

    pub fn get(&self) -> i64 {
        self.n
    }

    /// Panics in the server, naming the value.
    pub fn boom(&self) {
        panic!("the counter exploded at {}", self.n);
    }

    pub fn sleep_ms(&self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    /// The method's own error: dividing by zero is `Err`, naming the value.
    pub fn checked_div(&self, by: i64) -> Result<i64, String> {
        if by == 0 { Err(format!("cannot divide {} by zero", self.n)) } else { Ok(self.n / by) }
    }

    /// Private, so not exposed: the tests check that a call to it by name is refused.
    #[allow(dead_code)]
    fn audit(&self) -> i64 {
        self.n
    }
}
