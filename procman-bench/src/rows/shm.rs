//! The `shm` rows: LocalManager's shared-memory objects (procman-shm) beside their floors.

use crate::floors;
use crate::measure::{BoxResult, Scale, best_of, err, interleaved, per_op, progress};
use crate::python::{self, Python};
use crate::table::{Bar, Fig, Key, Row, Table};
use procman::LocalManager;
use procman::prelude::*;
use procman::shm::Queue as ShmQueue;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

pub(crate) fn rows(scale: Scale, python: &Python, table: &mut Table) {
    progress("shared memory: Queue, SharedValue, Lock, SharedArray");
    table.push(Row::new(
        Key::ShmQueue,
        "LocalManager Queue across processes, u64 (baseline: Python's mp.Queue)",
        shm_queue(scale).map(|r| Fig::Rate(r, "msgs")).map_err(err),
        python.rate(python::PIPE_QUEUE, "msgs"),
        Bar::AbsRateAtLeast(1_000_000.0),
    ));
    table.push(per_op_row(
        Key::SharedValue,
        "SharedValue<u64> set + get vs raw atomic store + load",
        shm_value(scale),
        Bar::CostAtMost(3.0),
    ));
    table.push(per_op_row(
        Key::ShmLock,
        "shm Lock acquire + release (uncontended) vs raw compare-exchange pair",
        shm_lock(scale),
        Bar::CostAtMost(3.0),
    ));
    let arr = shm_array(scale).map_err(err);
    let bandwidth = |of: fn(&Bandwidths) -> f64| arr.as_ref().map(|a| Fig::Bandwidth(of(a))).map_err(Clone::clone);
    for (key, name, figure) in [
        (Key::ArrayReadInto, "SharedArray<f64> 8 MB read_into vs memcpy", bandwidth(|a| a.read_into)),
        (Key::ArrayCopyFromSlice, "SharedArray<f64> 8 MB copy_from_slice vs memcpy", bandwidth(|a| a.copy_from_slice)),
    ] {
        table.push(Row::new(key, name, figure, bandwidth(|a| a.memcpy), Bar::RateAtLeast(0.8)));
    }
}

/// A row of two figures measured together, in seconds per operation: procman's and its floor's.
fn per_op_row(key: Key, name: &str, measured: BoxResult<(f64, f64)>, bar: Bar) -> Row {
    let (procman, floor) = match measured {
        Ok((p, f)) => (Ok(Fig::PerOp(p)), Ok(Fig::PerOp(f))),
        Err(e) => {
            let e = err(e);
            (Err(e.clone()), Err(e))
        }
    };
    Row::new(key, name, procman, floor, bar)
}

fn shm_queue_consumer((q, n): (ShmQueue<u64>, u64)) -> u64 {
    (0..n).fold(0u64, |s, _| s.wrapping_add(q.get(None).expect("get")))
}

/// Messages per second through a shared-memory queue, from this process to a consumer process:
/// the best of a few rounds, each with a new consumer.
fn shm_queue(scale: Scale) -> BoxResult<f64> {
    let n = scale.n(1_000_000, 300_000) as u64;
    let lm = LocalManager::with_capacity(4 << 20)?;
    let q = lm.queue::<u64>(1 << 20)?;
    let mut best = 0f64;
    for _ in 0..scale.n(3, 1) {
        let consumer = Process::spawn(shm_queue_consumer, (q.clone(), n + 1))?;
        q.put(&0, None)?; // the consumer is running once this one is taken
        let deadline = Instant::now() + Duration::from_secs(10);
        while !q.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        let t = Instant::now();
        for i in 0..n {
            q.put(&i, None)?;
        }
        let sum = consumer.join()?;
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(sum, n * (n - 1) / 2, "the consumer got every message");
        best = best.max(n as f64 / dt);
    }
    Ok(best)
}

/// Seconds per `set` + `get` pair: `SharedValue<u64>`, and a raw atomic store (Release) + load
/// (Acquire).
fn shm_value(scale: Scale) -> BoxResult<(f64, f64)> {
    let lm = LocalManager::with_capacity(1 << 20)?;
    let v = lm.shared_value(0u64)?;
    let raw = Box::new(AtomicU64::new(0));
    let n = scale.n(4_000_000, 2_000_000);
    Ok(interleaved(
        scale.n(10, 4),
        || {
            let mut acc = 0u64;
            let t = per_op(n / 10, n, || {
                let v = black_box(&v);
                v.set(black_box(acc));
                acc = acc.wrapping_add(v.get()).wrapping_add(1);
            });
            black_box(acc);
            t
        },
        || floors::atomic_store_load(&raw, n),
    ))
}

/// Seconds per uncontended acquire + release: the shm Lock, and a raw compare-exchange pair.
fn shm_lock(scale: Scale) -> BoxResult<(f64, f64)> {
    let lm = LocalManager::with_capacity(1 << 20)?;
    let lock = lm.lock()?;
    let raw = Box::new(AtomicU32::new(0));
    let n = scale.n(1_000_000, 500_000);
    let mut failed = None;
    let r = interleaved(
        scale.n(10, 4),
        || {
            per_op(n / 10, n, || {
                let l = black_box(&lock);
                if let Err(e) = l.acquire(true, None).and_then(|_| l.release()) {
                    failed = Some(e);
                }
            })
        },
        || floors::compare_exchange_pair(&raw, n),
    );
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(r),
    }
}

/// Bytes per second of the SharedArray rows and of their floor.
struct Bandwidths {
    /// Copying out of a SharedArray (`read_into`).
    read_into: f64,
    /// Copying into a SharedArray (`copy_from_slice`).
    copy_from_slice: f64,
    /// A plain `memcpy` of the same size between private buffers.
    memcpy: f64,
}

/// Copying 1M f64 out of and into a SharedArray, and between private buffers.
fn shm_array(scale: Scale) -> BoxResult<Bandwidths> {
    const LEN: usize = 1 << 20;
    let bytes = (LEN * 8) as f64;
    let lm = LocalManager::with_capacity(32 << 20)?;
    let src: Vec<f64> = (0..LEN).map(|i| i as f64).collect();
    let arr = lm.shared_array(&src)?;
    let mut dst = vec![0f64; LEN];
    let (rounds, n) = (scale.n(5, 2), scale.n(20, 8));
    let mut failed = None;
    let read = best_of(rounds, || {
        per_op(2, n, || {
            if let Err(e) = arr.read_into(black_box(&mut dst)) {
                failed = Some(e);
            }
        })
    });
    let write = best_of(rounds, || {
        per_op(2, n, || {
            if let Err(e) = arr.copy_from_slice(black_box(&src)) {
                failed = Some(e);
            }
        })
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    let memcpy = floors::memcpy(&mut dst, &src, rounds, n);
    Ok(Bandwidths { read_into: bytes / read, copy_from_slice: bytes / write, memcpy: bytes / memcpy })
}
