//! A tour of procman: a manager process holding a custom type and the built-in types, and a
//! shared-memory arena, used by several worker processes at once.
//!
//! Run: `cargo run --release --example tour`

use procman::prelude::*;
use procman::shm::{Lock as ShmLock, SharedArray};
use procman::sync::{DictProxy, EventProxy, LockProxy, QueueProxy};
use std::collections::BTreeMap;
use std::time::Instant;

/// Statistics a manager keeps for everyone: a custom shared type.
#[derive(Shared, Debug, Default)]
pub struct Stats {
    words: u64,
    longest: String,
}

#[shared]
impl Stats {
    /// Records one word; returns the number of words so far.
    pub fn record(&mut self, word: &str) -> u64 {
        self.words += 1;
        if word.len() > self.longest.len() {
            self.longest = word.to_owned();
        }
        self.words
    }

    /// The longest word seen.
    pub fn longest(&self) -> String {
        self.longest.clone()
    }

    /// Fails for the empty word: the error comes back typed.
    pub fn check(&self, word: &str) -> Result<usize, String> {
        if word.is_empty() { Err("empty word".into()) } else { Ok(word.len()) }
    }
}

/// A manager serving `Stats` and, with `sync`, every built-in type.
#[manager(sync)]
pub struct TourManager;

#[manager]
impl TourManager {
    /// One `Stats` for all callers.
    #[manager(singleton)]
    pub fn stats() -> Stats {
        Stats::default()
    }
}

type Work = (
    QueueProxy<Option<String>>,
    DictProxy<String, u64>,
    LockProxy,
    StatsProxy,
    EventProxy,
    (SharedArray<u32>, ShmLock),
);

/// A worker process: takes lines from the queue, counts words into the shared dict (in the
/// manager) and word lengths into a histogram (in shared memory).
fn worker((lines, counts, lock, stats, done, (lengths, shm_lock)): Work) -> u64 {
    let mut mine = 0;
    while let Some(line) = lines.get().expect("the manager is there") {
        for word in line.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()) {
            if word.is_empty() {
                continue;
            }
            let _guard = lock.guard().unwrap(); // read-modify-write under a manager lock
            let n = counts.get(&word).unwrap().unwrap_or(0);
            counts.insert(word.clone(), n + 1).unwrap();
            drop(_guard);
            stats.record(&word).unwrap();
            let bucket = word.len().min(lengths.len() - 1);
            let _g = shm_lock.lock().unwrap(); // a futex in shared memory: no server involved
            lengths.set(bucket, lengths.get(bucket).unwrap() + 1).unwrap();
            drop(_g);
            mine += 1;
        }
    }
    done.wait(None).unwrap();
    mine
}

const TEXT: &str = "There are two kinds of manager: those that store data in a shared memory map \
and those that use a server process. A manager object controls a server process which manages \
shared objects. Other processes can access the shared objects by using proxies. Manager processes \
are daemonic so if they are still around when their parent process exits then it will attempt to \
kill them off.";

fn main() -> procman::Result<()> {
    procman::init();
    let t = Instant::now();
    let m = TourManager::new().start()?;
    println!("manager started in {:?} at {} (pid {})", t.elapsed(), m.address(), m.pid().unwrap_or(0));

    let lines = m.queue::<Option<String>>(0)?;
    let counts = m.dict::<String, u64>()?;
    let lock = m.lock()?;
    let stats = m.stats()?;
    let done = m.event()?;
    let local = LocalManager::new()?;
    let lengths = local.shared_array(&[0u32; 12])?;
    let shm_lock = local.lock()?;

    let workers = (0..4)
        .map(|_| {
            let shm = (lengths.clone(), shm_lock.clone());
            Process::spawn(worker, (lines.clone(), counts.clone(), lock.clone(), stats.clone(), done.clone(), shm))
        })
        .collect::<procman::Result<Vec<_>>>()?;
    for sentence in TEXT.split(". ") {
        lines.put(Some(sentence.to_string()))?;
    }
    for _ in &workers {
        lines.put(None)?;
    }
    done.set()?;
    let per_worker = workers.into_iter().map(|w| w.join()).collect::<procman::Result<Vec<_>>>()?;

    let total: u64 = per_worker.iter().sum();
    let mut top: Vec<(String, u64)> = counts.items()?;
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("4 processes counted {total} words, {per_worker:?} each");
    println!("most common: {:?}", &top[..5]);
    println!("longest word: {:?}", stats.longest()?);
    println!("stats.check(\"\") = {:?}", stats.check("")?);
    println!("word lengths (shared memory): {lengths:?}");
    println!("the manager holds {} objects", m.number_of_objects()?);
    assert_eq!(total, TEXT.split_whitespace().count() as u64);
    let words: BTreeMap<String, u64> = top.into_iter().collect();
    assert_eq!(words.values().sum::<u64>(), total);
    assert_eq!(lengths.to_vec().iter().map(|&n| u64::from(n)).sum::<u64>(), total);
    m.shutdown()?;
    println!("done in {:?}", t.elapsed());
    Ok(())
}
