//! `JoinOptions`: Ensemble's `JoinOps` and Maestro's `GrpMemb_Options`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use consort_core::stack::StackSpec;
use consort_core::{ConfigError, EndpointId, Params};

use crate::error::JoinError;

/// How big a member is (the core's capacity profiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Capacity {
    /// Up to 8 members, 512-byte datagrams (the core's `Small` profile).
    Small,
    /// Up to 256 members, 1472-byte datagrams, about 6 MB (the core's `Server` profile).
    #[default]
    Server,
}

/// How the stack is chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Properties(String),
    Stack(String),
}

/// Everything about joining a group (Ensemble's `JoinOps`).
///
/// ```
/// use consort_member::JoinOptions;
/// use std::time::Duration;
/// let opts = JoinOptions::new("chat")
///     .properties("Gmp:Sync:Heal:Frag:Suspect:Flow:Slander")
///     .params("suspect_sweep=200ms:suspect_max_idle=5")
///     .seeds(["127.0.0.1:7000", "127.0.0.1:7001"])
///     .bind("127.0.0.1:0")
///     .heartbeat(Duration::from_secs(1));
/// assert!(opts.validate().is_ok());
/// assert!(JoinOptions::new("chat").properties("Gmp:Bogus").validate().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct JoinOptions {
    pub(crate) group: String,
    pub(crate) protocol: Protocol,
    pub(crate) params: String,
    pub(crate) seeds: Vec<String>,
    pub(crate) bind: String,
    pub(crate) advertise: Option<String>,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) capacity: Capacity,
    pub(crate) view_messages: bool,
    pub(crate) founder: bool,
    pub(crate) auto_block_ok: bool,
    pub(crate) join_timeout: Option<Duration>,
    pub(crate) endpoint: Option<EndpointId>,
}

impl JoinOptions {
    /// Ensemble's default properties: virtual synchrony, healing,
    /// fragmentation, failure detection, flow control, slander.
    pub const DEFAULT_PROPERTIES: &'static str = "Gmp:Sync:Heal:Frag:Suspect:Flow:Slander";

    /// Options for joining `group` with the default properties, bound to
    /// `0.0.0.0:0` (set `bind` or `advertise` for a usable address).
    pub fn new(group: impl Into<String>) -> Self {
        JoinOptions {
            group: group.into(),
            protocol: Protocol::Properties(Self::DEFAULT_PROPERTIES.into()),
            params: String::new(),
            seeds: Vec::new(),
            bind: "0.0.0.0:0".into(),
            advertise: None,
            heartbeat: None,
            capacity: Capacity::default(),
            view_messages: false,
            founder: true,
            auto_block_ok: true,
            join_timeout: None,
            endpoint: None,
        }
    }

    /// The group's properties, e.g. `"Gmp:Sync:Heal:Frag:Suspect:Flow:Slander:Primary"`.
    pub fn properties(mut self, properties: impl Into<String>) -> Self {
        self.protocol = Protocol::Properties(properties.into());
        self
    }

    /// An explicit stack instead of properties (discouraged, as in Maestro).
    pub fn stack(mut self, stack: impl Into<String>) -> Self {
        self.protocol = Protocol::Stack(stack.into());
        self
    }

    /// Group parameters, `name=value` separated by `:` (see `consort_core::Params`).
    pub fn params(mut self, params: impl Into<String>) -> Self {
        self.params = params.into();
        self
    }

    /// Where to look for the group (Ensemble's `gossip_hosts`): `host:port`s.
    pub fn seeds<S: Into<String>>(mut self, seeds: impl IntoIterator<Item = S>) -> Self {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }

    /// The local address to bind, `host:port` (port 0: any free port).
    pub fn bind(mut self, address: impl Into<String>) -> Self {
        self.bind = address.into();
        self
    }

    /// The address other members should send to, when it is not the bound
    /// one (a wildcard bind, NAT). Port 0 means the bound port.
    pub fn advertise(mut self, address: impl Into<String>) -> Self {
        self.advertise = Some(address.into());
        self
    }

