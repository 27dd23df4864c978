//! The client side of two separately built programs (see `typed_server.rs`): declares the
//! manager's typeid with its own `Job` and uses the queue. Run with `--changed` to use a `Job`
//! whose fields are in another order: the manager refuses it at the first contact.
//!
//! ```sh
//! cargo run --example typed_client -- 127.0.0.1:PORT            # puts and gets a Job
//! cargo run --example typed_client -- 127.0.0.1:PORT --changed  # type mismatch, nothing sent
//! ```

use procman::prelude::*;
use procman::schema::Fingerprint;
use procman::sync::Queue;

/// This program's `Job`: the same declaration as the manager's.
#[derive(Debug, Serialize, Deserialize, Schema)]
pub struct Job {
    pub id: u64,
    pub name: String,
}

/// What `--changed` uses: a `Job` edited since the manager was built.
pub mod changed {
    use procman::prelude::*;
    #[derive(Debug, Serialize, Deserialize, Schema)]
    pub struct Job {
        pub name: String,
        pub id: u64,
    }
}

#[manager]
pub struct JobClient;

#[manager]
impl JobClient {
    #[manager(typeid = "jobs")]
    fn jobs() -> Queue<Job>;
}

#[manager]
pub struct ChangedClient;

#[manager]
impl ChangedClient {
    #[manager(typeid = "jobs")]
    fn jobs() -> Queue<changed::Job>;
}

#[procman::main]
fn main() -> procman::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let address = args.first().expect("usage: typed_client HOST:PORT [--changed]").as_str();
    let key = std::env::var("PROCMAN_EXAMPLE_KEY").unwrap_or_else(|_| "typed example key".into());
    if args.iter().any(|a| a == "--changed") {
        println!("fingerprint of Job: {:?}", Fingerprint::of::<changed::Job>());
        let m = ChangedClient::new().address(address).authkey(key.as_str()).connect()?;
        match m.jobs() {
            Err(e) => println!("refused: {e}"),
            Ok(_) => println!("accepted"),
        }
        return Ok(());
    }
    println!("fingerprint of Job: {:?}", Fingerprint::of::<Job>());
    let m = JobClient::new().address(address).authkey(key.as_str()).connect()?;
    let jobs = m.jobs()?;
    jobs.put(Job { id: 1, name: "build".into() })?;
    let job = jobs.get()?;
    println!("got job {} {:?}", job.id, job.name);
    Ok(())
}
