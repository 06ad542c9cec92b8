//! No duplication: no member delivers the same message twice.

use std::collections::HashSet;

use super::{Check, EndState, Views, Violation};
use crate::message::{Kind, MsgId};
use crate::trace::{Entry, Record};

const NAME: &str = "no duplicate";

/// The no-duplicate check, for casts and/or sends.
#[derive(Debug)]
pub struct NoDuplicate {
    casts: bool,
    sends: bool,
    seen: HashSet<(usize, MsgId)>,
    found: Vec<Violation>,
}

impl NoDuplicate {
    /// Checks casts if `casts`, sends if `sends` (a stack without Mnak or
    /// Pt2pt promises nothing about the duplicates a network makes).
    pub fn new(casts: bool, sends: bool) -> Self {
        NoDuplicate {
            casts,
            sends,
            seen: HashSet::new(),
            found: Vec::new(),
        }
    }
}

impl Check for NoDuplicate {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, _views: &Views) {
        let Entry::Delivered(d) = &rec.entry else {
            return;
        };
        let Some(id) = d.id else { return };
        let applies = match id.kind {
            Kind::Cast => self.casts,
            Kind::Send => self.sends,
        };
        if applies && !self.seen.insert((rec.node, id)) {
            self.found.push(Violation::at(
                NAME,
                rec,
                format!("delivered {id} a second time"),
            ));
        }
    }

    fn finish(&mut self, _end: &EndState, _views: &Views) -> Vec<Violation> {
        std::mem::take(&mut self.found)
    }
}
