//! Agree: agreed (safe) delivery. A cast is delivered only once every
//! member of the view has received it, so no member delivers a cast that a
//! member moving on to the next view might lack — not even one that fails
//! right after delivering it (without Agree, a member's own cast comes back
//! to it through Local at once, and it may fail before the cast leaves).
//!
//! Stable already knows who has what: its stability vector counts, per
//! sender, the casts (as Mnak numbers them, fragments and other layers'
//! casts included) that every member has received. Agree marks each cast it
//! holds with Mnak's count of its sender's casts at the time: a bound on the
//! cast's own number, since Mnak counted it before passing it up. A cast is
//! safe once the sender's stability reaches its mark. A member's own casts
//! come back through Local before Mnak has numbered them; they are marked
//! at the next `resume`, which runs only once the scheduler queue is empty,
//! hence after Mnak has numbered them.
//!
//! While a view change counts members as failed, stability leaves them out;
//! Agree then delivers nothing more until the view ends, so that everything
//! it delivers in a view was received by all its members. At the end of the
//! view (`finish_view`), after the flush, every survivor has the same casts
//! and Agree delivers all it still holds.
//!
//! Agree keeps each sender's casts in their FIFO order and releases
//! different senders independently; above it, Total and Causal order what
//! it releases (in the property stacks it sits below them, so Total's
//! orders are safe too). It pushes no header.

use crate::buffer::{MsgQueue, Pool};
use crate::id::Rank;
use crate::layers::Layer;
use crate::stack::{Cx, Up};

/// The mark of a member's own cast not yet numbered by Mnak.
const UNMARKED: u32 = u32::MAX;

/// The agreed-delivery layer.
#[derive(Debug)]
pub(crate) struct Agree<const M: usize> {
    /// Casts not yet safe, per sender in FIFO order, tagged with their mark.
    held: [MsgQueue; M],
    /// Some of this member's own casts wait for their mark.
    unmarked: bool,
    /// Delivery stopped for lack of room in the scheduler queue.
    stalled: bool,
}

impl<const M: usize> Agree<M> {
    pub(crate) fn new() -> Self {
        Agree {
            held: core::array::from_fn(|_| MsgQueue::default()),
            unmarked: false,
            stalled: false,
        }
    }

    /// Delivers every cast that is safe, while there is room.
    fn release(&mut self, cx: &mut Cx<'_, M>) {
        self.stalled = false;
        // Members counted as failed are left out of stability.
        if !cx.shared.failed.is_empty() {
            return;
        }
        for s in 0..cx.view.len() {
            let stable = cx.shared.stability[s];
            while cx
                .pool
                .msgq_front_tag(&self.held[s])
                .is_some_and(|mark| mark != UNMARKED && mark <= stable)
            {
                if !cx.can_release() {
                    self.stalled = true;
                    return;
                }
                if let Some((_, msg)) = cx.pool.msgq_pop_front(&mut self.held[s]) {
                    cx.up(Up::Cast {
                        from: Rank(s as u16),
                        msg,
                        reliable: true,
                    });
                }
            }
        }
    }
}

