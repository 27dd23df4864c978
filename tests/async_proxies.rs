//! Async proxies: the same objects from tokio tasks, one multiplexed connection per process,
//! cancellation that loses nothing, and owners that are tasks.

use procman::prelude::*;
use procman::sync::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

procman::child_entry_point!();

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap()
}

/// A manager on the same-host fast path and one on a Unix socket (`Transport::Socket`), where
/// async calls wait for their replies in two different ways.
fn both_transports() -> [(&'static str, SyncManager); 2] {
    [
        ("fast path", SyncManager::new().start().unwrap()),
        ("unix socket", SyncManager::new().transport(procman::Transport::Socket).start().unwrap()),
    ]
}

/// The threads of this process, from `/proc`.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The connections of this process's client to the manager, from its snapshot.
fn connections_of_this_process(m: &SyncManager) -> usize {
    let snapshot = m.debug_info().unwrap();
    let me = std::process::id();
    snapshot.clients.iter().filter(|c| c.pid == Some(me)).map(|c| c.connections.len()).sum()
}

#[test]
fn a_producer_and_a_consumer_task_on_one_current_thread_runtime_both_finish() {
    let m = SyncManager::new().start().unwrap();
    let q = m.queue::<u32>(0).unwrap().into_async();
    let got = current_thread().block_on(async {
        let consumer = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..100 {
                    got.push(q.get().await.unwrap());
                }
                got
            })
        };
        // The consumer is waiting in `get` before anything is put: a blocking `get` here would
        // starve the producer for ever.
        tokio::task::yield_now().await;
        let producer = {
            let q = q.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    q.put(i).await.unwrap();
                }
            })
        };
        producer.await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), consumer).await.expect("the consumer finished").unwrap()
    });
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    drop(q);
    m.shutdown().unwrap();
}

