//! The object table: objects by id, their reference counts, the references each client
//! process holds, and the tickets of proxies in transit.
//!
//! An object's count is the sum of what its holders hold: each client's references, one per
//! ticket of a proxy in transit, and one for a singleton (held by the server itself). A client's
//! references go when its last connection closes, so a client that dies leaks nothing. The table
//! only counts: it hands back the objects it frees, for the caller to drop outside the lock (a
//! referent's `Drop` may call this very server).

use super::object::Object;
use crate::wire::message::ObjectInfo;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::Arc;

struct Entry {
    typeid: Arc<str>,
    object: Object,
    refs: usize,
}

/// What one client process holds.
#[derive(Default)]
struct Client {
    connections: usize,
    refs: FxHashMap<u64, usize>,
}

/// A proxy in transit: the object its ticket holds a reference to, and whether a container of
/// this server stores it (then a claim takes a new reference and leaves the ticket in place).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ticket {
    id: u64,
    pinned: bool,
}

pub(super) struct Table {
    objects: FxHashMap<u64, Entry>,
    clients: HashMap<u128, Client>,
    transit: FxHashMap<u64, Ticket>,
    singletons: HashMap<&'static str, u64>,
    next_id: u64,
    next_ticket: u64,
}

impl Table {
    pub(super) fn new() -> Table {
        Table {
            objects: FxHashMap::default(),
            clients: HashMap::new(),
            transit: FxHashMap::default(),
            singletons: HashMap::new(),
            next_id: 1,
            next_ticket: 1,
        }
    }

    /// Counts one more reference of `client` to `id` on the client's side; the object's own
    /// count is its caller's business.
    fn add_ref(&mut self, client: u128, id: u64) {
        *self.clients.entry(client).or_default().refs.entry(id).or_default() += 1;
    }

    /// Puts `object` in the table with one reference held by `client` (and one more held by
    /// the server when `pinned`: a singleton); returns its id.
    pub(super) fn insert(&mut self, typeid: Arc<str>, object: Object, client: u128, pinned: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.objects.insert(id, Entry { typeid, object, refs: 1 + usize::from(pinned) });
        self.add_ref(client, id);
        id
    }

    pub(super) fn get(&self, id: u64) -> Option<(Object, Arc<str>)> {
        self.objects.get(&id).map(|e| (e.object.clone(), e.typeid.clone()))
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.objects.contains_key(&id)
    }

    /// One more reference of `client` to `id`; false when there is no such object.
    pub(super) fn incref(&mut self, id: u64, client: u128) -> bool {
        let Some(e) = self.objects.get_mut(&id) else { return false };
        e.refs += 1;
        self.add_ref(client, id);
        true
    }

    /// One reference less of `client` to `id`; `None` when the client holds none (a decref
    /// is never trusted beyond what the client holds). Returns the object if that freed it.
    pub(super) fn decref(&mut self, id: u64, client: u128) -> Result<Option<Object>, NotHeld> {
        let c = self.clients.get_mut(&client).ok_or(NotHeld)?;
        let n = c.refs.get_mut(&id).filter(|n| **n > 0).ok_or(NotHeld)?;
        *n -= 1;
        if *n == 0 {
            c.refs.remove(&id);
        }
        Ok(self.release(id, 1))
    }

    /// Takes `n` references off object `id`; returns the object when that was the last.
    fn release(&mut self, id: u64, n: usize) -> Option<Object> {
        let e = self.objects.get_mut(&id)?;
        e.refs = e.refs.saturating_sub(n);
        if e.refs == 0 {
            return self.objects.remove(&id).map(|e| e.object);
        }
        None
    }

    /// The singleton of `typeid` if it exists, with one more reference for `client`.
    pub(super) fn singleton(&mut self, typeid: &'static str, client: u128) -> Option<u64> {
        let id = *self.singletons.get(typeid)?;
        self.incref(id, client).then_some(id)
    }

    pub(super) fn set_singleton(&mut self, typeid: &'static str, id: u64) {
        self.singletons.insert(typeid, id);
    }

