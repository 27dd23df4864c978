//! What the macros' generated code names: `::procman::__private::…`. Not a public API.

pub use inventory;
pub use postcard;
pub use serde;

pub use crate::bytes::{ByteArg, ByteArray, ByteBuf};
pub use crate::child::ChildEntry;
pub use crate::encoded::Form;
pub use crate::inspect::ObjectState;
pub use crate::server::CreatorEntry;
pub use crate::server::{CallCx, Object, ServerObject};
pub use crate::shared::{Dispatch, Inspect, Referent, StateInspect, StateNone, StateProbe};
pub use crate::typecheck::{MethodDesc, ParamDesc, Signature, TypeDesc, describe};

/// The async forms of the calls below, for the generated async proxy methods.
pub mod asynch {
    pub use crate::asynchronous::calls::*;
}

use crate::error::{Error, Result};
use crate::shared::{Proxy, Shared};
use crate::wire;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The encoded arguments of one call, built one argument at a time so that a type error lands
/// on that argument's tokens.
///
/// A last argument of bytes (`Vec<u8>`, `&[u8]`, `[u8; N]`) is kept where it lies, its length
/// encoded: a blocking call writes it into the frame from there, not through a copy here.
#[derive(Debug, Default)]
pub struct ArgsBuf<'a> {
    bytes: Vec<u8>,
    /// The bytes of a last byte-string argument, after its length in `bytes`.
    tail: &'a [u8],
}

impl<'a> ArgsBuf<'a> {
    /// An empty argument list.
    pub fn new() -> Self {
        ArgsBuf { bytes: Vec::new(), tail: &[] }
    }

    /// Appends the last argument, a byte string: its encoding is its length, then its bytes,
    /// which stay where they are until the call writes them.
    pub fn push_last_bytes(&mut self, bytes: &'a [u8]) -> Result<()> {
        debug_assert!(self.tail.is_empty(), "one last argument");
        // postcard writes a byte string as its length (a varint of the `usize`), then the bytes.
        self.push(&bytes.len())?;
        self.tail = bytes;
        Ok(())
    }

    /// Appends one argument. postcard encodes a tuple as its fields one after the other, so
    /// arguments pushed one by one decode as a tuple.
    pub fn push<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        debug_assert!(self.tail.is_empty(), "no argument after the last");
        if self.bytes.capacity() == 0 {
            self.bytes.reserve(wire::SMALL);
        }
        wire::encode_into(value, &mut self.bytes, "an argument")
    }

    /// Appends a slice argument whose elements the proxy converts (`&[Encoded<T>]` in the
    /// server's signature, `&[T]` in the proxy's).
    pub fn push_forms<F: Form>(&mut self, values: &[F::Client]) -> Result<()> {
        let forms = values.iter().map(F::from_client).collect::<Result<Vec<F>>>()?;
        self.push::<[F]>(&forms)
    }

    /// The encoded bytes, in one vector.
    pub fn into_bytes(self) -> Vec<u8> {
        let mut bytes = self.bytes;
        bytes.extend_from_slice(self.tail);
        bytes
    }

    /// The encoded bytes as they lie: what was encoded, then the last argument's bytes.
    pub(crate) fn parts(&self) -> (&[u8], &'a [u8]) {
        (&self.bytes, self.tail)
    }
}

/// Reads the arguments of one call in the server, one at a time.
#[derive(Debug)]
pub struct ArgsReader<'a> {
    rest: &'a [u8],
    method: &'a str,
}

impl<'a> ArgsReader<'a> {
    /// Starts reading `bytes`, the arguments of `method`.
    pub fn new(bytes: &'a [u8], method: &'a str) -> Self {
        ArgsReader { rest: bytes, method }
    }

    /// Decodes the next argument.
    pub fn next_arg<T: DeserializeOwned>(&mut self) -> Result<T> {
        match wire::take::<T>(self.rest) {
            Ok((value, rest)) => {
                self.rest = rest;
                Ok(value)
            }
            Err(e) => Err(Error::decode(
                format_args!("the arguments of `{}` (expected {})", self.method, std::any::type_name::<T>()),
                e,
            )),
        }
    }

    /// Checks that every byte was used: extra bytes mean the caller sent other arguments.
    pub fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::decode(
                format_args!("the arguments of `{}`", self.method),
                format_args!("{} unexpected trailing bytes (wrong argument types?)", self.rest.len()),
            ))
        }
    }
}

