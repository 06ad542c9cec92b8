//! What can go wrong, said plainly.

use std::net::SocketAddr;
use std::time::Duration;

use consort_core::epidemic::{MAX_CONTEXTS, MAX_SEEDS, MAX_URI, MemberId, ProxyError};

/// Why a role could not start, or a request failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum EpidemicError {
    /// A context URI that is empty or longer than [`MAX_URI`] bytes.
    BadUri(String),
    /// More contexts than one engine serves ([`MAX_CONTEXTS`]).
    TooManyContexts(usize),
    /// More MSS addresses than a role keeps ([`MAX_SEEDS`]).
    TooManySeeds(usize),
    /// A client role was given no MSS address to register with.
    NoMss,
    /// A setting that cannot work: its name and why.
    BadConfig {
        /// The setting.
        name: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// An address does not resolve.
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
    /// address others should use with `advertise`.
    NoAdvertisedAddress(SocketAddr),
    /// A member service's address is on another IP than the socket that
    /// answers its probes: the MSS would probe an address nobody listens on.
    ProbeAddressMismatch {
        /// The service's address.
        address: SocketAddr,
        /// The probe socket's address.
        probe: SocketAddr,
    },
    /// No MSS registered the member service, proxy or monitor in time.
    NotRegistered {
        /// How long it tried.
        waited: Duration,
        /// The MSS addresses it tried.
        mss: Vec<SocketAddr>,
    },
    /// A proxy request was refused.
    Proxy(ProxyError),
    /// A proxy does not speak for this service.
    UnknownService(MemberId),
    /// The group member has no view yet, so its address is unknown.
    NoView,
    /// Joining the group failed.
    Join(consort_member::JoinError),
    /// The role's task has stopped.
    Stopped,
}

impl std::fmt::Display for EpidemicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EpidemicError::BadUri(u) => write!(
                f,
                "context URI {u:?} is {} bytes: it must be 1 to {MAX_URI}",
                u.len()
            ),
            EpidemicError::TooManyContexts(n) => write!(
                f,
                "{n} contexts asked for: one MSS node serves at most {MAX_CONTEXTS}"
            ),
            EpidemicError::TooManySeeds(n) => {
                write!(f, "{n} MSS addresses given: at most {MAX_SEEDS} are kept")
            }
            EpidemicError::NoMss => write!(f, "no MSS address given to register with"),
            EpidemicError::BadConfig { name, why } => write!(f, "bad setting {name}: {why}"),
            EpidemicError::Resolve { address, error } => {
                write!(f, "cannot resolve {address:?}: {error}")
            }
            EpidemicError::Bind { address, error } => write!(f, "cannot bind {address}: {error}"),
            EpidemicError::NoAdvertisedAddress(a) => write!(
                f,
                "bound to the wildcard address {a}: set `advertise` to the address others should use"
            ),
            EpidemicError::ProbeAddressMismatch { address, probe } => write!(
                f,
                "the service's address {address} and its probe socket {probe} are on different IPs: \
                 probes go to the service's IP at the probe socket's port"
            ),
            EpidemicError::NotRegistered { waited, mss } => write!(
                f,
                "no MSS answered the registration within {:.1} s (tried {})",
                waited.as_secs_f64(),
                mss.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            EpidemicError::Proxy(ProxyError::Full) => {
                write!(f, "the proxy already speaks for as many services as it can")
            }
            EpidemicError::Proxy(ProxyError::Unknown(m)) | EpidemicError::UnknownService(m) => {
                write!(
                    f,
                    "the proxy does not speak for {} (incarnation {})",
                    m.addr, m.incarnation
                )
            }
            EpidemicError::NoView => write!(f, "the group member has no view yet"),
            EpidemicError::Join(e) => write!(f, "joining the group failed: {e}"),
            EpidemicError::Stopped => write!(f, "the role's task has stopped"),
        }
    }
}

impl std::error::Error for EpidemicError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EpidemicError::Resolve { error, .. } | EpidemicError::Bind { error, .. } => Some(error),
            EpidemicError::Join(e) => Some(e),
            _ => None,
        }
    }
}

/// Checks a context URI as the core will.
pub(crate) fn check_uri(uri: &str) -> Result<(), EpidemicError> {
    if uri.is_empty() || uri.len() > MAX_URI {
        return Err(EpidemicError::BadUri(uri.into()));
    }
    Ok(())
}

/// Checks a list of MSS addresses for a client role.
pub(crate) fn check_servers(n: usize) -> Result<(), EpidemicError> {
    if n == 0 {
        return Err(EpidemicError::NoMss);
    }
    if n > MAX_SEEDS {
        return Err(EpidemicError::TooManySeeds(n));
    }
    Ok(())
}

/// A duration setting that must not be zero (a zero period would make a
/// task spin).
pub(crate) fn nonzero(name: &'static str, d: Duration) -> Result<(), EpidemicError> {
    if d.is_zero() {
        return Err(EpidemicError::BadConfig {
            name,
            why: "must be longer than zero".into(),
        });
    }
    Ok(())
}

/// The longest period a setting may have: a day (longer is a mistake, and
/// sums of such periods must not overflow).
pub(crate) const LONGEST: Duration = Duration::from_secs(24 * 3600);

/// A period setting that must be at most [`LONGEST`].
pub(crate) fn at_most_a_day(name: &'static str, d: Duration) -> Result<(), EpidemicError> {
    if d > LONGEST {
        return Err(EpidemicError::BadConfig {
            name,
            why: format!("{d:?} is longer than a day"),
        });
    }
    Ok(())
}
