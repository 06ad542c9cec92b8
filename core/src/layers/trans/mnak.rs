//! Mnak: reliable FIFO multicast with negative acknowledgements.
//!
//! Every reliable cast gets the sender's next sequence number. Receivers
//! deliver each member's casts in order, keep early arrivals when the pool
//! has room, and ask for what is missing with a NAK naming every hole of the
//! next 64 casts in a bitmap. Losses show up two
//! ways: a gap before a message that did arrive, or, for the last messages
//! of a burst, the NumCast vector from Stable saying that some member has
//! more of a sender's casts than this one.
//!
//! Every member keeps every cast it has delivered (and the sender every cast
//! it has sent) until Stable reports it stable. So when a sender fails, any
//! live member that has its casts can retransmit them: a NAK for a failed
//! sender goes to the member Stable names as holding the most of its casts.
//! NAKs are repeated every `mnak_nak_retry` while the gap stays open, and
//! one NAK is answered with at most `mnak_retrans_max` retransmissions.
//!
//! Mnak publishes its received counts (the member's row of Stable's
//! acknowledgement matrix) and the backlog of its own unstable casts
//! (Flow's cast window).
//!
//! Header: on every cast ([`CastHdr`]) and every send ([`SendHdr`]).

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::buffer::{Msg, Pool, SlotQueue};
use crate::id::{Rank, RankSet};
use crate::layers::Layer;
use crate::stack::{Backlog, Cx, Down, Up};
use crate::time::Instant;

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum CastHdr {
    /// Not sequenced (another layer's control message).
    Unrel,
    /// The sender's cast number `seq`.
    Data(u32),
}

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum SendHdr {
    /// Another layer's send.
    Plain,
    /// "Please send me `origin`'s casts numbered `lo + i` for every bit
    /// `i` set in `missing`": all the holes of a 64-cast window at once.
    Nak { origin: Rank, lo: u32, missing: u64 },
    /// `origin`'s cast number `seq`, retransmitted.
    Retrans { origin: Rank, seq: u32 },
}

/// How far ahead of the next expected cast an early arrival may be.
const AHEAD_LIMIT: u32 = 1 << 16;
/// Slots kept free for control messages: early arrivals never take them.
const RESERVE: usize = 8;

#[derive(Debug, Default)]
struct Sender {
    /// Casts delivered in order (for this member itself: casts sent).
    next: u32,
    /// Delivered (or sent) casts not yet stable, tagged by number.
    kept: SlotQueue,
    /// Early arrivals, tagged by number.
    ahead: SlotQueue,
    /// Casts known to exist: highest number seen plus one, or NumCast.
    known: u32,
    /// When a NAK for this sender was last sent, and up to which number.
    nak_at: Option<Instant>,
    naked_hi: u32,
}

impl Sender {
    fn has_gap(&self) -> bool {
        self.next < self.known
    }
}

/// The reliable multicast layer.
#[derive(Debug)]
pub(crate) struct Mnak<const M: usize> {
    senders: [Sender; M],
    /// Senders whose early arrivals are in order but wait for queue room.
    pending: RankSet,
    /// The NAK retry interval, cached for `deadline`.
    retry: core::time::Duration,
    /// Whether `Up::CutReached` has been sent for the cut in force.
    cut_reported: bool,
}

impl<const M: usize> Mnak<M> {
    pub(crate) fn new() -> Self {
        Mnak {
            senders: core::array::from_fn(|_| Sender::default()),
            pending: RankSet::EMPTY,
            retry: core::time::Duration::from_millis(100),
            cut_reported: false,
        }
    }

