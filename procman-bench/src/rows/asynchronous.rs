//! The `async` rows: an async proxy call (one task awaiting calls one after the other) beside
//! the blocking call to the same manager, with the fast path and with it off; and 1,000
//! concurrent async callers beside 64 blocking threads, calls per second.

use super::bench_manager::BenchManager;
use crate::measure::{Scale, per_op, progress};
use crate::table::{Bar, Fig, Key, Row, Table};
use procman::Transport;
use procman::prelude::*;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The `async` rows.
pub(crate) fn rows(scale: Scale, table: &mut Table) {
    for (transport, key, name) in [
        (Transport::SharedMemory, Key::AsyncCall, "fast path"),
        (Transport::Socket, Key::AsyncCallSocket, "fast path off (Transport::Socket)"),
    ] {
        progress(&format!("async proxy call vs blocking, {name}"));
        let (procman, baseline) = match call_figures(scale, transport) {
            Ok((a, b)) => (Ok(Fig::PerOp(a)), Ok(Fig::PerOp(b))),
            Err(e) => (Err(e.clone()), Err(e)),
        };
        table.push(Row::new(
            key,
            format!("async proxy call round trip, one task, {name} (baseline: the blocking call)"),
            procman,
            baseline,
            Bar::CostAtMost(1.5),
        ));
    }
    progress("1,000 async callers vs 64 blocking threads, one process");
    let (procman, baseline) = match many_figures(scale) {
        Ok((a, b)) => (Ok(Fig::Rate(a, "calls")), Ok(Fig::Rate(b, "calls"))),
        Err(e) => (Err(e.clone()), Err(e)),
    };
    table.push(Row::new(
        Key::AsyncMany,
        "1,000 concurrent async callers on 2 runtime threads (baseline: 64 blocking threads), one process",
        procman,
        baseline,
        Bar::None,
    ));
}

/// Seconds per call: async (awaited one after the other on a current-thread runtime) and
/// blocking, interleaved in short rounds, the best round of each.
fn call_figures(scale: Scale, transport: Transport) -> Result<(f64, f64), String> {
    let m = BenchManager::new().transport(transport).start().map_err(err)?;
    let c = m.counter(0).map_err(err)?;
    let a = c.clone().into_async();
    let rt = tokio::runtime::Builder::new_current_thread().build().map_err(err)?;
    let (rounds, n) = (scale.n(12, 4), scale.n(5_000, 1_000));
    let (mut best_async, mut best_blocking) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        best_blocking = best_blocking.min(per_op(n / 10, n, || {
            black_box(c.incr(black_box(1)).expect("incr"));
        }));
        best_async = best_async.min(rt.block_on(async {
            for _ in 0..n / 10 {
                black_box(a.incr(black_box(1)).await.expect("incr"));
            }
            let t = Instant::now();
            for _ in 0..n {
                black_box(a.incr(black_box(1)).await.expect("incr"));
            }
            t.elapsed().as_secs_f64() / n as f64
        }));
    }
    drop((a, c));
    let _ = m.shutdown();
    Ok((best_async, best_blocking))
}

/// Calls per second of 1,000 tasks on a 2-thread runtime, and of 64 threads, each calling
/// `incr` for a window of 2 s (1 s with `--quick`), one after the other on one manager.
fn many_figures(scale: Scale) -> Result<(f64, f64), String> {
    let m = BenchManager::new().start().map_err(err)?;
    let c = m.counter(0).map_err(err)?;
    let window = Duration::from_secs(scale.n(2, 1) as u64);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(err)?;
    let a = c.clone().into_async();
    let total = Arc::new(AtomicU64::new(0));
    let async_rate = rt.block_on(async {
        a.incr(0).await.expect("warm-up call");
        let end = Instant::now() + window;
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let (a, total) = (a.clone(), total.clone());
                tokio::spawn(async move {
                    let mut n = 0;
                    while Instant::now() < end {
                        a.incr(1).await.expect("call");
                        n += 1;
                    }
                    total.fetch_add(n, Ordering::Relaxed);
                })
            })
            .collect();
        let t = Instant::now();
        for t in tasks {
            t.await.expect("a task");
        }
        total.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
    });
    drop(rt);
    let total = AtomicU64::new(0);
    let end = Instant::now() + Duration::from_millis(200) + window;
    let start = end - window;
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                c.incr(0).expect("warm-up call");
                std::thread::sleep(start.saturating_duration_since(Instant::now()));
                let mut n = 0;
                while Instant::now() < end {
                    c.incr(1).expect("call");
                    n += 1;
                }
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    let blocking_rate = total.load(Ordering::Relaxed) as f64 / window.as_secs_f64();
    drop((a, c));
    let _ = m.shutdown();
    Ok((async_rate, blocking_rate))
}
