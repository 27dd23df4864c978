//! The rows of one running manager: `manager` (create + drop, dict, Lock, Namespace),
//! `queue` (a manager Queue across processes, with the same-host fast path and with it off; and
//! a round trip through a user type whose methods wait for each other) and
//! `clients` (64 client threads in 4 processes, fast path on and off: calls per second, and CPU
//! time per call beside one client's).

use super::bench_manager::{BenchManager, CounterProxy, MailboxProxy};
use crate::measure::{BoxResult, Scale, err, now_ns, per_op, progress};
use crate::python::{self, Python};
use crate::table::{Bar, Fig, Key, Row, Table};
use procman::Transport;
use procman::prelude::*;
use procman::sync::QueueProxy;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The rows of the groups among `manager`, `queue` and `clients` for which `runs` is true.
pub(crate) fn rows(scale: Scale, python: &Python, table: &mut Table, runs: impl Fn(&str) -> bool) {
    let m = match BenchManager::new().start() {
        Ok(m) => m,
        Err(e) => {
            progress(&format!("cannot start a manager: {e}"));
            return;
        }
    };
    if runs("manager") {
        progress("manager objects: create+drop, Queue, dict, Lock, Namespace");
        table.push(Row::new(
            Key::CreateDrop,
            "create + drop a proxy",
            create_drop(scale, &m).map(|t| Fig::Rate(1.0 / t, "ops")).map_err(err),
            python.rate(python::CREATE_DROP, "ops"),
            Bar::RateAtLeast(20.0),
        ));
    }
    if runs("manager") || runs("queue") {
        table.push(Row::new(
            Key::ManagerQueue,
            "manager Queue put -> get across processes (baseline: Python's manager Queue)",
            manager_queue(scale, &m).map(|r| Fig::Rate(r, "msgs")).map_err(err),
            python.rate(python::MANAGER_QUEUE, "msgs"),
            Bar::RateAtLeast(40.0),
        ));
        progress("manager Queue with the fast path off (Transport::Socket)");
        let socket = BenchManager::new().transport(Transport::Socket).start().map_err(err).and_then(|s| {
            let r = manager_queue(scale, &s).map_err(err);
            let _ = s.shutdown();
            r
        });
        table.push(Row::new(
            Key::ManagerQueueSocket,
            "manager Queue put -> get across processes, fast path off (Transport::Socket) (baseline: Python's)",
            socket.map(|r| Fig::Rate(r, "msgs")),
            python.rate(python::MANAGER_QUEUE, "msgs"),
            Bar::None,
        ));
        progress("a user type whose callers wait for each other inside its methods");
        let (fast, socket) = match mailbox_round_trips(scale) {
            Ok((fast, socket)) => (Ok(Fig::PerOp(fast)), Ok(Fig::PerOp(socket))),
            Err(e) => (Err(err(e)), Err("—".into())),
        };
        table.push(Row::new(
            Key::UserBlocking,
            "user type whose methods wait for each other (a Mailbox on its own Condvar), round trip \
             between two processes (baseline: fast path off, Transport::Socket)",
            fast,
            socket,
            Bar::None,
        ));
        progress("a get blocked while the producer calls hot: put -> get latency");
        let (fast, socket) = match woken_get_p99(scale) {
            Ok((fast, socket)) => (Ok(Fig::PerOp(fast)), Ok(Fig::PerOp(socket))),
            Err(e) => (Err(err(e)), Err("—".into())),
        };
        table.push(Row::new(
            Key::WokenGetP99,
            "put -> get latency, 99th percentile, to a consumer process blocked in get while the \
             producer calls hot between puts (baseline: fast path off, Transport::Socket)",
            fast,
            socket,
            Bar::None,
        ));
        // Each `get` is one synchronous round trip, so a consumer gets about one message per raw
        // round trip (measured earlier in the run): the row shows that rate beside Python's.
        let reference = table
            .get(Key::UnixCall)
            .and_then(|r| r.baseline.clone().ok())
            .map(|rtt| Fig::Rate(1.0 / rtt.value(), "msgs"))
            .ok_or_else(|| "needs the ping-pong row".to_string());
        table.push(Row::new(
            Key::QueueReference,
            "reference: one get per raw Unix round trip, 1 / RTT (baseline: Python's Queue)",
            reference,
            python.rate(python::MANAGER_QUEUE, "msgs"),
            Bar::None,
        ));
    }
    if runs("manager") {
        let rates = proxy_rates(scale, &m).map_err(err);
        for (i, (key, name, label)) in [
            (Key::DictInsert, "dict proxy insert (d['k'] = 1)", python::DICT_INSERT),
            (Key::DictGet, "dict proxy get (d['k'])", python::DICT_GET),
            (Key::ManagerLock, "manager Lock acquire + release", python::LOCK),
            (Key::NamespaceGet, "Namespace proxy get (ns.x)", python::NAMESPACE_GET),
        ]
        .into_iter()
        .enumerate()
        {
            let fig = rates.as_ref().map(|v| Fig::Rate(v[i], "ops")).map_err(Clone::clone);
            table.push(Row::new(key, name, fig, python.rate(label, "ops"), Bar::None));
        }
    }
    if runs("clients") {
        clients_rows(scale, table);
    }
    let _ = m.shutdown();
}

