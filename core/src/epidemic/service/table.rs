//! The membership tables: peers (MSS instances) and member services, kept
//! sorted in storage the caller provides.
//!
//! Both tables serve every context of the engine at once; an entry names
//! its context's slot. Peers are sorted by `(slot, id)` and members by
//! `(slot, owner, id)`, so one owner's member services are contiguous (a
//! gossip of one owner's list is one slice) and every lookup is a binary
//! search. Inserting shifts the tail: rare (a join) next to lookups (every
//! gossip item).

use core::cmp::Ordering;

use crate::epidemic::ids::{MemberId, MssId, Status};
use crate::time::Instant;

/// One peer MSS (this one included) in one context: the seed's id,
/// timestamp and heartbeat counter, plus what the protocol adds.
///
/// Storage for the peer table is a slice of these, made with
/// [`PeerEntry::EMPTY`]: `vec![PeerEntry::EMPTY; n]` on a host, `[PeerEntry::EMPTY; N]` on a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerEntry {
    pub(crate) slot: u8,
    pub(crate) id: MssId,
    pub(crate) heartbeat: u64,
    /// Highest stamp of the owner's member list held here, with every
    /// lower stamp held too.
    pub(crate) version: u32,
    /// Highest stamp of the owner's tombstones removed anywhere.
    pub(crate) floor: u32,
    pub(crate) status: Status,
    /// When the heartbeat last grew (the seed's local timestamp).
    pub(crate) updated: Instant,
    /// When the status last changed.
    pub(crate) since: Instant,
    /// A resynchronisation in progress: entries of this owner marked stale
    /// are resolved when `version` reaches this (0: none).
    pub(crate) resync: u32,
    /// Nonce of the outstanding suspicion probe (0: none).
    pub(crate) probe: u32,
}

impl PeerEntry {
    /// An unused slot of storage.
    pub const EMPTY: PeerEntry = PeerEntry {
        slot: 0,
        id: MssId {
            addr: core::net::SocketAddr::V4(core::net::SocketAddrV4::new(
                core::net::Ipv4Addr::UNSPECIFIED,
                0,
            )),
            incarnation: 0,
        },
        heartbeat: 0,
        version: 0,
        floor: 0,
        status: Status::Alive,
        updated: Instant::ZERO,
        since: Instant::ZERO,
        resync: 0,
        probe: 0,
    };

    pub(crate) fn new(slot: u8, id: MssId, now: Instant) -> Self {
        PeerEntry {
            slot,
            id,
            updated: now,
            since: now,
            ..Self::EMPTY
        }
    }

    /// The MSS.
    pub fn id(&self) -> MssId {
        self.id
    }
    /// Its heartbeat counter.
    pub fn heartbeat(&self) -> u64 {
        self.heartbeat
    }
    /// What this MSS believes about it.
    pub fn status(&self) -> Status {
        self.status
    }
    /// When its heartbeat last grew, on this MSS's clock.
    pub fn updated(&self) -> Instant {
        self.updated
    }
}

/// One member service in one context, under the MSS it registered with.
///
/// Storage for the member table is a slice of these, made with
/// [`MemberEntry::EMPTY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    pub(crate) slot: u8,
    pub(crate) owner: MssId,
    pub(crate) id: MemberId,
    pub(crate) status: Status,
    /// The owner's list version when this entry last changed.
    pub(crate) stamp: u32,
    /// This MSS's change number for the entry (monitors' changes-only updates).
    pub(crate) lseq: u32,
    pub(crate) since: Instant,
    /// Awaiting confirmation by a resynchronisation of its owner's list.
    pub(crate) stale: bool,
    // The owner's side only:
    /// Where probes go (the member's address with this port), unless a proxy speaks for it.
    pub(crate) probe_port: u16,
    /// The proxy that speaks for it.
    pub(crate) proxy: Option<MemberId>,
    /// Probes unanswered in a row.
    pub(crate) misses: u8,
}

impl MemberEntry {
    /// An unused slot of storage.
    pub const EMPTY: MemberEntry = MemberEntry {
        slot: 0,
        owner: PeerEntry::EMPTY.id,
        id: MemberId {
            addr: PeerEntry::EMPTY.id.addr,
            incarnation: 0,
        },
        status: Status::Alive,
        stamp: 0,
        lseq: 0,
        since: Instant::ZERO,
        stale: false,
        probe_port: 0,
        proxy: None,
        misses: 0,
    };

    /// The member service.
    pub fn id(&self) -> MemberId {
        self.id
    }
    /// The MSS it registered with.
    pub fn owner(&self) -> MssId {
        self.owner
    }
    /// What this MSS believes about it.
    pub fn status(&self) -> Status {
        self.status
    }
}

