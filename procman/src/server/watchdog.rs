//! The watchdog of multiplexed connections: it finds a connection whose reading thread has been
//! inside one call for longer than a tick, and starts another thread to read on.
//!
//! A multiplexed connection's thread runs each call itself, where it read it (no hand-off to
//! another thread, so a quick call costs what it costs on a blocking connection). A call that
//! blocks (a `get` waiting an hour) would then hold up every call behind it; the watchdog sees
//! that the reader has been in the same call for a whole tick and hands the reading on to a
//! worker (see `multiplex.rs`). This is the scheme of Go's runtime monitor, which takes a
//! processor back from a thread blocked in a system call.
//!
//! The watchdog ticks only while calls run: after [`IDLE_TICKS`] ticks that saw no call running
//! it parks, and the next call to start wakes it. So an idle manager, or one whose callers all
//! wait in blocked calls, costs no CPU for it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::Thread;
use std::time::Duration;

/// How often the watchdog looks: a blocked call holds up the calls behind it on its connection
/// for one to two ticks.
pub(super) const TICK: Duration = Duration::from_micros(250);

/// Ticks without a running call before the watchdog parks.
const IDLE_TICKS: u32 = 40;

/// No call runs inline: the reading thread reads.
const IDLE: u64 = 0;
/// The watchdog took the reading away from the call that was running; a worker is starting to
/// read on.
const RESCUED: u64 = 2;
/// No worker could be started: the thread in the call reads on when it ends.
const FAILED: u64 = 6;

/// One connection's reading thread, as the watchdog sees it.
pub(super) trait Watched: Send + Sync {
    /// The state word: [`IDLE`], [`RESCUED`], or `tick << 2 | 1` while a call that started at
    /// `tick` runs inline.
    fn watch(&self) -> &Watch;
    /// Starts another thread reading the connection; called once the watchdog took the
    /// reading away from the thread in a call.
    fn rescue(self: Arc<Self>);
}

/// The state of one connection's inline call.
#[derive(Debug, Default)]
pub(super) struct Watch(AtomicU64);

impl Watch {
    /// The reading thread is about to run a call itself. Returns what [`end`](Self::end) needs.
    pub(super) fn begin(&self) -> u64 {
        let dog = dog();
        let running = dog.tick.load(Ordering::Relaxed) << 2 | 1;
        self.0.store(running, Ordering::Relaxed);
        // Ordered against the watchdog's "parked, then look once more": either it sees this
        // call or this sees it parked.
        fence(Ordering::SeqCst);
        if dog.parked.load(Ordering::Relaxed)
            && let Some(t) = dog.thread.get()
        {
            t.unpark();
        }
        running
    }

    /// The call ended: true when the thread still reads the connection, false when the watchdog
    /// took the reading away meanwhile.
    /// `running` is what [`begin`](Self::begin) returned: a thread that read on after a
    /// rescue begins its calls at a later tick, so its state never equals this one's.
    pub(super) fn end(&self, running: u64) -> bool {
        self.0.compare_exchange(running, IDLE, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// The worker that the watchdog started reads now.
    pub(super) fn handed_on(&self) {
        self.0.store(IDLE, Ordering::Release);
    }

    /// No worker could be started to read on.
    pub(super) fn hand_on_failed(&self) {
        self.0.store(FAILED, Ordering::Release);
    }

    /// True (once) when handing the reading on failed: the thread that ran the call reads on.
    pub(super) fn reclaim_failed(&self) -> bool {
        self.0.compare_exchange(FAILED, IDLE, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// The reading is being handed on (a worker is starting).
    pub(super) fn handing_on(&self) -> bool {
        self.0.load(Ordering::Acquire) == RESCUED
    }

    /// Takes the reading away from a call that started at least a whole tick before `tick`.
    fn take_if_stuck(&self, tick: u64) -> Option<bool> {
        let s = self.0.load(Ordering::Acquire);
        if s & 1 == 0 {
            return None;
        }
        if tick.saturating_sub(s >> 2) < 2 {
            return Some(false);
        }
        Some(self.0.compare_exchange(s, RESCUED, Ordering::AcqRel, Ordering::Relaxed).is_ok())
    }
}

struct Dog {
    tick: AtomicU64,
    parked: AtomicBool,
    thread: OnceLock<Thread>,
    watched: Mutex<Vec<Weak<dyn Watched>>>,
}

fn dog() -> &'static Dog {
    static DOG: OnceLock<Dog> = OnceLock::new();
    DOG.get_or_init(|| Dog {
        tick: AtomicU64::new(0),
        parked: AtomicBool::new(false),
        thread: OnceLock::new(),
        watched: Mutex::new(Vec::new()),
    })
}

/// Watches `connection` from now until it is dropped; starts the watchdog on first use.
pub(super) fn watch(connection: Weak<dyn Watched>) -> std::io::Result<()> {
    let dog = dog();
    crate::unpoison::lock(&dog.watched).push(connection);
    if dog.thread.get().is_none() {
        static START: Mutex<()> = Mutex::new(());
        let _once = crate::unpoison::lock(&START);
        if dog.thread.get().is_none() {
            let t = std::thread::Builder::new().name("procman-watchdog".into()).spawn(move || run(dog))?;
            let _ = dog.thread.set(t.thread().clone());
        }
    }
    Ok(())
}

fn run(dog: &'static Dog) {
    let Dog { tick: ticks, parked, watched, .. } = dog;
    let mut idle = 0u32;
    loop {
        std::thread::sleep(TICK);
        let tick = ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let mut running = false;
        let mut stuck = Vec::new();
        crate::unpoison::lock(watched).retain(|w| match w.upgrade() {
            Some(c) => {
                match c.watch().take_if_stuck(tick) {
                    Some(true) => stuck.push(c),
                    Some(false) => running = true,
                    None => {}
                }
                true
            }
            None => false,
        });
        for c in stuck {
            c.rescue();
        }
        idle = if running { 0 } else { idle + 1 };
        if idle >= IDLE_TICKS {
            parked.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let any = crate::unpoison::lock(watched)
                .iter()
                .filter_map(Weak::upgrade)
                .any(|c| c.watch().0.load(Ordering::Relaxed) & 1 == 1);
            if !any {
                std::thread::park();
            }
            parked.store(false, Ordering::Relaxed);
            idle = 0;
        }
    }
}