/// Calls `method` on the proxy's referent and decodes a plain return value. A proxy received
/// from another process has its type checked first, once.
pub fn call<P: Proxy, R: DeserializeOwned>(proxy: &P, method: &str, args: ArgsBuf<'_>) -> Result<R>
where
    P::Referent: Dispatch,
{
    crate::typecheck::verify::<P::Referent>(proxy.base())?;
    let (args, tail) = args.parts();
    proxy
        .base()
        .call_with_parts(method, args, tail, |bytes| wire::decode::<R>(bytes, format_args!("the result of `{method}`")))
}

/// [`call`] for a method returning `Vec<u8>` (or `&[u8]`), which the server sends as a byte
/// string.
pub fn call_bytes<P: Proxy>(proxy: &P, method: &str, args: ArgsBuf<'_>) -> Result<Vec<u8>>
where
    P::Referent: Dispatch,
{
    call::<P, ByteBuf>(proxy, method, args).map(ByteBuf::into_vec)
}

/// [`call`] for a method returning `Option<Vec<u8>>`.
pub fn call_opt_bytes<P: Proxy>(proxy: &P, method: &str, args: ArgsBuf<'_>) -> Result<Option<Vec<u8>>>
where
    P::Referent: Dispatch,
{
    call::<P, Option<ByteBuf>>(proxy, method, args).map(|b| b.map(ByteBuf::into_vec))
}

/// [`call`] for a method returning `Result<Vec<u8>, E>`.
pub fn call_result_bytes<P: Proxy, E: DeserializeOwned>(
    proxy: &P,
    method: &str,
    args: ArgsBuf<'_>,
) -> Result<std::result::Result<Vec<u8>, E>>
where
    P::Referent: Dispatch,
{
    call::<P, std::result::Result<ByteBuf, E>>(proxy, method, args).map(|r| r.map(ByteBuf::into_vec))
}

/// Calls `method` and converts its result with [`Form`] (`Encoded<T>` to `T`, ...).
pub fn call_form<P: Proxy, F: Form>(proxy: &P, method: &str, args: ArgsBuf<'_>) -> Result<F::Client>
where
    P::Referent: Dispatch,
{
    call::<P, F>(proxy, method, args)?.into_client()
}

/// Calls `method`, whose result is a new shared object in the server, and returns its proxy,
/// checked against the type `Q` it is used as.
pub fn call_proxy<P: Proxy, Q: Proxy>(proxy: &P, method: &str, args: ArgsBuf<'_>) -> Result<Q>
where
    P::Referent: Dispatch,
    Q::Referent: Dispatch,
{
    crate::typecheck::verify::<P::Referent>(proxy.base())?;
    let (base, fingerprint) = proxy.base().call_for_checked_proxy(method, args.into_bytes())?;
    crate::typecheck::check_returned::<Q>(base, fingerprint)
}

/// Creates an object of `typeid` through a manager and returns its typed proxy; the manager
/// checks the proxy's type and the creator's `signature` first.
pub fn create<P: Proxy>(
    manager: &crate::BaseManager,
    typeid: &str,
    args: ArgsBuf<'_>,
    signature: Signature,
) -> Result<P>
where
    P::Referent: Dispatch,
{
    crate::typecheck::create::<P>(manager, typeid, &args.into_bytes(), Some(signature))
}

/// A creator's argument types.
pub fn signature(parts: Vec<(crate::schema::Fingerprint, String)>) -> Signature {
    Signature::new(parts)
}

/// Encodes a method's return value in the server.
pub fn ret<T: ?Sized + Serialize>(value: &T) -> Result<Vec<u8>> {
    wire::encode(value, "a return value")
}

/// [`ret`] for a method's `Vec<u8>` result, a byte string: in a server, the bytes are sent from
/// the vector the method returned (see `CallCx::encode_bytes`) and the encoding returned holds
/// their length only.
pub fn ret_bytes(cx: &mut CallCx<'_>, bytes: Vec<u8>) -> Result<Vec<u8>> {
    cx.encode_bytes(bytes)
}

/// Converts the error of a method returning a one-argument `Result<T>` (or of a creator) into
/// the call's error.
pub fn into_error<E: IntoCallError>(e: E) -> Error {
    e.into_call_error()
}

/// An error that becomes the call's [`Error`] when a method returning a one-argument
/// `Result<T>` fails: procman's own, and the I/O and shared-memory errors it wraps. Any other
/// error (a crate's own `type Result<T> = Result<T, MyError>`) is not flattened: the compile
/// error says what to write.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot become the call's `procman::Error`: only `procman::Result<T>` (or `io::Result<T>`) is flattened",
    label = "this one-argument `Result<T>` has the error type `{Self}`",
    note = "to give the caller the error back typed, write the two-argument form `std::result::Result<T, {Self}>` (its error must be `Serialize + Deserialize`); for an error that becomes the call's error, return `procman::Result<T>`"
)]
pub trait IntoCallError {
    /// The call's error.
    fn into_call_error(self) -> Error;
}

impl IntoCallError for Error {
    fn into_call_error(self) -> Error {
        self
    }
}

impl IntoCallError for std::io::Error {
    fn into_call_error(self) -> Error {
        self.into()
    }
}

impl IntoCallError for procman_shm::ShmError {
    fn into_call_error(self) -> Error {
        self.into()
    }
}

impl IntoCallError for std::convert::Infallible {
    fn into_call_error(self) -> Error {
        match self {}
    }
}

/// Wraps a value for the object table.
pub fn object<T: Dispatch>(value: T) -> Object {
    crate::server::new_object(value)
}

/// The fingerprint of `T` and its name, for a method's description.
pub fn fingerprint<T: crate::Schema + ?Sized>() -> (crate::schema::Fingerprint, String) {
    (crate::schema::Fingerprint::of::<T>(), short_type_name::<T>())
}

/// The fingerprint of a `#[shared(proxy)]` method's result: the shared type, by name.
pub fn proxy_fingerprint<T: ?Sized>() -> (crate::schema::Fingerprint, String) {
    let name = short_type_name::<T>();
    (crate::schema::Fingerprint::of_bytes(format!("proxy {name}").as_bytes()), format!("{name}Proxy"))
}

/// [`fingerprint`] through a probe, for a concrete type: `&&Probe<T>` when `T: Schema`.
pub trait FingerprintOf {
    /// The fingerprint and the name.
    fn procman_fingerprint(&self) -> (crate::schema::Fingerprint, String);
}
impl<T: crate::Schema + ?Sized> FingerprintOf for &&Probe<T> {
    fn procman_fingerprint(&self) -> (crate::schema::Fingerprint, String) {
        fingerprint::<T>()
    }
}
/// Fallback of [`FingerprintOf`]: a type without `Schema`, already reported on the proxy's
/// method (unreachable in a program that builds).
pub trait FingerprintUnknown {
    /// [`Fingerprint::UNKNOWN`](crate::schema::Fingerprint::UNKNOWN) and the name.
    fn procman_fingerprint(&self) -> (crate::schema::Fingerprint, String);
}
impl<T: ?Sized> FingerprintUnknown for &Probe<T> {
    fn procman_fingerprint(&self) -> (crate::schema::Fingerprint, String) {
        (crate::schema::Fingerprint::UNKNOWN, short_type_name::<T>())
    }
}

/// The description of a creator's type through a probe: `&&Probe<T>` when `T: Dispatch`.
pub trait DescribeOf {
    /// The description.
    fn procman_describe(&self) -> std::sync::Arc<TypeDesc>;
}
impl<T: Dispatch> DescribeOf for &&Probe<T> {
    fn procman_describe(&self) -> std::sync::Arc<TypeDesc> {
        describe::<T>()
    }
}
/// Fallback of [`DescribeOf`] (the missing `#[shared]` is reported on the client method).
pub trait DescribeUnchecked {
    /// An empty description.
    fn procman_describe(&self) -> std::sync::Arc<TypeDesc>;
}
impl<T> DescribeUnchecked for &Probe<T> {
    fn procman_describe(&self) -> std::sync::Arc<TypeDesc> {
        std::sync::Arc::new(TypeDesc::new(String::new(), Vec::new(), Vec::new()))
    }
}

/// Autoref probe: `(&&ReprProbe(x)).procman_repr()` uses `Debug` when the type has it.
#[derive(Debug)]
pub struct ReprProbe<'a, T>(pub &'a T);

/// Chosen when the type is `Debug`.
pub trait ReprDebug {
    /// The `Debug` form.
    fn procman_repr(&self) -> String;
}

impl<T: std::fmt::Debug> ReprDebug for &ReprProbe<'_, T> {
    fn procman_repr(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// Chosen when the type is not `Debug`.
pub trait ReprName {
    /// `<TypeName: no Debug>`.
    fn procman_repr(&self) -> String;
}

impl<T> ReprName for ReprProbe<'_, T> {
    fn procman_repr(&self) -> String {
        format!("<{}: no Debug>", short_type_name::<T>())
    }
}

/// Autoref probe: `(&&ValueProbe(x)).procman_encode_value()` encodes when the type is
/// `Serialize`.
#[derive(Debug)]
pub struct ValueProbe<'a, T>(pub &'a T);

/// Chosen when the type is `Serialize`.
pub trait ValueSerialize {
    /// The encoded value.
    fn procman_encode_value(&self) -> Result<Vec<u8>>;
}

impl<T: Serialize> ValueSerialize for &ValueProbe<'_, T> {
    fn procman_encode_value(&self) -> Result<Vec<u8>> {
        wire::encode(self.0, "the value of a shared object")
    }
}

