//! Total: every member delivers every cast in the same order, decided by a
//! sequencer (the view's coordinator, rank 0).
//!
//! # The sequencer's stream
//! Every member, the sequencer included, delivers by walking **the
//! sequencer's stream** as it comes up from below: the sequencer's own casts
//! and its **order** messages, in the order the sequencer sent them. Mnak
//! brings that stream to the other members in FIFO order; Local brings it
//! back to the sequencer itself in the same order, since Local copies casts
//! in the order they go down and no layer between Local and Mnak reorders
//! them. An order is a list of runs `(rank, count)`: "deliver the next
//! `count` casts of `rank`". Casts of the other members are held, per
//! sender, until a run reaches them; the sequencer's own casts are delivered
//! at their place in the stream.
//!
//! The sequencer issues orders for the casts it receives: it counts, per
//! member, the casts that arrived and those it has ordered, and once an
//! input has been handled (`resume`) it orders every arrived cast in one
//! message, one run per member. Nothing else is kept: no list of arrivals.
//!
//! The sequencer never delivers its own casts the moment it makes them, nor
//! a forwarded cast the moment it arrives: both wait for their place in its
//! own stream, as everyone else's do. That is the difference from the
//! "total order by the coordinator" example of the Ensemble C# tutorial,
//! where the coordinator delivered its own casts at once while the copies it
//! forwarded were still in flight, so it saw them in another order than the
//! members did (the test `the_coordinators_own_casts_race_nothing` shows
//! that scenario delivered alike everywhere).
//!
//! # Bounds
//! What a member holds unordered is bounded two ways. The endpoint admits a
//! cast only while the member's own casts not yet delivered back to it in
//! order (`Shared::unordered`) fit its window, so no member runs ahead of
//! the sequencer. And the sequencer stops ordering while the casts covered
//! by its orders that are not yet stable (that some member may still lack)
//! reach a window, so a member missing orders does not fill its pool with
//! casts it cannot deliver. The held casts themselves live in the pool.
//!
//! # View changes
//! Per view: the new coordinator is the new sequencer and the numbering
//! starts again. Sync's flush gives every survivor the same casts of the
//! old view, the sequencer's stream included (up to the cut), and Total
//! delivers what it still holds in `finish_view`, before the next view is
//! installed: first what the stream orders, skipping runs of casts no
//! survivor has, then the casts no order reached, by sender rank and in
//! each sender's order. Every survivor computes the same sequence, and it
//! extends what each delivered before.
//!
//! Header: on every cast.

use heapless::Deque;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::buffer::{Msg, MsgQueue, Pool};
use crate::id::Rank;
use crate::layers::Layer;
use crate::stack::{Backlog, Cx, Down, Up};

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    /// A cast to deliver in total order (unreliable: another layer's
    /// control cast, passed straight up).
    Data,
    /// An order from the sequencer: [`Run`]s in the payload.
    Order,
}

/// "Deliver the next `count` casts of `rank`."
#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    rank: Rank,
    count: u32,
}

/// The sequencer: the view's coordinator.
const SEQUENCER: Rank = Rank::COORDINATOR;
/// Stream tags.
const DATA: u32 = 0;
const ORDER: u32 = 1;
/// Payload bytes of one order message at most (about 30 runs).
const ORDER_BYTES: usize = 256;
/// Order messages the sequencer may have that are not yet stable.
const ORDERS_OUT: usize = 64;
/// The mark of an order message not yet numbered by Mnak.
const UNMARKED: u32 = u32::MAX;

/// The total order layer.
#[derive(Debug)]
pub(crate) struct Total<const M: usize> {
    /// Other members' casts not yet ordered, per sender, in FIFO order.
    held: [MsgQueue; M],
    /// The sequencer's stream not yet walked: its casts and its orders.
    stream: MsgQueue,
    /// The order being walked: its runs not yet started, as its payload.
    order: Option<Msg>,
    /// The run being walked: this many more casts of this member.
    run: Option<(Rank, u32)>,
    /// The walk stopped for lack of room in the scheduler queue.
    stalled: bool,
    /// Sequencer: casts received from each member in this view.
    arrived: [u32; M],
    /// Sequencer: of those, how many an order covers.
    ordered: [u32; M],
    /// Sequencer: the sum of `arrived - ordered`.
    unordered: u32,
    /// Sequencer: where the next order starts looking, so that every member
    /// gets its turn when one order cannot hold a run for each.
    scan_from: u16,
    /// Sequencer: orders not yet stable, as (Mnak's count of this member's
    /// casts once the order went out, casts the order covers).
    outstanding: Deque<(u32, u32), ORDERS_OUT>,
    /// Sequencer: casts covered by `outstanding`.
    covered_out: u32,
    /// A view change has begun here (`Down::Flush` went by): no more
    /// orders in this view (see `issue`).
    flushing: bool,
}

