//! The manager API around connecting and serving, across real processes and sockets: what
//! `connect()` says when nothing listens, `connect_timeout`, `bind()` and its real address, and
//! the error of a program whose `main` does not call `procman::init()`.

use procman::prelude::*;
use procman::{Address, Error};
use std::path::PathBuf;
use std::time::{Duration, Instant};

procman::child_entry_point!();

mod support;
use support::Counter;

#[manager]
pub struct ApiManager;

#[manager]
impl ApiManager {
    pub fn counter() -> Counter {
        Counter::default()
    }
}

const KEY: &str = "api-test-key";

/// A TCP port on which nothing listens (bound, then closed).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn connect(address: impl Into<Address>) -> procman::Result<ApiManager> {
    ApiManager::new().address(address.into()).authkey(KEY).connect()
}

#[test]
fn nothing_listening_is_unreachable_and_a_broken_connection_is_lost() {
    let tcp = Address::Tcp { host: "127.0.0.1".into(), port: closed_port() };
    let file = Address::Unix(std::env::temp_dir().join(format!("procman-api-{}-none.sock", std::process::id())));
    let name = Address::unique_local();
    for address in [tcp, file, name] {
        match connect(address.clone()) {
            Err(e @ Error::Unreachable { .. }) => {
                assert!(e.to_string().starts_with(&format!("no manager at {address}: ")), "{e}");
                assert!(e.is_connection_lost(), "{e}");
            }
            other => panic!("{address}: expected Unreachable, got {other:?}"),
        }
    }

    // A connection that was up and broke is still ConnectionLost.
    let m = ApiManager::new().authkey(KEY).start().unwrap();
    let c = m.counter().unwrap();
    assert_eq!(c.incr(1).unwrap(), 1);
    // SAFETY: kill(2) on the manager process this test started.
    assert_eq!(unsafe { libc::kill(m.pid().unwrap() as i32, libc::SIGKILL) }, 0);
    assert!(matches!(c.incr(1), Err(Error::ConnectionLost { .. })));
}

#[test]
fn a_connect_that_gets_no_answer_gives_up_at_its_timeout() {
    // An address no one answers (or no route to): the attempt times out or fails at once.
    let silent = Address::Tcp { host: "10.255.255.1".into(), port: 9 };
    let t = Instant::now();
    let r = ApiManager::new().address(silent).authkey(KEY).connect_timeout(Duration::from_millis(300)).connect();
    assert!(matches!(r, Err(Error::Unreachable { .. })), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "gave up after {:?}", t.elapsed());
}

fn serve_later(address: Address) {
    std::thread::sleep(Duration::from_millis(300));
    ApiManager::new().address(address).authkey(KEY).serve_forever().unwrap();
}

#[test]
fn connect_timeout_waits_for_a_manager_that_is_starting() {
    let address = Address::unique_local();
    let t = Instant::now();
    let server = Process::spawn(serve_later, address.clone()).unwrap();
    let m = ApiManager::new().address(address.clone()).authkey(KEY).connect_timeout(Duration::from_secs(20)).connect();
    let m = m.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300), "connected before the server was up");
    assert_eq!(m.counter().unwrap().incr(2).unwrap(), 2);

    // A wrong key is not retried.
    let t = Instant::now();
    let wrong = ApiManager::new().address(address).authkey("wrong").connect_timeout(Duration::from_secs(20)).connect();
    assert!(matches!(wrong, Err(Error::Authentication { .. })), "{wrong:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "a wrong key was retried for {:?}", t.elapsed());

    m.request_shutdown().unwrap();
    server.join().unwrap();
}

#[test]
fn connect_timeout_ends_in_unreachable_when_no_manager_comes() {
    let t = Instant::now();
    let r = ApiManager::new()
        .address(Address::unique_local())
        .authkey(KEY)
        .connect_timeout(Duration::from_millis(300))
        .connect();
    let waited = t.elapsed();
    match r {
        Err(e @ Error::Unreachable { .. }) => assert!(e.to_string().contains("within 300ms"), "{e}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2), "{waited:?}");
}

fn count_to(port: u16) -> i64 {
    let m = connect(Address::Tcp { host: "127.0.0.1".into(), port }).unwrap();
    let c = m.counter().unwrap();
    (0..10).fold(0, |_, _| c.incr(1).unwrap())
}

#[test]
fn bind_on_port_zero_tells_the_port_before_serving() {
    let server = ApiManager::new().address("127.0.0.1:0").authkey(KEY).bind().unwrap();
    let Address::Tcp { host, port } = server.address().clone() else { panic!("a TCP address") };
    assert_eq!(host, "127.0.0.1");
    assert_ne!(port, 0);
    let serving = std::thread::spawn(move || server.serve_forever());
    // A client in another process, told only the port.
    assert_eq!(Process::spawn(count_to, port).unwrap().join().unwrap(), 10);
    connect(Address::Tcp { host, port }).unwrap().request_shutdown().unwrap();
    serving.join().unwrap().unwrap();
    assert!(matches!(connect(Address::Tcp { host: "127.0.0.1".into(), port }), Err(Error::Unreachable { .. })));
}

/// `target/<profile>/examples/<name>`: cargo builds the examples before running integration
/// tests (`cargo test`; `cargo test --test api` alone does not).
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

#[test]
fn a_main_without_init_is_told_to_call_it() {
    let exe = example("no_init");
    assert!(
        exe.exists(),
        "{} is missing: run `cargo test` (it builds the examples) or `cargo build --example no_init`",
        exe.display()
    );
    let out = std::process::Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, what) in lines.iter().zip(["spawn: ", "start: "]) {
        assert!(line.starts_with(&format!("{what}child process ")), "{line}");
        assert!(line.contains(&exe.display().to_string()), "names the program: {line}");
        assert!(line.contains("exited (exit code 101) without taking its role"), "{line}");
        assert!(
            line.ends_with(
                "call `procman::init()` first in `main` (or use `#[procman::main]`; in tests, `procman::child_entry_point!()`)"
            ),
            "{line}"
        );
    }
}
