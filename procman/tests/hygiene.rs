//! The generated code compiles under `#![no_implicit_prelude]`, with the prelude's names, the
//! primitive `u8` and the `core`, `std` and `serde` crates shadowed: it uses absolute paths
//! only.

mod hygiene {
    #![no_implicit_prelude]
    #![allow(dead_code, non_camel_case_types, clippy::disallowed_names)]

    // A one-argument `Result` alias: methods returning it are flattened.
    pub(crate) type Result<T> = ::core::result::Result<T, ::procman::Error>;
    pub(crate) type Option = ();
    pub(crate) struct Box;
    pub(crate) struct Vec;
    pub(crate) struct String;
    pub(crate) struct Send;
    pub(crate) struct Sync;
    pub(crate) struct Clone;
    pub(crate) struct Debug;
    pub(crate) struct Default;
    pub(crate) struct Ok;
    pub(crate) struct Err;
    pub(crate) struct Some;
    pub(crate) struct None;
    pub(crate) struct Future;
    pub(crate) struct AsyncProxy;
    pub(crate) struct u8;
    pub(crate) mod core {}
    pub(crate) mod std {}
    pub(crate) mod serde {}
    pub(crate) mod procman {}
    pub(crate) mod inventory {}
    pub(crate) fn drop() {}

    #[derive(::procman::Shared, ::core::default::Default)]
    pub(crate) struct Store<T> {
        items: ::std::sync::Mutex<::std::vec::Vec<T>>,
    }

    #[::procman::shared]
    impl<T: ::core::marker::Send + ::core::clone::Clone + 'static> Store<T> {
        /// Adds an item.
        pub(crate) fn put(&self, item: T) {
            self.lock().push(item);
        }
        pub(crate) fn take(&self) -> ::core::option::Option<T> {
            self.lock().pop()
        }
        #[::procman::shared(undo = put)]
        pub(crate) fn pop_first(&self) -> Result<T> {
            let mut items = self.lock();
            if items.is_empty() {
                ::core::result::Result::Err(::procman::Error::Empty)
            } else {
                ::core::result::Result::Ok(items.remove(0))
            }
        }
        pub(crate) fn first(&self) -> Result<T> {
            self.lock().first().cloned().ok_or(::procman::Error::Empty)
        }
        pub(crate) fn len(&mut self, max: usize) -> ::core::result::Result<usize, ::std::string::String> {
            let len = self.lock().len();
            if len <= max {
                ::core::result::Result::Ok(len)
            } else {
                ::core::result::Result::Err(::std::borrow::ToOwned::to_owned("too many"))
            }
        }
        pub(crate) fn count(&self, name: &str, weights: &[i64], scale: &i64) -> i64 {
            let mut sum = name.len() as i64;
            for weight in weights {
                sum += *weight;
            }
            sum * *scale
        }
        #[::procman::shared(proxy)]
        pub(crate) fn counter(&self) -> Counter {
            Counter { n: self.lock().len() as i64 }
        }
        #[procman::shared(skip)]
        pub(crate) fn lock(&self) -> ::std::sync::MutexGuard<'_, ::std::vec::Vec<T>> {
            self.items.lock().unwrap_or_else(|e| e.into_inner())
        }
        #[shared(on_disconnect)]
        fn gone(&self, _caller: ::procman::Caller) {}
        /// Puts two items; on the async proxy too, with each call awaited.
        #[::procman::shared(client)]
        pub(crate) fn put_two(&self, a: T, b: T) -> Result<usize>
        where
            T: ::procman::Wire,
        {
            self.put(a)?;
            self.put(b)?;
            let counter = self.counter()?;
            ::core::result::Result::Ok(counter.get()? as usize)
        }
    }

    #[derive(::procman::Shared, ::core::fmt::Debug)]
    pub(crate) struct Counter {
        n: i64,
    }

    #[::procman::shared(exposed(get, same, audit))]
    impl Counter {
        pub(crate) fn get(&self) -> i64 {
            self.n
        }
        pub(crate) fn same(&self, other: &<Self as Identified>::Id) -> bool {
            *other == self.n
        }
        pub(crate) fn audit(&self) -> &str {
            "audited"
        }
        pub(crate) fn hidden(&self) {}
    }

    pub(crate) trait Identified {
        type Id;
    }

    impl Identified for Counter {
        type Id = i64;
    }

    #[::procman::manager]
    pub(crate) struct HygieneManager;

    #[::procman::manager]
    impl HygieneManager {
        pub(crate) fn store() -> Store<::std::string::String> {
            ::core::default::Default::default()
        }
        #[::procman::manager(typeid = "labelled", singleton)]
        pub(crate) fn counter(start: i64, label: &str) -> Result<Counter> {
            ::core::result::Result::Ok(Counter { n: start + label.len() as i64 })
        }
        #[procman::manager(typeid = "remote_counter")]
        pub(crate) fn remote() -> Counter;
    }
}

