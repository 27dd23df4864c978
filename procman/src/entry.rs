//! The child's side: [`init`], through which a process that procman started takes its role.
//!
//! The parent's side is `child.rs`; the roles and the messages between the two are in
//! `role.rs`. This module sits above both `server` and `child`, so that neither needs the other.

use crate::auth;
use crate::child::{self, Trampoline};
use crate::role::{self, MAX_MESSAGE, Report, Role, ServerConfig, Spec};
use crate::server::Server;
use crate::transport::Stream;
use crate::unpoison;
use crate::wire;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;

/// Lets a process that procman started take its role: serve a manager, or run a spawned
/// function. Call it first thing in `main` (or put `#[procman::main]` on `main`); in any other
/// process it returns at once.
///
/// In a child it does not return: the process exits when its role ends (exit code 0, or 101
/// when a spawned function panicked). A child whose `main` does not call it runs the program
/// instead, and its parent gets [`Error::InitMissing`](crate::Error::InitMissing).
///
/// ```
/// procman::init(); // first thing in `main`
/// // ... the program
/// ```
pub fn init() {
    let Some(fd) = role::take() else { return };
    // SAFETY: the parent put this descriptor, an end of a socket pair, in the child for this
    // purpose and named it in PROCMAN_CHILD together with its own pid, which `take` checked;
    // `take` returns it once, and nothing else in this process owns it.
    let link = match unsafe { Stream::from_inherited(fd) } {
        Ok(link) => link,
        Err(_) => std::process::exit(1),
    };
    std::process::exit(run(link));
}

fn send(link: &mut Stream, report: &Report) {
    let mut buf = Vec::new();
    if wire::frame(report, &mut buf).is_ok() {
        let _ = link.write_all(&buf);
    }
}

/// Tells the parent that the role could not start; returns the exit code for that.
fn failed(link: &mut Stream, why: impl std::fmt::Display) -> i32 {
    send(link, &Report::Failed(why.to_string()));
    1
}

fn run(mut link: Stream) -> i32 {
    send(&mut link, &Report::Taken);
    let mut buf = Vec::new();
    let spec: Spec = match wire::read_frame(&mut link, &mut buf, MAX_MESSAGE) {
        Ok(true) => match wire::decode(&buf, "the child's instructions") {
            Ok(s) => s,
            Err(e) => return failed(&mut link, e),
        },
        _ => return 1,
    };
    if !child::exe_identity().is_ok_and(|id| id == spec.exe) {
        return failed(&mut link, "the child does not run the parent's executable (was it rebuilt?)");
    }
    auth::import(spec.process_key, spec.keyring);
    watch_parent(&link);
    match spec.role {
        Role::Server(config) => serve(link, config),
        Role::Call { trampoline, function, args } => {
            // SAFETY: the parent computed `trampoline` from a `Trampoline` (an instance of
            // `child::trampoline::<A, R>`) in the same executable, which we checked is the file
            // we run, so the same offset from the anchor is that function here.
            let t: Trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(child::from_offset(trampoline)) };
            let report = t(child::from_offset(function), &args);
            let code = if matches!(report, Report::Returned(_)) { 0 } else { 101 };
            send(&mut link, &report);
            code
        }
    }
}

/// Exits this process as soon as the parent's end of the link closes.
fn watch_parent(link: &Stream) {
    let Ok(mut watch) = link.try_clone() else { return };
    let _ = std::thread::Builder::new().name("procman-parent-watch".into()).spawn(move || {
        let mut b = [0u8; 64];
        loop {
            match watch.read(&mut b) {
                Ok(0) | Err(_) => {
                    remove_socket_file();
                    // SAFETY: _exit ends the process at once without running atexit handlers,
                    // which could block on locks held by other threads at this moment.
                    unsafe { libc::_exit(0) }
                }
                Ok(_) => {}
            }
        }
    });
}

/// The socket file of the server this child runs, removed when the parent dies.
static SOCKET_FILE: Mutex<Option<PathBuf>> = Mutex::new(None);

fn remove_socket_file() {
    if let Ok(mut g) = SOCKET_FILE.try_lock()
        && let Some(p) = g.take()
    {
        let _ = std::fs::remove_file(p);
    }
}

fn serve(mut link: Stream, config: ServerConfig) -> i32 {
    let server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => return failed(&mut link, e),
    };
    *unpoison::lock(&SOCKET_FILE) = server.socket_file();
    send(&mut link, &Report::Ready(server.address().clone()));
    server.serve();
    remove_socket_file();
    0
}