    /// A `Heartbeat` event at this period (Maestro's `heartbeatRate`).
    pub fn heartbeat(mut self, period: Duration) -> Self {
        self.heartbeat = Some(period);
        self
    }

    /// The capacity profile.
    pub fn capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// The coordinator's application attaches a message to each view
    /// (Maestro's `viewMsgFlag`): answer `MemberEvent::ViewMessageRequest`
    /// with `Member::view_message`.
    pub fn view_messages(mut self, on: bool) -> Self {
        self.view_messages = on;
        self
    }

    /// Whether this member may count towards the group's first primary
    /// view (with the `Primary` property). Say `false` when the process
    /// replaces one that crashed and lost its state, or joins a group that
    /// already runs: see `consort_core::Config::founder`. Default `true`.
    pub fn founder(mut self, founder: bool) -> Self {
        self.founder = founder;
        self
    }

    /// Answer `Block` at once (the default). Turn it off to cast in the
    /// current view after `Block` and answer with `Member::block_ok`.
    pub fn auto_block_ok(mut self, on: bool) -> Self {
        self.auto_block_ok = on;
        self
    }

    /// With seeds: `join` returns only once a view with another member is
    /// installed, or fails with `NoGroupFound` after this long.
    pub fn join_timeout(mut self, timeout: Duration) -> Self {
        self.join_timeout = Some(timeout);
        self
    }

    /// Use this endpoint id instead of a random one (tests only: an id must
    /// be unique per incarnation).
    pub fn endpoint(mut self, id: EndpointId) -> Self {
        self.endpoint = Some(id);
        self
    }

    /// The parameters as the core reads them (with the heartbeat added).
    pub(crate) fn params_string(&self) -> String {
        let mut p = self.params.clone();
        if let Some(h) = self.heartbeat {
            if !p.is_empty() {
                p.push(':');
            }
            p.push_str(&format!("heartbeat_rate={}ms", h.as_millis()));
        }
        p
    }

    /// Checks the group name, the protocol and the parameters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.group.is_empty() {
            return Err(ConfigError::EmptyGroupName);
        }
        match &self.protocol {
            Protocol::Properties(p) => StackSpec::from_properties(p)?,
            Protocol::Stack(s) => StackSpec::from_layers(s)?,
        };
        Params::parse(&self.params_string())?;
        Ok(())
    }

    /// Resolves the bind address, the advertised address and the seeds.
    pub fn resolve(&self) -> Result<(SocketAddr, Option<SocketAddr>, Vec<SocketAddr>), JoinError> {
        self.validate()?;
        let bind = resolve_one(&self.bind)?;
        let advertise = self.advertise.as_deref().map(resolve_one).transpose()?;
        let seeds = self
            .seeds
            .iter()
            .map(|s| resolve_one(s))
            .collect::<Result<_, _>>()?;
        Ok((bind, advertise, seeds))
    }
}

fn resolve_one(address: &str) -> Result<SocketAddr, JoinError> {
    let err = |error| JoinError::Resolve {
        address: address.into(),
        error,
    };
    address
        .to_socket_addrs()
        .map_err(err)?
        .next()
        .ok_or_else(|| {
            err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address",
            ))
        })
}

/// Where other members reach a socket bound at `local`: the advertised
/// address if there is one (its port 0 standing for the bound port), else
/// the bound address, which must then not be a wildcard.
///
/// ```
/// use consort_member::advertised_address;
/// let local = "0.0.0.0:4000".parse().unwrap();
/// let public = advertised_address(local, Some("192.0.2.7:0".parse().unwrap())).unwrap();
/// assert_eq!(public.to_string(), "192.0.2.7:4000");
/// assert!(advertised_address(local, None).is_err());
/// ```
pub fn advertised_address(
    local: SocketAddr,
    advertise: Option<SocketAddr>,
) -> Result<SocketAddr, JoinError> {
    match advertise {
        Some(mut a) => {
            if a.port() == 0 {
                a.set_port(local.port());
            }
            Ok(a)
        }
        None if local.ip().is_unspecified() => Err(JoinError::NoAdvertisedAddress(local)),
        None => Ok(local),
    }
}
