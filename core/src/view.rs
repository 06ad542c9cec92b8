//! Views: who is in the group, in rank order, where they are, and what else
//! every member of the view agrees on.

use core::net::SocketAddr;

use crate::id::{EndpointId, GroupId, Rank, RankSet, ViewId};
use crate::stack::StackSpec;

/// The version string of views (Ensemble's `version` field).
pub const VERSION: &str = concat!("consort ", env!("CARGO_PKG_VERSION"));

/// A member of a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// The member's endpoint id.
    pub id: EndpointId,
    /// Where its datagrams go.
    pub addr: SocketAddr,
}

/// The last primary view a view descends from: its id, members and
/// epoch. A primary view's own state holds itself here.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Lineage<const M: usize> {
    pub(crate) view: ViewId,
    pub(crate) members: heapless::Vec<EndpointId, M>,
    /// The primary view's place in the line: one more than every primary
    /// view (installed or possibly installed) it was formed after. Two
    /// lineages meeting in a merge are ordered by it, not by `ltime`.
    pub(crate) epoch: u32,
}

/// What every member of a view agrees on (Ensemble's view state): the
/// coordinator proposes it, every member installs the same.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ViewState<const M: usize> {
    pub(crate) id: ViewId,
    pub(crate) members: heapless::Vec<Member, M>,
    pub(crate) primary: bool,
    pub(crate) lineage: Lineage<M>,
    pub(crate) stack: StackSpec,
}

impl<const M: usize> ViewState<M> {
    /// The rank of an endpoint in this view.
    pub(crate) fn rank_of(&self, id: EndpointId) -> Option<Rank> {
        self.members
            .iter()
            .position(|m| m.id == id)
            .map(|r| Rank(r as u16))
    }
}

/// What the previous view looked like from this member, for the
/// Maestro fields `newMembers`, `departedMembers`, `myOldRank`, `oldCoordinator`.
#[derive(Clone, Debug)]
struct Previous<const M: usize> {
    id: ViewId,
    members: heapless::Vec<EndpointId, M>,
    my_rank: Rank,
}

/// The view an endpoint is in: everything Maestro's `GrpMemb_ViewData` and
/// Ensemble's `View` carry.
///
/// `M` is the most members the endpoint's profile holds.
#[derive(Clone, Debug)]
pub struct View<const M: usize> {
    group: GroupId,
    name: heapless::String<64>,
    params: heapless::String<256>,
    state: ViewState<M>,
    my_rank: Rank,
    previous: Option<Previous<M>>,
}

impl<const M: usize> View<M> {
    /// The first view of an endpoint.
    pub(crate) fn first(group: &str, params: &str, state: ViewState<M>, my_rank: Rank) -> Self {
        let mut name = heapless::String::new();
        let _ = name.push_str(group);
        let mut p = heapless::String::new();
        let _ = p.push_str(params);
        View {
            group: GroupId::from_name(group),
            name,
            params: p,
            state,
            my_rank,
            previous: None,
        }
    }

    /// The view that follows this one, in which this member has `my_rank`.
    pub(crate) fn next(&self, state: ViewState<M>, my_rank: Rank) -> Self {
        let previous = Previous {
            id: self.state.id,
            members: self.state.members.iter().map(|m| m.id).collect(),
            my_rank: self.my_rank,
        };
        View {
            group: self.group,
            name: self.name.clone(),
            params: self.params.clone(),
            state,
            my_rank,
            previous: Some(previous),
        }
    }

    pub(crate) fn state(&self) -> &ViewState<M> {
        &self.state
    }

    /// The group's id on the wire.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The group's name.
    pub fn group_name(&self) -> &str {
        &self.name
    }

    /// The view's id (`ltime`, coordinator).
    pub fn id(&self) -> ViewId {
        self.state.id
    }

    /// The view's logical time.
    pub fn ltime(&self) -> u32 {
        self.state.id.ltime
    }

    /// Members in rank order.
    pub fn members(&self) -> &[Member] {
        &self.state.members
    }

    /// Endpoint ids in rank order (Ensemble's `endpts`).
    pub fn endpoints(&self) -> impl Iterator<Item = EndpointId> + '_ {
        self.state.members.iter().map(|m| m.id)
    }

    /// Addresses in rank order (Ensemble's `address`).
    pub fn addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.state.members.iter().map(|m| m.addr)
    }

    /// Number of members (`nmembers`).
    pub fn len(&self) -> usize {
        self.state.members.len()
    }

    /// Whether the view is empty (never, for a view an endpoint is in).
    pub fn is_empty(&self) -> bool {
        self.state.members.is_empty()
    }

    /// This endpoint's rank.
    pub fn my_rank(&self) -> Rank {
        self.my_rank
    }

    /// This endpoint's rank in its previous view (`myOldRank`); `None` in
    /// its first view.
    pub fn my_old_rank(&self) -> Option<Rank> {
        self.previous.as_ref().map(|p| p.my_rank)
    }

    /// This endpoint's id.
    pub fn my_endpoint(&self) -> EndpointId {
        self.state
            .members
            .get(self.my_rank.index())
            .map_or(EndpointId::default(), |m| m.id)
    }

    /// The coordinator (rank 0).
    pub fn coordinator(&self) -> EndpointId {
        self.state
            .members
            .first()
            .map_or(EndpointId::default(), |m| m.id)
    }

    /// The coordinator of this member's previous view (`oldCoordinator`).
    pub fn old_coordinator(&self) -> Option<EndpointId> {
        self.previous
            .as_ref()
            .and_then(|p| p.members.first().copied())
    }

    /// The previous view's id.
    pub fn previous_id(&self) -> Option<ViewId> {
        self.previous.as_ref().map(|p| p.id)
    }

    /// Members that were not in this member's previous view (`newMembers`).
    pub fn new_members(&self) -> impl Iterator<Item = EndpointId> + '_ {
        self.endpoints().filter(move |id| {
            !self
                .previous
                .as_ref()
                .is_some_and(|p| p.members.contains(id))
        })
    }

    /// Members of the previous view that are not in this one (`departedMembers`).
    pub fn departed_members(&self) -> impl Iterator<Item = EndpointId> + '_ {
        self.previous
            .iter()
            .flat_map(|p| p.members.iter().copied())
            .filter(move |id| self.rank_of(*id).is_none())
    }

    /// Whether the view is primary (Primary property; always `false` without it).
    pub fn is_primary(&self) -> bool {
        self.state.primary
    }

    /// The protocol stack of the view.
    pub fn protocol(&self) -> &StackSpec {
        &self.state.stack
    }

    /// The group parameters (`params`).
    pub fn params(&self) -> &str {
        &self.params
    }

    /// Whether the view came from the groupd membership service
    /// (`groupdFlag`): not in this version, where every group runs its own.
    pub fn uses_groupd(&self) -> bool {
        false
    }

    /// The version of consort that made the view (`version`).
    pub fn version(&self) -> &'static str {
        VERSION
    }

    /// The member at `rank`.
    pub fn member(&self, rank: Rank) -> Option<&Member> {
        self.state.members.get(rank.index())
    }

    /// The rank of an endpoint, if it is a member.
    pub fn rank_of(&self, id: EndpointId) -> Option<Rank> {
        self.state.rank_of(id)
    }

    /// The rank of the member at an address.
    pub(crate) fn rank_at(&self, addr: SocketAddr) -> Option<Rank> {
        self.state
            .members
            .iter()
            .position(|m| m.addr == addr)
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