    fn receive(&mut self, s: Rank, seq: u32, msg: Msg, cx: &mut Cx<'_, M>) {
        let me = cx.me();
        let Some(snd) = self
            .senders
            .get_mut(s.index())
            .filter(|_| s != me && s.index() < cx.view.len())
        else {
            cx.free(msg);
            return;
        };
        if seq < snd.next {
            cx.stats.duplicates += 1;
            cx.free(msg);
            return;
        }
        if seq - snd.next >= AHEAD_LIMIT {
            cx.stats.malformed += 1;
            cx.free(msg);
            return;
        }
        // During a view change Sync limits what may be delivered: nothing of
        // a failed member beyond what this member had (until the cut says
        // more), nothing of anyone beyond the cut. Later casts wait in
        // `ahead` in case the cut wants them.
        let limit = cx.shared.limit.get(s.index()).copied().unwrap_or(u32::MAX);
        snd.known = snd.known.max(seq + 1).min(limit);
        if seq == snd.next && seq < limit {
            self.deliver(s, msg, cx);
            self.deliver_ready(s, cx);
            self.maybe_nak(s, cx);
        } else {
            if cx.pool.free_slots() > RESERVE {
                if let Err(dup) = cx.pool.queue_insert_sorted(&mut snd.ahead, msg, seq) {
                    cx.stats.duplicates += 1;
                    cx.free(dup);
                }
            } else {
                cx.stats.no_buffer += 1;
                cx.free(msg);
            }
            self.maybe_nak(s, cx);
        }
    }

    /// Delivers the next cast of `s`, keeping it until it is stable.
    fn deliver(&mut self, s: Rank, msg: Msg, cx: &mut Cx<'_, M>) {
        // Early arrivals are a cache: when the pool is down to its reserve,
        // they give way to the cast that can be delivered now (they will be
        // asked for again). Otherwise a pool full of early arrivals that
        // wait for this very cast would never move.
        while cx.pool.free_slots() <= RESERVE && self.evict_early_arrival(cx) {}
        let Some(snd) = self.senders.get_mut(s.index()) else {
            cx.free(msg);
            return;
        };
        // The copy is kept until the cast is stable, like an early arrival,
        // so it must not take the reserve either: a pool filled to the last
        // slot by kept casts could no longer receive the gossip that makes
        // them stable, and the group would deadlock.
        let kept = (cx.pool.free_slots() > RESERVE)
            .then(|| cx.pool.copy(&msg, 0).ok())
            .flatten();
        let copy = match kept {
            Some(c) => c,
            None => {
                // Cannot keep it, so must not deliver it: ask again later.
                cx.stats.no_buffer += 1;
                cx.free(msg);
                return;
            }
        };
        let seq = snd.next;
        if let Err(m) = cx.pool.queue_push_back(&mut snd.kept, msg, seq) {
            cx.free(m);
        }
        snd.next += 1;
        cx.shared.received[s.index()] = snd.next;
        cx.up(Up::Cast {
            from: s,
            msg: copy,
            reliable: true,
        });
        self.check_cut(cx);
    }

    /// Drops the latest early arrival of the sender with the most of them.
    fn evict_early_arrival(&mut self, cx: &mut Cx<'_, M>) -> bool {
        let Some(snd) = self
            .senders
            .iter_mut()
            .filter(|s| !s.ahead.is_empty())
            .max_by_key(|s| s.ahead.len())
        else {
            return false;
        };
        match cx.pool.queue_pop_back(&mut snd.ahead) {
            Some((_, m)) => {
                cx.stats.no_buffer += 1;
                cx.free(m);
                true
            }
            None => false,
        }
    }

    /// Delivers early arrivals of `s` that are now in order, while there is room.
    fn deliver_ready(&mut self, s: Rank, cx: &mut Cx<'_, M>) {
        loop {
            let Some(snd) = self.senders.get_mut(s.index()) else {
                return;
            };
            let limit = cx.shared.limit.get(s.index()).copied().unwrap_or(u32::MAX);
            if cx.pool.queue_front_tag(&snd.ahead) != Some(snd.next) || snd.next >= limit {
                break;
            }
            if !cx.can_release() {
                self.pending.insert(s);
                return;
            }
            if let Some((_, msg)) = cx.pool.queue_pop_front(&mut snd.ahead) {
                self.deliver(s, msg, cx);
            }
        }
        self.pending.remove(s);
    }

