//! Exhaustive interleaving checks of the lock and queue wake-up protocols.
//!
//! These are models: each mirrors, step by step, the atomic operations of `lock_core::RawLock`
//! and of `Queue`'s sleep/wake bookkeeping, with the futex abstracted as "sleep if the word still
//! holds the expected value" / "wake one (or all) sleepers". The checker explores every
//! interleaving (depth-first, with a visited set) and asserts mutual exclusion and the absence
//! of lost wake-ups (a state where some thread sleeps forever). The real waiters also time out
//! every 25 ms, which would hide a lost wake-up; the models have no timeouts on purpose.

use std::collections::HashSet;
use std::hash::Hash;

/// A transition system: `steps` lists the successor states of `s` (one per runnable thread and
/// per nondeterministic choice); `check` asserts state invariants; `done` tells final states.
trait Model {
    type State: Clone + Eq + Hash;
    fn init(&self) -> Self::State;
    fn steps(&self, s: &Self::State) -> Vec<Self::State>;
    fn check(&self, s: &Self::State);
    fn done(&self, s: &Self::State) -> bool;
}

/// Explores every reachable state; panics on an invariant violation or a stuck state. Returns the
/// number of states.
fn explore<M: Model>(m: &M) -> usize {
    let mut seen = HashSet::new();
    let mut stack = vec![m.init()];
    while let Some(s) = stack.pop() {
        if !seen.insert(s.clone()) {
            continue;
        }
        m.check(&s);
        let next = m.steps(&s);
        assert!(!next.is_empty() || m.done(&s), "stuck (lost wake-up or deadlock)");
        stack.extend(next);
    }
    seen.len()
}

// ---------------------------------------------------------------------------------------------
// RawLock: word = 0 | tid | WAITERS.