/// Seconds per creation and drop of a `Counter`'s proxy.
fn create_drop(scale: Scale, m: &BenchManager) -> BoxResult<f64> {
    let n = scale.n(5_000, 1_000);
    let mut failed = None;
    let t = per_op(n / 10, n, || match m.counter(0) {
        Ok(p) => drop(black_box(p)),
        Err(e) => failed = Some(e),
    });
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(t),
    }
}

fn manager_queue_consumer((q, n): (QueueProxy<u64>, u64)) -> u64 {
    (0..n).fold(0u64, |s, _| s.wrapping_add(q.get().expect("get")))
}

/// Messages per second from this process's `put`s to a consumer process's `get`s: the best of
/// a few rounds, each with a new consumer.
fn manager_queue(scale: Scale, m: &BenchManager) -> BoxResult<f64> {
    let n = scale.n(20_000, 5_000) as u64;
    let q = m.queue::<u64>(0)?;
    let mut best = 0f64;
    for _ in 0..scale.n(3, 1) {
        let consumer = Process::spawn(manager_queue_consumer, (q.clone(), n + 1))?;
        q.put(0)?; // the consumer is running once this one is taken
        let deadline = Instant::now() + Duration::from_secs(10);
        while q.qsize()? > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(500));
        }
        let t = Instant::now();
        for i in 0..n {
            q.put(i)?;
        }
        let sum = consumer.join()?;
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(sum, n * (n - 1) / 2, "the consumer got every message");
        best = best.max(n as f64 / dt);
    }
    Ok(best)
}

/// In a child process: `n` round trips, each a put into `ping` and a take from `pong`.
fn mailbox_ping_pong((ping, pong, n): (MailboxProxy, MailboxProxy, u64)) -> u64 {
    (0..n).fold(0u64, |s, i| {
        ping.put(i).expect("put");
        s.wrapping_add(pong.take().expect("take"))
    })
}

/// Seconds per round trip between this process and a child through two mailboxes, whose
/// `take` waits inside the method (on the mailbox's own `Condvar`, unseen by procman): with
/// the fast path, whose serving slots must notice such a wait to pass the slot on, and with
/// `Transport::Socket`, which has no slots; the best of a few rounds of each, in turn.
fn mailbox_round_trips(scale: Scale) -> BoxResult<(f64, f64)> {
    let fast = BenchManager::new().start()?;
    let socket = BenchManager::new().transport(Transport::Socket).start()?;
    let boxes = [(fast.mailbox()?, fast.mailbox()?), (socket.mailbox()?, socket.mailbox()?)];
    let n = scale.n(1_000, 200) as u64;
    let mut best = [f64::MAX; 2];
    for _ in 0..scale.n(3, 1) {
        for (i, (ping, pong)) in boxes.iter().enumerate() {
            let child = Process::spawn(mailbox_ping_pong, (ping.clone(), pong.clone(), n))?;
            // The first round trip waits for the child to start; the clock starts after it.
            pong.put(ping.take()?)?;
            let t = Instant::now();
            for _ in 1..n {
                pong.put(ping.take()?)?;
            }
            let dt = t.elapsed().as_secs_f64();
            assert_eq!(child.join()?, n * (n - 1) / 2, "the child got every message back");
            best[i] = best[i].min(dt / (n - 1) as f64);
        }
    }
    drop(boxes);
    fast.shutdown()?;
    socket.shutdown()?;
    Ok((best[0], best[1]))
}

