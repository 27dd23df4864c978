// The async proxy has the exposed methods only: a private or skipped method is missing there
// too, and so is a client helper that calls the proxy inside a closure.
use procman::{AsyncProxy, Shared, shared};

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
    #[shared(skip)]
    pub fn reset_count(&mut self) {
        self.n = 0;
    }
    #[shared(client)]
    pub fn twice(&self) -> procman::Result<Vec<i64>> {
        (0..2).map(|_| self.get()).collect()
    }
}

async fn use_proxy(counter: &AsyncCounterProxy) -> procman::Result<()> {
    counter.get().await?;
    counter.audit().await?;
    counter.reset_count().await?;
    counter.twice().await?;
    // The blocking proxy inside has the helper.
    counter.blocking().twice()?;
    Ok(())
}

fn main() {}
