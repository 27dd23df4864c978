//! Locking that ignores poisoning: `unpoison::lock(&mutex)` instead of
//! `mutex.lock().unwrap_or_else(|e| e.into_inner())`.
//!
//! A std lock is poisoned when a thread panics while holding it. procman ignores that, on
//! purpose, everywhere in the runtime:
//!
//! - a panic in a shared object's method is caught and sent to its caller as
//!   [`Error::Remote`](crate::Error::Remote); the object stays usable, as an object whose method
//!   raised does in Python. Refusing every later call would turn one bad call into a dead
//!   object for every client;
//! - the runtime's own tables (the server's objects, the client's connections, the keyring) are
//!   changed in steps that leave them consistent at every point a panic could occur, so the data
//!   behind a poisoned lock is as good as the data behind a clean one;
//! - a panic must not spread to threads that merely touch the same lock later: a server
//!   connection thread that panics must not take the other connections down with it.

use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, WaitTimeoutResult};
use std::time::Duration;

/// Locks `mutex`, poisoned or not.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The value of a mutex held exclusively, poisoned or not.
pub(crate) fn get_mut<T: ?Sized>(mutex: &mut Mutex<T>) -> &mut T {
    mutex.get_mut().unwrap_or_else(|e| e.into_inner())
}

/// Shared access to `lock`, poisoned or not.
pub(crate) fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// Exclusive access to `lock`, poisoned or not.
pub(crate) fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv`, giving up `guard` meanwhile, and takes the lock back poisoned or not.
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` for at most `timeout`, as [`wait`] does.
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
    cv.wait_timeout(guard, timeout).unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_still_gives_its_value() {
        let m = Arc::new(Mutex::new(1));
        let rw = Arc::new(RwLock::new(2));
        let (m2, rw2) = (m.clone(), rw.clone());
        let _ = std::thread::spawn(move || {
            let _a = m2.lock().unwrap();
            let _b = rw2.write().unwrap();
            panic!("poison both");
        })
        .join();
        assert!(m.is_poisoned() && rw.is_poisoned());
        *lock(&m) += 1;
        *write(&rw) += 1;
        assert_eq!((*lock(&m), *read(&rw)), (2, 3));
        let cv = Condvar::new();
        let (g, r) = wait_timeout(&cv, lock(&m), Duration::from_millis(1));
        assert!(r.timed_out());
        assert_eq!(*g, 2);
        drop(g);
        let ready = Arc::new((Mutex::new(false), Condvar::new()));
        let r2 = ready.clone();
        let t = std::thread::spawn(move || {
            *lock(&r2.0) = true;
            r2.1.notify_all();
        });
        let mut g = lock(&ready.0);
        while !*g {
            g = wait(&ready.1, g);
        }
        drop(g);
        t.join().unwrap();
    }
}