#[test]
fn ten_thousand_pending_gets_are_served_once_each_on_one_connection_and_few_threads() {
    let m = SyncManager::new().start().unwrap();
    let q = m.queue::<u32>(0).unwrap().into_async();
    let rt = multi_thread(2);
    let before = threads();
    let n = 10_000u32;
    let (got, peak_threads, conns) = rt.block_on(async {
        let waiting = Arc::new(AtomicUsize::new(0));
        let getters: Vec<_> = (0..n)
            .map(|_| {
                let (q, waiting) = (q.clone(), waiting.clone());
                tokio::spawn(async move {
                    waiting.fetch_add(1, Ordering::Relaxed);
                    q.get().await.unwrap()
                })
            })
            .collect();
        while waiting.load(Ordering::Relaxed) < n as usize {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Let the gets reach the manager and wait there.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let peak = threads();
        let conns = connections_of_this_process(&m);
        for i in 0..n {
            q.put(i).await.unwrap();
        }
        let mut got = Vec::with_capacity(n as usize);
        for g in getters {
            got.push(g.await.unwrap());
        }
        (got, peak, conns)
    });
    eprintln!("{n} pending gets: {peak_threads} threads in this process (from {before}), {conns} connections");
    let unique: HashSet<u32> = got.iter().copied().collect();
    assert_eq!(unique.len(), n as usize, "each item went to exactly one get");
    assert_eq!(unique, (0..n).collect::<HashSet<_>>());
    // The runtime's 2 workers, the async connection's reader and a few helpers: not a thread
    // per call.
    assert!(peak_threads <= before + 8, "{peak_threads} threads (from {before}) for {n} pending gets");
    // The blocking connection of this thread (for the snapshot and creation), its anchor, and
    // the one multiplexed connection.
    assert!(conns <= 3, "{conns} connections for {n} pending gets");
    drop(q);
    m.shutdown().unwrap();
}

/// How many callers wait in `get` on the manager's queues.
fn getting(m: &SyncManager) -> usize {
    m.debug_info()
        .unwrap()
        .objects
        .iter()
        .map(|o| match &o.state {
            Some(procman::inspect::ObjectState::Queue { getting, .. }) => getting.len(),
            _ => 0,
        })
        .sum()
}

/// An async connection has at most `max_calls_in_flight` calls in flight (each blocked call
/// holds a thread of the manager): the call beyond them is refused at once with an error that
/// says so and runs nothing (it takes no item), and the connection and its waiting calls go on.
#[test]
fn a_call_beyond_the_calls_in_flight_of_one_connection_is_refused_and_the_rest_go_on() {
    const IN_FLIGHT: usize = 64;
    let m = SyncManager::new().max_calls_in_flight(IN_FLIGHT).start().unwrap();
    let q = m.queue::<u32>(0).unwrap().into_async();
    let rt = multi_thread(2);
    rt.block_on(async {
        let getters: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move { q.get().await })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let waiting = getting(&m);
            if waiting >= IN_FLIGHT {
                break;
            }
            assert!(Instant::now() < deadline, "{waiting} of {IN_FLIGHT} gets waited in the manager after 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Refused at once: a call that was let in would wait for an item that never comes.
        match tokio::time::timeout(Duration::from_secs(10), q.get()).await {
            Ok(Err(procman::Error::Protocol { message, .. })) => {
                assert!(message.contains("more than 64 calls in flight"), "{message}")
            }
            other => panic!("the call beyond the limit: {other:?}"),
        }
        for i in 0..IN_FLIGHT as u32 {
            q.put(i).await.unwrap();
        }
        let mut got = HashSet::new();
        for g in getters {
            got.insert(g.await.unwrap().unwrap());
        }
        assert_eq!(got, (0..IN_FLIGHT as u32).collect::<HashSet<_>>(), "every waiting get took one item");
        // The connection goes on, and the refused call took nothing.
        q.put(7).await.unwrap();
        assert_eq!(q.get().await.unwrap(), 7);
        assert_eq!(q.qsize().await.unwrap(), 0);
    });
    drop(q);
    m.shutdown().unwrap();
}

/// A small deterministic generator for delays.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn gets_dropped_at_random_moments_lose_no_item_and_take_none_twice() {
    for (name, m) in both_transports() {
        let q = m.queue::<u32>(0).unwrap().into_async();
        let n = 1000u32;
        let rt = multi_thread(2);
        let (received, left) = rt.block_on(async {
            let mut rng = Lcg(7);
            // Half the getters give up after a random short delay; the other half keep getting.
            let quitters: Vec<_> = (0..n)
                .map(|_| {
                    let q = q.clone();
                    let delay = Duration::from_micros(rng.next() % 20_000);
                    tokio::spawn(async move { tokio::time::timeout(delay, q.get()).await.ok().map(|r| r.unwrap()) })
                })
                .collect();
            let producer = {
                let q = q.clone();
                tokio::spawn(async move {
                    for i in 0..n {
                        q.put(i).await.unwrap();
                        if i % 50 == 0 {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                })
            };
            let mut received = Vec::new();
            for t in quitters {
                received.extend(t.await.unwrap());
            }
            producer.await.unwrap();
            // What the quitters did not take is in the queue (put back, or never taken).
            let mut left = Vec::new();
            while let Ok(item) = tokio::time::timeout(Duration::from_secs(5), q.get_nowait()).await.unwrap() {
                left.push(item);
            }
            (received, left)
        });
        let mut all: Vec<u32> = received.iter().chain(&left).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..n).collect::<Vec<_>>(),
            "{name}: every item exactly once: {} received, {} left",
            received.len(),
            left.len()
        );
        drop(q);
        m.shutdown().unwrap();
    }
}

