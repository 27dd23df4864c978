//! Authentication keys, the mutual HMAC-SHA256 challenge-response, and the session keys it
//! derives.
//!
//! Before anything else crosses a connection, each side proves that it knows the key:
//!
//! 1. server -> client: `procman2` and a 32-byte random challenge `s` (or `procbusy`, and the
//!    connection closes: too many connections are authenticating, see `server/listen.rs`);
//! 2. client -> server: a 32-byte random challenge `c`, the session's mode `m` (1: sealed
//!    frames, 0: plain), and `HMAC(k, "client" | s | c | m)`;
//! 3. server -> client: `1` and `HMAC(k, "server" | c | s | m)`; or `0` (a wrong key) or `2`
//!    (a mode this server refuses), and the connection closes.
//!
//! `k` is not the authentication key itself but a key derived from it with HKDF-SHA256: HMAC
//! pads a short key with zeros and hashes a key longer than its block, so with the raw key
//! `KEY` and `KEY\0\0` would authenticate each other, and so would `K` and `SHA-256(K)`. Through
//! HKDF only the same key authenticates.
//!
//! In a sealed session the frames that follow are sealed (`wire/sealed.rs`) with two keys, one
//! per direction, derived with HKDF-SHA256 from the authentication key, salted with both
//! challenges: fresh for every connection, and known only to the two sides. The mode is part of
//! both MACs, so a relay cannot turn a sealed session into a plain one.
//!
//! Every message has a fixed size, so the server reads exactly 65 bytes from a peer that has not
//! proved anything. MACs are compared in constant time. The key itself never crosses the wire
//! and is never printed (`AuthKey`'s `Debug` is redacted).

use crate::address::Address;
use crate::error::{Error, Result};
use crate::unpoison;
use crate::wire::sealed::SessionKeys;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::sync::{OnceLock, RwLock};

type HmacSha256 = Hmac<Sha256>;

const MAGIC: &[u8; 8] = b"procman2";
/// What a server sends instead of its challenge when it cannot take a connection now.
pub(crate) const BUSY: &[u8; 8] = b"procbusy";
const NONCE: usize = 32;
const MAC: usize = 32;

/// Bytes a server reads from a peer before it is authenticated.
pub(crate) const UNAUTHENTICATED_READ: usize = NONCE + 1 + MAC;

/// Whether the frames after the handshake are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sealing {
    /// Plain frames: Unix sockets, where the kernel carries the bytes between the two processes.
    Plain,
    /// Sealed frames: every TCP connection.
    Sealed,
}

impl Sealing {
    fn byte(self) -> u8 {
        match self {
            Sealing::Plain => 0,
            Sealing::Sealed => 1,
        }
    }
}

/// An authentication key. Its `Debug` form never shows the bytes.
///
/// ```
/// let key = procman::AuthKey::new("secret");
/// assert_eq!(format!("{key:?}"), "AuthKey(<6 bytes, redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(Vec<u8>);

impl AuthKey {
    /// A key made of these bytes.
    pub fn new(bytes: impl AsRef<[u8]>) -> AuthKey {
        AuthKey(bytes.as_ref().to_vec())
    }

    /// 32 random bytes.
    pub fn random() -> AuthKey {
        let mut k = vec![0u8; 32];
        getrandom::fill(&mut k).expect("the OS random number generator failed");
        AuthKey(k)
    }

    /// True for a key with no bytes, which managers refuse unless allowed explicitly.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthKey(<{} bytes, redacted>)", self.0.len())
    }
}

impl<T: AsRef<[u8]>> From<T> for AuthKey {
    fn from(b: T) -> Self {
        AuthKey::new(b)
    }
}

static PROCESS_KEY: OnceLock<RwLock<AuthKey>> = OnceLock::new();
static KEYRING: OnceLock<RwLock<HashMap<Address, AuthKey>>> = OnceLock::new();
static UNSEALED: OnceLock<RwLock<HashSet<Address>>> = OnceLock::new();

fn process_key_cell() -> &'static RwLock<AuthKey> {
    PROCESS_KEY.get_or_init(|| RwLock::new(AuthKey::random()))
}

