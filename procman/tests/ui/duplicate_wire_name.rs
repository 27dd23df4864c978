// Two exposed methods cannot share a wire name, and `rename` needs an exposed method.
use procman::{Shared, shared};

#[derive(Shared, Default)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    pub fn get(&self) -> i64 {
        self.n
    }
    #[shared(rename = "get")]
    pub fn value(&self) -> i64 {
        self.n
    }
    #[shared(skip, rename = "hidden")]
    pub fn audit(&self) {}
}

fn main() {}
