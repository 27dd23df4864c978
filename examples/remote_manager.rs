//! The specification's "Using a remote manager" example: a server holds one queue (a
//! `procman::sync::Queue`, Python's `Queue.Queue`), one client puts `hello` in it, another client
//! gets it, all over TCP with an authentication key.
//!
//! Run the whole story on this machine (three processes):
//!
//! ```text
//! cargo run --example remote_manager
//! ```
//!
//! or each part by hand, on as many machines as you like:
//!
//! ```text
//! cargo run --example remote_manager -- serve 0.0.0.0:50000 none
//! cargo run --example remote_manager -- put  server-host:50000 none hello
//! cargo run --example remote_manager -- get  server-host:50000 none
//! ```

use procman::prelude::*;
use procman::sync::Queue;
use std::time::Duration;

/// The server's manager: `get_queue` returns the one queue it holds.
#[manager]
pub struct QueueManager;

#[manager]
impl QueueManager {
    /// `CreatorMethod(callable=lambda: queue, typeid='get_queue')`: every caller gets the same queue.
    #[manager(singleton)]
    pub fn get_queue() -> Queue<String> {
        Queue::new(0)
    }
}

/// The clients' manager: declares the typeid only, as the specification's clients do.
#[manager]
pub struct QueueClient;

#[manager]
impl QueueClient {
    /// `CreatorMethod(typeid='get_queue')`.
    pub fn get_queue() -> Queue<String>;
}

fn serve((address, key): (String, String)) {
    QueueManager::new().address(address.as_str()).authkey(key).serve_forever().expect("the server failed");
}

fn connect(address: &str, key: &str) -> procman::Result<QueueClient> {
    // The server may still be starting: wait for it for a few seconds.
    QueueClient::new().address(address).authkey(key).connect_timeout(Duration::from_secs(10)).connect()
}

fn put((address, key, item): (String, String, String)) -> procman::Result<()> {
    let m = connect(&address, &key)?;
    let queue = m.get_queue()?;
    queue.put(item)?;
    Ok(())
}

fn get((address, key): (String, String)) -> procman::Result<String> {
    let m = connect(&address, &key)?;
    let queue = m.get_queue()?;
    queue.get()
}

fn free_local_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(50000)
}

fn main() -> procman::Result<()> {
    procman::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("serve") => serve((arg(1), arg(2))),
        Some("put") => put((arg(1), arg(2), arg(3)))?,
        Some("get") => println!("{}", get((arg(1), arg(2)))?),
        Some(other) => {
            eprintln!("unknown command `{other}`; use serve ADDRESS KEY | put ADDRESS KEY ITEM | get ADDRESS KEY");
            std::process::exit(2);
        }
        None => {
            let address = format!("127.0.0.1:{}", free_local_port());
            let key = "none".to_string();
            let server = Process::spawn(serve, (address.clone(), key.clone()))?;
            Process::spawn(put, (address.clone(), key.clone(), "hello".to_string()))?.join()??;
            let got = Process::spawn(get, (address.clone(), key.clone()))?.join()??;
            println!("{got}");
            connect(&address, &key)?.request_shutdown()?;
            server.join()?;
        }
    }
    Ok(())
}