fn keyring() -> &'static RwLock<HashMap<Address, AuthKey>> {
    KEYRING.get_or_init(Default::default)
}

/// This process's authentication key (Python's `current_process().authkey`): random at first
/// use, inherited by the children procman starts. Managers use it when given no key.
///
/// ```
/// assert_eq!(procman::authkey(), procman::authkey());
/// ```
pub fn authkey() -> AuthKey {
    unpoison::read(process_key_cell()).clone()
}

/// Replaces this process's authentication key (see [`authkey`]).
pub fn set_authkey(key: impl Into<AuthKey>) {
    *unpoison::write(process_key_cell()) = key.into();
}

/// Remembers the key of a manager, so proxies that arrive from elsewhere can connect to it.
pub(crate) fn remember(address: &Address, key: &AuthKey) {
    unpoison::write(keyring()).insert(address.clone(), key.clone());
}

/// The key to use for `address`: the remembered one, or the process key.
pub(crate) fn key_for(address: &Address) -> AuthKey {
    unpoison::read(keyring()).get(address).cloned().unwrap_or_else(authkey)
}

/// Lets this process talk to the TCP manager at `address` in plain frames, for measurement only
/// (`ManagerBuilder::unsealed_tcp_for_measurement`, which the manager must have been given too).
pub(crate) fn allow_unsealed(address: &Address) {
    unpoison::write(UNSEALED.get_or_init(Default::default)).insert(address.clone());
}

/// How this process talks to the manager at `address`: sealed over TCP, plain over a Unix
/// socket.
pub(crate) fn sealing_for(address: &Address) -> Sealing {
    let unsealed = || UNSEALED.get().is_some_and(|s| unpoison::read(s).contains(address));
    if address.is_tcp() && !unsealed() { Sealing::Sealed } else { Sealing::Plain }
}

/// What a child inherits: the process key and the remembered keys.
pub(crate) fn export() -> (Vec<u8>, Vec<(Address, Vec<u8>)>) {
    let ring = unpoison::read(keyring());
    (authkey().0, ring.iter().map(|(a, k)| (a.clone(), k.0.clone())).collect())
}

pub(crate) fn import(process_key: Vec<u8>, ring: Vec<(Address, Vec<u8>)>) {
    set_authkey(process_key);
    for (a, k) in ring {
        remember(&a, &AuthKey(k));
    }
}

/// The key both MACs of the handshake use: derived from the authentication key, so that only
/// the same key authenticates (see the module's docs).
fn handshake_key(key: &AuthKey) -> [u8; 32] {
    let mut k = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"procman2 authkey"), key.bytes())
        .expand(b"handshake mac", &mut k)
        .expect("32 bytes is a valid HKDF-SHA256 output");
    k
}

fn mac(key: &[u8; 32], label: &[u8], a: &[u8], b: &[u8], mode: u8) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(label);
    m.update(a);
    m.update(b);
    m.update(&[mode]);
    m
}

/// The keys of a sealed session: from the authentication key and both challenges.
fn session_keys(key: &AuthKey, server_challenge: &[u8], client_challenge: &[u8]) -> SessionKeys {
    let salt = [server_challenge, client_challenge].concat();
    let hk = Hkdf::<Sha256>::new(Some(&salt), key.bytes());
    let mut keys = SessionKeys { client_to_server: [0; 32], server_to_client: [0; 32] };
    hk.expand(b"procman2 sealed frames client->server", &mut keys.client_to_server)
        .expect("32 bytes is a valid HKDF-SHA256 output");
    hk.expand(b"procman2 sealed frames server->client", &mut keys.server_to_client)
        .expect("32 bytes is a valid HKDF-SHA256 output");
    keys
}

fn nonce() -> [u8; NONCE] {
    let mut n = [0u8; NONCE];
    getrandom::fill(&mut n).expect("the OS random number generator failed");
    n
}

const VERDICT_OK: u8 = 1;
const VERDICT_WRONG_KEY: u8 = 0;
const VERDICT_MODE_REFUSED: u8 = 2;

