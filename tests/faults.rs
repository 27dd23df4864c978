//! Faults, bad input and load: nothing lost, nothing hung, nobody let in.

use procman::__private::testing::{RawConnection, call_frame};
use procman::prelude::*;
use procman::sync::{DictProxy, QueueProxy, SyncManager};
use procman::{Address, AuthKey, Error};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

procman::child_entry_point!();

mod support;
use support::{Counter, CounterProxy};

#[manager(sync)]
pub struct FaultManager;

#[manager]
impl FaultManager {
    pub fn counter() -> Counter {
        Counter::default()
    }
}

const KEY: &str = "fault-test-key";

fn tcp_manager() -> FaultManager {
    tcp_manager_within(Duration::from_millis(300))
}

/// A TCP manager whose handshake deadline (for the whole handshake and the hello) is `deadline`.
fn tcp_manager_within(deadline: Duration) -> FaultManager {
    FaultManager::new()
        .address("127.0.0.1:0")
        .authkey(KEY)
        .handshake_timeout(deadline)
        .max_frame_size(64 * 1024)
        .start()
        .unwrap()
}

fn tcp(m: &FaultManager) -> TcpStream {
    let Address::Tcp { host, port } = m.address() else { panic!("a TCP manager") };
    let s = TcpStream::connect((host.as_str(), *port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads until the server closes; true when it did within the read timeout.
fn closed_by_server(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn garbage_before_authentication_is_dropped_and_others_are_served() {
    let m = tcp_manager();
    let c = m.counter().unwrap();
    let mut rng = Rng(0x5eed);
    for i in 0..200 {
        let mut s = tcp(&m);
        let n = (rng.next() % 300) as usize;
        let _ = s.write_all(&rng.bytes(n));
        if i % 2 == 0 {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        assert!(closed_by_server(s), "a garbage peer is disconnected");
        assert_eq!(c.incr(1).unwrap(), i + 1, "a well-behaved client is served meanwhile");
    }
    assert_eq!(m.number_of_objects().unwrap(), 1, "nothing was created by the garbage");
}

#[test]
fn a_silent_peer_is_dropped_at_the_handshake_deadline() {
    let m = tcp_manager();
    let s = tcp(&m);
    let t = Instant::now();
    assert!(closed_by_server(s));
    assert!(t.elapsed() < Duration::from_secs(3), "dropped after {:?}", t.elapsed());
}

#[test]
fn unauthenticated_connections_are_capped_and_the_next_ones_wait_briefly_or_are_told_busy() {
    let m = FaultManager::new()
        .address("127.0.0.1:0")
        .authkey(KEY)
        .handshake_timeout(Duration::from_millis(500))
        .max_unauthenticated(4)
        .start()
        .unwrap();
    // Four peers take the four slots, four more wait for one.
    let idle: Vec<TcpStream> = (0..8).map(|_| tcp(&m)).collect();
    std::thread::sleep(Duration::from_millis(100));
    // A ninth peer is told at once that the manager is busy, and closed.
    let t = Instant::now();
    let mut ninth = tcp(&m);
    let mut said = Vec::new();
    ninth.read_to_end(&mut said).unwrap();
    assert_eq!(said, b"procbusy");
    assert!(t.elapsed() < Duration::from_millis(400), "closed after {:?}", t.elapsed());
    drop(idle);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(m.counter().unwrap().incr(1).unwrap(), 1, "served again once the idle peers are gone");
}

#[test]
fn bad_frames_after_authentication_get_an_error_and_a_closed_connection() {
    // A thousand authenticated connections: room for a slow moment of a busy machine.
    let m = tcp_manager_within(Duration::from_secs(5));
    let good = m.counter().unwrap();
    let id = good.token().id();
    let key = AuthKey::new(KEY);
    let mut rng = Rng(42);
    for i in 0..1000u64 {
        let mut raw = RawConnection::open(m.address(), &key).unwrap();
        // A random body may decode as a valid request that gets no reply (a decref).
        raw.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let frame = match i % 4 {
            // Random bytes as a frame body; any authenticated client may stop the manager, so
            // not with the shutdown request (variant 12).
            0 => {
                let n = (rng.next() % 200) as usize + 1;
                let mut body = rng.bytes(n);
                if body[0] == 12 {
                    body[0] = 0xff;
                }
                let mut f = (body.len() as u32).to_le_bytes().to_vec();
                f.extend(body);
                f
            }
            // A truncated call.
            1 => {
                let f = call_frame(id, "incr", &[2]);
                let cut = 1 + rng.next() as usize % 4;
                f[..f.len() - cut].to_vec()
            }
            // An oversized length prefix.
            2 => (u32::MAX - (rng.next() as u32 % 1000)).to_le_bytes().to_vec(),
            // Random bytes after a valid header of a call.
            _ => {
                let mut f = call_frame(id, "incr", &[2]);
                let cut = 5 + rng.next() as usize % (f.len() - 5);
                f.truncate(cut);
                f.extend(rng.bytes(8));
                let len = (f.len() - 4) as u32;
                f[..4].copy_from_slice(&len.to_le_bytes());
                f
            }
        };
        raw.send_bytes(&frame).unwrap();
        if i % 4 == 1 {
            drop(raw); // ends mid-frame
        } else {
            // Either a clear error and a close, or a reply to something that happened to decode.
            match raw.read_reply() {
                Ok(_) | Err(Error::Protocol { .. } | Error::FrameTooLarge { .. } | Error::Decode { .. }) => {}
                Err(Error::NotExposed { .. } | Error::UnknownObject { .. } | Error::Remote { .. }) => {}
                Err(Error::ConnectionLost { .. } | Error::UnknownTypeid { .. }) => {}
                Err(other) => panic!("unexpected answer to a bad frame: {other:?}"),
            }
        }
        if i % 100 == 0 {
            assert!(good.get().is_ok(), "the server keeps serving");
        }
    }
    let before = good.get().unwrap();
    assert_eq!(good.incr(1).unwrap(), before + 1);
    assert_eq!(m.number_of_objects().unwrap(), 1, "no object lost or created");
}

#[test]
fn oversized_frames_are_refused_with_their_size() {
    let m = tcp_manager();
    let mut raw = RawConnection::open(m.address(), &AuthKey::new(KEY)).unwrap();
    raw.send_bytes(&(10u32 << 20).to_le_bytes()).unwrap();
    match raw.read_reply() {
        Err(Error::FrameTooLarge { size, limit }) => assert_eq!((size, limit), (10 << 20, 64 * 1024)),
        other => panic!("{other:?}"),
    }
    // An oversized argument from a normal proxy fails cleanly too, and the proxy still works.
    let d: DictProxy<String, Vec<u8>> = m.dict().unwrap();
    assert!(d.insert("big".into(), vec![7; 100 * 1024]).is_err());
    d.insert("small".into(), vec![7; 10]).unwrap();
    assert_eq!(d.len().unwrap(), 1);
}

#[test]
fn undecodable_arguments_unknown_ids_and_decref_floods_lose_nothing() {
    let m = tcp_manager();
    let c = m.counter().unwrap();
    c.incr(5).unwrap();
    let id = c.token().id();
    let mut raw = RawConnection::open(m.address(), &AuthKey::new(KEY)).unwrap();
    // Arguments of the wrong type: a decode error, and the connection stays usable.
    assert!(matches!(raw.call(id, "incr", &[0xff, 0xff, 0xff]), Err(Error::Decode { .. })));
    assert!(matches!(raw.call(id, "incr", &[]), Err(Error::Decode { .. })));
    assert!(matches!(raw.call(id, "incr", &[2, 0]), Err(Error::Decode { .. })), "trailing bytes");
    assert!(matches!(raw.call(id + 1000, "get", &[]), Err(Error::UnknownObject { .. })));
    raw.ping().unwrap();
    // Decrefs of references this connection's client never held: ignored.
    for _ in 0..10_000 {
        raw.decref(id).unwrap();
        raw.decref(id + 1000).unwrap();
    }
    raw.ping().unwrap();
    assert_eq!(c.get().unwrap(), 5, "the object was not freed early");
    assert_eq!(m.debug_info().unwrap().objects[0].refcount, 1);
    // A double decref of the caller's own reference is ignored too.
    let q: QueueProxy<u8> = m.queue(0).unwrap();
    let copy = q.clone();
    drop(copy);
    drop(q);
    assert_eq!(m.number_of_objects().unwrap(), 1);
}

fn mixed_load((m, process): (procman::Address, u32)) -> i64 {
    let m = FaultManager::new().address(m).authkey(KEY).connect().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                let c = m.counter_named().unwrap();
                let d: DictProxy<u32, u64> = m.shared_dict().unwrap();
                let q: QueueProxy<u32> = m.shared_queue().unwrap();
                for i in 0..10_000u32 {
                    match i % 3 {
                        0 => {
                            c.incr(1).unwrap();
                        }
                        1 => {
                            d.insert((process * 8 + t) * 100_000 + i, u64::from(i)).unwrap();
                        }
                        _ => {
                            q.put(i).unwrap();
                            q.get().unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    0
}

#[manager]
impl FaultManager {
    #[manager(singleton)]
    pub fn counter_named() -> Counter {
        Counter::default()
    }

    #[manager(singleton)]
    pub fn shared_dict() -> procman::sync::Dict<u32, u64> {
        procman::sync::Dict::default()
    }

    #[manager(singleton)]
    pub fn shared_queue() -> procman::sync::Queue<u32> {
        procman::sync::Queue::new(0)
    }
}

#[test]
fn eight_processes_of_eight_threads_make_mixed_calls_with_exact_results() {
    let m = FaultManager::new().authkey(KEY).start().unwrap();
    let t = Instant::now();
    let ps: Vec<_> = (0..8).map(|p| Process::spawn(mixed_load, (m.address().clone(), p)).unwrap()).collect();
    for p in ps {
        p.join().unwrap();
    }
    eprintln!("640,000 mixed calls in {:?}", t.elapsed());
    let per_thread_incr = (0..10_000).filter(|i| i % 3 == 0).count() as i64;
    assert_eq!(m.counter_named().unwrap().get().unwrap(), 64 * per_thread_incr);
    let per_thread_dict = (0..10_000).filter(|i| i % 3 == 1).count();
    assert_eq!(m.shared_dict().unwrap().len().unwrap(), 64 * per_thread_dict);
    assert_eq!(m.shared_queue().unwrap().qsize().unwrap(), 0);
}

#[test]
fn a_thousand_connections_are_held_and_all_served() {
    let m = FaultManager::new().authkey(KEY).start().unwrap();
    let key = AuthKey::new(KEY);
    let mut conns: Vec<RawConnection> = (0..1000).map(|_| RawConnection::open(m.address(), &key).unwrap()).collect();
    for c in &mut conns {
        c.ping().unwrap();
    }
    let c = m.counter().unwrap();
    assert_eq!(c.incr(1).unwrap(), 1);
    drop(conns);
    assert_eq!(c.incr(1).unwrap(), 2);
}

#[test]
fn a_manager_restarts_at_once_on_the_same_tcp_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    for round in 0..5 {
        let m = SyncManager::new().address(address.as_str()).start().unwrap();
        assert_eq!(m.address().to_string(), address);
        let v = m.value(&round).unwrap();
        assert_eq!(v.get().unwrap(), round);
        m.shutdown().unwrap();
    }
}

fn hold_refs_and_lock(address: procman::Address) {
    let m = FaultManager::new().address(address).authkey(KEY).connect().unwrap();
    let lock = m.lock().unwrap();
    let _mine: Vec<CounterProxy> = (0..10).map(|_| m.counter().unwrap()).collect();
    let shared = m.shared_lock().unwrap();
    shared.acquire(true, None).unwrap();
    drop(lock);
    std::thread::sleep(Duration::from_secs(60));
}

#[manager]
impl FaultManager {
    #[manager(singleton)]
    pub fn shared_lock() -> procman::sync::Lock {
        procman::sync::Lock::default()
    }
}

#[test]
fn a_killed_client_gives_back_its_references_and_its_lock() {
    let m = FaultManager::new().authkey(KEY).start().unwrap();
    let lock = m.shared_lock().unwrap();
    let before = m.number_of_objects().unwrap();
    let mut p = Process::spawn(hold_refs_and_lock, m.address().clone()).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while !lock.locked().unwrap() {
        assert!(Instant::now() < end, "the child did not take the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(m.number_of_objects().unwrap(), before + 10);
    p.kill().unwrap();
    let _ = p.join();
    let t = Instant::now();
    assert!(matches!(lock.acquire(true, Some(Duration::from_secs(5))), Err(Error::Abandoned)));
    assert!(t.elapsed() < Duration::from_secs(1));
    lock.release().unwrap();
    // The lock is released when the connection that took it closes; the references when the
    // client's last connection does, a moment later at most.
    let end = Instant::now() + Duration::from_secs(5);
    while m.number_of_objects().unwrap() != before && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(m.number_of_objects().unwrap(), before, "the dead client's objects were released");
}

fn serve_at(address: String) {
    FaultManager::new().address(address.as_str()).authkey(KEY).serve_forever().unwrap();
}

fn connect_retrying(address: &str) -> FaultManager {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match FaultManager::new().address(address).authkey(KEY).connect() {
            Ok(m) => return m,
            Err(e) if e.is_connection_lost() && Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot connect to {address}: {e}"),
        }
    }
}

#[test]
fn a_client_keeps_its_references_on_a_manager_restarted_at_the_same_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let first = Process::spawn(serve_at, address.clone()).unwrap();
    let m = connect_retrying(&address);
    let c = m.counter().unwrap();
    assert_eq!(c.incr(1).unwrap(), 1);
    drop(first); // the manager dies
    assert!(matches!(c.incr(1), Err(Error::ConnectionLost { .. })));

    let _second = Process::spawn(serve_at, address.clone()).unwrap();
    let m = connect_retrying(&address);
    // A proxy made on a thread that then ends lives on: this process's references to the new
    // manager are held by a new anchor connection, not by the dead one to the old manager.
    let c = std::thread::spawn(move || m.counter().unwrap()).join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.incr(1).unwrap(), 1);
}