/// Chosen when the type is not `Serialize`.
pub trait ValueOpaque {
    /// An error saying the type cannot be copied out.
    fn procman_encode_value(&self) -> Result<Vec<u8>>;
}

impl<T> ValueOpaque for ValueProbe<'_, T> {
    fn procman_encode_value(&self) -> Result<Vec<u8>> {
        Err(crate::shared::not_serializable::<T>())
    }
}

/// The error for a method name outside the exposed set.
pub fn not_exposed<T>(method: &str) -> Error {
    Error::NotExposed { typeid: short_type_name::<T>(), method: method.into() }
}

/// `Counter` for `my_crate::Counter`, `Queue<String>` for `procman::sync::Queue<alloc::string::String>`.
pub use procman_shm::short_type_name;

/// The entry point run by `procman::child_entry_point!()`.
pub fn child_entry() {
    crate::init();
}

/// A type that can travel between processes as an argument or a return value:
/// `Serialize + DeserializeOwned`, with a fingerprint (`Schema`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot travel between processes",
    label = "not `Serialize + Deserialize + Schema`",
    note = "arguments and results of exposed methods and creators are sent encoded with serde and checked by fingerprint: `#[derive(Serialize, Deserialize, Schema)]` (all three in `procman::prelude`), or mark the method `#[shared(skip)]`"
)]
pub trait Wire: Serialize + DeserializeOwned + crate::Schema {}

