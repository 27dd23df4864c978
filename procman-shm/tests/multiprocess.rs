//! Multi-process tests: the test binary re-executes itself as the peer (ipc-channel style).
//!
//! A parent test serializes handles (postcard, hex) into `PROCMAN_SHM_CHILD_HANDLES` and starts
//! `current_exe() <child test> --exact ...` with `PROCMAN_SHM_CHILD_ROLE` set. Child entry points
//! are ignored tests that return at once when the role variable is absent.

use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use procman_shm::{Arena, Lock, Queue, SharedArray, SharedValue, ShmError};
use serde::Serialize;
use serde::de::DeserializeOwned;

const ROLE: &str = "PROCMAN_SHM_CHILD_ROLE";
const HANDLES: &str = "PROCMAN_SHM_CHILD_HANDLES";

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Starts this test binary running only `test`, as `role`, with `handles` (each spawn adds the
/// transit references the child adopts).
fn spawn_child(test: &str, role: &str, handles: &impl Serialize) -> Child {
    let wire = postcard::to_allocvec(handles).unwrap();
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--include-ignored", "--test-threads=1"])
        .env(ROLE, role)
        .env(HANDLES, to_hex(&wire))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// In a child: its role and handles, or `None` when run as an ordinary (ignored) test.
fn child_args<T: DeserializeOwned>() -> Option<(String, T)> {
    let role = std::env::var(ROLE).ok()?;
    let hex = std::env::var(HANDLES).unwrap();
    Some((role, postcard::from_bytes(&from_hex(&hex)).unwrap()))
}

/// Reads the child's stdout until it prints `READY`.
fn wait_ready(child: &mut Child) {
    let out = child.stdout.as_mut().unwrap();
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(reader.read_line(&mut line).unwrap(), 0, "child exited before READY");
        if line.trim_end().ends_with("READY") {
            return;
        }
    }
}

fn ready() {
    println!("READY");
}

fn wait_ok(mut child: Child) {
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
}

// ---------------------------------------------------------------------------------------------

type CounterHandles = (SharedValue<u64>, Lock);

#[test]
fn four_processes_increment_under_a_lock() {
    let arena = Arena::create(1 << 16).unwrap();
    let counter = SharedValue::new_in(&arena, 0u64).unwrap();
    let lock = Lock::new_in(&arena).unwrap();
    let handles: CounterHandles = (counter.clone(), lock.clone());
    let children: Vec<_> = (0..4).map(|_| spawn_child("child_counter", "counter", &handles)).collect();
    for c in children {
        wait_ok(c);
    }
    assert_eq!(counter.get(), 40_000);
    drop(handles);
    assert_eq!(counter.ref_count(), 1, "children released their handles");
}

#[test]
#[ignore = "child process entry; run by the parent test"]
fn child_counter() {
    let Some((_, (counter, lock))) = child_args::<CounterHandles>() else {
        return;
    };
    for _ in 0..10_000 {
        let g = lock.lock().unwrap();
        assert!(!g.was_abandoned());
        counter.set(counter.get() + 1);
    }
}

// ---------------------------------------------------------------------------------------------

const PER_PRODUCER: u32 = 50_000;
const STOP: u32 = u32::MAX;
type Msg = (u32, u32); // (producer, sequence number)
type QueueHandles = (Queue<Msg>, SharedArray<u64>);

#[test]
fn two_producers_two_consumers_lose_and_duplicate_nothing() {
    let arena = Arena::create(8 << 20).unwrap();
    let q: Queue<Msg> = Queue::new_in(&arena, 64 * 1024).unwrap();
    // One result array per consumer: [count, (producer << 32 | seq)...].
    let results: Vec<SharedArray<u64>> =
        (0..2).map(|_| SharedArray::new_in(&arena, &vec![0u64; 2 * PER_PRODUCER as usize + 1]).unwrap()).collect();
    let start = Instant::now();
    let consumers: Vec<_> =
        results.iter().map(|r| spawn_child("child_queue", "consumer", &(q.clone(), r.clone()))).collect();
    let producers: Vec<_> =
        (0..2).map(|p| spawn_child("child_queue", &format!("producer{p}"), &(q.clone(), results[0].clone()))).collect();
    for p in producers {
        wait_ok(p);
    }
    q.put(&(STOP, 0), None).unwrap();
    q.put(&(STOP, 0), None).unwrap();
    for c in consumers {
        wait_ok(c);
    }
    eprintln!("100k messages through 2 producer and 2 consumer processes in {:?}", start.elapsed());
    let mut all = Vec::new();
    for r in &results {
        let n = r.get(0).unwrap() as usize;
        let got = r.get_range(1..1 + n).unwrap();
        let mut last = [None::<u32>; 2];
        for &m in &got {
            let (p, seq) = ((m >> 32) as usize, m as u32);
            assert!(last[p].is_none_or(|l| l < seq), "producer {p}'s messages out of order");
            last[p] = Some(seq);
        }
        all.extend(got);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (0..2u64).flat_map(|p| (0..u64::from(PER_PRODUCER)).map(move |s| (p << 32) | s)).collect();
    assert_eq!(all.len(), expected.len(), "lost or duplicated messages");
    assert_eq!(all, expected);
    assert!(q.is_empty());
}

#[test]
#[ignore = "child process entry; run by the parent test"]
fn child_queue() {
    let Some((role, (q, result))) = child_args::<QueueHandles>() else {
        return;
    };
    if let Some(p) = role.strip_prefix("producer") {
        let p: u32 = p.parse().unwrap();
        for seq in 0..PER_PRODUCER {
            q.put(&(p, seq), None).unwrap();
        }
    } else {
        let mut got = Vec::new();
        loop {
            let (p, seq) = q.get(None).unwrap();
            if p == STOP {
                break;
            }
            got.push((u64::from(p) << 32) | u64::from(seq));
        }
        result.set_range(1, &got).unwrap();
        result.set(0, got.len() as u64).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn lock_of_a_killed_holder_is_taken_over_within_a_second() {
    let arena = Arena::create(1 << 16).unwrap();
    let lock = Lock::new_in(&arena).unwrap();
    let mut child = spawn_child("child_lock_holder", "holder", &lock);
    wait_ready(&mut child);
    assert!(lock.is_locked());
    assert!(!lock.acquire(false, None).unwrap());
    child.kill().unwrap(); // SIGKILL; not reaped yet: the holder is a zombie for now
    let t = Instant::now();
    let guard = lock.lock().unwrap();
    let took = t.elapsed();
    assert!(guard.was_abandoned(), "the new holder is told");
    assert_eq!(guard.abandoned_by(), Some(child.id()));
    assert!(took < Duration::from_secs(1), "took over after {took:?}");
    drop(guard);
    child.wait().unwrap();
    // And the lock works normally afterwards.
    assert!(!lock.lock().unwrap().was_abandoned());
}

#[test]
#[ignore = "child process entry; run by the parent test"]
fn child_lock_holder() {
    let Some((_, lock)) = child_args::<Lock>() else {
        return;
    };
    let guard = lock.lock().unwrap();
    ready();
    std::thread::sleep(Duration::from_secs(60));
    drop(guard);
}

#[test]
fn acquire_reports_abandonment_as_an_error_with_the_lock_held() {
    let arena = Arena::create(1 << 16).unwrap();
    let lock = Lock::new_in(&arena).unwrap();
    let mut child = spawn_child("child_lock_holder", "holder", &lock);
    wait_ready(&mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    match lock.acquire(true, Some(Duration::from_secs(1))) {
        Err(ShmError::Abandoned { pid, .. }) => assert_eq!(pid, child.id()),
        other => panic!("expected Abandoned, got {other:?}"),
    }
    assert!(lock.is_held_by_current_thread());
    lock.release().unwrap();
}

// ---------------------------------------------------------------------------------------------

/// Inode of the arena's memfd, to look for it in every process's maps and descriptors.
fn arena_inode(arena: &Arena) -> u64 {
    let fd = arena.as_fd().try_clone_to_owned().unwrap();
    std::fs::File::from(fd).metadata().unwrap().ino()
}

/// Processes (of ours) that still map or hold the memfd with inode `ino`.
fn holders_of(ino: u64) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{name}/maps")) {
            for line in maps.lines() {
                if line.contains("memfd:procman-arena") && line.split_whitespace().nth(4) == Some(&ino.to_string()) {
                    found.push(format!("{name}: map {line}"));
                }
            }
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{name}/fd")) {
            for fd in fds.flatten() {
                if let Ok(target) = std::fs::read_link(fd.path())
                    && target.to_string_lossy().contains("memfd:procman-arena")
                    && std::fs::metadata(fd.path()).is_ok_and(|m| m.ino() == ino)
                {
                    found.push(format!("{name}: fd {}", fd.path().display()));
                }
            }
        }
    }
    found
}

#[test]
fn killed_children_leave_nothing_behind() {
    let arena = Arena::create(1 << 20).unwrap();
    let ino = arena_inode(&arena);
    let value = SharedValue::new_in(&arena, 1u64).unwrap();
    let lock = Lock::new_in(&arena).unwrap();
    let q: Queue<u64> = Queue::new_in(&arena, 4096).unwrap();
    let mut children: Vec<_> =
        (0..3).map(|_| spawn_child("child_sleeper", "sleeper", &(value.clone(), lock.clone(), q.clone()))).collect();
    for c in &mut children {
        wait_ready(c);
    }
    assert_eq!(holders_of(ino).len(), 2 * 4, "us and 3 children map and hold it");
    for c in &mut children {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let shm: Vec<_> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("procman"))
                .collect()
        })
        .unwrap_or_default();
    assert!(shm.is_empty(), "/dev/shm holds {shm:?}");
    assert_eq!(holders_of(ino).len(), 2, "only our map and fd remain");
    drop((value, lock, q, arena));
    assert_eq!(holders_of(ino), Vec::<String>::new(), "no process maps or holds the memfd: the kernel has freed it");
}

