//! What a child process that procman starts is asked to be, and what it answers.
//!
//! # Architecture
//!
//! The runtime's modules, each importing only modules listed before it:
//!
//! 1. `error`, `unpoison`, `address`, `wire`, `auth`, `transport`: the leaves;
//! 2. `role` (this file): the roles of a child and the messages between it and its parent;
//! 3. `client`, `proxy`, `shared`: client connections, proxies, the traits of shared types;
//! 4. `server` (with its `registry` of creators): serves a [`ServerConfig`]; knows neither
//!    managers nor child processes;
//! 5. `child`: starts child processes and talks to them (the parent's side), [`Process`](crate::Process);
//! 6. `manager`: the builders and handles, which start, bind or connect servers;
//! 7. `entry`: [`init`](crate::init), the child's side, which takes a role and runs it: a
//!    server, or a function;
//! 8. `sync` (the built-in types, written like a user's) and the crate root with `__private`.
//!
//! Two edges still point up: `shared`'s `Dispatch::call` takes a `server::CallCx`, and
//! `server` names the generated code's `__private::short_type_name`.
//!
//! # The link between a parent and its child
//!
//! The parent passes the child one end of a Unix socket pair, its descriptor number in the
//! environment variable `PROCMAN_CHILD` together with the parent's pid (so that grandchildren,
//! which inherit the environment but not the socket, ignore it). Over it:
//!
//! 1. child -> parent: [`Report::Taken`] as soon as [`init`](crate::init) runs, so the parent
//!    can tell a child whose `main` never called it;
//! 2. parent -> child: a [`Spec`]: the [`Role`], the keys to inherit, the executable's identity;
//! 3. child -> parent: [`Report::Ready`] (a server listens), or the function's result.

use crate::address::Address;
use serde::{Deserialize, Serialize};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The environment variable that marks a child process procman started: `parent pid:fd`.
pub(crate) const ENV: &str = "PROCMAN_CHILD";

/// The largest message on the link (a spawned function's arguments or result).
pub(crate) const MAX_MESSAGE: usize = 1 << 30;

/// What a child is started for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Role {
    /// Serve a manager until it is shut down or the parent dies.
    Server(ServerConfig),
    /// Run a function of this executable and report its result: `trampoline` (an instance of
    /// `child::trampoline::<A, R>`) decodes `args`, calls `function` and encodes what it returns.
    /// Both are offsets from `child::anchor`.
    Call { trampoline: i64, function: i64, args: Vec<u8> },
}

/// How a server is configured: everything a manager's builder decided, sent to a child as it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerConfig {
    /// `Manager::NAME`: whose creators it serves.
    pub(crate) manager: String,
    /// The managers whose creators it serves too.
    pub(crate) includes: Vec<String>,
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    pub(crate) max_frame_size: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_unauthenticated: usize,
    /// The most calls in flight on one multiplexed (async) connection.
    pub(crate) max_calls_in_flight: usize,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) max_decode_depth: usize,
    pub(crate) frame_timeout: Duration,
    /// TCP clients may ask for plain frames (`unsealed_tcp_for_measurement`).
    pub(crate) allow_unsealed_tcp: bool,
    /// Same-host clients may move their frames to a shared-memory channel (`Transport`).
    pub(crate) shared_memory: bool,
}

/// The parent's instructions.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Spec {
    /// Device and inode of the parent's executable, which the child must be running.
    pub(crate) exe: (u64, u64),
    pub(crate) process_key: Vec<u8>,
    pub(crate) keyring: Vec<(Address, Vec<u8>)>,
    pub(crate) role: Role,
}

/// What the child says.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// `init` runs: the child takes its role.
    Taken,
    /// The server listens at this address.
    Ready(Address),
    /// The role could not start (or the function's result could not be sent).
    Failed(String),
    /// The function returned this encoded result.
    Returned(Vec<u8>),
    /// The function panicked with this message.
    Panicked(String),
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// The child's end of the link, when this process is a child procman started.
fn marked_link() -> Option<RawFd> {
    let v = std::env::var(ENV).ok()?;
    let (pid, fd) = v.split_once(':')?;
    let (pid, fd): (u32, RawFd) = (pid.parse().ok()?, fd.parse().ok()?);
    if pid != std::os::unix::process::parent_id() {
        return None;
    }
    Some(fd)
}

/// Takes this process's role, once: the child's end of the link when this process is a child
/// procman started; `None` in any other process and on every later call.
pub(crate) fn take() -> Option<RawFd> {
    if TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    marked_link()
}

/// Panics in a child whose `main` does not call [`crate::init`] but uses procman: it would
/// start a child of its own, and so on. (Its parent reports [`Error::InitMissing`](crate::Error::InitMissing).)
pub(crate) fn check_not_unclaimed_child() {
    if !TAKEN.load(Ordering::Relaxed) && marked_link().is_some() {
        panic!(
            "this process was started by procman as a child, but procman::init() was not called first \
             thing in main (or, in an integration test, procman::child_entry_point!() is missing)"
        );
    }
}
