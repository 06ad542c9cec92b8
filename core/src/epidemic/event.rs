//! What the service tells its application, and what it counts.

use super::ids::{ContextId, MemberId, MssId};

/// How a peer MSS or a member service changed, as seen by this MSS.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Change {
    /// Became a member (first heard of, or registered here).
    Joined,
    /// Suspected: silent for a while, being checked.
    Suspected,
    /// A suspicion was refuted: alive after all.
    Refuted,
    /// Left on its own.
    Left,
    /// Declared failed (or its MSS was).
    Failed,
}

/// Something the application (or a runtime's logger) may want to know.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// A context became active here (`CreateCoordinationContext` or a
    /// first registration).
    ContextActivated {
        /// The context.
        context: ContextId,
    },
    /// This MSS joined the context's set of MSS (a member service registered).
    ContextJoined {
        /// The context.
        context: ContextId,
        /// This MSS's identity in it.
        mss: MssId,
    },
    /// The context had no registrations for the configured time and is gone.
    ContextDeactivated {
        /// The context.
        context: ContextId,
    },
    /// This MSS was declared failed by its peers and came back as a new
    /// incarnation; its member services were told to register again.
    Reincarnated {
        /// The context.
        context: ContextId,
        /// The new identity.
        mss: MssId,
    },
    /// A peer MSS changed.
    Peer {
        /// The context.
        context: ContextId,
        /// The peer.
        mss: MssId,
        /// What happened.
        change: Change,
    },
    /// A member service changed.
    Member {
        /// The context.
        context: ContextId,
        /// The member service.
        member: MemberId,
        /// The MSS it is registered with.
        owner: MssId,
        /// What happened.
        change: Change,
    },
}

/// Counters of what a service did and refused; every dropped datagram is
/// counted in one of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Bytes sent to peer MSS (digests, pulls, member lists, probes).
    pub gossip_bytes_out: u64,
    /// Dropped: did not decode.
    pub malformed: u64,
    /// Dropped: for a context not active (or not joined) here.
    pub unknown_context: u64,
    /// Dropped: about an MSS incarnation that is failed, left or unknown
    /// here, or a member list with nothing newer than what is held.
    pub stale: u64,
    /// Dropped: a member list starting above the version held (a gap).
    pub gaps: u64,
    /// Dropped: a message this role does not take (a probe answer for an
    /// unknown member, a client message for a context not active...).
    pub unexpected: u64,
    /// Entries not stored for want of table space.
    pub table_full: u64,
    /// Datagrams not sent because the transmit queue was full.
    pub tx_queue_full: u64,
    /// Gossip jobs not started because the job queue was full.
    pub jobs_full: u64,
    /// Events lost because the application did not poll them.
    pub events_dropped: u64,
    /// Contexts that could not be activated for want of a slot.
    pub contexts_full: u64,
    /// Gossip rounds run.
    pub rounds: u64,
    /// Digest items sent.
    pub digest_items: u64,
    /// Member entries sent in member lists.
    pub member_items: u64,
    /// Peers suspected.
    pub suspicions: u64,
    /// Suspicions refuted (peers and member services).
    pub refutations: u64,
    /// Direct and indirect probes of suspected peers sent.
    pub probes: u64,
    /// Peers declared failed by this MSS's own timeout.
    pub peer_failures: u64,
    /// Member services declared failed by this MSS (probes or a proxy).
    pub member_failures: u64,
    /// Times this MSS learned it was declared failed and reincarnated.
    pub reincarnations: u64,
    /// Resynchronisations of an owner's list after its tombstones were removed.
    pub resyncs: u64,
}
