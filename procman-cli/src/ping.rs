//! `procman ping`: authenticate, one round trip, its time.

use crate::args::PingArgs;
use crate::failure::Failure;
use std::time::Instant;

pub(crate) fn run(args: PingArgs) -> Result<(), Failure> {
    let started = Instant::now();
    let manager = args.target.connect()?;
    let connected = started.elapsed();
    let round_trip = manager.ping()?;
    println!("{}: round trip {round_trip:.2?} (connected and authenticated in {connected:.2?})", manager.address());
    Ok(())
}
