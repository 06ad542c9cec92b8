//! Primary: marks a view primary when it holds a strict majority of the last
//! primary view it descends from.
//!
//! Two concurrent views cannot both hold a majority of the same view, so at
//! most one of them is primary, and the primary views form one line. Three
//! refinements keep that true when messages are lost and processes restart:
//!
//! - **Ambiguity.** A member that flushed for a view change but never saw
//!   its view may not know whether the others installed it as primary. It
//!   keeps that proposal's members, reports them in every later flush, and
//!   a new view is primary only if it also holds a majority of each such
//!   proposal (Gmp collects them: `PrimaryCheck::settles_ambiguity`).
//! - **Merges.** A view that takes in a merging view is not primary: the
//!   coordinator does not know the other side's ambiguities. If it would
//!   otherwise be, Gmp asks for one more view change at once, among members
//!   whose history is now known.
//! - **The first primary view** needs `primary_quorum` founders
//!   (`Config::founder`): endpoints of the group's first members. One that
//!   restarts without its memory is not a founder, so it cannot help make a
//!   second "first" primary view beside the line the others carry on.
//!
//! Primary pushes no header.

use crate::layers::Layer;
use crate::stack::{Cx, Up};

/// The primary-partition layer.
#[derive(Debug, Default)]
pub(crate) struct Primary;

/// Whether `members` (a proposal) holds a majority of `lineage` (the last
/// primary view), or, before any primary view, `quorum` founders.
pub(crate) fn holds_majority(
    lineage: &[crate::EndpointId],
    members: impl Iterator<Item = crate::EndpointId> + Clone,
    founders: usize,
    quorum: usize,
) -> bool {
    if lineage.is_empty() {
        founders >= quorum
    } else {
        let kept = members.filter(|id| lineage.contains(id)).count();
        2 * kept > lineage.len()
    }
}

impl<const M: usize> Layer<M> for Primary {
    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        if let Up::Prepare = ev {
            let quorum = cx.params.primary_quorum as usize;
            let check = cx.shared.primary_check;
            if let Some(p) = cx.shared.proposal.as_mut() {
                p.primary = !check.merge
                    && check.settles_ambiguity
                    && holds_majority(
                        &p.lineage.members,
                        p.members.iter().map(|m| m.id),
                        usize::from(check.founders),
                        quorum,
                    );
            }
        }
        cx.up(ev);
    }

    fn max_header() -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::holds_majority;
    use crate::EndpointId;

    fn ids(v: &[u64]) -> std::vec::Vec<EndpointId> {
        v.iter().map(|i| EndpointId(*i)).collect()
    }

    #[test]
    fn a_strict_majority_of_the_last_primary_view_is_needed() {
        let last = ids(&[1, 2, 3, 4]);
        assert!(holds_majority(&last, ids(&[1, 2, 3, 9]).into_iter(), 0, 3));
        // Half is not a majority, however many others come along.
        assert!(!holds_majority(
            &last,
            ids(&[1, 2, 7, 8, 9]).into_iter(),
            5,
            3
        ));
    }

    #[test]
    fn the_first_primary_view_counts_founders_only() {
        assert!(holds_majority(&[], ids(&[1, 2, 3]).into_iter(), 3, 3));
        assert!(!holds_majority(&[], ids(&[1, 2, 3, 4]).into_iter(), 2, 3));
    }
}
