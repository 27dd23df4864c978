//! Async proxies: the calls of the async proxy methods that `#[shared]` generates.

pub(crate) mod calls;
