//! Sealed sessions against a relay on the path: a thread that accepts on loopback, connects
//! onward to a manager running in a child process, forwards the bytes both ways, records them,
//! and tampers with the frames it is told to (flips a byte, cuts a frame short, replays one,
//! injects a frame of another session). The manager must run nothing of what was tampered
//! with, close that connection, and serve everyone else; the client must get an error, never
//! `Ok` for a call the manager did not run as sent.

use procman::prelude::*;
use procman::sync::{Dict, DictProxy};
use procman::{Address, Error};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

procman::child_entry_point!();

mod support;
use support::{Counter, CounterProxy};

#[manager]
pub struct RelayedManager;

#[manager]
impl RelayedManager {
    #[manager(singleton)]
    pub fn store() -> Dict<String, String> {
        Dict::default()
    }

    #[manager(singleton)]
    pub fn tally() -> Counter {
        Counter::default()
    }
}

const KEY: &str = "relay-test-key";
/// The client's side of the handshake: its challenge, the session's mode, its MAC.
const CLIENT_HANDSHAKE: &[usize] = &[32 + 1 + 32];
/// The manager's: `procman2` and its challenge; then the verdict and its MAC.
const SERVER_HANDSHAKE: &[usize] = &[8 + 32, 1 + 32];
const TAG: usize = 16;

fn manager() -> RelayedManager {
    RelayedManager::new()
        .address("127.0.0.1:0")
        .authkey(KEY)
        // A frame whose length was changed to more than it carries is dropped after this.
        .frame_timeout(Duration::from_secs(1))
        .start()
        .unwrap()
}

/// What the relay does to the next frame going one way.
#[derive(Debug, Clone)]
enum Tamper {
    /// Flip the bits of one byte; the index wraps around the whole frame (length, body, tag).
    Flip(usize),
    /// Forward the first half of the frame, then close both connections.
    Truncate,
    /// Forward the frame twice.
    Replay,
    /// Forward these bytes first.
    Inject(Vec<u8>),
}

#[derive(Default)]
struct Shared {
    /// Every byte that crossed, both ways.
    captured: Mutex<Vec<u8>>,
    /// Every whole frame the client sent (after the handshake), in order.
    client_frames: Mutex<Vec<Vec<u8>>>,
    to_manager: Mutex<VecDeque<Tamper>>,
    to_client: Mutex<VecDeque<Tamper>>,
    /// Connections the manager closed while the client's side was still open.
    closed_by_manager: AtomicUsize,
}

struct Relay {
    address: Address,
    shared: Arc<Shared>,
}

/// How the relay reads frames: with a tag (sealed) or without.
#[derive(Clone, Copy)]
struct Framing {
    tag: usize,
}

impl Relay {
    fn start(upstream: &Address) -> Relay {
        Relay::start_framed(upstream, Framing { tag: TAG })
    }