impl<const M: usize> Total<M> {
    pub(crate) fn new() -> Self {
        Total {
            held: core::array::from_fn(|_| MsgQueue::default()),
            stream: MsgQueue::default(),
            order: None,
            run: None,
            stalled: false,
            arrived: [0; M],
            ordered: [0; M],
            unordered: 0,
            scan_from: 1,
            outstanding: Deque::new(),
            covered_out: 0,
            flushing: false,
        }
    }

    fn is_sequencer(cx: &Cx<'_, M>) -> bool {
        cx.me() == SEQUENCER
    }

    /// Hands a cast of `from` to the layer above.
    fn deliver(from: Rank, msg: Msg, cx: &mut Cx<'_, M>, finishing: bool) {
        if finishing {
            cx.stats.end_of_view_deliveries += 1;
        }
        if from == cx.me() {
            let u = &mut cx.shared.unordered;
            u.msgs = u.msgs.saturating_sub(cx.pool.chain_len(&msg) as u32);
            u.bytes = u.bytes.saturating_sub(cx.pool.len(&msg) as u32);
        }
        cx.up(Up::Cast {
            from,
            msg,
            reliable: true,
        });
    }

    /// Walks the stream as far as it can. When the view is ending
    /// (`finishing`), a run whose casts did not all arrive is cut short
    /// (no survivor has them), and once the stream is exhausted the casts
    /// no order reached follow, by rank.
    fn walk(&mut self, cx: &mut Cx<'_, M>, finishing: bool) {
        self.stalled = false;
        loop {
            if !cx.can_release() {
                self.stalled = !finishing;
                return;
            }
            if let Some((r, k)) = self.run {
                if k == 0 {
                    self.run = None;
                    continue;
                }
                let next = self
                    .held
                    .get_mut(r.index())
                    .and_then(|q| cx.pool.msgq_pop_front(q));
                match next {
                    Some((_, msg)) => {
                        self.run = Some((r, k - 1));
                        Self::deliver(r, msg, cx, finishing);
                        continue;
                    }
                    None if finishing => {
                        self.run = None;
                        continue;
                    }
                    // Ordered, not here yet: Mnak will bring it.
                    None => return,
                }
            }
            if let Some(order) = self.order.as_mut() {
                if cx.pool.head_bytes(order).is_empty() {
                    if let Some(m) = self.order.take() {
                        cx.free(m);
                    }
                    continue;
                }
                let n = cx.view.len();
                match cx.pool.pop_header::<Run>(order) {
                    Some(run) if run.rank != SEQUENCER && run.rank.index() < n && run.count > 0 => {
                        self.run = Some((run.rank, run.count));
                    }
                    _ => {
                        // Only a hostile sender makes this; every member
                        // drops the rest of the order alike.
                        cx.stats.malformed += 1;
                        if let Some(m) = self.order.take() {
                            cx.free(m);
                        }
                    }
                }
                continue;
            }
            match cx.pool.msgq_pop_front(&mut self.stream) {
                Some((DATA, msg)) => {
                    Self::deliver(SEQUENCER, msg, cx, finishing);
                    continue;
                }
                Some((_, msg)) => {
                    self.order = Some(msg);
                    continue;
                }
                None => {}
            }
            if !finishing {
                return;
            }
            let Some(r) = (0..cx.view.len()).find(|r| !self.held[*r].is_empty()) else {
                return;
            };
            if let Some((_, msg)) = cx.pool.msgq_pop_front(&mut self.held[r]) {
                Self::deliver(Rank(r as u16), msg, cx, true);
            }
        }
    }

