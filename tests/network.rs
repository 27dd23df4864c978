//! A remote manager over a real network path: the server and its clients in separate network
//! namespaces joined by a veth pair, made by the test (skipped, with the reason printed, where
//! the machine does not permit it). The addresses are those of the test's own namespaces.

use procman::Error;
use procman::prelude::*;
use std::process::Command;
use std::time::{Duration, Instant};

procman::child_entry_point!();

mod support;
use support::Counter;

#[manager(sync)]
pub struct NetManager;

#[manager]
impl NetManager {
    pub fn counter() -> Counter {
        Counter::default()
    }
}

const KEY: &str = "network-test-key";
const PORT: u16 = 47_311;

/// Two namespaces (server, client) joined by a veth pair; removed on drop.
struct Namespaces {
    server: String,
    client: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Namespaces {
    fn create() -> Result<Namespaces, String> {
        let tag = std::process::id() % 100_000;
        let ns = Namespaces { server: format!("procman-srv-{tag}"), client: format!("procman-cli-{tag}") };
        let (vs, vc) = (format!("pms{tag}"), format!("pmc{tag}"));
        ip(&["netns", "add", &ns.server])?;
        ip(&["netns", "add", &ns.client])?;
        ip(&["link", "add", &vs, "type", "veth", "peer", "name", &vc])?;
        ip(&["link", "set", &vs, "netns", &ns.server])?;
        ip(&["link", "set", &vc, "netns", &ns.client])?;
        for (n, dev, addr) in [(&ns.server, &vs, "10.213.7.1/30"), (&ns.client, &vc, "10.213.7.2/30")] {
            ip(&["-n", n, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", n, "link", "set", dev, "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    fn cut_client_link(&self) -> Result<(), String> {
        let tag = std::process::id() % 100_000;
        ip(&["-n", &self.client, "link", "set", &format!("pmc{tag}"), "down"])
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.client]);
        let _ = ip(&["netns", "del", &self.server]);
    }
}

/// Moves the calling thread (and the threads it starts) into network namespace `name`.
fn enter(name: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{name}")).expect("the namespace exists");
    // SAFETY: setns(2) with an open namespace file; it changes only the calling thread's network
    // namespace, which is what this child process is for.
    let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

fn server(ns: String) {
    enter(&ns);
    NetManager::new()
        .address(format!("0.0.0.0:{PORT}").as_str())
        .authkey(KEY)
        .keepalive(Some(Duration::from_secs(1)))
        .serve_forever()
        .unwrap();
}

fn connect_from(ns: &str, address: &str, key: &str) -> procman::Result<NetManager> {
    enter(ns);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match NetManager::new().address(address).authkey(key).connect() {
            Err(e) if e.is_connection_lost() && Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            r => return r,
        }
    }
}

/// A client in the client namespace: a wrong key is refused, the right one works.
fn client((ns, address): (String, String)) -> (String, i64) {
    let refused = match connect_from(&ns, &address, "wrong key") {
        Err(Error::Authentication { .. }) => "refused".to_string(),
        other => format!("{other:?}"),
    };
    let m = connect_from(&ns, &address, KEY).unwrap();
    let c = m.counter().unwrap();
    c.incr(41).unwrap();
    (refused, c.incr(1).unwrap())
}

/// A client that holds objects and then goes silent (its link is cut while it sleeps).
fn holder((ns, address, objects): (String, String, usize)) {
    let m = connect_from(&ns, &address, KEY).unwrap();
    let _held: Vec<_> = (0..objects).map(|_| m.counter().unwrap()).collect();
    let ready = m.event().unwrap(); // one more object, then wait to be cut off
    ready.set().unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

/// Watches the server from inside its own namespace, over loopback.
fn objects_after((ns, want, within): (String, usize, Duration)) -> (usize, Duration) {
    let m = connect_from(&ns, &format!("127.0.0.1:{PORT}"), KEY).unwrap();
    let start = Instant::now();
    loop {
        let n = m.number_of_objects().unwrap();
        if n == want || start.elapsed() > within {
            return (n, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_remote_manager_across_network_namespaces() {
    let ns = match Namespaces::create() {
        Ok(ns) => ns,
        Err(why) => {
            println!("skipped: network namespaces cannot be made here: {why}");
            return;
        }
    };
    let address = format!("10.213.7.1:{PORT}");
    let srv = Process::spawn(server, ns.server.clone()).unwrap();

    let (refused, value) = Process::spawn(client, (ns.client.clone(), address.clone())).unwrap().join().unwrap();
    assert_eq!(refused, "refused", "a wrong key is refused across the network");
    assert_eq!(value, 42);
    let (n, _) = Process::spawn(objects_after, (ns.server.clone(), 0, Duration::from_secs(5))).unwrap().join().unwrap();
    assert_eq!(n, 0, "the client's objects were released when it exited");

    // A client that vanishes without closing its connections: keepalive finds out.
    let held = Process::spawn(holder, (ns.client.clone(), address.clone(), 5)).unwrap();
    let (n, _) =
        Process::spawn(objects_after, (ns.server.clone(), 6, Duration::from_secs(10))).unwrap().join().unwrap();
    assert_eq!(n, 6, "the holder created its objects");
    ns.cut_client_link().unwrap();
    let (n, took) =
        Process::spawn(objects_after, (ns.server.clone(), 0, Duration::from_secs(20))).unwrap().join().unwrap();
    assert_eq!(n, 0, "a client cut off the network lost its references");
    assert!(took < Duration::from_secs(15), "detected after {took:?}");
    drop(held); // kills the holder
    drop(srv); // kills the server
}
