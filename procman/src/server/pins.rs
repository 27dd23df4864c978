//! Pins: proxies stored inside a container of this server (a Queue proxy in a Dict) hold their
//! objects for as long as the container holds them.
//!
//! A value that holds proxies arrives encoded, each proxy as a ticket of a proxy in transit
//! (see `table.rs`). The container pins the tickets: a pinned ticket is not used up by a claim,
//! so every client that reads the value gets a reference of its own, and the objects stay while
//! the value is stored. When the value leaves the container for one client (a queue's `get`) its
//! tickets become ordinary tickets in transit, adopted by that client; when it is dropped, their
//! references are released. Tickets of another manager are pinned there, over a connection.

use super::listen::Core;
use super::object::release;
use super::scope::current_core;
use crate::client;
use crate::proxy::TicketRef;
use crate::wire::message::Request;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};

/// Pins the tickets of a value that a container of this server received: its proxies stay
/// alive while the container holds the value. Returns the pins, released when dropped; `None`
/// outside a call in a server.
pub(crate) fn pin_tickets(tickets: Vec<TicketRef>) -> Option<Pins> {
    let core = current_core()?;
    for t in &tickets {
        if t.address == core.address {
            core.table().pin(t.ticket);
        } else {
            let _ = client::with_conn(&t.address, |c| c.request(&Request::Pin { ticket: t.ticket }));
        }
    }
    Some(Pins { core: std::sync::Arc::downgrade(&core), tickets, handed_over: AtomicBool::new(false) })
}

/// The pinned tickets of a value stored in this server (see [`pin_tickets`]).
#[derive(Debug)]
pub(crate) struct Pins {
    core: Weak<Core>,
    tickets: Vec<TicketRef>,
    handed_over: AtomicBool,
}

impl Pins {
    /// The value leaves the server for one client: its proxies become ordinary proxies in
    /// transit, adopted by that client.
    pub(crate) fn hand_over(&self) {
        if self.handed_over.swap(true, Ordering::AcqRel) {
            return;
        }
        self.unpin_all(true);
    }

    fn unpin_all(&self, to_transit: bool) {
        let core = self.core.upgrade();
        for t in &self.tickets {
            match &core {
                Some(core) if t.address == core.address => {
                    let freed = core.table().unpin(t.ticket, to_transit);
                    // Outside the table's lock, and after the object that held this value: a
                    // chain of containers each holding the last proxy of the next is released
                    // one link at a time (see `release`).
                    release(&core.address, freed);
                }
                _ => {
                    let req = Request::Unpin { ticket: t.ticket, to_transit };
                    let _ = client::with_conn(&t.address, |c| c.request(&req));
                }
            }
        }
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        if !*self.handed_over.get_mut() {
            self.unpin_all(false);
        }
    }
}