/// The server's side; `allow_plain` says whether a client may ask for plain frames. Returns the
/// session's keys when the client asked for sealed frames.
///
/// On a wrong key the client is told and `Error::Authentication` returned; its reason says what
/// went wrong: `the client does not know the key`, `the client asked for unsealed frames, which
/// this connection refuses`, `the handshake deadline passed` (the stream's timeouts are the
/// deadline), `the peer closed the connection during the handshake`, or another I/O error.
pub(crate) fn server_handshake(
    s: &mut (impl Read + Write),
    key: &AuthKey,
    peer: &str,
    allow_plain: bool,
) -> Result<Option<SessionKeys>> {
    let io = |e: std::io::Error| {
        let reason = match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => "the handshake deadline passed".into(),
            ErrorKind::UnexpectedEof => "the peer closed the connection during the handshake".into(),
            _ => format!("handshake I/O: {e}"),
        };
        Error::Authentication { address: peer.into(), reason }
    };
    let refuse = |s: &mut (dyn Write + '_), verdict: u8, reason: &str| {
        let _ = s.write_all(&[verdict]);
        Err(Error::Authentication { address: peer.into(), reason: reason.into() })
    };
    let challenge = nonce();
    let mut hello = [0u8; MAGIC.len() + NONCE];
    hello[..MAGIC.len()].copy_from_slice(MAGIC);
    hello[MAGIC.len()..].copy_from_slice(&challenge);
    s.write_all(&hello).map_err(io)?;

    let mut answer = [0u8; UNAUTHENTICATED_READ];
    s.read_exact(&mut answer).map_err(io)?;
    let (theirs, rest) = answer.split_at(NONCE);
    let (mode, their_mac) = (rest[0], &rest[1..]);
    let k = handshake_key(key);
    if mac(&k, b"client", &challenge, theirs, mode).verify_slice(their_mac).is_err() {
        return refuse(s, VERDICT_WRONG_KEY, "the client does not know the key");
    }
    let sealing = match mode {
        1 => Sealing::Sealed,
        0 if allow_plain => Sealing::Plain,
        0 => {
            return refuse(
                s,
                VERDICT_MODE_REFUSED,
                "the client asked for unsealed frames, which this connection refuses",
            );
        }
        _ => return refuse(s, VERDICT_MODE_REFUSED, "the client asked for an unknown session mode"),
    };
    let proof = mac(&k, b"server", theirs, &challenge, mode).finalize().into_bytes();
    let mut reply = [0u8; 1 + MAC];
    reply[0] = VERDICT_OK;
    reply[1..].copy_from_slice(&proof);
    s.write_all(&reply).map_err(io)?;
    Ok((sealing == Sealing::Sealed).then(|| session_keys(key, &challenge, theirs)))
}

