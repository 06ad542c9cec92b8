//! Self-delivery: with `Local` in the stack, every member delivers each of
//! its own accepted casts to itself.

use std::collections::HashSet;

use super::reliable::list;
use super::{Check, EndState, Violation};
use crate::message::{Kind, MsgId};
use crate::trace::{Entry, Record};

const NAME: &str = "self-delivery";

/// The self-delivery check.
#[derive(Debug, Default)]
pub struct SelfDelivery {
    accepted: Vec<MsgId>,
    delivered: HashSet<MsgId>,
}

impl SelfDelivery {
    /// A fresh check.
    pub fn new() -> Self {
        SelfDelivery::default()
    }
}

impl Check for SelfDelivery {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record) {
        match &rec.entry {
            Entry::CastAccepted { id, .. } => self.accepted.push(*id),
            Entry::Delivered(d) => {
                if let Some(id) = d.id.filter(|id| d.intact && id.origin == rec.node) {
                    if id.kind == Kind::Cast {
                        self.delivered.insert(id);
                    }
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, end: &EndState) -> Vec<Violation> {
        let mut missing: Vec<Vec<u32>> = vec![Vec::new(); end.nodes.len()];
        for id in &self.accepted {
            let live = end.nodes.get(id.origin).is_some_and(|n| n.live);
            if live && !self.delivered.contains(id) {
                if let Some(m) = missing.get_mut(id.origin) {
                    m.push(id.seq);
                }
            }
        }
        missing
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.is_empty())
            .map(|(n, m)| {
                Violation::at_end(
                    NAME,
                    Some(n),
                    format!("never delivered {} of its own casts: {}", m.len(), list(m)),
                )
            })
            .collect()
    }
}
