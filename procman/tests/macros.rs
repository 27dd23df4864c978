//! What the macros generate, checked by use and without a server: the exposed sets, calls
//! through the generated `Dispatch::call` with arguments encoded like a proxy encodes them,
//! the argument and result mappings, `repr`, `encode_value`, `on_disconnect`, and the
//! creators' inventory entries.

use procman::__private::{ArgsBuf, CallCx, CreatorEntry, Dispatch, Referent, inventory, postcard};
use procman::{Caller, Error, Manager, Proxy, Shared, manager, shared};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Shared, Debug, Default, Clone, PartialEq, Serialize, Deserialize, procman::Schema)]
pub struct Counter {
    n: i64,
}

#[shared]
impl Counter {
    /// Adds `by`.
    pub fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }
    pub fn get(&self) -> i64 {
        self.n
    }
    pub(crate) fn describe(&self, name: &str, weights: &[i64], scale: &i64) -> String {
        format!("{name}:{}", (self.n + weights.iter().sum::<i64>()) * scale)
    }
    pub fn label(&self) -> &str {
        "counter"
    }
    pub fn digits(&self) -> &[u8] {
        &[1, 2, 3]
    }
    pub fn checked_get(&self, max: i64) -> procman::Result<i64> {
        if self.n <= max { Ok(self.n) } else { Err(Error::Full) }
    }
    pub fn read_file(&self, path: String) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    pub fn parse(&self, text: String) -> Result<i64, String> {
        text.parse().map_err(|e| format!("{e}"))
    }
    pub fn merge(&mut self, other: Self) -> Self {
        self.n += other.n;
        self.clone()
    }
    pub fn tuple(&self, (a, b): (i64, i64), _: bool, mut c: i64) -> i64 {
        c += a * b;
        c
    }
    #[shared(proxy)]
    pub fn fork(&self) -> Counter {
        self.clone()
    }
    #[shared(skip)]
    pub fn reset(&mut self) {
        self.n = 0;
    }
    #[cfg(any())]
    pub fn configured_out(&self) {}
    fn audit(&self) {}
    pub fn new(n: i64) -> Self {
        Counter { n }
    }
}

/// No `Debug`, no `Serialize`.
#[derive(Shared, Default)]
#[allow(missing_debug_implementations)]
pub struct Opaque {
    seen: Mutex<Vec<Caller>>,
}

#[shared(exposed(secret, callers))]
impl Opaque {
    fn secret(&self) -> u32 {
        42
    }
    pub fn callers(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    pub fn public_but_not_listed(&self) {}
    #[shared(on_disconnect)]
    fn gone(&self, caller: Caller) {
        self.seen.lock().unwrap().push(caller);
    }
}

#[derive(Shared, Debug)]
pub struct Queue<T> {
    items: Mutex<Vec<T>>,
}

#[shared]
impl<T: Send + 'static> Queue<T> {
    pub fn put(&self, item: T) {
        self.items.lock().unwrap().push(item);
    }
    pub fn get(&self) -> procman::Result<T> {
        self.items.lock().unwrap().pop().ok_or(Error::Empty)
    }
    pub fn len(&self) -> usize {
        self.items.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.lock().unwrap().is_empty()
    }
}

/// Const generics and defaults: the proxy has the same parameters, defaults included.
#[derive(Shared, Debug)]
pub struct Ring<T = u8, const N: usize = 4> {
    items: Mutex<Vec<T>>,
}

#[shared]
impl<T: Send + 'static, const N: usize> Ring<T, N> {
    pub fn capacity(&self) -> usize {
        N
    }
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut items = self.items.lock().unwrap();
        if items.len() < N {
            items.push(item);
            Ok(())
        } else {
            Err(item)
        }
    }
}

/// Enums are shared types too.
#[derive(Shared, Debug, PartialEq)]
pub enum Switch {
    Off,
    On(u32),
}

#[shared]
impl Switch {
    pub fn toggle(&mut self, level: u32) -> bool {
        *self = match self {
            Switch::Off => Switch::On(level),
            Switch::On(_) => Switch::Off,
        };
        matches!(self, Switch::On(_))
    }
}

/// Calls `method` the way the server does, with `args` built like a proxy builds them.
fn call<T: Dispatch>(referent: &Referent<T>, method: &str, args: ArgsBuf<'_>) -> procman::Result<Vec<u8>> {
    let mut cx = CallCx::detached();
    T::call(referent, method, &args.into_bytes(), &mut cx)
}

fn decode<R: DeserializeOwned>(bytes: procman::Result<Vec<u8>>) -> R {
    postcard::from_bytes(&bytes.expect("the call succeeds")).expect("the result decodes")
}

