//! Rough performance check of procman-shm against its targets (run with `--release`):
//! `cargo run --release -p procman-shm --example shm_bench`.
//!
//! The cross-process queue part re-executes this binary as producer/consumer processes.

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use procman_shm::{Arena, Lock, Queue, SharedArray, SharedValue};

const N: u64 = 10_000_000;

fn per_op(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 3 && (args[1] == "producer" || args[1] == "consumer") {
        return child(&args[1], &args[2], args[3].parse().unwrap());
    }

    let arena = Arena::create(64 << 20).unwrap();

    // Word get/set vs a raw atomic.
    let raw = AtomicU64::new(0);
    let t = Instant::now();
    for i in 0..N {
        raw.store(black_box(i), Ordering::Release);
        black_box(raw.load(Ordering::Acquire));
    }
    let raw_ns = per_op(t.elapsed(), N);
    let v = SharedValue::new_in(&arena, 0u64).unwrap();
    let t = Instant::now();
    for i in 0..N {
        v.set(black_box(i));
        black_box(v.get());
    }
    let v_ns = per_op(t.elapsed(), N);
    println!("SharedValue<u64> set+get: {v_ns:.2} ns vs raw atomic store+load {raw_ns:.2} ns ({:.2}x)", v_ns / raw_ns);

    // Uncontended lock vs a CAS pair.
    let w = AtomicU64::new(0);
    let t = Instant::now();
    for _ in 0..N {
        let _ = black_box(w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed));
        let _ = black_box(w.compare_exchange(1, 0, Ordering::Release, Ordering::Relaxed));
    }
    let cas_ns = per_op(t.elapsed(), N);
    let lock = Lock::new_in(&arena).unwrap();
    let t = Instant::now();
    for _ in 0..N {
        black_box(lock.acquire(true, None).unwrap());
        lock.release().unwrap();
    }
    let lock_ns = per_op(t.elapsed(), N);
    let t = Instant::now();
    for _ in 0..N {
        drop(black_box(lock.lock().unwrap()));
    }
    let guard_ns = per_op(t.elapsed(), N);
    println!(
        "Lock acquire+release: {lock_ns:.2} ns (guard {guard_ns:.2} ns) vs CAS pair {cas_ns:.2} ns ({:.2}x)",
        lock_ns / cas_ns
    );

    // Bulk copy vs memcpy.
    let len = 4 << 20; // 32 MiB of u64
    let src: Vec<u64> = (0..len as u64).collect();
    let mut dst = vec![0u64; len];
    let arr = SharedArray::new_in(&arena, &vec![0u64; len][..]).unwrap_or_else(|_| {
        panic!("arena too small");
    });
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
    }
    let memcpy = t.elapsed();
    let t = Instant::now();
    for _ in 0..reps / 2 {
        arr.copy_from_slice(black_box(&src)).unwrap();
        arr.read_into(black_box(&mut dst)).unwrap();
    }
    let shm = t.elapsed();
    let gb = (len * 8 * reps) as f64 / 1e9;
    println!(
        "SharedArray bulk copy: {:.2} GB/s vs memcpy {:.2} GB/s ({:.2}x)",
        gb / shm.as_secs_f64(),
        gb / memcpy.as_secs_f64(),
        memcpy.as_secs_f64() / shm.as_secs_f64()
    );
    drop(arr);

    // Cross-process queue: 1 producer -> 1 consumer, then 2 -> 2.
    for (producers, consumers) in [(1, 1), (2, 2)] {
        let q: Queue<(u32, u64)> = Queue::new_in(&arena, 256 * 1024).unwrap();
        let total: u64 = 2_000_000;
        let hex = |q: &Queue<(u32, u64)>| {
            postcard::to_allocvec(q).unwrap().iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let t = Instant::now();
        let mut kids = Vec::new();
        for _ in 0..consumers {
            kids.push(spawn("consumer", &hex(&q), total / consumers));
        }
        for _ in 0..producers {
            kids.push(spawn("producer", &hex(&q), total / producers));
        }
        for k in &mut kids {
            assert!(k.wait().unwrap().success());
        }
        let d = t.elapsed();
        println!(
            "Queue {producers}P/{consumers}C across processes: {:.2} M msgs/s ({total} msgs in {d:?}, incl. process start)",
            total as f64 / d.as_secs_f64() / 1e6
        );
    }
}

fn spawn(role: &str, hex: &str, n: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([role, hex, &n.to_string()])
        .stdout(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn child(role: &str, hex: &str, n: u64) {
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let q: Queue<(u32, u64)> = postcard::from_bytes(&bytes).unwrap();
    if role == "producer" {
        for i in 0..n {
            q.put(&(7, i), None).unwrap();
        }
    } else {
        for _ in 0..n {
            black_box(q.get(None).unwrap());
        }
    }
}
