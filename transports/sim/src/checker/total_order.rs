//! Total order (with `Total`): members deliver the casts of a view in the
//! same relative order.
//!
//! For every view V and every two casts both delivered in V by two members
//! p and q, p and q deliver them in the same order when:
//! - p and q move from V to the same next view (everything they delivered
//!   in V counts);
//! - or neither is past the point where a view change can make it deliver
//!   casts in an order of its own: every delivery before the member's
//!   `Block` in V counts, and every delivery of a member that never
//!   installs a view after V (it crashed, left, or the run ended);
//! - or, with `Agree` (`strong`), p's delivery is of that first kind and
//!   q's is any delivery in V at all.
//!
//! The exception without Agree is the end of a view split by a partition
//! (or by failures): the sides flush separately, and a side that lacks the
//! sequencer's last orders delivers the casts they cover by rank, while the
//! other side delivered them in the sequencer's order. Both deliver them in
//! V; each side agrees within itself, and with what anyone delivered before
//! the view change began. This is extended virtual synchrony's "agreed
//! order within each component". With Agree, a member delivers a cast (and
//! follows an order) only once every member of V has it, so every side's
//! flush has every order anyone followed before the view change, and the
//! order is the same for everyone.

use std::collections::{BTreeMap, HashMap};

use consort_core::ViewId;

use super::{Check, EndState, Views, Violation};
use crate::message::{Kind, MsgId};
use crate::trace::{Entry, Record, view_name};

const NAME: &str = "total order";

/// What one member delivered in one view.
#[derive(Debug, Default)]
struct InView {
    /// Casts in delivery order.
    casts: Vec<MsgId>,
    /// How many of them came before the member's `Block` in the view.
    before_block: Option<usize>,
    /// The view it installed next, if any.
    next: Option<ViewId>,
}

impl InView {
    /// The deliveries that must agree with everyone's: all of them unless
    /// the member went on to another view after a `Block`.
    fn regular(&self) -> &[MsgId] {
        match (self.next, self.before_block) {
            (Some(_), Some(n)) => &self.casts[..n],
            _ => &self.casts,
        }
    }
}

/// The total-order check.
#[derive(Debug)]
pub struct TotalOrder {
    strong: bool,
    /// Per (member, view).
    seen: BTreeMap<(ViewId, usize), InView>,
    current: HashMap<usize, ViewId>,
}

impl TotalOrder {
    /// The check; `strong` with Agree in the stack.
    pub fn new(strong: bool) -> Self {
        TotalOrder {
            strong,
            seen: BTreeMap::new(),
            current: HashMap::new(),
        }
    }
}

/// The first pair of casts `a` and `b` deliver in opposite orders, if any.
fn inversion(a: &[MsgId], b: &[MsgId]) -> Option<(MsgId, MsgId)> {
    let pos: HashMap<MsgId, usize> = a.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut last: Option<(usize, MsgId)> = None;
    for m in b {
        let Some(&i) = pos.get(m) else { continue };
        if let Some((j, prev)) = last {
            if i < j {
                // b delivers `prev` then `m`; a delivers `m` first.
                return Some((*m, prev));
            }
        }
        last = Some((i, *m));
    }
    None
}

impl Check for TotalOrder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, views: &Views) {
        let p = rec.node;
        match &rec.entry {
            Entry::Delivered(d) if d.kind == Kind::Cast && d.intact => {
                let (Some(id), Some(v)) = (d.id, views.current(p)) else {
                    return;
                };
                if id.kind == Kind::Cast {
                    self.seen.entry((v, p)).or_default().casts.push(id);
                }
            }
            Entry::Block => {
                if let Some(v) = views.current(p) {
                    let e = self.seen.entry((v, p)).or_default();
                    if e.before_block.is_none() {
                        e.before_block = Some(e.casts.len());
                    }
                }
            }
            Entry::View(v) => {
                if let Some(old) = self.current.insert(p, v.id) {
                    self.seen.entry((old, p)).or_default().next = Some(v.id);
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end: &EndState, _views: &Views) -> Vec<Violation> {
        let mut found = Vec::new();
        let mut by_view: BTreeMap<ViewId, Vec<(usize, &InView)>> = BTreeMap::new();
        for ((v, p), e) in &self.seen {
            by_view.entry(*v).or_default().push((*p, e));
        }
        for (v, members) in by_view {
            for (i, (p, a)) in members.iter().enumerate() {
                for (q, b) in members.iter().skip(i + 1) {
                    let mut pairs: Vec<(&[MsgId], &[MsgId], &str)> = Vec::new();
                    if a.next.is_some() && a.next == b.next {
                        pairs.push((&a.casts, &b.casts, "both moved to the same next view"));
                    } else {
                        pairs.push((a.regular(), b.regular(), "before any view change"));
                        if self.strong {
                            pairs.push((a.regular(), &b.casts, "with Agree"));
                            pairs.push((&a.casts, b.regular(), "with Agree"));
                        }
                    }
                    for (x, y, why) in pairs {
                        if let Some((first, then)) = inversion(x, y) {
                            found.push(Violation::at_end(
                                NAME,
                                Some(*p),
                                format!(
                                    "in view {}, n{p} delivered {first} before {then} but n{q} \
                                     delivered {then} before {first} ({why})",
                                    view_name(v)
                                ),
                            ));
                            break;
                        }
                    }
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(origin: usize, seq: u32) -> MsgId {
        MsgId {
            origin,
            kind: Kind::Cast,
            dest: None,
            seq,
        }
    }

    #[test]
    fn inversions_are_found_only_among_common_casts() {
        let a = [c(0, 0), c(1, 0), c(2, 0)];
        assert_eq!(inversion(&a, &[c(1, 0), c(3, 0), c(2, 0)]), None);
        assert_eq!(inversion(&a, &[c(2, 0), c(0, 0)]), Some((c(0, 0), c(2, 0))));
        assert_eq!(inversion(&a, &[]), None);
    }
}
