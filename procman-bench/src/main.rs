//! The benchmark harness of procman: every figure beside its floor, measured in one run.
//!
//! ```sh
//! cargo run --release -p procman-bench              # full run (about a minute on 2 cores)
//! cargo run --release -p procman-bench -- --quick   # short run, noisier figures
//! ```
//!
//! Options: `--quick`; `--python <script>` (Python's figures, by default
//! `<workspace>/../shared/peers/python_managers_bench.py`); `--python-bin <interpreter>` (default
//! `python3`); `--no-python`; `--only <group>` (one group of rows, for profiling: `call`,
//! `manager`, `queue`, `clients`, `start`, `memory`, `shm`, `python`). Progress goes to stderr,
//! the results to stdout. The machine should be otherwise idle: on 2 cores, any other load
//! shows in the round-trip figures.
//!
//! It prints one markdown table, `| benchmark | procman | baseline | ratio | bar | met |`:
//!
//! - **procman**: the figure of procman's path; **baseline**: its floor measured in the same run
//!   (a raw socket ping-pong of the same sizes, a raw atomic, `memcpy`, a single client) or
//!   Python's figure from `python_managers_bench.py`, run as a subprocess;
//! - **ratio**: procman ÷ baseline in the row's unit: for a time (µs/op, ns/op, ms) it is how
//!   many times slower procman is (lower is better), for a rate (ops/s, msgs/s, GB/s) how many
//!   times faster (higher is better);
//! - **bar**: the bar of DESIGN.md's Performance table (absolute bars are in the row's unit);
//!   **met**: `yes`, or `no` with how far the figure is from the bar; `—` for rows without a bar.
//!
//! The last line is `bars met: X/Y`. Children (the manager servers, the peers of the raw
//! ping-pongs, the queue consumers and the client processes) are this binary, re-executed by
//! procman, which is why `procman::init()` is the first line of `main`.

use procman::LocalManager;
use procman::prelude::*;
use procman::shm::Queue as ShmQueue;
use procman::sync::QueueProxy;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

// ---------------------------------------------------------------------------------------------
// The objects the benchmark manager serves.

/// The object of the proxy-call rows: one word of state, one method.
#[derive(Shared, Debug, Default)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    /// Adds `by` and returns the new value.
    pub fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }
}

/// The manager of the benchmark: `Counter` plus every built-in type.
#[manager(sync)]
pub struct BenchManager;

#[manager]
impl BenchManager {
    /// A new counter.
    pub fn counter(start: i64) -> Counter {
        Counter { n: start }
    }
}

/// The frame sizes of a `Counter::incr(1)` call on the wire (4-byte length + postcard body):
/// the request `Call { id, method: "incr", args: (±1,) }` and the reply `Ok(0 or 1)` (checked
/// with strace). The raw ping-pongs send exactly these sizes.
const CALL_REQUEST_BYTES: usize = 13;
const CALL_REPLY_BYTES: usize = 7;

// ---------------------------------------------------------------------------------------------
// Settings and results.

#[derive(Debug)]
struct Config {
    quick: bool,
    python_script: Option<PathBuf>,
    python_bin: String,
    python: bool,
    only: Option<String>,
}

