//! Top: the application's end of the stack.
//!
//! Casts and sends that reach Top are application messages (every layer
//! swallows its own control messages), so Top hands them to the application.
//! Other events end here. Top pushes no header.

use crate::layers::Layer;
use crate::stack::{Cx, Up};

/// The top layer.
#[derive(Debug, Default)]
pub(crate) struct Top;

impl<const M: usize> Layer<M> for Top {
    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Cast { .. } | Up::Send { .. } => cx.up(ev),
            Up::Stable => {}
            Up::Datagram { msg, .. } => cx.free(msg),
        }
    }

    fn max_header() -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Harness;
    use crate::stack::Up;

    #[test]
    fn delivers_messages_and_swallows_the_rest() {
        let mut h = Harness::<4>::new(4, 1);
        let msg = h.msg(b"hi");
        h.up(
            &mut Top,
            Up::Cast {
                from: crate::Rank(2),
                msg,
                reliable: true,
            },
        );
        h.up(&mut Top, Up::Stable);
        let out = h.take_up();
        assert_eq!(out.len(), 1);
        h.finish(out);
    }
}