    /// Sends a NAK for the missing casts of `s` if one is due: when the
    /// retry interval has passed, or when a cast not asked for yet is missing.
    fn maybe_nak(&mut self, s: Rank, cx: &mut Cx<'_, M>) {
        let Some(snd) = self.senders.get_mut(s.index()) else {
            return;
        };
        if !snd.has_gap() {
            snd.nak_at = None;
            return;
        }
        let lo = snd.next;
        let window = (snd.known - lo).min(64);
        let mut missing = if window >= 64 {
            u64::MAX
        } else {
            (1u64 << window) - 1
        };
        for tag in cx
            .pool
            .queue_tags(&snd.ahead)
            .take_while(|t| *t < lo + window)
        {
            missing &= !(1u64 << (tag - lo));
        }
        if missing == 0 {
            // Everything up to `known` is here but waits (for the cut's
            // limit or for queue room): nothing to ask for; look again at
            // the next retry rather than at once.
            snd.nak_at = Some(cx.now);
            return;
        }
        let highest = lo + 63 - missing.leading_zeros();
        // A retry asks for every hole; a NAK between retries asks only for
        // holes not asked for yet, so that finding a new hole does not fetch
        // the old ones twice. Only retries move the retry clock, so that a
        // steady stream of new holes cannot postpone the old ones forever.
        let retry_due = snd
            .nak_at
            .is_none_or(|at| cx.now >= at + cx.params.mnak_nak_retry);
        let missing = if retry_due {
            snd.nak_at = Some(cx.now);
            missing
        } else {
            let asked = snd.naked_hi.saturating_sub(lo);
            missing & if asked >= 64 { 0 } else { u64::MAX << asked }
        };
        if missing == 0 {
            return;
        }
        snd.naked_hi = snd.naked_hi.max(highest + 1);
        // Ask the sender itself while it lives; otherwise whoever holds most of its casts.
        let failed = &cx.shared.failed;
        let target = if !failed.contains(s) {
            s
        } else {
            // The cut names a survivor that has them; before a cut, Stable's
            // holder is the best guess.
            let cut_holder = cx.shared.cut_holder.get(s.index()).copied().flatten();
            match cut_holder.or_else(|| cx.shared.holder.get(s.index()).copied()) {
                Some(h) if h != cx.me() && !failed.contains(h) => h,
                _ => return,
            }
        };
        let Ok(mut msg) = cx.pool.alloc(cx.headroom()) else {
            cx.stats.no_buffer += 1;
            return;
        };
        if cx
            .pool
            .push_header(
                &mut msg,
                &SendHdr::Nak {
                    origin: s,
                    lo,
                    missing,
                },
            )
            .is_err()
        {
            cx.free(msg);
            return;
        }
        cx.stats.naks += 1;
        cx.down(Down::Send {
            to: target,
            msg,
            reliable: false,
        });
    }

    /// Answers a NAK from `to` with the casts of `origin` this member keeps.
    fn retransmit(&mut self, to: Rank, origin: Rank, lo: u32, missing: u64, cx: &mut Cx<'_, M>) {
        if to == origin || to == cx.me() || cx.view.member(to).is_none() {
            return;
        }
        let Some(snd) = self.senders.get(origin.index()) else {
            return;
        };
        let wanted = (0..64u32)
            .filter(|i| missing & (1 << i) != 0)
            .map(|i| lo.saturating_add(i));
        for seq in wanted
            .take_while(|seq| *seq < snd.next)
            .take(cx.params.mnak_retrans_max as usize)
        {
            if !cx.can_release() || !cx.can_transmit() {
                return;
            }
            let Some(Ok(mut copy)) = cx.pool.queue_copy(&snd.kept, seq, cx.headroom()) else {
                continue;
            };
            if cx
                .pool
                .push_header(&mut copy, &SendHdr::Retrans { origin, seq })
                .is_err()
            {
                cx.free(copy);
                return;
            }
            cx.stats.cast_retransmissions += 1;
            cx.down(Down::Send {
                to,
                msg: copy,
                reliable: false,
            });
        }
    }

