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
//! without procman knowing: a `std::sync::mpsc` receive, a `Condvar` of its own, a sleep, a
//! long computation) would hold up every waiting connection. So each holder publishes the
//! call it runs (a number it sets as it begins and ends each call, see [`served`]), and a
//! waiter takes the slot of a holder that is asleep in a call (its thread's state in
//! `/proc/self/task/<tid>/stat`), or that still runs the call it ran at the last look, or
//! that kept its slot [`STALE`] past its quantum. A connection that comes to wait looks on
//! arrival and again after [`ARRIVAL_LOOK`] (the holder may be about to block, waiting for
//! the very caller that comes); one waiter at a time then watches, every [`BLOCKED_LOOK`].
//! So a user type whose callers wait for each other in its methods (a mailbox of its own)
//! makes a round trip in about twice what it takes on the socket path, which has no slots
//! (procman-bench's user-blocking row: 36-73 µs against 17-33 µs between two processes, on a
//! VM whose wake-ups are slow), and a method that blocks or computes for long
//! delays the others by 20 µs to 2 ms. The watch costs a thousand wake-ups a second, and only
//! while connections wait; looks five times as often cost the 64 threads of the harness a
//! tenth of their calls.
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

/// How soon a connection that comes to wait looks again at a holder asleep in a call (see
/// [`Gate::take`]).
pub(crate) const ARRIVAL_LOOK: Duration = Duration::from_micros(20);

/// How often the waiter that watches looks at the calls the holders run: a call still running
/// at its next look (so for between one and two of these) has its slot taken from it.
pub(crate) const BLOCKED_LOOK: Duration = Duration::from_micros(1000);

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
    /// Each slot's holder's thread id, to see whether it sleeps (see [`sleeps`]).
    tids: Box<[AtomicU32]>,
    /// The call each slot's holder runs: its number times two, plus one while it runs, mixed
    /// with the holder's token (see [`Held::running`]).
    calls: Box<[AtomicU64]>,
    /// Threads waiting for a slot.
    waiting: AtomicU32,
    /// Whether a waiter watches the clock (see [`take`](Self::take)); the waiters' lock.
    watch: Mutex<bool>,
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
    /// The calls this thread ran with it.
    calls: u64,
    /// This thread's token.
    me: u64,
}

