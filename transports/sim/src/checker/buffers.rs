//! Buffers released: once the run has quiesced and every endpoint has been
//! drained, no message is left in any pool, and no event was ever lost to a
//! full scheduler queue.

use super::{Check, EndState, Views, Violation};
use crate::trace::Record;

const NAME: &str = "buffers released";

/// The buffers-released check.
#[derive(Debug, Default)]
pub struct BuffersReleased;

impl Check for BuffersReleased {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, _rec: &Record, _views: &Views) {}

    fn finish(&mut self, end: &EndState, _views: &Views) -> Vec<Violation> {
        let mut found = Vec::new();
        for (i, n) in end.nodes.iter().enumerate().filter(|(_, n)| n.live) {
            if n.pool_in_use != 0 {
                found.push(Violation::at_end(
                    NAME,
                    Some(i),
                    format!("{} pool slots still in use at the end", n.pool_in_use),
                ));
            }
            if n.stats.queue_overflow != 0 {
                found.push(Violation::at_end(
                    NAME,
                    Some(i),
                    format!(
                        "{} events lost to a full scheduler queue",
                        n.stats.queue_overflow
                    ),
                ));
            }
        }
        found
    }
}
