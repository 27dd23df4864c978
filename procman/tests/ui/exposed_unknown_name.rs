// Every name in `exposed(...)` must be a method of the block.
use procman::{Shared, shared};

#[derive(Shared, Default)]
pub struct Counter {
    n: i64,
}

#[shared(exposed(get, increment))]
impl Counter {
    pub fn get(&self) -> i64 {
        self.n
    }
    pub fn incr(&mut self) {
        self.n += 1;
    }
}

fn main() {}
