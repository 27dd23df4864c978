//! One connection, on a thread of its own: the handshake and the hello under one deadline, then
//! requests until the client goes away; then what the client held is released.
//!
//! Everything after the handshake runs inside a panic boundary: a request whose handling
//! panics gets an error reply and the connection goes on, and whatever happens in the loop, the
//! connection's end (telling the objects it called, releasing what its client held) runs.

use super::listen::Core;
use super::object::{Object, Payload, release};
use super::scope::Serving;
use crate::auth;
use crate::error::{Error, Result, panic_message};
use crate::shared::Caller;
use crate::transport::{Stream, Until};
use crate::wire;
use crate::wire::depth::ThreadLimit;
use crate::wire::frames::{FrameReader, FrameWriter, ReadError};
use crate::wire::message::{self, Reply, Request};
use rustc_hash::FxHashSet;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    touched: FxHashSet<u64>,
    /// Freed objects are forgotten when `touched` reaches this size.
    prune_at: usize,
    /// The owners of a multiplexed connection's calls, each a caller of its own (see
    /// `multiplex.rs`), told at close like `caller`.
    pub(super) owners: Vec<Caller>,
}

impl Session {
    pub(super) fn new(caller: Caller, serving: Rc<Serving>) -> Session {
        Session { caller, serving, touched: FxHashSet::default(), prune_at: 1024, owners: Vec::new() }
    }

    /// A session that records the objects it calls in `touched` (an empty set whose memory
    /// is reused; see [`into_parts`](Self::into_parts)).
    pub(super) fn with_touched(caller: Caller, serving: Rc<Serving>, touched: FxHashSet<u64>) -> Session {
        Session { touched, ..Session::new(caller, serving) }
    }

    /// The set of objects it called and what its calls saw of the connection, for reuse.
    pub(super) fn into_parts(self) -> (FxHashSet<u64>, Rc<Serving>) {
        (self.touched, self.serving)
    }

    pub(super) fn touched_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.touched.iter().copied()
    }

    pub(super) fn touched_extend(&mut self, ids: impl IntoIterator<Item = u64>) {
        self.touched.extend(ids);
    }

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

/// A peer that authenticated and said hello: who it is, and its frames.
struct Greeted {
    client: u128,
    /// Its process id, from clients that send it.
    pid: Option<u32>,
    reader: FrameReader<Stream>,
    writer: FrameWriter<Stream>,
}