impl<T: Serialize + DeserializeOwned + crate::Schema> Wire for T {}

/// An autoref probe: method resolution on `&&Probe<T>`, `&Probe<T>` or `Probe<T>` picks the impl
/// for what `T` implements. The server side of generated code uses it in three levels:
/// `&&Probe<T>` when `T` has everything; `&Probe<T>` when `T` passed the proxy-side check
/// but lacks the server-side trait (a compile error, at the user's type); `Probe<T>` when the
/// proxy-side check failed (already reported there: unreachable in a program that builds).
/// So each wrong type gives exactly one error.
pub struct Probe<T: ?Sized>(std::marker::PhantomData<fn() -> std::marker::PhantomData<T>>);

impl<T: ?Sized> Probe<T> {
    /// The selector.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Probe(std::marker::PhantomData)
    }
}

impl<T: ?Sized> std::fmt::Debug for Probe<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

fn unchecked<T: ?Sized>(what: &str) -> Error {
    Error::usage(format_args!("`{}` cannot be {what} (no compile-time check ran)", std::any::type_name::<T>()))
}

/// Decodes an argument.
pub trait DecodeArg<T> {
    /// The next argument.
    fn procman_next(&self, reader: &mut ArgsReader<'_>) -> Result<T>;
}
impl<T: DeserializeOwned> DecodeArg<T> for &&Probe<T> {
    fn procman_next(&self, reader: &mut ArgsReader<'_>) -> Result<T> {
        reader.next_arg::<T>()
    }
}
/// [`DecodeArg`] for a type that is `Serialize` (checked on the proxy side) but not
/// `DeserializeOwned`: a compile error at the call, spanned at the argument's type.
pub trait DecodeArgNotDeserialize<T> {
    /// Requires `T: DeserializeOwned`, which is the error.
    fn procman_next(&self, reader: &mut ArgsReader<'_>) -> Result<T>
    where
        T: DeserializeOwned;
}
impl<T: Serialize> DecodeArgNotDeserialize<T> for &Probe<T> {
    fn procman_next(&self, reader: &mut ArgsReader<'_>) -> Result<T>
    where
        T: DeserializeOwned,
    {
        reader.next_arg::<T>()
    }
}
/// Fallback of [`DecodeArg`].
pub trait DecodeArgUnchecked<T> {
    /// Unreachable in a program that builds.
    fn procman_next(&self, reader: &mut ArgsReader<'_>) -> Result<T>;
}
impl<T> DecodeArgUnchecked<T> for Probe<T> {
    fn procman_next(&self, _: &mut ArgsReader<'_>) -> Result<T> {
        Err(unchecked::<T>("decoded"))
    }
}

/// Encodes a return value.
pub trait EncodeRet<T: ?Sized> {
    /// The encoded value.
    fn procman_ret(&self, value: &T) -> Result<Vec<u8>>;
}
impl<T: ?Sized + Serialize> EncodeRet<T> for &&Probe<T> {
    fn procman_ret(&self, value: &T) -> Result<Vec<u8>> {
        ret(value)
    }
}
/// [`EncodeRet`] for a type that is `DeserializeOwned` (checked on the proxy side) but not
/// `Serialize`: a compile error at the call, spanned at the return type.
pub trait EncodeRetNotSerialize<T: ?Sized> {
    /// Requires `T: Serialize`, which is the error.
    fn procman_ret(&self, value: &T) -> Result<Vec<u8>>
    where
        T: Serialize;
}
impl<T: DeserializeOwned> EncodeRetNotSerialize<T> for &Probe<T> {
    fn procman_ret(&self, value: &T) -> Result<Vec<u8>>
    where
        T: Serialize,
    {
        ret(value)
    }
}
/// Fallback of [`EncodeRet`].
pub trait EncodeRetUnchecked<T: ?Sized> {
    /// Unreachable in a program that builds.
    fn procman_ret(&self, value: &T) -> Result<Vec<u8>>;
}
impl<T: ?Sized> EncodeRetUnchecked<T> for Probe<T> {
    fn procman_ret(&self, _: &T) -> Result<Vec<u8>> {
        Err(unchecked::<T>("encoded"))
    }
}

/// Registers the object returned by a `#[shared(proxy)]` method.
pub trait RegisterShared<T> {
    /// The encoded token of the new object.
    fn procman_register(&self, cx: &mut CallCx<'_>, value: T) -> Result<Vec<u8>>;
}
impl<T: Dispatch> RegisterShared<T> for &&Probe<T> {
    fn procman_register(&self, cx: &mut CallCx<'_>, value: T) -> Result<Vec<u8>> {
        cx.register(value)
    }
}
/// [`RegisterShared`] for a shared type without `#[shared]` impl: a compile error at the call.
pub trait RegisterNoDispatch<T> {
    /// Requires `T: Dispatch`, which is the error.
    fn procman_register(&self, cx: &mut CallCx<'_>, value: T) -> Result<Vec<u8>>
    where
        T: Dispatch;
}
impl<T: Shared> RegisterNoDispatch<T> for &Probe<T> {
    fn procman_register(&self, cx: &mut CallCx<'_>, value: T) -> Result<Vec<u8>>
    where
        T: Dispatch,
    {
        cx.register(value)
    }
}
/// Fallback of [`RegisterShared`] for a type that is not shared (reported on the proxy side).
pub trait RegisterUnchecked<T> {
    /// Unreachable in a program that builds.
    fn procman_register(&self, cx: &mut CallCx<'_>, value: T) -> Result<Vec<u8>>;
}
impl<T> RegisterUnchecked<T> for Probe<T> {
    fn procman_register(&self, _: &mut CallCx<'_>, _: T) -> Result<Vec<u8>> {
        Err(unchecked::<T>("registered"))
    }
}

/// Wraps the value a creator returns.
pub trait IntoObject<T> {
    /// The object for the table.
    fn procman_object(&self, value: T) -> Result<Object>;
}
impl<T: Dispatch> IntoObject<T> for &&Probe<T> {
    fn procman_object(&self, value: T) -> Result<Object> {
        Ok(object(value))
    }
}
/// Fallback of [`IntoObject`] for a type that is not shared with a `#[shared]` impl (reported
/// once, on the client method).
pub trait IntoObjectUnchecked<T> {
    /// Unreachable in a program that builds.
    fn procman_object(&self, value: T) -> Result<Object>;
}
impl<T> IntoObjectUnchecked<T> for Probe<T> {
    fn procman_object(&self, _: T) -> Result<Object> {
        Err(unchecked::<T>("created"))
    }
}

/// Raw protocol access for procman's own fault-injection tests. Not a public API.
pub mod testing {
    use crate::address::Address;
    use crate::auth::AuthKey;
    use crate::client::Conn;
    use crate::error::Result;
    use crate::wire::message::{Reply, Request, Tagged};
    use crate::wire::{self, Bytes};

