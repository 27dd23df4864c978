//! The threads that run the calls of multiplexed connections: started as calls need them,
//! reused while they are idle, ended after [`IDLE`] without work.
//!
//! A call that blocks holds its thread for as long as it blocks, as a blocking client's call
//! holds its connection's thread: the number of threads follows the number of calls running at
//! once, not the number of calls made.

use std::collections::VecDeque;
use std::io;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

/// How long an idle worker waits for work before it ends.
const IDLE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Pool {
    queue: Mutex<Queue>,
    work: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::default)
}

/// Runs `job` on an idle worker, or on a new one; fails only when no thread can be started.
pub(super) fn run(job: Job) -> io::Result<()> {
    let pool = pool();
    let mut q = crate::unpoison::lock(&pool.queue);
    if q.idle > q.jobs.len() {
        q.jobs.push_back(job);
        drop(q);
        pool.work.notify_one();
        return Ok(());
    }
    drop(q);
    std::thread::Builder::new().name("procman-call".into()).spawn(move || {
        job();
        work(pool);
    })?;
    Ok(())
}

/// A worker's life after its first job: the next jobs, until it idles too long.
fn work(pool: &'static Pool) {
    let mut q = crate::unpoison::lock(&pool.queue);
    loop {
        if let Some(job) = q.jobs.pop_front() {
            drop(q);
            job();
            q = crate::unpoison::lock(&pool.queue);
            continue;
        }
        q.idle += 1;
        let (guard, timeout) = crate::unpoison::wait_timeout(&pool.work, q, IDLE);
        q = guard;
        q.idle -= 1;
        if timeout.timed_out() && q.jobs.is_empty() {
            return;
        }
    }
}
