//! `procman serve`: a standalone SyncManager, until SIGINT or SIGTERM.

use crate::args::ServeArgs;
use crate::failure::Failure;
use procman::sync::SyncManager;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::Write;

pub(crate) fn run(args: ServeArgs) -> Result<(), Failure> {
    let key = args.key.load()?;
    let keepalive = (!args.keepalive.is_zero()).then_some(args.keepalive);
    let server = SyncManager::new()
        .address(args.address.as_str())
        .authkey(key)
        .max_frame_size(args.max_frame_size)
        .handshake_timeout(args.handshake_timeout)
        .keepalive(keepalive)
        .max_calls_in_flight(args.max_calls_in_flight as usize)
        .bind()?;
    let address = server.address().to_string();

    // Signals are caught before the address is printed: whoever reads it may signal at once.
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).map_err(|e| Failure::other(format!("cannot catch SIGINT and SIGTERM: {e}")))?;
    let signals_handle = signals.handle();
    let stop = server.shutdown_handle();
    let watcher = std::thread::Builder::new()
        .name("procman-signals".into())
        .spawn(move || {
            let signal = signals.forever().next();
            if signal.is_some() {
                stop.shutdown();
            }
            signal
        })
        .map_err(|e| Failure::other(format!("cannot start the signal thread: {e}")))?;

    // The address alone on standard output, for scripts; the rest on standard error.
    let mut out = std::io::stdout().lock();
    let printed = writeln!(out, "{address}").and_then(|()| out.flush());
    drop(out);
    if let Err(e) = printed {
        return Err(Failure::other(format!("cannot print the address: {e}")));
    }
    eprintln!("procman: serving a SyncManager at {address} (pid {}); SIGINT or SIGTERM stops it", std::process::id());

    server.serve_forever()?;
    signals_handle.close();
    match watcher.join().ok().flatten() {
        Some(signal) => eprintln!("procman: stopped by {}; every client was disconnected", signal_name(signal)),
        None => eprintln!("procman: stopped: a client asked the manager to shut down"),
    }
    Ok(())
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
