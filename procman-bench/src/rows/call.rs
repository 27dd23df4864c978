//! The `call` rows: a proxy call's round trip beside a raw ping-pong of the same sizes, over a
//! Unix socket and over TCP loopback, and beside Python's proxy call; and what sealing TCP
//! frames costs: the same call sealed beside unsealed. (Unix-socket connections are not
//! sealed, so they have no such row.)

use super::bench_manager::{BenchManager, CounterProxy};
use crate::floors::{CALL_REPLY_BYTES, CALL_REQUEST_BYTES, Net, RawPeer};
use crate::measure::{BoxResult, Scale, err, per_op, progress};
use crate::python::{self, Python};
use crate::table::{Bar, Fig, Key, Row, Table};
use std::hint::black_box;

pub(crate) fn rows(scale: Scale, python: &Python, table: &mut Table) {
    for (net, key, name) in [(Net::Unix, Key::UnixCall, "Unix socket"), (Net::Tcp, Key::TcpCall, "TCP loopback")] {
        progress(&format!("proxy call vs raw ping-pong over {name}"));
        let label =
            format!("proxy call round trip vs raw {name} ping-pong ({CALL_REQUEST_BYTES} B / {CALL_REPLY_BYTES} B)");
        let bar = if net == Net::Unix { Bar::CostAtMost(1.3) } else { Bar::None };
        match call_vs_raw(scale, net) {
            Ok((call, raw)) => {
                table.push(Row::new(key, label, Ok(Fig::PerOp(call)), Ok(Fig::PerOp(raw)), bar));
                if net == Net::Unix {
                    table.push(Row::new(
                        Key::PythonCall,
                        "proxy call vs Python's proxy call (calls/s)",
                        Ok(Fig::Rate(1.0 / call, "calls")),
                        python.rate(python::PROXY_CALL, "calls"),
                        Bar::RateAtLeast(3.0),
                    ));
                }
            }
            Err(e) => table.push(Row::new(key, label, Err(err(e)), Err("—".into()), bar)),
        }
    }
    progress("proxy call over TCP loopback, sealed vs unsealed");
    let label = "proxy call round trip over TCP loopback: sealed (AES-256-GCM) vs unsealed frames";
    let (procman, baseline) = match sealed_vs_unsealed(scale) {
        Ok((sealed, plain)) => (Ok(Fig::PerOp(sealed)), Ok(Fig::PerOp(plain))),
        Err(e) => (Err(err(e)), Err("—".into())),
    };
    table.push(Row::new(Key::TcpSealing, label, procman, baseline, Bar::CostAtMost(1.2)));
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

/// A proxy call and a raw ping-pong of the same sizes over `net`, interleaved in short rounds so
/// that both see the same disturbances from the rest of the machine; the best round of each.
fn call_vs_raw(scale: Scale, net: Net) -> BoxResult<(f64, f64)> {
    let m = match net {
        Net::Unix => BenchManager::new().start()?,
        Net::Tcp => BenchManager::new().address("127.0.0.1:0").start()?,
    };
    let c = m.counter(0)?;
    let mut raw = RawPeer::start(net)?;
    let (rounds, n) = (scale.n(12, 4), scale.n(5_000, 2_500));
    let (mut best_call, mut best_raw) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        best_raw = best_raw.min(per_op(n / 10, n, || raw.round_trip()));
        best_call = best_call.min(incr_round(&c, n));
    }
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