impl Config {
    fn from_args() -> Config {
        let mut c =
            Config { quick: false, python_script: None, python_bin: "python3".into(), python: true, only: None };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => c.quick = true,
                "--python" => c.python_script = args.next().map(PathBuf::from),
                "--python-bin" => c.python_bin = args.next().unwrap_or(c.python_bin),
                "--no-python" => c.python = false,
                "--only" => c.only = args.next(),
                "-h" | "--help" => {
                    println!(
                        "usage: procman-bench [--quick] [--python <script>] [--python-bin <interpreter>] [--no-python] [--only <group>]"
                    );
                    std::process::exit(0);
                }
                other => {
                    eprintln!("procman-bench: unknown argument {other:?} (try --help)");
                    std::process::exit(2);
                }
            }
        }
        c
    }

    /// Whether the group of rows `group` runs (`--only` runs one group: `call`, `manager`,
    /// `queue` (the manager Queue row alone), `clients`, `start`, `memory`, `shm`; `python` runs Python's script alone).
    fn runs(&self, group: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == group)
    }

    /// `full` iterations in a full run, `quick` with `--quick`.
    fn n(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

/// A measured figure, with its unit.
#[derive(Debug, Clone, Copy)]
enum Fig {
    /// Seconds per operation (shown in µs/op or ns/op).
    PerOp(f64),
    /// Operations per second, with the operation's name (`calls`, `msgs`, `ops`).
    Rate(f64, &'static str),
    /// Bytes per second (shown in GB/s).
    Bandwidth(f64),
    /// Milliseconds.
    Ms(f64),
    /// Bytes per object.
    BytesEach(f64),
}

impl Fig {
    /// The value, oriented so that `ratio` = procman ÷ baseline makes sense in the unit.
    fn value(self) -> f64 {
        match self {
            Fig::PerOp(v) | Fig::Rate(v, _) | Fig::Bandwidth(v) | Fig::Ms(v) | Fig::BytesEach(v) => v,
        }
    }

    fn show(self) -> String {
        match self {
            Fig::PerOp(s) if s < 1e-6 => format!("{:.1} ns/op", s * 1e9),
            Fig::PerOp(s) => format!("{:.2} µs/op", s * 1e6),
            Fig::Rate(r, what) => format!("{} {what}/s", thousands(r)),
            Fig::Bandwidth(b) => format!("{:.2} GB/s", b / 1e9),
            Fig::Ms(ms) => format!("{ms:.1} ms"),
            Fig::BytesEach(b) => format!("{b:.0} B/object"),
        }
    }
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The bar a row is held to.
#[derive(Debug, Clone, Copy)]
enum Bar {
    /// No bar: the row is for information.
    None,
    /// procman's cost at most this many times the baseline's.
    CostAtMost(f64),
    /// procman's rate at least this many times the baseline's.
    RateAtLeast(f64),
    /// procman's rate at least this many operations per second.
    AbsRateAtLeast(f64),
    /// procman's time at most this many milliseconds.
    AbsMsAtMost(f64),
}

#[derive(Debug)]
struct Row {
    name: String,
    procman: Result<Fig, String>,
    baseline: Result<Fig, String>,
    bar: Bar,
}

impl Row {
    fn new(name: impl Into<String>, procman: Result<Fig, String>, baseline: Result<Fig, String>, bar: Bar) -> Row {
        Row { name: name.into(), procman, baseline, bar }
    }

    fn ratio(&self) -> Option<f64> {
        match (&self.procman, &self.baseline) {
            (Ok(p), Ok(b)) if b.value() > 0.0 => Some(p.value() / b.value()),
            _ => None,
        }
    }

    fn bar_text(&self) -> String {
        match self.bar {
            Bar::None => "—".into(),
            Bar::CostAtMost(x) => format!("≤ {x}x"),
            Bar::RateAtLeast(x) => format!("≥ {x}x"),
            Bar::AbsRateAtLeast(v) => format!("≥ {} /s", thousands(v)),
            Bar::AbsMsAtMost(v) => format!("≤ {v} ms"),
        }
    }

    /// `None` for rows without a bar; otherwise whether it is met and the text to show.
    fn met(&self) -> Option<(bool, String)> {
        let not_measured = |e: &String| Some((false, format!("not measured ({e})")));
        let p = match (&self.bar, &self.procman) {
            (Bar::None, _) => return None,
            (_, Err(e)) => return not_measured(e),
            (_, Ok(p)) => p.value(),
        };
        match self.bar {
            Bar::None => None,
            Bar::CostAtMost(x) | Bar::RateAtLeast(x) => {
                let r = match (self.ratio(), &self.baseline) {
                    (Some(r), _) => r,
                    (None, Err(e)) => return not_measured(e),
                    (None, Ok(_)) => return not_measured(&"baseline is zero".to_string()),
                };
                if matches!(self.bar, Bar::CostAtMost(_)) {
                    Some(if r <= x {
                        (true, "yes".into())
                    } else {
                        (false, format!("no: {:.0}% over", (r / x - 1.0) * 100.0))
                    })
                } else {
                    Some(if r >= x {
                        (true, "yes".into())
                    } else {
                        (false, format!("no: {:.0}% short", (1.0 - r / x) * 100.0))
                    })
                }
            }
            Bar::AbsRateAtLeast(v) => Some(if p >= v {
                (true, "yes".into())
            } else {
                (false, format!("no: {:.0}% short", (1.0 - p / v) * 100.0))
            }),
            Bar::AbsMsAtMost(v) => Some(if p <= v {
                (true, "yes".into())
            } else {
                (false, format!("no: {:.0}% over", (p / v - 1.0) * 100.0))
            }),
        }
    }
}

fn show(f: &Result<Fig, String>) -> String {
    match f {
        Ok(f) => f.show(),
        Err(e) if e == "—" => e.clone(),
        Err(e) => format!("not measured ({e})"),
    }
}

fn print_table(rows: &[Row]) -> (usize, usize) {
    println!("| benchmark | procman | baseline | ratio | bar | met |");
    println!("| --- | ---: | ---: | ---: | --- | --- |");
    let (mut met, mut bars) = (0, 0);
    for r in rows {
        let ratio = r.ratio().map_or("—".into(), |x| if x >= 100.0 { format!("{x:.0}x") } else { format!("{x:.2}x") });
        let m = match r.met() {
            None => "—".to_string(),
            Some((ok, text)) => {
                bars += 1;
                met += usize::from(ok);
                text
            }
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            show(&r.procman),
            show(&r.baseline),
            ratio,
            r.bar_text(),
            m
        );
    }
    (met, bars)
}

fn progress(what: &str) {
    eprintln!("procman-bench: {what}");
}

// ---------------------------------------------------------------------------------------------
// Timing.

/// Runs `f` `warm` times, then `n` times, and returns seconds per run.
fn per_op(warm: usize, n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warm {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / n as f64
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

// ---------------------------------------------------------------------------------------------
// Python's figures.

/// Python's figures by label (the first 40 columns of each line of its output).
#[derive(Debug)]
struct Python {
    figures: Result<HashMap<String, f64>, String>,
}

impl Python {
    fn run(cfg: &Config) -> Python {
        Python { figures: Python::run_inner(cfg) }
    }

    fn run_inner(cfg: &Config) -> Result<HashMap<String, f64>, String> {
        if !cfg.python {
            return Err("--no-python".into());
        }
        let script = match &cfg.python_script {
            Some(p) => p.clone(),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/python_managers_bench.py"),
        };
        if !script.exists() {
            return Err(format!("{} is absent", script.display()));
        }
        let n = cfg.n(20_000, 5_000);
        progress(&format!("running {} {} {n} (Python's figures)", cfg.python_bin, script.display()));
        let mut child = Command::new(&cfg.python_bin)
            .arg(&script)
            .arg(n.to_string())
            .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{} not runnable: {e}", cfg.python_bin))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("Python's script took over 2 minutes".into());
                }
            }
        }
        let out = child.wait_with_output().map_err(err)?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!("Python's script failed: {}", stderr.lines().last().unwrap_or("")));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut figures = HashMap::new();
        for line in text.lines() {
            let (Some(label), Some(rest)) = (line.get(..40), line.get(40..)) else { continue };
            if let Some(v) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
                figures.insert(label.trim().to_string(), v);
            }
        }
        Ok(figures)
    }

    fn get(&self, label: &str) -> Result<f64, String> {
        match &self.figures {
            Ok(m) => m.get(label).copied().ok_or_else(|| format!("no {label:?} in Python's output")),
            Err(e) => Err(e.clone()),
        }
    }

    fn rate(&self, label: &str, what: &'static str) -> Result<Fig, String> {
        self.get(label).map(|v| Fig::Rate(v, what))
    }
}

