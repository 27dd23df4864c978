//! How figures are taken: the length of a run, timed loops, and the harness's progress lines.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub(crate) type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The length of a run: a full one, or `--quick` (fewer iterations, noisier figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    Full,
    Quick,
}

impl Scale {
    /// `full` iterations in a full run, `quick` with `--quick`.
    pub(crate) fn n(self, full: usize, quick: usize) -> usize {
        match self {
            Scale::Full => full,
            Scale::Quick => quick,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scale::Full => "full",
            Scale::Quick => "quick",
        }
    }
}

/// Runs `f` `warm` times, then `n` times, and returns seconds per run.
pub(crate) fn per_op(warm: usize, n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warm {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / n as f64
}

/// Best of `rounds` of `f`, which returns seconds per operation.
pub(crate) fn best_of(rounds: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..rounds).map(|_| f()).fold(f64::MAX, f64::min)
}

/// The best of `rounds` rounds of `procman` and of `floor` (seconds per operation), run in
/// turn so that both see the same state of the machine (frequency, other load).
pub(crate) fn interleaved(
    rounds: usize,
    mut procman: impl FnMut() -> f64,
    mut floor: impl FnMut() -> f64,
) -> (f64, f64) {
    (0..rounds).fold((f64::MAX, f64::MAX), |(p, f), _| (p.min(procman()), f.min(floor())))
}

/// Nanoseconds since the epoch: a clock that several processes read alike.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// A line on stderr saying what the harness is doing.
pub(crate) fn progress(what: &str) {
    eprintln!("procman-bench: {what}");
}

/// An error as a row's "not measured" text.
pub(crate) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}
