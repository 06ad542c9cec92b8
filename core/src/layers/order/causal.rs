//! Causal: a cast is delivered only after every cast that causally precedes
//! it — every cast its sender had delivered when it cast it, and,
//! transitively, what those depended on.
//!
//! # Timestamps
//! Each member counts, per member of the view, the casts it has delivered
//! (its vector clock for the view). A cast carries its sender's vector, but
//! only the entries that grew since the sender's previous cast in the view:
//! casts of one sender arrive in FIFO order (Mnak) and are delivered in it,
//! so by the time a receiver considers a cast, the sender's earlier casts —
//! and with them the entries they carried — are already satisfied. The
//! sender's own entry is never sent: FIFO covers it. The header is sized by
//! the view and by how much happened between two casts, not by the group:
//! usually a few bytes. When the entries do not fit in one header (a large
//! view where many members cast between two casts of this one), the rest go
//! first in *context* casts of their own, which receivers treat like data
//! casts and do not deliver.
//!
//! A receiver holds each sender's casts in FIFO order (in the pool) and
//! delivers the first one as soon as its vector entries are no more than
//! what it has delivered itself. A member's own casts come back through
//! Local and are ready at once: what they depend on was delivered before
//! they were cast.
//!
//! # View changes
//! Vectors are per view. At the end of a view (`finish_view`) every survivor
//! holds the same casts (Sync's flush) and delivers, in rank order, every
//! cast that becomes ready, until none does: every survivor delivers the
//! same set. What is left depends on a cast that no survivor has (its
//! sender failed and so did every member that had it); it can never be
//! delivered in causal order, and is discarded, alike at every survivor.
//!
//! Header: on every cast.

use serde::{Deserialize, Serialize};

use crate::buffer::{MsgQueue, Pool};
use crate::id::Rank;
use crate::layers::Layer;
use crate::stack::{Cx, Down, Up};

/// Most vector entries one header carries.
const ENTRIES: usize = 12;
/// Bytes the entries may take in one header (with the tag and the count,
/// the header stays within `MAX_HEADER`).
const ENTRY_BYTES: usize = 28;

/// Vector entries: `(member, casts of that member delivered)`.
type Entries = heapless::Vec<(Rank, u32), ENTRIES>;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum Hdr {
    /// Another layer's unreliable cast: not ordered.
    Unrel,
    /// A cast, after the casts these entries count.
    Data(Entries),
    /// No payload: more entries for the sender's next cast.
    Context(Entries),
}

/// Bytes of `v` as a postcard varint.
const fn varint_len(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0xfff_ffff => 4,
        _ => 5,
    }
}

/// The causal order layer.
#[derive(Debug)]
pub(crate) struct Causal<const M: usize> {
    /// Casts of each member delivered here in this view.
    delivered: [u32; M],
    /// What this member's casts so far have told of `delivered`.
    told: [u32; M],
    /// Casts not yet delivered, per sender in FIFO order, headers in place.
    held: [MsgQueue; M],
    /// Delivery stopped for lack of room in the scheduler queue.
    stalled: bool,
}

impl<const M: usize> Causal<M> {
    pub(crate) fn new() -> Self {
        Causal {
            delivered: [0; M],
            told: [0; M],
            held: core::array::from_fn(|_| MsgQueue::default()),
            stalled: false,
        }
    }

    /// The entries that grew since this member's previous cast, as many as
    /// fit one header; `told` is brought up to them.
    fn next_entries(&mut self, cx: &Cx<'_, M>) -> Entries {
        let mut out = Entries::new();
        let mut bytes = 0;
        for r in cx.view.ranks().filter(|r| *r != cx.me()) {
            let i = r.index();
            if self.delivered[i] <= self.told[i] {
                continue;
            }
            let len = varint_len(u32::from(r.0)) + varint_len(self.delivered[i]);
            if bytes + len > ENTRY_BYTES || out.push((r, self.delivered[i])).is_err() {
                break;
            }
            bytes += len;
            self.told[i] = self.delivered[i];
        }
        out
    }

    /// Whether everything this cast's entries count has been delivered
    /// here; `None` when they name a member outside the view or the sender.
    fn ready(&self, from: Rank, entries: &Entries, n: usize) -> Option<bool> {
        let mut ready = true;
        for (r, c) in entries {
            if r.index() >= n || *r == from {
                return None;
            }
            ready &= self.delivered[r.index()] >= *c;
        }
        Some(ready)
    }

