//! `procman`: run a standalone SyncManager anywhere, ping a manager, and see inside a live one.
//!
//! ```text
//! procman serve 0.0.0.0:50000 --authkey-file key    # every built-in type, until SIGINT/SIGTERM
//! procman ping host:50000 --authkey-file key        # authenticate, one round trip, its time
//! procman inspect host:50000 --authkey-file key     # objects, clients, who holds and who waits
//! procman inspect host:50000 --json                 # the same as JSON
//! procman inspect host:50000 --watch                # refreshed every second, like top
//! procman completions bash                          # a completion script for the shell
//! ```
//!
//! The key comes from `--authkey-file PATH` or the `PROCMAN_AUTHKEY` environment variable, never
//! from an argument, which `ps` would show to every user of the machine. The commands use
//! procman's public API only: [`procman::sync::SyncManager`] to serve, [`procman::NoManager`] to
//! connect, [`procman::BaseManager::debug_info`] and [`procman::BaseManager::ping`].
//!
//! # Files
//!
//! - `args.rs`: the command line (clap), with sizes and durations
//! - `target.rs`: the manager a command talks to, and the key
//! - `serve.rs`, `ping.rs`, `inspect.rs`: the commands
//! - `table.rs`: a snapshot as tables
//! - `failure.rs`: one line and an exit status for each way a command fails

mod args;
mod failure;
mod inspect;
mod ping;
mod serve;
mod table;
mod target;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    procman::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Ping(args) => ping::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Completions { shell } => args::completions(shell),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
