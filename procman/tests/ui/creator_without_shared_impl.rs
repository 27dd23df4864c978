// A creator's type needs its `#[shared]` impl block (the dispatch table), not only the derive.
use procman::{Shared, manager};

#[derive(Shared)]
pub struct Counter {
    n: i64,
}

#[manager]
pub struct AppManager;

#[manager]
impl AppManager {
    fn counter(n: i64) -> Counter {
        Counter { n }
    }
}

fn main() {}
