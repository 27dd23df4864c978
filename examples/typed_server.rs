//! The manager side of two separately built programs (see `typed_client.rs`): serves a queue
//! of `Job`s over TCP until stdin closes.
//!
//! ```sh
//! cargo run --example typed_server        # prints `listening on 127.0.0.1:PORT`, then the fingerprint
//! ```
//!
//! The authkey comes from `PROCMAN_EXAMPLE_KEY` (a demo default otherwise).

use procman::prelude::*;
use procman::schema::Fingerprint;
use procman::sync::Queue;
use std::io::Read;

/// The manager's `Job`.
#[derive(Debug, Serialize, Deserialize, Schema)]
pub struct Job {
    pub id: u64,
    pub name: String,
}

#[manager]
pub struct JobServer;

#[manager]
impl JobServer {
    #[manager(typeid = "jobs", singleton)]
    fn jobs() -> Queue<Job> {
        Queue::new(0)
    }
}

#[procman::main]
fn main() -> procman::Result<()> {
    let key = std::env::var("PROCMAN_EXAMPLE_KEY").unwrap_or_else(|_| "typed example key".into());
    let server = JobServer::new().address("127.0.0.1:0").authkey(key.as_str()).serve_in_background()?;
    println!("listening on {}", server.address());
    println!("fingerprint of Job: {:?}", Fingerprint::of::<Job>());
    // Serve until the parent closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    server.shutdown()
}
