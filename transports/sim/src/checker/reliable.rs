//! Reliable delivery among live members.
//!
//! Two promises, both judged once the run is over:
//! - **Moving together** (virtual synchrony's half of it): a message sent
//!   in view V by a member that then installed V' is delivered by every
//!   member that also moved from V to V' — every other one for a cast, the
//!   destination for a send.
//! - **Staying together**: once the network has healed and the run has
//!   quiesced, a message sent in view F by a live member whose last view is
//!   F is delivered by every live member whose last view is F. In a static
//!   group (one view) this is the classic check: every accepted cast at
//!   every other live member, every accepted send at its destination.
//!
//! Delivery of a member's casts to itself is [self-delivery](super::SelfDelivery)'s
//! business, since only stacks with `Local` promise it; that a delivery
//! happens in the right view is [the sender-view check](super::SenderView)'s.

use std::collections::{BTreeMap, HashSet};

use consort_core::ViewId;

use super::{Check, EndState, Views, Violation};
use crate::message::{Kind, MsgId};
use crate::trace::{Entry, Record, view_name};

const NAME: &str = "reliable delivery";

/// The reliable-delivery check, for casts and/or sends.
#[derive(Debug)]
pub struct Reliable {
    casts: bool,
    sends: bool,
    /// Whether members moving together from view to view must agree
    /// (with Sync, or in a static group).
    vsync: bool,
    accepted: Vec<MsgId>,
    delivered: HashSet<(usize, MsgId)>,
}

impl Reliable {
    /// Checks casts if `casts`, sends if `sends`; the moving-together
    /// promise too if `vsync`.
    pub fn new(casts: bool, sends: bool, vsync: bool) -> Self {
        Reliable {
            casts,
            sends,
            vsync,
            accepted: Vec::new(),
            delivered: HashSet::new(),
        }
    }
}

/// What a member did after a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    /// Installed this view next.
    Next(ViewId),
    /// Was still in it, live, at the end.
    Stayed,
    /// Crashed, exited or was leaving in it.
    Gone,
}

/// Who must deliver what, and in what circumstance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Why {
    /// Moved from the first view to the second with the sender.
    Moved(ViewId, ViewId),
    /// Ended in this view with the sender.
    Stayed(ViewId),
}

impl Check for Reliable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, _views: &Views) {
        match &rec.entry {
            Entry::CastAccepted { id, .. } if self.casts => self.accepted.push(*id),
            Entry::SendAccepted { id, .. } if self.sends => self.accepted.push(*id),
            Entry::Delivered(d) => {
                if let Some(id) = d.id.filter(|_| d.intact) {
                    self.delivered.insert((rec.node, id));
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, end: &EndState, views: &Views) -> Vec<Violation> {
        // Per view: what each process that installed it did next.
        let mut members_of: BTreeMap<ViewId, Vec<(usize, Then)>> = BTreeMap::new();
        for (p, proc) in views.procs().iter().enumerate() {
            for w in proc.views.windows(2) {
                members_of
                    .entry(w[0].0)
                    .or_default()
                    .push((p, Then::Next(w[1].0)));
            }
            if let Some(last) = proc.views.last() {
                let live = end.nodes.get(p).is_some_and(|n| n.live);
                let then = if live { Then::Stayed } else { Then::Gone };
                members_of.entry(last.0).or_default().push((p, then));
            }
        }
        // Missing messages grouped by (receiver, why, stream), numbers in order.
        let mut missing: BTreeMap<(usize, Why, MsgId), Vec<u32>> = BTreeMap::new();
        for id in &self.accepted {
            let Some(v) = views.sent_view(id) else {
                continue;
            };
            let sender_next = views.proc(id.origin).map(|p| p.after(v));
            let sender_live = end.nodes.get(id.origin).is_some_and(|n| n.live);
            // A member that left is not owed more than agreement among
            // those that stay (virtual synchrony): its leave may have
            // turned into a failure (a partition, or a flush longer than
            // gmp_timeout), and the trace cannot tell which.
            let why = match sender_next {
                Some(Some(next)) if self.vsync => Why::Moved(v, next),
                Some(None) if sender_live => Why::Stayed(v),
                _ => continue,
            };
            let with_sender = members_of
                .get(&v)
                .into_iter()
                .flatten()
                .filter(|(q, then)| {
                    *q != id.origin
                        && match why {
                            Why::Moved(_, next) => *then == Then::Next(next),
                            Why::Stayed(_) => *then == Then::Stayed,
                        }
                });
            for (q, _) in with_sender {
                let owed = match id.kind {
                    Kind::Cast => true,
                    Kind::Send => id.dest == Some(*q),
                };
                if owed && !self.delivered.contains(&(*q, *id)) {
                    missing
                        .entry((*q, why, MsgId { seq: 0, ..*id }))
                        .or_default()
                        .push(id.seq);
                }
            }
        }
        let single = views.all().count() <= 1;
        missing
            .into_iter()
            .map(|((r, why, stream), mut seqs)| {
                seqs.sort_unstable();
                let context = match why {
                    _ if single => String::new(),
                    Why::Moved(v, next) => format!(
                        ", sent in view {} which both moved on from to {}",
                        view_name(v),
                        view_name(next)
                    ),
                    Why::Stayed(v) => {
                        format!(", sent in view {} where both ended", view_name(v))
                    }
                };
                Violation::at_end(
                    NAME,
                    Some(r),
                    format!(
                        "never delivered {} of {}: {}{context}",
                        seqs.len(),
                        stream_name(&stream),
                        list(&seqs)
                    ),
                )
            })
            .collect()
    }
}

/// "n2's casts" or "n2's sends to n0".
pub(super) fn stream_name(id: &MsgId) -> String {
    match id.dest {
        None => format!("n{}'s casts", id.origin),
        Some(d) => format!("n{}'s sends to n{d}", id.origin),
    }
}

/// "#3 #4 #9 ... (12 in all)".
pub(super) fn list(seqs: &[u32]) -> String {
    let mut s: Vec<String> = seqs.iter().take(8).map(|q| format!("#{q}")).collect();
    if seqs.len() > 8 {
        s.push("...".into());
    }
    s.join(" ")
}
