//! What an endpoint is asked to be: its group, protocol and parameters.
//!
//! [`Config`] is the Rust form of Ensemble's `JoinOps` / Maestro's
//! `GrpMemb_Options` as far as the core is concerned: the group name, the
//! protocol (properties or an explicit stack), the group parameters, and the
//! two things a sans-IO core cannot make up itself: its endpoint id and a
//! random seed, both supplied by the runtime.
//!
//! Parameters are Ensemble-style `name=value` settings separated by `:` or
//! `,`. Every parameter has a documented default ([`Params::default`]); an
//! unknown name or a bad value is an error naming it.

use core::time::Duration;

use crate::error::{ConfigError, name};
use crate::id::EndpointId;

/// How the protocol stack is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol<'a> {
    /// Properties the group needs, e.g. `"Frag:Flow"`; consort picks the layers.
    Properties(&'a str),
    /// An explicit stack, top layer first, e.g. `"Top:Local:Pt2pt:Stable:Mnak:Bottom"`.
    Stack(&'a str),
}

/// Everything needed to build an endpoint.
///
/// ```
/// use consort_core::{Config, EndpointId};
/// let cfg = Config::new("chat", EndpointId(7), 0x5eed)
///     .properties("Frag:Flow")
///     .params("stable_sweep=100ms:flow_window=20000");
/// assert_eq!(cfg.group, "chat");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    /// The group's name; members of one group must agree on it exactly.
    pub group: &'a str,
    /// The protocol stack.
    pub protocol: Protocol<'a>,
    /// Group parameters, `name=value` separated by `:` or `,`.
    pub params: &'a str,
    /// This endpoint's id, unique per incarnation (drawn at random by the runtime).
    pub endpoint: EndpointId,
    /// Seed of the endpoint's random choices (from the runtime's entropy source).
    pub seed: u64,
    /// Where to look for the group when joining (Ensemble's `gossip_hosts`):
    /// a few addresses of endpoints that may be members. At most 8 are used.
    pub seeds: &'a [core::net::SocketAddr],
    /// The application attaches a message to the views it coordinates
    /// (Maestro's `viewMsgFlag`): it gets [`Event::ViewMessage`](crate::Event::ViewMessage)
    /// and answers with `view_message`.
    pub view_msg: bool,
    /// This endpoint belongs to the group's first members and may count
    /// towards the first primary view (`primary_quorum`). An endpoint that
    /// replaces one that crashed and lost its memory, or that joins a group
    /// already running, must say `false`: otherwise it could make up a
    /// second "first" primary view beside the lineage the others carry on.
    /// Default `true`.
    pub founder: bool,
}

impl<'a> Config<'a> {
    /// The default protocol: Ensemble's `fifo` property set.
    pub const DEFAULT_PROPERTIES: &'static str = "Frag:Flow";

    /// A configuration with default properties and parameters.
    pub fn new(group: &'a str, endpoint: EndpointId, seed: u64) -> Self {
        Config {
            group,
            protocol: Protocol::Properties(Self::DEFAULT_PROPERTIES),
            params: "",
            endpoint,
            seed,
            seeds: &[],
            view_msg: false,
            founder: true,
        }
    }

    /// Sets the seed hosts used to find the group.
    pub fn seeds(mut self, seeds: &'a [core::net::SocketAddr]) -> Self {
        self.seeds = seeds;
        self
    }

    /// Asks for view messages (the coordinator's application attaches bytes to each view).
    pub fn view_messages(mut self, on: bool) -> Self {
        self.view_msg = on;
        self
    }

    /// Whether this endpoint may count towards the first primary view (see
    /// [`Config::founder`]).
    ///
    /// ```
    /// use consort_core::{Config, EndpointId};
    /// // A process restarted after a crash, its state lost.
    /// let c = Config::new("g", EndpointId(7), 1).founder(false);
    /// assert!(!c.founder);
    /// ```
    pub fn founder(mut self, founder: bool) -> Self {
        self.founder = founder;
        self
    }

    /// Chooses the stack from properties.
    pub fn properties(mut self, properties: &'a str) -> Self {
        self.protocol = Protocol::Properties(properties);
        self
    }

    /// Chooses an explicit stack.
    pub fn stack(mut self, stack: &'a str) -> Self {
        self.protocol = Protocol::Stack(stack);
        self
    }

    /// Sets group parameters.
    pub fn params(mut self, params: &'a str) -> Self {
        self.params = params;
        self
    }
}