impl Held {
    /// The thread begins a call (`true`) or ended one.
    fn running(&mut self, running: bool) {
        if running {
            self.calls += 1;
        }
        // With the thread's token: another holder's call never passes for this one.
        let call = (self.me << 32) ^ (self.calls * 2 + running as u64);
        self.gate.calls[self.slot].store(call, Ordering::Relaxed);
    }
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
    static TOKEN: u64 = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    // SAFETY: gettid takes no arguments and cannot fail.
    static TID: u32 = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(HANDED + 1);

impl Gate {
    /// A gate of `slots` slots (at least one).
    pub(crate) fn new(slots: usize, quantum: Duration, stale: Duration) -> Gate {
        let slots = slots.max(1);
        Gate {
            holders: (0..slots).map(|_| AtomicU64::new(FREE)).collect(),
            since: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            calls: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            tids: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            waiting: AtomicU32::new(0),
            watch: Mutex::new(false),
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

    /// Takes a slot whose holder runs the call it ran at the last look (`looked`, which this
    /// updates), or that was held past its quantum by [`STALE`] (or handed to a waiter that
    /// never came for it).
    fn take_stale(&self, me: u64, looked: &mut [u64]) -> Option<usize> {
        let now = self.now();
        for (slot, holder) in self.holders.iter().enumerate() {
            let seen = holder.load(Ordering::Relaxed);
            let since = self.since[slot].load(Ordering::Relaxed);
            let call = self.calls[slot].load(Ordering::Relaxed);
            // In a call that it ran at the last look, or asleep in one: its method blocks
            // where procman cannot see it. (Asleep between calls, it keeps its slot while its
            // client wakes up to call again, for what is left of its quantum.)
            let blocked = call % 2 == 1
                && (call == looked[slot] || sleeps(self.tids[slot].load(Ordering::Relaxed)))
                // (and still in it after the look at /proc, which takes microseconds)
                && self.calls[slot].load(Ordering::Relaxed) == call;
            looked[slot] = call;
            let stale = now.saturating_sub(since) > self.quantum + self.stale;
            if (stale || (blocked && seen > HANDED))
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
            let _guard = crate::unpoison::lock(&self.watch);
            self.turn.notify_one();
        }
    }

    /// Waits for a slot and takes it; `gave_up`: the current thread just gave one up, to wait
    /// its turn.
    fn take(&self, me: u64, gave_up: bool) -> usize {
        if let Some(slot) = self.try_take(me, false) {
            return slot;
        }
        let look = Duration::from_nanos(self.stale).min(BLOCKED_LOOK);
        let mut looked = vec![0; self.holders.len()];
        let mut watcher = crate::unpoison::lock(&self.watch);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // A slot handed over goes to a thread that waited for it, never back to the one that
        // gave it up (another newcomer may take one, which some waiter was not woken for).
        // A holder asleep in a call now (its method blocks where procman cannot see it) need
        // not be waited for.
        let mut taken = self.try_take(me, !gave_up).or_else(|| self.take_stale(me, &mut looked));
        if taken.is_none() && !gave_up {
            precise_timers();
            // And again shortly: the holder may be about to block (the caller this one would
            // wake, say), which the look on arrival came too early to see.
            watcher = crate::unpoison::wait_timeout(&self.turn, watcher, ARRIVAL_LOOK).0;
            taken = self.try_take(me, true).or_else(|| self.take_stale(me, &mut looked));
        }
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
            taken = self.try_take(me, true).or_else(|| if watching { self.take_stale(me, &mut looked) } else { None });
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

/// Lets the current thread's timed waits end when they should rather than up to 50 µs later
/// (the default timer slack), for [`ARRIVAL_LOOK`]; once per thread.
fn precise_timers() {
    thread_local!(static SET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if !SET.get() {
        SET.set(true);
        // SAFETY: PR_SET_TIMERSLACK takes a number and changes only the calling thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };
    }
}

/// True when thread `tid` of this process sleeps (state `S` or `D` in its `stat`): a holder
/// asleep inside a call waits for something procman does not see. A look costs a read of
/// `/proc`, made only by a thread that comes to wait and by the watch.
fn sleeps(tid: u32) -> bool {
    if tid == 0 {
        return false;
    }
    let Ok(stat) = std::fs::read(format!("/proc/self/task/{tid}/stat")) else { return false };
    // The state follows the command name, which ends at the last ')'.
    let Some(end) = stat.iter().rposition(|b| *b == b')') else { return false };
    matches!(stat.get(end + 2), Some(b'S' | b'D'))
}

/// The current thread is about to answer a request that came through `channel`: it takes a
/// serving slot of the process's gate, waiting its turn if need be, unless it holds one that is
/// still its to keep; then `channel` shows its client that it is served hot.
pub(crate) fn serve(channel: &Arc<Channel>) {
    serve_at(Gate::process(), channel);
}

pub(crate) fn serve_at(gate: &'static Gate, channel: &Arc<Channel>) {
    let me = TOKEN.with(|t| *t);
    // Some(true): keeps its slot; Some(false): gave it up, its quantum over; None: held none.
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
            return Some(false);
        }
        held.running(true);
        Some(true)
    });
    let gave_up = match keep {
        Some(true) => return,
        Some(false) => true,
        None => false,
    };
    let slot = gate.take(me, gave_up);
    channel.set_hot(true);
    gate.tids[slot].store(TID.with(|t| *t), Ordering::Relaxed);
    let mut held = Held { gate, slot, channel: channel.clone(), calls: 0, me };
    held.running(true);
    HELD.with(|h| *h.borrow_mut() = Some(held));
}

/// The current thread answered the request it was serving: a long wait of its (for the next
/// request) is no call blocked unseen.
pub(crate) fn served() {
    let me = TOKEN.with(|t| *t);
    let _ = HELD.try_with(|h| {
        if let Some(held) = h.borrow_mut().as_mut()
            && held.gate.holds(held.slot, me)
        {
            held.running(false);
        }
    });
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

    /// A gate of one slot whose quantum and staleness never run out in a test, and two
    /// connections.
    fn one_slot_no_clock() -> (&'static Gate, Arc<Channel>, Arc<Channel>) {
        (leak(Gate::new(1, Duration::from_secs(60), Duration::from_secs(60))), channel(), channel())
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
        served(); // between calls: its client calls again soon
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
        served();
        assert!(a.is_hot());
        std::thread::sleep(Duration::from_millis(25));
        // Past it, its next request waits its turn: the slot goes to the waiter first.
        serve_at(gate, &a);
        assert!(waiter.join().unwrap(), "the waiter was served hot");
        assert!(a.is_hot());
        pause();
    }

    #[test]
    fn a_call_that_blocks_unseen_has_its_slot_taken_and_its_thread_takes_one_again() {
        let (gate, a, b) = one_slot_no_clock();
        serve_at(gate, &a); // and never answers: a method that blocks unseen (here, in `join`)
        std::thread::spawn(move || {
            serve_at(gate, &b);
            assert!(b.is_hot());
            pause();
        })
        .join()
        .unwrap();
        // The holder finds it lost its slot at its next request, and takes one again.
        serve_at(gate, &a);
        assert!(a.is_hot());
        pause();
    }

    #[test]
    fn a_call_that_runs_on_past_a_look_has_its_slot_taken() {
        let (gate, a, b) = one_slot_no_clock();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let busy = {
            let done = done.clone();
            std::thread::spawn(move || {
                serve_at(gate, &a);
                tx.send(()).unwrap();
                // A call that computes (never asleep) until the slot was taken from it.
                let end = Instant::now() + Duration::from_secs(20);
                while !done.load(Ordering::Relaxed) && Instant::now() < end {
                    std::hint::spin_loop();
                }
                pause();
            })
        };
        rx.recv().unwrap();
        serve_at(gate, &b);
        assert!(b.is_hot());
        done.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        pause();
    }

    #[test]
    fn a_thread_asleep_is_seen_asleep_and_a_running_one_is_not() {
        let (tx, rx) = std::sync::mpsc::channel();
        let asleep = std::thread::spawn(move || {
            tx.send(TID.with(|t| *t)).unwrap();
            std::thread::sleep(Duration::from_secs(2));
        });
        let tid = rx.recv().unwrap();
        let end = Instant::now() + Duration::from_secs(2);
        while !sleeps(tid) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(sleeps(tid), "the thread that sleeps is seen asleep");
        assert!(!sleeps(TID.with(|t| *t)), "this thread runs");
        asleep.join().unwrap();
        assert!(!sleeps(tid), "a thread that ended does not sleep");
    }

    #[test]
    fn a_holder_between_calls_within_its_quantum_keeps_its_slot() {
        let (gate, a, b) = one_slot_no_clock();
        serve_at(gate, &a);
        served(); // answered; spinning for its client's next request
        let waiter = std::thread::spawn(move || {
            serve_at(gate, &b);
            pause();
        });
        std::thread::sleep(BLOCKED_LOOK * 10);
        assert!(!waiter.is_finished(), "the waiter took a slot its holder still used");
        pause();
        waiter.join().unwrap();
    }
}
