//! Where a manager listens: a TCP host and port, a Unix socket path, or a Linux abstract socket.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// The address of a manager.
///
/// Parsed from and shown as a string:
///
/// | string | address |
/// | --- | --- |
/// | `127.0.0.1:50000`, `tcp://localhost:0`, `[::1]:7000` | TCP (port 0: the OS picks one) |
/// | `unix:/run/app.sock`, `/run/app.sock`, `./app.sock` | Unix socket file |
/// | `@procman-demo`, `abstract:procman-demo` | Linux abstract socket (no file) |
///
/// ```
/// use procman::Address;
/// let a: Address = "127.0.0.1:50000".parse()?;
/// assert_eq!(a, Address::Tcp { host: "127.0.0.1".into(), port: 50000 });
/// assert_eq!(a.to_string(), "127.0.0.1:50000");
/// let u: Address = "unix:/tmp/m.sock".parse()?;
/// assert_eq!(u.to_string(), "unix:/tmp/m.sock");
/// let s: Address = "@demo".parse()?;
/// assert_eq!(s, Address::Abstract("demo".into()));
/// # Ok::<(), procman::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A TCP host (name or IP) and port.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port; 0 asks the OS for an unused one when binding.
        port: u16,
    },
    /// A Unix socket file.
    Unix(PathBuf),
    /// A Linux abstract socket: a name, no file.
    Abstract(String),
}

impl Address {
    /// A new abstract-socket address no other manager uses: what a manager listens on when no
    /// address is given (nothing to clean up, nothing left behind).
    pub fn unique_local() -> Address {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).expect("the OS random number generator failed");
        Address::Abstract(format!("procman-{}-{:016x}", std::process::id(), u64::from_le_bytes(r)))
    }

    /// True for TCP addresses.
    pub fn is_tcp(&self) -> bool {
        matches!(self, Address::Tcp { .. })
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Self {
        Address::Tcp { host: a.ip().to_string(), port: a.port() }
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::usage(format_args!("invalid address `{s}`: {why}"));
        if let Some(rest) = s.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(bad("empty socket path"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(name) = s.strip_prefix("abstract:").or_else(|| s.strip_prefix('@')) {
            if name.is_empty() {
                return Err(bad("empty abstract socket name"));
            }
            return Ok(Address::Abstract(name.to_owned()));
        }
        if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") {
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        let hp = s.strip_prefix("tcp://").unwrap_or(s);
        let (host, port) = hp.rsplit_once(':').ok_or_else(|| bad("expected host:port, unix:PATH or @NAME"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = port.parse::<u16>().map_err(|_| bad("the port is not a number from 0 to 65535"))?;
        Ok(Address::Tcp { host: host.to_owned(), port })
    }
}

impl TryFrom<&str> for Address {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        s.parse()
    }
}

impl TryFrom<String> for Address {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl TryFrom<&String> for Address {
    type Error = Error;
    fn try_from(s: &String) -> Result<Self> {
        s.parse()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Abstract(name) => write!(f, "@{name}"),
        }
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_displays_back() {
        for s in ["127.0.0.1:5000", "localhost:0", "[::1]:7000", "unix:/tmp/a.sock", "@name"] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
            assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        }
        assert_eq!("tcp://h:1".parse::<Address>().unwrap(), Address::Tcp { host: "h".into(), port: 1 });
        assert_eq!("/x/y".parse::<Address>().unwrap(), Address::Unix("/x/y".into()));
        assert_eq!("abstract:z".parse::<Address>().unwrap(), Address::Abstract("z".into()));
    }

    #[test]
    fn malformed_addresses_say_why() {
        for (s, why) in [
            ("nohost", "expected host:port"),
            ("h:99999", "port"),
            (":80", "empty host"),
            ("unix:", "empty"),
            ("@", "empty"),
        ] {
            let e = s.parse::<Address>().unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.contains(s), "{s}: {e}");
        }
    }

    #[test]
    fn unique_local_addresses_differ() {
        assert_ne!(Address::unique_local(), Address::unique_local());
    }
}
