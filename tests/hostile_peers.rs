//! Peers that try to stall or kill a manager: drip-fed handshakes and frames, keys that differ
//! only in what raw HMAC ignores, referents whose `Drop` panics, and values nested deep enough
//! to overflow a stack. Each test checks that a well-behaved client is served throughout, that
//! the manager is alive afterwards, and that the object count is back where it started.

use procman::__private::testing::RawConnection;
use procman::prelude::*;
use procman::sync::DictProxy;
use procman::{Address, AuthKey, BaseProxy, Error};
use serde::{Deserialize, Serialize};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

procman::child_entry_point!();

mod support;
use support::{Counter, CounterProxy};

const KEY: &str = "hostile-test-key";

/// A linked list: each node one level of nesting, and one more for the `Nil` at its end.
#[derive(Debug, PartialEq, Serialize, Deserialize, procman::Schema)]
pub enum List {
    Nil,
    Cons(u8, Box<List>),
}

impl List {
    fn of_depth(depth: usize) -> List {
        (0..depth).fold(List::Nil, |tail, _| List::Cons(7, Box::new(tail)))
    }

    /// The list's encoding, written without recursion (postcard: the variant, then the fields).
    fn bytes_of_depth(depth: usize) -> Vec<u8> {
        let mut b = [1u8, 7].repeat(depth);
        b.push(0);
        b
    }
}

impl Drop for List {
    /// Iterative, so that a long list does not overflow the stack of whoever drops it.
    fn drop(&mut self) {
        let List::Cons(_, tail) = self else { return };
        let mut next = std::mem::replace(&mut **tail, List::Nil);
        while let List::Cons(_, tail) = &mut next {
            let rest = std::mem::replace(&mut **tail, List::Nil);
            next = rest; // drops a node whose tail is already `Nil`
        }
    }
}

/// Bytes that encode as themselves: a tuple of `u8`s, which postcard writes one byte each. A
/// method returning it sends a reply of any shape without building it.
#[derive(Debug)]
pub struct Verbatim(Vec<u8>);

/// Its shape is whatever its bytes are: the test's own, on both sides.
impl procman::Schema for Verbatim {
    fn describe(shape: &mut procman::schema::Shape) {
        shape.kind(procman::schema::Kind::Bytes).name("Verbatim");
    }
}

impl Serialize for Verbatim {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Verbatim {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("Verbatim is only sent"))
    }
}

#[derive(Shared, Debug, Default)]
pub struct Lists;

#[shared]
impl Lists {
    /// The number of nodes.
    pub fn length(&self, list: List) -> usize {
        let (mut n, mut at) = (0, &list);
        while let List::Cons(_, tail) = at {
            n += 1;
            at = tail;
        }
        n
    }

    /// The encoding of a list of this depth, sent as it is.
    pub fn deep_reply(&self, depth: usize) -> Verbatim {
        Verbatim(List::bytes_of_depth(depth))
    }
}

/// A referent whose `Drop` panics.
#[derive(Shared, Debug, Default)]
pub struct Grenade;

impl Drop for Grenade {
    fn drop(&mut self) {
        panic!("the grenade went off in its Drop");
    }
}

#[shared]
impl Grenade {
    pub fn ping(&self) -> u8 {
        1
    }
}

#[manager(sync)]
pub struct HostileManager;

#[manager]
impl HostileManager {
    pub fn counter() -> Counter {
        Counter::default()
    }
    pub fn lists() -> Lists {
        Lists
    }
    pub fn grenade() -> Grenade {
        Grenade
    }
    pub fn mailbox() -> Mailbox {
        Mailbox::default()
    }
}

fn tcp_manager() -> procman::ManagerBuilder<HostileManager> {
    HostileManager::new().address("127.0.0.1:0").authkey(KEY)
}

fn connect(address: &Address) -> procman::Result<HostileManager> {
    HostileManager::new().address(address.clone()).authkey(KEY).connect()
}

