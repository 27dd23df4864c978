//! The async proxies that `#[derive(Shared)]` and `#[shared]` generate, used on real managers:
//! every kind of method, `#[shared(proxy)]` results, the mirrored client helpers, generic
//! types, the conversions, the wire form, a child process, `Send` futures and the built-in
//! types. The futures are driven by the small executor below (no runtime needed).

use procman::prelude::*;
use procman::schema::Fingerprint;
use procman::sync::SyncManager;
use procman::{Error, Wire};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

procman::child_entry_point!();

/// Polls `future` on this thread until it is ready, parking between wake-ups.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

fn assert_send<F: Send>(_: &F) {}

#[derive(Shared, Debug, Default)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    /// Adds `by`; the async twin has this doc too.
    pub fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }
    pub fn get(&self) -> i64 {
        self.n
    }
    pub fn describe(&self, name: &str, weights: &[i64], scale: &i64) -> String {
        format!("{name}:{}", (self.n + weights.iter().sum::<i64>()) * scale)
    }
    pub fn parse(&mut self, text: String) -> Result<i64, String> {
        let n: i64 = text.parse().map_err(|e| format!("{e}"))?;
        self.n = n;
        Ok(n)
    }
    pub fn checked(&self, max: i64) -> procman::Result<i64> {
        if self.n <= max { Ok(self.n) } else { Err(Error::Full) }
    }
    pub fn bytes(&self, mut extra: Vec<u8>) -> Vec<u8> {
        extra.push(self.n as u8);
        extra
    }
    pub fn maybe_bytes(&self, some: bool) -> Option<Vec<u8>> {
        some.then(|| vec![self.n as u8])
    }
    pub fn bytes_or(&self, ok: bool) -> Result<Vec<u8>, String> {
        if ok { Ok(vec![self.n as u8]) } else { Err("no bytes".into()) }
    }
    /// A counter of its own, with the same count: the caller gets its proxy.
    #[shared(proxy)]
    pub fn fork(&self) -> Counter {
        Counter { n: self.n }
    }
    /// Takes the whole count; a caller that went away gives it back through `give`.
    #[shared(rename = "take", undo = give)]
    pub fn take_all(&mut self) -> i64 {
        std::mem::take(&mut self.n)
    }
    pub fn give(&mut self, n: i64) {
        self.n += n;
    }

    /// Two increments, run in the caller.
    #[shared(client)]
    pub fn incr_twice(&self, by: i64) -> procman::Result<i64> {
        self.incr(by)?;
        self.incr(by)
    }
    /// Calls another helper and a `#[shared(proxy)]` method: the fork is a blocking proxy here.
    #[shared(client)]
    pub fn fork_count(&self) -> procman::Result<(i64, CounterProxy)> {
        let fork: CounterProxy = self.fork()?;
        Ok((self.incr_twice(0)?, fork))
    }
    /// Generic, with a where clause.
    #[shared(client)]
    pub fn add<N>(&self, by: N) -> procman::Result<i64>
    where
        N: Into<i64> + Copy,
    {
        let mut total = 0;
        for _ in 0..2 {
            total = self.incr(by.into())?;
            if total > 1000 {
                return Err(Error::Full);
            }
        }
        Ok(total)
    }
    /// No proxy call at all: mirrored as it is.
    #[shared(client)]
    pub fn kind(&self) -> &'static str {
        "counter"
    }
    /// A proxy call in a closure cannot be awaited: not mirrored.
    #[shared(client)]
    pub fn both(&self) -> procman::Result<Vec<i64>> {
        (0..2).map(|_| self.get()).collect()
    }
    /// Calls a helper that is not mirrored: not mirrored either.
    #[shared(client)]
    pub fn both_len(&self) -> procman::Result<usize> {
        Ok(self.both()?.len())
    }
    /// `self` inside a macro's tokens: not mirrored.
    #[shared(client)]
    pub fn shown(&self) -> String {
        format!("{self:?}")
    }
    /// A method of the blocking proxy's `Deref` target: not mirrored.
    #[shared(client)]
    pub fn typeid(&self) -> String {
        self.token().typeid().to_owned()
    }
}

/// A generic type: its async proxy is generic the same way.
#[derive(Shared, Debug)]
pub struct Stack<T> {
    items: Mutex<Vec<T>>,
}

