//! procman from tokio: the same shared types, their async proxies.
//!
//! A manager process holds a counter, a queue and a lock; 1,000 tasks share the counter, a
//! producer task feeds consumer tasks through the queue, and a task holds the lock across an
//! `.await`. Every async call of this process goes through one connection to the manager.
//!
//! ```sh
//! cargo run --release --example async_tour
//! ```

use procman::prelude::*;
use std::time::{Duration, Instant};

/// A counter the manager holds.
#[derive(Shared, Debug, Default)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    /// Adds `by` and returns the new value.
    pub fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }

    /// The value.
    pub fn get(&self) -> i64 {
        self.n
    }
}

/// The tour's manager: a counter, plus every built-in type (`sync`).
#[manager(sync)]
pub struct TourManager;

#[manager]
impl TourManager {
    fn counter() -> Counter {
        Counter::default()
    }
}

fn main() -> procman::Result<()> {
    procman::init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(tour())
}

async fn tour() -> procman::Result<()> {
    let m = TourManager::new().start_async().await?;
    println!("manager started: pid {:?}, at {}", m.pid(), m.address());

    // 1,000 tasks share one counter.
    let counter = m.counter()?.into_async();
    let t = Instant::now();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let c = counter.clone();
            tokio::spawn(async move { c.incr(1).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("a task")?;
    }
    println!("1,000 tasks incremented the counter to {} in {:?}", counter.get().await?, t.elapsed());

    // A producer and three consumers on one queue; `None` tells a consumer to stop.
    let q = m.queue::<Option<u32>>(16)?.into_async();
    let consumers: Vec<_> = (0..3)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(item) = q.get().await? {
                    got.push(item);
                }
                println!("consumer {i} got {} items", got.len());
                Ok::<_, procman::Error>(got)
            })
        })
        .collect();
    let producer = {
        let q = q.clone();
        tokio::spawn(async move {
            for item in 0..300 {
                q.put(Some(item)).await?;
            }
            for _ in 0..3 {
                q.put(None).await?;
            }
            Ok::<_, procman::Error>(())
        })
    };
    producer.await.expect("the producer")?;
    let mut all = Vec::new();
    for c in consumers {
        all.extend(c.await.expect("a consumer")?);
    }
    all.sort_unstable();
    assert_eq!(all, (0..300).collect::<Vec<_>>());
    println!("the consumers got all 300 items, each once");

    // A lock held across an `.await`: the other task waits for it.
    let lock = m.lock()?.into_async();
    assert!(lock.acquire(true, None).await?);
    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            lock.acquire(true, None).await?;
            lock.release().await?;
            Ok::<_, procman::Error>(t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock.release().await?;
    println!("the second task waited {:?} for the lock held across an await", waiter.await.expect("the waiter")?);

    // A `get` with a timeout, the tokio way: dropping it takes no item.
    let empty = m.queue::<u32>(0)?.into_async();
    let r = tokio::time::timeout(Duration::from_millis(50), empty.get()).await;
    println!("a get on an empty queue timed out: {}", r.is_err());

    drop((counter, q, lock, empty));
    m.shutdown_async().await?;
    println!("manager shut down");
    Ok(())
}
