//! The server: holds objects for its clients, counts their references, and runs their methods,
//! one thread per connection.
//!
//! Reference counts are kept per client *process*: when the last connection of a client closes,
//! whatever it still held is released, so a client that dies (SIGKILL included) leaks nothing.
//! Objects are called outside the table's lock, each on the thread of the calling connection, so
//! a blocking method (a queue's `get`) blocks only its caller; objects are dropped outside the
//! lock too, so a referent whose `Drop` talks to this server cannot deadlock it.
//!
//! The server knows nothing of managers or child processes: it serves a
//! [`ServerConfig`](crate::role::ServerConfig), whoever made it (a builder in this process, or
//! a parent that started this process to serve).
//!
//! # Files
//!
//! | file | what |
//! | --- | --- |
//! | `listen.rs` | [`Server`]: binds, accepts, one thread per connection; admission (slots, a brief queue, `procbusy`); `Core`: what the threads share; stop |
//! | `connection.rs` | one connection: handshake and hello under one deadline, the request loop inside the panic boundary, release at close |
//! | `dispatch.rs` | one request: to the object table or the referent, and back as a reply |
//! | `inspect.rs` | the open connections as snapshots show them; the [`Snapshot`](crate::inspect::Snapshot) that answers `Inspect` |
//! | `table.rs` | the object table: objects, reference counts per client, tickets of proxies in transit |
//! | `object.rs` | [`ServerObject`] (what the server needs of a referent), [`CallCx`], the panic boundary, iterative release of freed objects |
//! | `scope.rs` | `CallScope`: what a running call can ask (its server, whether its caller is still there) |
//! | `pins.rs` | proxies stored inside containers of this server |
//! | `registry.rs` | [`CreatorEntry`]: the creators of each manager, by typeid |
//!
//! # A call's path
//!
//! 1. `Server::serve` accepts the connection and starts its thread (`Core::serve_connection`)
//!    if one of the `max_unauthenticated` slots is free; else the connection waits, unread, for
//!    a slot (as many as there are slots may wait), and one more is told `procbusy` and closed.
//! 2. The handshake (`auth.rs`) and the hello that follows run under one deadline
//!    (`handshake_timeout` for all of it, not per read), reading 65 bytes at most from the
//!    unauthenticated peer; the hello names the client process. A TCP session is sealed from
//!    then on; a Unix-socket one is not (see the README's Security section).
//! 3. Each request is a frame whose length is checked against the frame limit before anything
//!    is allocated; a frame that has begun must arrive whole within `frame_timeout`; a sealed
//!    frame must open (a modified, replayed, reordered or injected one closes the connection);
//!    it is decoded into a `Request` no deeper than `max_decode_depth`.
//! 4. `Core::handle` finds the object in the table (locked only for the lookup), enters a
//!    `CallScope` and calls `ServerObject::call` inside the panic boundary; the generated
//!    `Dispatch::call` checks the method name against the exposed set and decodes the arguments
//!    (depth-limited too). A panic anywhere else in serving the request is caught around it.
//! 5. The result (or the error, with its variant) is framed and written back; objects the
//!    request freed are dropped after the table's lock is released, each inside the panic
//!    boundary and one after the other (`release`: a chain of objects, each holding the last
//!    proxy of the next, is released without recursion).
//! 6. When the connection closes, the objects it called are told (`connection_closed`: locks it
//!    held are released) and, if it was its client's last, the client's references go, through
//!    `release` again. That runs whatever happened in the request loop.
//!
//! When the server stops (a client's `Shutdown`, or a [`ShutdownHandle`](crate::ShutdownHandle)),
//! it ends the reading half of every connection: each connection's thread wakes (a blocked call
//! sees its caller gone), answers [`Error::Shutdown`](crate::Error::Shutdown) to the call in
//! progress or, once, to the next one, and closes; the accept loop waits a moment for them.
//!
//! # Logs
//!
//! The server logs through [`tracing`](https://docs.rs/tracing) under the target
//! `procman::server` (filter with `procman::server=warn`, say). It never logs a key, and never
//! logs above `warn`: a refused peer is the peer's problem, and every other client is served on.
//! Every event has the field `manager` (the server's address); events about one connection
//! have `peer` too (`ip:port`, or `local peer` for a Unix socket).
//!
//! | level | message | more fields | when |
//! | --- | --- | --- | --- |
//! | `warn` | `refused a connection: too many unauthenticated connections` | `limit` | every slot is authenticating and as many connections wait; the new one (or one that waited past the handshake deadline) is told `procbusy` and closed |
//! | `warn` | `refused a connection: authentication failed` | `reason` | a wrong key, or bytes that are not procman's handshake (`the client does not know the key`); a TCP client asking for plain frames (`the client asked for unsealed frames, which this connection refuses`); the handshake deadline, for the handshake and the hello together (`the handshake deadline passed`); a peer that hung up during it (`the peer closed the connection during the handshake`) |
//! | `warn` | `closed a connection: it did not start with a hello` | | the peer authenticated but sent something else first |
//! | `warn` | `closed a connection: frame too large` | `size`, `limit` | a frame announced more bytes than `max_frame_size`; the peer is told [`Error::FrameTooLarge`](crate::Error::FrameTooLarge) |
//! | `warn` | `closed a connection: protocol error` | `reason` | an undecodable request (one nested deeper than `max_decode_depth` among them), or bytes after one; the peer is told [`Error::Protocol`](crate::Error::Protocol) |
//! | `warn` | `closed a connection: a sealed frame did not open` | | a frame of a sealed session was modified, truncated, replayed, reordered or injected on the way; nothing of it runs; the peer is told [`Error::Protocol`](crate::Error::Protocol) |
//! | `warn` | `closed a connection: a frame did not arrive whole in time` | `timeout` | a frame began and was not whole within `frame_timeout` |
//! | `warn` | `closed a connection: the manager panicked serving it` | `message` | a panic escaped the per-request boundary (a bug); the connection's objects are released as at any close |
//! | `warn` | `a request panicked in the manager; the connection goes on` | `message` | a panic while serving a request outside the referent's own code (which gives [`Error::Remote`](crate::Error::Remote) as always); the request gets `Error::Remote` with typeid `<manager>` |
//! | `warn` | `a referent panicked while being dropped; the server goes on` | `message` | a referent's `Drop` panicked when its last reference went (a decref, a client's exit, the server's end); the other objects are released all the same |
//! | `warn` | `accept failed`, `cannot start a connection thread` | `error` | the OS refused (out of descriptors or threads); the server goes on |
//! | `debug` | `manager listening` | | the server starts serving |
//! | `debug` | `shutdown requested` | `peer` | a client asked the server to stop |
//! | `debug` | `ignored a decref for a reference the client does not hold` | `id` | a decref beyond the client's references (never trusted) |

mod connection;
mod dispatch;
mod inspect;
mod listen;
mod multiplex;
mod object;
mod pins;
pub(crate) mod registry;
mod scope;
mod table;
mod watchdog;
mod workers;

pub(crate) use listen::{Core, Server};
pub(crate) use multiplex::{CONNECTION as MULTIPLEXED_CONNECTION, DEFAULT_MAX_CALLS_IN_FLIGHT};
pub(crate) use object::new_object;
pub use object::{CallCx, Object, ServerObject};
pub(crate) use pins::{Pins, pin_tickets};
pub use registry::CreatorEntry;
pub(crate) use scope::{caller_connection_watched, caller_gone, local_referent, uncancellable, waiting_on};