#[shared]
impl<T: Send + 'static> Stack<T> {
    pub fn push(&self, item: T) {
        self.items.lock().unwrap().push(item);
    }
    pub fn pop(&self) -> Option<T> {
        self.items.lock().unwrap().pop()
    }
    /// The last item, or `Error::Empty`; a caller that went away has it pushed back.
    #[shared(undo = push)]
    pub fn take(&self) -> procman::Result<T> {
        self.items.lock().unwrap().pop().ok_or(Error::Empty)
    }
    pub fn len(&self) -> usize {
        self.items.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.lock().unwrap().is_empty()
    }
    /// Pushes every item, one call each, awaited in a loop.
    #[shared(client)]
    pub fn push_all(&self, items: Vec<T>) -> procman::Result<usize>
    where
        T: Wire,
    {
        for item in items {
            self.push(item)?;
        }
        self.len()
    }
}

#[manager]
pub struct AsyncManager;

#[manager]
impl AsyncManager {
    fn counter(start: i64) -> Counter {
        Counter { n: start }
    }
    fn words() -> Stack<String> {
        Stack { items: Mutex::default() }
    }
}

fn manager() -> AsyncManager {
    procman::init();
    AsyncManager::new().serve_in_background().expect("manager serves")
}

#[test]
fn exposed_methods_through_an_async_proxy() {
    let m = manager();
    let c: AsyncCounterProxy = m.counter(1).unwrap().into_async();
    assert_eq!(block_on(c.incr(2)).unwrap(), 3);
    assert_eq!(block_on(c.get()).unwrap(), 3);
    assert_eq!(block_on(c.describe("total", &[2, 3], &10)).unwrap(), "total:80");
    // A one-argument `Result` is flattened, a two-argument one comes back whole.
    assert_eq!(block_on(c.checked(5)).unwrap(), 3);
    assert!(matches!(block_on(c.checked(1)), Err(Error::Full)));
    assert_eq!(block_on(c.parse("12".into())).unwrap(), Ok(12));
    assert_eq!(block_on(c.parse("x".into())).unwrap(), Err("invalid digit found in string".to_owned()));
    // Bytes.
    assert_eq!(block_on(c.bytes(vec![7, 8])).unwrap(), [7, 8, 12]);
    assert_eq!(block_on(c.maybe_bytes(true)).unwrap(), Some(vec![12]));
    assert_eq!(block_on(c.maybe_bytes(false)).unwrap(), None);
    assert_eq!(block_on(c.bytes_or(true)).unwrap(), Ok(vec![12]));
    assert_eq!(block_on(c.bytes_or(false)).unwrap(), Err("no bytes".to_owned()));
    // A renamed method with `undo`: its Rust name, its wire name.
    assert_eq!(block_on(c.take_all()).unwrap(), 12);
    block_on(c.give(4)).unwrap();
    assert_eq!(c.blocking().call_method::<_, i64>("take", &()).unwrap(), 4);
    // Several calls in one future.
    let sum = block_on(async {
        let a = c.incr(1).await?;
        let b = c.incr(1).await?;
        Ok::<_, Error>(a + b)
    })
    .unwrap();
    assert_eq!(sum, 1 + 2);
}

#[test]
#[allow(clippy::type_complexity)]
fn async_signatures() {
    // Each method is an `async fn` with the blocking method's arguments and result.
    fn returns<P, A, F: Future<Output = R>, R>(_: fn(P, A) -> F) {}
    returns::<&AsyncCounterProxy, i64, _, procman::Result<i64>>(AsyncCounterProxy::incr);
    returns::<&AsyncCounterProxy, String, _, procman::Result<Result<i64, String>>>(AsyncCounterProxy::parse);
    returns::<&AsyncCounterProxy, Vec<u8>, _, procman::Result<Vec<u8>>>(AsyncCounterProxy::bytes);
    returns::<&AsyncCounterProxy, bool, _, procman::Result<Option<Vec<u8>>>>(AsyncCounterProxy::maybe_bytes);
    returns::<&AsyncStackProxy<u8>, u8, _, procman::Result<()>>(AsyncStackProxy::push);
    fn returns0<P, F: Future<Output = R>, R>(_: fn(P) -> F) {}
    returns0::<&AsyncCounterProxy, _, procman::Result<AsyncCounterProxy>>(AsyncCounterProxy::fork);
    returns0::<&AsyncStackProxy<String>, _, procman::Result<Option<String>>>(AsyncStackProxy::pop);
    returns0::<&AsyncCounterProxy, _, procman::Result<(i64, CounterProxy)>>(AsyncCounterProxy::fork_count);
    returns0::<&AsyncCounterProxy, _, &'static str>(AsyncCounterProxy::kind);

    // The associated types, both ways.
    fn pair<P: Proxy<Async = A>, A: AsyncProxy<Blocking = P>>() {}
    pair::<CounterProxy, AsyncCounterProxy>();
    pair::<StackProxy<String>, AsyncStackProxy<String>>();
    pair::<procman::sync::QueueProxy<u8>, <procman::sync::QueueProxy<u8> as Proxy>::Async>();
    // `Send + Sync` whatever its parameters, like the blocking proxy.
    fn send_sync<T: Send + Sync + Clone + std::fmt::Debug + Serialize + serde::de::DeserializeOwned>() {}
    send_sync::<AsyncStackProxy<std::rc::Rc<()>>>();
}