// ---------------------------------------------------------------------------------------------
// Raw socket ping-pong: the floor of a proxy call.

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Net {
    Unix,
    Tcp,
}

trait Duplex: Read + Write {}
impl<T: Read + Write> Duplex for T {}

/// The peer process of a raw ping-pong: connects to `addr`, answers every `req`-byte message
/// with a `rep`-byte one until the connection closes; returns how many it answered.
fn echo_peer((net, addr, req, rep): (Net, String, usize, usize)) -> u64 {
    let mut s: Box<dyn Duplex> = match net {
        Net::Unix => {
            let sa = UnixAddr::from_abstract_name(addr.as_bytes()).expect("abstract address");
            Box::new(UnixStream::connect_addr(&sa).expect("connect to the harness"))
        }
        Net::Tcp => {
            let s = TcpStream::connect(&addr).expect("connect to the harness");
            s.set_nodelay(true).expect("nodelay");
            Box::new(s)
        }
    };
    let mut rb = vec![0u8; req];
    let wb = vec![7u8; rep];
    let mut n = 0;
    while s.read_exact(&mut rb).is_ok() {
        if s.write_all(&wb).is_err() {
            break;
        }
        n += 1;
    }
    n
}

/// A connected raw peer process.
struct RawPeer {
    stream: Box<dyn Duplex>,
    process: Process<u64>,
    req: Vec<u8>,
    rep: Vec<u8>,
}