    fn start_framed(upstream: &Address, framing: Framing) -> Relay {
        let Address::Tcp { host, port } = upstream else { panic!("a TCP manager") };
        let upstream = format!("{host}:{port}");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = Address::Tcp { host: "127.0.0.1".into(), port: listener.local_addr().unwrap().port() };
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else { return };
                for sock in [&client, &server] {
                    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                }
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (sa, sb) = (s.clone(), s.clone());
                let ends = Arc::new(Ends::default());
                let to_manager =
                    Direction { handshake: CLIENT_HANDSHAKE, to_manager: true, ends: ends.clone(), framing };
                let to_client = Direction { handshake: SERVER_HANDSHAKE, to_manager: false, ends, framing };
                std::thread::spawn(move || forward(client, server, &to_manager, &sa));
                std::thread::spawn(move || forward(s2, c2, &to_client, &sb));
            }
        });
        Relay { address, shared }
    }

    fn tamper_to_manager(&self, t: Tamper) {
        self.shared.to_manager.lock().unwrap().push_back(t);
    }

    fn tamper_to_client(&self, t: Tamper) {
        self.shared.to_client.lock().unwrap().push_back(t);
    }

    fn captured(&self) -> Vec<u8> {
        self.shared.captured.lock().unwrap().clone()
    }

    fn client_frames(&self) -> Vec<Vec<u8>> {
        self.shared.client_frames.lock().unwrap().clone()
    }

    fn closed_by_manager(&self) -> usize {
        self.shared.closed_by_manager.load(Ordering::SeqCst)
    }

    /// Waits (up to 5 s) until the manager has closed more than `n` connections.
    fn await_close_after(&self, n: usize) {
        let end = Instant::now() + Duration::from_secs(5);
        while self.closed_by_manager() <= n {
            assert!(Instant::now() < end, "the manager did not close the tampered connection");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A client of the manager through this relay.
    fn client(&self) -> RelayedManager {
        RelayedManager::new().address(self.address.clone()).authkey(KEY).connect().unwrap()
    }
}

/// One direction of a relayed connection.
struct Direction {
    /// The messages of the handshake this way, each forwarded once it is whole.
    handshake: &'static [usize],
    to_manager: bool,
    ends: Arc<Ends>,
    framing: Framing,
}

/// How a relayed connection ended.
#[derive(Default)]
struct Ends {
    /// The relay closed the manager's side (so its end there is not the manager's doing).
    relay_closed: AtomicBool,
    /// Reading from the manager ended.
    manager_done: AtomicBool,
}

/// Copies `from` to `to`: the handshake as it is, then frame by frame, tampering as told.
fn forward(mut from: TcpStream, mut to: TcpStream, d: &Direction, s: &Shared) {
    for &size in d.handshake {
        let mut message = vec![0u8; size];
        if from.read_exact(&mut message).is_err() || to.write_all(&message).is_err() {
            return end(from, to, d, s);
        }
        s.captured.lock().unwrap().extend_from_slice(&message);
    }
    loop {
        let mut header = [0u8; 4];
        if from.read_exact(&mut header).is_err() {
            return end(from, to, d, s);
        }
        let len = u32::from_le_bytes(header) as usize + d.framing.tag;
        let mut frame = header.to_vec();
        frame.resize(4 + len, 0);
        if from.read_exact(&mut frame[4..]).is_err() {
            return end(from, to, d, s);
        }
        s.captured.lock().unwrap().extend_from_slice(&frame);
        if d.to_manager {
            s.client_frames.lock().unwrap().push(frame.clone());
        }
        let plan = if d.to_manager { &s.to_manager } else { &s.to_client };
        let tamper = plan.lock().unwrap().pop_front();
        let sent = match tamper {
            None => to.write_all(&frame),
            Some(Tamper::Flip(i)) => {
                let i = i % frame.len();
                frame[i] ^= 0xff;
                to.write_all(&frame)
            }
            Some(Tamper::Truncate) => {
                let _ = to.write_all(&frame[..frame.len() / 2]);
                d.ends.relay_closed.store(true, Ordering::SeqCst);
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
            Some(Tamper::Replay) => to.write_all(&frame).and_then(|()| to.write_all(&frame)),
            Some(Tamper::Inject(bytes)) => to.write_all(&bytes).and_then(|()| to.write_all(&frame)),
        };
        if sent.is_err() {
            return end(from, to, d, s);
        }
    }
}

fn end(from: TcpStream, to: TcpStream, d: &Direction, s: &Shared) {
    if d.to_manager {
        // The client's side ended. A manager that closes the connection (having answered a
        // tampered frame with an error, which made the client hang up) does so at once: give
        // it the time to, before closing its side here.
        let end = Instant::now() + Duration::from_millis(500);
        while !d.ends.manager_done.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        d.ends.relay_closed.store(true, Ordering::SeqCst);
    } else {
        if !d.ends.relay_closed.load(Ordering::SeqCst) {
            s.closed_by_manager.fetch_add(1, Ordering::SeqCst);
        }
        d.ends.manager_done.store(true, Ordering::SeqCst);
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn secret(i: usize) -> String {
    format!("secret-value-{i:04}")
}

/// A manager in a child process, a relay to it, and a client of it through the relay.
fn relayed_manager() -> (RelayedManager, Relay, RelayedManager) {
    let m = manager();
    let relay = Relay::start(m.address());
    let c = relay.client();
    (m, relay, c)
}

/// A client that does not go through the relay.
fn direct(m: &RelayedManager) -> (DictProxy<String, String>, CounterProxy) {
    (m.store().unwrap(), m.tally().unwrap())
}

#[test]
fn the_relay_sees_no_plaintext_value_of_the_client() {
    let (_manager, relay, c) = relayed_manager();
    let store = c.store().unwrap();
    for i in 0..20 {
        assert_eq!(store.insert(format!("key-{i}"), secret(i)).unwrap(), None);
    }
    for i in 0..20 {
        assert_eq!(store.get(&format!("key-{i}")).unwrap(), Some(secret(i)));
    }
    let captured = relay.captured();
    assert!(captured.len() > 20 * 20, "the relay carried the calls ({} bytes)", captured.len());
    for i in 0..20 {
        assert!(!contains(&captured, secret(i).as_bytes()), "the relay read {}", secret(i));
        assert!(!contains(&captured, format!("key-{i}").as_bytes()), "the relay read key-{i}");
    }
    for name in [&b"store"[..], b"insert"] {
        assert!(!contains(&captured, name), "the relay read a method or typeid name");
    }
}

/// The same relay reads everything when both sides ask for plain frames, so the test above
/// would notice frames sent in clear.
#[test]
fn the_relay_reads_plain_frames_when_both_sides_ask_for_them() {
    let m = RelayedManager::new().address("127.0.0.1:0").authkey(KEY).unsealed_tcp_for_measurement().start().unwrap();
    // A client that did not ask still gets sealed frames from it.
    let sealed = RelayedManager::new().address(m.address().clone()).authkey(KEY).connect().unwrap();
    sealed.store().unwrap().insert("k".into(), secret(0)).unwrap();

    let relay = Relay::start_framed(m.address(), Framing { tag: 0 });
    let c = RelayedManager::new()
        .address(relay.address.clone())
        .authkey(KEY)
        .unsealed_tcp_for_measurement()
        .connect()
        .unwrap();
    c.store().unwrap().insert("k".into(), secret(1)).unwrap();
    let captured = relay.captured();
    assert!(contains(&captured, secret(1).as_bytes()));
    assert!(contains(&captured, secret(0).as_bytes()), "the value the sealed client stored, in a reply");
}

#[test]
fn a_client_asking_for_plain_frames_is_refused_by_a_manager_that_was_not_told() {
    let m = manager();
    let e = RelayedManager::new()
        .address(m.address().clone())
        .authkey(KEY)
        .unsealed_tcp_for_measurement()
        .connect()
        .unwrap_err();
    assert!(matches!(&e, Error::Authentication { reason, .. } if reason.contains("requires sealed frames")), "{e}");
    // This process now asks for plain frames at that address; another one, which did not,
    // is served.
    let objects = Process::spawn(objects_at, m.address().clone()).unwrap().join().unwrap();
    assert_eq!(objects, 0);
}

fn objects_at(address: Address) -> usize {
    RelayedManager::new().address(address).authkey(KEY).connect().unwrap().number_of_objects().unwrap()
}

#[test]
fn a_flipped_byte_anywhere_in_a_frame_runs_nothing_and_closes_that_connection() {
    let (m, relay, c) = relayed_manager();
    let (store, tally) = direct(&m);
    let relayed = c.store().unwrap();
    let relayed_tally = c.tally().unwrap();
    for i in 0..20 {
        // An untampered call first, so that the connection is up and the next frame is the put
        // (after a closed connection, the next call opens a new one, with a hello first).
        assert_eq!(relayed.len().unwrap(), 0);
        let closed = relay.closed_by_manager();
        // Positions in the length, the body and the tag of the call's frame.
        relay.tamper_to_manager(Tamper::Flip(i * 7));
        let r = relayed.insert(format!("key-{i}"), secret(i));
        assert!(r.is_err(), "a tampered put answered {r:?}");
        relay.await_close_after(closed);
        // The manager serves everyone else meanwhile.
        assert_eq!(tally.incr(1).unwrap(), i as i64 + 1);
    }
    assert_eq!(store.len().unwrap(), 0, "no tampered put was stored");
    // The relayed client works again on a new connection, untampered.
    relayed.insert("after".into(), secret(99)).unwrap();
    assert_eq!(store.get(&"after".into()).unwrap(), Some(secret(99)));
    assert_eq!(relayed_tally.get().unwrap(), 20);
    drop((relayed, relayed_tally, c));
    assert_eq!(m.number_of_objects().unwrap(), 2, "only the two singletons");
}

#[test]
fn a_flipped_byte_in_a_reply_is_an_error_for_the_client() {
    let (_manager, relay, c) = relayed_manager();
    let tally = c.tally().unwrap();
    let closed = relay.closed_by_manager();
    relay.tamper_to_client(Tamper::Flip(6));
    let e = tally.incr(5).unwrap_err();
    assert!(matches!(&e, Error::Protocol { message, .. } if message.contains("did not open")), "{e}");
    // The call ran (the manager cannot tell); the client was told that its reply is not to be
    // trusted, and does not use that connection again.
    assert_eq!(tally.get().unwrap(), 5);
    assert_eq!(relay.closed_by_manager(), closed, "the manager saw nothing wrong");
}

#[test]
fn a_truncated_frame_runs_nothing() {
    let (m, relay, c) = relayed_manager();
    let (_, tally) = direct(&m);
    let relayed = c.tally().unwrap();
    assert_eq!(relayed.get().unwrap(), 0);
    relay.tamper_to_manager(Tamper::Truncate);
    assert!(matches!(relayed.incr(5), Err(Error::ConnectionLost { .. })));
    assert_eq!(tally.get().unwrap(), 0, "nothing of the cut call ran");
    assert_eq!(relayed.incr(1).unwrap(), 1, "a new connection works");
}

#[test]
fn a_replayed_frame_runs_once_and_closes_that_connection() {
    let (m, relay, c) = relayed_manager();
    let (_, tally) = direct(&m);
    let relayed = c.tally().unwrap();
    let closed = relay.closed_by_manager();

    // The same frame twice in a row: the first runs (and is answered), the copy does not.
    relay.tamper_to_manager(Tamper::Replay);
    assert_eq!(relayed.incr(5).unwrap(), 5, "the call as sent ran once");
    relay.await_close_after(closed);
    assert_eq!(tally.get().unwrap(), 5, "the replayed copy did not run");
    assert!(relayed.incr(1).is_err(), "that connection is closed: an error, not Ok");

    // An earlier frame replayed later, before another call: neither runs.
    assert_eq!(relayed.incr(2).unwrap(), 7);
    let earlier = relay.client_frames().last().unwrap().clone();
    let closed = relay.closed_by_manager();
    relay.tamper_to_manager(Tamper::Inject(earlier));
    assert!(relayed.incr(100).is_err());
    relay.await_close_after(closed);
    assert_eq!(tally.get().unwrap(), 7, "neither the replayed call nor the one after it ran");
}

#[test]
fn an_injected_shutdown_frame_does_not_stop_the_manager() {
    let m = manager();
    let (_, tally) = direct(&m);

    // A shutdown frame sealed for another session: a decoy manager with the same key, which a
    // client asks to shut down through a relay that records the frame.
    let decoy = manager();
    let decoy_relay = Relay::start(decoy.address());
    decoy_relay.client().request_shutdown().unwrap();
    let sealed_shutdown = decoy_relay.client_frames().last().unwrap().clone();
    // And the same request unsealed: a length of 1 and Request::Shutdown's variant.
    let plain_shutdown = vec![1, 0, 0, 0, 12];

    let relay = Relay::start(m.address());
    let c = relay.client();
    let relayed = c.tally().unwrap();
    for injected in [sealed_shutdown, plain_shutdown] {
        assert_eq!(relayed.get().unwrap(), 0, "the connection is up: the next frame is the call");
        let closed = relay.closed_by_manager();
        relay.tamper_to_manager(Tamper::Inject(injected));
        assert!(relayed.incr(1).is_err(), "the call after the injected frame did not run as sent");
        relay.await_close_after(closed);
        assert_eq!(tally.incr(1).unwrap(), 1, "the manager is up and serves others");
        tally.incr(-1).unwrap();
    }
    assert_eq!(relayed.get().unwrap(), 0);
    assert_eq!(m.number_of_objects().unwrap(), 2);
}
