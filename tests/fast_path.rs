//! The same-host fast path: connections to a local manager move their frames to a shared-memory
//! channel (a memfd both processes map), unless the manager says `Transport::Socket`; results
//! are the same either way, a frame larger than the channel's rings streams through, and a call
//! that waits (a blocked `get`) sleeps instead of spinning.

use procman::Transport;
use procman::prelude::*;
use procman::sync::*;
use std::time::{Duration, Instant};

procman::child_entry_point!();

const BOTH: [Transport; 2] = [Transport::SharedMemory, Transport::Socket];

/// The shared-memory channels a process has mapped: memfds named `procman-channel`.
fn channels_of(pid: u32) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    maps.lines().filter(|l| l.contains("memfd:procman-channel")).count()
}

/// User plus system CPU time of a process so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process is alive");
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

#[test]
fn a_local_manager_serves_its_clients_through_shared_memory_unless_told_not_to() {
    for transport in BOTH {
        let m = SyncManager::new().transport(transport).start().unwrap();
        let pid = m.pid().unwrap();
        let before = channels_of(pid);
        let v = m.value(&41i64).unwrap();
        v.set(v.get().unwrap() + 1).unwrap();
        assert_eq!(v.get().unwrap(), 42, "{transport:?}");
        let open = channels_of(pid) - before;
        match transport {
            Transport::SharedMemory => assert!(open >= 1, "this thread's connection has a channel"),
            _ => assert_eq!(open, 0, "no channel when the manager keeps frames on the socket"),
        }
        drop(v);
        m.shutdown().unwrap();
    }
}

fn echo_in_child((l, n): (ListProxy<procman::ByteBuf>, usize)) -> usize {
    // Read what the parent stored, append it back reversed.
    let got = l.get(0).unwrap();
    assert_eq!(got.len(), n);
    let mut back = got.to_vec();
    back.reverse();
    l.append(procman::ByteBuf::from(back)).unwrap();
    l.len().unwrap()
}

#[test]
fn frames_larger_than_the_channel_give_the_same_results_on_both_transports() {
    // Several rings' worth each way (a ring is 128 KiB), and across processes.
    let n = 3 << 20;
    let payload: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    for transport in BOTH {
        let m = SyncManager::new().transport(transport).start().unwrap();
        let l = m.list::<procman::ByteBuf>(&[procman::ByteBuf::from(payload.clone())]).unwrap();
        let len = Process::spawn(echo_in_child, (l.clone(), n)).unwrap().join().unwrap();
        assert_eq!(len, 2, "{transport:?}");
        let back = l.get(1).unwrap();
        assert!(back.iter().rev().eq(payload.iter()), "{transport:?}: the bytes came back reversed");
        // Too large for the manager's frame limit: the same error on both, and the connection
        // goes on.
        let huge = procman::ByteBuf::from(vec![0u8; procman::DEFAULT_MAX_FRAME_SIZE + 1]);
        let e = l.append(huge).unwrap_err();
        assert!(matches!(e, Error::FrameTooLarge { .. }), "{transport:?}: {e:?}");
        assert_eq!(l.len().unwrap(), 2, "{transport:?}");
        drop(l);
        m.shutdown().unwrap();
    }
}

fn blocked_get(q: QueueProxy<u64>) -> u64 {
    q.get().unwrap()
}

#[test]
fn a_get_blocked_for_ten_seconds_costs_next_to_no_cpu_on_either_side() {
    let m = SyncManager::new().start().unwrap();
    let q = m.queue::<u64>(0).unwrap();
    let child = Process::spawn(blocked_get, q.clone()).unwrap();
    // Let the child connect and block in its get (and spin out its budget).
    std::thread::sleep(Duration::from_millis(500));
    let (manager, waiter) = (m.pid().unwrap(), child.pid());
    assert!(channels_of(waiter) >= 1, "the waiting client uses the fast path");
    let (m0, w0, t0) = (cpu_time(manager), cpu_time(waiter), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let (m1, w1, waited) = (cpu_time(manager), cpu_time(waiter), t0.elapsed());
    q.put(7).unwrap();
    assert_eq!(child.join().unwrap(), 7, "the blocked get got the item");
    let used = (m1 - m0) + (w1 - w0);
    assert!(used < Duration::from_millis(100), "{used:?} of CPU in {waited:?} of waiting");
    drop(q);
    m.shutdown().unwrap();
}

fn incr_many((v, lock, n): (ValueProxy<u64>, LockProxy, u64)) {
    for _ in 0..n {
        assert!(lock.acquire(true, None).unwrap());
        v.set(v.get().unwrap() + 1).unwrap();
        lock.release().unwrap();
    }
}

#[test]
fn clients_of_several_processes_and_threads_see_each_others_writes() {
    let m = SyncManager::new().start().unwrap();
    let v = m.value(&0u64).unwrap();
    let lock = m.lock().unwrap();
    let children: Vec<_> = (0..3).map(|_| Process::spawn(incr_many, (v.clone(), lock.clone(), 300)).unwrap()).collect();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (v, lock) = (v.clone(), lock.clone());
            std::thread::spawn(move || incr_many((v, lock, 300)))
        })
        .collect();
    for c in children {
        c.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(v.get().unwrap(), 1800);
    drop((v, lock));
    m.shutdown().unwrap();
}