fn args<A: Serialize + ?Sized>(values: &[&A]) -> ArgsBuf<'static> {
    let mut buf = ArgsBuf::new();
    for value in values {
        buf.push(*value).unwrap();
    }
    buf
}

#[test]
fn exposed_sets() {
    // `pub` methods with `&self`/`&mut self`, in order; not the skipped, private, cfg'd-out or
    // associated ones.
    assert_eq!(
        Counter::EXPOSED,
        ["incr", "get", "describe", "label", "digits", "checked_get", "read_file", "parse", "merge", "tuple", "fork"]
    );
    // `exposed(...)`: exactly the names given, private ones included; `on_disconnect` is not
    // exposed.
    assert_eq!(Opaque::EXPOSED, ["secret", "callers"]);
    assert_eq!(<Queue<String> as Dispatch>::EXPOSED, ["put", "get", "len", "is_empty"]);
    let _ = (Counter::new(0).reset(), Counter::default().audit());
}

#[test]
fn calls_change_the_referent() {
    let counter = Referent::new(Counter { n: 1 });
    assert_eq!(decode::<i64>(call(&counter, "incr", args(&[&5i64]))), 6);
    assert_eq!(decode::<i64>(call(&counter, "get", ArgsBuf::new())), 6);
    assert_eq!(counter.read().n, 6);
}

#[test]
fn borrowed_arguments_and_results() {
    let counter = Referent::new(Counter { n: 1 });
    let mut buf = ArgsBuf::new();
    buf.push::<str>("total").unwrap();
    buf.push::<[i64]>(&[2, 3]).unwrap();
    buf.push::<i64>(&10).unwrap();
    assert_eq!(decode::<String>(call(&counter, "describe", buf)), "total:60");
    assert_eq!(decode::<String>(call(&counter, "label", ArgsBuf::new())), "counter");
    assert_eq!(decode::<Vec<u8>>(call(&counter, "digits", ArgsBuf::new())), [1, 2, 3]);
    // `Self` as an argument and a result is the referent type.
    assert_eq!(decode::<Counter>(call(&counter, "merge", args(&[&Counter { n: 4 }]))), Counter { n: 5 });
    // Patterns other than names.
    let mut buf = ArgsBuf::new();
    buf.push(&(3i64, 4i64)).unwrap();
    buf.push(&true).unwrap();
    buf.push(&1i64).unwrap();
    assert_eq!(decode::<i64>(call(&counter, "tuple", buf)), 13);
}

#[test]
fn one_argument_results_are_flattened() {
    let counter = Referent::new(Counter { n: 3 });
    assert_eq!(decode::<i64>(call(&counter, "checked_get", args(&[&5i64]))), 3);
    assert!(matches!(call(&counter, "checked_get", args(&[&1i64])), Err(Error::Full)));
    let missing = String::from("/nonexistent/procman-macros-test");
    assert!(matches!(call(&counter, "read_file", args(&[&missing])), Err(Error::Io { .. })));
}

#[test]
fn two_argument_results_come_back_whole() {
    let counter = Referent::new(Counter::default());
    let ok = decode::<Result<i64, String>>(call(&counter, "parse", args(&[&String::from("12")])));
    assert_eq!(ok, Ok(12));
    let err = decode::<Result<i64, String>>(call(&counter, "parse", args(&[&String::from("x")])));
    assert_eq!(err, Err("invalid digit found in string".to_owned()));
}

