//! A snapshot as tables: a summary line, then objects, clients and waiters.
//!
//! ```text
//! manager 127.0.0.1:41234  pid 5012  up 4m05s  2 objects  2 clients
//!
//! OBJECTS
//! ID  TYPEID  TYPE         REFS  HELD BY             STATE
//! 1   Queue   Queue<Job>   1     3f2a9c1e            2 items; 1 waiting in get
//! 2   Lock    Lock         2     3f2a9c1e, 9b0c11aa  held by 9b0c11aa/4 (pid 5170) for 2.3s
//! ...
//! ```

use procman::inspect::{ClientSnapshot, Elapsed, ObjectSnapshot, Snapshot};
use std::fmt::Write;

/// At most this many object ids are listed for one client.
const MOST_IDS: usize = 8;

/// The tables of `snapshot`; the client whose process id is `own_pid` (the inspecting
/// command itself) is marked.
pub(crate) fn render(snapshot: &Snapshot, own_pid: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "manager {}  pid {}  up {}  {}  {}",
        snapshot.address,
        snapshot.pid,
        Elapsed(snapshot.uptime),
        count(snapshot.objects.len(), "object"),
        count(snapshot.clients.len(), "client"),
    );
    let objects: Vec<Vec<String>> = snapshot.objects.iter().map(object_row).collect();
    section(&mut out, "OBJECTS", &["ID", "TYPEID", "TYPE", "REFS", "HELD BY", "STATE"], objects);
    let clients: Vec<Vec<String>> = snapshot.clients.iter().map(|c| client_row(c, own_pid)).collect();
    section(&mut out, "CLIENTS", &["CLIENT", "PID", "CONNECTIONS", "PEER", "OBJECTS"], clients);
    let waiting: Vec<Vec<String>> = snapshot.objects.iter().flat_map(waiting_rows).collect();
    if !waiting.is_empty() {
        section(&mut out, "WAITING", &["OBJECT", "METHOD", "CLIENT", "PID", "CONNECTION", "FOR"], waiting);
    }
    out.truncate(out.trim_end().len());
    out
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn object_row(o: &ObjectSnapshot) -> Vec<String> {
    let holders: Vec<String> = o
        .holders
        .iter()
        .map(|r| if r.refs == 1 { r.client.short() } else { format!("{}({})", r.client.short(), r.refs) })
        .collect();
    let state = o.state.as_ref().map_or_else(|| "-".to_string(), |s| s.to_string());
    let type_name = or_dash(o.type_name.clone());
    vec![o.id.to_string(), o.typeid.clone(), type_name, o.refcount.to_string(), or_dash(holders.join(", ")), state]
}

fn client_row(c: &ClientSnapshot, own_pid: u32) -> Vec<String> {
    let pid = match c.pid {
        Some(pid) if pid == own_pid => format!("{pid} (this inspect)"),
        Some(pid) => pid.to_string(),
        None => "-".into(),
    };
    // The hosts the connections come from; the ports are in the JSON.
    let mut peers: Vec<&str> = c.connections.iter().map(|c| host(&c.peer)).collect();
    peers.dedup();
    let mut ids: Vec<String> = c.objects.iter().take(MOST_IDS).map(u64::to_string).collect();
    if c.objects.len() > MOST_IDS {
        ids.push(format!("... ({} more)", c.objects.len() - MOST_IDS));
    }
    vec![c.id.short(), pid, c.connections.len().to_string(), or_dash(peers.join(", ")), or_dash(ids.join(", "))]
}

fn waiting_rows(o: &ObjectSnapshot) -> Vec<Vec<String>> {
    let Some(state) = &o.state else { return Vec::new() };
    state
        .waiting()
        .into_iter()
        .map(|(method, p)| {
            vec![
                format!("{} {}", o.id, o.typeid),
                method.to_string(),
                p.client.short(),
                p.pid.map_or_else(|| "-".into(), |pid| pid.to_string()),
                p.connection.to_string(),
                Elapsed(p.elapsed).to_string(),
            ]
        })
        .collect()
}

/// `127.0.0.1` for `127.0.0.1:53122`, `[::1]` for `[::1]:53122`; other peers as they are.
fn host(peer: &str) -> &str {
    match peer.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => peer,
    }
}

fn or_dash(s: String) -> String {
    if s.is_empty() { "-".into() } else { s }
}

/// A title, then the rows under their headers in columns; `none` when there are no rows.
fn section(out: &mut String, title: &str, headers: &[&str], rows: Vec<Vec<String>>) {
    let _ = writeln!(out, "\n{title}");
    if rows.is_empty() {
        let _ = writeln!(out, "none");
        return;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_show_their_host() {
        assert_eq!(host("127.0.0.1:53122"), "127.0.0.1");
        assert_eq!(host("[::1]:7000"), "[::1]");
        assert_eq!(host("local peer"), "local peer");
    }

    #[test]
    fn sections_line_up_and_say_none_when_empty() {
        let mut out = String::new();
        section(
            &mut out,
            "OBJECTS",
            &["ID", "TYPEID"],
            vec![vec!["1".into(), "Queue".into()], vec!["12".into(), "Lock".into()]],
        );
        section(&mut out, "CLIENTS", &["CLIENT"], Vec::new());
        assert_eq!(out, "\nOBJECTS\nID  TYPEID\n1   Queue\n12  Lock\n\nCLIENTS\nnone\n");
    }
}