    /// A cast (or order) of `from` came up.
    fn receive(&mut self, from: Rank, hdr: Hdr, msg: Msg, cx: &mut Cx<'_, M>) {
        let s = from.index();
        if s >= cx.view.len() {
            cx.free(msg);
            return;
        }
        let data = hdr == Hdr::Data;
        match hdr {
            Hdr::Data if from == SEQUENCER => cx.pool.msgq_push_back(&mut self.stream, msg, DATA),
            Hdr::Data => {
                cx.pool.msgq_push_back(&mut self.held[s], msg, 0);
                if Self::is_sequencer(cx) {
                    self.arrived[s] += 1;
                    self.unordered += 1;
                }
            }
            Hdr::Order if from == SEQUENCER => cx.pool.msgq_push_back(&mut self.stream, msg, ORDER),
            Hdr::Order => {
                cx.stats.malformed += 1;
                cx.free(msg);
                return;
            }
        }
        self.walk(cx, false);
        // The cast just queued is last in its queue: still there if the
        // queue is not empty.
        let queue = if from == SEQUENCER {
            &self.stream
        } else {
            &self.held[s]
        };
        if data && !queue.is_empty() {
            cx.stats.order_held += 1;
        }
    }

    /// Sequencer: orders may wait while too many casts they cover could
    /// still be missing somewhere.
    fn throttled(&self, cx: &Cx<'_, M>) -> bool {
        let limit = crate::endpoint::window_slots(cx.pool.capacity(), cx.view.len(), true);
        self.outstanding.is_full() || self.covered_out as usize >= limit
    }

    /// Sequencer: forgets orders every member now has.
    fn prune(&mut self, cx: &Cx<'_, M>) {
        let stable = cx.shared.stability[SEQUENCER.index()];
        while let Some(&(mark, covered)) = self.outstanding.front() {
            if mark == UNMARKED || mark > stable {
                break;
            }
            self.outstanding.pop_front();
            self.covered_out = self.covered_out.saturating_sub(covered);
        }
    }

    /// Sequencer: orders what arrived, as long as it may.
    ///
    /// Not once a view change has begun: this member is about to report
    /// (or has reported) how many casts it sent, and the cut stops there.
    /// An order sent later would come back through Local and be followed
    /// here, while every other survivor stops short of it and orders those
    /// casts by rank instead.
    fn issue(&mut self, cx: &mut Cx<'_, M>) {
        if self.flushing {
            return;
        }
        let n = cx.view.len();
        while self.unordered > 0 && !self.throttled(cx) && cx.can_release() {
            let Ok(mut msg) = cx.pool.alloc(cx.headroom()) else {
                cx.stats.no_buffer += 1;
                return;
            };
            let room = cx.geometry.frag_payload.min(ORDER_BYTES);
            let (mut used, mut covered) = (0, 0u32);
            let first = usize::from(self.scan_from).clamp(1, n.max(2) - 1);
            for s in (first..n).chain(1..first) {
                let count = self.arrived[s] - self.ordered[s];
                if count == 0 {
                    continue;
                }
                if used + Run::POSTCARD_MAX_SIZE > room {
                    self.scan_from = s as u16;
                    break;
                }
                let run = Run {
                    rank: Rank(s as u16),
                    count,
                };
                let wrote = cx.pool.write_tail(&mut msg, |out| {
                    postcard::to_slice(&run, out).ok().map(|b| b.len())
                });
                let Ok(()) = wrote else { break };
                used = cx.pool.len(&msg);
                self.ordered[s] = self.arrived[s];
                covered += count;
            }
            if covered == 0 || cx.pool.push_header(&mut msg, &Hdr::Order).is_err() {
                cx.free(msg);
                return;
            }
            self.unordered -= covered;
            self.covered_out += covered;
            // Cannot be full: `throttled` said so.
            let _ = self.outstanding.push_back((UNMARKED, covered));
            cx.stats.total_orders += 1;
            cx.down(Down::Cast {
                msg,
                reliable: true,
            });
        }
    }
}

