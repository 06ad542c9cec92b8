//! FIFO: each member delivers each stream in the order it was accepted,
//! view by view.
//!
//! A stream is one origin's casts (at every receiver, the origin included)
//! or one origin's sends to one destination. Its messages are numbered in
//! acceptance order; each goes out in one view (see [`Views`]), and the
//! messages a stream sends in one view are consecutive numbers. Within the
//! view a message was sent in, FIFO over a reliable stack means gap-free
//! from the stream's first message in that view: delivering `n + 2` right
//! after `n`, or starting a view anywhere but at its first message, is a
//! violation, reported where it happens. Across a view change nothing may
//! be reordered either; since every message must be delivered in the view
//! it was sent in ([`SenderView`](super::SenderView)) and a member's views
//! follow one another, that is FIFO within each view. A static group has
//! one view: plain gap-free FIFO.
//!
//! A second delivery of a message is a duplicate, not an inversion, and is
//! left to the no-duplicate check; a delivery outside its sent view is left
//! to the sender-view check.

use std::collections::{HashMap, HashSet};

use consort_core::ViewId;

use super::views::stream;
use super::{Check, EndState, Views, Violation};
use crate::message::{Kind, MsgId};
use crate::trace::{Entry, Record, view_name};

const NAME: &str = "fifo";

/// The FIFO check, for casts and/or sends.
#[derive(Debug)]
pub struct Fifo {
    casts: bool,
    sends: bool,
    /// Per (receiver, stream, view): the number of the next message due.
    next: HashMap<(usize, MsgId, ViewId), u32>,
    /// Per receiver, what it delivered, to tell duplicates from inversions.
    seen: HashSet<(usize, MsgId)>,
    found: Vec<Violation>,
}

impl Fifo {
    /// Checks casts if `casts`, sends if `sends`.
    pub fn new(casts: bool, sends: bool) -> Self {
        Fifo {
            casts,
            sends,
            next: HashMap::new(),
            seen: HashSet::new(),
            found: Vec::new(),
        }
    }
}

impl Check for Fifo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, views: &Views) {
        let Entry::Delivered(d) = &rec.entry else {
            return;
        };
        // Damaged or invented messages are no creation's business.
        let Some(id) = d.id.filter(|_| d.intact) else {
            return;
        };
        let applies = match id.kind {
            Kind::Cast => self.casts,
            Kind::Send => self.sends,
        };
        if !applies || !self.seen.insert((rec.node, id)) {
            return;
        }
        let s = stream(&id);
        let Some(view) = views.sent_view(&id) else {
            return;
        };
        if views.current(rec.node) != Some(view) {
            return;
        }
        let first = views.first_seq(&s, view).unwrap_or(0);
        let next = self.next.entry((rec.node, s, view)).or_insert(first);
        if id.seq != *next {
            let what = if id.seq < *next {
                format!("delivered {id} after #{}", *next - 1)
            } else {
                format!("delivered {id} while #{} was due", *next)
            };
            let what = if first > 0 || views.all().count() > 1 {
                format!("{what} (in view {})", view_name(view))
            } else {
                what
            };
            self.found.push(Violation::at(NAME, rec, what));
        }
        *next = (*next).max(id.seq + 1);
    }

    fn finish(&mut self, _end: &EndState, _views: &Views) -> Vec<Violation> {
        std::mem::take(&mut self.found)
    }
}
