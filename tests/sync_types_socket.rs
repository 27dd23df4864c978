//! The built-in types' tests of `sync_types.rs` again, with every frame on the socket
//! (`Transport::Socket`): both same-host transports give the same results.

/// The transport the managers of `sync_types.rs` use when it runs from here.
const TRANSPORT: procman::Transport = procman::Transport::Socket;

#[path = "sync_types.rs"]
mod sync_types;
