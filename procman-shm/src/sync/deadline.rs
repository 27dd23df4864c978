//! Deadlines for the timed waits of the crate: a `timeout` becomes an [`Instant`] once, at the
//! start of an operation, and every sleep is bounded by the time left until it.

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use crate::sys::{self, Wake};

/// The deadline `timeout` from now (`None`: no deadline); a timeout too large for an `Instant`
/// becomes [`far_future`].
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|d| Instant::now().checked_add(d).unwrap_or_else(far_future))
}

/// An instant a century from now: later than any wait can last.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Time left until `deadline`: `Ok(None)` for no deadline, `Err(())` if it has passed.
pub(crate) fn remaining(deadline: Option<Instant>) -> std::result::Result<Option<Duration>, ()> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let now = Instant::now();
            if now >= d { Err(()) } else { Ok(Some(d - now)) }
        }
    }
}

/// Sleeps on the futex `word` while it holds `expected`, until woken or `deadline`: true when
/// woken (or the word changed), false when the deadline passed. Interrupted sleeps are resumed.
pub(crate) fn futex_wait_until(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool {
    loop {
        let Ok(left) = remaining(deadline) else {
            return false;
        };
        match sys::futex_wait(word, expected, left) {
            Wake::Woken | Wake::Changed => return true,
            Wake::TimedOut | Wake::Interrupted => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        assert_eq!(deadline_after(None), None);
        assert_eq!(remaining(None), Ok(None));
        let d = deadline_after(Some(Duration::from_secs(60)));
        assert!(remaining(d).unwrap().unwrap() <= Duration::from_secs(60));
        assert!(remaining(deadline_after(Some(Duration::MAX))).unwrap().is_some(), "clamped, not overflowed");
        assert_eq!(remaining(Some(Instant::now())), Err(()));
        let word = AtomicU32::new(0);
        assert!(!futex_wait_until(&word, 0, deadline_after(Some(Duration::from_millis(5)))));
        assert!(futex_wait_until(&word, 1, None), "the word does not hold the expected value");
    }
}
