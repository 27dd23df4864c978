//! `procman inspect`: a snapshot of a live manager, as tables or JSON, once or like `top`.

use crate::args::InspectArgs;
use crate::failure::Failure;
use crate::table;
use std::io::{ErrorKind, Write};

/// Clears a terminal and moves to its top left corner.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

pub(crate) fn run(args: InspectArgs) -> Result<(), Failure> {
    let manager = args.target.connect()?;
    loop {
        let snapshot = manager.debug_info()?;
        let text = match (args.json, args.watch) {
            (true, false) => serde_json::to_string_pretty(&snapshot),
            (true, true) => serde_json::to_string(&snapshot),
            (false, _) => Ok(table::render(&snapshot, std::process::id())),
        }
        .map_err(|e| Failure::other(format!("cannot write the snapshot as JSON: {e}")))?;
        let screen = if args.watch && !args.json {
            let every = procman::inspect::Elapsed(args.interval);
            format!("{CLEAR_SCREEN}every {every}; Ctrl-C quits\n\n{text}")
        } else {
            text
        };
        if !emit(&screen)? || !args.watch {
            return Ok(());
        }
        std::thread::sleep(args.interval);
    }
}

/// Writes `text` and a newline to standard output. Returns false when the reader went away
/// (`procman inspect --watch --json | head -1`), which ends the command quietly.
fn emit(text: &str) -> Result<bool, Failure> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure::other(format!("cannot write to standard output: {e}"))),
    }
}
