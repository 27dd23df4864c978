//! The `call` rows: a proxy call's round trip over a Unix socket, with the same-host
//! shared-memory fast path (the default) beside a raw Unix-socket ping-pong of the same sizes and
//! beside a spin-then-futex ping-pong through one shared page, and with the fast path off
//! (`Transport::Socket`) beside the raw Unix ping-pong; the fast-path call beside Python's proxy
//! call; a call over TCP loopback beside a raw TCP ping-pong; and what sealing TCP frames costs:
//! the same call sealed beside unsealed. (Unix-socket connections are not sealed, so they have no
//! such row.)

use super::bench_manager::{BenchManager, CounterProxy};
use crate::floors::{CALL_REPLY_BYTES, CALL_REQUEST_BYTES, FUTEX_PAYLOAD_BYTES, FutexPeer, Net, RawPeer};
use crate::measure::{BoxResult, Scale, err, interleaved, per_op, progress};
use crate::python::{self, Python};
use crate::table::{Bar, Fig, Key, Row, Table};
use procman::Transport;
use std::hint::black_box;

pub(crate) fn rows(scale: Scale, python: &Python, table: &mut Table) {
    unix_rows(scale, python, table);
    progress("proxy call vs raw ping-pong over TCP loopback");
    let label =
        format!("proxy call round trip vs raw TCP loopback ping-pong ({CALL_REQUEST_BYTES} B / {CALL_REPLY_BYTES} B)");
    let (procman, baseline) = match tcp_call_vs_raw(scale) {
        Ok((call, raw)) => (Ok(Fig::PerOp(call)), Ok(Fig::PerOp(raw))),
        Err(e) => (Err(err(e)), Err("—".into())),
    };
    table.push(Row::new(Key::TcpCall, label, procman, baseline, Bar::None));
    progress("proxy call over TCP loopback, sealed vs unsealed");
    let label = "proxy call round trip over TCP loopback: sealed (AES-256-GCM) vs unsealed frames";
    let (procman, baseline) = match sealed_vs_unsealed(scale) {
        Ok((sealed, plain)) => (Ok(Fig::PerOp(sealed)), Ok(Fig::PerOp(plain))),
        Err(e) => (Err(err(e)), Err("—".into())),
    };
    table.push(Row::new(Key::TcpSealing, label, procman, baseline, Bar::CostAtMost(1.2)));
}

/// The Unix-socket rows: a proxy call with the same-host fast path (the default) beside the raw
/// Unix ping-pong and beside the spin-then-futex floor, the same call with the fast path off
/// (`Transport::Socket`) beside the raw Unix ping-pong, and the fast-path call beside Python's.
fn unix_rows(scale: Scale, python: &Python, table: &mut Table) {
    progress("proxy call (fast path on and off) vs raw Unix ping-pong and spin-then-futex ping-pong");
    let [fast, socket, raw, futex] = unix_figures(scale);
    let pair =
        |p: &Result<f64, String>, b: &Result<f64, String>| (p.clone().map(Fig::PerOp), b.clone().map(Fig::PerOp));
    let sizes = format!("{CALL_REQUEST_BYTES} B / {CALL_REPLY_BYTES} B");
    let (p, b) = pair(&fast, &raw);
    table.push(Row::new(
        Key::UnixCall,
        format!("proxy call round trip, fast path vs raw Unix socket ping-pong ({sizes})"),
        p,
        b,
        Bar::CostAtMost(0.25),
    ));
    let (p, b) = pair(&fast, &futex);
    table.push(Row::new(
        Key::UnixCallFutex,
        format!("proxy call round trip, fast path vs spin-then-futex shared-page ping-pong ({FUTEX_PAYLOAD_BYTES} B each way)"),
        p,
        b,
        Bar::CostAtMost(3.0),
    ));
    let (p, b) = pair(&socket, &raw);
    table.push(Row::new(
        Key::UnixCallSocket,
        format!("proxy call round trip, fast path off (Transport::Socket) vs raw Unix socket ping-pong ({sizes})"),
        p,
        b,
        Bar::CostAtMost(1.3),
    ));
    table.push(Row::new(
        Key::PythonCall,
        "proxy call (fast path) vs Python's proxy call (calls/s)",
        fast.map(|t| Fig::Rate(1.0 / t, "calls")),
        python.rate(python::PROXY_CALL, "calls"),
        Bar::RateAtLeast(3.0),
    ));
}