/// Group parameters, with their defaults and what each one does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// `stable_sweep`: how often Stable gossips its acknowledgement row when it
    /// has changed. Also bounds how late a lost last message is noticed.
    /// Default 250 ms (Ensemble: 1 s; consort gossips only changed rows, so a
    /// shorter sweep costs nothing in a quiet group).
    pub stable_sweep: Duration,
    /// `stable_threshold`: gossip at once after this many new messages, without
    /// waiting for the sweep, so that flow-control windows reopen quickly.
    /// Default 8.
    pub stable_threshold: u32,
    /// `mnak_nak_retry`: how long Mnak waits before asking again for a
    /// message it has asked for. Default 100 ms.
    pub mnak_nak_retry: Duration,
    /// `mnak_retrans_max`: most messages Mnak retransmits for one NAK, to bound
    /// bursts. Default 32.
    pub mnak_retrans_max: u32,
    /// `pt2pt_sweep`: how often Pt2pt retransmits unacknowledged sends.
    /// Default 100 ms (Ensemble: 1 s).
    pub pt2pt_sweep: Duration,
    /// `frag_size`: payload bytes per fragment; 0 means as much as a datagram
    /// holds after the headers. Default 0.
    pub frag_size: u32,
    /// `frag_max`: the largest message the stack carries, in bytes; 0 means
    /// as large as the profile allows (room for two such messages in flight
    /// in the pool, and at most [`MAX_FRAGMENTS`](crate::MAX_FRAGMENTS)
    /// fragments). Default 0.
    pub frag_max: u32,
    /// `flow_window`: bytes of a member's casts that may be unstable, and
    /// bytes of sends to one peer that may be unacknowledged, before a new
    /// cast or send must wait. Default 50,000 (Ensemble's Mflow/Pt2ptw window).
    pub flow_window: u32,
    /// `drop_rate`: fraction of received messages the Drop layer discards.
    /// Default 0.01 (Ensemble's).
    pub drop_rate: f32,
    /// `gmp_retry`: how often a view change repeats a message a member has
    /// not answered (Block, Cut, the view itself). Default 100 ms.
    pub gmp_retry: Duration,
    /// `gmp_timeout`: a member that has not answered a view change for this
    /// long is treated as failed, and a member whose coordinator has been
    /// silent this long during a view change suspects it. Default 2 s.
    pub gmp_timeout: Duration,
    /// `suspect_sweep`: how often Suspect pings the view. Default 1 s (Ensemble's).
    pub suspect_sweep: Duration,
    /// `suspect_max_idle`: sweeps without hearing from a member before
    /// Suspect suspects it. Default 15 (Ensemble's): a crashed member is
    /// suspected 15 to 16 s after it last spoke.
    pub suspect_max_idle: u32,
    /// `heal_sweep`: how often a coordinator announces its view to the seed
    /// hosts and to former members, so that singletons join and partitions
    /// merge. Default 1 s.
    pub heal_sweep: Duration,
    /// `heartbeat_rate`: period of the application's `Heartbeat` event
    /// (Maestro's `heartbeatRate`); 0 turns it off. Default 0.
    pub heartbeat_rate: Duration,
    /// `primary_quorum`: members a view needs to be primary when it knows of
    /// no earlier primary view (the group's first views). Set it to a
    /// majority of the group's expected size, or two endpoints started apart
    /// could both call their first views primary. Default 1.
    pub primary_quorum: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            stable_sweep: Duration::from_millis(250),
            stable_threshold: 8,
            mnak_nak_retry: Duration::from_millis(100),
            mnak_retrans_max: 32,
            pt2pt_sweep: Duration::from_millis(100),
            frag_size: 0,
            frag_max: 0,
            flow_window: 50_000,
            drop_rate: 0.01,
            gmp_retry: Duration::from_millis(100),
            gmp_timeout: Duration::from_secs(2),
            suspect_sweep: Duration::from_secs(1),
            suspect_max_idle: 15,
            heal_sweep: Duration::from_secs(1),
            heartbeat_rate: Duration::ZERO,
            primary_quorum: 1,
        }
    }
}

impl Params {
    /// Every parameter name, for documentation and error messages.
    pub const NAMES: [&'static str; 16] = [
        "stable_sweep",
        "stable_threshold",
        "mnak_nak_retry",
        "mnak_retrans_max",
        "pt2pt_sweep",
        "frag_size",
        "frag_max",
        "flow_window",
        "drop_rate",
        "gmp_retry",
        "gmp_timeout",
        "suspect_sweep",
        "suspect_max_idle",
        "heal_sweep",
        "heartbeat_rate",
        "primary_quorum",
    ];

