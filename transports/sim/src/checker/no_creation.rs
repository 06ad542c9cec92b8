//! No creation: every delivery is a message the application gave, intact.
//!
//! A delivered payload must be recognisable as a workload message, have
//! been accepted by its origin's endpoint before it is delivered, carry
//! exactly the bytes that were accepted, come as the kind of event it was
//! sent as, be attributed to the member that sent it (its endpoint id, and
//! its rank in the receiver's current view), and — for a send — arrive only
//! at its destination.

use std::collections::HashMap;

use super::{Check, EndState, Views, Violation};
use crate::message::{Kind, MsgId};
use crate::node::endpoint_id;
use crate::trace::{Entry, Record, view_name};

const NAME: &str = "no creation";

/// The no-creation check.
#[derive(Debug, Default)]
pub struct NoCreation {
    /// Accepted messages and their lengths.
    accepted: HashMap<MsgId, usize>,
    found: Vec<Violation>,
}

impl NoCreation {
    /// A fresh check.
    pub fn new() -> Self {
        NoCreation::default()
    }
}

impl Check for NoCreation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, views: &Views) {
        let d = match &rec.entry {
            Entry::CastAccepted { id, len, .. } | Entry::SendAccepted { id, len, .. } => {
                self.accepted.insert(*id, *len);
                return;
            }
            Entry::Delivered(d) => d,
            _ => return,
        };
        let mut bad = |what: String| self.found.push(Violation::at(NAME, rec, what));
        let Some(id) = d.id else {
            bad(format!(
                "delivered an unrecognisable {:?} of {} B from rank {}",
                d.kind, d.len, d.from_rank
            ));
            return;
        };
        let Some(len) = self.accepted.get(&id).copied() else {
            bad(format!(
                "delivered {id}, which n{} never had accepted",
                id.origin
            ));
            return;
        };
        if !d.intact || d.len != len {
            bad(format!(
                "delivered {id} with different content ({} B, {} B accepted)",
                d.len, len
            ));
        }
        if d.kind != id.kind {
            bad(format!("delivered {id} as a {:?}", d.kind));
        }
        let view = views.current(rec.node);
        let rank = view.and_then(|v| views.rank_in(v, endpoint_id(id.origin)));
        if d.from_node != Some(id.origin) || (rank.is_some() && rank != Some(d.from_rank)) {
            let in_view = view.map_or("no view".into(), view_name);
            bad(format!(
                "delivered {id} as coming from rank {} (endpoint of n{:?}), but n{} has rank {rank:?} in {in_view}",
                d.from_rank, d.from_node, id.origin
            ));
        }
        if id.kind == Kind::Send && id.dest != Some(rec.node) {
            bad(format!(
                "delivered {id} at n{}, not its destination",
                rec.node
            ));
        }
    }

    fn finish(&mut self, _end: &EndState, _views: &Views) -> Vec<Violation> {
        std::mem::take(&mut self.found)
    }
}
