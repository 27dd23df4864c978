//! The core, across real processes: managers, proxies, lifetimes, authentication, failures.

use procman::prelude::*;
use procman::{Address, Error};
use std::time::{Duration, Instant};

procman::child_entry_point!();

mod support;
use support::{Counter, CounterProxy};

#[manager]
pub struct AppManager;

#[manager]
impl AppManager {
    pub fn counter(start: i64) -> Counter {
        Counter::new(start)
    }
}

fn manager() -> AppManager {
    AppManager::new().start().expect("manager starts")
}

fn add_thousand(c: CounterProxy) -> i64 {
    let mut last = 0;
    for _ in 0..1000 {
        last = c.incr(1).expect("incr");
    }
    last
}

#[test]
fn two_processes_increment_one_counter() {
    let m = manager();
    let c = m.counter(0).unwrap();
    let a = Process::spawn(add_thousand, c.clone()).unwrap();
    let b = Process::spawn(add_thousand, c.clone()).unwrap();
    let (ra, rb) = (a.join().unwrap(), b.join().unwrap());
    assert!(ra <= 2000 && rb <= 2000 && ra.max(rb) == 2000, "{ra} {rb}");
    assert_eq!(c.get().unwrap(), 2000);
}

fn incr_after(c: CounterProxy) -> i64 {
    std::thread::sleep(Duration::from_millis(200));
    c.incr(10).unwrap()
}

#[test]
fn a_proxy_sent_to_a_child_keeps_its_object_alive_until_both_sides_drop_it() {
    let m = manager();
    let c = m.counter(1).unwrap();
    let child = Process::spawn(incr_after, c).unwrap(); // the parent's proxy is moved and dropped here
    // While the child has not even used it, the object lives (held by the proxy in transit or the child).
    assert_eq!(m.number_of_objects().unwrap(), 1);
    assert_eq!(child.join().unwrap(), 11);
    // The child exited: its reference is gone, and so is the object.
    assert_eq!(refcounts_settle(&m, &[]), Vec::<usize>::new());

    let c = m.counter(5).unwrap();
    let child = Process::spawn(incr_after, c.clone()).unwrap();
    assert_eq!(child.join().unwrap(), 15);
    assert_eq!(refcounts_settle(&m, &[1]), vec![1]);
    assert_eq!(c.get().unwrap(), 15);
    drop(c);
    assert_eq!(m.number_of_objects().unwrap(), 0);
}