impl Core {
    /// Serves one accepted connection, which holds an authentication slot, until it closes or
    /// the server stops.
    pub(super) fn serve_connection(self: Arc<Self>, mut stream: Stream) {
        let _depth = ThreadLimit::set(self.config.max_decode_depth);
        let peer = stream.peer();
        let greeted = self.authenticate(&mut stream, &peer);
        self.authenticated();
        let Some(Greeted { client, pid, reader, writer }) = greeted else { return };
        let _ = stream.set_read_timeout(None);
        let _ = stream.set_write_timeout(None);
        let Ok(watched) = stream.try_clone().map(Arc::new) else { return };
        let Some(connection) = self.open(watched.clone()) else { return };
        self.connections.opened(connection, client, pid, &peer);
        self.table().connect(client);
        let caller = Caller { client, connection };
        let serving = Rc::new(Serving { core: Arc::downgrade(&self), connection: watched, cancelled: None });
        let mut session = Session::new(caller, serving);
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| self.clone().requests(reader, writer, &peer, &mut session))) {
            let message = panic_message(&*p);
            tracing::warn!(manager = %self.address, %peer, message, "closed a connection: the manager panicked serving it");
        }
        crate::transport::gate::pause();
        self.end(session);
    }

    /// The handshake and the hello, both by the handshake deadline. Returns the client's id and
    /// the connection's frames, or `None` (logged) for a peer that is refused.
    fn authenticate(&self, stream: &mut Stream, peer: &str) -> Option<Greeted> {
        if let Some(idle) = self.config.keepalive {
            let _ = stream.set_keepalive(idle);
        }
        let deadline = Instant::now() + self.config.handshake_timeout;
        let allow_plain = !stream.is_tcp() || self.config.allow_unsealed_tcp;
        let refused = |reason: &str| {
            tracing::warn!(manager = %self.address, %peer, reason, "refused a connection: authentication failed");
        };
        let keys = match auth::server_handshake(&mut Until::new(stream, deadline), &self.authkey, peer, allow_plain) {
            Ok(keys) => keys,
            Err(e) => {
                refused(if let Error::Authentication { reason, .. } = &e { reason } else { "handshake failed" });
                return None;
            }
        };
        let (open, seal) = keys.map(|k| k.server()).unzip();
        let mut reader =
            FrameReader::new(stream.try_clone().ok()?, open, MAX_HELLO).with_frame_timeout(self.config.frame_timeout);
        let writer = FrameWriter::new(stream.try_clone().ok()?, seal);
        match reader.read(Some(deadline)) {
            Ok(true) => {}
            Ok(false) | Err(ReadError::Io(_)) => return None, // gone before its hello
            Err(ReadError::Deadline) => {
                refused("the handshake deadline passed");
                return None;
            }
            Err(e) => {
                refused(&e.to_string());
                return None;
            }
        }
        match message::hello(reader.body()) {
            Some(hello) => {
                reader.set_limit(self.config.max_frame_size);
                Some(Greeted { client: hello.client, pid: hello.pid, reader, writer })
            }
            None => {
                tracing::warn!(manager = %self.address, %peer, "closed a connection: it did not start with a hello");
                None
            }
        }
    }

    /// Answers requests until the client closes the connection, breaks the protocol, or asks
    /// the server to shut down.
    fn requests(
        self: Arc<Self>,
        mut reader: FrameReader<Stream>,
        mut writer: FrameWriter<Stream>,
        peer: &str,
        session: &mut Session,
    ) {
        let mut freed = Vec::new();
        let limit = wire::encode(&(self.config.max_frame_size as u64), "the frame limit").unwrap_or_default();
        let _ = send_reply(&mut writer, Ok(limit.into()));
        loop {
            crate::transport::gate::served();
            match reader.read(None) {
                Ok(true) => {}
                Ok(false) => {
                    if self.is_stopping() {
                        self.goodbye(&mut writer, session);
                    }
                    break;
                }
                Err(e) => {
                    self.unreadable(e, &mut writer, peer);
                    break;
                }
            }
            if let Some(channel) = reader.get_ref().channel() {
                // Answered hot, in turn with the process's other connections (see `gate.rs`).
                crate::transport::gate::serve(channel);
            }
            let req = match wire::take::<Request<'_>>(reader.body()) {
                Ok((r, [])) => r,
                Ok((_, rest)) => {
                    let reason = format!("{} unexpected bytes after the request", rest.len());
                    self.refuse(&mut writer, peer, reason);
                    break;
                }
                Err(e) => {
                    self.refuse(&mut writer, peer, format!("undecodable request: {e}"));
                    break;
                }
            };
            if matches!(req, Request::Multiplex) {
                if send_reply(&mut writer, Ok(Payload::default())).is_ok() {
                    self.multiplexed(reader, writer, peer, session);
                }
                return;
            }
            if matches!(req, Request::Channel) && !reader.get_ref().is_shared_memory() {
                match self.open_channel(&mut reader, &mut writer, session, peer) {
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::debug!(manager = %self.address, %peer, error = %e, "closed a connection: its channel failed");
                        break;
                    }
                }
            }
            let shutdown = matches!(req, Request::Shutdown);
            let reply = match self.handle_guarded(req, session, &mut freed, peer) {
                // A call cut short by the server stopping (its caller looked gone) says so.
                Some(Err(e)) if e.is_connection_lost() && self.is_stopping() => Some(Err(self.shut_down())),
                reply => reply,
            };
            release(&self.address, freed.drain(..)); // outside the table's lock
            if let Some(reply) = reply
                && send_reply(&mut writer, reply).is_err()
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

    /// Answers a client's request for a shared-memory channel: when this manager offers them
    /// (see [`Transport`](crate::Transport)) and the connection is a plain Unix socket with no
    /// frame read ahead, the reply carries the channel's memfd and both sides move to it;
    /// otherwise the reply says no and the frames stay on the socket. Fails only when a reply
    /// could not be sent.
    fn open_channel(
        &self,
        reader: &mut FrameReader<Stream>,
        writer: &mut FrameWriter<Stream>,
        session: &Session,
        peer: &str,
    ) -> io::Result<()> {
        let socket = &session.serving.connection;
        let offer = if self.config.shared_memory && crate::transport::shared_memory_enabled() && reader.buffered() == 0
        {
            socket.offer_channel().unwrap_or_else(|e| {
                tracing::debug!(manager = %self.address, %peer, error = %e, "no shared-memory channel: the frames stay on the socket");
                None
            })
        } else {
            None
        };
        let Some((channel, fd, ring)) = offer else {
            let no = wire::encode(&None::<u64>, "a channel offer").map_err(|e| io::Error::other(e.to_string()))?;
            return send_reply(writer, Ok(no.into()));
        };
        let mut frame = Vec::new();
        let offer = wire::encode(&Some(ring), "a channel offer").map_err(|e| io::Error::other(e.to_string()))?;
        wire::frame(&Reply::<Error>::Ok(wire::Bytes(&offer)), &mut frame)
            .map_err(|e| io::Error::other(e.to_string()))?;
        socket.send_with_fd(&frame, std::os::fd::AsFd::as_fd(&fd))?;
        let limit = self.config.max_frame_size;
        *reader = FrameReader::new(channel.try_clone()?, None, limit).with_frame_timeout(self.config.frame_timeout);
        *writer = FrameWriter::new(channel, None);
        Ok(())
    }

    /// Tells the client that the server shut down ([`Error::Shutdown`], the reply to its call in
    /// progress or to its next one), then closes both halves of the connection: stopping
    /// closed only the reading half, to wake this thread.
    fn goodbye(&self, writer: &mut FrameWriter<Stream>, session: &Session) {
        let stream = &session.serving.connection;
        let _ = stream.set_write_timeout(Some(GOODBYE_TIMEOUT));
        let _ = send_reply(writer, Err(self.shut_down()));
        stream.shutdown();
    }

    /// [`handle`](Self::handle) inside the panic boundary: a panic anywhere in serving the
    /// request (beyond the referent's own code, which `guarded` already covers: the last
    /// reference of an object dropped there, say) becomes an error reply, and the connection
    /// goes on.
    pub(super) fn handle_guarded(
        &self,
        req: Request<'_>,
        session: &mut Session,
        freed: &mut Vec<Object>,
        peer: &str,
    ) -> Option<Result<Payload>> {
        // A decref gets no reply, even when it fails.
        let one_way = matches!(req, Request::DecRef { .. });
        // What the request was, named only if it panics (borrowed from the frame meanwhile).
        let (method, typeid) = match &req {
            Request::Call { method, .. } => (Some(*method), None),
            Request::Create { typeid, .. } => (None, Some(*typeid)),
            _ => (None, None),
        };
        match catch_unwind(AssertUnwindSafe(|| self.handle(req, session, freed))) {
            Ok(reply) => reply,
            Err(p) => {
                let what = match (method, typeid) {
                    (Some(m), _) => m.to_string(),
                    (None, Some(t)) => format!("<create {t}>"),
                    (None, None) => "<request>".into(),
                };
                let message = panic_message(&*p);
                tracing::warn!(manager = %self.address, %peer, message, "a request panicked in the manager; the connection goes on");
                let e = Error::Remote { typeid: "<manager>".into(), method: what, message };
                (!one_way).then_some(Err(e))
            }
        }
    }

    /// Logs why no frame could be read, and tells the peer where that helps it.
    fn unreadable(&self, e: ReadError, writer: &mut FrameWriter<Stream>, peer: &str) {
        if let Some(e) = self.why_unreadable(e, peer) {
            let _ = send_reply(writer, Err(e));
        }
    }

    /// Logs why no frame could be read; returns what to tell the peer, where that helps it.
    pub(super) fn why_unreadable(&self, e: ReadError, peer: &str) -> Option<Error> {
        match e {
            ReadError::TooLarge(big) => {
                tracing::warn!(
                    manager = %self.address,
                    %peer,
                    size = big.size,
                    limit = big.limit,
                    "closed a connection: frame too large"
                );
                Some(Error::FrameTooLarge { size: big.size, limit: big.limit })
            }
            ReadError::NotOpened(n) => {
                tracing::warn!(manager = %self.address, %peer, "closed a connection: a sealed frame did not open");
                Some(self.protocol(n))
            }
            ReadError::Deadline => {
                tracing::warn!(
                    manager = %self.address,
                    %peer,
                    timeout = ?self.config.frame_timeout,
                    "closed a connection: a frame did not arrive whole in time"
                );
                None
            }
            // The peer closed the connection, inside a frame or not.
            ReadError::Io(_) => None,
        }
    }

    /// Logs a protocol error and sends it to the peer before the connection closes.
    fn refuse(&self, writer: &mut FrameWriter<Stream>, peer: &str, reason: String) {
        let _ = send_reply(writer, Err(self.refusal(peer, reason)));
    }

    /// Logs a protocol error; returns it, for the peer.
    pub(super) fn refusal(&self, peer: &str, reason: String) -> Error {
        tracing::warn!(manager = %self.address, %peer, reason, "closed a connection: protocol error");
        self.protocol(reason)
    }

    /// The connection closed: the objects it called are told, and when it was its client's
    /// last, what the client held is released.
    fn end(&self, session: Session) {
        let caller = session.caller;
        self.close(caller.connection);
        self.connections.closed(caller.connection);
        let callers: Vec<Caller> = std::iter::once(caller).chain(session.owners.iter().copied()).collect();
        let (notify, freed): (Vec<Object>, Vec<Object>) = {
            let mut table = self.table();
            let notify = session.touched.iter().filter_map(|id| table.get(*id).map(|(o, _)| o)).collect();
            (notify, table.disconnect(caller.client))
        };
        for o in &notify {
            for &caller in &callers {
                let _ = catch_unwind(AssertUnwindSafe(|| o.connection_closed(caller)));
            }
        }
        // Another connection may have freed one of them meanwhile: this may be the last reference.
        release(&self.address, notify.into_iter().chain(freed));
    }
}

