//! Virtual synchrony: members that install the same view V' directly
//! after the same view V delivered the same set of casts in V (their own
//! included).
//!
//! Each process's casts delivered in its current view are collected; when
//! it installs its next view, the set is compared with that of the first
//! process seen making the same move. A difference is reported with the
//! casts one delivered and the other did not.

use std::collections::{BTreeSet, HashMap};

use consort_core::ViewId;

use super::{Check, EndState, Views, Violation};
use crate::message::{Kind, MsgId};
use crate::trace::{Entry, Record, view_name};

const NAME: &str = "virtual synchrony";

/// The virtual-synchrony check.
#[derive(Debug, Default)]
pub struct VirtualSynchrony {
    /// Per process: its current view and the casts it delivered in it.
    current: HashMap<usize, (ViewId, BTreeSet<MsgId>)>,
    /// Per move (V, V'): the first process seen making it, and its set.
    moves: HashMap<(ViewId, ViewId), (usize, BTreeSet<MsgId>)>,
    found: Vec<Violation>,
}

impl VirtualSynchrony {
    /// A fresh check.
    pub fn new() -> Self {
        VirtualSynchrony::default()
    }
}

/// "cast n1#4, cast n3#0 ... (7 in all)".
fn some(set: &BTreeSet<&MsgId>) -> String {
    let mut s: Vec<String> = set.iter().take(6).map(|m| m.to_string()).collect();
    if set.len() > 6 {
        s.push(format!("... ({} in all)", set.len()));
    }
    s.join(", ")
}

impl Check for VirtualSynchrony {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, _views: &Views) {
        let p = rec.node;
        match &rec.entry {
            Entry::Delivered(d) => {
                if let Some(id) =
                    d.id.filter(|id| id.kind == Kind::Cast && d.kind == Kind::Cast)
                {
                    if let Some((_, set)) = self.current.get_mut(&p) {
                        set.insert(id);
                    }
                }
            }
            Entry::View(v) => {
                let Some((old, set)) = self.current.insert(p, (v.id, BTreeSet::new())) else {
                    return;
                };
                match self.moves.get(&(old, v.id)) {
                    None => {
                        self.moves.insert((old, v.id), (p, set));
                    }
                    Some((q, theirs)) if *theirs != set => {
                        let only_mine: BTreeSet<&MsgId> = set.difference(theirs).collect();
                        let only_theirs: BTreeSet<&MsgId> = theirs.difference(&set).collect();
                        let mut what = format!(
                            "n{p} and n{q} both moved from view {} to {}, but delivered different casts in {}:",
                            view_name(old),
                            view_name(v.id),
                            view_name(old)
                        );
                        if !only_mine.is_empty() {
                            what += &format!(" only n{p} delivered {};", some(&only_mine));
                        }
                        if !only_theirs.is_empty() {
                            what += &format!(" only n{q} delivered {};", some(&only_theirs));
                        }
                        what.pop();
                        self.found.push(Violation::at(NAME, rec, what));
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end: &EndState, _views: &Views) -> Vec<Violation> {
        std::mem::take(&mut self.found)
    }
}