#[test]
fn proxy_results_are_async_proxies() {
    let m = manager();
    let c = m.counter(5).unwrap().into_async();
    let fork: AsyncCounterProxy = block_on(c.fork()).unwrap();
    assert_eq!(block_on(fork.incr(1)).unwrap(), 6);
    assert_eq!(block_on(c.get()).unwrap(), 5);
    assert_ne!(fork.blocking().token(), c.blocking().token());
}

#[test]
fn client_helpers_are_mirrored_with_awaits() {
    let m = manager();
    let c = m.counter(0).unwrap().into_async();
    assert_eq!(block_on(c.incr_twice(3)).unwrap(), 6);
    assert_eq!(block_on(c.add(2u8)).unwrap(), 10);
    assert!(matches!(block_on(c.add(1000i32)), Err(Error::Full)));
    let (count, fork) = block_on(c.fork_count()).unwrap();
    assert_eq!(count, 1010);
    assert_eq!(fork.get().unwrap(), 1010);
    assert_eq!(block_on(c.kind()), "counter");

    // The helpers that cannot be mirrored are missing from the async proxy: with them, the
    // inherent method would win over this trait's and the `&str` would not type-check.
    trait Missing {
        fn both(&self) -> &'static str {
            "missing"
        }
        fn both_len(&self) -> &'static str {
            "missing"
        }
        fn shown(&self) -> &'static str {
            "missing"
        }
        fn typeid(&self) -> &'static str {
            "missing"
        }
    }
    impl Missing for AsyncCounterProxy {}
    let missing: [&str; 4] = [c.both(), c.both_len(), c.shown(), c.typeid()];
    assert_eq!(missing, ["missing"; 4]);
    // The blocking proxy keeps them.
    assert_eq!(c.blocking().both().unwrap(), [1010, 1010]);
}

#[test]
fn generic_types() {
    let m = manager();
    let s: AsyncStackProxy<String> = m.words().unwrap().into_async();
    assert!(block_on(s.is_empty()).unwrap());
    block_on(s.push("a".into())).unwrap();
    assert_eq!(block_on(s.push_all(vec!["b".into(), "c".into()])).unwrap(), 3);
    assert_eq!(block_on(s.pop()).unwrap().as_deref(), Some("c"));
    assert_eq!(block_on(s.take()).unwrap(), "b");
    assert_eq!(block_on(s.len()).unwrap(), 1);
}

#[test]
fn conversions_and_the_wire_form() {
    let m = manager();
    let c: CounterProxy = m.counter(3).unwrap();
    let token = c.token().clone();
    let a = AsyncCounterProxy::from(c.clone());
    assert_eq!(a.blocking().token(), &token);
    assert!(format!("{a:?}").starts_with("AsyncCounterProxy { token: "), "{a:?}");
    let back: CounterProxy = a.clone().into_blocking();
    assert_eq!(back.token(), &token);
    let again = CounterProxy::from(AsyncCounterProxy::from_blocking(back));
    assert_eq!(again.get().unwrap(), 3);
    // The same bytes and the same fingerprint as the blocking proxy: each side reads the other.
    assert_eq!(Fingerprint::of::<AsyncCounterProxy>(), Fingerprint::of::<CounterProxy>());
    assert_eq!(Fingerprint::of::<AsyncStackProxy<u8>>(), Fingerprint::of::<StackProxy<u8>>());
    assert_ne!(Fingerprint::of::<AsyncStackProxy<u8>>(), Fingerprint::of::<AsyncStackProxy<u16>>());
    let postcard = procman::__private::postcard::to_allocvec::<AsyncCounterProxy>;
    let bytes = postcard(&a).unwrap();
    let blocking: CounterProxy = procman::__private::postcard::from_bytes(&bytes).unwrap();
    assert_eq!(blocking.token(), &token);
    let bytes = procman::__private::postcard::to_allocvec(&blocking).unwrap();
    let decoded: AsyncCounterProxy = procman::__private::postcard::from_bytes(&bytes).unwrap();
    assert_eq!(block_on(decoded.incr(1)).unwrap(), 4);
    drop((a, c, blocking, decoded));
    assert_eq!(again.get().unwrap(), 4);
}