/// Seconds per round trip of: a proxy call to a default manager (fast path), a proxy call to a
/// `Transport::Socket` manager, the raw Unix ping-pong and the spin-then-futex ping-pong;
/// interleaved in short rounds so that all see the same disturbances from the rest of the
/// machine, the best round of each. One that cannot be set up has its error instead.
fn unix_figures(scale: Scale) -> [Result<f64, String>; 4] {
    let fast = BenchManager::new().start().map_err(err);
    let socket = BenchManager::new().transport(Transport::Socket).start().map_err(err);
    let fast_c = fast.as_ref().map_err(Clone::clone).and_then(|m| m.counter(0).map_err(err));
    let socket_c = socket.as_ref().map_err(Clone::clone).and_then(|m| m.counter(0).map_err(err));
    let mut raw = RawPeer::start(Net::Unix).map_err(err);
    let mut futex = FutexPeer::<FUTEX_PAYLOAD_BYTES>::start().map_err(err);
    let (rounds, n) = (scale.n(12, 4), scale.n(5_000, 2_500));
    let mut best = [f64::MAX; 4];
    for _ in 0..rounds {
        if let Ok(c) = &fast_c {
            best[0] = best[0].min(incr_round(c, n));
        }
        if let Ok(c) = &socket_c {
            best[1] = best[1].min(incr_round(c, n));
        }
        if let Ok(r) = &mut raw {
            best[2] = best[2].min(per_op(n / 10, n, || r.round_trip()));
        }
        if let Ok(f) = &mut futex {
            best[3] = best[3].min(per_op(n / 10, n, || f.round_trip()));
        }
    }
    let raw = raw.and_then(|r| r.finish().map_err(err)).map(|_| best[2]);
    let futex = futex.and_then(|f| f.finish().map_err(err)).map(|_| best[3]);
    let fast_fig = fast_c.map(drop).map(|()| best[0]);
    let socket_fig = socket_c.map(drop).map(|()| best[1]);
    for m in [fast, socket].into_iter().flatten() {
        let _ = m.shutdown();
    }
    [fast_fig, socket_fig, raw, futex]
}

/// A proxy call over TCP to a manager that seals its frames (as every TCP manager does) and to
/// one that both sides told to send them plain, for measurement only; interleaved in short
/// rounds, the best round of each.
fn sealed_vs_unsealed(scale: Scale) -> BoxResult<(f64, f64)> {
    let sealed = BenchManager::new().address("127.0.0.1:0").start()?;
    let plain = BenchManager::new().address("127.0.0.1:0").unsealed_tcp_for_measurement().start()?;
    let (s, p) = (sealed.counter(0)?, plain.counter(0)?);
    let (rounds, n) = (scale.n(12, 4), scale.n(5_000, 2_500));
    let (mut best_sealed, mut best_plain) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        best_plain = best_plain.min(incr_round(&p, n));
        best_sealed = best_sealed.min(incr_round(&s, n));
    }
    drop((s, p));
    sealed.shutdown()?;
    plain.shutdown()?;
    Ok((best_sealed, best_plain))
}

/// A proxy call over TCP loopback and a raw ping-pong of the same sizes, interleaved in short
/// rounds so that both see the same disturbances from the rest of the machine; the best round
/// of each.
fn tcp_call_vs_raw(scale: Scale) -> BoxResult<(f64, f64)> {
    let m = BenchManager::new().address("127.0.0.1:0").start()?;
    let c = m.counter(0)?;
    let mut raw = RawPeer::start(Net::Tcp)?;
    let (best_call, best_raw) = interleaved(
        scale.n(12, 4),
        || incr_round(&c, scale.n(5_000, 2_500)),
        || per_op(scale.n(500, 250), scale.n(5_000, 2_500), || raw.round_trip()),
    );
    raw.finish()?;
    drop(c);
    m.shutdown()?;
    Ok((best_call, best_raw))
}

/// Seconds per `incr` over `n` calls (after `n / 10` to warm up). +1 and -1 in turn: the counter
/// stays at 0 or 1, so every reply has the same size.
fn incr_round(c: &CounterProxy, n: usize) -> f64 {
    let mut by = 1;
    per_op(n / 10, n, || {
        black_box(c.incr(black_box(by)).expect("incr"));
        by = -by;
    })
}
