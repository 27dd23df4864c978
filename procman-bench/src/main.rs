//! The benchmark harness of procman: every figure beside its floor, measured in one run.
//!
//! It measures procman's paths (a proxy call with the same-host shared-memory fast path and
//! with it off, the manager's objects, many clients, `start()`, the server's memory per object,
//! LocalManager's shared-memory objects, bulk bytes) and, in the same run, the floors they are
//! compared with: a raw socket ping-pong of a proxy call's sizes, a spin-then-futex ping-pong
//! through one shared page, a raw atomic, `memcpy`, a single client, and Python's
//! `multiprocessing` managers.
//!
//! ```sh
//! cargo run --release -p procman-bench              # full run (about a minute on 2 cores)
//! cargo run --release -p procman-bench -- --quick   # short run, noisier figures
//! ```
//!
//! Options: `--quick`; `--python <script>` (Python's figures, by default
//! `<workspace>/../shared/peers/python_managers_bench.py`); `--python-bin <interpreter>` (default
//! `python3`); `--no-python`; `--only <group>` (one group of rows, for profiling). Progress goes
//! to stderr, the results to stdout. The machine should be otherwise idle: on 2 cores, any other
//! load shows in the round-trip figures.
//!
//! The groups and their rows (the bar in brackets):
//!
//! - `call`: a Unix proxy call with the fast path (the default) vs a raw Unix-socket ping-pong of
//!   the same sizes [cost ≤ 0.25x]; the same call vs a spin-then-futex ping-pong of 16 B each way
//!   through one shared page [≤ 3x]; the call with the fast path off (`Transport::Socket`) vs the
//!   raw Unix ping-pong [≤ 1.3x]; the fast-path call vs Python's proxy call [rate ≥ 3x]; a TCP
//!   loopback call vs a raw TCP ping-pong; a sealed TCP call vs an unsealed one [≤ 1.2x];
//! - `manager`: create + drop a proxy vs Python [≥ 20x]; the `queue` rows; dict insert and get,
//!   Lock, Namespace beside Python's;
//! - `queue`: the manager Queue put -> get across processes vs Python's manager Queue [≥ 40x];
//!   the same with the fast path off, beside Python's; a reference rate of one `get` per raw
//!   Unix round trip;
//! - `clients`: 64 client threads in 4 processes against one manager, calls per second with the
//!   fast path vs with it off [≥ 1x]; CPU time (user + system, the client processes and the
//!   manager) per call of those 64 threads vs one client thread in one process, with the fast
//!   path [≤ 1.5x] and with it off;
//! - `start`, `memory`: `start()` to the first call [≤ 20 ms], the server's memory per object;
//! - `shm`: LocalManager's shared-memory objects beside raw atomics and `memcpy` (the bars are in
//!   `rows/shm.rs`);
//! - `bulk`: a `Vec<u8>` echo of 8 B, 1 KiB, 64 KiB, 1 MiB and 8 MiB in GB/s (both directions
//!   counted) vs `memcpy` of the same size [8 MiB ≥ 2 GB/s], and 1 KiB vs 8 B time per call
//!   [≤ 1.5x];
//! - `async`: an async proxy call (one task awaiting one call after the other) vs the blocking
//!   call, with the fast path and with it off [≤ 1.5x]; 1,000 concurrent async callers on a
//!   2-thread tokio runtime vs 64 blocking threads, calls per second;
//! - `python`: Python's script alone, its figures printed.
//!
//! It prints one markdown table, `| benchmark | procman | baseline | ratio | bar | met |`:
//!
//! - **procman**: the figure of procman's path; **baseline**: its floor measured in the same run
//!   (a raw socket ping-pong of the same sizes, a spin-then-futex ping-pong, a raw atomic,
//!   `memcpy`, a single client, the same path with the fast path off) or
//!   Python's figure from `python_managers_bench.py`, run as a subprocess;
//! - **ratio**: procman ÷ baseline in the row's unit: for a time (µs/op, ns/op, ms) it is how
//!   many times slower procman is (lower is better), for a rate (ops/s, msgs/s, GB/s) how many
//!   times faster (higher is better);
//! - **bar**: the bar of the Performance table in `../shared/DESIGN.md` (absolute bars are in
//!   the row's unit); **met**: `yes`, or `no` with how far the figure is from the bar; `—` for
//!   rows without a bar.
//!
//! The last line is `bars met: X/Y`: of the Y rows that have a bar, X met it (a row whose
//! figure could not be measured counts as missed). Children (the manager servers, the peers of
//! the raw and spin-then-futex ping-pongs, the queue consumers and the client processes) are
//! this binary, re-executed by procman, which is why `procman::init()` is the first line of
//! `main`.
//!
//! The files: `table.rs` (rows, table, bars), `python.rs` (Python's figures), `floors.rs` (the
//! raw baselines), `rows/` (procman's measurements, one file a group), `measure.rs` (timing).

mod floors;
mod measure;
mod python;
mod rows;
mod table;

use measure::Scale;
use python::Python;
use std::path::PathBuf;
use std::time::Instant;
use table::Table;

#[derive(Debug)]
struct Config {
    scale: Scale,
    python_script: Option<PathBuf>,
    python_bin: String,
    python: bool,
    only: Option<String>,
}

impl Config {
    fn from_args() -> Config {
        let mut c =
            Config { scale: Scale::Full, python_script: None, python_bin: "python3".into(), python: true, only: None };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => c.scale = Scale::Quick,
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
    /// `queue` (the manager Queue rows alone), `clients`, `start`, `memory`, `shm`, `bulk`;
    /// `python` runs Python's script alone).
    fn runs(&self, group: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == group)
    }
}

fn main() {
    procman::init();
    let cfg = Config::from_args();
    let started = Instant::now();
    let python = if !cfg.runs("python") {
        Python::absent("--only")
    } else if !cfg.python {
        Python::absent("--no-python")
    } else {
        Python::run(&cfg.python_bin, cfg.python_script.as_deref(), cfg.scale)
    };
    let mut table = Table::default();
    if cfg.runs("call") {
        rows::call::rows(cfg.scale, &python, &mut table);
    }
    if cfg.runs("manager") || cfg.runs("queue") || cfg.runs("clients") {
        rows::manager::rows(cfg.scale, &python, &mut table, |group| cfg.runs(group));
    }
    if cfg.runs("start") {
        rows::server::start_row(cfg.scale, &python, &mut table);
    }
    if cfg.runs("memory") {
        rows::server::memory_row(&mut table);
    }
    if cfg.runs("shm") {
        rows::shm::rows(cfg.scale, &python, &mut table);
    }
    if cfg.runs("bulk") {
        rows::bulk::rows(cfg.scale, &mut table);
    }
    if cfg.runs("async") {
        rows::asynchronous::rows(cfg.scale, &mut table);
    }
    if cfg.only.as_deref() == Some("python") {
        println!("{:#?}", python.figures());
    }

    let secs = started.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("procman-bench ({} run, {cores} cores, {secs:.1} s)", cfg.scale.name());
    println!();
    table.print();
}
