//! Which of a server's fast-path connections run hot: a few serving slots per process.
//!
//! A proxy call through a shared-memory channel is fast when both of its threads are awake
//! on cores of their own: the client's waits for its reply and the server's connection
//! thread's waits for the next request are then spins, and a call costs well under a
//! microsecond. With more client threads than cores (64 on 2), every pair cannot be awake at
//! once; left to the scheduler, each thread in turn spins for a partner that is not running,
//! then sleeps, and every call pays two wake-ups and two context switches.
//!
//! So the connection threads of a process take a *serving slot* before they answer a request,
//! and no more run hot than there are pairs of cores (`cores / 2`, at least one). A thread
//! with a slot keeps it from request to request while its client keeps calling; it gives it
//! up when it goes to sleep (its client went quiet, see [`Channel::wait`](super::shm)), when
//! its call blocks (a queue's `get`, see `sync/core.rs`), when its connection ends, or when
//! it has held it for a [`QUANTUM`] and other connections wait. Those wait in a queue, without
//! spinning, and take the slot in turn (a slot given up while others wait is handed over, not
//! left for the next arrival to take). Each connection's channel shows its client whether its
//! connection holds a slot (`hot` in the channel's header): a client spins for its reply only
//! then, and otherwise sleeps at once, instead of spinning for a server thread that waits its
//! turn. So the machine runs one hot pair per two cores, at the speed of a lone client, and
//! the switch between pairs costs a few wake-ups per quantum, not per call: the rotation that
//! limits the active threads to what the cores can run (as "concurrency restriction" locks do).
//! The server's thread also moves off the core its client is on when it finds itself there
//! (`Channel::note_cpus`): a hot pair begins with wake-ups, and the scheduler puts a thread it
//! wakes beside its waker.
//!
//! The price is fairness at the scale of a quantum, as a scheduler's: a connection that comes
//! to call while others wait waits for their quanta (64 connections: up to 64 ms).
//!
//! A slot's holder that neither calls nor sleeps (a method of a user type that blocks
//! without procman knowing: a `std::sync::mpsc` receive, a sleep, a long computation) would
//! hold up every waiting connection: its slot is taken from it by a waiter once it has held it
//! [`STALE`] past its quantum. So such a method delays the others by that long, once.
//!
//! The slots are one per process, whatever the managers it serves: they share the cores.

use super::shm::Channel;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a slot's holder keeps it while other connections wait for one.
pub(crate) const QUANTUM: Duration = Duration::from_millis(1);

/// How long past its quantum a holder may keep its slot without giving it up (see the module
/// docs) before a waiter takes it.
pub(crate) const STALE: Duration = Duration::from_millis(5);

/// A slot no thread holds.
const FREE: u64 = 0;
/// A slot given up while connections waited: only a waiter may take it.
const HANDED: u64 = 1;

/// The serving slots of a process.
pub(crate) struct Gate {
    /// Each slot's holder (a thread's token), or [`FREE`] or [`HANDED`].
    holders: Box<[AtomicU64]>,
    /// When each slot was last taken, in nanoseconds since `epoch`.
    since: Box<[AtomicU64]>,
    /// Threads waiting for a slot.
    waiting: AtomicU32,
    /// Whether a waiter watches the clock (see [`take`](Self::take)).
    lock: Mutex<bool>,
    turn: Condvar,
    epoch: Instant,
    quantum: u64,
    stale: u64,
}

/// What the current thread holds.
struct Held {
    gate: &'static Gate,
    slot: usize,
    channel: Arc<Channel>,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
    static TOKEN: u64 = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(HANDED + 1);

impl Gate {
    /// A gate of `slots` slots (at least one).
    pub(crate) fn new(slots: usize, quantum: Duration, stale: Duration) -> Gate {
        let slots = slots.max(1);
        Gate {
            holders: (0..slots).map(|_| AtomicU64::new(FREE)).collect(),
            since: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            waiting: AtomicU32::new(0),
            lock: Mutex::new(false),
            turn: Condvar::new(),
            epoch: Instant::now(),
            quantum: quantum.as_nanos() as u64,
            stale: stale.as_nanos() as u64,
        }
    }

