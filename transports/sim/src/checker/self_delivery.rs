//! Self-delivery, view by view: with `Local` in the stack, a member
//! delivers each of its own casts to itself in the view it was sent in — a
//! cast accepted in view V (`SendView::Current`) before the member installs
//! its next view, a cast held for the next view (`SendView::Next`) in that
//! next view. Only a member that crashed, or that called `leave()`, may end
//! without having delivered its own casts of its last view.

use std::collections::{BTreeMap, BTreeSet};

use consort_core::ViewId;

use super::reliable::list;
use super::{Check, EndState, Views, Violation};
use crate::message::Kind;
use crate::trace::{Entry, Record, view_name};

const NAME: &str = "self-delivery";

/// The self-delivery check.
#[derive(Debug, Default)]
pub struct SelfDelivery {
    /// Per process: its own casts sent in its current view and not yet
    /// delivered to it.
    pending: BTreeMap<usize, (ViewId, BTreeSet<u32>)>,
    found: Vec<Violation>,
}

impl SelfDelivery {
    /// A fresh check.
    pub fn new() -> Self {
        SelfDelivery::default()
    }
}

fn describe(view: ViewId, seqs: &BTreeSet<u32>) -> String {
    let seqs: Vec<u32> = seqs.iter().copied().collect();
    format!(
        "{} of its own casts sent in view {}: {}",
        seqs.len(),
        view_name(view),
        list(&seqs)
    )
}

impl Check for SelfDelivery {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, views: &Views) {
        let p = rec.node;
        match &rec.entry {
            Entry::View(v) => {
                if let Some((old, seqs)) = self.pending.remove(&p) {
                    if !seqs.is_empty() {
                        self.found.push(Violation::at(
                            NAME,
                            rec,
                            format!(
                                "installed view {} without delivering {}",
                                view_name(v.id),
                                describe(old, &seqs)
                            ),
                        ));
                    }
                }
            }
            Entry::Delivered(d) => {
                if let Some(id) = d.id.filter(|id| d.intact && id.origin == p) {
                    if id.kind == Kind::Cast {
                        if let Some((_, seqs)) = self.pending.get_mut(&p) {
                            seqs.remove(&id.seq);
                        }
                    }
                }
            }
            _ => {}
        }
        for id in views.released() {
            if id.kind != Kind::Cast || id.origin != p {
                continue;
            }
            if let Some(v) = views.sent_view(id) {
                let entry = self.pending.entry(p).or_insert((v, BTreeSet::new()));
                entry.1.insert(id.seq);
            }
        }
    }

    fn finish(&mut self, _end: &EndState, views: &Views) -> Vec<Violation> {
        let mut found = std::mem::take(&mut self.found);
        for (p, (view, seqs)) in &self.pending {
            let excused = views
                .proc(*p)
                .is_some_and(|pr| pr.crashed || pr.leave_called);
            if !seqs.is_empty() && !excused {
                found.push(Violation::at_end(
                    NAME,
                    Some(*p),
                    format!("never delivered {}", describe(*view, seqs)),
                ));
            }
        }
        found
    }
}
