// `#[shared]` goes on the inherent impl block, not on a trait impl.
use procman::{Shared, shared};

#[derive(Shared)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Clone for Counter {
    fn clone(&self) -> Self {
        Counter { n: self.n }
    }
}

fn main() {}
