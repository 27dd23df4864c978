//! The manager a command talks to, and the authentication key: from a file or from
//! `PROCMAN_AUTHKEY`, never from an argument.

use crate::failure::Failure;
use procman::{AuthKey, ManagerBuilder, NoManager};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable that holds the key when no key file is given.
pub(crate) const AUTHKEY_VAR: &str = "PROCMAN_AUTHKEY";

/// Where the key comes from.
#[derive(Debug, clap::Args)]
pub(crate) struct KeySource {
    /// Read the authentication key from this file (its bytes; one trailing newline is
    /// ignored). Without it, the key is the value of $PROCMAN_AUTHKEY.
    #[arg(long, value_name = "PATH")]
    pub(crate) authkey_file: Option<PathBuf>,
}

impl KeySource {
    /// The key. Fails (usage) when there is none, when it is empty, or when the file cannot be
    /// read; warns when other users can read the file.
    pub(crate) fn load(&self) -> Result<AuthKey, Failure> {
        let (bytes, from) = match &self.authkey_file {
            Some(path) => (read_key_file(path)?, format!("the key file {}", path.display())),
            None => match std::env::var_os(AUTHKEY_VAR) {
                Some(value) => (value.as_bytes().to_vec(), format!("${AUTHKEY_VAR}")),
                None => {
                    return Err(Failure::usage(format!(
                        "no authentication key: give --authkey-file PATH or set {AUTHKEY_VAR} \
                         (never on the command line, where ps shows it)"
                    )));
                }
            },
        };
        if bytes.is_empty() {
            return Err(Failure::usage(format!("{from} is empty: an empty key authenticates nobody")));
        }
        Ok(AuthKey::new(bytes))
    }
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let cannot = |e: std::io::Error| Failure::usage(format!("cannot read the key file {}: {e}", path.display()));
    let mut bytes = std::fs::read(path).map_err(cannot)?;
    let mode = std::fs::metadata(path).map_err(cannot)?.permissions().mode();
    if mode & 0o077 != 0 {
        eprintln!(
            "procman: warning: other users can read the key file {} (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    Ok(bytes)
}

/// A running manager: its address and key.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// The manager's address: HOST:PORT, unix:/PATH or @NAME.
    pub(crate) address: String,
    #[command(flatten)]
    pub(crate) key: KeySource,
    /// Wait up to this long for a manager that is still starting (default: try once).
    #[arg(long, value_name = "DURATION", value_parser = crate::args::duration)]
    pub(crate) wait: Option<Duration>,
}

impl Target {
    /// Connects and authenticates (one round trip). Fails with one line per cause: nothing
    /// at the address, a wrong key, a peer that is not a manager.
    pub(crate) fn connect(&self) -> Result<NoManager, Failure> {
        let mut builder = ManagerBuilder::<NoManager>::new().address(self.address.as_str()).authkey(self.key.load()?);
        if let Some(wait) = self.wait {
            builder = builder.connect_timeout(wait);
        }
        Ok(builder.connect()?)
    }
}
