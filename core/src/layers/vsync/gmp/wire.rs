//! Gmp's header and the bodies of its messages.
//!
//! The header names the message; its body, when it has one, is the payload,
//! postcard-encoded. In-view messages (`Block` ... `Handoff`) are unreliable
//! casts and sends of the current view: Gmp repeats them itself until they
//! are answered, so losing one costs a retry, and it needs nothing of Mnak or
//! Pt2pt, whose state a view change is about to discard. The rest are
//! foreign messages, which reach endpoints of other views.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::id::{EndpointId, Rank, RankSet, ViewId};
use crate::stack::MAX_LAYERS;

/// What a chunked transfer carries.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobKind {
    /// A new view, from its coordinator.
    View,
    /// A merging view's members, from its coordinator to the senior one.
    Members,
}

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hdr {
    /// Another layer's cast or send.
    Data,
    /// Coordinator to members: a view change attempt begins ([`Block`]).
    Block,
    /// Member to coordinator: blocked; what it has delivered ([`FlushOk`]).
    FlushOk,
    /// Coordinator to members: deliver exactly this ([`Cut`]).
    Cut,
    /// Member to coordinator: delivered the cut ([`Flushed`]).
    Flushed,
    /// Member to coordinator: please let me leave.
    Leave,
    /// Junior coordinator to its members: the next view comes from the
    /// senior view ([`Handoff`]).
    Handoff,
    /// One chunk of a blob.
    Chunk {
        blob: BlobKind,
        key: u32,
        index: u16,
        total: u16,
    },
    /// The whole blob arrived.
    ChunkAck { blob: BlobKind, key: u32 },
    /// New coordinator to a member that left: done, exit.
    LeaveDone,
    /// Junior coordinator to senior: please take us in ([`MergeRequest`]).
    MergeRequest,
    /// Senior coordinator to junior: flush and hand over ([`MergeGrant`]).
    MergeGrant,
}

/// An attempt begins.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) attempt: u32,
    /// Members the attempt removes without their help.
    pub(crate) failed: RankSet,
    /// Members that take part in the flush but leave the group.
    pub(crate) leaving: RankSet,
}

/// Ambiguous proposals a member keeps and reports (see `Primary`).
pub(crate) const AMB_MAX: usize = 4;

/// Bytes a [`FlushOk`] of a view of up to `members` may need beyond its
/// per-member counts: the attempt, the suspects, the ambiguous proposals.
pub(crate) const fn flush_ok_extra(members: usize) -> usize {
    // attempt (u32 varint), the length of `received` (up to 3 bytes), the
    // suspects, the length of `ambiguous` and each entry (a set and a u16
    // varint), the founder flag.
    5 + 3 + rankset_max(members) + 1 + amb_report_max(members) * (rankset_max(members) + 8) + 1
}

/// Ambiguous proposals one [`FlushOk`] reports: all a member keeps in
/// small groups; in larger ones the per-member counts leave room for
/// fewer (one for 256 members in a 1472-byte datagram); more are reported
/// as "too many".
pub(crate) const fn amb_report_max(members: usize) -> usize {
    if members <= 16 {
        AMB_MAX
    } else if members <= 64 {
        2
    } else {
        1
    }
}

/// A [`RankSet`] of ranks below `members`, encoded: its four words as
/// varints, those that can be non-zero up to ten bytes, the others one.
const fn rankset_max(members: usize) -> usize {
    let used = members.div_ceil(64);
    used * 10 + (4 - used)
}

/// A member's report.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlushOk<const M: usize> {
    pub(crate) attempt: u32,
    /// Casts delivered in order from each member.
    pub(crate) received: heapless::Vec<u32, M>,
    /// Members this one suspects.
    pub(crate) suspects: RankSet,
    /// Proposals this member flushed for but never saw installed: the
    /// members of each still in this view, how many it had, and the epoch
    /// it would have had as a primary view. A size of
    /// `u16::MAX` means "more than this member could keep": no view with it
    /// may be primary.
    pub(crate) ambiguous: heapless::Vec<(RankSet, u16, u32), AMB_MAX>,
    /// This member may count towards the first primary view.
    pub(crate) founder: bool,
}

/// The cut.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cut<const M: usize> {
    pub(crate) attempt: u32,
    /// The epoch the proposed view would have if primary (see `Primary`).
    pub(crate) epoch: u32,
    /// Casts of each member that every survivor delivers.
    pub(crate) cut: heapless::Vec<u32, M>,
    /// For failed members: `(member, survivor that has its casts up to the cut)`.
    pub(crate) holders: heapless::Vec<(Rank, Rank), M>,
}

/// A member delivered the cut.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub(crate) attempt: u32,
}

/// The next view comes from a senior view.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handoff {
    /// The junior attempt this concludes.
    pub(crate) attempt: u32,
    /// The senior view, its coordinator's rank there, and its attempt.
    pub(crate) view: ViewId,
    pub(crate) rank: Rank,
    pub(crate) senior_attempt: u32,
}

/// A junior view asks to merge.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MergeRequest {
    pub(crate) size: u16,
}

/// A senior view grants a merge, in one of its attempts.
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MergeGrant {
    pub(crate) attempt: u32,
}

/// First record of a view blob.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ViewHead {
    pub(crate) ltime: u32,
    pub(crate) coordinator: EndpointId,
    pub(crate) members: u16,
    pub(crate) primary: bool,
    pub(crate) lineage_view: ViewId,
    pub(crate) lineage: u16,
    pub(crate) lineage_epoch: u32,
    /// The stack, as layer codes.
    pub(crate) stack: heapless::Vec<u8, MAX_LAYERS>,
    /// Bytes of the application's view message, after the other records.
    pub(crate) message: u32,
}

/// First record of a members blob.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MembersHead {
    /// The junior view.
    pub(crate) view: ViewId,
    pub(crate) members: u16,
    pub(crate) primary: bool,
    pub(crate) lineage_view: ViewId,
    pub(crate) lineage: u16,
    pub(crate) lineage_epoch: u32,
}
