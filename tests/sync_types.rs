//! The built-in types of SyncManager: CPython's manager tests (`_TestQueue`, `_TestLock`,
//! `_TestSemaphore`, `_TestCondition`, `_TestEvent`, `_TestBarrier`, `_TestContainers`,
//! `TestSyncManagerTypes`) redone with real processes.

use procman::prelude::*;
use procman::sync::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

procman::child_entry_point!();

/// The default transport; `sync_types_socket.rs` runs these tests again with its own.
#[allow(dead_code)]
const TRANSPORT: procman::Transport = procman::Transport::SharedMemory;

fn sync() -> SyncManager {
    SyncManager::new().transport(crate::TRANSPORT).start().expect("the manager starts")
}

const SHORT: Duration = Duration::from_millis(100);

// --- TestSyncManagerTypes: the parent creates, a child mutates, the parent checks -----------

#[test]
fn a_child_mutates_every_type_and_the_parent_sees_it() {
    let m = sync();
    let event = m.event().unwrap();
    let lock = m.lock().unwrap();
    let rlock = m.rlock().unwrap();
    let sem = m.semaphore(0).unwrap();
    let bsem = m.bounded_semaphore(1).unwrap();
    let q = m.queue::<i64>(0).unwrap();
    let ns = m.namespace().unwrap();
    let d = m.dict::<String, i64>().unwrap();
    let l = m.list::<i64>(&[1, 2]).unwrap();
    let v = m.value(&1.5f64).unwrap();
    let a = m.shared_array(&[0u8; 4]).unwrap();

    type All = (
        EventProxy,
        LockProxy,
        RLockProxy,
        SemaphoreProxy,
        BoundedSemaphoreProxy,
        QueueProxy<i64>,
        NamespaceProxy,
        DictProxy<String, i64>,
        ListProxy<i64>,
        ValueProxy<f64>,
        ArrayProxy<u8>,
    );
    fn mutate((event, lock, rlock, sem, bsem, q, ns, d, l, v, a): All) {
        event.set().unwrap();
        assert!(lock.acquire(true, None).unwrap());
        lock.release().unwrap();
        assert!(rlock.acquire(true, None).unwrap());
        rlock.release().unwrap();
        sem.release().unwrap();
        assert!(bsem.acquire(false, None).unwrap());
        q.put(5).unwrap();
        ns.set("x", &10i64).unwrap();
        d.insert("k".to_string(), 7).unwrap();
        l.append(3).unwrap();
        v.set(2.5).unwrap();
        a.set(-1, 9).unwrap();
    }
    let all = (
        event.clone(),
        lock.clone(),
        rlock.clone(),
        sem.clone(),
        bsem.clone(),
        q.clone(),
        ns.clone(),
        d.clone(),
        l.clone(),
        v.clone(),
        a.clone(),
    );
    Process::spawn(mutate, all).unwrap().join().unwrap();
    assert!(event.is_set().unwrap());
    assert!(!lock.locked().unwrap());
    assert_eq!(rlock.state().unwrap(), (false, 0));
    assert!(sem.acquire(false, None).unwrap(), "the child released the semaphore");
    assert!(!bsem.acquire(false, None).unwrap(), "the child holds the bounded semaphore");
    assert_eq!(q.get().unwrap(), 5);
    assert_eq!(ns.get::<i64>("x").unwrap(), 10);
    assert_eq!(d.get(&"k".to_string()).unwrap(), Some(7));
    assert_eq!(l.to_vec().unwrap(), vec![1, 2, 3]);
    assert_eq!(v.get().unwrap(), 2.5);
    assert_eq!(a.to_vec().unwrap(), vec![0, 0, 0, 9]);
}

// --- _TestLock ---------------------------------------------------------------------------------

#[test]
fn lock_semantics() {
    let m = sync();
    let lock = m.lock().unwrap();
    assert!(lock.acquire(true, None).unwrap());
    assert!(!lock.acquire(false, None).unwrap());
    let t = Instant::now();
    assert!(!lock.acquire(true, Some(SHORT)).unwrap());
    assert!(t.elapsed() >= SHORT);
    lock.release().unwrap();
    assert!(matches!(lock.release(), Err(procman::Error::NotHeld { .. })), "releasing an unheld lock is an error");
    assert!(lock.acquire(false, Some(SHORT)).is_err(), "a timeout on a non-blocking call is an error");
    {
        let g = lock.guard().unwrap();
        assert!(!g.was_abandoned());
        assert!(lock.locked().unwrap());
    }
    assert!(!lock.locked().unwrap(), "the guard released the lock");
    // Any client may release a Lock.
    lock.acquire(true, None).unwrap();
    Process::spawn(|l: LockProxy| l.release().unwrap(), lock.clone()).unwrap().join().unwrap();
    assert!(!lock.locked().unwrap());
}