    /// An authenticated connection on which a test sends what it likes.
    #[derive(Debug)]
    pub struct RawConnection(Conn);

    impl RawConnection {
        /// Connects, authenticates with `key` and says hello as a client of its own (a random
        /// client id, not this process's).
        pub fn open(address: &Address, key: &AuthKey) -> Result<Self> {
            let mut id = [0u8; 16];
            getrandom::fill(&mut id).expect("the OS random number generator failed");
            Conn::open_with(address, key, u128::from_le_bytes(id), true).map(RawConnection)
        }

        /// Sends bytes as they are.
        pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            self.0.write_raw(bytes)
        }

        /// Reads one reply: its payload, or the error the server sent.
        pub fn read_reply(&mut self) -> Result<Vec<u8>> {
            self.0.read_reply()
        }

        /// Sends a method call with raw argument bytes and reads the reply.
        pub fn call(&mut self, id: u64, method: &str, args: &[u8]) -> Result<Vec<u8>> {
            self.0.request(&Request::Call { id, method, args: Bytes(args) })
        }

        /// Sends a decref (no reply).
        pub fn decref(&mut self, id: u64) -> Result<()> {
            self.0.send(&Request::DecRef { id })
        }

        /// Bounds how long `read_reply` waits.
        pub fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
            self.0.set_read_timeout(timeout)
        }

