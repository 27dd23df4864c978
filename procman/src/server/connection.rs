//! One connection, on a thread of its own: the handshake, the hello, then requests until the
//! client goes away; then what the client held is released.

use super::listen::Core;
use super::object::Object;
use super::scope::Serving;
use crate::auth;
use crate::error::{Error, Result};
use crate::shared::Caller;
use crate::transport::Stream;
use crate::wire::message::{self, Hello, Reply, Request};
use crate::wire::{self, Bytes};
use std::collections::HashSet;
use std::io::{self, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The largest frame before the hello: it holds a client id.
const MAX_HELLO: usize = 1024;

/// How long a stopping server tries to tell a client that it shut down.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// An authenticated connection, as its requests see it.
pub(super) struct Session {
    pub(super) caller: Caller,
    /// What code running in a call of this connection can ask for (see `scope.rs`).
    pub(super) serving: Rc<Serving>,
    /// The objects this connection has called, told when it closes (see
    /// [`Dispatch::connection_closed`](crate::shared::Dispatch::connection_closed)).
    touched: HashSet<u64>,
    /// Freed objects are forgotten when `touched` reaches this size.
    prune_at: usize,
}

impl Session {
    /// Records that this connection called object `id`.
    pub(super) fn record_call(&mut self, id: u64, core: &Core) {
        if self.touched.insert(id) && self.touched.len() >= self.prune_at {
            // A long-lived connection that calls many short-lived objects: forget the freed ones.
            let table = core.table();
            self.touched.retain(|id| table.contains(*id));
            self.prune_at = (2 * self.touched.len()).max(1024);
        }
    }
}

impl Core {
    /// Serves one accepted connection until it closes or the server stops.
    pub(super) fn serve_connection(self: Arc<Self>, mut stream: Stream) {
        let peer = stream.peer();
        let hello = self.authenticate(&mut stream, &peer);
        self.unauthenticated.fetch_sub(1, Ordering::Relaxed);
        let Some((hello, reader)) = hello else { return };
        let client = hello.client;
        let _ = stream.set_read_timeout(None);
        let _ = stream.set_write_timeout(None);
        let Ok(watched) = stream.try_clone().map(Arc::new) else { return };
        let Some(connection) = self.open(watched.clone()) else { return };
        self.connections.opened(connection, client, hello.pid, &peer);
        self.table().connect(client);
        let caller = Caller { client, connection };
        let serving = Rc::new(Serving { core: Arc::downgrade(&self), connection: watched });
        let mut session = Session { caller, serving, touched: HashSet::new(), prune_at: 1024 };
        self.requests(stream, reader, &peer, &mut session);
        self.end(session);
    }

    /// The handshake and the hello, under the handshake deadline. Returns the hello and the
    /// reading half of the connection, or `None` (logged) for a peer that is refused.
    fn authenticate(&self, stream: &mut Stream, peer: &str) -> Option<(Hello, BufReader<Stream>)> {
        if let Some(idle) = self.config.keepalive {
            let _ = stream.set_keepalive(idle);
        }
        let deadline = Some(self.config.handshake_timeout);
        let _ = stream.set_read_timeout(deadline);
        let _ = stream.set_write_timeout(deadline);
        if let Err(e) = auth::server_handshake(stream, &self.authkey, peer) {
            let reason = match &e {
                Error::Authentication { reason, .. } => reason.as_str(),
                _ => "handshake failed",
            };
            tracing::warn!(manager = %self.address, %peer, reason, "refused a connection: authentication failed");
            return None;
        }
        let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone().ok()?);
        let mut buf = Vec::new();
        if !matches!(wire::read_frame(&mut reader, &mut buf, MAX_HELLO), Ok(true)) {
            return None; // gone before its hello
        }
        match message::hello(&buf) {
            Some(hello) => Some((hello, reader)),
            None => {
                tracing::warn!(manager = %self.address, %peer, "closed a connection: it did not start with a hello");
                None
            }
        }
    }

    /// Answers requests until the client closes the connection, breaks the protocol, or asks
    /// the server to shut down.
    fn requests(&self, mut stream: Stream, mut reader: BufReader<Stream>, peer: &str, session: &mut Session) {
        let mut rbuf = Vec::new();
        let mut wbuf = Vec::new();
        let mut freed = Vec::new();
        let limit = wire::encode(&(self.config.max_frame_size as u64), "the frame limit").unwrap_or_default();
        let _ = send_reply(&mut stream, &mut wbuf, Ok(limit));
        loop {
            match wire::read_frame(&mut reader, &mut rbuf, self.config.max_frame_size) {
                Ok(true) => {}
                Ok(false) => {
                    if self.is_stopping() {
                        self.goodbye(&mut stream, &mut wbuf);
                    }
                    break;
                }
                Err(e) => {
                    if let Some(big) = e.get_ref().and_then(|x| x.downcast_ref::<wire::FrameTooLarge>()) {
                        tracing::warn!(
                            manager = %self.address,
                            %peer,
                            size = big.size,
                            limit = big.limit,
                            "closed a connection: frame too large"
                        );
                        let too_large = Error::FrameTooLarge { size: big.size, limit: big.limit };
                        let _ = send_reply(&mut stream, &mut wbuf, Err(too_large));
                    }
                    break;
                }
            }
            let req = match postcard::take_from_bytes::<Request<'_>>(&rbuf) {
                Ok((r, [])) => r,
                Ok((_, rest)) => {
                    let reason = format!("{} unexpected bytes after the request", rest.len());
                    self.refuse(&mut stream, &mut wbuf, peer, reason);
                    break;
                }
                Err(e) => {
                    self.refuse(&mut stream, &mut wbuf, peer, format!("undecodable request: {e}"));
                    break;
                }
            };
            let shutdown = matches!(req, Request::Shutdown);
            let reply = match self.handle(req, session, &mut freed) {
                // A call cut short by the server stopping (its caller looked gone) says so.
                Some(Err(e)) if e.is_connection_lost() && self.is_stopping() => Some(Err(self.shut_down())),
                reply => reply,
            };
            freed.clear(); // dropped here, outside the table's lock
            if let Some(reply) = reply
                && send_reply(&mut stream, &mut wbuf, reply).is_err()
            {
                break;
            }
            if shutdown {
                tracing::debug!(manager = %self.address, %peer, "shutdown requested");
                self.stop();
                break;
            }
        }
    }

    /// Tells the client that the server shut down ([`Error::Shutdown`], the reply to its call in
    /// progress or to its next one), then closes both halves of the connection: stopping
    /// closed only the reading half, to wake this thread.
    fn goodbye(&self, stream: &mut Stream, wbuf: &mut Vec<u8>) {
        let _ = stream.set_write_timeout(Some(GOODBYE_TIMEOUT));
        let _ = send_reply(stream, wbuf, Err(self.shut_down()));
        stream.shutdown();
    }

    /// Logs a protocol error and sends it to the peer before the connection closes.
    fn refuse(&self, stream: &mut Stream, wbuf: &mut Vec<u8>, peer: &str, reason: String) {
        tracing::warn!(manager = %self.address, %peer, reason, "closed a connection: protocol error");
        let _ = send_reply(stream, wbuf, Err(self.protocol(reason)));
    }

    /// The connection closed: the objects it called are told, and when it was its client's
    /// last, what the client held is released.
    fn end(&self, session: Session) {
        let caller = session.caller;
        self.close(caller.connection);
        self.connections.closed(caller.connection);
        let (notify, freed): (Vec<Object>, Vec<Object>) = {
            let mut table = self.table();
            let notify = session.touched.iter().filter_map(|id| table.get(*id).map(|(o, _)| o)).collect();
            (notify, table.disconnect(caller.client))
        };
        for o in notify {
            let _ = catch_unwind(AssertUnwindSafe(|| o.connection_closed(caller)));
        }
        drop(freed);
    }
}

fn send_reply(stream: &mut Stream, buf: &mut Vec<u8>, r: Result<Vec<u8>>) -> io::Result<()> {
    let framed = match &r {
        Ok(b) => wire::frame(&Reply::<&Error>::Ok(Bytes(b)), buf),
        Err(e) => wire::frame(&Reply::Err(e), buf),
    };
    if let Err(e) = framed {
        wire::frame(&Reply::Err(&e), buf).map_err(|e| io::Error::other(e.to_string()))?;
    }
    stream.write_all(buf)
}