/// The client's side: proves the key, asks for `sealing`, then checks that the server knows the
/// key too. Returns the session's keys for a sealed session.
///
/// A peer that does not start the handshake before the stream's read timeout, or that says it
/// is busy, is [`Error::Unreachable`]; one that closes the connection first is
/// [`Error::ConnectionLost`].
pub(crate) fn client_handshake(
    s: &mut (impl Read + Write),
    key: &AuthKey,
    address: &Address,
    sealing: Sealing,
) -> Result<Option<SessionKeys>> {
    let fail = |reason: String| Error::Authentication { address: address.to_string(), reason };
    let mut hello = [0u8; MAGIC.len() + NONCE];
    let lost = |e: std::io::Error| match e.kind() {
        // Something accepted the connection but says nothing: not a manager, or not in time.
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Error::Unreachable {
            address: address.to_string(),
            reason: "the peer accepted the connection but did not start the handshake in time".into(),
        },
        _ => Error::ConnectionLost { address: address.to_string(), reason: format!("during the handshake: {e}") },
    };
    s.read_exact(&mut hello[..MAGIC.len()]).map_err(lost)?;
    if &hello[..MAGIC.len()] == BUSY {
        return Err(Error::Unreachable {
            address: address.to_string(),
            reason: "the manager is busy: too many connections are authenticating at once; try again".into(),
        });
    }
    if &hello[..MAGIC.len()] != MAGIC {
        return Err(Error::Protocol {
            address: address.to_string(),
            message: "the peer is not a procman manager of this protocol version".into(),
        });
    }
    s.read_exact(&mut hello[MAGIC.len()..]).map_err(lost)?;
    let challenge = &hello[MAGIC.len()..];
    let ours = nonce();
    let k = handshake_key(key);
    let mode = sealing.byte();
    let proof = mac(&k, b"client", challenge, &ours, mode).finalize().into_bytes();
    let mut answer = [0u8; UNAUTHENTICATED_READ];
    answer[..NONCE].copy_from_slice(&ours);
    answer[NONCE] = mode;
    answer[NONCE + 1..].copy_from_slice(&proof);
    s.write_all(&answer).map_err(|e| fail(format!("handshake I/O: {e}")))?;

    let mut verdict = [0u8; 1];
    match s.read_exact(&mut verdict) {
        Ok(()) if verdict[0] == VERDICT_OK => {}
        Ok(()) if verdict[0] == VERDICT_MODE_REFUSED => {
            return Err(fail(
                "the manager requires sealed frames (unsealed TCP is for measurement only, and both sides must ask for it)"
                    .into(),
            ));
        }
        Ok(()) | Err(_) => return Err(fail("the manager refused the authentication key".into())),
    }
    let mut their = [0u8; MAC];
    s.read_exact(&mut their).map_err(|e| fail(format!("handshake I/O: {e}")))?;
    mac(&k, b"server", &ours, challenge, mode)
        .verify_slice(&their)
        .map_err(|_| fail("the manager could not prove that it knows the key".into()))?;
    Ok((sealing == Sealing::Sealed).then(|| session_keys(key, challenge, &ours)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;
    use std::os::unix::net::UnixStream;

    type Sides = (Result<Option<SessionKeys>>, Result<Option<SessionKeys>>);

    fn run_keys(
        server_key: impl Into<AuthKey>,
        client_key: impl Into<AuthKey>,
        allow_plain: bool,
        ask: Sealing,
    ) -> Sides {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let sk = server_key.into();
        let t = std::thread::spawn(move || server_handshake(&mut a, &sk, "peer", allow_plain));
        let c = client_handshake(&mut b, &client_key.into(), &Address::Abstract("t".into()), ask);
        drop(b);
        (t.join().unwrap(), c)
    }

    fn run(server_key: &str, client_key: &str) -> Sides {
        run_keys(server_key, client_key, false, Sealing::Sealed)
    }

    fn authenticates(server_key: impl Into<AuthKey>, client_key: impl Into<AuthKey>) -> bool {
        let (s, c) = run_keys(server_key, client_key, false, Sealing::Sealed);
        assert_eq!(s.is_ok(), c.is_ok(), "both sides agree");
        s.is_ok()
    }

    #[test]
    fn same_key_authenticates_both_ways_with_the_same_fresh_session_keys() {
        let (s, c) = run("k", "k");
        let (s, c) = (s.unwrap().unwrap(), c.unwrap().unwrap());
        assert_eq!(s.client_to_server, c.client_to_server);
        assert_eq!(s.server_to_client, c.server_to_client);
        assert_ne!(s.client_to_server, s.server_to_client, "one key per direction");
        let (again, _) = run("k", "k");
        assert_ne!(again.unwrap().unwrap().client_to_server, s.client_to_server, "fresh per connection");
    }

    #[test]
    fn wrong_key_fails_on_both_sides_without_revealing_it() {
        let (s, c) = run("right-key", "wrong-key");
        let (s, c) = (s.unwrap_err(), c.unwrap_err());
        assert!(matches!(s, Error::Authentication { .. }), "{s}");
        assert!(matches!(c, Error::Authentication { .. }), "{c}");
        for e in [s.to_string(), c.to_string(), format!("{s:?}"), format!("{c:?}")] {
            assert!(!e.contains("right-key") && !e.contains("wrong-key"), "{e}");
        }
    }

    #[test]
    fn a_key_with_trailing_zeros_does_not_authenticate_against_the_key() {
        // Raw HMAC pads keys with zeros, so these two were the same HMAC key.
        assert!(!authenticates("KEY", "KEY\0\0"));
        assert!(!authenticates("KEY\0\0", "KEY"));
        assert!(!authenticates("KEY", "KEY\0"));
        assert!(authenticates("KEY\0\0", "KEY\0\0"));
    }

    #[test]
    fn the_hash_of_a_long_key_does_not_authenticate_against_the_key() {
        // Raw HMAC hashes keys longer than its 64-byte block, so K and SHA-256(K) were the same.
        let long = vec![0xa5u8; 100];
        let hashed = sha2::Sha256::digest(&long).to_vec();
        assert!(!authenticates(long.clone(), hashed.clone()));
        assert!(!authenticates(hashed, long.clone()));
        assert!(authenticates(long.clone(), long));
    }

    #[test]
    fn plain_frames_are_given_only_where_the_server_allows_them() {
        let (s, c) = run_keys("k", "k", true, Sealing::Plain);
        assert!(s.unwrap().is_none() && c.unwrap().is_none(), "a plain session has no keys");
        let (s, c) = run_keys("k", "k", true, Sealing::Sealed);
        assert!(s.unwrap().is_some() && c.unwrap().is_some(), "a server that allows plain frames seals on request");
        let (s, c) = run_keys("k", "k", false, Sealing::Plain);
        let (s, c) = (s.unwrap_err(), c.unwrap_err());
        assert!(s.to_string().contains("unsealed frames"), "{s}");
        assert!(c.to_string().contains("requires sealed frames"), "{c}");
    }

    /// A relay that changes the mode byte of the client's answer: a downgrade attempt.
    #[test]
    fn a_relay_cannot_turn_a_sealed_session_into_a_plain_one() {
        let (mut a, mut relay_server) = UnixStream::pair().unwrap();
        let (mut relay_client, mut b) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || server_handshake(&mut a, &AuthKey::new("k"), "peer", true));
        let relay = std::thread::spawn(move || {
            let mut hello = [0u8; 40];
            relay_server.read_exact(&mut hello).unwrap();
            relay_client.write_all(&hello).unwrap();
            let mut answer = [0u8; UNAUTHENTICATED_READ];
            relay_client.read_exact(&mut answer).unwrap();
            answer[NONCE] = 0; // sealed -> plain
            relay_server.write_all(&answer).unwrap();
            let mut verdict = [0u8; 1];
            relay_server.read_exact(&mut verdict).unwrap();
            let _ = relay_client.write_all(&verdict);
        });
        let c = client_handshake(&mut b, &AuthKey::new("k"), &Address::Abstract("t".into()), Sealing::Sealed);
        assert!(c.is_err());
        let s = server.join().unwrap().unwrap_err();
        assert!(s.to_string().contains("does not know the key"), "{s}");
        relay.join().unwrap();
    }

    #[test]
    fn a_server_that_does_not_know_the_key_is_detected_by_the_client() {
        // A fake server that accepts any answer but cannot produce the proof.
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut hello = [0u8; 40];
            hello[..8].copy_from_slice(MAGIC);
            a.write_all(&hello).unwrap();
            let mut answer = [0u8; UNAUTHENTICATED_READ];
            a.read_exact(&mut answer).unwrap();
            a.write_all(&[1; 33]).unwrap();
        });
        let address = Address::Abstract("t".into());
        let e = client_handshake(&mut b, &AuthKey::new("k"), &address, Sealing::Sealed).unwrap_err();
        assert!(e.to_string().contains("could not prove"), "{e}");
        t.join().unwrap();
    }

    #[test]
    fn a_busy_server_is_reported_as_busy() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(BUSY).unwrap();
        drop(a);
        let address = Address::Abstract("t".into());
        let e = client_handshake(&mut b, &AuthKey::new("k"), &address, Sealing::Sealed).unwrap_err();
        assert!(matches!(&e, Error::Unreachable { reason, .. } if reason.contains("busy")), "{e}");
    }
}