#[test]
fn dropped_acquires_leave_the_lock_acquirable() {
    for (name, m) in both_transports() {
        let lock = m.lock().unwrap().into_async();
        let sem = m.semaphore(1).unwrap().into_async();
        let rt = multi_thread(2);
        rt.block_on(async {
            assert!(lock.acquire(true, None).await.unwrap());
            assert!(sem.acquire(true, None).await.unwrap());
            // Waiters that give up while it is held, and some that give up about when it is freed.
            let mut waiters = Vec::new();
            for i in 0..50u64 {
                let (lock, sem) = (lock.clone(), sem.clone());
                waiters.push(tokio::spawn(async move {
                    let d = Duration::from_millis(5 + i % 20);
                    // One that gets it in time gives it back; one whose timeout wins is dropped.
                    if let Ok(acquired) = tokio::time::timeout(d, lock.acquire(true, None)).await
                        && acquired.unwrap()
                    {
                        lock.release().await.unwrap();
                    }
                    if let Ok(acquired) = tokio::time::timeout(d, sem.acquire(true, None)).await
                        && acquired.unwrap()
                    {
                        sem.release().await.unwrap();
                    }
                }));
            }
            tokio::time::sleep(Duration::from_millis(12)).await;
            lock.release().await.unwrap();
            sem.release().await.unwrap();
            for w in waiters {
                w.await.unwrap();
            }
            // The timeouts that won after the lock was taken had it released again for them.
            let end = Instant::now() + Duration::from_secs(5);
            while !(lock.acquire(false, None).await.unwrap()) {
                assert!(Instant::now() < end, "{name}: a dropped acquire kept the lock");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            lock.release().await.unwrap();
            while sem.value().await.unwrap() != 1 {
                assert!(Instant::now() < end, "{name}: a dropped acquire kept a permit");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        drop((lock, sem));
        m.shutdown().unwrap();
    }
}

#[test]
fn an_rlock_belongs_to_the_task_that_took_it_across_awaits_and_worker_threads() {
    let m = SyncManager::new().start().unwrap();
    let rlock = m.rlock().unwrap().into_async();
    let rt = multi_thread(2);
    rt.block_on(async {
        let (taken_tx, taken_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let holder = {
            let rlock = rlock.clone();
            tokio::spawn(async move {
                assert!(rlock.acquire(true, None).await.unwrap());
                let thread = std::thread::current().id();
                taken_tx.send(()).unwrap();
                go_rx.await.unwrap();
                // Awaits in between, on whatever worker: still this task's lock.
                let mut moved = false;
                for _ in 0..50 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    moved |= std::thread::current().id() != thread;
                }
                assert!(rlock.acquire(false, None).await.unwrap(), "the holder re-enters");
                assert_eq!(rlock.state().await.unwrap(), (true, 2));
                rlock.release().await.unwrap();
                rlock.release().await.unwrap();
                moved
            })
        };
        taken_rx.await.unwrap();
        // Another task on the same connection (and maybe the same thread) does not own it.
        assert!(!rlock.acquire(false, None).await.unwrap(), "a second task does not re-enter another's RLock");
        assert!(matches!(rlock.release().await, Err(procman::Error::NotHeld { .. })));
        let second = {
            let rlock = rlock.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                assert!(rlock.acquire(true, None).await.unwrap());
                rlock.release().await.unwrap();
                t.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        go_tx.send(()).unwrap();
        let moved = holder.await.unwrap();
        let waited = second.await.unwrap();
        assert!(waited >= Duration::from_millis(50), "the second task waited for the first: {waited:?}");
        let _ = moved; // whether the holder changed threads is up to the scheduler
    });
    drop(rlock);
    m.shutdown().unwrap();
}

#[test]
fn a_dropped_condition_wait_leaves_its_owner_holding_the_lock() {
    let m = SyncManager::new().start().unwrap();
    let cond = m.condition().unwrap().into_async();
    current_thread().block_on(async {
        assert!(cond.acquire(true, None).await.unwrap());
        let r = tokio::time::timeout(Duration::from_millis(50), cond.wait(None)).await;
        assert!(r.is_err(), "nobody notified");
        // As after any wait, the lock is the task's again: one release frees it.
        cond.release().await.unwrap();
        assert!(matches!(cond.release().await, Err(procman::Error::NotHeld { .. })));
    });
    drop(cond);
    m.shutdown().unwrap();
}

fn blocking_client((q, v, lock, n): (QueueProxy<u64>, ValueProxy<u64>, LockProxy, u64)) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        q.put(i).unwrap();
        sum += i;
    }
    for _ in 0..n {
        assert!(lock.acquire(true, None).unwrap());
        v.set(v.get().unwrap() + 1).unwrap();
        lock.release().unwrap();
    }
    sum
}

fn async_client((q, v, lock, n): (QueueProxy<u64>, ValueProxy<u64>, LockProxy, u64)) -> u64 {
    let (q, v, lock) = (q.into_async(), v.into_async(), lock.into_async());
    multi_thread(2).block_on(async move {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (lock, v) = (lock.clone(), v.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..n / 4 {
                    assert!(lock.acquire(true, None).await.unwrap());
                    let x = v.get().await.unwrap();
                    v.set(x + 1).await.unwrap();
                    lock.release().await.unwrap();
                }
            }));
        }
        let mut sum = 0;
        for _ in 0..n {
            sum += q.get().await.unwrap();
        }
        for t in tasks {
            t.await.unwrap();
        }
        sum
    })
}

