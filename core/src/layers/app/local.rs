//! Local: delivers a member's own casts back to it.
//!
//! Mnak sends a cast to the other members only, so without Local a member
//! never sees its own casts (Ensemble's default, which the Maestro seed warns
//! about). Local copies each reliable cast going down and sends the copy up
//! as a cast from this member. It pushes no header.

use crate::layers::Layer;
use crate::stack::{Cx, Down, Up};

/// The local-delivery layer.
#[derive(Debug, Default)]
pub(crate) struct Local;

impl<const M: usize> Layer<M> for Local {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        if let Down::Cast {
            msg,
            reliable: true,
        } = &ev
        {
            match cx.pool.copy(msg, 0) {
                Ok(copy) => cx.up(Up::Cast {
                    from: cx.me(),
                    msg: copy,
                    reliable: true,
                }),
                // The endpoint admits a cast only with room for this copy.
                Err(_) => {
                    debug_assert!(false, "no buffer for local delivery");
                    cx.stats.no_buffer += 1;
                }
            }
        }
        cx.down(ev);
    }

    fn max_header() -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Harness;

    #[test]
    fn reliable_casts_come_back_up_unreliable_ones_do_not() {
        let mut h = Harness::<4>::new(3, 1);
        let m = h.msg(b"mine");
        h.down(
            &mut Local,
            Down::Cast {
                msg: m,
                reliable: true,
            },
        );
        let m = h.msg(b"ctl");
        h.down(
            &mut Local,
            Down::Cast {
                msg: m,
                reliable: false,
            },
        );
        let up = h.take_up();
        assert_eq!(up.len(), 1);
        match &up[0] {
            Up::Cast { from, msg, .. } => {
                assert_eq!(*from, crate::Rank(1));
                assert_eq!(h.bytes(msg), b"mine");
            }
            other => panic!("unexpected {other:?}"),
        }
        let down = h.take_down();
        assert_eq!(down.len(), 2);
        h.finish(up);
        h.finish(down);
    }
}