    /// Applies new limits from Sync (a freeze, or the cut): what is known to
    /// exist is what the limit says, early arrivals now allowed are
    /// delivered, and what is missing is asked for.
    fn on_limits(&mut self, cx: &mut Cx<'_, M>) {
        let me = cx.me();
        for s in cx.view.ranks().filter(|s| *s != me) {
            let limit = cx.shared.limit.get(s.index()).copied().unwrap_or(u32::MAX);
            if let Some(snd) = self
                .senders
                .get_mut(s.index())
                .filter(|_| limit != u32::MAX)
            {
                snd.known = if cx.shared.cut_active {
                    limit
                } else {
                    snd.known.min(limit)
                };
            }
            self.deliver_ready(s, cx);
            if cx.can_release() {
                self.maybe_nak(s, cx);
            }
        }
        self.check_cut(cx);
    }

    /// Tells Sync once every sender's casts are delivered up to the cut.
    fn check_cut(&mut self, cx: &mut Cx<'_, M>) {
        if !cx.shared.cut_active || self.cut_reported {
            return;
        }
        let reached = cx.view.ranks().all(|s| {
            let next = self.senders.get(s.index()).map_or(0, |snd| snd.next);
            next >= cx.shared.limit.get(s.index()).copied().unwrap_or(0)
        });
        if reached {
            self.cut_reported = true;
            cx.up(Up::CutReached);
        }
    }

    /// Frees what is now stable and asks for what NumCast says is missing.
    fn on_stable(&mut self, cx: &mut Cx<'_, M>) {
        let me = cx.me();
        for s in cx.view.ranks() {
            let Some(snd) = self.senders.get_mut(s.index()) else {
                continue;
            };
            let stable = cx.shared.stability[s.index()];
            while cx
                .pool
                .queue_front_tag(&snd.kept)
                .is_some_and(|t| t < stable)
            {
                if let Some((_, m)) = cx.pool.queue_pop_front(&mut snd.kept) {
                    cx.free(m);
                }
            }
            if s == me {
                cx.shared.unstable = Backlog {
                    msgs: snd.kept.len() as u32,
                    bytes: cx.pool.queue_bytes(&snd.kept) as u32,
                };
            } else {
                snd.known = snd.known.max(cx.shared.numcast[s.index()]);
                // Without room now, the NAK goes at the next timeout
                // (`deadline` is due as soon as a gap is known).
                if cx.can_release() {
                    self.maybe_nak(s, cx);
                }
            }
        }
    }
}