impl<const M: usize> Layer<M> for Total<M> {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        match ev {
            Down::Cast { mut msg, reliable } => {
                let (slots, bytes) = (cx.pool.chain_len(&msg), cx.pool.len(&msg));
                if cx.pool.push_header(&mut msg, &Hdr::Data).is_err() {
                    cx.free(msg);
                    return;
                }
                if reliable {
                    cx.shared.unordered.msgs += slots as u32;
                    cx.shared.unordered.bytes += bytes as u32;
                }
                cx.down(Down::Cast { msg, reliable });
            }
            Down::Flush => {
                self.flushing = true;
                cx.down(Down::Flush);
            }
            other => cx.down(other),
        }
    }

    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Cast {
                from,
                mut msg,
                reliable,
            } => match cx.pool.pop_header::<Hdr>(&mut msg) {
                Some(hdr) if reliable => self.receive(from, hdr, msg, cx),
                Some(Hdr::Data) => cx.up(Up::Cast {
                    from,
                    msg,
                    reliable,
                }),
                _ => {
                    cx.stats.malformed += 1;
                    cx.free(msg);
                }
            },
            Up::Stable => {
                self.prune(cx);
                cx.up(Up::Stable);
            }
            other => cx.up(other),
        }
    }

    fn pending(&self) -> bool {
        self.stalled
            || self.outstanding.back().is_some_and(|o| o.0 == UNMARKED)
            || (self.unordered > 0 && !self.flushing)
    }

    fn resume(&mut self, cx: &mut Cx<'_, M>) {
        // `resume` runs only once the scheduler queue is empty, so every
        // order sent so far has been numbered by Mnak: this member's count
        // of its own casts bounds each one's number from above.
        let sent = cx.shared.received[cx.me().index()];
        for o in self.outstanding.iter_mut().filter(|o| o.0 == UNMARKED) {
            o.0 = sent;
        }
        self.prune(cx);
        if self.stalled {
            self.walk(cx, false);
        }
        if Self::is_sequencer(cx) {
            self.issue(cx);
        }
    }

    fn finish_view(&mut self, cx: &mut Cx<'_, M>) {
        self.walk(cx, true);
    }

    fn clear(&mut self, pool: &mut Pool<'_>) {
        for q in self.held.iter_mut() {
            pool.msgq_clear(q);
        }
        pool.msgq_clear(&mut self.stream);
        if let Some(m) = self.order.take() {
            pool.free(m);
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        self.clear(&mut cx.pool);
        *self = Total::new();
        cx.shared.unordered = Backlog::default();
    }

    fn max_header() -> usize {
        Hdr::POSTCARD_MAX_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Harness;
    use std::vec;
    use std::vec::Vec;

    fn cast(h: &mut Harness<8>, hdr: Hdr, body: &[u8]) -> Msg {
        let mut m = h.msg(body);
        h.pool().push_header(&mut m, &hdr).unwrap();
        m
    }

    fn order(h: &mut Harness<8>, runs: &[(u16, u32)]) -> Msg {
        let mut body = Vec::new();
        for (r, c) in runs {
            let mut buf = [0u8; 16];
            let run = Run {
                rank: Rank(*r),
                count: *c,
            };
            body.extend_from_slice(postcard::to_slice(&run, &mut buf).unwrap());
        }
        cast(h, Hdr::Order, &body)
    }

    /// The casts sent down since the last call, as they would come back up
    /// through Local: (header, message without it).
    fn sent(h: &mut Harness<8>) -> Vec<(Hdr, Msg)> {
        let mut out = Vec::new();
        for ev in h.take_down() {
            if let Down::Cast { mut msg, .. } = ev {
                let hdr = h.pool().pop_header::<Hdr>(&mut msg).unwrap();
                out.push((hdr, msg));
            } else {
                panic!("unexpected {ev:?}");
            }
        }
        out
    }

    fn runs(h: &mut Harness<8>, msg: Msg) -> Vec<(u16, u32)> {
        let mut msg = msg;
        let mut out = Vec::new();
        while !h.pool().head_bytes(&msg).is_empty() {
            let r = h.pool().pop_header::<Run>(&mut msg).unwrap();
            out.push((r.rank.0, r.count));
        }
        h.pool().free(msg);
        out
    }

    #[test]
    fn members_hold_casts_until_the_sequencers_stream_orders_them() {
        let mut h = Harness::<8>::new(4, 2);
        let mut t = Total::<8>::new();
        for (from, b) in [(1, 10), (3, 30), (1, 11), (2, 20)] {
            let m = cast(&mut h, Hdr::Data, &[b]);
            h.cast_up(&mut t, from, m);
        }
        assert!(h.delivered_casts().is_empty(), "nothing is ordered yet");
        // The stream: an order for 3 then 1, a cast of the sequencer, an
        // order for the rest.
        let m = order(&mut h, &[(3, 1), (1, 1)]);
        h.cast_up(&mut t, 0, m);
        assert_eq!(h.delivered_casts(), [(3, 30), (1, 10)]);
        let m = cast(&mut h, Hdr::Data, &[0]);
        h.cast_up(&mut t, 0, m);
        assert_eq!(h.delivered_casts(), [(0, 0)]);
        // An order may arrive before the casts it names: they wait, and so
        // does the rest of the stream behind it.
        let m = order(&mut h, &[(2, 1), (1, 2)]);
        h.cast_up(&mut t, 0, m);
        let m = cast(&mut h, Hdr::Data, &[1]);
        h.cast_up(&mut t, 0, m);
        assert_eq!(h.delivered_casts(), [(2, 20), (1, 11)]);
        let m = cast(&mut h, Hdr::Data, &[12]);
        h.cast_up(&mut t, 1, m);
        assert_eq!(h.delivered_casts(), [(1, 12), (0, 1)]);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn the_sequencer_orders_what_arrived_and_delivers_by_its_own_stream() {
        let mut h = Harness::<8>::new(3, 0);
        let mut t = Total::<8>::new();
        // Its own cast goes down with a header and comes back through Local.
        let m = h.msg(&[0]);
        h.down(
            &mut t,
            Down::Cast {
                msg: m,
                reliable: true,
            },
        );
        assert_eq!(h.shared.unordered.msgs, 1);
        let mut own = sent(&mut h);
        let (Hdr::Data, m0) = own.remove(0) else {
            panic!()
        };
        for (from, b) in [(2, 20), (1, 10), (2, 21)] {
            let m = cast(&mut h, Hdr::Data, &[b]);
            h.cast_up(&mut t, from, m);
        }
        assert!(h.delivered_casts().is_empty());
        // Once the input is handled, one order for all that arrived.
        assert!(Layer::<8>::pending(&t));
        h.resume(&mut t);
        let mut orders = sent(&mut h);
        assert_eq!(orders.len(), 1);
        let (Hdr::Order, o) = orders.remove(0) else {
            panic!()
        };
        let copy = h.pool().copy(&o, 0).unwrap();
        assert_eq!(runs(&mut h, copy), [(1, 1), (2, 2)]);
        assert_eq!(h.stats.total_orders, 1);
        // The sequencer delivers in its stream's order: its own cast first
        // (it went down before the order), then the order's runs.
        let mut m0 = m0;
        h.pool().push_header(&mut m0, &Hdr::Data).unwrap();
        h.cast_up(&mut t, 0, m0);
        assert_eq!(h.delivered_casts(), [(0, 0)]);
        assert_eq!(h.shared.unordered.msgs, 0);
        let mut o = o;
        h.pool().push_header(&mut o, &Hdr::Order).unwrap();
        h.cast_up(&mut t, 0, o);
        assert_eq!(h.delivered_casts(), [(1, 10), (2, 20), (2, 21)]);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn the_sequencer_stops_ordering_while_its_orders_are_unstable() {
        let mut h = Harness::<8>::new(2, 0);
        let mut t = Total::<8>::new();
        let limit = crate::endpoint::window_slots(128, 2, true);
        let mut orders = 0;
        for i in 0..limit + 5 {
            let m = cast(&mut h, Hdr::Data, &[i as u8]);
            h.cast_up(&mut t, 1, m);
            // Mnak numbers each order as it goes down.
            h.shared.received[0] += 1;
            h.resume(&mut t);
            let s = sent(&mut h);
            orders += s.len();
            // Orders come back through Local: deliver, free.
            for (_, m) in s {
                h.pool().free(m);
            }
            let _ = h.delivered_casts();
        }
        assert_eq!(
            orders, limit,
            "no more than a window of casts unstable in orders"
        );
        assert!(Layer::<8>::pending(&t));
        // Stability catches up: the rest is ordered in one go.
        h.shared.stability[0] = h.shared.received[0];
        h.up(&mut t, Up::Stable);
        let _ = h.take_up();
        h.resume(&mut t);
        let s = sent(&mut h);
        assert_eq!(s.len(), 1);
        let (_, m) = s.into_iter().next().unwrap();
        assert_eq!(runs(&mut h, m), [(1, 5)]);
        Layer::<8>::clear(&mut t, &mut h.pool());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn the_end_of_a_view_delivers_the_stream_then_the_rest_by_rank() {
        let mut h = Harness::<8>::new(4, 3);
        let mut t = Total::<8>::new();
        for (from, b) in [(3, 30), (2, 20), (1, 10), (2, 21), (3, 31)] {
            let m = cast(&mut h, Hdr::Data, &[b]);
            h.cast_up(&mut t, from, m);
        }
        // The order names two casts of 1 and one of 3; only one of 1 made
        // it to any survivor. Then a cast of the sequencer.
        let m = order(&mut h, &[(1, 2), (3, 1)]);
        h.cast_up(&mut t, 0, m);
        let m = cast(&mut h, Hdr::Data, &[0]);
        h.cast_up(&mut t, 0, m);
        assert_eq!(h.delivered_casts(), [(1, 10)]);
        h.run_finish(&mut t);
        assert_eq!(
            h.delivered_casts(),
            [(3, 30), (0, 0), (2, 20), (2, 21), (3, 31)]
        );
        assert_eq!(h.stats.end_of_view_deliveries, 5);
        // Done: a second call does nothing.
        h.run_finish(&mut t);
        assert!(h.take_up().is_empty());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn hostile_orders_and_headers_are_counted_and_dropped() {
        let mut h = Harness::<8>::new(3, 1);
        let mut t = Total::<8>::new();
        // An order from someone other than the sequencer.
        let m = order(&mut h, &[(1, 1)]);
        h.cast_up(&mut t, 2, m);
        // Runs naming the sequencer, a rank outside the view, zero casts.
        for bad in [(0u16, 1u32), (7, 1), (2, 0)] {
            let m = order(&mut h, &[bad]);
            h.cast_up(&mut t, 0, m);
        }
        // No header at all.
        let m = h.msg(&[]);
        h.cast_up(&mut t, 0, m);
        assert_eq!(h.stats.malformed, 5);
        assert!(h.delivered_casts().is_empty());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn delivery_waits_for_queue_room_and_resumes() {
        let mut h = Harness::<8>::new(2, 1);
        let mut t = Total::<8>::new();
        for b in 0..20 {
            let m = cast(&mut h, Hdr::Data, &[b]);
            h.cast_up(&mut t, 0, m);
            let _ = h.delivered_casts();
        }
        for b in 0..20 {
            let m = cast(&mut h, Hdr::Data, &[100 + b]);
            h.cast_up(&mut t, 1, m);
        }
        h.squeeze_queue(2 * crate::stack::FANOUT + 3);
        let m = order(&mut h, &[(1, 20)]);
        h.cast_up(&mut t, 0, m);
        let first = h.delivered_casts().len();
        assert!(first < 20 && Layer::<8>::pending(&t));
        h.unsqueeze_queue();
        h.resume(&mut t);
        assert_eq!(first + h.delivered_casts().len(), 20);
        assert_eq!(h.in_use(), 0);
    }

    /// Three members, each a Total over its own pool, joined by FIFO
    /// channels (one per sender and receiver, the sender's own channel
    /// playing Local) that an adversary drains in a random interleaving
    /// while every member, the sequencer included, keeps casting.
    ///
    /// This is the scenario the Ensemble tutorial's "total order by the
    /// coordinator" example gets wrong: there the coordinator delivers its
    /// own casts the moment it makes them and forwards the others' casts as
    /// they arrive, so a cast of its own overtakes, at the coordinator only,
    /// the forwarded casts still in flight to the members; and a member's
    /// cast reaches the member itself before it has been ordered. Here
    /// every member must deliver the same sequence.
    #[test]
    fn the_coordinators_own_casts_race_nothing() {
        use std::collections::VecDeque;
        const N: usize = 3;
        for seed in 1..=40u64 {
            let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut next = move |n: usize| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (rng % n as u64) as usize
            };
            let mut hs: Vec<Harness<8>> = (0..N).map(|i| Harness::new(N, i as u16)).collect();
            let mut ts: Vec<Total<8>> = (0..N).map(|_| Total::new()).collect();
            // chan[from][to]: datagrams in flight, in FIFO order.
            let mut chan: Vec<Vec<VecDeque<Vec<u8>>>> = vec![vec![VecDeque::new(); N]; N];
            let mut got: Vec<Vec<(u8, u8)>> = vec![Vec::new(); N];
            let mut casts = [0u8; N];
            // After any input: the member resumes (the sequencer orders),
            // its casts go into its channels, its deliveries are noted.
            let settle = |i: usize,
                          hs: &mut Vec<Harness<8>>,
                          ts: &mut Vec<Total<8>>,
                          chan: &mut Vec<Vec<VecDeque<Vec<u8>>>>,
                          got: &mut Vec<Vec<(u8, u8)>>| {
                hs[i].resume(&mut ts[i]);
                for ev in hs[i].take_down() {
                    let Down::Cast { msg, .. } = ev else {
                        panic!("unexpected {ev:?}")
                    };
                    let b = hs[i].bytes(&msg);
                    hs[i].pool().free(msg);
                    for to in chan[i].iter_mut() {
                        to.push_back(b.clone());
                    }
                }
                let ups = hs[i].take_up();
                for ev in &ups {
                    if let Up::Cast { msg, .. } = ev {
                        let b = hs[i].bytes(msg);
                        got[i].push((b[0], b[1]));
                    }
                }
                hs[i].finish(ups);
            };
            loop {
                let busy: Vec<(usize, usize)> = (0..N)
                    .flat_map(|f| (0..N).map(move |t| (f, t)))
                    .filter(|(f, t)| !chan[*f][*t].is_empty())
                    .collect();
                let may_cast = casts.iter().any(|c| *c < 12);
                if busy.is_empty() && !may_cast {
                    break;
                }
                if may_cast && (busy.is_empty() || next(3) == 0) {
                    let i = next(N);
                    if casts[i] == 12 {
                        continue;
                    }
                    let m = hs[i].msg(&[i as u8, casts[i]]);
                    casts[i] += 1;
                    hs[i].down(
                        &mut ts[i],
                        Down::Cast {
                            msg: m,
                            reliable: true,
                        },
                    );
                    settle(i, &mut hs, &mut ts, &mut chan, &mut got);
                    continue;
                }
                let (f, t) = busy[next(busy.len())];
                let Some(b) = chan[f][t].pop_front() else {
                    continue;
                };
                let m = hs[t].msg(&b);
                hs[t].cast_up(&mut ts[t], f as u16, m);
                settle(t, &mut hs, &mut ts, &mut chan, &mut got);
            }
            assert_eq!(got[0].len(), 3 * 12, "seed {seed}: {:?}", got[0]);
            for i in 1..N {
                assert_eq!(got[i], got[0], "seed {seed}: member {i} differs");
            }
            for (h, t) in hs.iter_mut().zip(ts.iter_mut()) {
                Layer::<8>::clear(t, &mut h.pool());
                assert_eq!(h.in_use(), 0);
            }
        }
    }

    #[test]
    fn the_sequencer_stops_ordering_once_a_view_change_begins() {
        let mut h = Harness::<8>::new(2, 0);
        let mut t = Total::<8>::new();
        h.down(&mut t, Down::Flush);
        assert!(matches!(h.take_down()[..], [Down::Flush]));
        let m = cast(&mut h, Hdr::Data, &[1]);
        h.cast_up(&mut t, 1, m);
        // Its count of its own casts went into its flush report: an order
        // sent now would be past the cut, followed here and nowhere else.
        assert!(!Layer::<8>::pending(&t));
        h.resume(&mut t);
        assert!(h.take_down().is_empty());
        assert!(h.delivered_casts().is_empty());
        h.run_finish(&mut t);
        assert_eq!(h.delivered_casts(), [(1, 1)]);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn unreliable_casts_pass_straight_through() {
        let mut h = Harness::<8>::new(3, 1);
        let mut t = Total::<8>::new();
        let m = cast(&mut h, Hdr::Data, &[5]);
        h.up(
            &mut t,
            Up::Cast {
                from: Rank(2),
                msg: m,
                reliable: false,
            },
        );
        assert_eq!(h.delivered_casts(), [(2, 5)]);
        let m = h.msg(&[1]);
        h.down(
            &mut t,
            Down::Cast {
                msg: m,
                reliable: false,
            },
        );
        assert_eq!(h.shared.unordered.msgs, 0);
        let s = sent(&mut h);
        assert_eq!(s.len(), 1);
        h.finish(
            s.into_iter()
                .map(|(_, m)| Up::Cast {
                    from: Rank(0),
                    msg: m,
                    reliable: false,
                })
                .collect(),
        );
        assert_eq!(h.in_use(), 0);
    }
}
