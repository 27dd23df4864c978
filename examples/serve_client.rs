//! A client program of `procman serve`: it knows the built-in types by their typeids only, as
//! a Python client of a remote manager does with `register('Queue')`.
//!
//! ```text
//! export PROCMAN_AUTHKEY=secret
//! procman serve 127.0.0.1:50000 &
//! cargo run --example serve_client -- 127.0.0.1:50000 10   # puts jobs, holds a lock for 10 s
//! procman inspect 127.0.0.1:50000                          # meanwhile: who holds it, who waits
//! ```

use procman::prelude::*;
use procman::sync::{Lock, LockProxy, Queue, QueueProxy};
use std::time::Duration;

/// The typeids of the server's SyncManager that this program uses; nothing else.
#[manager]
pub struct Client;

#[manager]
impl Client {
    #[manager(typeid = "Queue")]
    pub fn queue<T>(maxsize: usize) -> Queue<T>;
    #[manager(typeid = "Lock")]
    pub fn lock() -> Lock;
}

/// Takes one job, once the lock is free.
fn worker((lock, jobs): (LockProxy, QueueProxy<String>)) -> procman::Result<String> {
    let _held = lock.guard()?;
    jobs.get()
}

fn main() -> procman::Result<()> {
    procman::init();
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:50000".into());
    let hold: u64 = args.next().map_or(Ok(10), |s| s.parse()).map_err(Error::usage)?;
    let key = std::env::var("PROCMAN_AUTHKEY").map_err(|_| Error::usage("set PROCMAN_AUTHKEY to the server's key"))?;

    let m = Client::new().address(address.as_str()).authkey(key).connect()?;
    let jobs = m.queue::<String>(0)?;
    for i in 1..=3 {
        jobs.put(format!("job {i}"))?;
    }
    let lock = m.lock()?;
    let held = lock.guard()?;
    let worker = Process::spawn(worker, (lock.clone(), jobs.clone()))?;
    println!("holding the lock for {hold} s while a worker waits for it: try `procman inspect {address}`");
    std::thread::sleep(Duration::from_secs(hold));
    drop(held);
    println!("the worker took {:?}; {} jobs left", worker.join()??, jobs.qsize()?);
    Ok(())
}
