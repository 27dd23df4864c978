//! Child processes: the manager server started by `start()` and functions run by
//! [`Process::spawn`]. Both re-execute the current binary (no `fork` without `exec`).
//!
//! The parent passes the child one end of a Unix socket pair (its number in the environment
//! variable `PROCMAN_CHILD`, with the parent's pid so that grandchildren ignore it). Over it the
//! parent sends what to run, the keys to inherit and the identity of the executable; the child
//! answers with its address (a server) or its result (a function). The same socket tells the
//! child when the parent dies: it reads end-of-stream and exits, so nothing outlives its parent,
//! even after SIGKILL. (`PR_SET_PDEATHSIG` is not used: it fires when the *thread* that
//! started the child ends, which would kill a manager started from a short-lived thread.)
//!
//! A function to run is sent as its offset from a fixed function of procman in the same
//! executable, which the child turns back into a pointer. That is sound because the child checks
//! that it runs the very same file (device and inode of `/proc/self/exe`).

use crate::address::Address;
use crate::auth;
use crate::error::{Error, Result};
use crate::server::{Server, ServerConfig, panic_message};
use crate::wire;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ENV: &str = "PROCMAN_CHILD";
const MAX_SPEC: usize = 1 << 30;

/// Marks an integration-test binary whose children run through its `procman_child_entry`
/// test. Registered by [`crate::child_entry_point!`].
#[derive(Debug)]
pub struct ChildEntry {
    /// `module_path!()` where the entry point was declared.
    pub module: &'static str,
}

inventory::collect!(ChildEntry);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Role {
    Server(ServerConfig),
    Call { trampoline: i64, function: i64, args: Vec<u8> },
}

#[derive(Debug, Serialize, Deserialize)]
struct Spec {
    exe: (u64, u64),
    process_key: Vec<u8>,
    keyring: Vec<(Address, Vec<u8>)>,
    role: Role,
}

#[derive(Debug, Serialize, Deserialize)]
enum Report {
    Ready(Address),
    Failed(String),
    Returned(Vec<u8>),
    Panicked(String),
}

fn exe_identity() -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata("/proc/self/exe")?;
    Ok((m.dev(), m.ino()))
}

/// The fixed point function offsets are taken from.
#[inline(never)]
fn anchor() {}

fn offset_of(f: usize) -> i64 {
    (f as i64).wrapping_sub(anchor as *const () as usize as i64)
}

fn from_offset(off: i64) -> usize {
    (anchor as *const () as usize as i64).wrapping_add(off) as usize
}

/// A function a manager may run for its clients (a barrier's action), registered with
/// [`procman::action!`](crate::action). Only registered functions can be named by a client, so a
/// client cannot make a manager jump anywhere else.
#[derive(Debug)]
pub struct Action {
    /// The function.
    pub function: fn(),
    /// Its path, for messages.
    pub name: &'static str,
}

inventory::collect!(Action);

/// A registered [`Action`], sent to a manager running the same executable (one started with
/// `start()`): its offset in the file, and the identity of the file, which the receiver checks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct CodeRef {
    exe: (u64, u64),
    offset: i64,
}

impl CodeRef {
    pub(crate) fn of(f: fn()) -> Result<CodeRef> {
        if !inventory::iter::<Action>.into_iter().any(|a| a.function as usize == f as usize) {
            return Err(Error::usage(
                "a barrier's action must be registered with procman::action!(path::to::function)",
            ));
        }
        let exe = exe_identity().map_err(|e| Error::io("reading /proc/self/exe", e))?;
        Ok(CodeRef { exe, offset: offset_of(f as *const () as usize) })
    }