    /// Parses settings over the defaults.
    ///
    /// ```
    /// use consort_core::config::Params;
    /// use core::time::Duration;
    /// let p = Params::parse("stable_sweep=1.5s, frag_max=4096").unwrap();
    /// assert_eq!(p.stable_sweep, Duration::from_millis(1500));
    /// assert_eq!(p.frag_max, 4096);
    /// assert!(Params::parse("stable_swep=1s").is_err());
    /// ```
    pub fn parse(settings: &str) -> Result<Params, ConfigError> {
        let mut p = Params::default();
        for setting in settings
            .split([':', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (key, value) = setting
                .split_once('=')
                .ok_or_else(|| ConfigError::MalformedParam(name(setting)))?;
            let (key, value) = (key.trim(), value.trim());
            let bad = || ConfigError::BadParam {
                name: name(key),
                value: name(value),
            };
            // Value kinds: a positive duration, any duration, an integer with a floor.
            let period = || {
                parse_duration(value)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(bad)
            };
            let duration = || parse_duration(value).ok_or_else(bad);
            let int = |min| parse_u32(value, min).ok_or_else(bad);
            match key {
                "stable_sweep" => p.stable_sweep = period()?,
                "stable_threshold" => p.stable_threshold = int(1)?,
                "mnak_nak_retry" => p.mnak_nak_retry = period()?,
                "mnak_retrans_max" => p.mnak_retrans_max = int(1)?,
                "pt2pt_sweep" => p.pt2pt_sweep = period()?,
                "frag_size" => p.frag_size = int(0)?,
                "frag_max" => p.frag_max = int(0)?,
                "flow_window" => p.flow_window = int(1)?,
                "drop_rate" => {
                    p.drop_rate = value
                        .parse::<f32>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(bad)?
                }
                "gmp_retry" => p.gmp_retry = period()?,
                "gmp_timeout" => p.gmp_timeout = period()?,
                "suspect_sweep" => p.suspect_sweep = period()?,
                "suspect_max_idle" => p.suspect_max_idle = int(1)?,
                "heal_sweep" => p.heal_sweep = period()?,
                "heartbeat_rate" => p.heartbeat_rate = duration()?,
                "primary_quorum" => p.primary_quorum = int(1)?,
                _ => return Err(ConfigError::UnknownParam(name(key))),
            }
        }
        Ok(p)
    }
}

fn parse_u32(s: &str, min: u32) -> Option<u32> {
    s.replace_underscores()
        .parse::<u32>()
        .ok()
        .filter(|v| *v >= min)
}

/// Lets `50_000` be written as in Rust source.
trait Underscores {
    fn replace_underscores(&self) -> heapless::String<32>;
}

impl Underscores for str {
    fn replace_underscores(&self) -> heapless::String<32> {
        let mut out = heapless::String::new();
        for c in self.chars().filter(|c| *c != '_') {
            if out.push(c).is_err() {
                // Too long to be a u32: return something that will not parse.
                out.clear();
                let _ = out.push('x');
                break;
            }
        }
        out
    }
}

/// Parses `250ms`, `1s`, `1.5s`, `500us` or `2m`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let micros_per_unit = match unit.trim() {
        "us" => 1.0,
        "ms" => 1_000.0,
        "s" => 1_000_000.0,
        "m" => 60_000_000.0,
        _ => return None,
    };
    let micros = value * micros_per_unit;
    if !(0.0..=1.0e15).contains(&micros) {
        return None;
    }
    Some(Duration::from_micros(micros as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("20us"), Some(Duration::from_micros(20)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration("1e99s"), None);
        assert_eq!(parse_duration("5h"), None);
    }

    #[test]
    fn bad_params_are_named() {
        assert_eq!(
            Params::parse("flow_window=0"),
            Err(ConfigError::BadParam {
                name: name("flow_window"),
                value: name("0")
            })
        );
        assert_eq!(
            Params::parse("drop_rate=1.5"),
            Err(ConfigError::BadParam {
                name: name("drop_rate"),
                value: name("1.5")
            })
        );
        assert_eq!(
            Params::parse("stable_sweep=0s"),
            Err(ConfigError::BadParam {
                name: name("stable_sweep"),
                value: name("0s")
            })
        );
        assert_eq!(
            Params::parse("nonsense"),
            Err(ConfigError::MalformedParam(name("nonsense")))
        );
        assert_eq!(
            Params::parse("colour=blue"),
            Err(ConfigError::UnknownParam(name("colour")))
        );
        assert_eq!(
            Params::parse("flow_window=50_000").unwrap().flow_window,
            50_000
        );
        assert_eq!(Params::parse(" : , ").unwrap(), Params::default());
    }
}
