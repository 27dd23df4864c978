//! Authentication keys and the mutual HMAC-SHA256 challenge-response.
//!
//! Before anything else crosses a connection, each side proves that it knows the key:
//!
//! 1. server -> client: `procman1` and a 32-byte random challenge `s`;
//! 2. client -> server: a 32-byte random challenge `c` and `HMAC(key, "client" | s | c)`;
//! 3. server -> client: `1` and `HMAC(key, "server" | c | s)`, or `0` and the connection closes.
//!
//! Every message has a fixed size, so the server reads exactly 64 bytes from a peer that has not
//! proved anything. MACs are compared in constant time. The key itself never crosses the wire
//! and is never printed (`AuthKey`'s `Debug` is redacted).

use crate::address::Address;
use crate::error::{Error, Result};
use crate::unpoison;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::sync::{OnceLock, RwLock};

type HmacSha256 = Hmac<Sha256>;

const MAGIC: &[u8; 8] = b"procman1";
const NONCE: usize = 32;
const MAC: usize = 32;

/// Bytes a server reads from a peer before it is authenticated.
pub(crate) const UNAUTHENTICATED_READ: usize = NONCE + MAC;

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

fn mac(key: &AuthKey, label: &[u8], a: &[u8], b: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key.bytes()).expect("HMAC takes keys of any length");
    m.update(label);
    m.update(a);
    m.update(b);
    m
}

fn nonce() -> [u8; NONCE] {
    let mut n = [0u8; NONCE];
    getrandom::fill(&mut n).expect("the OS random number generator failed");
    n
}

/// The server's side. On a wrong key the client is told and `Error::Authentication` returned;
/// its reason says what went wrong: `the client does not know the key`, `the handshake deadline
/// passed` (the stream's timeouts are the deadline), `the peer closed the connection during the
/// handshake`, or another I/O error.
pub(crate) fn server_handshake(s: &mut (impl Read + Write), key: &AuthKey, peer: &str) -> Result<()> {
    let io = |e: std::io::Error| {
        let reason = match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => "the handshake deadline passed".into(),
            ErrorKind::UnexpectedEof => "the peer closed the connection during the handshake".into(),
            _ => format!("handshake I/O: {e}"),
        };
        Error::Authentication { address: peer.into(), reason }
    };
    let challenge = nonce();
    let mut hello = [0u8; MAGIC.len() + NONCE];
    hello[..MAGIC.len()].copy_from_slice(MAGIC);
    hello[MAGIC.len()..].copy_from_slice(&challenge);
    s.write_all(&hello).map_err(io)?;

    let mut answer = [0u8; UNAUTHENTICATED_READ];
    s.read_exact(&mut answer).map_err(io)?;
    let (theirs, their_mac) = answer.split_at(NONCE);
    if mac(key, b"client", &challenge, theirs).verify_slice(their_mac).is_err() {
        let _ = s.write_all(&[0]);
        return Err(Error::Authentication { address: peer.into(), reason: "the client does not know the key".into() });
    }
    let proof = mac(key, b"server", theirs, &challenge).finalize().into_bytes();
    let mut reply = [0u8; 1 + MAC];
    reply[0] = 1;
    reply[1..].copy_from_slice(&proof);
    s.write_all(&reply).map_err(io)?;
    Ok(())
}

/// The client's side: proves the key, then checks that the server knows it too. A peer that
/// does not start the handshake before the stream's read timeout is [`Error::Unreachable`]; one
/// that closes the connection first is [`Error::ConnectionLost`].
pub(crate) fn client_handshake(s: &mut (impl Read + Write), key: &AuthKey, address: &Address) -> Result<()> {
    let fail = |reason: String| Error::Authentication { address: address.to_string(), reason };
    let mut hello = [0u8; MAGIC.len() + NONCE];
    s.read_exact(&mut hello).map_err(|e| match e.kind() {
        // Something accepted the connection but says nothing: not a manager, or not in time.
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Error::Unreachable {
            address: address.to_string(),
            reason: "the peer accepted the connection but did not start the handshake in time".into(),
        },
        _ => Error::ConnectionLost { address: address.to_string(), reason: format!("during the handshake: {e}") },
    })?;
    if &hello[..MAGIC.len()] != MAGIC {
        return Err(Error::Protocol {
            address: address.to_string(),
            message: "the peer is not a procman manager".into(),
        });
    }
    let challenge = &hello[MAGIC.len()..];
    let ours = nonce();
    let proof = mac(key, b"client", challenge, &ours).finalize().into_bytes();
    let mut answer = [0u8; UNAUTHENTICATED_READ];
    answer[..NONCE].copy_from_slice(&ours);
    answer[NONCE..].copy_from_slice(&proof);
    s.write_all(&answer).map_err(|e| fail(format!("handshake I/O: {e}")))?;

    let mut verdict = [0u8; 1];
    match s.read_exact(&mut verdict) {
        Ok(()) if verdict[0] == 1 => {}
        Ok(()) | Err(_) => return Err(fail("the manager refused the authentication key".into())),
    }
    let mut their = [0u8; MAC];
    s.read_exact(&mut their).map_err(|e| fail(format!("handshake I/O: {e}")))?;
    mac(key, b"server", &ours, challenge)
        .verify_slice(&their)
        .map_err(|_| fail("the manager could not prove that it knows the key".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn run(server_key: &str, client_key: &str) -> (Result<()>, Result<()>) {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let sk = AuthKey::new(server_key);
        let t = std::thread::spawn(move || server_handshake(&mut a, &sk, "peer"));
        let c = client_handshake(&mut b, &AuthKey::new(client_key), &Address::Abstract("t".into()));
        drop(b);
        (t.join().unwrap(), c)
    }

    #[test]
    fn same_key_authenticates_both_ways() {
        let (s, c) = run("k", "k");
        s.unwrap();
        c.unwrap();
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
    fn a_server_that_does_not_know_the_key_is_detected_by_the_client() {
        // A fake server that accepts any answer but cannot produce the proof.
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut hello = [0u8; 40];
            hello[..8].copy_from_slice(MAGIC);
            a.write_all(&hello).unwrap();
            let mut answer = [0u8; 64];
            a.read_exact(&mut answer).unwrap();
            a.write_all(&[1; 33]).unwrap();
        });
        let e = client_handshake(&mut b, &AuthKey::new("k"), &Address::Abstract("t".into())).unwrap_err();
        assert!(e.to_string().contains("could not prove"), "{e}");
        t.join().unwrap();
    }
}
