use procman::prelude::*;
use std::time::{Duration, Instant};

procman::child_entry_point!();

#[derive(Shared, Debug, Default)]
pub struct Slow {
    n: i64,
}

#[shared]
impl Slow {
    pub fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }
    pub fn nap(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }
}

#[manager]
pub struct SlowManager;

#[manager]
impl SlowManager {
    fn slow() -> Slow {
        Slow::default()
    }
}

async fn incr(s: &SlowProxy, by: i64) -> procman::Result<i64> {
    let mut args = procman::__private::ArgsBuf::new();
    args.push(&by)?;
    procman::__private::asynch::call::<SlowProxy, i64>(s, "incr", args, None).await
}

async fn nap(s: &SlowProxy, ms: u64) -> procman::Result<u64> {
    let mut args = procman::__private::ArgsBuf::new();
    args.push(&ms)?;
    procman::__private::asynch::call::<SlowProxy, u64>(s, "nap", args, None).await
}

#[test]
fn smoke() {
    let m = SlowManager::new().start().unwrap();
    let s = m.slow().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        assert_eq!(incr(&s, 2).await.unwrap(), 2);
        let t = Instant::now();
        let (a, b) = tokio::join!(nap(&s, 500), incr(&s, 1));
        assert_eq!((a.unwrap(), b.unwrap()), (500, 3));
        assert!(t.elapsed() >= Duration::from_millis(500));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move { incr(&s, 1).await.unwrap() }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        eprintln!("1000 tasks: {:?}", t.elapsed());
        assert_eq!(incr(&s, 0).await.unwrap(), 1003);
        let r = tokio::time::timeout(Duration::from_millis(100), nap(&s, 2000)).await;
        assert!(r.is_err());
        assert_eq!(incr(&s, 0).await.unwrap(), 1003);
    });
    drop(s);
    m.shutdown().unwrap();
}