impl<const M: usize> Layer<M> for Agree<M> {
    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Cast {
                from,
                msg,
                reliable: true,
            } => {
                let Some(q) = self
                    .held
                    .get_mut(from.index())
                    .filter(|_| from.index() < cx.view.len())
                else {
                    cx.free(msg);
                    return;
                };
                let mark = if from == cx.me() {
                    self.unmarked = true;
                    UNMARKED
                } else {
                    // Mnak counted this cast (and perhaps later ones) before
                    // passing it up: an upper bound of its number, plus one.
                    cx.shared.received[from.index()]
                };
                cx.pool.msgq_push_back(q, msg, mark);
                self.release(cx);
                if !self.held[from.index()].is_empty() {
                    cx.stats.order_held += 1;
                }
            }
            Up::Stable => {
                self.release(cx);
                cx.up(Up::Stable);
            }
            other => cx.up(other),
        }
    }

    fn pending(&self) -> bool {
        self.stalled || self.unmarked
    }

    fn resume(&mut self, cx: &mut Cx<'_, M>) {
        if core::mem::take(&mut self.unmarked) {
            let me = cx.me().index();
            let sent = cx.shared.received[me];
            if let Some(q) = self.held.get(me) {
                cx.pool.msgq_retag(q, |t| (t == UNMARKED).then_some(sent));
            }
        }
        self.release(cx);
    }

    fn finish_view(&mut self, cx: &mut Cx<'_, M>) {
        // After the flush every survivor holds the same casts: all are
        // delivered, sender by sender.
        self.unmarked = false;
        self.stalled = false;
        for s in 0..cx.view.len() {
            while !self.held[s].is_empty() {
                if !cx.can_release() {
                    return;
                }
                if let Some((_, msg)) = cx.pool.msgq_pop_front(&mut self.held[s]) {
                    cx.stats.end_of_view_deliveries += 1;
                    cx.up(Up::Cast {
                        from: Rank(s as u16),
                        msg,
                        reliable: true,
                    });
                }
            }
        }
    }

    fn clear(&mut self, pool: &mut Pool<'_>) {
        for q in self.held.iter_mut() {
            pool.msgq_clear(q);
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        self.clear(&mut cx.pool);
        *self = Agree::new();
    }

    fn max_header() -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Harness;

    fn stable(h: &mut Harness<8>, a: &mut Agree<8>, vector: &[u32]) {
        h.shared.stability[..vector.len()].copy_from_slice(vector);
        h.up(a, Up::Stable);
    }

    #[test]
    fn casts_wait_until_every_member_has_them() {
        let mut h = Harness::<8>::new(3, 0);
        let mut a = Agree::<8>::new();
        // Mnak has delivered two casts of 1 (it counted both first).
        h.shared.received[1] = 2;
        let m = h.msg(&[10]);
        h.cast_up(&mut a, 1, m);
        let m = h.msg(&[11]);
        h.cast_up(&mut a, 1, m);
        h.shared.received[2] = 5;
        let m = h.msg(&[20]);
        h.cast_up(&mut a, 2, m);
        assert!(h.delivered_casts().is_empty());
        stable(&mut h, &mut a, &[0, 1, 5]);
        // 1's marks are 2 (a conservative bound): not yet; 2's is 5: safe.
        assert_eq!(h.delivered_casts(), [(2, 20)]);
        stable(&mut h, &mut a, &[0, 2, 5]);
        assert_eq!(h.delivered_casts(), [(1, 10), (1, 11)]);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn own_casts_are_marked_once_mnak_has_numbered_them() {
        let mut h = Harness::<8>::new(2, 0);
        let mut a = Agree::<8>::new();
        // Local's copy comes up before Mnak numbers the cast.
        let m = h.msg(&[1]);
        h.cast_up(&mut a, 0, m);
        // Everything Mnak numbered so far is stable; this cast was not yet
        // among it, so it must wait.
        stable(&mut h, &mut a, &[0, 0]);
        assert!(h.delivered_casts().is_empty());
        assert!(Layer::<8>::pending(&a));
        // The queue empties: Mnak has numbered it as cast 7 of 7.
        h.shared.received[0] = 7;
        h.resume(&mut a);
        assert!(h.delivered_casts().is_empty());
        stable(&mut h, &mut a, &[6, 0]);
        assert!(h.delivered_casts().is_empty());
        stable(&mut h, &mut a, &[7, 0]);
        assert_eq!(h.delivered_casts(), [(0, 1)]);
        assert!(!Layer::<8>::pending(&a));
    }

    #[test]
    fn nothing_is_delivered_while_members_are_counted_failed_and_all_at_the_end() {
        let mut h = Harness::<8>::new(3, 2);
        let mut a = Agree::<8>::new();
        for (from, b, rcv) in [(1, 10, 1), (0, 0, 1), (1, 11, 2)] {
            h.shared.received[from as usize] = rcv;
            let m = h.msg(&[b]);
            h.cast_up(&mut a, from, m);
        }
        h.shared.failed.insert(Rank(0));
        stable(&mut h, &mut a, &[1, 2, 0]);
        assert!(h.delivered_casts().is_empty());
        h.run_finish(&mut a);
        assert_eq!(h.delivered_casts(), [(0, 0), (1, 10), (1, 11)]);
        assert_eq!(h.stats.end_of_view_deliveries, 3);
        h.run_finish(&mut a);
        assert!(h.take_up().is_empty());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn release_waits_for_queue_room() {
        let mut h = Harness::<8>::new(2, 0);
        let mut a = Agree::<8>::new();
        h.shared.received[1] = 30;
        for b in 0..30 {
            let m = h.msg(&[b]);
            h.cast_up(&mut a, 1, m);
        }
        h.squeeze_queue(2 * crate::stack::FANOUT + 4);
        stable(&mut h, &mut a, &[0, 30]);
        let first = h.delivered_casts().len();
        assert!(first < 30 && Layer::<8>::pending(&a));
        h.unsqueeze_queue();
        h.resume(&mut a);
        assert_eq!(first + h.delivered_casts().len(), 30);
        assert_eq!(h.in_use(), 0);
    }
}
