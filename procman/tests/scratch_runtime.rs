// Temporary: the runtime exercised through a hand-written expansion, until the macros land.
use procman::__private as p;
use procman::{BaseProxy, Manager, Proxy, Shared};

procman::child_entry_point!();

#[derive(Debug)]
pub struct Counter {
    n: i64,
}

impl Counter {
    pub fn incr(&mut self, by: i64) -> i64 {
        self.n += by;
        self.n
    }
    pub fn boom(&self) {
        panic!("boom");
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CounterProxy {
    base: BaseProxy,
}
impl Shared for Counter {
    type Proxy = CounterProxy;
}
impl Proxy for CounterProxy {
    type Referent = Counter;
    fn from_base(base: BaseProxy) -> Self {
        CounterProxy { base }
    }
    fn base(&self) -> &BaseProxy {
        &self.base
    }
}
impl p::Dispatch for Counter {
    const EXPOSED: &'static [&'static str] = &["incr", "boom"];
    fn call(this: &p::Referent<Self>, method: &str, args: &[u8], _cx: &mut p::CallCx<'_>) -> procman::Result<Vec<u8>> {
        match method {
            "incr" => {
                let mut r = p::ArgsReader::new(args, method);
                let a = r.next::<i64>()?;
                r.finish()?;
                let ret = this.write().incr(a);
                p::ret::<i64>(&ret)
            }
            "boom" => {
                p::ArgsReader::new(args, method).finish()?;
                this.read().boom();
                p::ret(&())
            }
            _ => Err(p::not_exposed::<Self>(method)),
        }
    }
    fn repr(this: &Self) -> String {
        use p::{ReprDebug as _, ReprName as _};
        (&&p::Repr(this)).procman_repr()
    }
    fn encode_value(this: &Self) -> procman::Result<Vec<u8>> {
        use p::{ValueOpaque as _, ValueSerialize as _};
        (&&p::Value(this)).procman_encode_value()
    }
}
impl CounterProxy {
    pub fn incr(&self, by: i64) -> procman::Result<i64> {
        let mut a = p::ArgsBuf::new();
        a.push::<i64>(&by)?;
        p::call::<Self, i64>(self, "incr", a)
    }
}

pub struct AppManager {
    base: procman::BaseManager,
}
impl Manager for AppManager {
    const NAME: &'static str = concat!(module_path!(), "::AppManager");
    const INCLUDES: &'static [&'static str] = &[];
    fn from_base(base: procman::BaseManager) -> Self {
        AppManager { base }
    }
    fn base(&self) -> &procman::BaseManager {
        &self.base
    }
}
impl AppManager {
    fn new() -> procman::ManagerBuilder<Self> {
        procman::ManagerBuilder::new()
    }
    fn counter(&self, start: i64) -> procman::Result<CounterProxy> {
        let mut a = p::ArgsBuf::new();
        a.push::<i64>(&start)?;
        p::create(&self.base, "counter", a)
    }
}
fn create_counter(args: &[u8]) -> procman::Result<p::Object> {
    let mut r = p::ArgsReader::new(args, "counter");
    let start = r.next::<i64>()?;
    r.finish()?;
    Ok(p::object(Counter { n: start }))
}
p::inventory::submit! { p::CreatorEntry { manager: <AppManager as Manager>::NAME, typeid: "counter", create: create_counter, singleton: false, file: file!(), line: line!() } }

fn add_many(c: CounterProxy) -> i64 {
    let mut last = 0;
    for _ in 0..1000 {
        last = c.incr(1).unwrap();
    }
    last
}

#[test]
fn counter_across_processes() {
    let t = std::time::Instant::now();
    let m = AppManager::new().start().unwrap();
    eprintln!("start: {:?}", t.elapsed());
    let c = m.counter(5).unwrap();
    eprintln!("first call: {:?}", t.elapsed());
    assert_eq!(c.incr(2).unwrap(), 7);
    assert_eq!(c.base().repr().unwrap(), "Counter { n: 7 }");
    let e = c.base().call_method::<_, ()>("audit", &()).unwrap_err();
    assert!(matches!(e, procman::Error::NotExposed { .. }), "{e}");
    let e = c.base().call_method::<_, ()>("boom", &()).unwrap_err();
    assert!(matches!(e, procman::Error::Remote { .. }), "{e}");
    assert_eq!(c.incr(0).unwrap(), 7);
    let a = procman::Process::spawn(add_many, c.clone()).unwrap();
    let b = procman::Process::spawn(add_many, c.clone()).unwrap();
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(c.incr(0).unwrap(), 2007);
    assert_eq!(m.base().number_of_objects().unwrap(), 1);
    eprintln!("{:?}", m.base().debug_info().unwrap());
    let t = std::time::Instant::now();
    for _ in 0..10000 {
        c.incr(1).unwrap();
    }
    eprintln!("10k calls: {:?}", t.elapsed());
    drop(c);
    assert_eq!(m.base().number_of_objects().unwrap(), 0);
    m.base().shutdown().unwrap();
    let e = m.counter(1).unwrap_err();
    assert!(matches!(e, procman::Error::Shutdown { .. }), "{e}");
}