    /// The process's gate: a slot for each two cores.
    pub(crate) fn process() -> &'static Gate {
        static GATE: OnceLock<Gate> = OnceLock::new();
        GATE.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Gate::new(cores / 2, QUANTUM, STALE)
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Takes a slot for the current thread: from `FREE` always, from `HANDED` when `waiter`.
    fn try_take(&self, me: u64, waiter: bool) -> Option<usize> {
        for (slot, holder) in self.holders.iter().enumerate() {
            let seen = holder.load(Ordering::Relaxed);
            if (seen == FREE || (waiter && seen == HANDED))
                && holder.compare_exchange(seen, me, Ordering::SeqCst, Ordering::Relaxed).is_ok()
            {
                self.since[slot].store(self.now(), Ordering::Relaxed);
                return Some(slot);
            }
        }
        None
    }

    /// Takes a slot held past its quantum by [`STALE`] (or handed to a waiter that never
    /// came for it).
    fn take_stale(&self, me: u64) -> Option<usize> {
        let now = self.now();
        for (slot, holder) in self.holders.iter().enumerate() {
            let seen = holder.load(Ordering::Relaxed);
            let since = self.since[slot].load(Ordering::Relaxed);
            if now.saturating_sub(since) > self.quantum + self.stale
                && holder.compare_exchange(seen, me, Ordering::SeqCst, Ordering::Relaxed).is_ok()
            {
                self.since[slot].store(now, Ordering::Relaxed);
                return Some(slot);
            }
        }
        None
    }

    /// Gives up `slot`: handed to a waiter if one waits, else free.
    fn give_up(&self, slot: usize, me: u64) {
        // SeqCst, with the waiter's count and its look at the slots: either this sees the
        // waiter, or the waiter sees the slot free.
        let next = if self.waiting.load(Ordering::SeqCst) > 0 { HANDED } else { FREE };
        if self.holders[slot].compare_exchange(me, next, Ordering::SeqCst, Ordering::Relaxed).is_err() {
            return; // taken from this thread meanwhile
        }
        if next == HANDED {
            // Under the lock: a waiter counts itself and looks at the slots under it, so it
            // has either taken the slot or waits on `turn` now.
            let _guard = crate::unpoison::lock(&self.lock);
            self.turn.notify_one();
        }
    }

    /// Waits for a slot and takes it.
    fn take(&self, me: u64) -> usize {
        if let Some(slot) = self.try_take(me, false) {
            return slot;
        }
        let look = Duration::from_nanos(self.stale);
        let mut watcher = crate::unpoison::lock(&self.lock);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // A slot handed over goes to a thread that waited for it, never to the one that comes
        // to wait (which may be the one that gave it up).
        let mut taken = self.try_take(me, false);
        while taken.is_none() {
            // One waiter at a time watches the clock for a holder that keeps its slot too
            // long; the others sleep until they are woken, so that a long queue costs no
            // wake-ups beside the hand-overs.
            let watching = !*watcher;
            if watching {
                *watcher = true;
                watcher = crate::unpoison::wait_timeout(&self.turn, watcher, look).0;
                *watcher = false;
            } else {
                watcher = crate::unpoison::wait(&self.turn, watcher);
            }
            taken = self.try_take(me, true).or_else(|| self.take_stale(me));
            if taken.is_some() && watching && self.waiting.load(Ordering::SeqCst) > 1 {
                // Another waiter takes over the watch.
                self.turn.notify_one();
            }
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        taken.unwrap_or_default()
    }

    /// True while the current thread holds `slot`.
    fn holds(&self, slot: usize, me: u64) -> bool {
        self.holders[slot].load(Ordering::Relaxed) == me
    }
}

/// The current thread is about to answer a request that came through `channel`: it takes a
/// serving slot of the process's gate, waiting its turn if need be, unless it holds one that is
/// still its to keep; then `channel` shows its client that it is served hot.
pub(crate) fn serve(channel: &Arc<Channel>) {
    serve_at(Gate::process(), channel);
}

pub(crate) fn serve_at(gate: &'static Gate, channel: &Arc<Channel>) {
    let me = TOKEN.with(|t| *t);
    let keep = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let held = h.as_mut()?;
        if !held.gate.holds(held.slot, me) {
            // Taken from this thread (it held it too long): nothing to give up.
            held.channel.set_hot(false);
            *h = None;
            return None;
        }
        if !Arc::ptr_eq(&held.channel, channel) {
            held.channel.set_hot(false);
            held.channel = channel.clone();
            channel.set_hot(true);
        }
        let gate = held.gate;
        let over = gate.waiting.load(Ordering::Relaxed) > 0
            && gate.now().saturating_sub(gate.since[held.slot].load(Ordering::Relaxed)) >= gate.quantum;
        if over {
            let held = h.take()?;
            held.channel.set_hot(false);
            gate.give_up(held.slot, me);
            return None;
        }
        Some(())
    });
    if keep.is_some() {
        return;
    }
    let slot = gate.take(me);
    channel.set_hot(true);
    HELD.with(|h| *h.borrow_mut() = Some(Held { gate, slot, channel: channel.clone() }));
}