#[test]
fn unexposed_names_and_bad_arguments_are_errors() {
    let counter = Referent::new(Counter::default());
    for name in ["audit", "reset", "new", "configured_out", "nonexistent"] {
        match call(&counter, name, ArgsBuf::new()) {
            Err(Error::NotExposed { method, .. }) => assert_eq!(method, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let opaque = Referent::new(Opaque::default());
    assert!(matches!(call(&opaque, "public_but_not_listed", ArgsBuf::new()), Err(Error::NotExposed { .. })));
    assert_eq!(decode::<u32>(call(&opaque, "secret", ArgsBuf::new())), 42);
    // Too many arguments, too few, wrong type.
    assert!(matches!(call(&counter, "get", args(&[&1i64])), Err(Error::Decode { .. })));
    assert!(matches!(call(&counter, "incr", ArgsBuf::new()), Err(Error::Decode { .. })));
    assert!(matches!(call(&counter, "parse", args(&[&7u8])), Err(Error::Decode { .. })));
}

#[test]
fn generic_types() {
    let queue = Referent::new(Queue::<String> { items: Mutex::default() });
    call(&queue, "put", args(&[&String::from("a")])).unwrap();
    call(&queue, "put", args(&[&String::from("b")])).unwrap();
    assert_eq!(decode::<usize>(call(&queue, "len", ArgsBuf::new())), 2);
    assert_eq!(decode::<String>(call(&queue, "get", ArgsBuf::new())), "b");
    assert_eq!(decode::<String>(call(&queue, "get", ArgsBuf::new())), "a");
    assert!(matches!(call(&queue, "get", ArgsBuf::new()), Err(Error::Empty)));
}

#[test]
#[allow(clippy::type_complexity)]
fn const_generics_and_enums() {
    let ring = Referent::new(Ring::<String, 1> { items: Mutex::default() });
    assert_eq!(decode::<usize>(call(&ring, "capacity", ArgsBuf::new())), 1);
    let a = String::from("a");
    assert_eq!(decode::<Result<(), String>>(call(&ring, "push", args(&[&a]))), Ok(()));
    assert_eq!(decode::<Result<(), String>>(call(&ring, "push", args(&[&a]))), Err(a));
    fn referent<T: Shared<Proxy = P>, P: Proxy<Referent = T>>() {}
    referent::<Ring, RingProxy>();
    referent::<Ring<u8, 4>, RingProxy<u8, 4>>();
    let _: fn(&RingProxy<String, 2>, String) -> procman::Result<Result<(), String>> = RingProxy::push;

    let switch = Referent::new(Switch::Off);
    assert!(decode::<bool>(call(&switch, "toggle", args(&[&3u32]))));
    assert_eq!(*switch.read(), Switch::On(3));
    assert_eq!(Switch::repr(&switch.read()), "On(3)");
    referent::<Switch, SwitchProxy>();
}

#[test]
fn repr_and_value() {
    assert_eq!(Counter::repr(&Counter { n: 7 }), "Counter { n: 7 }");
    assert_eq!(Opaque::repr(&Opaque::default()), "<Opaque: no Debug>");
    let value = Counter::encode_value(&Counter { n: 7 }).unwrap();
    assert_eq!(postcard::from_bytes::<Counter>(&value).unwrap(), Counter { n: 7 });
    assert!(
        matches!(Opaque::encode_value(&Opaque::default()), Err(Error::NotExposed { method, .. }) if method == "get_value")
    );
}

#[test]
fn on_disconnect_is_called_with_the_caller() {
    let opaque = Referent::new(Opaque::default());
    let caller = Caller { client: 7, connection: 9 };
    Opaque::connection_closed(&opaque, caller);
    assert_eq!(*opaque.read().seen.lock().unwrap(), [caller]);
    assert_eq!(decode::<usize>(call(&opaque, "callers", ArgsBuf::new())), 1);
}

fn assert_proxy<P: Proxy + Clone + Send + Sync + Serialize + DeserializeOwned + std::fmt::Debug>() {}

#[test]
#[allow(clippy::type_complexity)]
fn proxy_types() {
    fn referent<T: Shared<Proxy = P>, P: Proxy<Referent = T>>() {}
    referent::<Counter, CounterProxy>();
    referent::<Queue<String>, QueueProxy<String>>();
    assert_proxy::<CounterProxy>();
    assert_proxy::<QueueProxy<String>>();
    // The proxy is `Send + Sync` whatever its parameters (the referent stays in the manager).
    fn send_sync<T: Send + Sync>() {}
    send_sync::<QueueProxy<std::rc::Rc<()>>>();
    // The proxy methods' signatures.
    let _: fn(&CounterProxy, i64) -> procman::Result<i64> = CounterProxy::incr;
    let _: fn(&CounterProxy, &str, &[i64], &i64) -> procman::Result<String> = CounterProxy::describe;
    let _: fn(&CounterProxy) -> procman::Result<String> = CounterProxy::label;
    let _: fn(&CounterProxy) -> procman::Result<Vec<u8>> = CounterProxy::digits;
    let _: fn(&CounterProxy, i64) -> procman::Result<i64> = CounterProxy::checked_get;
    let _: fn(&CounterProxy, String) -> procman::Result<String> = CounterProxy::read_file;
    let _: fn(&CounterProxy, String) -> procman::Result<Result<i64, String>> = CounterProxy::parse;
    let _: fn(&CounterProxy, Counter) -> procman::Result<Counter> = CounterProxy::merge;
    let _: fn(&CounterProxy) -> procman::Result<CounterProxy> = CounterProxy::fork;
    let _: fn(&OpaqueProxy) -> procman::Result<u32> = OpaqueProxy::secret;
    let _: fn(&QueueProxy<u8>, u8) -> procman::Result<()> = QueueProxy::put;
}

#[test]
#[allow(clippy::type_complexity)]
fn async_proxy_types() {
    use procman::AsyncProxy;
    fn pair<P: Proxy<Async = A>, A: AsyncProxy<Blocking = P> + std::fmt::Debug + From<P> + Into<P>>() {}
    // The async proxy has the proxy's parameters, defaults included.
    pair::<CounterProxy, AsyncCounterProxy>();
    pair::<QueueProxy<String>, AsyncQueueProxy<String>>();
    pair::<RingProxy, AsyncRingProxy>();
    pair::<RingProxy<u8, 4>, AsyncRingProxy<u8, 4>>();
    pair::<RingProxy<String, 2>, AsyncRingProxy<String, 2>>();
    pair::<SwitchProxy, AsyncSwitchProxy>();
    pair::<OpaqueProxy, AsyncOpaqueProxy>();
    fn send_sync<T: Send + Sync>() {}
    send_sync::<AsyncQueueProxy<std::rc::Rc<()>>>();
    // The methods: `async fn`s with the blocking methods' arguments and results.
    fn async_fn<P, A, F: std::future::Future<Output = R>, R>(_: fn(P, A) -> F) {}
    fn async_fn0<P, F: std::future::Future<Output = R>, R>(_: fn(P) -> F) {}
    async_fn::<&AsyncCounterProxy, i64, _, procman::Result<i64>>(AsyncCounterProxy::incr);
    async_fn0::<&AsyncCounterProxy, _, procman::Result<String>>(AsyncCounterProxy::label);
    async_fn0::<&AsyncCounterProxy, _, procman::Result<Vec<u8>>>(AsyncCounterProxy::digits);
    async_fn::<&AsyncCounterProxy, String, _, procman::Result<String>>(AsyncCounterProxy::read_file);
    async_fn0::<&AsyncCounterProxy, _, procman::Result<AsyncCounterProxy>>(AsyncCounterProxy::fork);
    async_fn0::<&AsyncOpaqueProxy, _, procman::Result<u32>>(AsyncOpaqueProxy::secret);
    async_fn::<&AsyncRingProxy<String, 2>, String, _, procman::Result<Result<(), String>>>(AsyncRingProxy::push);
    async_fn::<&AsyncSwitchProxy, u32, _, procman::Result<bool>>(AsyncSwitchProxy::toggle);
}

#[manager]
pub struct AppManager;

#[manager]
impl AppManager {
    /// A counter starting at `start`.
    fn counter(start: i64) -> Counter {
        Counter { n: start }
    }
    #[manager(typeid = "jobs", singleton)]
    pub fn job_queue() -> Queue<String> {
        Queue { items: Mutex::default() }
    }
    fn checked(start: i64) -> procman::Result<Counter> {
        if start >= 0 { Ok(Self::counter_body(start)) } else { Err(Error::usage("negative start")) }
    }
    #[manager(typeid = "remote_counter")]
    pub fn remote() -> Counter;

    /// Methods with `self` are kept as they are.
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }
}

impl AppManager {
    fn counter_body(start: i64) -> Counter {
        Counter { n: start }
    }
}

#[manager(sync)]
pub struct WithBuiltins;

fn entry(typeid: &str) -> Option<&'static CreatorEntry> {
    inventory::iter::<CreatorEntry>().find(|e| e.manager == AppManager::NAME && e.typeid == typeid)
}

#[test]
fn managers_and_creators() {
    assert_eq!(AppManager::NAME, "macros::AppManager");
    assert!(AppManager::INCLUDES.is_empty());
    assert_eq!(WithBuiltins::INCLUDES, [<procman::sync::SyncManager as Manager>::NAME]);

    let counter = entry("counter").expect("registered");
    assert!(!counter.singleton);
    assert!(counter.file.ends_with("macros.rs"));
    assert!(counter.line > 200, "the line of the creator, not of the attribute: {}", counter.line);
    assert!(entry("jobs").expect("registered").singleton);
    // A fn without body names a typeid of a remote manager: nothing is registered.
    assert!(entry("remote_counter").is_none());
    assert!(entry("remote").is_none());

    assert!((counter.create)(&args(&[&5i64]).into_bytes()).is_ok());
    assert!(matches!((counter.create)(&[]), Err(Error::Decode { .. })));
    let checked = entry("checked").expect("registered");
    assert!((checked.create)(&args(&[&1i64]).into_bytes()).is_ok());
    assert!(matches!((checked.create)(&args(&[&-1i64]).into_bytes()), Err(Error::Usage(_))));

    // The client methods.
    let _: fn(&AppManager, i64) -> procman::Result<CounterProxy> = AppManager::counter;
    let _: fn(&AppManager) -> procman::Result<QueueProxy<String>> = AppManager::job_queue;
    let _: fn(&AppManager) -> procman::Result<CounterProxy> = AppManager::remote;
    let _: fn() -> procman::ManagerBuilder<AppManager> = AppManager::new;
    let _: fn(&AppManager) -> String = AppManager::describe;
}

/// `#[procman::main]` puts `procman::init()` first; here only compiled (running it in a test
/// process would be a no-op anyway).
#[procman::main]
#[allow(dead_code)]
fn entry_point() -> u8 {
    7
}
