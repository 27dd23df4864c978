//! Child processes, as their parent sees them: the manager server started by `start()` and the
//! functions run by [`Process::spawn`]. Both re-execute the current binary (no `fork` without
//! `exec`); the child's side is [`crate::init`] (in `entry.rs`), the link between the two is
//! described in `role.rs`.
//!
//! The child dies with its parent: it reads end-of-stream on the link and exits, so nothing
//! outlives its parent, even after SIGKILL. (`PR_SET_PDEATHSIG` is not used: it fires when the
//! *thread* that started the child ends, which would kill a manager started from a short-lived
//! thread.)
//!
//! A function to run is sent as its offset from a fixed function of procman in the same
//! executable, which the child turns back into a pointer. That is sound because the child checks
//! that it runs the very same file (device and inode of `/proc/self/exe`).

use crate::address::Address;
use crate::auth;
use crate::error::{Error, Result, panic_message};
use crate::role::{self, MAX_MESSAGE, Report, Role, Spec};
use crate::transport::Stream;
use crate::wire;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::marker::PhantomData;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::time::{Duration, Instant};

/// Marks an integration-test binary whose children run through its `procman_child_entry`
/// test. Registered by [`crate::child_entry_point!`].
#[derive(Debug)]
pub struct ChildEntry {
    /// `module_path!()` where the entry point was declared.
    pub module: &'static str,
}

inventory::collect!(ChildEntry);

/// Device and inode of the running executable.
pub(crate) fn exe_identity() -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata("/proc/self/exe")?;
    Ok((m.dev(), m.ino()))
}

/// The fixed point function offsets are taken from.
#[inline(never)]
fn anchor() {}

fn offset_of(f: usize) -> i64 {
    (f as i64).wrapping_sub(anchor as *const () as usize as i64)
}

/// The address, in this process, of the function at offset `off` from [`anchor`].
pub(crate) fn from_offset(off: i64) -> usize {
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
#[derive(Debug, Clone, Copy, Serialize, Deserialize, crate::Schema)]
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

/// Runs in the child (called by `entry` through [`Role::Call`]'s offset): decodes the
/// arguments, calls `function` (a `fn(A) -> R` of this executable) and reports its result.
pub(crate) type Trampoline = fn(usize, &[u8]) -> Report;

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

/// A child process started by procman, with the parent's end of its link.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    child: std::process::Child,
    link: Stream,
    /// The child said [`Report::Taken`]: its `main` called `init`.
    taken: bool,
    reaped: bool,
}

/// Starts this executable again as a child that takes `role`.
pub(crate) fn spawn(role: Role) -> Result<ChildProcess> {
    let (ours, theirs) = Stream::pair().map_err(|e| Error::io("creating a socket pair", e))?;
    let exe = exe_identity().map_err(|e| Error::io("reading /proc/self/exe", e))?;
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
    let their_fd = theirs.inherit_into(&mut cmd);
    cmd.env(role::ENV, format!("{}:{their_fd}", std::process::id()));
    let child = cmd.spawn().map_err(|e| Error::io("starting a child process", e))?;
    drop(theirs);
    let mut process = ChildProcess { child, link: ours, taken: false, reaped: false };
    let (process_key, keyring) = auth::export();
    let spec = Spec { exe, process_key, keyring, role };
    let mut buf = Vec::new();
    wire::frame(&spec, &mut buf)?;
    if let Err(e) = process.link.write_all(&buf) {
        process.kill();
        return Err(Error::io("sending a child its instructions", e));
    }
    Ok(process)
}

