//! Names in the epidemic service: contexts, MSS instances, member services,
//! and the states they go through.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest context URI accepted, in bytes.
pub const MAX_URI: usize = 128;

/// A coordination context (a group URI) on the wire: FNV-1a 64 of the URI.
///
/// ```
/// use consort_core::epidemic::ContextId;
/// assert_eq!(ContextId::from_uri("urn:chat"), ContextId::from_uri("urn:chat"));
/// assert_ne!(ContextId::from_uri("urn:chat"), ContextId::from_uri("urn:Chat"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ContextId(pub u64);

impl ContextId {
    /// Hashes a context URI (the same FNV-1a 64 as [`GroupId`](crate::GroupId)).
    pub const fn from_uri(uri: &str) -> ContextId {
        ContextId(crate::GroupId::from_name(uri).0)
    }
}

/// One incarnation of a Membership Service (MSS) instance: the address its
/// engine listens on and an incarnation number.
///
/// A restarted MSS, or one that learns it was declared failed, comes back
/// with a larger incarnation and is a new member: the older incarnation is
/// failed for good. Incarnations must therefore grow across restarts of the
/// same address (a runtime uses, say, its boot time in microseconds).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MssId {
    /// Where the MSS's communication engine listens.
    #[serde(with = "wire_addr")]
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub addr: SocketAddr,
    /// Which life of that address.
    pub incarnation: u64,
}

/// One incarnation of a member service (MS), or of a proxy: its address
/// (the URI the seed speaks of) and an incarnation number chosen by the
/// service. A service that leaves or fails and comes back uses a larger
/// incarnation: a Left or Failed incarnation never becomes a member again.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MemberId {
    /// The service's address.
    #[serde(with = "wire_addr")]
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub addr: SocketAddr,
    /// Which life of that service.
    pub incarnation: u64,
}

/// What an MSS believes about a peer MSS or a member service.
///
/// `Left` and `Failed` are final for an incarnation: an entry in either
/// state is a tombstone, kept so that stale gossip cannot bring it back,
/// and removed later.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status {
    /// Alive and a member.
    #[default]
    Alive,
    /// Still a member, but not heard from lately: being checked.
    Suspect,
    /// Left on its own.
    Left,
    /// Declared failed.
    Failed,
}

impl Status {
    /// Whether the incarnation is still a member (alive or suspected).
    pub const fn is_member(self) -> bool {
        matches!(self, Status::Alive | Status::Suspect)
    }

    /// The byte on the wire.
    pub(crate) const fn to_wire(self) -> u8 {
        match self {
            Status::Alive => 0,
            Status::Suspect => 1,
            Status::Left => 2,
            Status::Failed => 3,
        }
    }

    /// Parses the wire byte.
    pub(crate) const fn from_wire(b: u8) -> Option<Status> {
        match b {
            0 => Some(Status::Alive),
            1 => Some(Status::Suspect),
            2 => Some(Status::Left),
            3 => Some(Status::Failed),
            _ => None,
        }
    }
}

/// The five lifecycle sets of WS-Membership, as carried by a
/// `MembershipUpdate`: which set a member service belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Lifecycle {
    /// A current member (in a whole-state update).
    Members,
    /// Became a member since the last update (in a changes-only update).
    Joined,
    /// Left on its own.
    Left,
    /// Declared failed.
    Failed,
    /// Reportedly failed: suspected, not yet declared.
    Suspected,
}

impl Lifecycle {
    pub(crate) const fn to_wire(self) -> u8 {
        match self {
            Lifecycle::Members => 0,
            Lifecycle::Joined => 1,
            Lifecycle::Left => 2,
            Lifecycle::Failed => 3,
            Lifecycle::Suspected => 4,
        }
    }

    pub(crate) const fn from_wire(b: u8) -> Option<Lifecycle> {
        match b {
            0 => Some(Lifecycle::Members),
            1 => Some(Lifecycle::Joined),
            2 => Some(Lifecycle::Left),
            3 => Some(Lifecycle::Failed),
            4 => Some(Lifecycle::Suspected),
            _ => None,
        }
    }

    /// The set a member in `status` belongs to, in a whole-state update
    /// (`full`) or a changes-only one.
    pub const fn of(status: Status, full: bool) -> Lifecycle {
        match status {
            Status::Alive if full => Lifecycle::Members,
            Status::Alive => Lifecycle::Joined,
            Status::Suspect => Lifecycle::Suspected,
            Status::Left => Lifecycle::Left,
            Status::Failed => Lifecycle::Failed,
        }
    }
}

/// Socket addresses on the wire: `0` + 4 address bytes + port, or `1` + 16
/// address bytes + port (postcard: variant and port as varints). Written
/// out here rather than left to serde so that the format is ours to pin.
pub(crate) mod wire_addr {
    use super::*;

    #[derive(Serialize, Deserialize)]
    enum Addr {
        V4([u8; 4], u16),
        V6([u8; 16], u16),
    }

    pub(crate) fn serialize<S: Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
        let w = match a.ip() {
            IpAddr::V4(ip) => Addr::V4(ip.octets(), a.port()),
            IpAddr::V6(ip) => Addr::V6(ip.octets(), a.port()),
        };
        w.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        Ok(match Addr::deserialize(d)? {
            Addr::V4(ip, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port),
            Addr::V6(ip, port) => SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_lifecycle_bytes_round_trip() {
        for s in [Status::Alive, Status::Suspect, Status::Left, Status::Failed] {
            assert_eq!(Status::from_wire(s.to_wire()), Some(s));
        }
        assert_eq!(Status::from_wire(4), None);
        for l in [
            Lifecycle::Members,
            Lifecycle::Joined,
            Lifecycle::Left,
            Lifecycle::Failed,
            Lifecycle::Suspected,
        ] {
            assert_eq!(Lifecycle::from_wire(l.to_wire()), Some(l));
        }
        assert_eq!(Lifecycle::from_wire(9), None);
        assert!(Status::Suspect.is_member() && !Status::Left.is_member());
        assert_eq!(Lifecycle::of(Status::Alive, true), Lifecycle::Members);
        assert_eq!(Lifecycle::of(Status::Alive, false), Lifecycle::Joined);
    }

    #[test]
    fn ids_order_by_address_then_incarnation() {
        let a: SocketAddr = "10.0.0.1:7".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:7".parse().unwrap();
        let x = MssId {
            addr: a,
            incarnation: 9,
        };
        let y = MssId {
            addr: b,
            incarnation: 1,
        };
        let z = MssId {
            addr: a,
            incarnation: 10,
        };
        assert!(x < z && z < y);
    }
}