/// True while the current thread holds a serving slot.
pub(crate) fn holds() -> bool {
    HELD.with(|h| h.borrow().is_some())
}

/// How long the current thread may still keep its slot while it sleeps: what is left of its
/// quantum (zero when it holds none).
pub(crate) fn left() -> Duration {
    HELD.with(|h| {
        let h = h.borrow();
        let Some(held) = h.as_ref() else { return Duration::ZERO };
        let gate = held.gate;
        if !gate.holds(held.slot, TOKEN.with(|t| *t)) {
            return Duration::ZERO; // taken from this thread: `pause` forgets it
        }
        let age = gate.now().saturating_sub(gate.since[held.slot].load(Ordering::Relaxed));
        Duration::from_nanos(gate.quantum.saturating_sub(age))
    })
}

/// The current thread will not use its core for a while (it sleeps until its client calls,
/// or its call blocks, or its connection ends): it gives up its serving slot, if it holds one.
pub(crate) fn pause() {
    let Ok(Some(held)) = HELD.try_with(|h| h.borrow_mut().take()) else { return };
    held.channel.set_hot(false);
    let me = TOKEN.with(|t| *t);
    held.gate.give_up(held.slot, me);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak(g: Gate) -> &'static Gate {
        Box::leak(Box::new(g))
    }

    /// The server's side of a channel (its client's side is dropped: only the server's side
    /// is written here).
    fn channel() -> Arc<Channel> {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (server, _fd) = Channel::create(a).unwrap();
        Arc::new(server)
    }

    #[test]
    fn a_lone_connection_keeps_its_slot_and_shows_it_hot_until_it_pauses() {
        let gate = leak(Gate::new(1, QUANTUM, STALE));
        let c = channel();
        serve_at(gate, &c);
        assert!(c.is_hot());
        serve_at(gate, &c);
        assert!(c.is_hot());
        pause();
        assert!(!c.is_hot());
        assert_eq!(gate.holders[0].load(Ordering::Relaxed), FREE);
    }

    #[test]
    fn a_waiting_connection_gets_the_slot_when_the_holder_pauses_or_its_quantum_ends() {
        let gate = leak(Gate::new(1, Duration::from_millis(20), Duration::from_secs(60)));
        let (a, b) = (channel(), channel());
        serve_at(gate, &a);
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || {
                serve_at(gate, &b);
                let hot = b.is_hot();
                pause();
                hot
            })
        };
        while gate.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // Within its quantum, the holder keeps its slot however many wait.
        serve_at(gate, &a);
        assert!(a.is_hot());
        std::thread::sleep(Duration::from_millis(25));
        // Past it, its next request waits its turn: the slot goes to the waiter first.
        serve_at(gate, &a);
        assert!(waiter.join().unwrap(), "the waiter was served hot");
        assert!(a.is_hot());
        pause();
    }

    #[test]
    fn a_slot_held_past_its_quantum_without_a_word_is_taken() {
        let gate = leak(Gate::new(1, Duration::from_millis(1), Duration::from_millis(5)));
        let (a, b) = (channel(), channel());
        serve_at(gate, &a); // and never pauses: a method that blocks unseen
        let start = Instant::now();
        std::thread::spawn(move || {
            serve_at(gate, &b);
            pause();
        })
        .join()
        .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(5));
        // The holder finds it lost its slot at its next request, and takes one again.
        serve_at(gate, &a);
        assert!(a.is_hot());
        pause();
    }
}