impl RawPeer {
    fn start(net: Net) -> BoxResult<RawPeer> {
        let (stream, process): (Box<dyn Duplex>, Process<u64>) = match net {
            Net::Unix => {
                let name = format!("procman-bench-{}-{}", std::process::id(), now_ns());
                let l = UnixListener::bind_addr(&UnixAddr::from_abstract_name(name.as_bytes())?)?;
                l.set_nonblocking(true)?;
                let p = Process::spawn(echo_peer, (net, name, CALL_REQUEST_BYTES, CALL_REPLY_BYTES))?;
                let s = accept_within(|| l.accept().map(|(s, _)| s))?;
                s.set_nonblocking(false)?;
                (Box::new(s), p)
            }
            Net::Tcp => {
                let l = TcpListener::bind("127.0.0.1:0")?;
                l.set_nonblocking(true)?;
                let addr = l.local_addr()?.to_string();
                let p = Process::spawn(echo_peer, (net, addr, CALL_REQUEST_BYTES, CALL_REPLY_BYTES))?;
                let s = accept_within(|| l.accept().map(|(s, _)| s))?;
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
                (Box::new(s), p)
            }
        };
        Ok(RawPeer { stream, process, req: vec![1; CALL_REQUEST_BYTES], rep: vec![0; CALL_REPLY_BYTES] })
    }

    fn round_trip(&mut self) {
        self.stream.write_all(&self.req).expect("raw write");
        self.stream.read_exact(&mut self.rep).expect("raw read");
    }

    fn finish(self) -> BoxResult<u64> {
        drop(self.stream);
        Ok(self.process.join()?)
    }
}

fn accept_within<S>(mut accept: impl FnMut() -> std::io::Result<S>) -> BoxResult<S> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match accept() {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A proxy call and a raw ping-pong of the same sizes over `net`, interleaved in short rounds so
/// that both see the same disturbances from the rest of the machine; the best round of each.
fn call_vs_raw(cfg: &Config, net: Net) -> BoxResult<(f64, f64)> {
    let m = match net {
        Net::Unix => BenchManager::new().start()?,
        Net::Tcp => BenchManager::new().address("127.0.0.1:0").start()?,
    };
    let c = m.counter(0)?;
    let mut raw = RawPeer::start(net)?;
    let (rounds, n) = (cfg.n(12, 4), cfg.n(5_000, 2_500));
    let (mut best_call, mut best_raw) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        best_raw = best_raw.min(per_op(n / 10, n, || raw.round_trip()));
        // +1 and -1 in turn: the counter stays at 0 or 1, so every reply has the same size.
        let mut by = 1;
        best_call = best_call.min(per_op(n / 10, n, || {
            black_box(c.incr(black_box(by)).expect("incr"));
            by = -by;
        }));
    }
    raw.finish()?;
    drop(c);
    m.shutdown()?;
    Ok((best_call, best_raw))
}

// ---------------------------------------------------------------------------------------------
// Manager objects.

