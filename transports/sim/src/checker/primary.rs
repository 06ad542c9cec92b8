//! Primary views form one chain: taken in the order they were first
//! installed, each primary view after the first holds a strict majority of
//! the members of the primary view before it. Two concurrent views cannot
//! both hold a majority of the same view, so no two concurrent views are
//! both primary.

use std::collections::HashSet;

use consort_core::{EndpointId, ViewId};

use super::{Check, EndState, Views, Violation};
use crate::trace::{Entry, Record, members_name, view_name};

const NAME: &str = "primary";

/// The primary-chain check.
#[derive(Debug, Default)]
pub struct PrimaryChain {
    /// The last primary view first installed, and its members.
    last: Option<(ViewId, Vec<EndpointId>)>,
    seen: HashSet<ViewId>,
    found: Vec<Violation>,
}

impl PrimaryChain {
    /// A fresh check.
    pub fn new() -> Self {
        PrimaryChain::default()
    }
}

impl Check for PrimaryChain {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, _views: &Views) {
        let Entry::View(v) = &rec.entry else {
            return;
        };
        if !v.primary || !self.seen.insert(v.id) {
            return;
        }
        if let Some((prev, members)) = &self.last {
            let kept = members.iter().filter(|m| v.members.contains(m)).count();
            if 2 * kept <= members.len() {
                self.found.push(Violation::at(
                    NAME,
                    rec,
                    format!(
                        "view {} {} is primary but holds only {kept} of the {} members of the previous primary view {} {}",
                        view_name(v.id),
                        members_name(&v.members),
                        members.len(),
                        view_name(*prev),
                        members_name(members)
                    ),
                ));
            }
        }
        self.last = Some((v.id, v.members.clone()));
    }

    fn finish(&mut self, _end: &EndState, _views: &Views) -> Vec<Violation> {
        std::mem::take(&mut self.found)
    }
}