const W: u8 = 0x80;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Pc {
    /// Fast path compare-exchange(0 -> me).
    Fast,
    /// Slow loop: load the word.
    Load,
    /// Decide on the loaded value `v`.
    Decide(u8),
    /// futex_wait(word, expected).
    Wait(u8),
    /// Asleep in the futex queue.
    Asleep,
    /// In the critical section.
    Critical,
    /// After swap(0) returned a value with WAITERS: futex_wake(1).
    Wake,
    Done,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct LockState {
    word: u8,
    pcs: Vec<Pc>,
    rounds: Vec<u8>,
}

struct LockModel {
    threads: usize,
    rounds: u8,
}

impl Model for LockModel {
    type State = LockState;

    fn init(&self) -> LockState {
        LockState { word: 0, pcs: vec![Pc::Fast; self.threads], rounds: vec![0; self.threads] }
    }

    fn steps(&self, s: &LockState) -> Vec<LockState> {
        let mut out = Vec::new();
        for t in 0..self.threads {
            let me = t as u8 + 1;
            let mut n = s.clone();
            match s.pcs[t] {
                Pc::Fast => {
                    if s.word == 0 {
                        n.word = me;
                        n.pcs[t] = Pc::Critical;
                    } else {
                        n.pcs[t] = Pc::Load;
                    }
                }
                Pc::Load => n.pcs[t] = Pc::Decide(s.word),
                Pc::Decide(v) => {
                    if v == 0 {
                        // compare_exchange(0, me | WAITERS)
                        if s.word == 0 {
                            n.word = me | W;
                            n.pcs[t] = Pc::Critical;
                        } else {
                            n.pcs[t] = Pc::Load;
                        }
                    } else if v & W == 0 {
                        // compare_exchange(v, v | WAITERS)
                        if s.word == v {
                            n.word = v | W;
                            n.pcs[t] = Pc::Wait(v | W);
                        } else {
                            n.pcs[t] = Pc::Load;
                        }
                    } else {
                        n.pcs[t] = Pc::Wait(v);
                    }
                }
                Pc::Wait(expected) => {
                    n.pcs[t] = if s.word == expected { Pc::Asleep } else { Pc::Load };
                }
                Pc::Asleep => continue, // only a wake moves it
                Pc::Critical => {
                    let old = s.word;
                    n.word = 0;
                    n.pcs[t] = if old & W != 0 { Pc::Wake } else { next_round(&mut n, t, self.rounds) };
                }
                Pc::Wake => {
                    let sleepers: Vec<usize> = (0..self.threads).filter(|&u| s.pcs[u] == Pc::Asleep).collect();
                    let after = next_round(&mut n, t, self.rounds);
                    if sleepers.is_empty() {
                        n.pcs[t] = after;
                    } else {
                        for u in sleepers {
                            let mut m = n.clone();
                            m.pcs[t] = after;
                            m.pcs[u] = Pc::Load;
                            out.push(m);
                        }
                        continue;
                    }
                }
                Pc::Done => continue,
            }
            out.push(n);
        }
        out
    }

    fn check(&self, s: &LockState) {
        let inside = s.pcs.iter().filter(|p| **p == Pc::Critical).count();
        assert!(inside <= 1, "mutual exclusion violated: {s:?}");
        if inside == 1 {
            let t = s.pcs.iter().position(|p| *p == Pc::Critical).unwrap();
            assert_eq!(s.word & !W, t as u8 + 1, "holder not recorded in the word: {s:?}");
        }
    }

    fn done(&self, s: &LockState) -> bool {
        s.pcs.iter().all(|p| *p == Pc::Done)
    }
}

fn next_round(n: &mut LockState, t: usize, rounds: u8) -> Pc {
    n.rounds[t] += 1;
    if n.rounds[t] == rounds { Pc::Done } else { Pc::Fast }
}

#[test]
fn lock_protocol_excludes_and_never_loses_a_wakeup() {
    for (threads, rounds) in [(2, 3), (3, 2)] {
        let states = explore(&LockModel { threads, rounds });
        assert!(states > 50, "{states}");
    }
}

// ---------------------------------------------------------------------------------------------
// Queue sleep/wake: `items` in a ring of `cap`; operations under the queue lock are atomic
// steps (the lock is checked above); futex waits and wakes and the waiter-count decrements are
// separate steps, as in `Queue::put_impl` / `Queue::get_impl`.

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum QPc {
    /// Take the lock and try the operation.
    Try,
    /// futex_wait(seq word, seq seen under the lock).
    Wait(u8),
    Asleep,
    /// Woken or gave up waiting: decrement the waiter count, then retry.
    Unregister,
    /// Operation done; wake the other side if it was flagged (after unlocking).
    Wake,
    Done,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct QState {
    items: u8,
    getters: u8,
    putters: u8,
    not_empty: u8,
    not_full: u8,
    pcs: Vec<QPc>,
    left: Vec<u8>,
}

struct QueueModel {
    producers: usize,
    consumers: usize,
    per_producer: u8,
    cap: u8,
}

impl QueueModel {
    fn is_producer(&self, t: usize) -> bool {
        t < self.producers
    }
}

impl Model for QueueModel {
    type State = QState;

    fn init(&self) -> QState {
        let per_consumer = self.per_producer * self.producers as u8 / self.consumers as u8;
        let left = (0..self.producers + self.consumers)
            .map(|t| if self.is_producer(t) { self.per_producer } else { per_consumer })
            .collect();
        QState {
            items: 0,
            getters: 0,
            putters: 0,
            not_empty: 0,
            not_full: 0,
            pcs: vec![QPc::Try; self.producers + self.consumers],
            left,
        }
    }

    fn steps(&self, s: &QState) -> Vec<QState> {
        let mut out = Vec::new();
        for t in 0..s.pcs.len() {
            let producer = self.is_producer(t);
            let mut n = s.clone();
            match s.pcs[t] {
                QPc::Try => {
                    if producer && s.items < self.cap {
                        n.items += 1;
                        n.left[t] -= 1;
                        if s.getters > 0 {
                            n.not_empty = s.not_empty.wrapping_add(1);
                            n.pcs[t] = QPc::Wake;
                        } else {
                            n.pcs[t] = if n.left[t] == 0 { QPc::Done } else { QPc::Try };
                        }
                    } else if !producer && s.items > 0 {
                        n.items -= 1;
                        n.left[t] -= 1;
                        if s.putters > 0 {
                            n.not_full = s.not_full.wrapping_add(1);
                            n.pcs[t] = QPc::Wake;
                        } else {
                            n.pcs[t] = if n.left[t] == 0 { QPc::Done } else { QPc::Try };
                        }
                    } else if producer {
                        n.putters += 1;
                        n.pcs[t] = QPc::Wait(s.not_full);
                    } else {
                        n.getters += 1;
                        n.pcs[t] = QPc::Wait(s.not_empty);
                    }
                }
                QPc::Wait(seen) => {
                    let word = if producer { s.not_full } else { s.not_empty };
                    n.pcs[t] = if word == seen { QPc::Asleep } else { QPc::Unregister };
                }
                QPc::Asleep => continue,
                QPc::Unregister => {
                    if producer {
                        n.putters -= 1;
                    } else {
                        n.getters -= 1;
                    }
                    n.pcs[t] = QPc::Try;
                }
                QPc::Wake => {
                    let after = if n.left[t] == 0 { QPc::Done } else { QPc::Try };
                    n.pcs[t] = after;
                    // A producer wakes one getter; a consumer wakes all putters.
                    let sleepers: Vec<usize> = (0..s.pcs.len())
                        .filter(|&u| self.is_producer(u) != producer && s.pcs[u] == QPc::Asleep)
                        .collect();
                    if producer && !sleepers.is_empty() {
                        for u in sleepers {
                            let mut m = n.clone();
                            m.pcs[u] = QPc::Unregister;
                            out.push(m);
                        }
                        continue;
                    }
                    for u in sleepers {
                        n.pcs[u] = QPc::Unregister;
                    }
                }
                QPc::Done => continue,
            }
            out.push(n);
        }
        out
    }

    fn check(&self, s: &QState) {
        assert!(s.items <= self.cap);
    }

    fn done(&self, s: &QState) -> bool {
        s.pcs.iter().all(|p| *p == QPc::Done)
    }
}

#[test]
fn queue_wakeups_are_never_lost() {
    for (producers, consumers, per_producer, cap) in [(1, 1, 4, 1), (2, 2, 2, 1), (2, 1, 3, 2), (1, 2, 4, 1)] {
        let states = explore(&QueueModel { producers, consumers, per_producer, cap });
        assert!(states > 20, "{states}");
    }
}
