//! View agreement: every member that installs a view id installs the same
//! view — the same members in the same order, the same primary flag, the
//! same protocol — and each installation is consistent in itself: the
//! installer is a member at the rank it is told, the previous view it is
//! told is the one it last installed, and no member installs a view twice.

use std::collections::{HashMap, HashSet};

use consort_core::ViewId;

use super::{Check, EndState, Views, Violation};
use crate::node::endpoint_id;
use crate::trace::{Entry, Record, ViewRecord, members_name, view_name};

const NAME: &str = "view agreement";

/// The view-agreement check.
#[derive(Debug, Default)]
pub struct ViewAgreement {
    /// Each view as its first installer saw it, and who that was.
    first: HashMap<ViewId, (ViewRecord, usize)>,
    /// (process, view) installations seen.
    installed: HashSet<(usize, ViewId)>,
    /// Each process's last view.
    last: HashMap<usize, ViewId>,
    found: Vec<Violation>,
}

impl ViewAgreement {
    /// A fresh check.
    pub fn new() -> Self {
        ViewAgreement::default()
    }
}

impl Check for ViewAgreement {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, _views: &Views) {
        let Entry::View(v) = &rec.entry else {
            return;
        };
        let p = rec.node;
        let name = view_name(v.id);
        let mut bad = |what: String| self.found.push(Violation::at(NAME, rec, what));
        if !self.installed.insert((p, v.id)) {
            bad(format!("installed view {name} a second time"));
        }
        if v.members.get(v.rank) != Some(&endpoint_id(p)) {
            bad(format!(
                "installed view {name} {} at rank {}, which is not its own endpoint",
                members_name(&v.members),
                v.rank
            ));
        }
        let last = self.last.insert(p, v.id);
        if last.is_some() && v.previous != last {
            bad(format!(
                "installed view {name} saying its previous view was {}, but it was {}",
                v.previous.map_or("none".into(), view_name),
                last.map_or("none".into(), view_name)
            ));
        }
        match self.first.get(&v.id) {
            None => {
                self.first.insert(v.id, (v.clone(), p));
            }
            Some((f, q)) => {
                let mut differ = Vec::new();
                if f.members != v.members {
                    differ.push(format!(
                        "members {} where n{q} had {}",
                        members_name(&v.members),
                        members_name(&f.members)
                    ));
                }
                if f.primary != v.primary {
                    differ.push(format!(
                        "primary {} where n{q} had {}",
                        v.primary, f.primary
                    ));
                }
                if f.protocol != v.protocol {
                    differ.push(format!(
                        "protocol {} where n{q} had {}",
                        v.protocol, f.protocol
                    ));
                }
                if !differ.is_empty() {
                    self.found.push(Violation::at(
                        NAME,
                        rec,
                        format!("installed view {name} with {}", differ.join("; ")),
                    ));
                }
            }
        }
    }

    fn finish(&mut self, _end: &EndState, _views: &Views) -> Vec<Violation> {
        std::mem::take(&mut self.found)
    }
}
