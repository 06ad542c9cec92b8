//! Stable: which casts every member has, and which some member has.
//!
//! Each member keeps the acknowledgement matrix `acks[t][s]`: how many casts
//! of member `s` member `t` has received in order. Its own row is what Mnak
//! publishes as `received`; the other rows come from the other members'
//! gossip. From the matrix Stable computes, for each sender `s`:
//! - the **stability** vector, the minimum of column `s` over live members:
//!   casts every live member has, which Mnak may stop keeping;
//! - the **NumCast** vector, the maximum of column `s`: casts some member
//!   has, which tells Mnak about losses no later message revealed;
//! - the **holder** of those NumCast casts, whom Mnak asks when `s` itself
//!   has failed.
//!
//! Gossip is an unreliable cast of the member's own row. It goes out at once
//! after `stable_threshold` new casts, received or sent (so that windows
//! reopen quickly under load, and so that receivers, who must hear of a
//! sender's casts from the sender's own row before calling them stable, free
//! their buffers as fast as the sender frees its own), at the next `stable_sweep` when the row has changed,
//! and otherwise at a slowly backing-off interval, because a lost gossip in
//! a quiet group must still be repeated eventually.
//!
//! Header: on every cast.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::buffer::Msg;
use crate::id::Rank;
use crate::layers::Layer;
use crate::stack::{Cx, Down, Up};
use crate::time::Instant;

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    /// Another layer's cast.
    Data,
    /// The sender's acknowledgement row (in the payload).
    Gossip,
}

/// In a quiet group, gossip at most this many sweeps apart.
const MAX_IDLE_SWEEPS: u32 = 16;

/// The stability layer.
#[derive(Debug)]
pub(crate) struct Stable<const M: usize> {
    /// When the sweep timer next fires.
    next_sweep: Option<Instant>,
    /// Sweeps since the last gossip, and how many to wait when nothing changes.
    idle_sweeps: u32,
    idle_every: u32,
    /// Reliable casts that passed since the last gossip.
    new_since_gossip: u32,
    /// Sum of the row last gossiped. Rows only grow, so a different sum is a
    /// changed row. (The matrix's own row cannot tell: `recompute` refreshes
    /// it from Mnak without gossiping it.)
    gossiped_total: u64,
}

impl<const M: usize> Stable<M> {
    pub(crate) fn new() -> Self {
        Stable {
            next_sweep: None,
            idle_sweeps: 0,
            idle_every: 1,
            new_since_gossip: 0,
            gossiped_total: 0,
        }
    }

    fn my_row_changed(&self, cx: &Cx<'_, M>) -> bool {
        row_total(&cx.shared.received[..cx.view.len()]) != self.gossiped_total
    }

    fn gossip(&mut self, cx: &mut Cx<'_, M>) {
        let n = cx.view.len();
        Self::store_my_row(cx);
        self.new_since_gossip = 0;
        self.idle_sweeps = 0;
        self.gossiped_total = row_total(&cx.shared.received[..n]);
        let msg = cx.pool.alloc(cx.headroom()).ok().and_then(|mut msg| {
            let mut body = [0u8; 5 * crate::id::MAX_GROUP_SIZE + 5];
            let encoded = postcard::to_slice(&cx.shared.received[..n], &mut body)
                .ok()?
                .len();
            match cx
                .pool
                .append(&mut msg, &body[..encoded])
                .and_then(|()| cx.pool.push_header(&mut msg, &Hdr::Gossip))
            {
                Ok(()) => Some(msg),
                Err(_) => {
                    cx.free(msg);
                    None
                }
            }
        });
        match msg {
            Some(msg) => {
                cx.stats.stable_gossip += 1;
                cx.down(Down::Cast {
                    msg,
                    reliable: false,
                });
            }
            None => cx.stats.no_buffer += 1,
        }
        self.recompute(cx);
    }

