//! What can go wrong, said plainly.

use std::net::SocketAddr;

/// Why joining failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum JoinError {
    /// The configuration is wrong: an unknown property or layer, a bad
    /// parameter, a stack that does not fit the capacity...
    Config(consort_core::ConfigError),
    /// A seed host or the bind address does not resolve.
    Resolve {
        /// The address as given.
        address: String,
        /// What the resolver said.
        error: std::io::Error,
    },
    /// The socket could not be bound (for example, the port is in use).
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
    /// The socket is bound to a wildcard address (`0.0.0.0`): say which
    /// address the other members should use with `JoinOptions::advertise`.
    NoAdvertisedAddress(SocketAddr),
    /// No member of the group answered within `JoinOptions::join_timeout`.
    NoGroupFound,
    /// The member's task stopped before its first view.
    Stopped,
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::Config(e) => write!(f, "bad configuration: {e}"),
            JoinError::Resolve { address, error } => {
                write!(f, "cannot resolve {address:?}: {error}")
            }
            JoinError::Bind { address, error } => write!(f, "cannot bind {address}: {error}"),
            JoinError::NoAdvertisedAddress(a) => {
                write!(
                    f,
                    "bound to the wildcard address {a}: set JoinOptions::advertise to the address others should use"
                )
            }
            JoinError::NoGroupFound => write!(
                f,
                "no member of the group answered at the seed hosts in time"
            ),
            JoinError::Stopped => write!(f, "the member stopped before its first view"),
        }
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JoinError::Config(e) => Some(e),
            JoinError::Resolve { error, .. } | JoinError::Bind { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<consort_core::ConfigError> for JoinError {
    fn from(e: consort_core::ConfigError) -> Self {
        JoinError::Config(e)
    }
}

/// Why a request on a member failed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MemberError {
    /// The cast or send was refused (too large, no such member...).
    Send(consort_core::SendError),
    /// The request was refused (not the coordinator, not in the stack...).
    Request(consort_core::RequestError),
    /// The member has left the group (or its task stopped).
    Left,
}

impl std::fmt::Display for MemberError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberError::Send(e) => write!(f, "{e}"),
            MemberError::Request(e) => write!(f, "{e}"),
            MemberError::Left => write!(f, "the member has left the group"),
        }
    }
}

impl std::error::Error for MemberError {}