/// Waits up to `within` for the manager to hold `n` objects.
fn await_objects(m: &HostileManager, n: usize, within: Duration) {
    let end = Instant::now() + within;
    while m.number_of_objects().unwrap() != n {
        assert!(Instant::now() < end, "{} objects, not {n}", m.number_of_objects().unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `f` on a thread of its own and fails if it does not finish within `within`: a hang is
/// a failure, not a test that never ends.
fn within<R: Send + 'static>(within: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(within).expect("did not finish in time (hung)")
}

// --- Drip-fed handshakes and frames -------------------------------------------------------

/// A peer that connects and sends one byte every 400 ms until the manager closes the
/// connection; returns how long each of its connections lived, reconnecting until `until`.
fn drip_feed(address: Address, until: Instant) -> Vec<Duration> {
    let Address::Tcp { host, port } = address else { panic!("a TCP manager") };
    let mut lives = Vec::new();
    while Instant::now() < until {
        let start = Instant::now();
        let mut s = TcpStream::connect((host.as_str(), port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
        let mut buf = [0u8; 64];
        loop {
            let _ = s.write_all(&[0x42]);
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {} // the manager's challenge
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
            assert!(start.elapsed() < Duration::from_secs(10), "a drip-feeding peer was never dropped");
        }
        lives.push(start.elapsed());
    }
    lives
}

#[test]
fn drip_feeding_peers_are_cut_at_the_handshake_deadline_and_others_are_served_meanwhile() {
    let m = tcp_manager().handshake_timeout(Duration::from_secs(1)).max_unauthenticated(2).start().unwrap();
    let c = m.counter().unwrap();
    let until = Instant::now() + Duration::from_secs(6);
    let drips: Vec<_> = (0..2)
        .map(|_| {
            let a = m.address().clone();
            std::thread::spawn(move || drip_feed(a, until))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut connects = 0;
    let mut slowest = Duration::ZERO;
    while Instant::now() < until {
        // A new client while both slots are held by drip-feeders: it waits for a slot, then is
        // served; never a truncated read.
        let t = Instant::now();
        let other = connect(m.address()).unwrap_or_else(|e| panic!("a well-behaved client was refused: {e}"));
        assert_eq!(other.number_of_objects().unwrap(), 1);
        slowest = slowest.max(t.elapsed());
        connects += 1;
        assert_eq!(c.incr(1).unwrap(), connects, "an existing client is served throughout");
        std::thread::sleep(Duration::from_millis(250));
    }
    for d in drips {
        let lives = d.join().unwrap();
        assert!(lives.len() >= 3, "reconnected after each cut: {lives:?}");
        for life in lives {
            assert!(life < Duration::from_millis(1800), "a drip-feeding peer stayed {life:?}");
        }
    }
    assert!(slowest < Duration::from_secs(3), "a new client waited {slowest:?}");
    assert_eq!(c.get().unwrap(), connects);
    drop(c);
    assert_eq!(m.number_of_objects().unwrap(), 0);
}

#[test]
fn a_frame_that_has_begun_must_arrive_whole_by_the_frame_deadline() {
    let m = tcp_manager().frame_timeout(Duration::from_secs(1)).start().unwrap();
    let c = m.counter().unwrap();
    let mut raw = RawConnection::open(m.address(), &AuthKey::new(KEY)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    // A frame of 50 bytes, one byte every 200 ms: each read is quick, the frame never whole.
    raw.send_bytes(&50u32.to_le_bytes()).unwrap();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(200));
        raw.send_bytes(&[0]).unwrap();
        assert!(c.incr(1).unwrap() > 0, "others are served meanwhile");
    }
    let e = raw.read_reply().unwrap_err();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2000), "closed after {took:?}");
    assert_eq!(c.incr(1).unwrap(), 5);
    drop(c);
    assert_eq!(m.number_of_objects().unwrap(), 0);
}

// --- Keys that differ ---------------------------------------------------------------------

#[test]
fn only_the_same_key_authenticates() {
    use sha2::Digest;
    let long = vec![0x5au8; 100];
    // Raw HMAC keys would authenticate each of these pairs: zero padding, and the hash that
    // replaces a key longer than HMAC's block.
    let cases = [(b"KEY".to_vec(), b"KEY\0\0".to_vec()), (long.clone(), sha2::Sha256::digest(&long).to_vec())];
    for (key, lookalike) in cases {
        for (server, client) in [(&key, &lookalike), (&lookalike, &key)] {
            let m = HostileManager::new().address("127.0.0.1:0").authkey(server).serve_in_background().unwrap();
            let wrong = HostileManager::new().address(m.address().clone()).authkey(client).connect();
            assert!(matches!(wrong, Err(Error::Authentication { .. })), "a different key was accepted");
            let right = HostileManager::new().address(m.address().clone()).authkey(server).connect().unwrap();
            assert_eq!(right.number_of_objects().unwrap(), 0);
            m.shutdown().unwrap();
        }
    }
}

// --- Panics in Drop -----------------------------------------------------------------------

#[test]
fn a_referent_whose_drop_panics_leaves_its_client_served() {
    let m = tcp_manager().start().unwrap();
    let address = m.address().clone();
    within(Duration::from_secs(20), move || {
        let m = connect(&address).unwrap();
        let c = m.counter().unwrap();
        for i in 1..=5 {
            let g = m.grenade().unwrap();
            assert_eq!(g.ping().unwrap(), 1);
            drop(g); // the manager drops it, and its Drop panics
            // The same connection answers the next call.
            assert_eq!(c.incr(1).unwrap(), i);
        }
        assert_eq!(m.number_of_objects().unwrap(), 1, "the grenades are gone, the counter stays");
    });
    await_objects(&m, 0, Duration::from_secs(5));
    assert_eq!(m.counter().unwrap().incr(1).unwrap(), 1, "the manager is alive");
}

/// In a child process: takes objects, sets off one grenade, then exits holding the rest (a
/// grenade among them), without giving anything back.
fn hold_grenades_and_exit(address: Address) -> i64 {
    let m = connect(&address).unwrap();
    let counters: Vec<CounterProxy> = (0..3).map(|_| m.counter().unwrap()).collect();
    let held = m.grenade().unwrap();
    drop(m.grenade().unwrap());
    let n = counters[0].incr(1).unwrap();
    std::mem::forget((counters, held));
    n
}

#[test]
fn a_client_that_exits_gives_everything_back_even_when_a_drop_panics() {
    let m = tcp_manager().start().unwrap();
    let c = m.counter().unwrap();
    for round in 1..=3 {
        let p = Process::spawn(hold_grenades_and_exit, m.address().clone()).unwrap();
        assert_eq!(within(Duration::from_secs(30), move || p.join().unwrap()), 1);
        // The child's connections closed: its three counters and its grenade are released.
        await_objects(&m, 1, Duration::from_secs(5));
        assert_eq!(c.incr(1).unwrap(), round);
    }
}

/// In a child process: a hundred calls on `c`, returning its last value.
fn hundred_calls(c: CounterProxy) -> i64 {
    (0..100).map(|_| c.incr(1).unwrap()).last().unwrap()
}

#[test]
fn methods_that_block_unseen_on_every_serving_slot_hold_up_no_other_client() {
    // A local manager (the fast path, whose connection threads take turns at a few serving
    // slots): more callers than it has slots sleep inside a method, where procman cannot see
    // that they wait, while another process calls.
    let m = HostileManager::new().authkey(KEY).start().unwrap();
    let slots = std::thread::available_parallelism().map_or(1, |n| n.get()) / 2;
    let sleepers: Vec<_> = (0..slots.max(1) + 1)
        .map(|_| {
            let c = m.counter().unwrap();
            std::thread::spawn(move || c.sleep_ms(8_000).unwrap())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200)); // the sleepers are inside their calls
    let other = m.counter().unwrap();
    let child = Process::spawn(hundred_calls, other.clone()).unwrap();
    let n = within(Duration::from_secs(6), move || child.join().unwrap());
    assert_eq!(n, 100, "the other client's calls were all answered");
    assert!(sleepers.iter().all(|s| !s.is_finished()), "and all of them while the methods slept");
    assert_eq!(other.incr(1).unwrap(), 101);
    for s in sleepers {
        s.join().unwrap();
    }
}

/// Items one caller puts and another takes, the taker waiting in the method on a condition
/// variable of the type's own, where procman cannot see that it waits.
#[derive(Shared, Debug, Default)]
pub struct Mailbox {
    items: std::sync::Mutex<Vec<u64>>,
    put: std::sync::Condvar,
}

#[shared]
impl Mailbox {
    pub fn put(&self, v: u64) {
        self.items.lock().unwrap().push(v);
        self.put.notify_all();
    }

    pub fn take(&self) -> u64 {
        let mut items = self.items.lock().unwrap();
        loop {
            if let Some(v) = items.pop() {
                return v;
            }
            items = self.put.wait(items).unwrap();
        }
    }
}

/// In a child process: `n` round trips, each a put into `ping` and a take from `pong`.
fn ping_pong((ping, pong, n): (MailboxProxy, MailboxProxy, u64)) -> u64 {
    (0..n)
        .map(|i| {
            ping.put(i).unwrap();
            pong.take().unwrap()
        })
        .sum()
}

#[test]
fn callers_that_wait_for_each_other_inside_methods_pass_every_message() {
    let m = HostileManager::new().authkey(KEY).start().unwrap();
    let (ping, pong) = (m.mailbox().unwrap(), m.mailbox().unwrap());
    let n = 300;
    let child = Process::spawn(ping_pong, (ping.clone(), pong.clone(), n)).unwrap();
    let echoed = within(Duration::from_secs(60), move || {
        for _ in 0..n {
            pong.put(ping.take().unwrap()).unwrap();
        }
        child.join().unwrap()
    });
    assert_eq!(echoed, n * (n - 1) / 2);
}

// --- Deep values --------------------------------------------------------------------------

#[test]
fn a_deep_argument_is_refused_with_the_limit_and_the_manager_serves_on() {
    let m = tcp_manager().start().unwrap();
    let c = m.counter().unwrap();
    let lists = m.lists().unwrap();
    let id = lists.token().id();
    let mut raw = RawConnection::open(m.address(), &AuthKey::new(KEY)).unwrap();
    for depth in [128, 100_000, 1_000_000] {
        let e = raw.call(id, "length", &List::bytes_of_depth(depth)).unwrap_err();
        match &e {
            Error::Decode { what, message } => {
                assert!(what.contains("length"), "{e}");
                assert!(message.contains("limit of 128 levels"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(c.incr(1).unwrap() > 0, "the manager is alive and serves others");
    }
    raw.ping().unwrap();
    assert_eq!(lists.length(List::of_depth(127)).unwrap(), 127, "up to the limit is fine");
    assert_eq!(lists.length(List::of_depth(3)).unwrap(), 3);
    drop((c, lists, raw));
    await_objects(&m, 0, Duration::from_secs(5));
}

#[test]
fn the_depth_limit_is_configurable() {
    let m = tcp_manager().max_decode_depth(600).start().unwrap();
    let lists = m.lists().unwrap();
    let id = lists.token().id();
    let mut raw = RawConnection::open(m.address(), &AuthKey::new(KEY)).unwrap();
    let n = raw.call(id, "length", &List::bytes_of_depth(500)).unwrap();
    assert_eq!(n, [0xf4, 0x03], "500, as a varint");
    let e = raw.call(id, "length", &List::bytes_of_depth(600)).unwrap_err();
    assert!(e.to_string().contains("limit of 600 levels"), "{e}");
}

#[test]
fn a_deep_reply_is_refused_by_the_client_which_goes_on() {
    let m = tcp_manager().start().unwrap();
    let lists = m.lists().unwrap();
    let e = lists.call_method::<_, List>("deep_reply", &(100_000usize,)).unwrap_err();
    assert!(matches!(&e, Error::Decode { message, .. } if message.contains("limit of 128 levels")), "{e}");
    assert_eq!(lists.call_method::<_, List>("deep_reply", &(5usize,)).unwrap(), List::of_depth(5));
    assert_eq!(lists.length(List::of_depth(2)).unwrap(), 2);
}

#[test]
fn releasing_a_chain_of_ten_thousand_dicts_does_not_overflow_the_managers_stack() {
    const LINKS: usize = 10_000;
    let m = tcp_manager().start().unwrap();
    let c = m.counter().unwrap();
    let baseline = m.number_of_objects().unwrap();
    // Each dict holds a proxy of the one before; only the last is held by this client.
    let mut head: DictProxy<String, BaseProxy> = m.dict().unwrap();
    for _ in 1..LINKS {
        let next: DictProxy<String, BaseProxy> = m.dict().unwrap();
        next.insert("previous".into(), head.base().clone()).unwrap();
        head = next;
    }
    assert_eq!(m.number_of_objects().unwrap(), baseline + LINKS);
    // Dropping the head frees it, which frees the one before, and so on down the chain.
    drop(head);
    let start = Instant::now();
    while m.number_of_objects().unwrap() != baseline {
        assert!(start.elapsed() < Duration::from_secs(60), "the chain was not released");
        assert!(c.incr(1).is_ok(), "a well-behaved client is served meanwhile");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(c.incr(1).unwrap() > 0, "the manager is alive");
    drop(c);
    await_objects(&m, 0, Duration::from_secs(5));
}

// --- Multiplexed connections (async clients) ----------------------------------------------

fn encoded<T: Serialize>(v: &T) -> Vec<u8> {
    procman::__private::postcard::to_allocvec(v).unwrap()
}

#[test]
fn a_multiplexed_peer_that_breaks_the_rules_loses_its_connection_and_nothing_else() {
    let m = HostileManager::new().authkey(KEY).start().unwrap();
    let c = m.counter().unwrap();
    let id = c.token().id();
    // A second object, which the sleeping call does not hold.
    let sleeper = m.counter().unwrap();
    let key = AuthKey::new(KEY);

    // Calls on one connection run at once: the quick one is answered first.
    let mut raw = RawConnection::open(m.address(), &key).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.multiplex().unwrap();
    raw.send_tagged_call(1, 7, sleeper.token().id(), "sleep_ms", &encoded(&500u64)).unwrap();
    raw.send_tagged_call(2, 8, id, "incr", &encoded(&1i64)).unwrap();
    let (first, reply) = raw.read_tagged().unwrap();
    assert_eq!((first, encoded(&1i64)), (2, reply.unwrap()), "the incr did not wait for the sleep");
    assert_eq!(raw.read_tagged().unwrap().0, 1);
    // A request such a connection does not carry is refused, and the connection goes on.
    raw.send_tagged_shutdown(3, 7).unwrap();
    let (n, reply) = raw.read_tagged().unwrap();
    assert!(n == 3 && matches!(reply, Err(Error::Protocol { .. })), "{n}: {reply:?}");
    raw.send_tagged_call(4, 7, id, "incr", &encoded(&1i64)).unwrap();
    let (n, reply) = raw.read_tagged().unwrap();
    assert_eq!((n, reply.unwrap()), (4, encoded(&2i64)));
    // A cancel of a call that is not in flight changes nothing.
    raw.send_cancel(99).unwrap();
    raw.send_tagged_call(5, 7, id, "incr", &encoded(&1i64)).unwrap();
    let (n, reply) = raw.read_tagged().unwrap();
    assert_eq!((n, reply.unwrap()), (5, encoded(&3i64)));

    // An id already in flight, the reserved id, and a header that does not decode: each is
    // told why, and its connection closes.
    let mut duplicate = RawConnection::open(m.address(), &key).unwrap();
    duplicate.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    duplicate.multiplex().unwrap();
    duplicate.send_tagged_call(1, 0, id, "sleep_ms", &encoded(&300u64)).unwrap();
    duplicate.send_tagged_call(1, 0, id, "incr", &encoded(&1i64)).unwrap();
    let mut reserved = RawConnection::open(m.address(), &key).unwrap();
    reserved.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    reserved.multiplex().unwrap();
    reserved.send_tagged_call(u64::MAX, 0, id, "incr", &encoded(&1i64)).unwrap();
    let mut garbage = RawConnection::open(m.address(), &key).unwrap();
    garbage.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    garbage.multiplex().unwrap();
    garbage.send_bytes(&[3, 0, 0, 0, 0xff, 0xff, 0xff]).unwrap();
    for (name, conn) in [("duplicate", &mut duplicate), ("reserved", &mut reserved), ("garbage", &mut garbage)] {
        // The duplicate's first call may be answered before the error.
        let mut reply = conn.read_tagged();
        if matches!(reply, Ok((1, Ok(_)))) {
            reply = conn.read_tagged();
        }
        match reply {
            Ok((u64::MAX, Err(Error::Protocol { .. }))) => {}
            other => panic!("{name}: {other:?}"),
        }
        // Calls already running finish first (the duplicate's sleep), then the connection closes.
        let closed = (0..3).any(|_| conn.read_tagged().is_err());
        assert!(closed, "{name}: the connection is closed");
    }
    assert!(c.incr(1).unwrap() >= 4, "the manager serves everyone else");
    drop((raw, duplicate, reserved, garbage));
    drop((c, sleeper));
    await_objects(&m, 0, Duration::from_secs(5));
    m.shutdown().unwrap();
}
