//! Well-formed traffic: between correct members over a network that loses,
//! duplicates and reorders but never corrupts, no endpoint may reject a
//! datagram as malformed, from another group or view, or from a
//! non-member, and Frag may never discard a partial message. Any such count
//! means one endpoint wrote what another could not read.

use super::{Check, EndState, Violation};
use crate::trace::Record;

const NAME: &str = "well-formed traffic";

/// The well-formed-traffic check.
#[derive(Debug, Default)]
pub struct WellFormed;

impl Check for WellFormed {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, _rec: &Record) {}

    fn finish(&mut self, end: &EndState) -> Vec<Violation> {
        let mut found = Vec::new();
        for (i, n) in end.nodes.iter().enumerate() {
            let s = &n.stats;
            let counts = [
                (s.malformed, "malformed datagrams"),
                (s.wrong_group, "datagrams for another group"),
                (s.wrong_view, "datagrams from another view"),
                (s.not_member, "datagrams from a non-member"),
                (s.frag_discarded, "partial messages discarded by Frag"),
            ];
            for (count, what) in counts.into_iter().filter(|(c, _)| *c > 0) {
                found.push(Violation::at_end(NAME, Some(i), format!("{count} {what}")));
            }
        }
        found
    }
}
