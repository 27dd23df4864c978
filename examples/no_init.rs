//! What a program that forgets `procman::init()` gets: an error that says so.
//!
//! A manager server started with `start()` and a function run with `Process::spawn` run in a
//! child process: this program, started again, which takes its role in `procman::init()`. So
//! `main` must call `procman::init()` first (or carry `#[procman::main]`). This program leaves
//! it out on purpose: each child runs `main` again instead of its role, and the parent gets
//! `Error::InitMissing`, whose message says what to do.
//!
//! ```text
//! cargo run --example no_init
//! ```

use procman::prelude::*;

fn double(x: u64) -> u64 {
    x * 2
}

#[manager]
pub struct EmptyManager;

#[manager]
impl EmptyManager {}

fn main() {
    // procman::init();  <- missing on purpose
    match Process::spawn(double, 21).and_then(Process::join) {
        Err(e @ Error::InitMissing { .. }) => println!("spawn: {e}"),
        other => fail(format_args!("spawn: expected Error::InitMissing, got {other:?}")),
    }
    match EmptyManager::new().start() {
        Err(e @ Error::InitMissing { .. }) => println!("start: {e}"),
        Err(e) => fail(format_args!("start: expected Error::InitMissing, got {e:?}")),
        Ok(_) => fail("start: the manager started without procman::init()"),
    }
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("{message}");
    std::process::exit(1);
}