#[test]
#[ignore = "child process entry; run by the parent test"]
fn child_sleeper() {
    let Some((_, (value, lock, q))) = child_args::<(SharedValue<u64>, Lock, Queue<u64>)>() else {
        return;
    };
    let _keep = (value, lock, q);
    ready();
    std::thread::sleep(Duration::from_secs(60));
}

// ---------------------------------------------------------------------------------------------

#[test]
fn producer_killed_mid_put_leaves_the_queue_consistent() {
    let arena = Arena::create(1 << 20).unwrap();
    // A small ring so the producer wraps constantly and is inside `put` most of the time.
    let q: Queue<(u64, Vec<u8>)> = Queue::new_in(&arena, 2048).unwrap();
    for round in 0..3u64 {
        let mut child = spawn_child("child_endless_producer", "producer", &q);
        wait_ready(&mut child);
        let mut next = 0u64;
        let check = |(seq, payload): (u64, Vec<u8>), next: &mut u64| {
            assert_eq!(seq, *next, "round {round}: messages lost or reordered");
            assert_eq!(payload, vec![seq as u8; (seq % 200) as usize], "corrupt payload");
            *next += 1;
        };
        let target = 2_000 + round * 1_500;
        while next < target {
            check(q.get(Some(Duration::from_secs(10))).unwrap(), &mut next);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Drain what the dead producer managed to publish: a clean prefix of its sequence.
        while let Ok(m) = q.get_nowait() {
            check(m, &mut next);
        }
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
        // Usable: a full ring round trip.
        for i in 0..100u64 {
            q.put(&(i, vec![1; 50]), Some(Duration::from_secs(5))).unwrap();
            assert_eq!(q.get(Some(Duration::from_secs(5))).unwrap().0, i);
        }
    }
}

#[test]
#[ignore = "child process entry; run by the parent test"]
fn child_endless_producer() {
    let Some((_, q)) = child_args::<Queue<(u64, Vec<u8>)>>() else {
        return;
    };
    ready();
    for seq in 0.. {
        q.put(&(seq, vec![seq as u8; (seq % 200) as usize]), None).unwrap();
    }
}