/// A sorted table over caller storage `S`.
#[derive(Debug)]
pub(crate) struct Table<S, T> {
    pub(crate) storage: S,
    pub(crate) len: usize,
    _t: core::marker::PhantomData<T>,
}

pub(crate) trait Keyed: Copy {
    type Key: Ord + Copy;
    fn key(&self) -> Self::Key;
}

impl Keyed for PeerEntry {
    type Key = (u8, MssId);
    fn key(&self) -> Self::Key {
        (self.slot, self.id)
    }
}

impl Keyed for MemberEntry {
    type Key = (u8, MssId, MemberId);
    fn key(&self) -> Self::Key {
        (self.slot, self.owner, self.id)
    }
}

impl<S: AsRef<[T]> + AsMut<[T]>, T: Keyed> Table<S, T> {
    pub(crate) fn new(storage: S) -> Self {
        Table {
            storage,
            len: 0,
            _t: core::marker::PhantomData,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    pub(crate) fn all(&self) -> &[T] {
        &self.storage.as_ref()[..self.len]
    }

    pub(crate) fn all_mut(&mut self) -> &mut [T] {
        let len = self.len;
        &mut self.storage.as_mut()[..len]
    }

    /// Index of `key`, or where it would go.
    pub(crate) fn search(&self, key: T::Key) -> Result<usize, usize> {
        self.all().binary_search_by(|e| e.key().cmp(&key))
    }

    /// The first index whose key is not below `key`.
    pub(crate) fn lower_bound(&self, pred: impl Fn(&T) -> Ordering) -> usize {
        self.all().partition_point(|e| pred(e) == Ordering::Less)
    }

    pub(crate) fn get(&self, key: T::Key) -> Option<&T> {
        self.search(key).ok().map(|i| &self.all()[i])
    }

    pub(crate) fn get_mut(&mut self, key: T::Key) -> Option<&mut T> {
        let i = self.search(key).ok()?;
        Some(&mut self.all_mut()[i])
    }

    /// Inserts `entry` (not present yet); `None` when the storage is full.
    pub(crate) fn insert(&mut self, entry: T) -> Option<usize> {
        let at = match self.search(entry.key()) {
            Ok(i) => {
                self.all_mut()[i] = entry;
                return Some(i);
            }
            Err(i) => i,
        };
        if self.len >= self.capacity() {
            return None;
        }
        let len = self.len;
        let s = self.storage.as_mut();
        s[at..=len].rotate_right(1);
        s[at] = entry;
        self.len += 1;
        Some(at)
    }

    /// Removes every entry for which `drop` says so, keeping the order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> usize {
        let len = self.len;
        let s = self.storage.as_mut();
        let mut w = 0;
        for r in 0..len {
            if keep(&s[r]) {
                s[w] = s[r];
                w += 1;
            }
        }
        self.len = w;
        len - w
    }

    /// The index range of entries with `pred(e) == Equal`, for a `pred`
    /// consistent with the order.
    pub(crate) fn range(&self, pred: impl Fn(&T) -> Ordering + Copy) -> core::ops::Range<usize> {
        let lo = self.lower_bound(pred);
        let hi = self.all().partition_point(|e| pred(e) != Ordering::Greater);
        lo..hi.max(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn mss(i: u8, inc: u64) -> MssId {
        MssId {
            addr: core::net::SocketAddr::from(([10, 0, 0, i], 1)),
            incarnation: inc,
        }
    }

    #[test]
    fn insert_keeps_order_and_refuses_when_full() {
        let mut t = Table::<_, PeerEntry>::new(vec![PeerEntry::EMPTY; 3]);
        for (slot, i) in [(1, 5), (0, 9), (1, 2)] {
            assert!(
                t.insert(PeerEntry::new(slot, mss(i, 1), Instant::ZERO))
                    .is_some()
            );
        }
        let keys: std::vec::Vec<_> = t.all().iter().map(|e| (e.slot, e.id.addr.ip())).collect();
        assert_eq!(keys[0].0, 0);
        assert!(t.all().windows(2).all(|w| w[0].key() < w[1].key()));
        assert!(
            t.insert(PeerEntry::new(2, mss(1, 1), Instant::ZERO))
                .is_none()
        );
        // Replacing an existing key needs no room.
        assert!(
            t.insert(PeerEntry::new(1, mss(5, 1), Instant::from_secs(1)))
                .is_some()
        );
        assert_eq!(
            t.get((1, mss(5, 1))).unwrap().updated,
            Instant::from_secs(1)
        );
        assert_eq!(t.retain(|e| e.slot != 1), 2);
        assert_eq!(t.len, 1);
        let r = t.range(|e| e.slot.cmp(&0));
        assert_eq!(r, 0..1);
        let r = t.range(|e| e.slot.cmp(&7));
        assert!(r.is_empty());
    }
}