    /// A reference for a proxy in transit; returns its ticket, or `None` when there is no such
    /// object.
    pub(super) fn transit(&mut self, id: u64) -> Option<u64> {
        self.objects.get_mut(&id)?.refs += 1;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.transit.insert(ticket, Ticket { id, pinned: false });
        Some(ticket)
    }

    /// `client` received the proxy of `ticket`: it adopts the ticket's reference, or takes a
    /// new one when the ticket is pinned or already used. False when there is no such object.
    pub(super) fn claim(&mut self, id: u64, ticket: u64, client: u128) -> bool {
        if self.transit.get(&ticket) == Some(&Ticket { id, pinned: false }) {
            self.transit.remove(&ticket);
            self.add_ref(client, id);
            true
        } else {
            self.incref(id, client)
        }
    }

    /// A container of this server stores the proxy of `ticket`.
    pub(super) fn pin(&mut self, ticket: u64) {
        if let Some(t) = self.transit.get_mut(&ticket) {
            t.pinned = true;
        }
    }

    /// The stored proxy of `ticket` was handed to one client (`to_transit`: the next claim
    /// adopts it) or dropped (its reference is released; returns the object if that freed it).
    pub(super) fn unpin(&mut self, ticket: u64, to_transit: bool) -> Option<Object> {
        if to_transit {
            if let Some(t) = self.transit.get_mut(&ticket) {
                t.pinned = false;
            }
            return None;
        }
        let t = self.transit.remove(&ticket)?;
        self.release(t.id, 1)
    }

    /// A connection of `client` opened.
    pub(super) fn connect(&mut self, client: u128) {
        self.clients.entry(client).or_default().connections += 1;
    }

    /// A connection of `client` closed. When it was the client's last, everything the client
    /// held is released; returns the objects that freed.
    pub(super) fn disconnect(&mut self, client: u128) -> Vec<Object> {
        let Some(c) = self.clients.get_mut(&client) else { return Vec::new() };
        c.connections = c.connections.saturating_sub(1);
        if c.connections > 0 {
            return Vec::new();
        }
        let refs = self.clients.remove(&client).map(|c| c.refs).unwrap_or_default();
        refs.into_iter().filter_map(|(id, n)| self.release(id, n)).collect()
    }

    /// Takes every object out of the table (the server ends), for the caller to release.
    pub(super) fn drain(&mut self) -> Vec<Object> {
        self.clients.clear();
        self.transit.clear();
        self.singletons.clear();
        self.objects.drain().map(|(_, e)| e.object).collect()
    }

    /// Live objects and their counts, by id.
    pub(super) fn debug_info(&self) -> Vec<ObjectInfo> {
        let mut v: Vec<ObjectInfo> = self
            .objects
            .iter()
            .map(|(&id, e)| ObjectInfo { id, typeid: e.typeid.to_string(), refcount: e.refs })
            .collect();
        v.sort_by_key(|o| o.id);
        v
    }
}

/// One object as a snapshot sees it: id, typeid, count, referent.
pub(super) type ObjectRow = (u64, Arc<str>, usize, Object);

/// What one client holds, as a snapshot sees it: its id and its references by object id.
pub(super) type ClientRow = (u128, Vec<(u64, usize)>);

impl Table {
    /// Every object with its count, and what each client holds: for a snapshot, which reads
    /// the referents' states after the table's lock is released.
    pub(super) fn rows(&self) -> (Vec<ObjectRow>, Vec<ClientRow>) {
        let objects = self.objects.iter().map(|(&id, e)| (id, e.typeid.clone(), e.refs, e.object.clone())).collect();
        let clients =
            self.clients.iter().map(|(&id, c)| (id, c.refs.iter().map(|(&o, &n)| (o, n)).collect())).collect();
        (objects, clients)
    }
}

