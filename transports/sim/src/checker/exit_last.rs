//! Exit last: nothing follows `Exit` at a process — no delivery, view,
//! `Block` or anything else — and a process whose application called
//! `leave()` and that did not crash received `Exit`.

use std::collections::HashSet;

use super::{Check, EndState, Views, Violation};
use crate::trace::{Entry, NET, Record};

const NAME: &str = "exit last";

/// The exit-last check.
#[derive(Debug, Default)]
pub struct ExitLast {
    exited: HashSet<usize>,
    /// Processes already reported, to report each once.
    reported: HashSet<usize>,
    found: Vec<Violation>,
}

impl ExitLast {
    /// A fresh check.
    pub fn new() -> Self {
        ExitLast::default()
    }
}

impl Check for ExitLast {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, _views: &Views) {
        if rec.node == NET {
            return;
        }
        if self.exited.contains(&rec.node) {
            if self.reported.insert(rec.node) {
                self.found.push(Violation::at(
                    NAME,
                    rec,
                    format!("after Exit: {}", rec.to_string().trim_start()),
                ));
            }
            return;
        }
        if rec.entry == Entry::Exit {
            self.exited.insert(rec.node);
        }
    }

    fn finish(&mut self, _end: &EndState, views: &Views) -> Vec<Violation> {
        let mut found = std::mem::take(&mut self.found);
        for (p, proc) in views.procs().iter().enumerate() {
            if proc.leave_called && !proc.crashed && !proc.exited {
                found.push(Violation::at_end(
                    NAME,
                    Some(p),
                    "called leave() but never received Exit".into(),
                ));
            }
        }
        found
    }
}
