//! Progress: every message the application made was eventually accepted.
//!
//! A message refused with `WouldBlock` is offered again after `Writable`;
//! one still refused once the network has healed and the run has quiesced
//! means flow control never reopened, or `Writable` never came. Any error
//! other than `WouldBlock` for a well-formed request is a violation too.

use super::{Check, EndState, Views, Violation};
use crate::trace::Record;

const NAME: &str = "progress";

/// The progress check.
#[derive(Debug, Default)]
pub struct Progress;

impl Check for Progress {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, _rec: &Record, _views: &Views) {}

    fn finish(&mut self, end: &EndState, _views: &Views) -> Vec<Violation> {
        let mut found = Vec::new();
        for (i, n) in end.nodes.iter().enumerate().filter(|(_, n)| n.live) {
            if n.unsent > 0 {
                found.push(Violation::at_end(
                    NAME,
                    Some(i),
                    format!("{} messages still refused at the end", n.unsent),
                ));
            }
            for e in &n.errors {
                found.push(Violation::at_end(
                    NAME,
                    Some(i),
                    format!("unexpected error: {e}"),
                ));
            }
        }
        found
    }
}
