//! The words of the helper attributes, in one place.

/// `#[shared]`: the attribute on an impl block and on its methods.
pub(crate) const SHARED: &str = "shared";
/// `#[manager]`: the attribute on a manager struct, its impl block and its creators.
pub(crate) const MANAGER: &str = "manager";

/// `#[shared(exposed(a, b))]` on an impl block: exactly these methods are exposed.
pub(crate) const EXPOSED: &str = "exposed";
/// `#[shared(skip)]` on a method: not exposed.
pub(crate) const SKIP: &str = "skip";
/// `#[shared(proxy)]` on a method: returns a new shared object, the caller gets its proxy.
pub(crate) const PROXY: &str = "proxy";
/// `#[shared(on_disconnect)]` on a method: called when a client connection closes.
pub(crate) const ON_DISCONNECT: &str = "on_disconnect";

/// `#[shared(rename = "...")]` on a method: its name on the wire (and in `exposed` lists of
/// other programs), when it differs from the Rust name.
pub(crate) const RENAME: &str = "rename";
/// `#[shared(client)]` on a method: it runs in the caller's process, as a method of the proxy.
pub(crate) const CLIENT: &str = "client";
/// `#[shared(undo = method)]` on a method: the exposed method that takes its result back when
/// the caller of the async proxy method has gone.
pub(crate) const UNDO: &str = "undo";

/// `#[manager(sync)]` on a manager struct: the manager also serves the built-in types.
pub(crate) const SYNC: &str = "sync";
/// `#[manager(typeid = "...")]` on a creator.
pub(crate) const TYPEID: &str = "typeid";
/// `#[manager(singleton)]` on a creator.
pub(crate) const SINGLETON: &str = "singleton";

/// The prefix of every hidden item the macros add to the user's namespace.
pub(crate) const HIDDEN_PREFIX: &str = "__procman_";
