//! Causal order (with `Causal`): a cast is delivered only after every cast
//! that causally precedes it.
//!
//! The causal context of a cast is what its sender had delivered when the
//! endpoint accepted it: the trace records deliveries and acceptances in the
//! order they happened at each process, so the check reads it there. Only
//! the view the cast is sent in counts (a cast held for the next view
//! during a view change has no context there yet; virtual synchrony takes
//! care of what came before the view). Per origin, a member delivers a
//! view's casts in FIFO order (the FIFO check), so the context is, per
//! origin, the highest cast number the sender had delivered in the view.
//!
//! Violation: a member delivers a cast in the view it was sent in without
//! having delivered, before it and in that view, each cast of its context.
//! The relation is checked edge by edge; since every delivered cast is
//! checked, its transitive closure follows.

use std::collections::{BTreeMap, HashMap};

use consort_core::ViewId;

use super::{Check, EndState, Views, Violation};
use crate::message::{Kind, MsgId};
use crate::trace::{Entry, Record, view_name};

const NAME: &str = "causal order";

/// Per origin: the highest cast number delivered.
type Vector = BTreeMap<usize, u32>;

/// The causal-order check.
#[derive(Debug, Default)]
pub struct CausalOrder {
    /// Per process: its current view and what it delivered in it.
    delivered: HashMap<usize, (ViewId, Vector)>,
    /// Per cast accepted in its sender's current view: that view and the
    /// sender's vector then.
    context: HashMap<MsgId, (ViewId, Vector)>,
    found: Vec<Violation>,
}

impl CausalOrder {
    /// A fresh check.
    pub fn new() -> Self {
        CausalOrder::default()
    }
}

impl Check for CausalOrder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, views: &Views) {
        let p = rec.node;
        match &rec.entry {
            Entry::CastAccepted {
                id, next: false, ..
            } => {
                if let Some(v) = views.current(p) {
                    let vector = match self.delivered.get(&p) {
                        Some((w, vec)) if *w == v => vec.clone(),
                        _ => Vector::new(),
                    };
                    self.context.insert(*id, (v, vector));
                }
            }
            Entry::Delivered(d) if d.kind == Kind::Cast && d.intact => {
                let (Some(id), Some(v)) = (d.id, views.current(p)) else {
                    return;
                };
                if id.kind != Kind::Cast {
                    return;
                }
                let mine = self
                    .delivered
                    .entry(p)
                    .or_insert_with(|| (v, Vector::new()));
                if mine.0 != v {
                    *mine = (v, Vector::new());
                }
                if let Some((sent_in, ctx)) = self.context.get(&id).filter(|c| c.0 == v) {
                    let missing: Vec<String> = ctx
                        .iter()
                        .filter(|(o, k)| mine.1.get(o).is_none_or(|have| have < k))
                        .map(|(o, k)| format!("cast n{o}#{k}"))
                        .collect();
                    if !missing.is_empty() {
                        self.found.push(Violation::at(
                            NAME,
                            rec,
                            format!(
                                "delivered {id} in view {} before {}, which n{} had delivered \
                                 when it cast it",
                                view_name(*sent_in),
                                missing.join(", "),
                                id.origin
                            ),
                        ));
                    }
                }
                let last = mine.1.entry(id.origin).or_insert(id.seq);
                *last = (*last).max(id.seq);
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end: &EndState, _views: &Views) -> Vec<Violation> {
        std::mem::take(&mut self.found)
    }
}