#[test]
fn rlock_semantics() {
    let m = sync();
    let rlock = m.rlock().unwrap();
    for _ in 0..3 {
        assert!(rlock.acquire(true, None).unwrap());
    }
    assert_eq!(rlock.state().unwrap(), (true, 3));
    // Another client cannot take it or release it.
    let other =
        Process::spawn(|l: RLockProxy| (l.acquire(false, None).unwrap(), l.release().is_err()), rlock.clone()).unwrap();
    assert_eq!(other.join().unwrap(), (false, true));
    for _ in 0..3 {
        rlock.release().unwrap();
    }
    assert!(rlock.release().is_err(), "a fourth release is an error");
    // Ownership is per client thread.
    rlock.acquire(true, None).unwrap();
    let r = rlock.clone();
    assert!(!std::thread::spawn(move || r.acquire(false, None).unwrap()).join().unwrap());
    rlock.release().unwrap();
}

fn hold_and_die(l: LockProxy) {
    l.acquire(true, None).unwrap();
    std::process::exit(3); // dies holding the lock
}

#[test]
fn a_lock_held_by_a_dead_client_is_recovered_and_the_next_holder_told() {
    let m = sync();
    let lock = m.lock().unwrap();
    let p = Process::spawn(hold_and_die, lock.clone()).unwrap();
    assert!(p.join().is_err());
    let t = Instant::now();
    match lock.acquire(true, Some(Duration::from_secs(5))) {
        Err(procman::Error::Abandoned) => {}
        other => panic!("expected Abandoned, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(lock.locked().unwrap(), "the caller holds the lock after Abandoned");
    lock.release().unwrap();
    assert!(lock.acquire(false, None).unwrap(), "only the first acquirer is told");
}

// --- _TestSemaphore ----------------------------------------------------------------------------

#[test]
fn semaphore_semantics() {
    let m = sync();
    let sem = m.semaphore(2).unwrap();
    assert_eq!(sem.value().unwrap(), 2);
    assert!(sem.acquire(true, None).unwrap());
    assert!(sem.acquire(true, None).unwrap());
    assert_eq!(sem.value().unwrap(), 0);
    assert!(!sem.acquire(false, None).unwrap());
    let t = Instant::now();
    assert!(!sem.acquire(true, Some(SHORT)).unwrap());
    assert!(t.elapsed() >= SHORT);
    sem.release().unwrap();
    sem.release().unwrap();
    sem.release().unwrap(); // a plain semaphore may go above its start
    assert_eq!(sem.value().unwrap(), 3);

    let bsem = m.bounded_semaphore(2).unwrap();
    bsem.acquire(true, None).unwrap();
    bsem.release().unwrap();
    match bsem.release() {
        Err(procman::Error::ReleasedTooManyTimes { object }) => assert_eq!(object, "BoundedSemaphore"),
        other => panic!("{other:?}"),
    }
}

// --- _TestCondition ----------------------------------------------------------------------------

fn wait_on((c, ready, woken): (ConditionProxy, QueueProxy<()>, QueueProxy<bool>)) {
    let _g = c.guard().unwrap();
    ready.put(()).unwrap(); // still holding the lock, which `wait` releases
    woken.put(c.wait(Some(Duration::from_secs(10))).unwrap()).unwrap();
}

#[test]
fn condition_notify_wakes_the_number_asked() {
    let m = sync();
    let c = m.condition().unwrap();
    let ready = m.queue::<()>(0).unwrap();
    let woken = m.queue::<bool>(0).unwrap();
    let waiters: Vec<_> =
        (0..3).map(|_| Process::spawn(wait_on, (c.clone(), ready.clone(), woken.clone())).unwrap()).collect();
    for _ in 0..3 {
        ready.get().unwrap();
    }
    {
        // Taking the lock means the last waiter has released it in `wait`: all three wait.
        let _g = c.guard().unwrap();
        c.notify(1).unwrap();
    }
    assert!(woken.get_with(true, Some(Duration::from_secs(5))).unwrap());
    assert!(matches!(woken.get_with(true, Some(SHORT)), Err(procman::Error::Empty)), "only one was woken");
    {
        let _g = c.guard().unwrap();
        c.notify_all().unwrap();
    }
    assert!(woken.get().unwrap() && woken.get().unwrap());
    for w in waiters {
        w.join().unwrap();
    }
}

#[test]
fn condition_timeouts_errors_and_wait_for() {
    let m = sync();
    let c = m.condition().unwrap();
    assert!(c.wait(Some(SHORT)).is_err(), "waiting without the lock is an error");
    assert!(c.notify(1).is_err(), "notifying without the lock is an error");
    c.acquire(true, None).unwrap();
    let t = Instant::now();
    assert!(!c.wait(Some(SHORT)).unwrap());
    assert!(t.elapsed() >= SHORT);
    c.release().unwrap();

    // wait_for with a predicate evaluated here, over a manager Lock.
    let lock = m.lock().unwrap();
    let c = m.condition_with(&lock).unwrap();
    let state = m.value(&0i64).unwrap();
    fn bump(args: (ConditionProxy, ValueProxy<i64>)) {
        let (c, v) = args;
        for i in 1..=3 {
            std::thread::sleep(Duration::from_millis(50));
            let _g = c.guard().unwrap();
            v.set(i).unwrap();
            c.notify_all().unwrap();
        }
    }
    let p = Process::spawn(bump, (c.clone(), state.clone())).unwrap();
    c.acquire(true, None).unwrap();
    assert!(lock.locked().unwrap(), "the condition uses the given lock");
    assert!(c.wait_for(|| state.get().unwrap() == 3, Some(Duration::from_secs(10))).unwrap());
    c.release().unwrap();
    p.join().unwrap();
    c.acquire(true, None).unwrap();
    assert!(!c.wait_for(|| false, Some(SHORT)).unwrap());
    c.release().unwrap();
}

// --- _TestEvent --------------------------------------------------------------------------------

#[test]
fn event_semantics() {
    let m = sync();
    let e = m.event().unwrap();
    assert!(!e.is_set().unwrap());
    assert!(!e.wait(Some(Duration::ZERO)).unwrap());
    let t = Instant::now();
    assert!(!e.wait(Some(SHORT)).unwrap());
    assert!(t.elapsed() >= SHORT);
    let p = Process::spawn(
        |e: EventProxy| {
            std::thread::sleep(Duration::from_millis(100));
            e.set().unwrap()
        },
        e.clone(),
    )
    .unwrap();
    assert!(e.wait(None).unwrap());
    assert!(e.is_set().unwrap());
    assert!(e.wait(Some(SHORT)).unwrap());
    e.clear().unwrap();
    assert!(!e.is_set().unwrap());
    p.join().unwrap();
}

// --- _TestBarrier ------------------------------------------------------------------------------

#[test]
fn barrier_indices_abort_reset_and_timeout() {
    let m = sync();
    let b = m.barrier(3, None).unwrap();
    assert_eq!((b.parties().unwrap(), b.n_waiting().unwrap(), b.broken().unwrap()), (3, 0, false));
    let kids: Vec<_> =
        (0..2).map(|_| Process::spawn(|b: BarrierProxy| b.wait(None).unwrap(), b.clone()).unwrap()).collect();
    let mine = b.wait(None).unwrap();
    let mut all: HashSet<usize> = kids.into_iter().map(|k| k.join().unwrap()).collect();
    all.insert(mine);
    assert_eq!(all, HashSet::from([0, 1, 2]));

    // A wait that times out breaks the barrier for everyone.
    assert!(matches!(b.wait(Some(SHORT)), Err(procman::Error::BrokenBarrier)));
    assert!(b.broken().unwrap());
    assert!(matches!(b.wait(None), Err(procman::Error::BrokenBarrier)));
    b.reset().unwrap();
    assert!(!b.broken().unwrap());

    // abort wakes a waiter with BrokenBarrier.
    let p = Process::spawn(|b: BarrierProxy| matches!(b.wait(None), Err(procman::Error::BrokenBarrier)), b.clone())
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while b.n_waiting().unwrap() < 1 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    b.abort().unwrap();
    assert!(p.join().unwrap());
    b.reset().unwrap();

    // The barrier's default timeout applies.
    let b2 = m.barrier(2, Some(SHORT)).unwrap();
    assert!(matches!(b2.wait(None), Err(procman::Error::BrokenBarrier)));
}

// --- _TestQueue --------------------------------------------------------------------------------

#[test]
fn queue_semantics() {
    let m = sync();
    let q = m.queue::<String>(2).unwrap();
    assert!(q.empty().unwrap() && !q.full().unwrap());
    q.put("a".to_string()).unwrap();
    q.put_nowait("b".to_string()).unwrap();
    assert!(q.full().unwrap());
    assert_eq!(q.qsize().unwrap(), 2);
    assert!(matches!(q.put_nowait("c".to_string()), Err(procman::Error::Full)));
    let t = Instant::now();
    assert!(matches!(q.put_with("c".to_string(), true, Some(SHORT)), Err(procman::Error::Full)));
    assert!(t.elapsed() >= SHORT);
    assert_eq!(q.get().unwrap(), "a");
    assert_eq!(q.get_nowait().unwrap(), "b");
    assert!(matches!(q.get_nowait(), Err(procman::Error::Empty)));
    let t = Instant::now();
    assert!(matches!(q.get_with(true, Some(SHORT)), Err(procman::Error::Empty)));
    assert!(t.elapsed() >= SHORT && t.elapsed() < Duration::from_secs(2));
    // task_done / join
    assert!(q.task_done().is_ok() && q.task_done().is_ok());
    assert!(matches!(q.task_done(), Err(procman::Error::TaskDoneTooManyTimes)), "more task_done calls than items");
    q.join().unwrap();
}

/// CPython: `q.put(x, False, 2.0)` raises `Full` at once and `q.get(False, 2.0)` raises `Empty`
/// at once: a non-blocking call ignores its timeout.
#[test]
fn a_non_blocking_queue_call_with_a_timeout_fails_at_once() {
    let m = sync();
    let long = Duration::from_secs(30);
    let q = m.queue::<u8>(1).unwrap();
    let t = Instant::now();
    assert!(matches!(q.get_with(false, Some(long)), Err(procman::Error::Empty)));
    q.put(1).unwrap();
    assert!(matches!(q.put_with(2, false, Some(long)), Err(procman::Error::Full)));
    assert!(t.elapsed() < long / 2, "neither call waited for its timeout");
    assert_eq!((q.qsize().unwrap(), q.get_nowait().unwrap()), (1, 1), "the refused put added nothing");
    // An unbounded queue too.
    let u = m.queue::<u8>(0).unwrap();
    assert!(matches!(u.get_with(false, Some(long)), Err(procman::Error::Empty)));
    u.put_with(3, false, Some(long)).unwrap();
    assert_eq!(u.get_with(false, Some(long)).unwrap(), 3);
}

/// The CPython errors a caller acts on are variants of their own, not strings to match.
#[test]
fn lock_and_queue_misuse_errors_are_their_own_variants() {
    let m = sync();
    let lock = m.lock().unwrap();
    assert!(matches!(lock.release(), Err(procman::Error::NotHeld { ref object, .. }) if object == "Lock"));
    let rlock = m.rlock().unwrap();
    assert!(matches!(rlock.release(), Err(procman::Error::NotHeld { ref object, .. }) if object == "RLock"));
    let cond = m.condition().unwrap();
    assert!(matches!(cond.wait(Some(SHORT)), Err(procman::Error::NotHeld { ref object, .. }) if object == "Condition"));
    assert!(matches!(cond.notify(1), Err(procman::Error::NotHeld { .. })));
    let bsem = m.bounded_semaphore(1).unwrap();
    assert!(matches!(bsem.release(), Err(procman::Error::ReleasedTooManyTimes { .. })));
    let q = m.queue::<u8>(0).unwrap();
    assert!(matches!(q.task_done(), Err(procman::Error::TaskDoneTooManyTimes)));
    // The same meaning for a shared-memory lock of a LocalManager.
    let local = LocalManager::new().unwrap();
    let shm_lock = local.lock().unwrap();
    let err = procman::Error::from(shm_lock.release().unwrap_err());
    assert!(matches!(err, procman::Error::NotHeld { ref object, .. } if object == "Lock"), "{err:?}");
}

fn worker(q: QueueProxy<u32>) {
    while let Ok(item) = q.get_with(true, Some(Duration::from_millis(500))) {
        std::thread::sleep(Duration::from_millis(10 * u64::from(item % 3)));
        q.task_done().unwrap();
    }
}

#[test]
fn a_joinable_queue_with_four_workers_joins_after_every_task_done() {
    let m = sync();
    let q = m.queue::<u32>(0).unwrap();
    let workers: Vec<_> = (0..4).map(|_| Process::spawn(worker, q.clone()).unwrap()).collect();
    for i in 0..10 {
        q.put(i).unwrap();
    }
    assert!(q.join_timeout(Duration::from_secs(20)).unwrap(), "join returned only after all task_done");
    assert_eq!(q.qsize().unwrap(), 0);
    for w in workers {
        w.join().unwrap();
    }
}

fn produce(args: (QueueProxy<(u32, u32)>, u32)) {
    let (q, who) = args;
    for i in 0..500 {
        q.put((who, i)).unwrap();
    }
}

#[test]
fn producers_and_consumers_lose_nothing() {
    let m = sync();
    let q = m.queue::<(u32, u32)>(16).unwrap();
    let producers: Vec<_> = (0..3).map(|w| Process::spawn(produce, (q.clone(), w)).unwrap()).collect();
    let mut last = [None::<u32>; 3];
    for _ in 0..1500 {
        let (who, i) = q.get().unwrap();
        assert!(last[who as usize].is_none_or(|l| l < i), "each producer's items arrive in order");
        last[who as usize] = Some(i);
    }
    assert_eq!(last, [Some(499); 3]);
    for p in producers {
        p.join().unwrap();
    }
}

/// Waits of 10 s at most: a wake-up that a `put` or a `get` failed to give shows as a timed-out
/// wait (an error), not as a hung test.
const HAND_OVER_WAIT: Option<Duration> = Some(Duration::from_secs(10));

fn put_many(args: (QueueProxy<u32>, u32)) {
    let (q, n) = args;
    for i in 0..n {
        q.put_with(i, true, HAND_OVER_WAIT).expect("room in the queue within 10 s");
    }
}

fn get_many(args: (QueueProxy<u32>, u32)) -> u64 {
    let (q, n) = args;
    (0..n).map(|_| u64::from(q.get_with(true, HAND_OVER_WAIT).expect("an item within 10 s"))).sum()
}

/// A one-slot queue between two producer and two consumer processes: every `put` but the
/// first may wait for room and every `get` for an item, so each hand-over needs the other
/// side's wake-up, whether or not it already sleeps.
#[test]
fn a_one_slot_queue_hands_every_item_over_between_processes() {
    let m = sync();
    let q = m.queue::<u32>(1).unwrap();
    let n = 2_000;
    let consumers: Vec<_> = (0..2).map(|_| Process::spawn(get_many, (q.clone(), n)).unwrap()).collect();
    let producers: Vec<_> = (0..2).map(|_| Process::spawn(put_many, (q.clone(), n)).unwrap()).collect();
    for p in producers {
        p.join().unwrap();
    }
    let got: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(got, 2 * u64::from(n) * u64::from(n - 1) / 2, "every item reached a consumer");
    assert_eq!(q.qsize().unwrap(), 0);
}

fn answer_pings(args: (SemaphoreProxy, SemaphoreProxy, u32)) {
    let (ping, pong, n) = args;
    for _ in 0..n {
        assert!(ping.acquire(true, HAND_OVER_WAIT).unwrap(), "a ping within 10 s");
        pong.release().unwrap();
    }
}

/// Two semaphores at 0 played as ping-pong between processes: each `release` must wake the
/// other side's `acquire`, which sleeps or is about to.
#[test]
fn semaphores_wake_their_waiters_in_a_ping_pong_between_processes() {
    let m = sync();
    let (ping, pong) = (m.semaphore(0).unwrap(), m.semaphore(0).unwrap());
    let n = 2_000;
    let child = Process::spawn(answer_pings, (ping.clone(), pong.clone(), n)).unwrap();
    for _ in 0..n {
        ping.release().unwrap();
        assert!(pong.acquire(true, HAND_OVER_WAIT).unwrap(), "a pong within 10 s");
    }
    child.join().unwrap();
    assert_eq!((ping.value().unwrap(), pong.value().unwrap()), (0, 0));
}

// --- Namespace ---------------------------------------------------------------------------------

#[test]
fn namespace_semantics() {
    let m = sync();
    let n = m.namespace().unwrap();
    n.set("name", &"Bob").unwrap();
    n.set("job", &"Builder").unwrap();
    assert_eq!((n.get::<String>("name").unwrap(), n.get::<String>("job").unwrap()), ("Bob".into(), "Builder".into()));
    n.delete("job").unwrap();
    assert_eq!(n.repr().unwrap(), r#"Namespace(name="Bob")"#);
    match n.get::<String>("job") {
        Err(procman::Error::NotFound { what }) => assert!(what.contains("job")),
        other => panic!("{other:?}"),
    }
    assert!(n.delete("job").is_err());
    n.set("y", &"hello").unwrap();
    n.set("x", &10).unwrap();
    assert_eq!(n.repr().unwrap(), r#"Namespace(name="Bob", x=10, y="hello")"#);
    assert_eq!(n.names().unwrap(), ["name", "x", "y"]);
}

/// In Python a `_name` attribute belongs to the proxy; a procman proxy has none, so the
/// namespace refuses such names instead of sharing them by surprise.
#[test]
fn namespace_names_starting_with_an_underscore_are_refused() {
    let m = sync();
    let n = m.namespace().unwrap();
    match n.set("_hidden", &1) {
        Err(procman::Error::Usage(message)) => assert!(message.contains("`_hidden`"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(n.names().unwrap().is_empty(), "nothing was stored");
}

fn add_under_lock(args: (NamespaceProxy, LockProxy)) {
    let (ns, lock) = args;
    for _ in 0..1000 {
        let _g = lock.guard().unwrap();
        let x: i64 = ns.get("x").unwrap();
        ns.set("x", &(x + 1)).unwrap();
    }
}

#[test]
fn eight_processes_increment_a_namespace_attribute_under_a_lock() {
    let m = sync();
    let ns = m.namespace().unwrap();
    let lock = m.lock().unwrap();
    ns.set("x", &0i64).unwrap();
    let ps: Vec<_> = (0..8).map(|_| Process::spawn(add_under_lock, (ns.clone(), lock.clone())).unwrap()).collect();
    for p in ps {
        p.join().unwrap();
    }
    assert_eq!(ns.get::<i64>("x").unwrap(), 8000);
}

// --- _TestContainers ---------------------------------------------------------------------------

#[test]
fn list_semantics() {
    let m = sync();
    let a = m.list(&(0..10).collect::<Vec<i64>>()).unwrap();
    assert_eq!(a.to_vec().unwrap(), (0..10).collect::<Vec<_>>());
    let b = m.list::<i64>(&[]).unwrap();
    assert!(b.is_empty().unwrap());
    b.extend(&[0, 1, 2, 3, 4]).unwrap();
    assert_eq!(b.get(2).unwrap(), 2);
    assert_eq!(b.get(-1).unwrap(), 4);
    assert_eq!(b.slice(Some(2), Some(10)).unwrap(), vec![2, 3, 4]);
    assert_eq!(b.slice(Some(-2), None).unwrap(), vec![3, 4]);
    assert!(matches!(b.get(5), Err(procman::Error::IndexOutOfRange { index: 5, len: 5 })));
    b.set_slice(Some(1), Some(3), &[9, 9, 9]).unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![0, 9, 9, 9, 3, 4]);
    assert_eq!(b.count(&9).unwrap(), 3);
    assert_eq!(b.index(&3).unwrap(), 4);
    b.remove(&9).unwrap();
    assert!(matches!(b.remove(&42), Err(procman::Error::NotFound { .. })));
    b.insert(0, 7).unwrap();
    b.insert(100, 8).unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![7, 0, 9, 9, 3, 4, 8]);
    assert_eq!(b.pop().unwrap(), 8);
    assert_eq!(b.pop_at(0).unwrap(), 7);
    b.sort().unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![0, 3, 4, 9, 9]);
    b.reverse().unwrap();
    assert_eq!(b.iter().unwrap().collect::<Vec<_>>(), vec![9, 9, 4, 3, 0]);
    b.delete(0).unwrap();
    b.set(-1, 1).unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![9, 4, 3, 1]);
    b.clear().unwrap();
    assert!(matches!(b.pop(), Err(procman::Error::IndexOutOfRange { .. })));
    assert_eq!(a.len().unwrap(), 10, "other lists are untouched");
}

#[test]
fn dict_semantics() {
    let m = sync();
    let d = m.dict::<i64, String>().unwrap();
    let indices: Vec<i64> = (65..70).collect();
    for &i in &indices {
        d.insert(i, char::from(i as u8).to_string()).unwrap();
    }
    assert_eq!(d.copy().unwrap(), indices.iter().map(|&i| (i, char::from(i as u8).to_string())).collect::<Vec<_>>());
    assert_eq!(d.keys().unwrap(), indices);
    assert_eq!(d.values().unwrap(), ["A", "B", "C", "D", "E"]);
    assert_eq!(d.len().unwrap(), 5);
    assert!(d.contains_key(&65).unwrap() && !d.contains_key(&1).unwrap());
    assert_eq!(d.get_item(&66).unwrap(), "B");
    assert!(matches!(d.get_item(&1), Err(procman::Error::NotFound { .. })));
    assert_eq!(d.get(&1).unwrap(), None);
    assert_eq!(d.insert(65, "a".to_string()).unwrap(), Some("A".to_string()));
    assert_eq!(d.pop(&65).unwrap(), "a");
    assert!(d.pop(&65).is_err());
    assert_eq!(d.popitem().unwrap(), (69, "E".to_string()));
    assert_eq!(d.setdefault(1, "one".to_string()).unwrap(), "one");
    assert_eq!(d.setdefault(1, "uno".to_string()).unwrap(), "one");
    d.update(&[(2, "two".to_string())]).unwrap();
    assert_eq!(d.iter().unwrap().map(|(k, _)| k).collect::<Vec<_>>(), vec![66, 67, 68, 1, 2]);
    d.del_item(&66).unwrap();
    assert!(d.del_item(&66).is_err());
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
    assert!(d.popitem().is_err());
}

fn put_queue_in_dict(args: (procman::Address, DictProxy<String, QueueProxy<String>>)) {
    let (address, d) = args;
    let m = SyncManager::new().address(address).connect().unwrap();
    let q = m.queue::<String>(0).unwrap();
    q.put("through a dict".to_string()).unwrap();
    d.insert("q".to_string(), q).unwrap();
    // The child's own proxy is dropped here; the one in the dict keeps the queue alive.
}

fn take_queue_from_dict(d: DictProxy<String, QueueProxy<String>>) -> String {
    let q = d.get_item(&"q".to_string()).unwrap();
    q.put("and back".to_string()).unwrap();
    q.get().unwrap()
}

#[test]
fn a_queue_proxy_put_in_a_dict_by_one_process_is_used_by_another() {
    let m = sync();
    let d = m.dict::<String, QueueProxy<String>>().unwrap();
    Process::spawn(put_queue_in_dict, (m.address().clone(), d.clone())).unwrap().join().unwrap();
    assert_eq!(m.number_of_objects().unwrap(), 2, "the dict and the queue it holds");
    assert_eq!(Process::spawn(take_queue_from_dict, d.clone()).unwrap().join().unwrap(), "through a dict");
    let q = d.get_item(&"q".to_string()).unwrap();
    assert_eq!(q.get().unwrap(), "and back");
    // The dict's copy keeps the queue alive; taking it out hands the reference over.
    drop(q);
    assert_eq!(m.number_of_objects().unwrap(), 2);
    let q = d.pop(&"q".to_string()).unwrap();
    assert_eq!(m.number_of_objects().unwrap(), 2);
    drop(q);
    assert_eq!(m.number_of_objects().unwrap(), 1, "nothing leaks: only the dict is left");
    drop(d);
    assert_eq!(m.number_of_objects().unwrap(), 0);
}

#[test]
fn values_and_arrays() {
    let m = sync();
    let v = m.shared_value(&"hello".to_string()).unwrap();
    assert_eq!(v.get().unwrap(), "hello");
    v.set("goodbye".to_string()).unwrap();
    assert_eq!(v.get().unwrap(), "goodbye");
    let s = m.shared_struct(&(0i16, 0i16)).unwrap();
    s.set((1, 2)).unwrap();
    assert_eq!(s.get().unwrap(), (1, 2));
    let a = m.shared_array(&[0i32; 10]).unwrap();
    a.set_slice(None, Some(5), &[1, 2, 3, 4, 5]).unwrap();
    assert_eq!(a.to_vec().unwrap(), vec![1, 2, 3, 4, 5, 0, 0, 0, 0, 0]);
    assert_eq!(a.slice(Some(3), Some(6)).unwrap(), vec![4, 5, 0]);
    assert!(a.set_slice(None, Some(2), &[1]).is_err(), "an array keeps its length");
    assert!(matches!(a.get(10), Err(procman::Error::IndexOutOfRange { .. })));
    assert_eq!(a.len().unwrap(), 10);
}

fn block_on_get(q: QueueProxy<u8>) -> String {
    format!("{:?}", q.get())
}

#[test]
fn a_blocked_caller_whose_manager_dies_gets_connection_lost() {
    let m = sync();
    let q = m.queue::<u8>(0).unwrap();
    let e = m.event().unwrap();
    let lock = m.lock().unwrap();
    lock.acquire(true, None).unwrap();
    let p = Process::spawn(block_on_get, q.clone()).unwrap();
    let waiting = std::thread::spawn(move || e.wait(None));
    let acquiring = std::thread::spawn(move || lock.acquire(true, None));
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the manager process this test started.
    unsafe { libc::kill(m.pid().unwrap() as i32, libc::SIGKILL) };
    assert!(p.join().unwrap().contains("ConnectionLost"));
    assert!(matches!(waiting.join().unwrap(), Err(procman::Error::ConnectionLost { .. })));
    assert!(matches!(acquiring.join().unwrap(), Err(procman::Error::ConnectionLost { .. })));
}

#[test]
fn a_blocked_getter_that_dies_takes_no_item() {
    let m = sync();
    let q = m.queue::<u8>(0).unwrap();
    let mut p = Process::spawn(block_on_get, q.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.kill().unwrap();
    let _ = p.join();
    std::thread::sleep(Duration::from_millis(200));
    q.put(7).unwrap();
    assert_eq!(q.get_with(true, Some(Duration::from_secs(2))).unwrap(), 7, "the dead getter did not take the item");
}

static ACTIONS_RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_action() {
    ACTIONS_RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

fn failing_action() {
    panic!("the action failed");
}

procman::action!(count_action);
procman::action!(failing_action);

fn unregistered_action() {}

/// Reads, in the manager process, how often barrier actions ran there.
#[derive(procman::Shared, Debug, Default)]
pub(crate) struct ActionProbe;

#[procman::shared]
impl ActionProbe {
    pub(crate) fn runs(&self) -> usize {
        ACTIONS_RUN.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[procman::manager(sync)]
pub struct ProbeManager;

#[procman::manager]
impl ProbeManager {
    pub fn probe() -> ActionProbe {
        ActionProbe
    }
}

#[test]
fn a_barrier_action_runs_once_per_trip_in_the_manager() {
    let m = ProbeManager::new().start().unwrap();
    let probe = m.probe().unwrap();
    let b = m.barrier_with_action(2, count_action, None).unwrap();
    for round in 1..=2 {
        let kid = Process::spawn(|b: BarrierProxy| b.wait(None).unwrap(), b.clone()).unwrap();
        b.wait(None).unwrap();
        kid.join().unwrap();
        assert_eq!(probe.runs().unwrap(), round);
    }
    assert_eq!(ACTIONS_RUN.load(std::sync::atomic::Ordering::SeqCst), 0, "the action ran in the manager, not here");

    let b = m.barrier_with_action(2, failing_action, None).unwrap();
    let kid = Process::spawn(|b: BarrierProxy| format!("{:?}", b.wait(None)), b.clone()).unwrap();
    let mine = format!("{:?}", b.wait(None));
    let theirs = kid.join().unwrap();
    let results = [mine, theirs];
    assert!(results.iter().any(|r| r.contains("the action failed")), "{results:?}");
    assert!(results.iter().any(|r| r.contains("BrokenBarrier")), "{results:?}");
    assert!(b.broken().unwrap());

    // A function that is not registered is refused.
    assert!(matches!(m.barrier_with_action(2, unregistered_action, None), Err(procman::Error::Usage(_))));
}