        /// Sends a ping and reads the reply.
        pub fn ping(&mut self) -> Result<()> {
            self.0.request(&Request::Ping).map(drop)
        }

        /// Switches the connection to multiplexed frames (what async clients use).
        pub fn multiplex(&mut self) -> Result<()> {
            self.0.request(&Request::Multiplex).map(drop)
        }

        /// On a multiplexed connection: sends request `id` of `owner`, a method call.
        pub fn send_tagged_call(&mut self, id: u64, owner: u64, object: u64, method: &str, args: &[u8]) -> Result<()> {
            let mut frame = Vec::new();
            let req = Request::Call { id: object, method, args: Bytes(args) };
            wire::frame(&(Tagged::Request { id, owner }, &req), &mut frame)?;
            self.0.write_raw(&frame).map_err(|e| crate::Error::io("sending a frame", e))
        }

        /// On a multiplexed connection: sends request `id` of `owner`, a shutdown (which such
        /// a connection does not carry).
        pub fn send_tagged_shutdown(&mut self, id: u64, owner: u64) -> Result<()> {
            let mut frame = Vec::new();
            wire::frame(&(Tagged::Request { id, owner }, &Request::Shutdown), &mut frame)?;
            self.0.write_raw(&frame).map_err(|e| crate::Error::io("sending a frame", e))
        }

        /// On a multiplexed connection: cancels request `id`.
        pub fn send_cancel(&mut self, id: u64) -> Result<()> {
            let mut frame = Vec::new();
            wire::frame(&Tagged::Cancel { id }, &mut frame)?;
            self.0.write_raw(&frame).map_err(|e| crate::Error::io("sending a frame", e))
        }

        /// On a multiplexed connection: reads one reply, with its request id (`u64::MAX` for
        /// one about the whole connection).
        pub fn read_tagged(&mut self) -> Result<(u64, Result<Vec<u8>>)> {
            let bytes = self.0.read_frame()?;
            let (id, rest) = wire::take::<u64>(&bytes).map_err(|e| crate::Error::decode("a reply's id", e))?;
            let reply = match wire::take::<Reply<'_>>(rest).map_err(|e| crate::Error::decode("a reply", e))? {
                (Reply::Ok(Bytes(b)), []) => Ok(b.to_vec()),
                (Reply::Err(e), []) => Err(e),
                _ => return Err(crate::Error::decode("a reply", "trailing bytes")),
            };
            Ok((id, reply))
        }
    }

