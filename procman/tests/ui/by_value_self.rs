// The object stays in the manager: an exposed method cannot take `self` by value.
use procman::{Shared, shared};

#[derive(Shared)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    pub fn into_inner(self) -> i64 {
        self.n
    }
}

fn main() {}