    /// The registered function the reference names, when this process runs the same executable
    /// as the sender.
    pub(crate) fn resolve(&self) -> Result<fn()> {
        let same_file = exe_identity().is_ok_and(|id| id == self.exe);
        if !same_file {
            return Err(Error::usage(
                "an action can only be sent to a manager running the same executable (one started with start())",
            ));
        }
        let address = from_offset(self.offset);
        inventory::iter::<Action>
            .into_iter()
            .find(|a| a.function as usize == address)
            .map(|a| a.function)
            .ok_or_else(|| Error::usage("the manager has no registered action at that place"))
    }
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// The socket to the parent, when this process is a child procman started and has not yet
/// taken its role.
fn our_socket() -> Option<RawFd> {
    let v = std::env::var(ENV).ok()?;
    let (pid, fd) = v.split_once(':')?;
    let (pid, fd): (u32, RawFd) = (pid.parse().ok()?, fd.parse().ok()?);
    if pid != std::os::unix::process::parent_id() {
        return None;
    }
    Some(fd)
}

/// Panics in a child whose `main` does not call [`crate::init`]: it would start a child of its
/// own, and so on.
pub(crate) fn check_not_unclaimed_child() {
    if !TAKEN.load(Ordering::Relaxed) && our_socket().is_some() {
        panic!(
            "this process was started by procman as a child, but procman::init() was not called first \
             thing in main (or, in an integration test, procman::child_entry_point!() is missing)"
        );
    }
}

/// Lets a process that procman started take its role: serve a manager, or run a spawned
/// function. Call it first thing in `main`; in any other process it returns at once.
///
/// In a child it does not return: the process exits when its role ends (exit code 0, or 101
/// when a spawned function panicked).
///
/// ```
/// procman::init(); // first thing in `main`
/// // ... the program
/// ```
pub fn init() {
    if TAKEN.swap(true, Ordering::SeqCst) {
        return;
    }
    let Some(fd) = our_socket() else { return };
    // SAFETY: the parent put this descriptor, an end of a socket pair, in the child for this
    // purpose and named it in PROCMAN_CHILD together with its own pid, which we checked; nothing
    // else in this process owns it.
    let sock = unsafe { UnixStream::from_raw_fd(fd) };
    // SAFETY: F_SETFD on a descriptor we own; makes it close on exec again so that programs
    // this child starts do not inherit it.
    unsafe {
        libc::fcntl(sock.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
    }
    let code = run_child(sock);
    std::process::exit(code);
}

fn send(sock: &mut UnixStream, report: &Report) {
    let mut buf = Vec::new();
    if wire::frame(report, &mut buf).is_ok() {
        let _ = sock.write_all(&buf);
    }
}

fn run_child(mut sock: UnixStream) -> i32 {
    let mut buf = Vec::new();
    let spec: Spec = match wire::read_frame(&mut sock, &mut buf, MAX_SPEC) {
        Ok(true) => match wire::decode(&buf, "the child's instructions") {
            Ok(s) => s,
            Err(e) => {
                send(&mut sock, &Report::Failed(e.to_string()));
                return 1;
            }
        },
        _ => return 1,
    };
    match exe_identity() {
        Ok(id) if id == spec.exe => {}
        _ => {
            send(&mut sock, &Report::Failed("the child does not run the parent's executable (was it rebuilt?)".into()));
            return 1;
        }
    }
    auth::import(spec.process_key, spec.keyring);
    watch_parent(&sock);
    match spec.role {
        Role::Server(config) => run_server(sock, config),
        Role::Call { trampoline, function, args } => {
            // SAFETY: the parent computed `trampoline` from a `fn(usize, &[u8]) -> Report`
            // (an instance of `trampoline::<A, R>`) in the same executable, which we checked is
            // the file we run, so the same offset from `anchor` is that function here.
            let t: fn(usize, &[u8]) -> Report =
                unsafe { std::mem::transmute::<usize, fn(usize, &[u8]) -> Report>(from_offset(trampoline)) };
            let report = t(from_offset(function), &args);
            let code = if matches!(report, Report::Returned(_)) { 0 } else { 101 };
            send(&mut sock, &report);
            code
        }
    }
}

/// Exits this process as soon as the parent's end of the socket closes.
fn watch_parent(sock: &UnixStream) {
    let Ok(mut watch) = sock.try_clone() else { return };
    let _ = std::thread::Builder::new().name("procman-parent-watch".into()).spawn(move || {
        let mut b = [0u8; 64];
        loop {
            match watch.read(&mut b) {
                Ok(0) | Err(_) => {
                    cleanup_socket_file();
                    // SAFETY: _exit ends the process at once without running atexit handlers,
                    // which could block on locks held by other threads at this moment.
                    unsafe { libc::_exit(0) }
                }
                Ok(_) => {}
            }
        }
    });
}

static SOCKET_FILE: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);

fn cleanup_socket_file() {
    if let Ok(mut g) = SOCKET_FILE.try_lock()
        && let Some(p) = g.take()
    {
        let _ = std::fs::remove_file(p);
    }
}

fn run_server(mut sock: UnixStream, config: ServerConfig) -> i32 {
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            send(&mut sock, &Report::Failed(e.to_string()));
            return 1;
        }
    };
    *SOCKET_FILE.lock().unwrap_or_else(|e| e.into_inner()) = server.socket_file();
    send(&mut sock, &Report::Ready(server.address().clone()));
    server.serve();
    cleanup_socket_file();
    0
}

