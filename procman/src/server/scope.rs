//! What code running in a call can ask about it: the server it runs in and whether its caller
//! is still connected. Set by [`CallScope`] around each creator and method, restored when the
//! scope ends, so a panic inside the call cannot leave it set.

use super::listen::Core;
use crate::proxy::BaseProxy;
use crate::shared::{Caller, Dispatch, Referent};
use crate::transport::Stream;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// A connection as the calls made on it see it.
pub(super) struct Serving {
    pub(super) core: Weak<Core>,
    /// The connection's socket, to see whether the caller hung up.
    pub(super) connection: Arc<Stream>,
    /// Raised when the caller of this one call gave up on it (a multiplexed connection's
    /// `Cancel`, or its end): the call's waits end as when the caller hangs up.
    pub(super) cancelled: Option<Arc<Cancel>>,
}

/// The cancel of one call of a multiplexed connection: a flag, and the condition variable the
/// call waits on, if it waits, so that a cancel wakes it at once (no call of a multiplexed
/// connection polls for its caller, which lets thousands of them wait).
#[derive(Default)]
pub(crate) struct Cancel {
    flag: AtomicBool,
    /// The address of the `Condvar` the call waits on, while it waits.
    waiting: std::sync::Mutex<Option<usize>>,
}

impl Cancel {
    pub(super) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Cancels the call and wakes its wait. Returns false when it was cancelled already.
    pub(super) fn set(&self) -> bool {
        let first = !self.flag.swap(true, Ordering::Relaxed);
        let waiting = crate::unpoison::lock(&self.waiting);
        if let Some(cv) = *waiting {
            // SAFETY: `cv` is the address of a `Condvar` that a call of this connection waits
            // on right now: `waiting_on` registered it, and the `Waiting` it returned
            // unregisters it (under this lock, which is held here) before the wait returns;
            // the waiting call holds the object that owns the condition variable all that time.
            unsafe { (*(cv as *const std::sync::Condvar)).notify_all() };
        }
        first
    }
}

/// A wait registered with its call's [`Cancel`], unregistered when dropped.
pub(crate) struct Waiting {
    cancel: Arc<Cancel>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        *crate::unpoison::lock(&self.cancel.waiting) = None;
    }
}

/// Registers `cv` as what the current call waits on, when the call can be cancelled (a call of
/// a multiplexed connection): a cancel then notifies it. `None` for other calls, which poll.
pub(crate) fn waiting_on(cv: &std::sync::Condvar) -> Option<Waiting> {
    let cancel = CURRENT.with(|c| c.borrow().as_ref().and_then(|s| s.cancelled.clone()))?;
    *crate::unpoison::lock(&cancel.waiting) = Some(cv as *const std::sync::Condvar as usize);
    Some(Waiting { cancel })
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Serving>>> = const { RefCell::new(None) };
    /// Inside [`uncancellable`]: a cancel does not end the waits.
    static UNCANCELLABLE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with the current call's cancel ignored (a hang-up still counts): for what a call
/// must finish even when its caller gave up on it, as a condition's `wait` taking its lock back.
pub(crate) fn uncancellable<R>(f: impl FnOnce() -> R) -> R {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            UNCANCELLABLE.with(|u| u.set(u.get() - 1));
        }
    }
    UNCANCELLABLE.with(|u| u.set(u.get() + 1));
    let _restore = Restore;
    f()
}

/// While it lives, the current thread runs a call of `caller` on the connection `serving`:
/// [`Caller::current`], [`local_referent`], [`caller_gone`] and the pins of stored proxies
/// answer for that call. Dropping it (also while unwinding) restores what was set before.
pub(super) struct CallScope {
    previous: Option<Rc<Serving>>,
    previous_caller: Option<Caller>,
}

impl CallScope {
    pub(super) fn enter(serving: &Rc<Serving>, caller: Caller) -> CallScope {
        let previous = CURRENT.with(|c| c.replace(Some(serving.clone())));
        let previous_caller = Caller::current();
        Caller::set_current(Some(caller));
        CallScope { previous, previous_caller }
    }
}

impl Drop for CallScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
        Caller::set_current(self.previous_caller);
    }
}

/// The server running the current call, if any.
pub(super) fn current_core() -> Option<Arc<Core>> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(|s| s.core.upgrade()))
}

/// The referent of `proxy` when it lives in the server running the current call (a creator or
/// method that received a proxy of its own server, as `Condition(lock)` does); `None` elsewhere
/// or when it has another type.
pub(crate) fn local_referent<T: Dispatch>(proxy: &BaseProxy) -> Option<Arc<Referent<T>>> {
    let core = current_core()?;
    if proxy.token().address() != &core.address {
        return None;
    }
    let (object, _) = core.table().get(proxy.token().id())?;
    object.as_any().downcast::<Referent<T>>().ok()
}

/// True inside a call in a server, where a blocked call can check that its caller is still
/// there.
pub(crate) fn caller_connection_watched() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// True when the caller of the current call has closed its connection (its process died or
/// its thread ended) while the call was running.
pub(crate) fn caller_gone() -> bool {
    CURRENT.with(|c| {
        c.borrow().as_ref().is_some_and(|s| {
            let cancelled = s.cancelled.as_ref().is_some_and(|f| f.is_set()) && UNCANCELLABLE.with(|u| u.get() == 0);
            cancelled || s.connection.hung_up()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_restored_when_a_call_panics() {
        let (a, _b) = Stream::pair().unwrap();
        let serving = Rc::new(Serving { core: Weak::new(), connection: Arc::new(a), cancelled: None });
        let caller = Caller { client: 7, connection: 3 };
        assert!(!caller_connection_watched());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _scope = CallScope::enter(&serving, caller);
            assert!(caller_connection_watched());
            assert_eq!(Caller::current(), Some(caller));
            assert!(!caller_gone());
            panic!("a method panics");
        }));
        assert!(r.is_err());
        assert!(!caller_connection_watched(), "the scope ended with the panic");
        assert_eq!(Caller::current(), None);
    }
}
