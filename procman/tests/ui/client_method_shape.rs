// A `#[shared(client)]` method runs in the caller, on the proxy: it takes `&self`, and it has
// no wire name to rename.
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
    #[shared(client)]
    pub fn reset(&mut self) {}
    #[shared(client, rename = "twice")]
    pub fn doubled(&self) -> procman::Result<i64> {
        Ok(self.get()? * 2)
    }
}

fn main() {}
