//! The view: who is in the group, in rank order, and where they are.

use core::net::SocketAddr;

use crate::id::{EndpointId, GroupId, Rank, RankSet, ViewId};

/// A member of a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's endpoint id.
    pub id: EndpointId,
    /// Where its datagrams go.
    pub addr: SocketAddr,
}

/// The view an endpoint is in: what every member of the view agrees on.
///
/// `M` is the most members the endpoint's profile holds.
#[derive(Clone, Debug)]
pub struct View<const M: usize> {
    group: GroupId,
    id: ViewId,
    members: heapless::Vec<Member, M>,
    my_rank: Rank,
}

impl<const M: usize> View<M> {
    /// A view of `members` (coordinator first) in which `me` has rank `my_rank`.
    pub(crate) fn new(
        group: GroupId,
        id: ViewId,
        members: heapless::Vec<Member, M>,
        my_rank: Rank,
    ) -> Self {
        View {
            group,
            id,
            members,
            my_rank,
        }
    }

    /// The group's id.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The view's id.
    pub fn id(&self) -> ViewId {
        self.id
    }

    /// Members in rank order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the view is empty (never, for a view an endpoint is in).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// This endpoint's rank.
    pub fn my_rank(&self) -> Rank {
        self.my_rank
    }

    /// This endpoint's id.
    pub fn my_endpoint(&self) -> EndpointId {
        self.members
            .get(self.my_rank.index())
            .map_or(EndpointId::default(), |m| m.id)
    }

    /// The member at `rank`.
    pub fn member(&self, rank: Rank) -> Option<&Member> {
        self.members.get(rank.index())
    }

    /// The rank of an endpoint, if it is a member.
    pub fn rank_of(&self, id: EndpointId) -> Option<Rank> {
        self.members
            .iter()
            .position(|m| m.id == id)
            .map(|r| Rank(r as u16))
    }

    /// All ranks but mine.
    pub(crate) fn others(&self) -> RankSet {
        let mut s = RankSet::first(self.len());
        s.remove(self.my_rank);
        s
    }

    /// All ranks, as an iterator.
    pub(crate) fn ranks(&self) -> impl Iterator<Item = Rank> + use<M> {
        (0..self.len()).map(|r| Rank(r as u16))
    }
}
