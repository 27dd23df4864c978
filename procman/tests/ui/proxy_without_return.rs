// `#[shared(proxy)]` needs a returned shared object.
use procman::{Shared, shared};

#[derive(Shared)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    #[shared(proxy)]
    pub fn reset(&mut self) {
        self.n = 0;
    }
}

fn main() {}
