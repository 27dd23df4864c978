//! The specification's `SyncManager` examples: the `Namespace` example, then a producer /
//! consumer pipeline across processes with a joinable queue.
//!
//! Run: `cargo run --example sync_manager`

use procman::prelude::*;
use procman::sync::{NamespaceProxy, QueueProxy, SyncManager};

fn consumer((jobs, results): (QueueProxy<u64>, QueueProxy<(u32, u64)>)) {
    let me = std::process::id();
    loop {
        let n = jobs.get().expect("the manager is there");
        if n == 0 {
            jobs.task_done().unwrap();
            return;
        }
        results.put((me, n * n)).unwrap();
        jobs.task_done().unwrap();
    }
}

fn set_in_child(ns: NamespaceProxy) {
    ns.set("from_child", &std::process::id()).unwrap();
}

// `#[procman::main]` is `procman::init();` as the first line of `main`.
#[procman::main]
fn main() -> procman::Result<()> {
    let manager = SyncManager::new().start()?;

    // The Namespace example.
    let global = manager.namespace()?;
    global.set("x", &10)?;
    global.set("y", &"hello")?;
    println!("{}", global.repr()?); // Namespace(x=10, y="hello")
    Process::spawn(set_in_child, global.clone())?.join()?;
    println!("a child set from_child = {}", global.get::<u32>("from_child")?);

    // A pipeline: the parent produces, four processes consume.
    let jobs = manager.queue::<u64>(8)?;
    let results = manager.queue::<(u32, u64)>(0)?;
    let workers = (0..4)
        .map(|_| Process::spawn(consumer, (jobs.clone(), results.clone())))
        .collect::<procman::Result<Vec<_>>>()?;
    for n in 1..=20 {
        jobs.put(n)?;
    }
    for _ in &workers {
        jobs.put(0)?; // one stop signal per worker
    }
    jobs.join()?; // every job was marked done
    let mut total = 0;
    let mut by_worker = std::collections::BTreeMap::new();
    while let Ok((pid, square)) = results.get_nowait() {
        total += square;
        *by_worker.entry(pid).or_insert(0) += 1;
    }
    for w in workers {
        w.join()?;
    }
    println!("sum of squares 1..=20 = {total} (computed by {} processes: {by_worker:?})", by_worker.len());
    assert_eq!(total, (1..=20u64).map(|n| n * n).sum());
    manager.shutdown()
}
