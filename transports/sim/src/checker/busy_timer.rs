//! No busy timer: a deadline that is due when `handle_timeout` runs moves
//! past it. Once is fine — a timeout may cause something that is due at
//! once (a new view's first announcement) and the driver calls again — but
//! a deadline still due after the *next* call too is one a real driver
//! would call again and again, at full speed, until something else
//! changes: a busy loop, and a sign that some layer waits for something its
//! timeout does not advance. (The simulator retries a stuck deadline after
//! 1 µs, then twice as late each time, so a spin costs virtual time.)

use super::{Check, EndState, Views, Violation};
use crate::trace::Record;

const NAME: &str = "busy timer";

/// The busy-timer check.
#[derive(Debug, Default)]
pub struct BusyTimer;

impl Check for BusyTimer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, _rec: &Record, _views: &Views) {}

    fn finish(&mut self, end: &EndState, _views: &Views) -> Vec<Violation> {
        end.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.timer_stuck >= 2)
            .map(|(i, n)| {
                Violation::at_end(
                    NAME,
                    Some(i),
                    format!(
                        "its deadline was still due right after handle_timeout {} times in a row ({} in all; a real driver would spin)",
                        n.timer_stuck, n.timer_repeats
                    ),
                )
            })
            .collect()
    }
}