impl ChildProcess {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's next report after [`Report::Taken`]; `None` when the link closed first.
    fn read_report(&mut self, timeout: Option<Duration>) -> Result<Option<Report>> {
        let _ = self.link.set_read_timeout(timeout);
        let mut buf = Vec::new();
        loop {
            match wire::read_frame(&mut self.link, &mut buf, MAX_MESSAGE) {
                Ok(true) => match wire::decode(&buf, "a child's report")? {
                    Report::Taken => self.taken = true,
                    report => return Ok(Some(report)),
                },
                Ok(false) => return Ok(None),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    let hint = if self.taken {
                        ""
                    } else {
                        " (it never took its role: does main call procman::init() first?)"
                    };
                    return Err(Error::Timeout {
                        what: format!("child process {} did not report in time{hint}", self.pid()),
                    });
                }
                Err(_) => return Ok(None),
            }
        }
    }

    /// The error for a child that ended without a report: [`Error::InitMissing`] when it exited
    /// by itself without ever taking its role, [`Error::ChildExited`] otherwise.
    fn ended(&mut self, detail: Option<String>) -> Error {
        let status = self.wait_or_kill(Duration::from_secs(5));
        let pid = self.pid();
        let exited_by_itself = status.starts_with("exit code");
        match detail {
            None if !self.taken && exited_by_itself => Error::InitMissing {
                pid,
                program: std::env::current_exe().map_or_else(|_| "this program".into(), |p| p.display().to_string()),
                status,
            },
            None => Error::ChildExited { pid, status },
            Some(m) => Error::ChildExited { pid, status: format!("{status}: {m}") },
        }
    }

    /// Waits for a server child to listen and returns its address.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<Address> {
        let report = self.read_report(Some(timeout));
        let _ = self.link.set_read_timeout(None);
        match report {
            Ok(Some(Report::Ready(a))) => Ok(a),
            Ok(Some(Report::Failed(m))) => {
                self.wait_or_kill(Duration::from_secs(1));
                Err(Error::io("starting the manager", std::io::Error::other(m)))
            }
            Ok(_) => Err(self.ended(None)),
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
/// (integration tests use [`crate::child_entry_point!`] instead), else [`join`](Self::join)
/// fails with [`Error::InitMissing`]. Arguments and result travel encoded, so proxies can be
/// passed both ways. A child dies with its parent, and dropping an unjoined `Process` kills it:
/// nothing is left behind.
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
        role::check_not_unclaimed_child();
        let args = wire::encode(&args, "the arguments of the spawned function")?;
        let trampoline: Trampoline = trampoline::<A, R>;
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
    /// with [`Error::InitMissing`] when the child's `main` does not call [`crate::init`], and
    /// with [`Error::ChildExited`] (with the exit status) when the child ended without a
    /// result otherwise: killed, exited from inside the function, or failed to start.
    pub fn join(self) -> Result<R> {
        self.join_blocking()
    }

    /// [`join`](Self::join), without blocking the executor: the child is waited for on a
    /// thread of its own.
    ///
    /// ```rust,no_run
    /// use procman::Process;
    ///
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// fn main() -> procman::Result<()> {
    ///     procman::init();
    ///     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    ///     rt.block_on(async { assert_eq!(Process::spawn(square, 7)?.join_async().await?, 49); Ok(()) })
    /// }
    /// ```
    pub async fn join_async(self) -> Result<R>
    where
        R: Send + 'static,
    {
        crate::asynchronous::off_thread(move || self.join_blocking()).await
    }

    fn join_blocking(mut self) -> Result<R> {
        let report = self.inner.read_report(None)?;
        let pid = self.pid();
        match report {
            Some(Report::Returned(b)) => {
                self.inner.wait_or_kill(Duration::from_secs(5));
                wire::decode(&b, "the result of the spawned function")
            }
            Some(Report::Panicked(message)) => {
                self.inner.wait_or_kill(Duration::from_secs(5));
                Err(Error::ChildPanicked { pid, message })
            }
            Some(Report::Failed(m)) => Err(self.inner.ended(Some(m))),
            Some(Report::Taken | Report::Ready(_)) | None => Err(self.inner.ended(None)),
        }
    }

    /// Sends SIGKILL to the child (it is reaped when the `Process` is joined or dropped).
    pub fn kill(&mut self) -> Result<()> {
        if self.inner.reaped {
            return Ok(());
        }
        // Not yet reaped (that happens only in join or drop), so the pid cannot have been reused.
        self.inner.child.kill().map_err(|e| Error::io("killing a child process", e))
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
