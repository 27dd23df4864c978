//! The `bulk` rows: a `Vec<u8>` echo through a manager, from 8 B to 8 MiB, beside `memcpy` of
//! the same size.
//!
//! Beside the 1 KiB echo's bar, the spin-then-futex ping-pong of the `call` rows with 1 KiB
//! each way beside 16 B: a kibibyte costs cache-line transfers between the cores that no
//! transport avoids, and this row shows how much of the 1 KiB echo they are.
//!
//! The echo's bandwidth counts both directions (the argument to the manager and the result
//! back: `2 × size / time per call`); `memcpy`'s counts one copy. Each call passes on the bytes
//! the previous one returned, so the harness copies nothing itself.

use super::bench_manager::{BenchManager, EchoProxy};
use crate::floors::{FUTEX_KIB_BYTES, FUTEX_PAYLOAD_BYTES, FutexPeer};
use crate::measure::{BoxResult, Scale, err, interleaved, per_op, progress};
use crate::table::{Bar, Fig, Key, Row, Table};
use std::hint::black_box;

/// The sizes, with their names and, for `Scale::Full`, the calls per round.
const SIZES: [(usize, &str, usize); 5] = [
    (8, "8 B", 20_000),
    (1 << 10, "1 KiB", 20_000),
    (64 << 10, "64 KiB", 2_000),
    (1 << 20, "1 MiB", 200),
    (8 << 20, "8 MiB", 30),
];

/// The bandwidth an 8 MiB echo must reach, both directions counted.
const LARGE_BAR: f64 = 2e9;

/// How many times an 8 B echo's time a 1 KiB echo may take.
const SMALL_BAR: f64 = 1.5;

pub(crate) fn rows(scale: Scale, table: &mut Table) {
    progress("bulk: Vec<u8> echo of 8 B to 8 MiB, memcpy");
    let measured = measure(scale);
    let mut times = Vec::new();
    for (i, (size, name, _)) in SIZES.iter().enumerate() {
        let (procman, floor) = match &measured {
            Ok(figures) => {
                let (echo, copy) = figures[i];
                times.push(echo);
                progress(&format!("bulk: {name} echo {:.2} µs/call, memcpy {:.3} µs", echo * 1e6, copy * 1e6));
                (Ok(Fig::Bandwidth(2.0 * *size as f64 / echo)), Ok(Fig::Bandwidth(*size as f64 / copy)))
            }
            Err(e) => (Err(e.clone()), Err(e.clone())),
        };
        let bar = if i == SIZES.len() - 1 { Bar::AbsBandwidthAtLeast(LARGE_BAR) } else { Bar::None };
        let row = format!("Vec<u8> echo {name}, both directions (baseline: memcpy of {name})");
        table.push(Row::new(Key::BulkEcho(i), row, procman, floor, bar));
    }
    let (small, tiny) = match (times.get(1), times.first()) {
        (Some(&small), Some(&tiny)) => (Ok(Fig::PerOp(small)), Ok(Fig::PerOp(tiny))),
        _ => {
            let e = measured.as_ref().err().cloned().unwrap_or_else(|| "—".into());
            (Err(e.clone()), Err(e))
        }
    };
    table.push(Row::new(
        Key::BulkSmall,
        "Vec<u8> echo 1 KiB vs 8 B, time per call",
        small,
        tiny,
        Bar::CostAtMost(SMALL_BAR),
    ));
    progress("bulk: spin-then-futex ping-pong of 1 KiB and of 16 B");
    let (kib, small) = match futex_kib_vs_small(scale) {
        Ok((kib, small)) => (Ok(Fig::PerOp(kib)), Ok(Fig::PerOp(small))),
        Err(e) => (Err(err(e)), Err("—".into())),
    };
    table.push(Row::new(
        Key::BulkSmallFloor,
        format!(
            "spin-then-futex shared-page ping-pong {FUTEX_KIB_BYTES} B vs {FUTEX_PAYLOAD_BYTES} B each way (the floor of the row above)"
        ),
        kib,
        small,
        Bar::None,
    ));
}

/// Seconds per round trip of the spin-then-futex ping-pong of 1 KiB each way and of 16 B,
/// interleaved in short rounds, the best round of each: how much more the hardware charges
/// for moving a kibibyte between two processes and back than for moving 16 bytes.
fn futex_kib_vs_small(scale: Scale) -> BoxResult<(f64, f64)> {
    let mut kib = FutexPeer::<FUTEX_KIB_BYTES>::start()?;
    let mut small = FutexPeer::<FUTEX_PAYLOAD_BYTES>::start()?;
    let n = scale.n(20_000, 4_000);
    let (k, s) = interleaved(
        scale.n(12, 4),
        || per_op(n / 10, n, || kib.round_trip()),
        || per_op(n / 10, n, || small.round_trip()),
    );
    kib.finish()?;
    small.finish()?;
    Ok((k, s))
}

/// For each size: seconds per echo and per `memcpy`, the best of interleaved rounds.
fn measure(scale: Scale) -> Result<Vec<(f64, f64)>, String> {
    let m = BenchManager::new().start().map_err(err)?;
    let e = m.echo().map_err(err)?;
    let out: BoxResult<Vec<_>> =
        SIZES.iter().map(|&(size, _, n)| size_row(&e, size, scale.n(n, n.div_ceil(5)), scale)).collect();
    let _ = m.shutdown();
    out.map_err(err)
}

fn size_row(e: &EchoProxy, size: usize, n: usize, scale: Scale) -> BoxResult<(f64, f64)> {
    let mut data: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let expect = data.clone();
    let src = data.clone();
    let mut dst = vec![0u8; size];
    let mut failed = None;
    let (echo, copy) = interleaved(
        scale.n(5, 2),
        || {
            per_op(2, n, || match e.echo(std::mem::take(&mut data)) {
                Ok(back) => data = back,
                Err(error) => failed = Some(error),
            })
        },
        || per_op(2, n, || black_box(&mut dst[..]).copy_from_slice(black_box(&src))),
    );
    if let Some(e) = failed {
        return Err(e.into());
    }
    if data != expect {
        return Err("the echo changed the bytes".into());
    }
    Ok((echo, copy))
}