impl<const M: usize> Layer<M> for Mnak<M> {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        self.retry = cx.params.mnak_nak_retry;
        match ev {
            Down::Cast {
                mut msg,
                reliable: true,
            } => {
                let me = cx.me();
                let Some(snd) = self.senders.get_mut(me.index()) else {
                    cx.free(msg);
                    return;
                };
                let seq = snd.next;
                match cx.pool.copy(&msg, 0) {
                    Ok(copy) => {
                        let len = cx.pool.len(&copy) as u32;
                        if let Err(m) = cx.pool.queue_push_back(&mut snd.kept, copy, seq) {
                            cx.free(m);
                        }
                        cx.shared.unstable.msgs += 1;
                        cx.shared.unstable.bytes += len;
                    }
                    Err(_) => {
                        // The endpoint admits a cast only with room for this copy.
                        debug_assert!(false, "no buffer to keep a cast");
                        cx.stats.no_buffer += 1;
                    }
                }
                snd.next += 1;
                cx.shared.received[me.index()] = snd.next;
                if cx.pool.push_header(&mut msg, &CastHdr::Data(seq)).is_ok() {
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
                if cx.pool.push_header(&mut msg, &CastHdr::Unrel).is_ok() {
                    cx.down(Down::Cast {
                        msg,
                        reliable: false,
                    });
                } else {
                    cx.free(msg);
                }
            }
            Down::Send {
                to,
                mut msg,
                reliable,
            } => {
                if cx.pool.push_header(&mut msg, &SendHdr::Plain).is_ok() {
                    cx.down(Down::Send { to, msg, reliable });
                } else {
                    cx.free(msg);
                }
            }
            Down::Stable => {
                self.on_stable(cx);
                cx.down(Down::Stable);
            }
            Down::Flush => self.on_limits(cx),
            Down::Cut => {
                self.cut_reported = false;
                self.on_limits(cx);
            }
            other => cx.down(other),
        }
    }

    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Cast { from, mut msg, .. } => match cx.pool.pop_header::<CastHdr>(&mut msg) {
                Some(CastHdr::Data(seq)) => self.receive(from, seq, msg, cx),
                Some(CastHdr::Unrel) => cx.up(Up::Cast {
                    from,
                    msg,
                    reliable: false,
                }),
                None => {
                    cx.stats.malformed += 1;
                    cx.free(msg);
                }
            },
            Up::Send {
                from,
                mut msg,
                reliable,
            } => match cx.pool.pop_header::<SendHdr>(&mut msg) {
                Some(SendHdr::Plain) => cx.up(Up::Send {
                    from,
                    msg,
                    reliable,
                }),
                Some(SendHdr::Nak {
                    origin,
                    lo,
                    missing,
                }) => {
                    cx.free(msg);
                    self.retransmit(from, origin, lo, missing, cx);
                }
                Some(SendHdr::Retrans { origin, seq }) => self.receive(origin, seq, msg, cx),
                None => {
                    cx.stats.malformed += 1;
                    cx.free(msg);
                }
            },
            other => cx.up(other),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let mut due: Option<Instant> = None;
        for s in self.senders.iter().filter(|s| s.has_gap()) {
            let t = s.nak_at.map_or(Instant::ZERO, |at| at + self.retry);
            due = Some(due.map_or(t, |d| d.min(t)));
        }
        due
    }

    fn timeout(&mut self, cx: &mut Cx<'_, M>) {
        self.retry = cx.params.mnak_nak_retry;
        for s in cx.view.ranks() {
            // One NAK per sender at most; senders left over wait for the
            // next timeout, which is already due.
            if !cx.can_release() {
                return;
            }
            if s != cx.me() {
                self.maybe_nak(s, cx);
            }
        }
    }

    fn pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn resume(&mut self, cx: &mut Cx<'_, M>) {
        let pending = self.pending;
        for s in pending.iter() {
            self.deliver_ready(s, cx);
        }
    }

    fn clear(&mut self, pool: &mut Pool<'_>) {
        for s in self.senders.iter_mut() {
            pool.queue_clear(&mut s.kept);
            pool.queue_clear(&mut s.ahead);
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        self.clear(&mut cx.pool);
        *self = Mnak::new();
    }

    fn max_header() -> usize {
        CastHdr::POSTCARD_MAX_SIZE.max(SendHdr::POSTCARD_MAX_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Harness;
    use std::vec::Vec;

    fn cast(h: &mut Harness<4>, seq: u32, body: &[u8]) -> Msg {
        let mut m = h.msg(body);
        h.pool().push_header(&mut m, &CastHdr::Data(seq)).unwrap();
        m
    }

    fn delivered(h: &mut Harness<4>) -> Vec<(Rank, u8)> {
        let up = h.take_up();
        let out = up
            .iter()
            .filter_map(|e| match e {
                Up::Cast {
                    from,
                    msg,
                    reliable: true,
                } => Some((*from, h.pool().head_bytes(msg)[0])),
                _ => None,
            })
            .collect();
        h.finish(up);
        out
    }

    fn sends(h: &mut Harness<4>) -> Vec<(Rank, SendHdr, Vec<u8>)> {
        let down = h.take_down();
        let mut out = Vec::new();
        for ev in down {
            if let Down::Send { to, mut msg, .. } = ev {
                let hdr = h.pool().pop_header::<SendHdr>(&mut msg).unwrap();
                let body = h.bytes(&msg);
                h.pool().free(msg);
                out.push((to, hdr, body));
            }
        }
        out
    }

    #[test]
    fn delivers_fifo_and_naks_a_gap_at_once() {
        let mut h = Harness::<4>::new(3, 1);
        let mut m = Mnak::<4>::new();
        for seq in [0, 2, 3] {
            let msg = cast(&mut h, seq, &[seq as u8]);
            h.up(
                &mut m,
                Up::Cast {
                    from: Rank(0),
                    msg,
                    reliable: false,
                },
            );
        }
        assert_eq!(delivered(&mut h), [(Rank(0), 0)]);
        let naks = sends(&mut h);
        assert_eq!(
            naks.len(),
            1,
            "the second early arrival reveals no new hole"
        );
        assert_eq!(
            (naks[0].0, naks[0].1),
            (
                Rank(0),
                SendHdr::Nak {
                    origin: Rank(0),
                    lo: 1,
                    missing: 0b1
                }
            )
        );
        let msg = cast(&mut h, 1, &[1]);
        h.up(
            &mut m,
            Up::Cast {
                from: Rank(0),
                msg,
                reliable: false,
            },
        );
        assert_eq!(
            delivered(&mut h),
            [(Rank(0), 1), (Rank(0), 2), (Rank(0), 3)]
        );
        assert_eq!(h.shared.received[0], 4);
        // Duplicates are dropped and counted.
        let msg = cast(&mut h, 2, &[2]);
        h.up(
            &mut m,
            Up::Cast {
                from: Rank(0),
                msg,
                reliable: false,
            },
        );
        assert!(delivered(&mut h).is_empty());
        assert_eq!(h.stats.duplicates, 1);
        m.clear(&mut h.pool());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn repeats_naks_until_the_gap_closes() {
        let mut h = Harness::<4>::new(2, 1);
        let mut m = Mnak::<4>::new();
        let msg = cast(&mut h, 1, &[1]);
        h.up(
            &mut m,
            Up::Cast {
                from: Rank(0),
                msg,
                reliable: false,
            },
        );
        assert_eq!(sends(&mut h).len(), 1);
        let t = m.deadline().unwrap();
        assert_eq!(t, h.now + h.params.mnak_nak_retry);
        h.timeout(&mut m, t);
        assert_eq!(sends(&mut h).len(), 1);
        let msg = cast(&mut h, 0, &[0]);
        h.up(
            &mut m,
            Up::Cast {
                from: Rank(0),
                msg,
                reliable: false,
            },
        );
        assert_eq!(delivered(&mut h).len(), 2);
        assert_eq!(m.deadline(), None);
        m.clear(&mut h.pool());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn keeps_own_casts_until_stable_and_retransmits_them() {
        let mut h = Harness::<4>::new(3, 0);
        let mut m = Mnak::<4>::new();
        for i in 0..3u8 {
            let msg = h.msg(&[i; 4]);
            h.down(
                &mut m,
                Down::Cast {
                    msg,
                    reliable: true,
                },
            );
        }
        let down = h.take_down();
        assert_eq!(down.len(), 3);
        h.finish(down);
        assert_eq!(h.shared.unstable, Backlog { msgs: 3, bytes: 12 });
        // Member 2 asks for casts 1 and 2.
        let mut nak = h.msg(b"");
        h.pool()
            .push_header(
                &mut nak,
                &SendHdr::Nak {
                    origin: Rank(0),
                    lo: 1,
                    missing: 0b11,
                },
            )
            .unwrap();
        h.up(
            &mut m,
            Up::Send {
                from: Rank(2),
                msg: nak,
                reliable: false,
            },
        );
        let re = sends(&mut h);
        assert_eq!(
            re.iter()
                .map(|(to, hdr, body)| (*to, *hdr, body[0]))
                .collect::<Vec<_>>(),
            [
                (
                    Rank(2),
                    SendHdr::Retrans {
                        origin: Rank(0),
                        seq: 1
                    },
                    1
                ),
                (
                    Rank(2),
                    SendHdr::Retrans {
                        origin: Rank(0),
                        seq: 2
                    },
                    2
                )
            ]
        );
        // Two become stable: they are freed and the backlog shrinks.
        h.shared.stability[0] = 2;
        h.down(&mut m, Down::Stable);
        assert_eq!(h.shared.unstable, Backlog { msgs: 1, bytes: 4 });
        let down = h.take_down();
        h.finish(down);
        m.clear(&mut h.pool());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn numcast_reveals_a_lost_tail_and_a_failed_senders_casts_come_from_a_holder() {
        let mut h = Harness::<4>::new(3, 1);
        let mut m = Mnak::<4>::new();
        let msg = cast(&mut h, 0, &[0]);
        h.up(
            &mut m,
            Up::Cast {
                from: Rank(0),
                msg,
                reliable: false,
            },
        );
        let _ = delivered(&mut h);
        // Stable says some member has 3 of rank 0's casts; rank 0 has failed
        // and rank 2 holds them.
        h.shared.numcast[0] = 3;
        h.shared.holder[0] = Rank(2);
        h.shared.failed.insert(Rank(0));
        h.down(&mut m, Down::Stable);
        let naks = sends(&mut h);
        assert_eq!(
            (naks[0].0, naks[0].1),
            (
                Rank(2),
                SendHdr::Nak {
                    origin: Rank(0),
                    lo: 1,
                    missing: 0b11
                }
            )
        );
        // Rank 2's retransmissions are delivered as rank 0's casts.
        for seq in 1..3u32 {
            let mut msg = h.msg(&[seq as u8]);
            h.pool()
                .push_header(
                    &mut msg,
                    &SendHdr::Retrans {
                        origin: Rank(0),
                        seq,
                    },
                )
                .unwrap();
            h.up(
                &mut m,
                Up::Send {
                    from: Rank(2),
                    msg,
                    reliable: false,
                },
            );
        }
        assert_eq!(delivered(&mut h), [(Rank(0), 1), (Rank(0), 2)]);
        m.clear(&mut h.pool());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn a_member_answers_naks_for_another_members_casts() {
        let mut h = Harness::<4>::new(3, 1);
        let mut m = Mnak::<4>::new();
        for seq in 0..2 {
            let msg = cast(&mut h, seq, &[seq as u8 + 10]);
            h.up(
                &mut m,
                Up::Cast {
                    from: Rank(0),
                    msg,
                    reliable: false,
                },
            );
        }
        let _ = delivered(&mut h);
        let mut nak = h.msg(b"");
        h.pool()
            .push_header(
                &mut nak,
                &SendHdr::Nak {
                    origin: Rank(0),
                    lo: 0,
                    missing: 0b11111,
                },
            )
            .unwrap();
        h.up(
            &mut m,
            Up::Send {
                from: Rank(2),
                msg: nak,
                reliable: false,
            },
        );
        let re = sends(&mut h);
        assert_eq!(re.iter().map(|r| r.2[0]).collect::<Vec<_>>(), [10, 11]);
        m.clear(&mut h.pool());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn a_nak_names_every_new_hole_and_only_new_holes_until_the_retry() {
        let mut h = Harness::<4>::new(2, 1);
        let mut m = Mnak::<4>::new();
        for seq in [0, 2, 4] {
            let msg = cast(&mut h, seq, &[seq as u8]);
            h.up(
                &mut m,
                Up::Cast {
                    from: Rank(0),
                    msg,
                    reliable: false,
                },
            );
        }
        let naks: Vec<SendHdr> = sends(&mut h).into_iter().map(|n| n.1).collect();
        assert_eq!(
            naks,
            [
                SendHdr::Nak {
                    origin: Rank(0),
                    lo: 1,
                    missing: 0b1
                },
                SendHdr::Nak {
                    origin: Rank(0),
                    lo: 1,
                    missing: 0b100
                }
            ]
        );
        // NumCast reveals 70 more casts: the NAK names the new holes of the
        // first 64 (holes 1 and 3 were asked for already).
        h.shared.numcast[0] = 75;
        h.down(&mut m, Down::Stable);
        let down = h.take_down();
        let mut found = None;
        for ev in down {
            match ev {
                Down::Send { mut msg, .. } => {
                    found = h.pool().pop_header::<SendHdr>(&mut msg);
                    h.pool().free(msg);
                }
                other => h.finish(std::vec![other]),
            }
        }
        assert_eq!(
            found,
            Some(SendHdr::Nak {
                origin: Rank(0),
                lo: 1,
                missing: !0b1111
            })
        );
        assert_eq!(delivered(&mut h), [(Rank(0), 0)]);
        // The retry asks for every hole again.
        let t = m.deadline().unwrap();
        h.timeout(&mut m, t);
        let retry: Vec<SendHdr> = sends(&mut h).into_iter().map(|n| n.1).collect();
        assert_eq!(
            retry,
            [SendHdr::Nak {
                origin: Rank(0),
                lo: 1,
                missing: !0b1010
            }]
        );
        m.clear(&mut h.pool());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn kept_casts_leave_the_reserve_for_control_messages() {
        let mut h = Harness::<4>::new(2, 1);
        let mut m = Mnak::<4>::new();
        // Fill the pool until, with the incoming cast, only the reserve is free.
        let mut fillers = Vec::new();
        while h.pool().free_slots() > RESERVE + 1 {
            fillers.push(h.pool().alloc(0).unwrap());
        }
        let msg = cast(&mut h, 0, &[0]);
        h.up(
            &mut m,
            Up::Cast {
                from: Rank(0),
                msg,
                reliable: false,
            },
        );
        assert!(
            delivered(&mut h).is_empty(),
            "cannot keep it: not delivered"
        );
        assert_eq!(h.stats.no_buffer, 1);
        // It is asked for again, and the reserve is still free for the NAK's answer.
        let naks = sends(&mut h);
        assert_eq!(naks.len(), 1);
        assert_eq!(h.pool().free_slots(), RESERVE + 1);
        for f in fillers {
            h.pool().free(f);
        }
        let msg = cast(&mut h, 0, &[0]);
        h.up(
            &mut m,
            Up::Cast {
                from: Rank(0),
                msg,
                reliable: false,
            },
        );
        assert_eq!(delivered(&mut h), [(Rank(0), 0)]);
        m.clear(&mut h.pool());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn early_arrivals_give_way_to_a_deliverable_cast() {
        let mut h = Harness::<4>::new(3, 2);
        let mut m = Mnak::<4>::new();
        // Early arrivals from two senders until the pool is at its reserve.
        let mut seq = 1;
        while h.pool().free_slots() > RESERVE + 1 {
            let from = Rank((seq % 2) as u16);
            let msg = cast(&mut h, seq, &[seq as u8]);
            h.up(
                &mut m,
                Up::Cast {
                    from,
                    msg,
                    reliable: false,
                },
            );
            seq += 1;
        }
        let _ = sends(&mut h);
        // Freeing the NAKs gave slots back: take them again.
        let mut fillers = Vec::new();
        while h.pool().free_slots() > RESERVE + 1 {
            fillers.push(h.pool().alloc(0).unwrap());
        }
        let before = h.stats.no_buffer;
        // The cast both senders' early arrivals wait for can still be delivered.
        let msg = cast(&mut h, 0, &[0]);
        h.up(
            &mut m,
            Up::Cast {
                from: Rank(0),
                msg,
                reliable: false,
            },
        );
        let got = delivered(&mut h);
        assert_eq!(got.first(), Some(&(Rank(0), 0)));
        assert!(h.stats.no_buffer > before, "an early arrival was evicted");
        let _ = sends(&mut h);
        for f in fillers {
            h.pool().free(f);
        }
        m.clear(&mut h.pool());
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn hostile_sequence_numbers_are_rejected() {
        let mut h = Harness::<4>::new(2, 1);
        let mut m = Mnak::<4>::new();
        let msg = cast(&mut h, u32::MAX, &[0]);
        h.up(
            &mut m,
            Up::Cast {
                from: Rank(0),
                msg,
                reliable: false,
            },
        );
        assert_eq!(h.stats.malformed, 1);
        assert_eq!(m.deadline(), None, "no NAK storm for a bogus number");
        assert_eq!(h.in_use(), 0);
    }
}
