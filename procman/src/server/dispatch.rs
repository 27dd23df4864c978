//! One request, from its message to the object table or the referent, and back to its reply.

use super::connection::Session;
use super::listen::Core;
use super::object::{CallCx, Object, Payload, guarded};
use super::scope::CallScope;
use crate::error::{Error, Result};
use crate::shared::Caller;
use crate::unpoison;
use crate::wire::message::{Expect, NewObject, Request};
use crate::wire::{self, Bytes};

impl Core {
    /// Serves one request of `session`. Returns the reply's payload, or `None` for a request
    /// that gets no reply (a decref). Objects that the request frees go to `freed`, for the
    /// caller to drop outside the table's lock.
    pub(super) fn handle(
        &self,
        req: Request<'_>,
        session: &mut Session,
        freed: &mut Vec<Object>,
    ) -> Option<Result<Payload>> {
        let client = session.caller.client;
        let reply = match req {
            Request::Call { id, method, args: Bytes(args) } => {
                return Some(self.call(id, method, args, session, freed));
            }
            Request::Hello { .. } => Err(self.protocol("a second hello")),
            Request::Create { typeid, args: Bytes(args), expect } => self.create(typeid, args, expect, session),
            Request::Repr { id } => self
                .object(id)
                .and_then(|(o, typeid)| guarded(&typeid, "repr", || Ok(o.repr())))
                .and_then(|s| wire::encode(&s, "a repr")),
            Request::GetValue { id } => {
                self.object(id).and_then(|(o, typeid)| guarded(&typeid, "get_value", || o.encode_value()))
            }
            Request::IncRef { id } => self.answer(self.table().incref(id, client), id),
            Request::DecRef { id } => {
                let released = self.table().decref(id, client);
                match released {
                    Ok(object) => freed.extend(object),
                    Err(_) => tracing::debug!(
                        manager = %self.address,
                        id,
                        "ignored a decref for a reference the client does not hold"
                    ),
                }
                return None;
            }
            Request::Transit { id } => match self.table().transit(id) {
                Some(ticket) => wire::encode(&ticket, "a ticket"),
                None => Err(self.unknown_object(id)),
            },
            Request::Claim { id, ticket } => self.answer(self.table().claim(id, ticket, client), id),
            Request::Pin { ticket } => {
                self.table().pin(ticket);
                Ok(Vec::new())
            }
            Request::Unpin { ticket, to_transit } => {
                freed.extend(self.table().unpin(ticket, to_transit));
                Ok(Vec::new())
            }
            Request::DebugInfo => wire::encode(&self.table().debug_info(), "debug info"),
            Request::Shutdown | Request::Ping => Ok(Vec::new()),
            Request::Describe { typeid, id } => self.describe(typeid, id),
            Request::Inspect => wire::encode(&self.snapshot(), "a snapshot"),
            // Asked again on a connection that has its channel (the connection loop answers the
            // first request itself): the frames stay where they are.
            Request::Channel => wire::encode(&None::<u64>, "a channel offer"),
            // The connection loop answers the first; on a multiplexed connection it is refused
            // before it gets here.
            Request::Multiplex => Err(self.protocol("a connection already multiplexed")),
        };
        Some(reply.map(Payload::from))
    }

    /// The empty reply of a request on object `id`, or `UnknownObject` when it had none.
    fn answer(&self, found: bool, id: u64) -> Result<Vec<u8>> {
        if found { Ok(Vec::new()) } else { Err(self.unknown_object(id)) }
    }

    pub(super) fn object(&self, id: u64) -> Result<(Object, std::sync::Arc<str>)> {
        self.table().get(id).ok_or_else(|| self.unknown_object(id))
    }

    /// The generic answer to a type mismatch; the client asks for the description and names the
    /// difference.
    fn type_mismatch(&self, typeid: &str, type_name: &str) -> Error {
        Error::TypeMismatch {
            typeid: typeid.into(),
            what: "type".into(),
            manager: format!("`{type_name}`"),
            client: "another type".into(),
        }
    }

    fn describe(&self, typeid: &str, id: Option<u64>) -> Result<Vec<u8>> {
        let desc = match id {
            Some(id) => self.object(id)?.0.describe(),
            None => {
                let entry = self
                    .creators
                    .get(typeid)
                    .ok_or_else(|| Error::UnknownTypeid { typeid: typeid.into(), address: self.address.to_string() })?;
                (entry.describe)()
            }
        };
        let signature = id.is_none().then(|| self.creators.get(typeid).map(|e| (e.signature)())).flatten();
        wire::encode(&(&*desc, signature), "a type description")
    }

    fn create(&self, typeid: &str, args: &[u8], expect: Option<Expect>, session: &Session) -> Result<Vec<u8>> {
        let client = session.caller.client;
        let entry = *self
            .creators
            .get(typeid)
            .ok_or_else(|| Error::UnknownTypeid { typeid: typeid.into(), address: self.address.to_string() })?;
        // The client's proxy type against the creator's: checked before anything is created. A
        // generic creator's object takes the client's type parameters.
        let desc = (entry.describe)();
        let adopted = desc.has_unknown_params().then(|| desc.adopt(expect.as_ref().map_or(&[][..], |e| &e.params)));
        let fingerprint = adopted.as_ref().unwrap_or(&desc).fingerprint();
        if let Some(expect) = &expect
            && (expect.signature.is_some_and(|s| s != (entry.signature)().fingerprint)
                || fingerprint != expect.fingerprint)
        {
            return Err(self.type_mismatch(typeid, &desc.type_name));
        }
        let params = adopted.map(|a| a.params);
        let token = |id| wire::encode(&NewObject { id, typeid: typeid.into(), fingerprint }, "a new object's token");
        // Singletons are created one at a time, so that racing first callers share one object.
        let _creating = entry.singleton.then(|| unpoison::lock(&self.singleton_creation));
        if entry.singleton
            && let Some(id) = self.table().singleton(entry.typeid, client)
        {
            return token(id);
        }
        let object = {
            let _scope = CallScope::enter(&session.serving, session.caller);
            guarded(typeid, "<create>", || (entry.create)(args))?
        };
        if let Some(params) = params {
            object.record_params(params);
        }
        let mut table = self.table();
        let id = table.insert(entry.typeid.into(), object, client, entry.singleton);
        if entry.singleton {
            table.set_singleton(entry.typeid, id);
        }
        drop(table);
        token(id)
    }

    fn call(
        &self,
        id: u64,
        method: &str,
        args: &[u8],
        session: &mut Session,
        freed: &mut Vec<Object>,
    ) -> Result<Payload> {
        let (object, typeid) = self.object(id)?;
        session.record_call(id, self);
        let caller: Caller = session.caller;
        let mut cx = CallCx { core: Some(self), caller, tail: None };
        let r = {
            let _scope = CallScope::enter(&session.serving, caller);
            guarded(&typeid, method, || object.call(method, args, &mut cx))
        };
        // If a concurrent decref left this call the last holder, the object is released like
        // any freed one: iteratively, inside the panic boundary, outside the table's lock.
        freed.push(object);
        match r {
            Ok(head) => Ok(Payload { head, tail: cx.tail.unwrap_or_default() }),
            Err(Error::NotExposed { method, .. }) => Err(Error::NotExposed { typeid: typeid.to_string(), method }),
            Err(e) => Err(e),
        }
    }
}