#[test]
fn blocking_and_async_clients_in_two_processes_share_the_same_objects() {
    let m = SyncManager::new().start().unwrap();
    let q = m.queue::<u64>(0).unwrap();
    let v = m.value(&0u64).unwrap();
    let lock = m.lock().unwrap();
    let n = 200;
    let a = Process::spawn(async_client, (q.clone(), v.clone(), lock.clone(), n)).unwrap();
    let b = Process::spawn(blocking_client, (q.clone(), v.clone(), lock.clone(), n)).unwrap();
    let put = b.join().unwrap();
    let got = a.join().unwrap();
    assert_eq!(put, got, "the async process got what the blocking one put");
    assert_eq!(v.get().unwrap(), 2 * n, "no lost update under the shared lock");
    drop((q, v, lock));
    m.shutdown().unwrap();
}

#[test]
fn async_managers_start_create_and_shut_down_and_processes_are_joined_async() {
    fn square(x: u64) -> u64 {
        x * x
    }
    current_thread().block_on(async {
        let m = SyncManager::new().start_async().await.unwrap();
        let d = m.dict::<String, u64>().unwrap().into_async();
        d.insert("a".into(), 1).await.unwrap();
        assert_eq!(d.get(&"a".to_string()).await.unwrap(), Some(1));
        assert_eq!(Process::spawn(square, 9).unwrap().join_async().await.unwrap(), 81);
        drop(d);
        m.shutdown_async().await.unwrap();
    });
}

#[test]
fn calls_that_block_in_the_manager_hold_up_no_other_call_on_the_connection() {
    let m = SyncManager::new().start().unwrap();
    let event = m.event().unwrap().into_async();
    let q = m.queue::<u32>(0).unwrap().into_async();
    let counter = m.value(&0i64).unwrap().into_async();
    multi_thread(2).block_on(async {
        // `Event::wait` answers at once while the event is set: the manager runs those calls
        // where it reads them.
        event.set().await.unwrap();
        for _ in 0..100 {
            assert!(event.wait(None).await.unwrap());
        }
        event.clear().await.unwrap();
        // Now the same method blocks, and so do gets of an empty queue, one after the other.
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let event = event.clone();
                tokio::spawn(async move { event.wait(None).await.unwrap() })
            })
            .chain((0..20).map(|_| {
                let q = q.clone();
                tokio::spawn(async move { q.get().await.unwrap() == 7 })
            }))
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Every quick call is answered while all of them wait (held up behind them, these
        // would never end).
        let quick = async {
            for i in 1..=1_000 {
                counter.set(i).await.unwrap();
                assert_eq!(counter.get().await.unwrap(), i);
            }
        };
        tokio::time::timeout(Duration::from_secs(60), quick).await.expect("the quick calls went through");
        assert!(waiters.iter().all(|w| !w.is_finished()), "the waits still wait");
        event.set().await.unwrap();
        for _ in 0..20 {
            q.put(7).await.unwrap();
        }
        for w in waiters {
            let done = tokio::time::timeout(Duration::from_secs(10), w).await.expect("every wait ended");
            assert!(done.unwrap());
        }
        assert_eq!(q.qsize().await.unwrap(), 0);
    });
}

