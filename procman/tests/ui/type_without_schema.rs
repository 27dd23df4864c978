// A type that travels needs a fingerprint: used as an argument, or as the element of a queue,
// a type without `#[derive(Schema)]` is one error at that type, saying what to derive.
use procman::sync::SyncManager;
use procman::{Shared, shared};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Job {
    id: u64,
}

#[derive(Shared)]
pub struct Jobs;

#[shared]
impl Jobs {
    pub fn add(&self, job: Job) {
        drop(job.id);
    }
}

fn queue_of_jobs(m: &SyncManager) {
    let _ = m.queue::<Job>(0);
}

fn main() {}