    /// The frame of a call request, length prefix included.
    pub fn call_frame(id: u64, method: &str, args: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        wire::frame(&Request::Call { id, method, args: Bytes(args) }, &mut buf).expect("a call encodes");
        buf
    }
}

/// Entry points for the fuzz targets (`fuzz/`): each feeds untrusted bytes to one decoder, as
/// a manager or a client would meet them. Not a public API.
pub mod fuzzing {
    use crate::address::Address;
    use crate::auth::{self, AuthKey};
    use crate::wire::message::{Reply, Request};
    use crate::wire::{self, Bytes};
    use std::io::{self, Read, Write};

    /// Frames as a server reads them from a connection, each decoded as a request.
    pub fn server_frames(data: &[u8]) {
        let mut input = data;
        let mut buf = Vec::new();
        while let Ok(true) = wire::read_frame(&mut input, &mut buf, 64 * 1024) {
            if let Ok((req, _)) = wire::take::<Request<'_>>(&buf) {
                // Re-encoding what decoded must work.
                let mut out = Vec::new();
                wire::frame(&req, &mut out).expect("a decoded request encodes");
            }
            // The same frame as a multiplexed connection's: a header, then a request.
            if let Ok((crate::wire::message::Tagged::Request { .. }, rest)) =
                wire::take::<crate::wire::message::Tagged>(&buf)
            {
                let _ = wire::take::<Request<'_>>(rest);
            }
        }
    }

    /// One message body, decoded as everything a peer may send: request, reply, arguments.
    pub fn messages(data: &[u8]) {
        let _ = wire::take::<Request<'_>>(data);
        let _ = wire::take::<Reply<'_>>(data);
        let _ = wire::take::<Bytes<'_>>(data);
        let _ = wire::take::<crate::Error>(data);
        let mut args = super::ArgsReader::new(data, "fuzz");
        let _ = args.next_arg::<(u64, String, Option<std::time::Duration>)>();
        let _ = args.finish();
    }

    /// A stream whose reads come from the fuzzer and whose writes go nowhere.
    struct Scripted<'a>(&'a [u8]);

    impl Read for Scripted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Scripted<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Both sides of the handshake against a peer that sends these bytes: neither may accept.
    pub fn handshake(data: &[u8]) {
        let key = AuthKey::new("fuzz key");
        let server = auth::server_handshake(&mut Scripted(data), &key, "fuzz", true);
        assert!(server.is_err(), "a server accepted random bytes");
        let address = Address::Abstract("fuzz".into());
        let client = auth::client_handshake(&mut Scripted(data), &key, &address, auth::Sealing::Sealed);
        assert!(client.is_err(), "a client accepted random bytes");
    }

    /// Frames as a server reads them from a sealed connection: none may open.
    pub fn sealed_frames(data: &[u8]) {
        wire::fuzz_sealed_frames(data);
    }

    /// What a hostile peer leaves in a shared-memory channel, as the server reads it: errors
    /// or frames from inside the ring, never a read outside it.
    pub fn channel(data: &[u8]) {
        crate::transport::fuzz_channel(data);
    }
}

#[cfg(test)]
mod probe_tests {
    #![allow(unused_imports, clippy::needless_borrow)]
    use super::{FingerprintOf as _, FingerprintUnknown as _};

    /// The probe picks the real fingerprint for a type with `Schema` and the fallback for one
    /// without: both sides of a wire compute the same.
    #[test]
    fn probe_finds_schema() {
        let (fp, _) = (&&&super::Probe::<bool>::new()).procman_fingerprint();
        assert_eq!(fp, crate::schema::Fingerprint::of::<bool>());
        struct NoSchema;
        let (fp, name) = (&&&super::Probe::<NoSchema>::new()).procman_fingerprint();
        assert_eq!((fp, name.as_str()), (crate::schema::Fingerprint::UNKNOWN, "NoSchema"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A last byte argument kept where it lies encodes as the same bytes as one encoded in
    /// place, at every length a varint changes size.
    #[test]
    fn a_last_byte_argument_encodes_as_one_pushed_whole() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut whole = ArgsBuf::new();
            whole.push(&7u32).unwrap();
            whole.push(&ByteArg(&bytes)).unwrap();
            let mut kept = ArgsBuf::new();
            kept.push(&7u32).unwrap();
            kept.push_last_bytes(&bytes).unwrap();
            let (head, tail) = kept.parts();
            assert_eq!(tail.as_ptr(), bytes.as_ptr(), "the bytes stay where they lie");
            assert_eq!([head, tail].concat(), whole.into_bytes(), "{len} bytes");
        }
    }
}
