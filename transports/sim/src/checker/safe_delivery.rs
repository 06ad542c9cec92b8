//! Safe delivery (with `Agree`): a cast is delivered only once every member
//! of the view has it, so no member delivers a cast that a member moving on
//! to another view could miss.
//!
//! For every view V and every cast that a member p delivered in V before
//! its `Block` in V (or at any time, if p never got one there): every other
//! member q of V that installed V and then a later view delivered that cast
//! in V too — whichever side of a partition q went on in, and whether or
//! not p survived. Without Agree this fails as soon as a member delivers a
//! cast (its own, through Local, say) and is cut off before the cast
//! reaches the others.
//!
//! What a member delivers after its `Block` is the view's end (the flush),
//! where a component delivers what it has; the check leaves it out, as
//! extended virtual synchrony's transitional deliveries are weaker.

use std::collections::{BTreeMap, HashSet};

use consort_core::ViewId;

use super::{Check, EndState, Views, Violation};
use crate::message::{Kind, MsgId};
use crate::node::node_of;
use crate::trace::{Entry, Record, view_name};

const NAME: &str = "safe delivery";

/// What one member delivered in one view.
#[derive(Debug, Default)]
struct InView {
    /// Casts delivered before the member's `Block` in the view.
    regular: Vec<MsgId>,
    /// Every cast delivered in the view.
    all: HashSet<MsgId>,
    blocked: bool,
}

/// The safe-delivery check.
#[derive(Debug, Default)]
pub struct SafeDelivery {
    seen: BTreeMap<(ViewId, usize), InView>,
}

impl SafeDelivery {
    /// A fresh check.
    pub fn new() -> Self {
        SafeDelivery::default()
    }
}

impl Check for SafeDelivery {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, views: &Views) {
        let p = rec.node;
        let Some(v) = views.current(p) else { return };
        match &rec.entry {
            Entry::Delivered(d) if d.kind == Kind::Cast && d.intact => {
                let Some(id) = d.id.filter(|id| id.kind == Kind::Cast) else {
                    return;
                };
                let e = self.seen.entry((v, p)).or_default();
                if !e.blocked {
                    e.regular.push(id);
                }
                e.all.insert(id);
            }
            Entry::Block => self.seen.entry((v, p)).or_default().blocked = true,
            _ => {}
        }
    }

    fn finish(&mut self, _end: &EndState, views: &Views) -> Vec<Violation> {
        let mut found = Vec::new();
        let empty = InView::default();
        for ((v, p), e) in &self.seen {
            let Some(info) = views.info(*v) else { continue };
            // The members of V that went on from V to another view.
            let movers: Vec<usize> = info
                .members
                .iter()
                .filter_map(|m| node_of(*m))
                .filter(|q| q != p)
                .filter(|q| views.proc(*q).is_some_and(|pr| pr.after(*v).is_some()))
                .collect();
            for q in movers {
                let theirs = self.seen.get(&(*v, q)).unwrap_or(&empty);
                if let Some(m) = e.regular.iter().find(|m| !theirs.all.contains(m)) {
                    let next = views
                        .proc(q)
                        .and_then(|pr| pr.after(*v))
                        .map_or_else(String::new, view_name);
                    found.push(Violation::at_end(
                        NAME,
                        Some(*p),
                        format!(
                            "n{p} delivered {m} in view {} before any view change, but n{q} \
                             went on to view {next} without delivering it",
                            view_name(*v)
                        ),
                    ));
                }
            }
        }
        found
    }
}
