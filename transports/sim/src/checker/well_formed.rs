//! Well-formed traffic: between correct members over a network that loses,
//! duplicates and reorders but never corrupts, no endpoint may reject a
//! datagram as malformed or from another group, and Frag may never discard
//! a partial message. Any such count means one endpoint wrote what another
//! could not read.
//!
//! In a static group no datagram may come from another view or from a
//! non-member either. With membership both are expected around view
//! changes (a member excluded from a view, a crashed member's last
//! datagrams, a restarted address under a new endpoint id, a partition's
//! other side), so they are counted in what a run exercised, not judged.

use super::{Check, EndState, Views, Violation};
use crate::trace::Record;

const NAME: &str = "well-formed traffic";

/// The well-formed-traffic check.
#[derive(Debug, Default)]
pub struct WellFormed {
    membership: bool,
}

impl WellFormed {
    /// The check for a static group (`membership` false) or one whose
    /// views change.
    pub fn new(membership: bool) -> Self {
        WellFormed { membership }
    }
}

impl Check for WellFormed {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, _rec: &Record, _views: &Views) {}

    fn finish(&mut self, end: &EndState, _views: &Views) -> Vec<Violation> {
        let mut found = Vec::new();
        for (i, n) in end.nodes.iter().enumerate() {
            let s = &n.stats;
            let mut counts = vec![
                (s.malformed, "malformed datagrams"),
                (s.wrong_group, "datagrams for another group"),
                (s.frag_discarded, "partial messages discarded by Frag"),
            ];
            if !self.membership {
                counts.push((s.wrong_view, "datagrams from another view"));
                counts.push((s.not_member, "datagrams from a non-member"));
            }
            for (count, what) in counts.into_iter().filter(|(c, _)| *c > 0) {
                found.push(Violation::at_end(NAME, Some(i), format!("{count} {what}")));
            }
        }
        found
    }
}