    fn receive_gossip(&mut self, from: Rank, msg: Msg, cx: &mut Cx<'_, M>) {
        let n = cx.view.len();
        let row = postcard::from_bytes::<heapless::Vec<u32, M>>(cx.pool.head_bytes(&msg));
        cx.free(msg);
        let Ok(row) = row else {
            cx.stats.malformed += 1;
            return;
        };
        if row.len() != n || from.index() >= n {
            cx.stats.malformed += 1;
            return;
        }
        // Rows only grow; a reordered older gossip must not shrink one.
        let mut grew = false;
        for (s, r) in row.iter().enumerate() {
            if *r > cx.acks.get(from.index(), s) {
                cx.acks.set(from.index(), s, *r);
                grew = true;
            }
        }
        if grew {
            self.recompute(cx);
        }
    }

    /// Copies my row (Mnak's received counts) into the matrix.
    fn store_my_row(cx: &mut Cx<'_, M>) {
        let me = cx.me().index();
        for s in 0..cx.view.len() {
            let v = cx.shared.received[s];
            cx.acks.set(me, s, v);
        }
    }

    /// Counts one more reliable cast in my row; gossips at the threshold.
    fn count_new(&mut self, cx: &mut Cx<'_, M>) {
        self.new_since_gossip += 1;
        // A gossip and the Stable events it may cause are more than one
        // event's FANOUT. When Mnak has just released a run of casts (or
        // Frag split one) the queue may be nearly full, and gossiping after
        // each `stable_threshold` of them overflowed it; the gossip waits
        // for the next cast that finds room, or for the sweep.
        if self.new_since_gossip >= cx.params.stable_threshold && cx.can_release() {
            self.gossip(cx);
        }
    }

    /// Recomputes the vectors from the matrix and announces them if they moved.
    fn recompute(&mut self, cx: &mut Cx<'_, M>) {
        let n = cx.view.len();
        Self::store_my_row(cx);
        let mut changed = false;
        for s in 0..n {
            let mut min = u32::MAX;
            let mut max = 0;
            let mut holder = cx.me();
            for t in cx.view.ranks().filter(|t| !cx.shared.failed.contains(*t)) {
                let v = cx.acks.get(t.index(), s);
                min = min.min(v);
                if v > max {
                    max = v;
                    holder = t;
                }
            }
            if min == u32::MAX {
                min = 0;
            }
            // Stability and NumCast never go backwards, whatever gossip says.
            let (stab, num) = (&mut cx.shared.stability[s], &mut cx.shared.numcast[s]);
            if min > *stab {
                *stab = min;
                changed = true;
            }
            if max > *num {
                *num = max;
                changed = true;
            }
            cx.shared.holder[s] = holder;
        }
        if changed {
            cx.down(Down::Stable);
            cx.up(Up::Stable);
        }
    }
}

fn row_total(row: &[u32]) -> u64 {
    row.iter().map(|v| u64::from(*v)).sum()
}

