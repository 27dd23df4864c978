//! Async proxies: what the async proxy methods that `#[shared]` generates run on.
//!
//! An async call goes through the process's one multiplexed connection to its manager
//! (`mux.rs`); the manager runs each call on a thread of its own (`server/multiplex.rs`), so a
//! call that blocks there delays no other. Nothing here needs a particular executor: a call is
//! a plain future, woken by the connection's reader thread. Under tokio (the `tokio` feature),
//! the owner of a call is its task; elsewhere, its thread (see [`owner`]).
//!
//! | file | what |
//! | --- | --- |
//! | `calls.rs` | the functions generated code calls: typed requests, checked results |
//! | `mux.rs` | the multiplexed connection: request ids, the reader thread, cancellation and undo |

pub(crate) mod calls;
pub(crate) mod mux;

use crate::error::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Who makes the current call, as the manager tells owners apart (an `RLock`'s holder): the
/// tokio task running it, or else the thread.
pub(crate) fn owner() -> u64 {
    #[cfg(feature = "tokio")]
    if let Some(id) = tokio::task::try_id() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        // Task ids and thread numbers apart: the top bit set for tasks.
        return BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(id) | 1 << 63;
    }
    thread_number()
}

/// A number for this thread, unique in the process; never 0, top bit clear.
fn thread_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// Runs `f` on a thread of its own and resolves to its result: for the blocking steps
/// (connecting, a handshake, waiting for a process) of async calls, so that no executor
/// thread blocks on them.
pub(crate) fn off_thread<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> OffThread<T> {
    let shared = Arc::new(Mutex::new(Outcome { value: None, waker: None, spawned: true }));
    let s = shared.clone();
    let spawned = std::thread::Builder::new().name("procman-async-step".into()).spawn(move || {
        let value = f();
        let waker = {
            let mut o = crate::unpoison::lock(&s);
            o.value = Some(value);
            o.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    });
    if spawned.is_err() {
        crate::unpoison::lock(&shared).spawned = false;
    }
    OffThread { shared }
}

struct Outcome<T> {
    value: Option<Result<T>>,
    waker: Option<Waker>,
    spawned: bool,
}

/// The future of [`off_thread`].
pub(crate) struct OffThread<T> {
    shared: Arc<Mutex<Outcome<T>>>,
}

impl<T> Future for OffThread<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let mut o = crate::unpoison::lock(&self.shared);
        if !o.spawned {
            return Poll::Ready(Err(Error::io(
                "starting a thread for an async step",
                std::io::Error::other("the OS refused a thread"),
            )));
        }
        match o.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                o.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
