//! Reliable delivery among live members: once the network has healed and
//! the run has quiesced, every accepted cast has been delivered at every
//! other live member, and every accepted send at its destination.
//!
//! Delivery of a member's casts to itself is [self-delivery](super::SelfDelivery)'s
//! business, since only stacks with `Local` promise it.

use std::collections::{BTreeMap, HashSet};

use super::{Check, EndState, Violation};
use crate::message::{Kind, MsgId};
use crate::trace::{Entry, Record};

const NAME: &str = "reliable delivery";

/// The reliable-delivery check, for casts and/or sends.
#[derive(Debug)]
pub struct Reliable {
    casts: bool,
    sends: bool,
    accepted: Vec<MsgId>,
    delivered: HashSet<(usize, MsgId)>,
}

impl Reliable {
    /// Checks casts if `casts`, sends if `sends`.
    pub fn new(casts: bool, sends: bool) -> Self {
        Reliable {
            casts,
            sends,
            accepted: Vec::new(),
            delivered: HashSet::new(),
        }
    }
}

impl Check for Reliable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record) {
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

    fn finish(&mut self, end: &EndState) -> Vec<Violation> {
        // Missing messages grouped by (receiver, stream), numbers in order.
        let mut missing: BTreeMap<(usize, MsgId), Vec<u32>> = BTreeMap::new();
        let live: Vec<usize> = end.live().collect();
        for id in &self.accepted {
            let receivers: Vec<usize> = match id.kind {
                Kind::Cast => live.iter().copied().filter(|n| *n != id.origin).collect(),
                Kind::Send => id.dest.filter(|d| live.contains(d)).into_iter().collect(),
            };
            for r in receivers {
                if !self.delivered.contains(&(r, *id)) {
                    missing
                        .entry((r, MsgId { seq: 0, ..*id }))
                        .or_default()
                        .push(id.seq);
                }
            }
        }
        missing
            .into_iter()
            .map(|((r, stream), seqs)| {
                Violation::at_end(
                    NAME,
                    Some(r),
                    format!(
                        "never delivered {} of {}: {}",
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
