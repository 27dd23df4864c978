//! Deaths that land while the other side of a shared-memory channel spins.
//!
//! The default spin budget is 50 µs, so in the fault tests elsewhere (`faults.rs`, `core.rs`,
//! `sync_types.rs`) a kill always finds its peer asleep on the socket. Here every process of the
//! run spins for up to 3 s (`PROCMAN_SPIN_US`, set before anything starts and inherited by the
//! children), so the peer of a killed process is spinning when it dies: it must notice within
//! 1 s all the same, and a dead client's locks and references must be released as when it
//! sleeps.
//!
//! This file has its own `main` (`harness = false`): the environment variable has to be set
//! while the process has one thread.

use procman::prelude::*;
use procman::sync::*;
use std::time::{Duration, Instant};

/// 3 s: far longer than any wait in these scenarios before the kill.
const SPIN_US: &str = "3000000";

fn main() {
    procman::init();
    // SAFETY: the process has a single thread here (nothing of procman has started one yet:
    // `init` returned, so this is not a child), and nothing reads the environment concurrently.
    unsafe { std::env::set_var("PROCMAN_SPIN_US", SPIN_US) };
    let tests: [(&str, fn()); 2] = [
        (
            "a_client_killed_while_the_manager_spins_releases_its_lock_and_references",
            client_killed_while_the_manager_spins,
        ),
        (
            "a_manager_killed_while_its_client_spins_fails_the_call_within_a_second",
            manager_killed_while_the_client_spins,
        ),
    ];
    for (name, test) in tests {
        eprint!("test {name} ... ");
        let t = Instant::now();
        test();
        eprintln!("ok ({:.1} s)", t.elapsed().as_secs_f64());
    }
    eprintln!("test result: ok. {} passed", tests.len());
}

/// Takes the lock and a few objects, then calls without a pause until it is killed: the
/// manager's connection thread is always either serving a call or spinning for the next.
fn hold_and_call((m, lock, v): (procman::Address, LockProxy, ValueProxy<u64>)) {
    let m = SyncManager::new().address(m).connect().unwrap();
    assert!(lock.acquire(true, None).unwrap());
    let _mine: Vec<ValueProxy<u64>> = (0..10).map(|i| m.value(&i).unwrap()).collect();
    for i in 1.. {
        v.set(i).unwrap();
    }
}

fn client_killed_while_the_manager_spins() {
    let m = SyncManager::new().start().unwrap();
    let lock = m.lock().unwrap();
    let v = m.value(&0u64).unwrap();
    let before = m.number_of_objects().unwrap();
    let mut child = Process::spawn(hold_and_call, (m.address().clone(), lock.clone(), v.clone())).unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while v.get().unwrap() < 1000 {
        assert!(Instant::now() < end, "the child did not start calling");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(lock.locked().unwrap(), "the child holds the lock");
    assert_eq!(m.number_of_objects().unwrap(), before + 10);
    child.kill().unwrap();
    let _ = child.join();
    let t = Instant::now();
    let r = lock.acquire(true, Some(Duration::from_secs(5)));
    assert!(matches!(r, Err(Error::Abandoned)), "the dead holder's lock is handed on: {r:?}");
    assert!(t.elapsed() < Duration::from_secs(1), "the lock came after {:?}", t.elapsed());
    lock.release().unwrap();
    let end = Instant::now() + Duration::from_secs(1);
    while m.number_of_objects().unwrap() != before && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(m.number_of_objects().unwrap(), before, "the dead client's objects were released");
    drop((lock, v));
    m.shutdown().unwrap();
}

fn manager_killed_while_the_client_spins() {
    let m = SyncManager::new().start().unwrap();
    let q = m.queue::<u64>(0).unwrap();
    let blocked = q.clone();
    // Blocked in the manager for 200 ms before the kill: well inside the client's 3 s of spin.
    let waiter = std::thread::spawn(move || {
        let r = blocked.get();
        (r, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(200));
    let pid = m.pid().unwrap();
    // SAFETY: kill(2) of the manager process this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let killed = Instant::now();
    let (r, returned) = waiter.join().unwrap();
    assert!(matches!(r, Err(Error::ConnectionLost { .. })), "{r:?}");
    let after = returned.saturating_duration_since(killed);
    assert!(after < Duration::from_secs(1), "the spinning caller learned of the death after {after:?}");
    let t = Instant::now();
    assert!(matches!(q.qsize(), Err(Error::ConnectionLost { .. })));
    assert!(t.elapsed() < Duration::from_secs(1));
}
