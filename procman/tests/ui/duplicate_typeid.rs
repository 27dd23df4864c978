// Each creator of a manager has its own typeid.
use procman::{Shared, manager, shared};

#[derive(Shared)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    pub fn get(&self) -> i64 {
        self.n
    }
}

#[manager]
pub struct AppManager;

#[manager]
impl AppManager {
    fn counter(n: i64) -> Counter {
        Counter { n }
    }
    #[manager(typeid = "counter")]
    fn zero() -> Counter {
        Counter { n: 0 }
    }
}

fn main() {}
