//! Names of things: groups, endpoints, ranks and views.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// The largest group any profile can hold. Rank sets are bitmaps of this size.
pub const MAX_GROUP_SIZE: usize = 256;

/// A member's identity for one incarnation (Maestro's `EndpID`).
///
/// The runtime draws it at random when the endpoint is created, so a member
/// that leaves and joins again comes back under a new id and can never be
/// confused with its earlier self.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EndpointId(pub u64);

/// A member's position in a view: 0 is the coordinator.
///
/// Ranks are only meaningful together with the view they come from.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Debug,
    Default,
    Serialize,
    Deserialize,
    MaxSize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rank(pub u16);

impl Rank {
    /// The coordinator's rank.
    pub const COORDINATOR: Rank = Rank(0);

    /// The rank as an index into per-member tables.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A group's identity on the wire: a 64-bit FNV-1a hash of its name.
///
/// ```
/// use consort_core::GroupId;
/// assert_eq!(GroupId::from_name("chat"), GroupId::from_name("chat"));
/// assert_ne!(GroupId::from_name("chat"), GroupId::from_name("Chat"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GroupId(pub u64);

impl GroupId {
    /// Hashes a group name (FNV-1a, 64 bits).
    pub const fn from_name(name: &str) -> GroupId {
        let bytes = name.as_bytes();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        GroupId(hash)
    }
}

/// A view's identity: Ensemble's `(ltime, coordinator)` pair.
///
/// `coordinator` is the endpoint that made the view: the coordinator that
/// proposed it, whose logical clock chose `ltime`. That is normally the new
/// view's rank 0, but not always: a leaving coordinator proposes a view it
/// is not in, and a senior coordinator may take in a junior side whose
/// member comes first. Naming the maker, not rank 0, is what makes the pair
/// unique: every coordinator proposes strictly growing `ltime`s, and
/// endpoint ids are unique, so two views with one id are one view — even
/// when a junior, at the same moment, proposes a view of its own with its
/// own clock. [`View::coordinator`](crate::View::coordinator) is rank 0.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ViewId {
    /// Logical time of the view.
    pub ltime: u32,
    /// Endpoint id of the coordinator that made the view (see above; not
    /// necessarily a member of it).
    pub coordinator: EndpointId,
}

/// A set of ranks, as a fixed bitmap of [`MAX_GROUP_SIZE`] bits.
///
/// ```
/// use consort_core::{Rank, RankSet};
/// let mut s = RankSet::EMPTY;
/// s.insert(Rank(3));
/// s.insert(Rank(200));
/// assert!(s.contains(Rank(3)));
/// assert_eq!(s.iter().collect::<Vec<_>>(), vec![Rank(3), Rank(200)]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RankSet {
    words: [u64; MAX_GROUP_SIZE / 64],
}

impl RankSet {
    /// The empty set.
    pub const EMPTY: RankSet = RankSet {
        words: [0; MAX_GROUP_SIZE / 64],
    };

    /// The set `{0, 1, .., n-1}` (saturating at [`MAX_GROUP_SIZE`]).
    pub fn first(n: usize) -> RankSet {
        let mut s = RankSet::EMPTY;
        for r in 0..n.min(MAX_GROUP_SIZE) {
            s.insert(Rank(r as u16));
        }
        s
    }

    /// Adds a rank; ranks beyond [`MAX_GROUP_SIZE`] are ignored.
    pub fn insert(&mut self, r: Rank) {
        if let Some(w) = self.words.get_mut(r.index() / 64) {
            *w |= 1 << (r.index() % 64);
        }
    }

    /// Removes a rank.
    pub fn remove(&mut self, r: Rank) {
        if let Some(w) = self.words.get_mut(r.index() / 64) {
            *w &= !(1 << (r.index() % 64));
        }
    }

    /// Whether the rank is in the set.
    pub fn contains(&self, r: Rank) -> bool {
        self.words
            .get(r.index() / 64)
            .is_some_and(|w| w & (1 << (r.index() % 64)) != 0)
    }

    /// Number of ranks in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// The ranks in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = Rank> + '_ {
        (0..MAX_GROUP_SIZE)
            .map(|r| Rank(r as u16))
            .filter(move |r| self.contains(*r))
    }
}

impl core::fmt::Debug for RankSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter().map(|r| r.0)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_set_bounds_are_ignored_not_panics() {
        let mut s = RankSet::EMPTY;
        s.insert(Rank(u16::MAX));
        s.remove(Rank(u16::MAX));
        assert!(!s.contains(Rank(u16::MAX)));
        assert!(s.is_empty());
        assert_eq!(RankSet::first(3).len(), 3);
        assert_eq!(RankSet::first(10_000).len(), MAX_GROUP_SIZE);
    }

    #[test]
    fn group_id_is_fnv1a() {
        // FNV-1a 64 of the empty string is the offset basis; of "a" a known value.
        assert_eq!(GroupId::from_name("").0, 0xcbf2_9ce4_8422_2325);
        assert_eq!(GroupId::from_name("a").0, 0xaf63_dc4c_8601_ec8c);
    }
}
