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

use hygiene::{Counter, CounterProxy, HygieneManager, Store, StoreProxy};
use procman::__private::Dispatch;
use procman::{Manager, Proxy, Shared};

fn proxy_of<T: Shared<Proxy = P>, P: Proxy<Referent = T>>() {}

#[test]
#[allow(clippy::type_complexity)]
fn generated_items() {
    assert_eq!(<Store<String> as Dispatch>::EXPOSED, ["put", "take", "first", "len", "count", "counter"]);
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
}
