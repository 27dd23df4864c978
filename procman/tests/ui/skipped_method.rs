// A method marked `#[shared(skip)]` is not exposed, even if it is `pub`.
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
    #[shared(skip)]
    pub fn reset_count(&mut self) {
        self.n = 0;
    }
}

fn use_proxy(counter: &CounterProxy) -> procman::Result<()> {
    counter.get()?;
    counter.reset_count()?;
    Ok(())
}

fn main() {}
