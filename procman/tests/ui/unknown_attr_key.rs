// An unknown option is reported at the option.
use procman::{Shared, manager, shared};

#[derive(Shared)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    #[shared(hidden)]
    pub fn get(&self) -> i64 {
        self.n
    }
}

#[manager(synced)]
pub struct AppManager;

#[manager]
impl AppManager {
    #[manager(type_id = "c")]
    fn counter(n: i64) -> Counter {
        Counter { n }
    }
}

fn main() {}
