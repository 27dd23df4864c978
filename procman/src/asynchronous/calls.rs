//! What the generated async proxy methods call: the async forms of the blocking calls in
//! `private.rs`, one for one, each with the wire name of the method that undoes its result
//! when the caller has gone (see `undo` in the crate docs on cancellation).

use crate::encoded::Form;
use crate::error::Result;
use crate::__private::ArgsBuf;
use crate::shared::{Dispatch, Proxy};
use serde::de::DeserializeOwned;

/// Async [`call`](crate::__private::call).
pub async fn call<P: Proxy, R: DeserializeOwned>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf,
    undo: Option<&'static str>,
) -> Result<R>
where
    P::Referent: Dispatch,
{
    let _ = undo;
    crate::__private::call::<P, R>(proxy, method, args)
}

/// Async [`call_bytes`](crate::__private::call_bytes).
pub async fn call_bytes<P: Proxy>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf,
    undo: Option<&'static str>,
) -> Result<Vec<u8>>
where
    P::Referent: Dispatch,
{
    let _ = undo;
    crate::__private::call_bytes::<P>(proxy, method, args)
}

/// Async [`call_opt_bytes`](crate::__private::call_opt_bytes).
pub async fn call_opt_bytes<P: Proxy>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf,
    undo: Option<&'static str>,
) -> Result<Option<Vec<u8>>>
where
    P::Referent: Dispatch,
{
    let _ = undo;
    crate::__private::call_opt_bytes::<P>(proxy, method, args)
}

/// Async [`call_result_bytes`](crate::__private::call_result_bytes).
pub async fn call_result_bytes<P: Proxy, E: DeserializeOwned>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf,
    undo: Option<&'static str>,
) -> Result<std::result::Result<Vec<u8>, E>>
where
    P::Referent: Dispatch,
{
    let _ = undo;
    crate::__private::call_result_bytes::<P, E>(proxy, method, args)
}

/// Async [`call_form`](crate::__private::call_form).
pub async fn call_form<P: Proxy, F: Form>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf,
    undo: Option<&'static str>,
) -> Result<F::Client>
where
    P::Referent: Dispatch,
{
    let _ = undo;
    crate::__private::call_form::<P, F>(proxy, method, args)
}

/// Async [`call_proxy`](crate::__private::call_proxy): the new object's blocking proxy (the
/// generated method turns it into the async one).
pub async fn call_proxy<P: Proxy, Q: Proxy>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf,
    undo: Option<&'static str>,
) -> Result<Q>
where
    P::Referent: Dispatch,
    Q::Referent: Dispatch,
{
    let _ = undo;
    crate::__private::call_proxy::<P, Q>(proxy, method, args)
}
