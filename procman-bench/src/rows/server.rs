//! The server itself: `start`, from `start()` to the first answered call, and `memory`, its
//! resident memory per live object.

use super::bench_manager::BenchManager;
use crate::measure::{BoxResult, Scale, err, progress};
use crate::python::{self, Python};
use crate::table::{Bar, Fig, Key, Row, Table};
use std::time::Instant;

pub(crate) fn start_row(scale: Scale, python: &Python, table: &mut Table) {
    progress("start() to first call");
    table.push(Row::new(
        Key::StartToFirstCall,
        "start() to first answered call (baseline: Python's start())",
        start_to_first_call(scale).map(Fig::Ms).map_err(err),
        python.get(python::START).map(Fig::Ms),
        Bar::AbsMsAtMost(20.0),
    ));
}

pub(crate) fn memory_row(table: &mut Table) {
    progress("memory per live object at 100,000 objects");
    table.push(Row::new(
        Key::MemoryPerObject,
        "server memory per live object, 100,000 Counters",
        memory_per_object(100_000).map(Fig::BytesEach).map_err(err),
        Err("—".into()),
        Bar::None,
    ));
}

/// Milliseconds from `start()` to the first answered call (object creation included); the
/// median of a few runs.
fn start_to_first_call(scale: Scale) -> BoxResult<f64> {
    let mut times = Vec::new();
    for _ in 0..scale.n(7, 3) {
        let t = Instant::now();
        let m = BenchManager::new().start()?;
        let c = m.counter(0)?;
        c.incr(1)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        drop(c);
        m.shutdown()?;
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn rss_kb(pid: u32) -> BoxResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS line")?;
    Ok(line.split_whitespace().nth(1).ok_or("malformed VmRSS line")?.parse()?)
}

/// Bytes of the server's resident memory per live object, at `n` objects.
fn memory_per_object(n: usize) -> BoxResult<f64> {
    let m = BenchManager::new().start()?;
    let pid = m.pid().ok_or("the manager has no pid")?;
    let first = m.counter(0)?;
    first.incr(1)?;
    let before = rss_kb(pid)?;
    let mut proxies = Vec::with_capacity(n);
    for _ in 0..n {
        proxies.push(m.counter(0)?);
    }
    first.incr(1)?;
    let after = rss_kb(pid)?;
    let live = m.number_of_objects()?;
    if live != n + 1 {
        return Err(format!("the server holds {live} objects, not {}", n + 1).into());
    }
    drop(proxies);
    drop(first);
    m.shutdown()?;
    Ok(after.saturating_sub(before) as f64 * 1024.0 / n as f64)
}