impl<const M: usize> Layer<M> for Stable<M> {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        if self.next_sweep.is_none() {
            self.next_sweep = Some(cx.now + cx.params.stable_sweep);
        }
        match ev {
            Down::Cast { mut msg, reliable } => {
                if cx.pool.push_header(&mut msg, &Hdr::Data).is_ok() {
                    cx.down(Down::Cast { msg, reliable });
                    if reliable {
                        // My own casts are in my row too: the other members
                        // cannot call them stable before they hear of it.
                        self.count_new(cx);
                    }
                } else {
                    cx.free(msg);
                }
            }
            other => cx.down(other),
        }
    }

    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        if self.next_sweep.is_none() {
            self.next_sweep = Some(cx.now + cx.params.stable_sweep);
        }
        let Up::Cast {
            from,
            mut msg,
            reliable,
        } = ev
        else {
            cx.up(ev);
            return;
        };
        match cx.pool.pop_header::<Hdr>(&mut msg) {
            Some(Hdr::Data) => {
                cx.up(Up::Cast {
                    from,
                    msg,
                    reliable,
                });
                if reliable {
                    self.count_new(cx);
                }
            }
            Some(Hdr::Gossip) => self.receive_gossip(from, msg, cx),
            None => {
                cx.stats.malformed += 1;
                cx.free(msg);
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.next_sweep
    }

    fn timeout(&mut self, cx: &mut Cx<'_, M>) {
        self.idle_sweeps += 1;
        if self.my_row_changed(cx) {
            self.idle_every = 1;
            self.gossip(cx);
        } else if self.idle_sweeps >= self.idle_every {
            self.idle_every = (self.idle_every * 2).min(MAX_IDLE_SWEEPS);
            self.gossip(cx);
        }
        self.next_sweep = Some(cx.now + cx.params.stable_sweep);
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        *self = Stable::new();
        cx.acks.clear();
    }

    fn max_header() -> usize {
        Hdr::POSTCARD_MAX_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Harness;
    use std::vec::Vec;

    fn gossip_from(h: &mut Harness<4>, row: &[u32]) -> Msg {
        let mut buf = [0u8; 64];
        let body = postcard::to_slice(row, &mut buf).unwrap();
        let mut m = h.msg(body);
        h.pool().push_header(&mut m, &Hdr::Gossip).unwrap();
        m
    }

    #[test]
    fn stability_is_the_column_minimum_numcast_the_maximum() {
        let mut h = Harness::<4>::new(3, 0);
        let mut s = Stable::<4>::new();
        h.shared.received[..3].copy_from_slice(&[5, 4, 9]);
        let m = gossip_from(&mut h, &[5, 2, 9]);
        h.up(
            &mut s,
            Up::Cast {
                from: Rank(1),
                msg: m,
                reliable: false,
            },
        );
        let m = gossip_from(&mut h, &[3, 4, 7]);
        h.up(
            &mut s,
            Up::Cast {
                from: Rank(2),
                msg: m,
                reliable: false,
            },
        );
        assert_eq!(h.shared.stability[..3], [3, 2, 7]);
        assert_eq!(h.shared.numcast[..3], [5, 4, 9]);
        assert_eq!(h.shared.holder[1], Rank(0));
        // Both directions were told.
        let (up, down) = (h.take_up(), h.take_down());
        assert!(down.iter().any(|e| matches!(e, Down::Stable)));
        assert!(up.iter().any(|e| matches!(e, Up::Stable)));
        h.finish(up);
        h.finish(down);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn failed_members_do_not_hold_stability_back() {
        let mut h = Harness::<4>::new(3, 0);
        let mut s = Stable::<4>::new();
        h.shared.received[..3].copy_from_slice(&[5, 5, 5]);
        let m = gossip_from(&mut h, &[5, 5, 5]);
        h.up(
            &mut s,
            Up::Cast {
                from: Rank(1),
                msg: m,
                reliable: false,
            },
        );
        assert_eq!(
            h.shared.stability[..3],
            [0, 0, 0],
            "member 2 has not acknowledged"
        );
        h.shared.failed.insert(Rank(2));
        let t = s.deadline().unwrap();
        h.timeout(&mut s, t);
        assert_eq!(h.shared.stability[..3], [5, 5, 5]);
        let (up, down) = (h.take_up(), h.take_down());
        h.finish(up);
        h.finish(down);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn gossips_after_threshold_and_on_sweep_only_when_changed() {
        let mut h = Harness::<4>::new(2, 0);
        h.params.stable_threshold = 3;
        let mut s = Stable::<4>::new();
        for i in 0..3 {
            h.shared.received[1] = i + 1;
            let mut m = h.msg(b"app");
            h.pool().push_header(&mut m, &Hdr::Data).unwrap();
            h.up(
                &mut s,
                Up::Cast {
                    from: Rank(1),
                    msg: m,
                    reliable: true,
                },
            );
        }
        assert_eq!(h.stats.stable_gossip, 1);
        let (up, down) = (h.take_up(), h.take_down());
        assert_eq!(
            up.iter().filter(|e| matches!(e, Up::Cast { .. })).count(),
            3
        );
        h.finish(up);
        h.finish(down);
        // Unchanged row: gossip backs off (1, 2, 4.. sweeps apart).
        let mut sent = Vec::new();
        for _ in 0..8 {
            let t = s.deadline().unwrap();
            h.timeout(&mut s, t);
            sent.push(h.stats.stable_gossip);
            let down = h.take_down();
            h.finish(down);
        }
        assert_eq!(sent, [2, 2, 3, 3, 3, 3, 4, 4]);
        // A changed row is gossiped at the next sweep.
        h.shared.received[1] = 10;
        let t = s.deadline().unwrap();
        h.timeout(&mut s, t);
        assert_eq!(h.stats.stable_gossip, 5);
        let (up, down) = (h.take_up(), h.take_down());
        h.finish(up);
        h.finish(down);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn threshold_gossip_waits_for_room_in_the_queue() {
        let mut h = Harness::<4>::new(2, 0);
        h.params.stable_threshold = 2;
        let mut s = Stable::<4>::new();
        let cast = |h: &mut Harness<4>, s: &mut Stable<4>, n: u32| {
            h.shared.received[1] = n;
            let mut m = h.msg(b"app");
            h.pool().push_header(&mut m, &Hdr::Data).unwrap();
            h.up(
                s,
                Up::Cast {
                    from: Rank(1),
                    msg: m,
                    reliable: true,
                },
            );
        };
        // As after Mnak released a run of casts: only the room it keeps.
        h.squeeze_queue(2 * crate::stack::FANOUT);
        for n in 1..=3 {
            cast(&mut h, &mut s, n);
        }
        assert_eq!(
            h.stats.stable_gossip, 0,
            "no gossip while the queue is short"
        );
        assert_eq!(h.stats.queue_overflow, 0);
        h.unsqueeze_queue();
        cast(&mut h, &mut s, 4);
        assert_eq!(h.stats.stable_gossip, 1, "the next cast with room gossips");
        let (up, down) = (h.take_up(), h.take_down());
        assert_eq!(
            up.iter().filter(|e| matches!(e, Up::Cast { .. })).count(),
            4
        );
        h.finish(up);
        h.finish(down);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn a_row_changed_by_casts_below_the_threshold_is_gossiped_at_the_next_sweep() {
        let mut h = Harness::<4>::new(2, 0);
        let mut s = Stable::<4>::new();
        let sweep = |h: &mut Harness<4>, s: &mut Stable<4>| {
            let t = s.deadline().unwrap();
            h.timeout(s, t);
            let (up, down) = (h.take_up(), h.take_down());
            h.finish(up);
            h.finish(down);
        };
        h.shared.received[1] = 1;
        let m = gossip_from(&mut h, &[0, 0]);
        h.up(
            &mut s,
            Up::Cast {
                from: Rank(1),
                msg: m,
                reliable: false,
            },
        );
        // A quiet group: gossip backs off to every 16 sweeps.
        for _ in 0..40 {
            sweep(&mut h, &mut s);
        }
        // A cast below the threshold arrives, then a gossip makes Stable
        // recompute (refreshing its copy of my row without gossiping it).
        h.shared.received[1] = 2;
        let m = gossip_from(&mut h, &[2, 2]);
        h.up(
            &mut s,
            Up::Cast {
                from: Rank(1),
                msg: m,
                reliable: false,
            },
        );
        let sent = h.stats.stable_gossip;
        sweep(&mut h, &mut s);
        assert_eq!(
            h.stats.stable_gossip,
            sent + 1,
            "the changed row goes at the next sweep"
        );
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn malformed_gossip_is_counted() {
        let mut h = Harness::<4>::new(3, 0);
        let mut s = Stable::<4>::new();
        let m = gossip_from(&mut h, &[1, 2]); // wrong length for a 3-member view
        h.up(
            &mut s,
            Up::Cast {
                from: Rank(1),
                msg: m,
                reliable: false,
            },
        );
        let mut m = h.msg(&[0xff; 3]);
        h.pool().push_header(&mut m, &Hdr::Gossip).unwrap();
        h.up(
            &mut s,
            Up::Cast {
                from: Rank(1),
                msg: m,
                reliable: false,
            },
        );
        assert_eq!(h.stats.malformed, 2);
        assert_eq!(h.in_use(), 0);
    }
}