use hygiene::{AsyncCounterProxy, AsyncStoreProxy, Counter, CounterProxy, HygieneManager, Store, StoreProxy};
use procman::__private::Dispatch;
use procman::{Manager, Proxy, Shared};

fn proxy_of<T: Shared<Proxy = P>, P: Proxy<Referent = T>>() {}

#[test]
#[allow(clippy::type_complexity)]
fn generated_items() {
    assert_eq!(<Store<String> as Dispatch>::EXPOSED, ["put", "take", "pop_first", "first", "len", "count", "counter"]);
    assert_eq!(<Counter as Dispatch>::EXPOSED, ["get", "same", "audit"]);
    proxy_of::<Store<String>, StoreProxy<String>>();
    proxy_of::<Counter, CounterProxy>();
    assert!(<HygieneManager as Manager>::NAME.ends_with("hygiene::HygieneManager"));
    assert!(<HygieneManager as Manager>::INCLUDES.is_empty());

    // The proxy methods and client methods, with the mapped signatures.
    let _: fn(&StoreProxy<String>, String) -> procman::Result<()> = StoreProxy::put;
    let _: fn(&StoreProxy<String>) -> procman::Result<Option<String>> = StoreProxy::take;
    let _: fn(&StoreProxy<String>) -> procman::Result<String> = StoreProxy::first;
    let _: fn(&StoreProxy<String>, usize) -> procman::Result<Result<usize, String>> = StoreProxy::len;
    let _: fn(&StoreProxy<String>, &str, &[i64], &i64) -> procman::Result<i64> = StoreProxy::count;
    let _: fn(&StoreProxy<String>) -> procman::Result<CounterProxy> = StoreProxy::counter;
    let _: fn(&CounterProxy, &i64) -> procman::Result<bool> = CounterProxy::same;
    let _: fn(&CounterProxy) -> procman::Result<String> = CounterProxy::audit;
    let _: fn(&HygieneManager) -> procman::Result<StoreProxy<String>> = HygieneManager::store;
    let _: fn(&HygieneManager, i64, &str) -> procman::Result<CounterProxy> = HygieneManager::counter;
    let _: fn(&HygieneManager) -> procman::Result<CounterProxy> = HygieneManager::remote;

    // The async proxies and their methods.
    fn async_fn<P, A, F: std::future::Future<Output = R>, R>(_: fn(P, A) -> F) {}
    fn async_fn0<P, F: std::future::Future<Output = R>, R>(_: fn(P) -> F) {}
    fn pair<P: Proxy<Async = A>, A: procman::AsyncProxy<Blocking = P>>() {}
    pair::<StoreProxy<String>, AsyncStoreProxy<String>>();
    pair::<CounterProxy, AsyncCounterProxy>();
    async_fn::<&AsyncStoreProxy<String>, String, _, procman::Result<()>>(AsyncStoreProxy::put);
    async_fn0::<&AsyncStoreProxy<String>, _, procman::Result<Option<String>>>(AsyncStoreProxy::take);
    async_fn0::<&AsyncStoreProxy<String>, _, procman::Result<String>>(AsyncStoreProxy::pop_first);
    async_fn0::<&AsyncStoreProxy<String>, _, procman::Result<AsyncCounterProxy>>(AsyncStoreProxy::counter);
    async_fn::<&AsyncCounterProxy, &i64, _, procman::Result<bool>>(AsyncCounterProxy::same);
    fn put_two(s: &AsyncStoreProxy<String>) -> impl std::future::Future<Output = procman::Result<usize>> + '_ {
        s.put_two(String::new(), String::new())
    }
    let _ = put_two;
}
