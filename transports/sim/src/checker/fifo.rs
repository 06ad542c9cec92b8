//! FIFO: each member delivers each stream in the order it was accepted.
//!
//! A stream is one origin's casts (at every receiver, the origin included)
//! or one origin's sends to one destination. Over a reliable stack FIFO
//! means gap-free: delivering message `n + 2` right after `n` is already a
//! violation, reported where it happens rather than at the end as a
//! missing message. A second delivery of a message is a duplicate, not an
//! inversion, and is left to the no-duplicate check.

use std::collections::{HashMap, HashSet};

use super::{Check, EndState, Violation};
use crate::message::{Kind, MsgId};
use crate::trace::{Entry, Record};

const NAME: &str = "fifo";

/// The FIFO check, for casts and/or sends.
#[derive(Debug)]
pub struct Fifo {
    casts: bool,
    sends: bool,
    /// Per (receiver, stream): the number of the next message due.
    next: HashMap<(usize, MsgId), u32>,
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

    fn observe(&mut self, rec: &Record) {
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
        let next = self
            .next
            .entry((rec.node, MsgId { seq: 0, ..id }))
            .or_insert(0);
        if id.seq != *next {
            let what = if id.seq < *next {
                format!("delivered {id} after #{}", *next - 1)
            } else {
                format!("delivered {id} while #{} was due", *next)
            };
            self.found.push(Violation::at(NAME, rec, what));
        }
        *next = (*next).max(id.seq + 1);
    }

    fn finish(&mut self, _end: &EndState) -> Vec<Violation> {
        std::mem::take(&mut self.found)
    }
}