fn trampoline<A: DeserializeOwned, R: Serialize>(function: usize, args: &[u8]) -> Report {
    // SAFETY: `function` is the address of a `fn(A) -> R` of this executable: the parent took
    // the offset of exactly such a pointer, with the same `A` and `R` that instantiated this
    // trampoline, and function pointers and `usize` have the same size.
    let f: fn(A) -> R = unsafe { std::mem::transmute_copy::<usize, fn(A) -> R>(&function) };
    let a: A = match wire::decode(args, "the arguments of the spawned function") {
        Ok(a) => a,
        Err(e) => return Report::Failed(e.to_string()),
    };
    match catch_unwind(AssertUnwindSafe(|| f(a))) {
        Ok(r) => match wire::encode(&r, "the result of the spawned function") {
            Ok(b) => Report::Returned(b),
            Err(e) => Report::Failed(e.to_string()),
        },
        Err(p) => Report::Panicked(panic_message(&*p)),
    }
}

/// A child process started by procman, with the parent's end of its socket.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    child: std::process::Child,
    sock: UnixStream,
    reaped: bool,
}

pub(crate) fn spawn(role: Role) -> Result<ChildProcess> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| Error::io("creating a socket pair", e))?;
    let exe = exe_identity().map_err(|e| Error::io("reading /proc/self/exe", e))?;
    let their_fd = theirs.as_raw_fd();
    let mut cmd = Command::new("/proc/self/exe");
    if let Ok(path) = std::env::current_exe() {
        cmd.arg0(path);
    }
    if let Some(entry) = inventory::iter::<ChildEntry>.into_iter().next() {
        let test = match entry.module.split_once("::") {
            Some((_, rest)) => format!("{rest}::procman_child_entry"),
            None => "procman_child_entry".to_owned(),
        };
        cmd.args([test.as_str(), "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"]);
    }
    cmd.env(ENV, format!("{}:{their_fd}", std::process::id()));
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which is
    // async-signal-safe; it clears close-on-exec on the child's end of the socket pair so that
    // exactly this child inherits it.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(their_fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| Error::io("starting a child process", e))?;
    drop(theirs);
    let mut process = ChildProcess { child, sock: ours, reaped: false };
    let (process_key, keyring) = auth::export();
    let spec = Spec { exe, process_key, keyring, role };
    let mut buf = Vec::new();
    wire::frame(&spec, &mut buf)?;
    if let Err(e) = process.sock.write_all(&buf) {
        process.kill();
        return Err(Error::io("sending a child its instructions", e));
    }
    Ok(process)
}