/// The reference counts of the manager's objects once they reach `want` (a child's references
/// are released when the manager has read the end of its connections, a moment after it
/// exits), or after five seconds.
fn refcounts_settle(m: &AppManager, want: &[usize]) -> Vec<usize> {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let now: Vec<usize> = m.debug_info().unwrap().objects.iter().map(|o| o.refcount).collect();
        if now == want || Instant::now() > end {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn clones_and_drops_are_counted() {
    let m = manager();
    let c = m.counter(0).unwrap();
    let d = c.clone();
    assert_eq!(m.debug_info().unwrap().objects[0].refcount, 2);
    drop(c);
    assert_eq!(d.incr(1).unwrap(), 1);
    assert_eq!(m.debug_info().unwrap().objects[0].refcount, 1);
    drop(d);
    assert_eq!(m.number_of_objects().unwrap(), 0);
}

#[test]
fn unexposed_methods_and_panics_are_errors_and_the_server_keeps_serving() {
    let m = manager();
    let c = m.counter(3).unwrap();
    assert_eq!(c.repr().unwrap(), "Counter { n: 3 }");
    match c.call_method::<_, i64>("audit", &()) {
        Err(Error::NotExposed { typeid, method }) => {
            assert_eq!((typeid.as_str(), method.as_str()), ("counter", "audit"))
        }
        other => panic!("expected NotExposed, got {other:?}"),
    }
    assert!(matches!(c.call_method::<_, ()>("no_such_method", &()), Err(Error::NotExposed { .. })));
    match c.boom() {
        Err(Error::Remote { typeid, method, message }) => {
            assert_eq!((typeid.as_str(), method.as_str()), ("counter", "boom"));
            assert!(message.contains("the counter exploded at 3"), "{message}");
        }
        other => panic!("expected Remote, got {other:?}"),
    }
    assert_eq!(c.incr(1).unwrap(), 4, "the object and the server survive the panic");
    // Wrong argument types are a decode error, not a crash.
    assert!(matches!(c.call_method::<_, i64>("incr", &("not a number",)), Err(Error::Decode { .. })));
    assert_eq!(c.call_method::<_, i64>("incr", &(1i64,)).unwrap(), 5);
    // A method's own error comes back typed.
    assert_eq!(c.checked_div(0).unwrap(), Err("cannot divide 5 by zero".to_string()));
    assert_eq!(c.checked_div(5).unwrap(), Ok(1));
}

#[test]
fn unknown_typeids_are_named() {
    let m = manager();
    match m.create_untyped("no_such_type", &[]) {
        Err(Error::UnknownTypeid { typeid, address }) => {
            assert_eq!(typeid, "no_such_type");
            assert_eq!(address, m.address().to_string());
        }
        other => panic!("expected UnknownTypeid, got {other:?}"),
    }
}

#[test]
fn a_wrong_key_is_refused_in_both_directions_and_creates_nothing() {
    let server = AppManager::new().authkey("right key").start().unwrap();
    let address = server.address().clone();
    // A client with the wrong key.
    match AppManager::new().address(address.clone()).authkey("wrong key").connect() {
        Err(Error::Authentication { address: a, .. }) => assert_eq!(a, address.to_string()),
        other => panic!("expected Authentication, got {other:?}"),
    }
    assert_eq!(server.number_of_objects().unwrap(), 0);
    // A client with the right key, talking to a server that has another one (an impostor).
    let impostor = AppManager::new().authkey("impostor key").start().unwrap();
    let e = AppManager::new().address(impostor.address().clone()).authkey("right key").connect().unwrap_err();
    assert!(matches!(e, Error::Authentication { .. }), "{e}");
    assert!(!format!("{e} {e:?}").contains("right key"), "the key must not appear in errors");
    // The right key works.
    let client = AppManager::new().address(address).authkey("right key").connect().unwrap();
    assert_eq!(client.counter(1).unwrap().incr(1).unwrap(), 2);
}

#[test]
fn an_empty_key_is_refused_unless_allowed() {
    let e = AppManager::new().authkey("").start().unwrap_err();
    assert!(e.to_string().contains("empty authentication key"), "{e}");
    let m = AppManager::new().authkey("").allow_empty_authkey().start().unwrap();
    assert_eq!(m.counter(0).unwrap().get().unwrap(), 0);
}

#[test]
fn tcp_and_unix_addresses_report_the_real_address_and_leave_no_socket_file() {
    let m = AppManager::new().address("127.0.0.1:0").start().unwrap();
    match m.address() {
        Address::Tcp { host, port } => assert!(host == "127.0.0.1" && *port != 0),
        other => panic!("{other}"),
    }
    assert_eq!(m.counter(7).unwrap().get().unwrap(), 7);

    let dir = std::env::temp_dir().join(format!("procman-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("manager.sock");
    let m2 = AppManager::new().address(Address::Unix(path.clone())).start().unwrap();
    assert!(path.exists());
    assert_eq!(m2.counter(8).unwrap().get().unwrap(), 8);
    m2.shutdown().unwrap();
    assert!(!path.exists(), "the socket file is removed at shutdown");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shutdown_is_idempotent_and_later_calls_say_so() {
    let m = manager();
    let c = m.counter(0).unwrap();
    let pid = m.pid().unwrap();
    m.shutdown().unwrap();
    m.shutdown().unwrap();
    assert!(!alive(pid), "the manager process is gone after shutdown");
    assert!(matches!(c.get(), Err(Error::Shutdown { .. })));
    assert!(matches!(m.counter(1), Err(Error::Shutdown { .. })));
}

#[test]
fn dropping_the_handle_stops_the_manager() {
    let m = manager();
    let pid = m.pid().unwrap();
    drop(m);
    assert!(!alive(pid));
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its new parent) counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).unwrap_or(false),
        Err(_) => false,
    }
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !alive(pid)
}

#[test]
fn sigkill_of_the_manager_makes_calls_fail_promptly() {
    let m = manager();
    let c = m.counter(0).unwrap();
    let blocked = c.clone();
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        let r = blocked.sleep_ms(60_000);
        (r, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    kill(m.pid().unwrap());
    let (r, waited) = waiter.join().unwrap();
    assert!(matches!(r, Err(Error::ConnectionLost { .. })), "{r:?}");
    assert!(waited < Duration::from_secs(5), "a blocked call returned after {waited:?}");
    let t = Instant::now();
    assert!(matches!(c.get(), Err(Error::ConnectionLost { .. })));
    assert!(t.elapsed() < Duration::from_secs(1));
}

fn kill(pid: u32) {
    // SAFETY: kill(2) on a process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
}

fn start_manager_and_report(c: CounterProxy) {
    let m = AppManager::new().start().unwrap();
    c.incr(m.pid().unwrap() as i64).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_manager_dies_with_the_process_that_started_it() {
    let m = manager();
    let report = m.counter(0).unwrap();
    let mut parent = Process::spawn(start_manager_and_report, report.clone()).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let server_pid = loop {
        let pid = report.get().unwrap();
        if pid != 0 {
            break pid as u32;
        }
        assert!(Instant::now() < end, "the child did not start its manager");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(alive(server_pid));
    parent.kill().unwrap();
    assert!(wait_gone(server_pid, Duration::from_secs(1)), "the orphaned manager still runs");
}

fn panics(message: String) -> u32 {
    panic!("{message}");
}

fn returns_error(n: i64) -> procman::Result<i64> {
    if n < 0 { Err(Error::usage("negative")) } else { Ok(n) }
}

#[test]
fn spawned_functions_return_results_panics_and_errors() {
    let p = Process::spawn(|x: (u32, String)| format!("{}-{}", x.0, x.1), (7, "seven".to_string())).unwrap();
    assert_eq!(p.join().unwrap(), "7-seven");
    match Process::spawn(panics, "it went wrong".to_string()).unwrap().join() {
        Err(Error::ChildPanicked { message, .. }) => assert_eq!(message, "it went wrong"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(Process::spawn(returns_error, -1).unwrap().join().unwrap(), Err(Error::Usage(_))));
    assert_eq!(Process::spawn(returns_error, 3).unwrap().join().unwrap().unwrap(), 3);
    let mut p = Process::spawn(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 60_000).unwrap();
    assert!(p.is_alive());
    p.kill().unwrap();
    match p.join() {
        Err(Error::ChildExited { status, .. }) => assert!(status.contains("signal 9"), "{status}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn children_inherit_the_process_key() {
    let key = procman::authkey();
    let theirs = Process::spawn(|()| format!("{:?}", procman::authkey() == procman::AuthKey::random()), ()).unwrap();
    assert_eq!(theirs.join().unwrap(), "false");
    let m = manager(); // started with the process key
    let c = m.counter(1).unwrap();
    // A child connects with the inherited key (a proxy carries no key).
    assert_eq!(Process::spawn(|c: CounterProxy| c.incr(1).unwrap(), c).unwrap().join().unwrap(), 2);
    assert_eq!(procman::authkey(), key);
}

#[test]
fn one_client_blocked_does_not_block_another() {
    let m = manager();
    let c = m.counter(0).unwrap();
    let other = m.counter(0).unwrap();
    let slow = c.clone();
    let t = std::thread::spawn(move || slow.sleep_ms(1500));
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    // `&self` methods of the same object run concurrently; other objects are not affected.
    assert_eq!(c.get().unwrap(), 0);
    assert_eq!(other.incr(1).unwrap(), 1);
    assert!(start.elapsed() < Duration::from_millis(1000), "a call waited for another client's call");
    t.join().unwrap().unwrap();
}

#[test]
fn a_proxy_outlives_the_thread_that_created_it() {
    let m = manager();
    let c = std::thread::spawn({
        let m = m.clone();
        move || m.counter(41).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(c.incr(1).unwrap(), 42);
    assert_eq!(m.number_of_objects().unwrap(), 1);
}

/// A generic shared type: `Stack<T>` gets `StackProxy<T>`.
#[derive(Shared, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Stack<T> {
    items: Vec<T>,
}

#[shared]
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + std::fmt::Debug + 'static> Stack<T> {
    pub fn push(&mut self, item: T) -> usize {
        self.items.push(item);
        self.items.len()
    }

    pub fn pop(&mut self) -> Option<T> {
        self.items.pop()
    }

    pub fn peek_len(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.items.len())
    }

    pub fn sum_of(&self, xs: &[i64]) -> i64 {
        xs.iter().sum()
    }

    /// Returns a new shared object: the caller gets its proxy.
    #[shared(proxy)]
    pub fn counter_of_len(&self) -> Counter {
        Counter::new(self.items.len() as i64)
    }

    /// Flattened: the error becomes the call's error.
    pub fn must_pop(&mut self) -> procman::Result<T> {
        self.items.pop().ok_or(Error::Empty)
    }

    #[shared(skip)]
    pub fn internal(&self) -> usize {
        self.items.len()
    }
}

#[manager]
pub struct StackManager;

#[manager]
impl StackManager {
    pub fn strings() -> Stack<String> {
        Stack { items: Vec::new() }
    }

    #[manager(typeid = "shared_numbers", singleton)]
    pub fn numbers() -> Stack<i64> {
        Stack::default()
    }
}

#[test]
fn generic_types_proxy_returning_methods_and_flattened_errors() {
    let m = StackManager::new().start().unwrap();
    let s: StackProxy<String> = m.strings().unwrap();
    assert_eq!(s.push("a".to_string()).unwrap(), 1);
    assert_eq!(s.push("b".to_string()).unwrap(), 2);
    assert_eq!(s.peek_len("len=").unwrap(), "len=2");
    assert_eq!(s.sum_of(&[1, 2, 3]).unwrap(), 6);
    let c: CounterProxy = s.counter_of_len().unwrap();
    assert_eq!(c.incr(1).unwrap(), 3);
    assert_eq!(m.number_of_objects().unwrap(), 2, "the returned object lives in the manager");
    assert_eq!(s.get_value().unwrap().items, ["a", "b"], "get_value copies a Serialize referent");
    assert_eq!(s.pop().unwrap().as_deref(), Some("b"));
    assert_eq!(s.must_pop().unwrap(), "a");
    assert!(matches!(s.must_pop(), Err(Error::Empty)));
    assert!(matches!(s.call_method::<_, usize>("internal", &()), Err(Error::NotExposed { .. })));
    // `Counter` is not `Serialize`: `c.get_value()` does not compile, and the server refuses too.
    assert!(matches!(c.call_method::<_, ()>("get_value", &()), Err(Error::NotExposed { .. })));
    // A singleton: every caller gets the same object.
    let (a, b) = (m.numbers().unwrap(), m.numbers().unwrap());
    a.push(5).unwrap();
    assert_eq!(b.pop().unwrap(), Some(5));
    assert_eq!(a.token().id(), b.token().id());
    let _ = Stack::<u8>::default().internal();
}

#[test]
fn typeids_are_listed_and_a_remote_only_manager_names_missing_ones() {
    assert_eq!(procman::typeids::<StackManager>().unwrap(), ["shared_numbers", "strings"]);
    assert_eq!(procman::typeids::<AppManager>().unwrap(), ["counter"]);
}
