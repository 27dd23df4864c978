//! The command line: subcommands and their options, sizes (`16MiB`) and durations (`500ms`).

use crate::failure::Failure;
use crate::target::{KeySource, Target};
use clap::{CommandFactory, Parser, Subcommand};
use std::time::Duration;

const EXIT_STATUS: &str = "\
Exit status:
  0  done
  1  another failure (the message says which)
  2  usage: a bad argument, or no authentication key
  3  no manager at the address (nothing listens there, or nothing answered in time)
  4  authentication failed (the key is wrong)
  5  the peer is not a procman manager, or it broke the protocol

The authentication key is read from --authkey-file PATH, else from the PROCMAN_AUTHKEY
environment variable; never from an argument, which `ps` shows to every user.";

const LISTEN_HELP: &str = "Where to listen: HOST:PORT (TCP; port 0 lets the OS choose one), \
unix:/PATH (a Unix socket file, removed when the server stops) or @NAME (a Linux abstract socket)";

/// Serve a procman SyncManager anywhere, ping one, and see inside a live manager.
#[derive(Debug, Parser)]
#[command(name = "procman", version, propagate_version = true, after_help = EXIT_STATUS)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a standalone SyncManager until SIGINT or SIGTERM.
    ///
    /// It serves every built-in type (Lock, RLock, Semaphore, BoundedSemaphore, Condition,
    /// Event, Barrier, Queue, Namespace, dict, list, Value, Array). Containers hold values
    /// encoded by the clients, so any client program uses it with typeid declarations only.
    /// Prints the bound address on standard output (the real port when 0 was given); on a
    /// signal it closes every client's connection and exits with status 0.
    #[command(after_help = EXIT_STATUS)]
    Serve(ServeArgs),
    /// Authenticate with a manager, make one round trip, and print how long it took.
    #[command(after_help = EXIT_STATUS)]
    Ping(PingArgs),
    /// Show a live manager: its objects, its clients, who holds each lock and who waits.
    ///
    /// Objects: id, typeid, reference count, the clients holding references, and for the
    /// built-in types their state (lock holders and for how long, queue lengths, waiters).
    /// Clients: their process id, peer, connections and the objects they hold.
    #[command(after_help = EXIT_STATUS)]
    Inspect(InspectArgs),
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where to listen.
    #[arg(long_help = LISTEN_HELP)]
    pub(crate) address: String,
    #[command(flatten)]
    pub(crate) key: KeySource,
    /// The largest frame a client may send: bytes, or with KiB/MiB/GiB (k/m/g).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = size)]
    pub(crate) max_frame_size: usize,
    /// How long a new connection may take to authenticate: seconds, or with ms/s/m.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub(crate) handshake_timeout: Duration,
    /// How long a TCP client may stay silent before it is probed (and dropped about twice
    /// that later if it vanished); 0 turns probing off.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub(crate) keepalive: Duration,
    /// How many calls one async client process may have in flight at once (each blocked call
    /// holds a thread of the manager); one more fails at once.
    #[arg(long, value_name = "N", default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_calls_in_flight: u32,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PingArgs {
    #[command(flatten)]
    pub(crate) target: Target,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    /// Print JSON instead of tables (with --watch: one compact document per line).
    #[arg(long)]
    pub(crate) json: bool,
    /// Refresh until interrupted, like top.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Time between two refreshes of --watch.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration, requires = "watch")]
    pub(crate) interval: Duration,
}

/// Writes the completion script of `shell` to standard output.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    clap_complete::generate(shell, &mut Cli::command(), "procman", &mut std::io::stdout());
    Ok(())
}

/// `16777216`, `64k`, `64KiB`, `16MiB`, `1g`: bytes.
fn size(s: &str) -> Result<usize, String> {
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u32 = match &lower[digits.len()..] {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        other => return Err(format!("unknown unit `{other}`: use bytes, KiB, MiB or GiB")),
    };
    let n: usize = digits.trim().parse().map_err(|_| format!("`{s}` is not a size such as 65536 or 16MiB"))?;
    n.checked_mul(1 << unit).filter(|&n| n > 0).ok_or_else(|| format!("`{s}` is out of range"))
}

/// `5`, `2.5`, `500ms`, `2s`, `1m`: a duration (a bare number is seconds).
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let lower = s.trim().to_ascii_lowercase();
    let number = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale = match &lower[number.len()..] {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        other => return Err(format!("unknown unit `{other}`: use ms, s or m")),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("`{s}` is not a duration such as 5, 500ms or 2s"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("`{s}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_with_their_units() {
        assert_eq!(size("65536"), Ok(65536));
        assert_eq!(size("64k"), Ok(64 << 10));
        assert_eq!(size("16MiB"), Ok(16 << 20));
        assert!(size("0").is_err() && size("3 parsecs").is_err() && size("lots").is_err());
        assert_eq!(duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("-1").is_err() && duration("soon").is_err() && duration("3h").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
