//! What the server knows of its clients' connections (for snapshots, and for a stopping server
//! to wait until each has said goodbye), and the [`Snapshot`] of the whole server that answers
//! the `Inspect` request.
//!
//! The snapshot reads the object table under its lock, then each referent's state after the
//! lock is released: a state is read under the object's own locks, which a call in progress
//! may hold for a moment, and no call may wait for the table meanwhile.

use super::listen::Core;
use crate::inspect::{ClientId, ClientSnapshot, ConnectionSnapshot, ObjectSnapshot, Reference, Snapshot};
use crate::unpoison;
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The authenticated connections of a server, by number.
pub(super) struct Connections {
    started: Instant,
    open: Mutex<HashMap<u64, Connection>>,
    /// Notified when a connection closes.
    closed: Condvar,
}

struct Connection {
    client: u128,
    pid: Option<u32>,
    peer: String,
    since: Instant,
}

impl Connections {
    pub(super) fn new() -> Connections {
        Connections { started: Instant::now(), open: Mutex::new(HashMap::new()), closed: Condvar::new() }
    }

    /// Connection `number` of `client` (whose hello said `pid`) authenticated.
    pub(super) fn opened(&self, number: u64, client: u128, pid: Option<u32>, peer: &str) {
        let connection = Connection { client, pid, peer: peer.to_string(), since: Instant::now() };
        unpoison::lock(&self.open).insert(number, connection);
    }

    pub(super) fn closed(&self, number: u64) {
        unpoison::lock(&self.open).remove(&number);
        self.closed.notify_all();
    }

    /// Waits until every connection has closed, for at most `grace`: a stopping server lets
    /// each connection's thread tell its client why before the process may exit.
    pub(super) fn wait_all_closed(&self, grace: Duration) {
        let open = unpoison::lock(&self.open);
        let _ = self.closed.wait_timeout_while(open, grace, |open| !open.is_empty());
    }
}

/// The snapshot of client `id`, made empty if it is not there yet.
fn client(clients: &mut BTreeMap<u128, ClientSnapshot>, id: u128) -> &mut ClientSnapshot {
    clients.entry(id).or_insert_with(|| ClientSnapshot {
        id: ClientId(id),
        pid: None,
        connections: Vec::new(),
        objects: Vec::new(),
    })
}

impl Core {
    /// Everything the server holds and who uses it, now.
    pub(super) fn snapshot(&self) -> Snapshot {
        let (rows, held) = self.table().rows();
        let mut clients: BTreeMap<u128, ClientSnapshot> = BTreeMap::new();
        for (&number, c) in unpoison::lock(&self.connections.open).iter() {
            let entry = client(&mut clients, c.client);
            entry.pid = entry.pid.or(c.pid);
            entry.connections.push(ConnectionSnapshot {
                number,
                peer: c.peer.clone(),
                connected_for: c.since.elapsed(),
            });
        }
        let mut holders: HashMap<u64, Vec<Reference>> = HashMap::new();
        for (id, refs) in held {
            let entry = client(&mut clients, id);
            for (object, n) in refs {
                entry.objects.push(object);
                holders.entry(object).or_default().push(Reference { client: ClientId(id), refs: n });
            }
        }
        for c in clients.values_mut() {
            c.connections.sort_by_key(|c| c.number);
            c.objects.sort_unstable();
        }
        let pid_of = |id: ClientId| clients.get(&id.0).and_then(|c| c.pid);
        let mut objects: Vec<ObjectSnapshot> = rows
            .into_iter()
            .map(|(id, typeid, refcount, object)| {
                // A state that cannot be read (a panic in a referent's lock) is left out.
                let mut state = catch_unwind(AssertUnwindSafe(|| object.state())).ok().flatten();
                if let Some(state) = &mut state {
                    state.fill_pids(&pid_of);
                }
                let mut holders = holders.remove(&id).unwrap_or_default();
                holders.sort_by_key(|r| r.client);
                let type_name = catch_unwind(AssertUnwindSafe(|| object.describe().display_name())).unwrap_or_default();
                ObjectSnapshot { id, typeid: typeid.to_string(), refcount, holders, state, type_name }
            })
            .collect();
        objects.sort_by_key(|o| o.id);
        Snapshot {
            address: self.address.to_string(),
            pid: std::process::id(),
            uptime: self.connections.started.elapsed(),
            objects,
            clients: clients.into_values().collect(),
        }
    }
}
