//! The service's settings, with named presets and the reason for each number.

use core::time::Duration;

/// How gossip rounds carry member lists.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GossipMode {
    /// The seed's protocol: every round pushes the whole list (every peer
    /// and every member service); the receiver sends back what it has newer.
    Full,
    /// Rounds push a digest (per peer: heartbeat, list version); member
    /// entries travel only where versions differ, and only those changed
    /// since the receiver's version.
    Delta,
}

/// Settings of a [`Service`](super::Service).
///
/// Start from a preset ([`Config::lan`], [`Config::classic`]) and change
/// fields; every field says why it has its default.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Config {
    /// Gossip period: each round bumps the MSS's heartbeat and exchanges
    /// with one random peer.
    pub round: Duration,
    /// Full lists or digests and deltas.
    pub mode: GossipMode,
    /// Suspect a silent peer before failing it, and probe it directly and
    /// through `indirect_probes` others (SWIM); a fresh heartbeat in an
    /// answer refutes the suspicion.
    pub suspicion: bool,
    /// Silence after which a peer is suspected (with `suspicion`), plus
    /// one `round` per doubling of the number of peers (the time gossip
    /// takes to reach them all).
    pub suspect_after: Duration,
    /// Silence after which a peer is declared failed (the seed's
    /// "configurable time period"), plus one `round` per doubling of the
    /// number of peers.
    pub fail_after: Duration,
    /// How long Failed and Left entries are kept, so that stale gossip
    /// cannot bring them back, before they are removed.
    pub cleanup_after: Duration,
    /// Peers asked to probe a suspect on this MSS's behalf.
    pub indirect_probes: u8,
    /// Period of `MemberProbe` and `ProxyProbe`.
    pub probe_interval: Duration,
    /// Unanswered probes in a row before a member service is Suspected.
    pub suspect_misses: u8,
    /// Unanswered probes in a row before a member service is Failed.
    pub fail_misses: u8,
    /// A context with no registered service for this long deactivates.
    pub idle_after: Duration,
    /// Period of `MembershipUpdate`s to monitors.
    pub monitor_interval: Duration,
    /// A monitor that acknowledges nothing for this long is dropped.
    pub monitor_timeout: Duration,
    /// Largest datagram sent (at most [`MAX_DATAGRAM`](super::wire::MAX_DATAGRAM)).
    pub max_datagram: usize,
}

impl Config {
    /// consort's default: delta gossip, suspicion with indirect probes.
    ///
    /// A round of 500 ms spreads a heartbeat to N peers in about
    /// `log2 N` rounds, which both timeouts add. Suspicion starts after 2 s
    /// more of silence (4 rounds: several missed exchanges, not one lost
    /// datagram) and the direct and indirect probes it sends take one round
    /// trip, so failing 2 s later still leaves a live but unlucky peer four
    /// rounds and several probes to refute it (64 MSS: suspected after 5.5 s,
    /// failed after 7.5 s). Member services are probed every second and
    /// failed after 3 misses: a 20% loss rate fails a live one with
    /// probability `0.36^3`, about 5%, per streak... hence Suspected at 2
    /// and a fourth miss before Failed.
    pub const fn lan() -> Config {
        Config {
            round: Duration::from_millis(500),
            mode: GossipMode::Delta,
            suspicion: true,
            suspect_after: Duration::from_secs(2),
            fail_after: Duration::from_secs(4),
            cleanup_after: Duration::from_secs(30),
            indirect_probes: 3,
            probe_interval: Duration::from_secs(1),
            suspect_misses: 2,
            fail_misses: 4,
            idle_after: Duration::from_secs(30),
            monitor_interval: Duration::from_secs(1),
            monitor_timeout: Duration::from_secs(10),
            max_datagram: super::wire::MAX_DATAGRAM,
        }
    }

    /// The seed's gossip-style failure detection, for comparison: whole
    /// lists every round, no suspicion, no probes; the same timeouts as
    /// [`Config::lan`] otherwise.
    pub const fn classic() -> Config {
        Config {
            mode: GossipMode::Full,
            suspicion: false,
            ..Config::lan()
        }
    }
}

impl Config {
    /// One round per doubling of `peers`: about the time a heartbeat
    /// needs to reach every peer by gossip (van Renesse, Minsky and Hayden
    /// 1998). Both timeouts add it, or a large group would suspect healthy
    /// peers whose latest heartbeat is simply still on its way.
    pub fn spread(&self, peers: usize) -> Duration {
        let log2 = usize::BITS - peers.max(1).leading_zeros();
        self.round * log2
    }

    /// Silence after which a peer is suspected, among `peers` MSS.
    pub fn suspect_timeout(&self, peers: usize) -> Duration {
        self.suspect_after + self.spread(peers)
    }

    /// Silence after which a peer is declared failed, among `peers` MSS.
    pub fn fail_timeout(&self, peers: usize) -> Duration {
        self.fail_after + self.spread(peers)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::lan()
    }
}