/// A decref for a reference the client does not hold.
#[derive(Debug)]
pub(super) struct NotHeld;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{CallCx, ServerObject};
    use crate::shared::Caller;

    const A: u128 = 1;
    const B: u128 = 2;

    struct Thing;

    impl ServerObject for Thing {
        fn call(&self, _: &str, _: &[u8], _: &mut CallCx<'_>) -> crate::Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn repr(&self) -> String {
            "Thing".into()
        }
        fn encode_value(&self) -> crate::Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn connection_closed(&self, _: Caller) {}
        fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
            self
        }
    }

    fn object() -> Object {
        Arc::new(Thing)
    }

    fn counts(t: &Table) -> Vec<usize> {
        t.debug_info().iter().map(|o| o.refcount).collect()
    }

    /// A table with one object of client `A` and a ticket for it in transit.
    fn one_in_transit() -> (Table, u64, u64) {
        let mut t = Table::new();
        t.connect(A);
        let id = t.insert("lock".into(), object(), A, false);
        let ticket = t.transit(id).unwrap();
        (t, id, ticket)
    }

    #[test]
    fn references_are_counted_per_client_and_a_decref_beyond_them_is_refused() {
        let mut t = Table::new();
        t.connect(A);
        let id = t.insert("lock".into(), object(), A, false);
        assert!(t.incref(id, A));
        assert!(!t.incref(99, A), "no such object");
        assert_eq!(counts(&t), [2]);
        assert!(t.decref(id, B).is_err(), "B holds nothing");
        assert!(t.decref(id, A).unwrap().is_none());
        assert!(t.decref(id, A).unwrap().is_some(), "the last reference frees the object");
        assert!(t.decref(id, A).is_err());
        assert!(!t.contains(id));
    }

    #[test]
    fn a_clients_last_connection_releases_what_it_held() {
        let mut t = Table::new();
        t.connect(A);
        t.connect(A);
        t.connect(B);
        let shared = t.insert("lock".into(), object(), A, false);
        let own = t.insert("lock".into(), object(), A, false);
        assert!(t.incref(shared, B));
        assert!(t.disconnect(A).is_empty(), "A still has a connection");
        let freed = t.disconnect(A);
        assert_eq!(freed.len(), 1, "only A's own object is freed");
        assert!(!t.contains(own) && t.contains(shared));
        assert_eq!(t.disconnect(B).len(), 1);
        assert!(t.debug_info().is_empty());
    }

    #[test]
    fn a_proxy_in_transit_keeps_its_object_until_claimed_once() {
        let (mut t, id, ticket) = one_in_transit();
        assert!(t.decref(id, A).unwrap().is_none(), "the ticket holds the object");
        assert!(t.claim(id, ticket, B), "B adopts the ticket's reference");
        assert_eq!(counts(&t), [1]);
        assert!(t.claim(id, ticket, B), "a used ticket takes a new reference");
        assert_eq!(counts(&t), [2]);
        assert_eq!(t.transit(99), None);
    }

    #[test]
    fn a_pinned_ticket_gives_new_references_until_unpinned() {
        let (mut t, id, ticket) = one_in_transit();
        t.pin(ticket);
        assert!(t.claim(id, ticket, B));
        assert!(t.claim(id, ticket, B));
        assert_eq!(counts(&t), [4], "A, the ticket, and B twice");
        assert!(t.unpin(ticket, false).is_none());
        assert_eq!(counts(&t), [3]);
        assert!(t.unpin(ticket, false).is_none(), "an ended pin ends once");
        assert_eq!(counts(&t), [3]);
    }

    #[test]
    fn a_singleton_is_held_by_the_server_and_shared() {
        let mut t = Table::new();
        let id = t.insert("jobs".into(), object(), A, true);
        t.set_singleton("jobs", id);
        assert_eq!(t.singleton("jobs", B), Some(id));
        assert_eq!(t.singleton("other", B), None);
        assert_eq!(counts(&t), [3]);
        t.connect(A);
        t.connect(B);
        t.disconnect(A);
        t.disconnect(B);
        assert_eq!(counts(&t), [1], "the server's own reference stays");
    }
}