impl ChildProcess {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn read_report(&mut self, timeout: Option<Duration>) -> Result<Option<Report>> {
        let _ = self.sock.set_read_timeout(timeout);
        let mut buf = Vec::new();
        match wire::read_frame(&mut self.sock, &mut buf, MAX_SPEC) {
            Ok(true) => wire::decode(&buf, "a child's report").map(Some),
            Ok(false) => Ok(None),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Err(Error::Timeout { what: format!("child process {} did not report in time", self.pid()) })
            }
            Err(_) => Ok(None),
        }
    }

    /// Waits for a server child to listen and returns its address.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<Address> {
        let report = self.read_report(Some(timeout));
        let _ = self.sock.set_read_timeout(None);
        match report {
            Ok(Some(Report::Ready(a))) => Ok(a),
            Ok(Some(Report::Failed(m))) => {
                self.wait_or_kill(Duration::from_secs(1));
                Err(Error::io("starting the manager", std::io::Error::other(m)))
            }
            Ok(_) => {
                let status = self.wait_or_kill(Duration::from_secs(1));
                Err(Error::ChildExited { pid: self.pid(), status })
            }
            Err(e) => {
                self.kill();
                Err(e)
            }
        }
    }

    /// Waits up to `timeout` for the child to exit, then kills it; returns how it ended.
    pub(crate) fn wait_or_kill(&mut self, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return describe(status);
                }
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(1)),
                _ => {
                    self.kill();
                    return "killed".into();
                }
            }
        }
    }

    pub(crate) fn kill(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// A function running in a child process (Python's `Process`).
///
/// The child is this binary, re-executed; it must call [`crate::init`] first thing in `main`
/// (integration tests use [`crate::child_entry_point!`] instead). Arguments and result travel
/// encoded, so proxies can be passed both ways. A child dies with its parent, and dropping an
/// unjoined `Process` kills it: nothing is left behind.
///
/// ```rust,no_run
/// fn double(x: u64) -> u64 {
///     x * 2
/// }
///
/// fn main() -> procman::Result<()> {
///     procman::init();
///     let p = procman::Process::spawn(double, 21)?;
///     assert_eq!(p.join()?, 42);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Process<R> {
    inner: ChildProcess,
    _result: PhantomData<fn() -> R>,
}

impl<R: Serialize + DeserializeOwned> Process<R> {
    /// Runs `function(args)` in a new child process. `function` is a `fn` item or a closure that
    /// captures nothing.
    pub fn spawn<A: Serialize + DeserializeOwned>(function: fn(A) -> R, args: A) -> Result<Process<R>> {
        check_not_unclaimed_child();
        let args = wire::encode(&args, "the arguments of the spawned function")?;
        let trampoline: fn(usize, &[u8]) -> Report = trampoline::<A, R>;
        let role = Role::Call {
            trampoline: offset_of(trampoline as *const () as usize),
            function: offset_of(function as *const () as usize),
            args,
        };
        Ok(Process { inner: spawn(role)?, _result: PhantomData })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// Waits for the child and returns the function's result.
    ///
    /// Fails with [`Error::ChildPanicked`] (with the panic message) when the function panicked,
    /// and with [`Error::ChildExited`] (with the exit status) when the child ended without a
    /// result: killed, exited from inside the function, or failed to start.
    pub fn join(mut self) -> Result<R> {
        let report = self.inner.read_report(None);
        let status = self.inner.wait_or_kill(Duration::from_secs(5));
        let pid = self.pid();
        match report? {
            Some(Report::Returned(b)) => wire::decode(&b, "the result of the spawned function"),
            Some(Report::Panicked(message)) => Err(Error::ChildPanicked { pid, message }),
            Some(Report::Failed(m)) => Err(Error::ChildExited { pid, status: format!("{status}: {m}") }),
            Some(Report::Ready(_)) | None => Err(Error::ChildExited { pid, status }),
        }
    }

    /// Sends SIGKILL to the child (it is reaped when the `Process` is joined or dropped).
    pub fn kill(&mut self) -> Result<()> {
        if self.inner.reaped {
            return Ok(());
        }
        // SAFETY: kill(2) with the pid of our own child, which is not yet reaped (reaping happens
        // only in join or drop), so the pid cannot have been reused.
        let r = unsafe { libc::kill(self.inner.pid() as libc::pid_t, libc::SIGKILL) };
        if r == 0 { Ok(()) } else { Err(Error::io("killing a child process", std::io::Error::last_os_error())) }
    }

    /// True while the child has not exited.
    pub fn is_alive(&mut self) -> bool {
        if self.inner.reaped {
            return false;
        }
        match self.inner.child.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) => {
                self.inner.reaped = true;
                false
            }
            Err(_) => false,
        }
    }
}
