//! Primary: marks a view primary when it holds a strict majority of the last
//! primary view it descends from.
//!
//! Two concurrent views cannot both hold a majority of the same view, so at
//! most one of them is primary, and the primary views form one line. Before
//! any primary view exists, a view is primary when it has at least
//! `primary_quorum` members. Primary pushes no header.

use crate::layers::Layer;
use crate::stack::{Cx, Up};

/// The primary-partition layer.
#[derive(Debug, Default)]
pub(crate) struct Primary;

impl<const M: usize> Layer<M> for Primary {
    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        if let Up::Prepare = ev {
            let quorum = cx.params.primary_quorum as usize;
            if let Some(p) = cx.shared.proposal.as_mut() {
                let lineage = &p.lineage.members;
                p.primary = if lineage.is_empty() {
                    p.members.len() >= quorum
                } else {
                    let kept = lineage
                        .iter()
                        .filter(|id| p.members.iter().any(|m| m.id == **id))
                        .count();
                    2 * kept > lineage.len()
                };
            }
        }
        cx.up(ev);
    }

    fn max_header() -> usize {
        0
    }
}
