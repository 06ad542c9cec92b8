//! Drop: discards received messages at random, at the seeded `drop_rate`.
//!
//! Placed under the reliability layers (the stack checker insists), it makes
//! a real network lossy on purpose, so that Mnak's and Pt2pt's recovery can
//! be watched on real sockets. The endpoint's seed drives the choice, so a
//! run in the simulator is reproducible. Drop pushes no header.

use crate::config::Params;
use crate::layers::Layer;
use crate::stack::{Cx, Up};

/// The dropping layer (named `DropLayer` because `Drop` is a Rust trait).
#[derive(Debug)]
pub(crate) struct DropLayer {
    rate: f32,
}

impl DropLayer {
    pub(crate) fn new(params: &Params) -> Self {
        DropLayer {
            rate: params.drop_rate,
        }
    }
}

impl<const M: usize> Layer<M> for DropLayer {
    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Cast { msg, .. } | Up::Send { msg, .. } if cx.rng.chance(self.rate) => {
                cx.stats.test_drops += 1;
                cx.free(msg);
            }
            other => cx.up(other),
        }
    }

    fn max_header() -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rank;
    use crate::layers::testing::Harness;

    #[test]
    fn drops_about_the_configured_fraction() {
        let mut h = Harness::<4>::new(2, 1);
        let mut d = DropLayer { rate: 0.25 };
        for _ in 0..2000 {
            let m = h.msg(b"x");
            h.up(
                &mut d,
                Up::Cast {
                    from: Rank(0),
                    msg: m,
                    reliable: true,
                },
            );
            let up = h.take_up();
            h.finish(up);
        }
        let dropped = h.stats.test_drops;
        assert!((400..600).contains(&dropped), "{dropped}");
        assert_eq!(h.in_use(), 0);
    }
}