fn create_drop(cfg: &Config, m: &BenchManager) -> BoxResult<f64> {
    let n = cfg.n(5_000, 1_000);
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
fn manager_queue(cfg: &Config, m: &BenchManager) -> BoxResult<f64> {
    let n = cfg.n(20_000, 5_000) as u64;
    let q = m.queue::<u64>(0)?;
    let mut best = 0f64;
    for _ in 0..cfg.n(3, 1) {
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

/// procman's figures for Python's other proxy rows: dict set, dict get, Lock, Namespace.
fn python_like_rows(cfg: &Config, m: &BenchManager) -> BoxResult<[f64; 4]> {
    let n = cfg.n(20_000, 5_000);
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

/// Milliseconds from `start()` to the first answered call (object creation included); the
/// median of a few runs.
fn start_to_first_call(cfg: &Config) -> BoxResult<f64> {
    let mut times = Vec::new();
    for _ in 0..cfg.n(7, 3) {
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

/// One client process of the many-clients row: `threads` threads calling `c.incr` from
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

/// Calls per second of 64 client threads in 4 processes calling one server.
fn many_clients(cfg: &Config, m: &BenchManager) -> BoxResult<f64> {
    let (procs, threads) = (4, 16);
    let c = m.counter(0)?;
    let window = Duration::from_secs(cfg.n(3, 1) as u64);
    let t0 = now_ns() + 1_500_000_000;
    let t1 = t0 + window.as_nanos() as u64;
    let children = (0..procs)
        .map(|_| Process::spawn(client_process, (c.clone(), threads, t0, t1)))
        .collect::<procman::Result<Vec<_>>>()?;
    let mut calls = 0;
    for child in children {
        let (n, late) = child.join()?;
        if late {
            progress("warning: a client process started after the measuring window opened");
        }
        calls += n;
    }
    Ok(calls as f64 / window.as_secs_f64())
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

// ---------------------------------------------------------------------------------------------
// Shared memory: LocalManager's objects (procman-shm).

fn shm_queue_consumer((q, n): (ShmQueue<u64>, u64)) -> u64 {
    (0..n).fold(0u64, |s, _| s.wrapping_add(q.get(None).expect("get")))
}

/// Messages per second through a shared-memory queue, from this process to a consumer process:
/// the best of a few rounds, each with a new consumer.
fn shm_queue(cfg: &Config) -> BoxResult<f64> {
    let n = cfg.n(1_000_000, 300_000) as u64;
    let lm = LocalManager::with_capacity(4 << 20)?;
    let q = lm.queue::<u64>(1 << 20)?;
    let mut best = 0f64;
    for _ in 0..cfg.n(3, 1) {
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

/// Best of `rounds` of `f`, which returns seconds per operation.
fn best_of(rounds: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..rounds).map(|_| f()).fold(f64::MAX, f64::min)
}

/// The best of `rounds` rounds of `procman` and of `floor` (seconds per operation), run in
/// turn so that both see the same state of the machine (frequency, other load).
fn interleaved(rounds: usize, mut procman: impl FnMut() -> f64, mut floor: impl FnMut() -> f64) -> (f64, f64) {
    (0..rounds).fold((f64::MAX, f64::MAX), |(p, f), _| (p.min(procman()), f.min(floor())))
}

/// Seconds per `set` + `get` pair: `SharedValue<u64>`, and a raw atomic store (Release) + load
/// (Acquire).
fn shm_value(cfg: &Config) -> BoxResult<(f64, f64)> {
    let lm = LocalManager::with_capacity(1 << 20)?;
    let v = lm.shared_value(0u64)?;
    let raw = Box::new(AtomicU64::new(0));
    let n = cfg.n(4_000_000, 2_000_000);
    Ok(interleaved(
        cfg.n(10, 4),
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
        || {
            let mut acc = 0u64;
            let t = per_op(n / 10, n, || {
                let a = black_box(&*raw);
                a.store(black_box(acc), Ordering::Release);
                acc = acc.wrapping_add(a.load(Ordering::Acquire)).wrapping_add(1);
            });
            black_box(acc);
            t
        },
    ))
}

/// Seconds per uncontended acquire + release: the shm Lock, and a raw compare-exchange pair.
fn shm_lock(cfg: &Config) -> BoxResult<(f64, f64)> {
    let lm = LocalManager::with_capacity(1 << 20)?;
    let lock = lm.lock()?;
    let raw = Box::new(AtomicU32::new(0));
    let n = cfg.n(1_000_000, 500_000);
    let mut failed = None;
    let r = interleaved(
        cfg.n(10, 4),
        || {
            per_op(n / 10, n, || {
                let l = black_box(&lock);
                if let Err(e) = l.acquire(true, None).and_then(|_| l.release()) {
                    failed = Some(e);
                }
            })
        },
        || {
            per_op(n / 10, n, || {
                let a = black_box(&*raw);
                let _ = black_box(a.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed));
                let _ = black_box(a.compare_exchange(1, 0, Ordering::Release, Ordering::Relaxed));
            })
        },
    );
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(r),
    }
}

/// Bytes per second copying 1M f64 out of (`read_into`) and into (`copy_from_slice`) a
/// SharedArray, and of a plain `memcpy` of the same size between private buffers.
fn shm_array(cfg: &Config) -> BoxResult<(f64, f64, f64)> {
    const LEN: usize = 1 << 20;
    let bytes = (LEN * 8) as f64;
    let lm = LocalManager::with_capacity(32 << 20)?;
    let src: Vec<f64> = (0..LEN).map(|i| i as f64).collect();
    let arr = lm.shared_array(&src)?;
    let mut dst = vec![0f64; LEN];
    let (rounds, n) = (cfg.n(5, 2), cfg.n(20, 8));
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
    let memcpy = best_of(rounds, || {
        per_op(2, n, || {
            black_box(&mut dst).copy_from_slice(black_box(&src));
        })
    });
    Ok((bytes / read, bytes / write, bytes / memcpy))
}

// ---------------------------------------------------------------------------------------------

fn main() {
    procman::init();
    let cfg = Config::from_args();
    let started = Instant::now();
    let python = if cfg.only.is_none() || cfg.runs("python") {
        Python::run(&cfg)
    } else {
        Python { figures: Err("--only".into()) }
    };
    let mut rows = Vec::new();
    if cfg.runs("call") {
        call_rows(&cfg, &python, &mut rows);
    }
    if cfg.runs("manager") || cfg.runs("queue") || cfg.runs("clients") {
        manager_rows(&cfg, &python, &mut rows);
    }
    if cfg.runs("start") {
        progress("start() to first call");
        rows.push(Row::new(
            "start() to first answered call (baseline: Python's start())",
            start_to_first_call(&cfg).map(Fig::Ms).map_err(err),
            python.get("manager start()").map(Fig::Ms),
            Bar::AbsMsAtMost(20.0),
        ));
    }
    if cfg.runs("memory") {
        progress("memory per live object at 100,000 objects");
        rows.push(Row::new(
            "server memory per live object, 100,000 Counters",
            memory_per_object(100_000).map(Fig::BytesEach).map_err(err),
            Err("—".into()),
            Bar::None,
        ));
    }
    if cfg.runs("shm") {
        shm_rows(&cfg, &python, &mut rows);
    }
    if cfg.only.as_deref() == Some("python") {
        println!("{:#?}", python.figures);
    }

    let secs = started.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("procman-bench ({} run, {cores} cores, {secs:.1} s)", if cfg.quick { "quick" } else { "full" });
    println!();
    let (met, bars) = print_table(&rows);
    println!();
    println!("bars met: {met}/{bars}");
}

fn call_rows(cfg: &Config, python: &Python, rows: &mut Vec<Row>) {
    for (net, name) in [(Net::Unix, "Unix socket"), (Net::Tcp, "TCP loopback")] {
        progress(&format!("proxy call vs raw ping-pong over {name}"));
        let label =
            format!("proxy call round trip vs raw {name} ping-pong ({CALL_REQUEST_BYTES} B / {CALL_REPLY_BYTES} B)");
        let bar = if net == Net::Unix { Bar::CostAtMost(1.3) } else { Bar::None };
        match call_vs_raw(cfg, net) {
            Ok((call, raw)) => {
                rows.push(Row::new(label, Ok(Fig::PerOp(call)), Ok(Fig::PerOp(raw)), bar));
                if net == Net::Unix {
                    rows.push(Row::new(
                        "proxy call vs Python's proxy call (calls/s)",
                        Ok(Fig::Rate(1.0 / call, "calls")),
                        python.rate("custom proxy call incr()", "calls"),
                        Bar::RateAtLeast(3.0),
                    ));
                }
            }
            Err(e) => rows.push(Row::new(label, Err(err(e)), Err("—".into()), bar)),
        }
    }
}

fn manager_rows(cfg: &Config, python: &Python, rows: &mut Vec<Row>) {
    let m = match BenchManager::new().start() {
        Ok(m) => m,
        Err(e) => {
            progress(&format!("cannot start a manager: {e}"));
            return;
        }
    };
    if cfg.runs("manager") {
        progress("manager objects: create+drop, Queue, dict, Lock, Namespace");
        rows.push(Row::new(
            "create + drop a proxy",
            create_drop(cfg, &m).map(|t| Fig::Rate(1.0 / t, "ops")).map_err(err),
            python.rate("create+drop proxy", "ops"),
            Bar::RateAtLeast(20.0),
        ));
    }
    if cfg.runs("manager") || cfg.runs("queue") {
        rows.push(Row::new(
            "manager Queue put -> get across processes",
            manager_queue(cfg, &m).map(|r| Fig::Rate(r, "msgs")).map_err(err),
            python.rate("manager Queue put->get across procs", "msgs"),
            Bar::RateAtLeast(10.0),
        ));
        // Each `get` is one synchronous round trip, so a consumer gets about one message per raw
        // round trip (measured earlier in the run): the row shows that rate beside Python's.
        let reference = rows
            .iter()
            .find(|r| r.name.starts_with("proxy call round trip vs raw Unix"))
            .and_then(|r| r.baseline.clone().ok())
            .map(|rtt| Fig::Rate(1.0 / rtt.value(), "msgs"))
            .ok_or_else(|| "needs the ping-pong row".to_string());
        rows.push(Row::new(
            "reference: one get per raw Unix round trip, 1 / RTT (baseline: Python's Queue)",
            reference,
            python.rate("manager Queue put->get across procs", "msgs"),
            Bar::None,
        ));
    }
    if cfg.runs("manager") {
        let like = python_like_rows(cfg, &m).map_err(err);
        for (i, (name, label)) in [
            ("dict proxy insert (d['k'] = 1)", "dict proxy d['k'] = 1"),
            ("dict proxy get (d['k'])", "dict proxy d['k']"),
            ("manager Lock acquire + release", "Lock proxy acquire+release"),
            ("Namespace proxy get (ns.x)", "Namespace proxy ns.x"),
        ]
        .into_iter()
        .enumerate()
        {
            let fig = like.as_ref().map(|v| Fig::Rate(v[i], "ops")).map_err(Clone::clone);
            rows.push(Row::new(name, fig, python.rate(label, "ops"), Bar::None));
        }
    }
    if cfg.runs("clients") {
        progress("many clients: 64 threads in 4 processes");
        let single = rows
            .iter()
            .find(|r| r.name.starts_with("proxy call vs Python"))
            .and_then(|r| r.procman.clone().ok())
            .ok_or_else(|| "no single-client figure".to_string());
        rows.push(Row::new(
            "64 client threads in 4 processes, one server (baseline: 1 client)",
            many_clients(cfg, &m).map(|r| Fig::Rate(r, "calls")).map_err(err),
            single,
            Bar::None,
        ));
    }
    let _ = m.shutdown();
}

fn shm_rows(cfg: &Config, python: &Python, rows: &mut Vec<Row>) {
    progress("shared memory: Queue, SharedValue, Lock, SharedArray");
    rows.push(Row::new(
        "LocalManager Queue across processes, u64 (baseline: Python's mp.Queue)",
        shm_queue(cfg).map(|r| Fig::Rate(r, "msgs")).map_err(err),
        python.rate("mp.Queue (pipe) put->get across procs", "msgs"),
        Bar::AbsRateAtLeast(1_000_000.0),
    ));
    let (value, floor) = split(shm_value(cfg));
    rows.push(Row::new(
        "SharedValue<u64> set + get vs raw atomic store + load",
        value.map(Fig::PerOp),
        floor.map(Fig::PerOp),
        Bar::CostAtMost(3.0),
    ));
    let (lock, floor) = split(shm_lock(cfg));
    rows.push(Row::new(
        "shm Lock acquire + release (uncontended) vs raw compare-exchange pair",
        lock.map(Fig::PerOp),
        floor.map(Fig::PerOp),
        Bar::CostAtMost(3.0),
    ));
    let arr = shm_array(cfg).map_err(err);
    rows.push(Row::new(
        "SharedArray<f64> 8 MB read_into vs memcpy",
        arr.as_ref().map(|a| Fig::Bandwidth(a.0)).map_err(Clone::clone),
        arr.as_ref().map(|a| Fig::Bandwidth(a.2)).map_err(Clone::clone),
        Bar::RateAtLeast(0.8),
    ));
    rows.push(Row::new(
        "SharedArray<f64> 8 MB copy_from_slice vs memcpy",
        arr.as_ref().map(|a| Fig::Bandwidth(a.1)).map_err(Clone::clone),
        arr.as_ref().map(|a| Fig::Bandwidth(a.2)).map_err(Clone::clone),
        Bar::RateAtLeast(0.8),
    ));
}

fn split(r: BoxResult<(f64, f64)>) -> (Result<f64, String>, Result<f64, String>) {
    match r {
        Ok((a, b)) => (Ok(a), Ok(b)),
        Err(e) => {
            let e = err(e);
            (Err(e.clone()), Err(e))
        }
    }
}
