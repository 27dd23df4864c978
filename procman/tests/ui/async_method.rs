// The manager calls methods synchronously: an exposed method is not `async`.
use procman::{Shared, shared};

#[derive(Shared)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    pub async fn get(&self) -> i64 {
        self.n
    }
}

fn main() {}