/// Gets cancelled over and over while they wait (a 300 µs timeout around each, in four
/// consumer tasks, as a producer puts), on the same-host fast path, on a Unix socket with
/// `Transport::Socket`, and on TCP loopback: no item is lost or taken twice, and the
/// connection never stalls. Each cancelled get makes its task's next call wait, in the
/// manager, until the cancelled one ended; a next call cancelled in its turn while it waited
/// must not be waited for itself.
#[test]
fn gets_cancelled_over_and_over_lose_nothing_on_every_transport() {
    for (name, m) in [
        ("fast path", SyncManager::new().start().unwrap()),
        ("unix socket", SyncManager::new().transport(procman::Transport::Socket).start().unwrap()),
        ("tcp loopback", SyncManager::new().address("127.0.0.1:0").start().unwrap()),
    ] {
        let q = m.queue::<u32>(0).unwrap().into_async();
        let n = 400u32;
        let got = multi_thread(2).block_on(async {
            tokio::time::timeout(Duration::from_secs(60), async {
                let taken = Arc::new(std::sync::Mutex::new(Vec::new()));
                let consumers: Vec<_> = (0..4)
                    .map(|_| {
                        let (q, taken) = (q.clone(), taken.clone());
                        tokio::spawn(async move {
                            loop {
                                // Short timeouts: many gets are dropped while they wait.
                                match tokio::time::timeout(Duration::from_micros(300), q.get()).await {
                                    Ok(Ok(u32::MAX)) => return,
                                    Ok(Ok(item)) => taken.lock().unwrap().push(item),
                                    Ok(Err(e)) => panic!("get failed: {e}"),
                                    Err(_) => {}
                                }
                            }
                        })
                    })
                    .collect();
                for i in 0..n {
                    q.put(i).await.unwrap();
                    if i % 50 == 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                // Once the items are all taken, one stop item for each consumer.
                let deadline = Instant::now() + Duration::from_secs(60);
                while taken.lock().unwrap().len() < n as usize {
                    assert!(Instant::now() < deadline, "{name}: the items were not all taken");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                for _ in 0..consumers.len() {
                    q.put(u32::MAX).await.unwrap();
                }
                for c in consumers {
                    c.await.unwrap();
                }
                std::mem::take(&mut *taken.lock().unwrap())
            })
            .await
            .unwrap_or_else(|_| panic!("{name}: the calls stalled"))
        });
        let unique: HashSet<u32> = got.iter().copied().collect();
        assert_eq!(got.len(), n as usize, "{name}: an item was taken twice");
        assert_eq!(unique, (0..n).collect::<HashSet<_>>(), "{name}: an item was lost");
        assert_eq!(q.clone().into_blocking().qsize().unwrap(), 0, "{name}: nothing is left behind");
        drop(q);
        m.shutdown().unwrap();
    }
}

/// The sockets of this process connected to TCP `port` on 127.0.0.1, from `/proc`.
fn sockets_to(port: u16) -> usize {
    let remote = format!("0100007F:{port:04X}");
    let inodes: HashSet<String> = std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(2) == Some(&remote.as_str())).then(|| fields[9].to_string())
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|link| {
            let link = link.to_string_lossy();
            link.strip_prefix("socket:[").and_then(|l| l.strip_suffix(']')).is_some_and(|i| inodes.contains(i))
        })
        .count()
}

/// A process that made async calls to a manager that then stopped keeps no connection (and no
/// thread) to it: its multiplexed connection sees the close within seconds, though the process
/// makes no call again.
#[test]
fn an_async_connection_to_a_manager_that_stopped_is_closed_without_another_call() {
    let m = SyncManager::new().address("127.0.0.1:0").start().unwrap();
    let port: u16 = m.address().to_string().rsplit(':').next().unwrap().parse().unwrap();
    let q = m.queue::<u32>(0).unwrap().into_async();
    current_thread().block_on(async {
        q.put(1).await.unwrap();
        assert_eq!(q.get().await.unwrap(), 1);
    });
    assert!(sockets_to(port) >= 1, "the calls went over a connection to port {port}");
    drop(q);
    m.shutdown().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sockets_to(port) > 0 {
        assert!(Instant::now() < deadline, "a connection to the stopped manager stayed open");
        std::thread::sleep(Duration::from_millis(20));
    }
}