    /// Delivers every cast that is ready, in rank order, while there is room.
    fn release(&mut self, cx: &mut Cx<'_, M>, finishing: bool) {
        self.stalled = false;
        let n = cx.view.len();
        loop {
            let mut progress = false;
            for s in 0..n {
                while let Some(bytes) = cx.pool.msgq_front_bytes(&self.held[s]) {
                    let hdr = postcard::take_from_bytes::<Hdr>(bytes).ok().map(|h| h.0);
                    let from = Rank(s as u16);
                    let ready = match &hdr {
                        Some(Hdr::Data(e) | Hdr::Context(e)) => self.ready(from, e, n),
                        _ => None,
                    };
                    match ready {
                        Some(false) => break,
                        Some(true) if !cx.can_release() => {
                            self.stalled = !finishing;
                            return;
                        }
                        _ => {}
                    }
                    let Some((_, mut msg)) = cx.pool.msgq_pop_front(&mut self.held[s]) else {
                        break;
                    };
                    progress = true;
                    match (ready, hdr) {
                        (Some(true), Some(Hdr::Data(_))) => {
                            let _ = cx.pool.pop_header::<Hdr>(&mut msg);
                            self.delivered[s] += 1;
                            if finishing {
                                cx.stats.end_of_view_deliveries += 1;
                            }
                            cx.up(Up::Cast {
                                from,
                                msg,
                                reliable: true,
                            });
                        }
                        (Some(true), _) => cx.free(msg),
                        // Checked on arrival; unreachable.
                        _ => {
                            cx.stats.malformed += 1;
                            cx.free(msg);
                        }
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }

    fn send_context(&mut self, entries: Entries, cx: &mut Cx<'_, M>) {
        let Ok(mut msg) = cx.pool.alloc(cx.headroom()) else {
            // The endpoint admits a cast with slots to spare for this.
            debug_assert!(false, "no buffer for a causal context cast");
            cx.stats.no_buffer += 1;
            return;
        };
        if cx
            .pool
            .push_header(&mut msg, &Hdr::Context(entries))
            .is_err()
        {
            cx.free(msg);
            return;
        }
        cx.stats.causal_context_casts += 1;
        cx.down(Down::Cast {
            msg,
            reliable: true,
        });
    }
}

impl<const M: usize> Layer<M> for Causal<M> {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        match ev {
            Down::Cast {
                mut msg,
                reliable: true,
            } => {
                let mut entries = self.next_entries(cx);
                // Whatever does not fit goes ahead in context casts: FIFO
                // brings them to every member before this cast.
                loop {
                    let more = self.next_entries(cx);
                    if more.is_empty() {
                        break;
                    }
                    self.send_context(core::mem::replace(&mut entries, more), cx);
                }
                if cx.pool.push_header(&mut msg, &Hdr::Data(entries)).is_ok() {
                    cx.down(Down::Cast {
                        msg,
                        reliable: true,
                    });
                } else {
                    cx.free(msg);
                }
            }
            Down::Cast {
                mut msg,
                reliable: false,
            } => {
                if cx.pool.push_header(&mut msg, &Hdr::Unrel).is_ok() {
                    cx.down(Down::Cast {
                        msg,
                        reliable: false,
                    });
                } else {
                    cx.free(msg);
                }
            }
            other => cx.down(other),
        }
    }

    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        let Up::Cast {
            from,
            mut msg,
            reliable,
        } = ev
        else {
            cx.up(ev);
            return;
        };
        let n = cx.view.len();
        let hdr = postcard::take_from_bytes::<Hdr>(cx.pool.head_bytes(&msg))
            .ok()
            .map(|h| h.0);
        match hdr {
            Some(Hdr::Unrel) if !reliable => {
                let _ = cx.pool.pop_header::<Hdr>(&mut msg);
                cx.up(Up::Cast {
                    from,
                    msg,
                    reliable,
                });
            }
            Some(Hdr::Data(e) | Hdr::Context(e))
                if reliable && from.index() < n && self.ready(from, &e, n).is_some() =>
            {
                cx.pool.msgq_push_back(&mut self.held[from.index()], msg, 0);
                self.release(cx, false);
                if !self.held[from.index()].is_empty() {
                    cx.stats.order_held += 1;
                }
            }
            _ => {
                cx.stats.malformed += 1;
                cx.free(msg);
            }
        }
    }

    fn pending(&self) -> bool {
        self.stalled
    }

    fn resume(&mut self, cx: &mut Cx<'_, M>) {
        self.release(cx, false);
    }

    fn finish_view(&mut self, cx: &mut Cx<'_, M>) {
        self.release(cx, true);
        if self.stalled || !cx.can_release() {
            return;
        }
        // Nothing more can become ready: what is left depends on a cast no
        // survivor has.
        for s in 0..cx.view.len() {
            while let Some((_, msg)) = cx.pool.msgq_pop_front(&mut self.held[s]) {
                let data = matches!(
                    postcard::take_from_bytes::<Hdr>(cx.pool.head_bytes(&msg)),
                    Ok((Hdr::Data(_), _))
                );
                if data {
                    cx.stats.causal_discarded += 1;
                }
                cx.free(msg);
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
        *self = Causal::new();
    }

    fn max_header() -> usize {
        // The tag, the entry count, and at most ENTRY_BYTES of entries.
        2 + ENTRY_BYTES
    }
}

/// The encoded length of a header.
#[cfg(test)]
fn encoded_len(h: &Hdr) -> usize {
    let mut buf = [0u8; 256];
    postcard::to_slice(h, &mut buf).map_or(usize::MAX, |b| b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::Msg;
    use crate::layers::testing::Harness;
    use std::vec::Vec;

    fn entries(e: &[(u16, u32)]) -> Entries {
        e.iter().map(|(r, c)| (Rank(*r), *c)).collect()
    }

    fn cast(h: &mut Harness<8>, e: &[(u16, u32)], body: u8) -> Msg {
        let mut m = h.msg(&[body]);
        h.pool()
            .push_header(&mut m, &Hdr::Data(entries(e)))
            .unwrap();
        m
    }

    fn down_headers(h: &mut Harness<8>) -> Vec<Hdr> {
        let mut out = Vec::new();
        for ev in h.take_down() {
            if let Down::Cast { mut msg, .. } = ev {
                out.push(h.pool().pop_header::<Hdr>(&mut msg).unwrap());
                h.pool().free(msg);
            }
        }
        out
    }

    #[test]
    fn a_cast_waits_for_what_its_sender_had_delivered() {
        let mut h = Harness::<8>::new(4, 3);
        let mut c = Causal::<8>::new();
        // 2 had delivered 1's first cast when it cast; that one is late.
        let m = cast(&mut h, &[(1, 1)], 20);
        h.cast_up(&mut c, 2, m);
        let m = cast(&mut h, &[], 21);
        h.cast_up(&mut c, 2, m);
        // 0's cast depends on nothing: it goes at once.
        let m = cast(&mut h, &[], 0);
        h.cast_up(&mut c, 0, m);
        assert_eq!(h.delivered_casts(), [(0, 0)]);
        let m = cast(&mut h, &[], 10);
        h.cast_up(&mut c, 1, m);
        assert_eq!(h.delivered_casts(), [(1, 10), (2, 20), (2, 21)]);
        assert_eq!(c.delivered[..4], [1, 1, 2, 0]);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn casts_carry_only_the_entries_that_grew() {
        let mut h = Harness::<8>::new(4, 0);
        let mut c = Causal::<8>::new();
        let send = |h: &mut Harness<8>, c: &mut Causal<8>| {
            let m = h.msg(b"x");
            h.down(
                c,
                Down::Cast {
                    msg: m,
                    reliable: true,
                },
            );
            down_headers(h)
        };
        assert_eq!(send(&mut h, &mut c), [Hdr::Data(entries(&[]))]);
        for (from, b) in [(2, 20), (1, 10), (2, 21)] {
            let m = cast(&mut h, &[], b);
            h.cast_up(&mut c, from, m);
        }
        let _ = h.delivered_casts();
        assert_eq!(
            send(&mut h, &mut c),
            [Hdr::Data(entries(&[(1, 1), (2, 2)]))]
        );
        // Nothing new since: nothing to say. Its own entry is never sent.
        let m = cast(&mut h, &[], 0);
        h.cast_up(&mut c, 0, m);
        let _ = h.delivered_casts();
        assert_eq!(send(&mut h, &mut c), [Hdr::Data(entries(&[]))]);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn entries_beyond_one_header_go_ahead_in_context_casts() {
        let mut h = Harness::<64>::new(40, 0);
        let mut c = Causal::<64>::new();
        for r in 1..40 {
            c.delivered[r] = 100_000 + r as u32;
        }
        let m = h.msg(b"x");
        h.down(
            &mut c,
            Down::Cast {
                msg: m,
                reliable: true,
            },
        );
        let mut told = Vec::new();
        let down = h.take_down();
        let kinds: Vec<bool> = down
            .iter()
            .map(|e| matches!(e, Down::Cast { .. }))
            .collect();
        assert!(kinds.iter().all(|k| *k));
        let n = down.len();
        for (i, ev) in down.into_iter().enumerate() {
            let Down::Cast { mut msg, .. } = ev else {
                unreachable!()
            };
            let hdr = h.pool().pop_header::<Hdr>(&mut msg).unwrap();
            assert!(encoded_len(&hdr) <= <Causal<64> as Layer<64>>::max_header());
            match hdr {
                Hdr::Context(e) if i + 1 < n => told.extend(e),
                Hdr::Data(e) if i + 1 == n => told.extend(e),
                other => panic!("unexpected {other:?} at {i} of {n}"),
            }
            h.pool().free(msg);
        }
        assert!(n > 2);
        assert_eq!(told.len(), 39);
        assert_eq!(h.stats.causal_context_casts as usize, n - 1);
    }

    #[test]
    fn context_casts_hold_back_what_follows_and_are_not_delivered() {
        let mut h = Harness::<8>::new(3, 0);
        let mut c = Causal::<8>::new();
        let mut m = h.msg(&[]);
        h.pool()
            .push_header(&mut m, &Hdr::Context(entries(&[(2, 1)])))
            .unwrap();
        h.cast_up(&mut c, 1, m);
        let m = cast(&mut h, &[], 10);
        h.cast_up(&mut c, 1, m);
        assert!(h.delivered_casts().is_empty());
        let m = cast(&mut h, &[], 20);
        h.cast_up(&mut c, 2, m);
        assert_eq!(h.delivered_casts(), [(2, 20), (1, 10)]);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn the_end_of_a_view_delivers_the_ready_and_discards_the_orphans() {
        let mut h = Harness::<8>::new(4, 0);
        let mut c = Causal::<8>::new();
        // 1's second cast never reached a survivor; 2's cast depends on it,
        // 3's on 2's.
        let m = cast(&mut h, &[], 10);
        h.cast_up(&mut c, 1, m);
        let m = cast(&mut h, &[(1, 2)], 20);
        h.cast_up(&mut c, 2, m);
        let m = cast(&mut h, &[(2, 1)], 30);
        h.cast_up(&mut c, 3, m);
        assert_eq!(h.delivered_casts(), [(1, 10)]);
        h.run_finish(&mut c);
        assert!(h.delivered_casts().is_empty());
        assert_eq!(h.stats.causal_discarded, 2);
        h.run_finish(&mut c);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn hostile_headers_are_counted_and_dropped() {
        let mut h = Harness::<8>::new(3, 0);
        let mut c = Causal::<8>::new();
        // Naming its own sender, naming a rank outside the view, garbage,
        // an unreliable data cast.
        for (from, e) in [(1, &[(1u16, 1u32)][..]), (1, &[(5, 1)][..])] {
            let m = cast(&mut h, e, 1);
            h.cast_up(&mut c, from, m);
        }
        let m = h.msg(&[7, 7]);
        h.cast_up(&mut c, 1, m);
        let m = cast(&mut h, &[], 1);
        h.up(
            &mut c,
            Up::Cast {
                from: Rank(1),
                msg: m,
                reliable: false,
            },
        );
        assert_eq!(h.stats.malformed, 4);
        assert!(h.delivered_casts().is_empty());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn delivery_waits_for_queue_room() {
        let mut h = Harness::<8>::new(3, 0);
        let mut c = Causal::<8>::new();
        for b in 0..20 {
            let m = cast(&mut h, &[(2, 1)], b);
            h.cast_up(&mut c, 1, m);
        }
        h.squeeze_queue(2 * crate::stack::FANOUT + 3);
        let m = cast(&mut h, &[], 99);
        h.cast_up(&mut c, 2, m);
        let first = h.delivered_casts().len();
        assert!(first < 21 && Layer::<8>::pending(&c));
        h.unsqueeze_queue();
        h.resume(&mut c);
        assert_eq!(first + h.delivered_casts().len(), 21);
        assert_eq!(h.in_use(), 0);
    }
}
