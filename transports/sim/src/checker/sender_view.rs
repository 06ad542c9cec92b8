//! No delivery outside the sender's view: a message delivered in view V
//! came from a member of V and was sent in V — accepted in V
//! (`SendView::Current`), or held for the next view (`SendView::Next`) when
//! V is the sender's next view.

use super::{Check, EndState, Views, Violation};
use crate::node::endpoint_id;
use crate::trace::{Entry, Record, view_name};

const NAME: &str = "sender's view";

/// The sender-view check.
#[derive(Debug, Default)]
pub struct SenderView {
    found: Vec<Violation>,
}

impl SenderView {
    /// A fresh check.
    pub fn new() -> Self {
        SenderView::default()
    }
}

impl Check for SenderView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, views: &Views) {
        let Entry::Delivered(d) = &rec.entry else {
            return;
        };
        // An unrecognisable or never accepted message is no creation's business.
        let Some(id) = d.id.filter(|id| views.accepted(id)) else {
            return;
        };
        let Some(here) = views.current(rec.node) else {
            self.found.push(Violation::at(
                NAME,
                rec,
                format!("delivered {id} before installing any view"),
            ));
            return;
        };
        if views.rank_in(here, endpoint_id(id.origin)).is_none() {
            self.found.push(Violation::at(
                NAME,
                rec,
                format!(
                    "delivered {id} in view {}, which n{} is not a member of",
                    view_name(here),
                    id.origin
                ),
            ));
            return;
        }
        match views.sent_view(&id) {
            Some(v) if v == here => {}
            Some(v) => self.found.push(Violation::at(
                NAME,
                rec,
                format!(
                    "delivered {id} in view {}, but it was sent in view {}",
                    view_name(here),
                    view_name(v)
                ),
            )),
            None => self.found.push(Violation::at(
                NAME,
                rec,
                format!(
                    "delivered {id} in view {}, but n{} held it for a next view it has not installed",
                    view_name(here),
                    id.origin
                ),
            )),
        }
    }

    fn finish(&mut self, _end: &EndState, _views: &Views) -> Vec<Violation> {
        std::mem::take(&mut self.found)
    }
}
