//! How a command fails: one line on standard error, and an exit status a script can test.

use procman::Error;
use std::process::ExitCode;

/// Nothing answered at the address.
const UNREACHABLE: u8 = 3;
/// The key is wrong.
const AUTHENTICATION: u8 = 4;
/// The peer is not a procman manager, or broke the protocol.
const NOT_A_MANAGER: u8 = 5;
/// A bad argument, or no key.
const USAGE: u8 = 2;
/// Anything else.
const OTHER: u8 = 1;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line or the key was not usable.
    Usage(String),
    /// procman reported an error.
    Manager(Error),
    /// Another failure, already worded.
    Other(String),
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }

    pub(crate) fn other(message: impl Into<String>) -> Failure {
        Failure::Other(message.into())
    }

    /// Prints the failure's line and returns its exit status.
    pub(crate) fn report(&self) -> ExitCode {
        eprintln!("procman: {}", self.line());
        ExitCode::from(self.status())
    }

    /// The one line that says what went wrong.
    pub(crate) fn line(&self) -> String {
        match self {
            Failure::Usage(m) | Failure::Other(m) => m.clone(),
            Failure::Manager(Error::Authentication { address, reason }) => {
                format!("authentication with {address} failed: {reason} (is it the manager's key?)")
            }
            Failure::Manager(Error::Protocol { address, message }) if message.contains("not a procman manager") => {
                format!("{address} is not a procman manager: it does not speak procman's handshake")
            }
            Failure::Manager(Error::ConnectionLost { address, reason })
                if reason.starts_with("during the handshake") =>
            {
                format!(
                    "{address} closed the connection during the handshake: it is not a procman manager, \
                     or it is refusing connections"
                )
            }
            Failure::Manager(e) => e.to_string(),
        }
    }

    /// The exit status.
    pub(crate) fn status(&self) -> u8 {
        match self {
            Failure::Usage(_) => USAGE,
            Failure::Other(_) => OTHER,
            Failure::Manager(e) => match e {
                Error::Unreachable { .. } => UNREACHABLE,
                Error::Authentication { .. } => AUTHENTICATION,
                Error::Protocol { .. } => NOT_A_MANAGER,
                Error::ConnectionLost { reason, .. } if reason.starts_with("during the handshake") => NOT_A_MANAGER,
                Error::Usage(_) => USAGE,
                _ => OTHER,
            },
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Manager(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(e: Error) -> Failure {
        Failure::Manager(e)
    }

    #[test]
    fn each_cause_has_its_line_and_its_status() {
        let address = || "127.0.0.1:9".to_string();
        let refused = manager(Error::Unreachable { address: address(), reason: "connection refused".into() });
        assert_eq!(refused.line(), "no manager at 127.0.0.1:9: connection refused");
        assert_eq!(refused.status(), UNREACHABLE);

        let wrong = manager(Error::Authentication {
            address: address(),
            reason: "the manager refused the authentication key".into(),
        });
        assert!(wrong.line().starts_with("authentication with 127.0.0.1:9 failed"), "{}", wrong.line());
        assert_eq!(wrong.status(), AUTHENTICATION);

        let stranger =
            manager(Error::Protocol { address: address(), message: "the peer is not a procman manager".into() });
        assert_eq!(stranger.line(), "127.0.0.1:9 is not a procman manager: it does not speak procman's handshake");
        assert_eq!(stranger.status(), NOT_A_MANAGER);

        let hung_up = manager(Error::ConnectionLost {
            address: address(),
            reason: "during the handshake: failed to fill whole buffer".into(),
        });
        assert_eq!(hung_up.status(), NOT_A_MANAGER);
        assert_eq!(Failure::usage("no key").status(), USAGE);
        assert_eq!(manager(Error::Empty).status(), OTHER);
        for f in [refused, wrong, stranger, hung_up] {
            assert!(!f.line().contains('\n'));
        }
    }
}