/// In a child process: takes `n` items, each the time it was put at, and returns how long
/// after its `put` each `get` returned (ns).
fn woken_get_consumer((q, n): (QueueProxy<u64>, u64)) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let put_at = q.get().expect("get");
            now_ns().saturating_sub(put_at)
        })
        .collect()
}

/// The 99th percentile of the time from a `put` to the `get` it satisfies, in seconds, with
/// the fast path and with `Transport::Socket`: a consumer process waits in `get` while this
/// process calls a counter without a pause between its puts (a hot pair on the cores the
/// consumer's threads must be woken onto).
fn woken_get_p99(scale: Scale) -> BoxResult<(f64, f64)> {
    let (n, hot) = (scale.n(300, 100) as u64, Duration::from_millis(scale.n(3, 1) as u64));
    let mut p99 = [0.0; 2];
    for (i, transport) in [Transport::SharedMemory, Transport::Socket].into_iter().enumerate() {
        let m = BenchManager::new().transport(transport).start()?;
        let (q, c) = (m.queue::<u64>(0)?, m.counter(0)?);
        let consumer = Process::spawn(woken_get_consumer, (q.clone(), n + 1))?;
        q.put(now_ns())?; // the consumer is running once this one is taken
        let deadline = Instant::now() + Duration::from_secs(10);
        while q.qsize()? > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(500));
        }
        for _ in 0..n {
            let until = Instant::now() + hot;
            while Instant::now() < until {
                black_box(c.incr(1)?);
            }
            q.put(now_ns())?;
        }
        let mut latencies = consumer.join()?;
        latencies.remove(0);
        latencies.sort_unstable();
        p99[i] = latencies[(latencies.len() - 1) * 99 / 100] as f64 * 1e-9;
        drop((q, c));
        m.shutdown()?;
    }
    Ok((p99[0], p99[1]))
}

/// procman's figures for Python's other proxy rows, in operations per second: dict set, dict
/// get, Lock, Namespace.
fn proxy_rates(scale: Scale, m: &BenchManager) -> BoxResult<[f64; 4]> {
    let n = scale.n(20_000, 5_000);
    let d = m.dict::<String, i64>()?;
    let key = "k".to_string();
    let set = per_op(n / 10, n, || {
        d.insert(key.clone(), 1).expect("insert");
    });
    let get = per_op(n / 10, n, || {
        black_box(d.get(&key).expect("get"));
    });
    let lk = m.lock()?;
    let lock = per_op(n / 20, n / 2, || {
        lk.acquire(true, None).expect("acquire");
        lk.release().expect("release");
    });
    let ns = m.namespace()?;
    ns.set("x", &0i64)?;
    let nsget = per_op(n / 10, n, || {
        black_box(ns.get::<i64>("x").expect("ns.x"));
    });
    Ok([1.0 / set, 1.0 / get, 1.0 / lock, 1.0 / nsget])
}

/// The `clients` rows: 64 client threads in 4 processes against one manager, with the fast
/// path and with it off (`Transport::Socket`): calls per second, and CPU seconds per call (of
/// the client processes and the manager together) beside one client thread's in one process.
fn clients_rows(scale: Scale, table: &mut Table) {
    let mut figures = Vec::new();
    for transport in [Transport::SharedMemory, Transport::Socket] {
        let name = if transport == Transport::Socket { "off" } else { "on" };
        progress(&format!("many clients, fast path {name}: 64 threads in 4 processes, then 1 thread in 1 process"));
        figures.push(clients_figures(scale, transport));
    }
    let [fast, socket] = <[_; 2]>::try_from(figures).expect("two transports");
    let rate = |r: &Result<(Load, Load), String>| {
        r.as_ref().map(|(many, _)| Fig::Rate(many.rate, "calls")).map_err(Clone::clone)
    };
    table.push(Row::new(
        Key::ManyClients,
        "64 client threads in 4 processes, one manager, fast path (baseline: fast path off)",
        rate(&fast),
        rate(&socket),
        Bar::RateAtLeast(1.0),
    ));
    for (key, figures, name, bar) in [
        (Key::ClientsCpu, &fast, "fast path", Bar::CostAtMost(1.5)),
        (Key::ClientsCpuSocket, &socket, "fast path off (Transport::Socket)", Bar::None),
    ] {
        let (procman, baseline) = match figures {
            Ok((many, one)) => (Ok(Fig::PerOp(many.cpu_per_call)), Ok(Fig::PerOp(one.cpu_per_call))),
            Err(e) => (Err(e.clone()), Err(e.clone())),
        };
        table.push(Row::new(
            key,
            format!(
                "CPU time per call, clients + manager: 64 client threads in 4 processes, {name} (baseline: 1 client thread in 1 process)"
            ),
            procman,
            baseline,
            bar,
        ));
    }
}

