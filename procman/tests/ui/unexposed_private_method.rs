// A private method is not exposed: the proxy has no such method.
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
    fn audit(&self) {}
}

fn use_proxy(counter: &CounterProxy) -> procman::Result<()> {
    counter.get()?;
    counter.audit()?;
    Ok(())
}

fn main() {}
