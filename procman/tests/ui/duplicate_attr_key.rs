// A repeated option is reported at its second occurrence.
use procman::{Shared, manager, shared};

#[derive(Shared)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    #[shared(skip, skip)]
    pub fn get(&self) -> i64 {
        self.n
    }
}

#[manager]
pub struct AppManager;

#[manager]
impl AppManager {
    #[manager(typeid = "a", typeid = "b")]
    fn counter(n: i64) -> Counter {
        Counter { n }
    }
}

fn main() {}