fn incr_in_child(c: AsyncCounterProxy) -> i64 {
    block_on(async { c.incr(10).await.unwrap() + c.get().await.unwrap() })
}

#[test]
fn an_async_proxy_sent_to_a_child() {
    let m = AsyncManager::new().start().expect("manager starts");
    let c = m.counter(1).unwrap().into_async();
    let child = Process::spawn(incr_in_child, c.clone()).unwrap();
    assert_eq!(child.join().unwrap(), 22);
    assert_eq!(block_on(c.get()).unwrap(), 11);
}

#[test]
fn futures_are_send() {
    let m = manager();
    let c = m.counter(0).unwrap().into_async();
    let s = m.words().unwrap().into_async();
    let weights = [1, 2];
    let scale = 3;
    let future = c.describe("x", &weights, &scale);
    assert_send(&future);
    assert_eq!(block_on(future).unwrap(), "x:9");
    let future = s.push("a".to_owned());
    assert_send(&future);
    block_on(future).unwrap();
    assert_send(&c.fork());
    assert_send(&c.incr_twice(1));
    assert_send(&s.push_all(vec![]));
    // Spawned on another thread.
    let remote = std::thread::spawn({
        let s = s.clone();
        move || block_on(s.pop())
    });
    assert_eq!(remote.join().unwrap().unwrap().as_deref(), Some("a"));
}

#[test]
fn built_in_types() {
    procman::init();
    let m = SyncManager::new().serve_in_background().unwrap();
    let q = m.queue::<String>(0).unwrap().into_async();
    // Mirrored helpers (`put`, `get`, `empty`) over the exposed `put_with`, `get_with`, `qsize`.
    block_on(q.put("a".into())).unwrap();
    block_on(q.put_with("b".into(), false, None)).unwrap();
    assert_eq!(block_on(q.qsize()).unwrap(), 2);
    assert_eq!(block_on(q.get()).unwrap(), "a");
    assert_eq!(block_on(q.get_nowait()).unwrap(), "b");
    assert!(block_on(q.empty()).unwrap());
    assert!(matches!(block_on(q.get_nowait()), Err(Error::Empty)));

    let d = m.dict::<String, i64>().unwrap().into_async();
    block_on(d.insert("x".into(), 1)).unwrap();
    assert_eq!(block_on(d.get_item(&"x".into())).unwrap(), 1);
    assert!(matches!(block_on(d.pop(&"y".into())), Err(Error::NotFound { .. })));

    let l = m.list(&[3, 1, 2]).unwrap().into_async();
    block_on(l.sort()).unwrap();
    assert_eq!(block_on(l.to_vec()).unwrap(), [1, 2, 3]);
    block_on(l.sort_by_key(|x: &i32| -x)).unwrap();
    assert_eq!(block_on(l.pop()).unwrap(), 1);

    let ns = m.namespace().unwrap().into_async();
    block_on(ns.set("x", &5u32)).unwrap();
    assert_eq!(block_on(ns.get::<u32>("x")).unwrap(), 5);

    let lock = m.lock().unwrap().into_async();
    assert!(block_on(lock.acquire(true, None)).unwrap());
    block_on(lock.release()).unwrap();
    // `guard` borrows the blocking proxy (`LockGuard<'_, Self>`): not mirrored.
    trait NoGuard {
        fn guard(&self) -> &'static str {
            "missing"
        }
    }
    impl<T> NoGuard for T {}
    assert_eq!(lock.guard(), "missing");
    assert!(lock.blocking().guard().is_ok());

    let event = m.event().unwrap().into_async();
    block_on(event.set()).unwrap();
    assert!(block_on(event.is_set()).unwrap());
}
