//! Switch: carries the coordinator's `change_protocol` into the next view.
//!
//! The endpoint hands Switch the new stack (checked, and only at the
//! coordinator) and asks Gmp for a view change; when the proposal passes on
//! its way up, Switch puts the new stack in it, so every member of the next
//! view builds the same stack. Switch pushes no header.

use crate::layers::Layer;
use crate::stack::{Cx, StackSpec, Up};

/// The protocol-switching layer.
#[derive(Debug, Default)]
pub(crate) struct Switch {
    pending: Option<StackSpec>,
}

impl Switch {
    /// The stack the next view should run.
    pub(crate) fn request(&mut self, stack: StackSpec) {
        self.pending = Some(stack);
    }
}

impl<const M: usize> Layer<M> for Switch {
    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        if let Up::Prepare = ev {
            if let (Some(stack), Some(p)) = (self.pending.take(), cx.shared.proposal.as_mut()) {
                p.stack = stack;
            }
        }
        cx.up(ev);
    }

    fn max_header() -> usize {
        0
    }
}