/// What a run of client processes against one manager reached.
#[derive(Debug, Clone, Copy)]
struct Load {
    /// Calls per second.
    rate: f64,
    /// CPU seconds (user + system) of the client processes and the manager, per call.
    cpu_per_call: f64,
}

/// The figures of 64 client threads in 4 processes and of 1 thread in 1 process, against one
/// new manager with `transport`.
fn clients_figures(scale: Scale, transport: Transport) -> Result<(Load, Load), String> {
    let m = BenchManager::new().transport(transport).start().map_err(err)?;
    let out = many_clients(scale, &m, 4, 16).and_then(|many| Ok((many, many_clients(scale, &m, 1, 1)?)));
    let _ = m.shutdown();
    out.map_err(err)
}

/// One client process of the clients rows: `threads` threads calling `c.incr` from
/// `t0` to `t1` (nanoseconds since the epoch); returns the calls made and whether it was late.
fn client_process((c, threads, t0, t1): (CounterProxy, usize, u64, u64)) -> (u64, bool) {
    let late = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                c.incr(0).expect("warm-up call"); // opens this thread's connection
                let now = now_ns();
                if now < t0 {
                    std::thread::sleep(Duration::from_nanos(t0 - now));
                } else {
                    late.store(true, Ordering::Relaxed);
                }
                let mut n = 0;
                while now_ns() < t1 {
                    c.incr(1).expect("call");
                    n += 1;
                }
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    (total.load(Ordering::Relaxed), late.load(Ordering::Relaxed))
}

/// `threads` client threads in each of `procs` processes calling one manager for a window of
/// 3 s (1 s with `--quick`): calls per second, and the CPU time of the client processes and
/// the manager from the window's start to its end (`/proc/<pid>/stat`) per call.
fn many_clients(scale: Scale, m: &BenchManager, procs: usize, threads: usize) -> BoxResult<Load> {
    let server = m.pid().ok_or("the manager has no process id")?;
    let c = m.counter(0)?;
    let window = Duration::from_secs(scale.n(3, 1) as u64);
    let t0 = now_ns() + 1_500_000_000;
    let t1 = t0 + window.as_nanos() as u64;
    let children = (0..procs)
        .map(|_| Process::spawn(client_process, (c.clone(), threads, t0, t1)))
        .collect::<procman::Result<Vec<_>>>()?;
    let pids: Vec<u32> = std::iter::once(server).chain(children.iter().map(Process::pid)).collect();
    sleep_until(t0);
    let before = cpu_seconds(&pids);
    sleep_until(t1);
    let after = cpu_seconds(&pids);
    let mut calls = 0;
    for child in children {
        let (n, late) = child.join()?;
        if late {
            progress("warning: a client process started after the measuring window opened");
        }
        calls += n;
    }
    if calls == 0 {
        return Err("no call was made in the window".into());
    }
    let cpu = after? - before?;
    let load = Load { rate: calls as f64 / window.as_secs_f64(), cpu_per_call: cpu / calls as f64 };
    progress(&format!(
        "clients: {procs} x {threads} threads: {calls} calls in {:.1} s, {cpu:.2} CPU s",
        window.as_secs_f64()
    ));
    Ok(load)
}

fn sleep_until(t: u64) {
    let now = now_ns();
    if now < t {
        std::thread::sleep(Duration::from_nanos(t - now));
    }
}

/// The CPU seconds (user + system, all threads) that the processes `pids` have used so far:
/// fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks.
fn cpu_seconds(pids: &[u32]) -> Result<f64, String> {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return Err("no clock tick rate".into());
    }
    let mut total = 0u64;
    for pid in pids {
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
        // The fields after the command name (which may hold spaces), from field 3 on.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("a malformed /proc/<pid>/stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        for i in [14 - 3, 15 - 3] {
            total += fields.get(i).and_then(|f| f.parse::<u64>().ok()).ok_or("a malformed /proc/<pid>/stat")?;
        }
    }
    Ok(total as f64 / ticks as f64)
}
