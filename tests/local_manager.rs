//! LocalManager through the user's path: handles passed to `Process::spawn`.

use procman::shm::{Lock, Queue, SharedValue, ShmError};
use procman::{Error, LocalManager, Process};
use std::collections::HashSet;
use std::time::{Duration, Instant};

procman::child_entry_point!();

fn add_under_lock((value, lock): (SharedValue<u64>, Lock)) {
    for _ in 0..10_000 {
        let _g = lock.lock().unwrap();
        value.set(value.get() + 1);
    }
}

#[test]
fn four_processes_increment_a_shared_value_under_a_shared_lock() {
    let m = LocalManager::new().unwrap();
    let value = m.shared_value(0u64).unwrap();
    let lock = m.lock().unwrap();
    let ps: Vec<_> = (0..4).map(|_| Process::spawn(add_under_lock, (value.clone(), lock.clone())).unwrap()).collect();
    for p in ps {
        p.join().unwrap();
    }
    assert_eq!(value.get(), 40_000);
}

fn produce((q, who): (Queue<(u8, u32)>, u8)) {
    for i in 0..50_000 {
        q.put(&(who, i), None).unwrap();
    }
}

fn consume((q, n): (Queue<(u8, u32)>, usize)) -> Vec<(u8, u32)> {
    (0..n).map(|_| q.get(Some(Duration::from_secs(30))).unwrap()).collect()
}

#[test]
fn a_hundred_thousand_messages_from_two_producers_to_two_consumers() {
    let m = LocalManager::new().unwrap();
    let q = m.queue::<(u8, u32)>(64 * 1024).unwrap();
    let consumers: Vec<_> = (0..2).map(|_| Process::spawn(consume, (q.clone(), 50_000)).unwrap()).collect();
    let producers: Vec<_> = (0..2).map(|w| Process::spawn(produce, (q.clone(), w)).unwrap()).collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut seen = HashSet::new();
    for c in consumers {
        let got = c.join().unwrap();
        let mut last = [None::<u32>; 2];
        for &(who, i) in &got {
            assert!(last[who as usize].is_none_or(|l| l < i), "producer {who}'s messages arrive in order");
            last[who as usize] = Some(i);
            assert!(seen.insert((who, i)), "({who}, {i}) delivered twice");
        }
    }
    assert_eq!(seen.len(), 100_000, "none lost");
    assert!(q.is_empty());
}

fn hold_forever((lock, ready): (Lock, SharedValue<u32>)) {
    let g = lock.lock().unwrap();
    ready.set(1);
    std::thread::sleep(Duration::from_secs(60));
    drop(g);
}

#[test]
fn a_lock_whose_holder_is_killed_is_taken_over_and_the_taker_told() {
    let m = LocalManager::new().unwrap();
    let lock = m.lock().unwrap();
    let ready = m.shared_value(0u32).unwrap();
    let mut p = Process::spawn(hold_forever, (lock.clone(), ready.clone())).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while ready.get() == 0 {
        assert!(Instant::now() < end, "the child did not take the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!lock.acquire(false, None).unwrap(), "the child holds the lock");
    p.kill().unwrap();
    let t = Instant::now();
    let g = lock.lock_timeout(Duration::from_secs(5)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "took {:?}", t.elapsed());
    assert!(g.was_abandoned(), "the new holder is told the old one died");
    drop(g);
    assert!(matches!(p.join(), Err(Error::ChildExited { .. })));
}

#[test]
fn a_full_arena_is_a_clear_error_and_freed_objects_make_room() {
    let m = LocalManager::with_capacity(64 * 1024).unwrap();
    let big = m.shared_array(&[0u8; 40 * 1024]).unwrap();
    match m.shared_array(&[0u8; 40 * 1024]) {
        Err(Error::Shm(e @ ShmError::OutOfMemory { .. })) => assert!(e.to_string().contains("out of"), "{e}"),
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    drop(big);
    assert!(m.shared_array(&[0u8; 40 * 1024]).is_ok(), "the dropped array's memory was freed");
    assert!(m.shutdown().is_ok());
}
