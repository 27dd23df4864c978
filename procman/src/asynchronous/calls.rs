//! What the generated async proxy methods call: the async forms of the blocking calls in
//! `private.rs`, one for one, each with the wire name of the method that undoes its result when
//! the caller has gone (`#[shared(undo = ..)]`; see `mux.rs`).

use super::mux::{self, Undo};
use crate::__private::ArgsBuf;
use crate::bytes::ByteBuf;
use crate::encoded::Form;
use crate::error::Result;
use crate::proxy::BaseProxy;
use crate::shared::{Dispatch, Proxy};
use crate::typecheck::{self, TypeDesc};
use crate::wire::{self, Bytes, message::Request};
use serde::de::DeserializeOwned;

/// Checks, once, the type of a proxy received from another process (the async
/// [`typecheck::verify`]).
async fn verify<T: Dispatch>(base: &BaseProxy) -> Result<()> {
    if base.is_verified() {
        return Ok(());
    }
    let token = base.token();
    let req = Request::Describe { typeid: token.typeid(), id: Some(token.id()) };
    let bytes = mux::request(token.address(), super::owner(), &req, None).await?;
    let (manager, _): (TypeDesc, Option<typecheck::Signature>) = wire::decode(&bytes, "a type description")?;
    typecheck::check_description::<T>(base, manager)
}

/// Calls `method` with `args` and returns the reply's payload.
async fn raw<P: Proxy>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf<'_>,
    undo: Option<&'static str>,
) -> Result<Vec<u8>>
where
    P::Referent: Dispatch,
{
    raw_with(proxy, method, args, undo, |b| Ok(b.to_vec())).await
}

/// [`raw`], with the reply's payload read by `f` (where it lies, when it can).
async fn raw_with<P: Proxy, R>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf<'_>,
    undo: Option<&'static str>,
    f: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<R>
where
    P::Referent: Dispatch,
{
    let base = proxy.base();
    verify::<P::Referent>(base).await?;
    let token = base.token();
    let args = args.into_bytes();
    let req = Request::Call { id: token.id(), method, args: Bytes(&args) };
    let undo = undo.map(|method| Undo { object: token.id(), method });
    mux::request_with(token.address(), super::owner(), &req, undo, f).await
}

/// Async [`call`](crate::__private::call).
pub async fn call<P: Proxy, R: DeserializeOwned>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf<'_>,
    undo: Option<&'static str>,
) -> Result<R>
where
    P::Referent: Dispatch,
{
    raw_with(proxy, method, args, undo, |bytes| wire::decode::<R>(bytes, format_args!("the result of `{method}`")))
        .await
}

/// Async [`call_bytes`](crate::__private::call_bytes).
pub async fn call_bytes<P: Proxy>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf<'_>,
    undo: Option<&'static str>,
) -> Result<Vec<u8>>
where
    P::Referent: Dispatch,
{
    call::<P, ByteBuf>(proxy, method, args, undo).await.map(ByteBuf::into_vec)
}

/// Async [`call_opt_bytes`](crate::__private::call_opt_bytes).
pub async fn call_opt_bytes<P: Proxy>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf<'_>,
    undo: Option<&'static str>,
) -> Result<Option<Vec<u8>>>
where
    P::Referent: Dispatch,
{
    call::<P, Option<ByteBuf>>(proxy, method, args, undo).await.map(|b| b.map(ByteBuf::into_vec))
}

/// Async [`call_result_bytes`](crate::__private::call_result_bytes).
pub async fn call_result_bytes<P: Proxy, E: DeserializeOwned>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf<'_>,
    undo: Option<&'static str>,
) -> Result<std::result::Result<Vec<u8>, E>>
where
    P::Referent: Dispatch,
{
    call::<P, std::result::Result<ByteBuf, E>>(proxy, method, args, undo).await.map(|r| r.map(ByteBuf::into_vec))
}

/// Async [`call_form`](crate::__private::call_form).
pub async fn call_form<P: Proxy, F: Form>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf<'_>,
    undo: Option<&'static str>,
) -> Result<F::Client>
where
    P::Referent: Dispatch,
{
    call::<P, F>(proxy, method, args, undo).await?.into_client()
}

/// Async [`call_proxy`](crate::__private::call_proxy): the new object's blocking proxy (the
/// generated method turns it into the async one).
pub async fn call_proxy<P: Proxy, Q: Proxy>(
    proxy: &P,
    method: &'static str,
    args: ArgsBuf<'_>,
    undo: Option<&'static str>,
) -> Result<Q>
where
    P::Referent: Dispatch,
    Q::Referent: Dispatch,
{
    let bytes = raw(proxy, method, args, undo).await?;
    let (base, fingerprint) = BaseProxy::from_new_checked(proxy.base().token().address(), &bytes)?;
    typecheck::check_returned::<Q>(base, fingerprint)
}

/// Async [`create`](crate::__private::create): the new object's blocking proxy (the generated
/// creator turns it into the async one).
pub async fn create<P: Proxy>(
    manager: &crate::BaseManager,
    typeid: &'static str,
    args: ArgsBuf<'_>,
    signature: typecheck::Signature,
) -> Result<P>
where
    P::Referent: Dispatch,
{
    let desc = typecheck::describe::<P::Referent>();
    let expect = typecheck::Expect::of(&desc, Some(signature.fingerprint));
    let args = args.into_bytes();
    let address = manager.address();
    let req = Request::Create { typeid, args: Bytes(&args), expect: Some(expect) };
    match mux::request(address, super::owner(), &req, None).await {
        Ok(bytes) => BaseProxy::from_new(address, &bytes).map(P::from_base),
        Err(crate::Error::TypeMismatch { .. }) => {
            // The precise difference, asked for on a thread of its own.
            let address = address.clone();
            let explained =
                super::off_thread(move || Ok(typecheck::explain(&address, typeid, None, &desc, Some(&signature))));
            Err(explained.await?)
        }
        Err(e) => Err(e),
    }
}