/// Sends the reply to request `id` of a multiplexed connection: the id, then the reply.
pub(super) fn send_tagged_reply(w: &mut FrameWriter<Stream>, id: u64, r: Result<Payload>) -> io::Result<()> {
    let framed = match &r {
        Ok(p) => match w.encode_with_tail(&(id, message::ok_head(p.len())), p.len()) {
            Ok(_) => return w.send_with_tails(&p.head, &p.tail),
            Err(e) => Err(e),
        },
        Err(e) => w.encode(&(id, Reply::Err(e))),
    };
    if let Err(e) = framed {
        w.encode(&(id, Reply::Err(&e))).map_err(|e| io::Error::other(e.to_string()))?;
    }
    w.send()
}

/// Sends a reply; a payload is sent from where its parts lie (see
/// [`FrameWriter::send_with_tails`]).
fn send_reply(w: &mut FrameWriter<Stream>, r: Result<Payload>) -> io::Result<()> {
    let framed = match &r {
        Ok(p) => match w.encode_with_tail(&message::ok_head(p.len()), p.len()) {
            Ok(_) => return w.send_with_tails(&p.head, &p.tail),
            Err(e) => Err(e),
        },
        Err(e) => w.encode(&Reply::Err(e)),
    };
    if let Err(e) = framed {
        w.encode(&Reply::Err(&e)).map_err(|e| io::Error::other(e.to_string()))?;
    }
    w.send()
}
