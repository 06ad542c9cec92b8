//! Pt2pt: reliable FIFO point-to-point sends.
//!
//! Each (sender, receiver) pair has its own sequence numbers. The sender
//! keeps a copy of every send until the receiver acknowledges it; the
//! receiver delivers in order, keeps early arrivals (when the pool has
//! room), and acknowledges cumulatively after every data message. Every
//! `pt2pt_sweep`, a sender whose oldest send has not been acknowledged since
//! the previous sweep sends the unacknowledged ones again.
//!
//! Pt2pt publishes, per peer, the bytes not yet acknowledged: Flow's send
//! window. Header: on every send.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::buffer::{Msg, Pool, SlotQueue};
use crate::id::{Rank, RankSet};
use crate::layers::Layer;
use crate::stack::{Backlog, Cx, Down, Up};
use crate::time::Instant;

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    /// Not sequenced (another layer's control message).
    Unrel,
    /// Send number `seq` from this sender to this receiver.
    Data(u32),
    /// Every send numbered below this has been received.
    Ack(u32),
}

/// How far ahead of the next expected send an early arrival may be kept.
const AHEAD_LIMIT: u32 = 4096;
/// Slots kept free for control messages: early arrivals never take them.
const RESERVE: usize = 8;

#[derive(Debug, Default)]
struct Peer {
    /// Number of the next send to this peer.
    send_next: u32,
    /// The peer has received every send numbered below this.
    acked: u32,
    /// `acked` at the previous sweep, to tell whether acks are flowing.
    acked_at_sweep: u32,
    /// Copies of unacknowledged sends, tagged by number.
    unacked: SlotQueue,
    /// Number of the next send expected from this peer.
    recv_next: u32,
    /// Early arrivals, tagged by number.
    ahead: SlotQueue,
}

/// The point-to-point layer.
#[derive(Debug)]
pub(crate) struct Pt2pt<const M: usize> {
    peers: [Peer; M],
    next_sweep: Option<Instant>,
    /// Peers with early arrivals now in order, waiting for queue room.
    pending: RankSet,
}

impl<const M: usize> Pt2pt<M> {
    pub(crate) fn new() -> Self {
        Pt2pt {
            peers: core::array::from_fn(|_| Peer::default()),
            next_sweep: None,
            pending: RankSet::EMPTY,
        }
    }

    fn send_ack(&mut self, to: Rank, cx: &mut Cx<'_, M>) {
        let Some(peer) = self.peers.get(to.index()) else {
            return;
        };
        let Ok(mut msg) = cx.pool.alloc(cx.headroom()) else {
            cx.stats.no_buffer += 1;
            return;
        };
        if cx
            .pool
            .push_header(&mut msg, &Hdr::Ack(peer.recv_next))
            .is_err()
        {
            cx.free(msg);
            return;
        }
        cx.stats.acks += 1;
        cx.down(Down::Send {
            to,
            msg,
            reliable: false,
        });
    }

    fn publish(&self, to: Rank, cx: &mut Cx<'_, M>) {
        if let (Some(peer), Some(b)) = (
            self.peers.get(to.index()),
            cx.shared.unacked.get_mut(to.index()),
        ) {
            *b = Backlog {
                msgs: peer.unacked.len() as u32,
                bytes: cx.pool.queue_bytes(&peer.unacked) as u32,
            };
        }
    }

    fn receive_data(&mut self, from: Rank, seq: u32, msg: Msg, cx: &mut Cx<'_, M>) {
        let Some(peer) = self.peers.get_mut(from.index()) else {
            cx.free(msg);
            return;
        };
        if seq < peer.recv_next {
            cx.stats.duplicates += 1;
            cx.free(msg);
        } else if seq == peer.recv_next {
            peer.recv_next += 1;
            cx.up(Up::Send {
                from,
                msg,
                reliable: true,
            });
            self.deliver_ready(from, cx);
        } else if seq - peer.recv_next < AHEAD_LIMIT && cx.pool.free_slots() > RESERVE {
            if let Err(dup) = cx.pool.queue_insert_sorted(&mut peer.ahead, msg, seq) {
                cx.stats.duplicates += 1;
                cx.free(dup);
            }
        } else {
            cx.stats.no_buffer += 1;
            cx.free(msg);
        }
        self.send_ack(from, cx);
    }

    /// Delivers early arrivals that are now in order, while the queue has room.
    fn deliver_ready(&mut self, from: Rank, cx: &mut Cx<'_, M>) {
        let Some(peer) = self.peers.get_mut(from.index()) else {
            return;
        };
        while cx.pool.queue_front_tag(&peer.ahead) == Some(peer.recv_next) {
            if !cx.can_release() {
                self.pending.insert(from);
                return;
            }
            if let Some((_, msg)) = cx.pool.queue_pop_front(&mut peer.ahead) {
                peer.recv_next += 1;
                cx.up(Up::Send {
                    from,
                    msg,
                    reliable: true,
                });
            }
        }
        self.pending.remove(from);
    }

    fn receive_ack(&mut self, from: Rank, upto: u32, cx: &mut Cx<'_, M>) {
        let Some(peer) = self.peers.get_mut(from.index()) else {
            return;
        };
        if upto <= peer.acked || upto > peer.send_next {
            return;
        }
        peer.acked = upto;
        while cx
            .pool
            .queue_front_tag(&peer.unacked)
            .is_some_and(|t| t < upto)
        {
            if let Some((_, m)) = cx.pool.queue_pop_front(&mut peer.unacked) {
                cx.free(m);
            }
        }
        self.publish(from, cx);
    }

    fn retransmit(&mut self, to: Rank, cx: &mut Cx<'_, M>) {
        let Some(peer) = self.peers.get(to.index()) else {
            return;
        };
        let tags: heapless::Vec<u32, 16> = cx.pool.queue_tags(&peer.unacked).take(16).collect();
        for seq in tags {
            if !cx.can_release() || !cx.can_transmit() {
                return;
            }
            let Some(Ok(mut copy)) = cx.pool.queue_copy(&peer.unacked, seq, cx.headroom()) else {
                return;
            };
            if cx.pool.push_header(&mut copy, &Hdr::Data(seq)).is_err() {
                cx.free(copy);
                return;
            }
            cx.stats.send_retransmissions += 1;
            cx.down(Down::Send {
                to,
                msg: copy,
                reliable: true,
            });
        }
    }

    fn any_unacked(&self) -> bool {
        self.peers.iter().any(|p| !p.unacked.is_empty())
    }
}

impl<const M: usize> Layer<M> for Pt2pt<M> {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        match ev {
            Down::Send {
                to,
                mut msg,
                reliable: true,
            } => {
                let Some(peer) = self.peers.get_mut(to.index()) else {
                    cx.free(msg);
                    return;
                };
                let seq = peer.send_next;
                peer.send_next += 1;
                // Keep a copy (without our header) until the peer acknowledges it.
                match cx.pool.copy(&msg, cx.headroom()) {
                    Ok(copy) => {
                        if let Err(m) = cx.pool.queue_push_back(&mut peer.unacked, copy, seq) {
                            cx.free(m);
                        }
                    }
                    Err(_) => {
                        // The endpoint admits a send only with room for this copy.
                        debug_assert!(false, "no buffer to keep a send");
                        cx.stats.no_buffer += 1;
                    }
                }
                self.publish(to, cx);
                if self.next_sweep.is_none() {
                    self.next_sweep = Some(cx.now + cx.params.pt2pt_sweep);
                }
                if cx.pool.push_header(&mut msg, &Hdr::Data(seq)).is_ok() {
                    cx.down(Down::Send {
                        to,
                        msg,
                        reliable: true,
                    });
                } else {
                    cx.free(msg);
                }
            }
            Down::Send {
                to,
                mut msg,
                reliable: false,
            } => {
                if cx.pool.push_header(&mut msg, &Hdr::Unrel).is_ok() {
                    cx.down(Down::Send {
                        to,
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
        let Up::Send { from, mut msg, .. } = ev else {
            cx.up(ev);
            return;
        };
        match cx.pool.pop_header::<Hdr>(&mut msg) {
            Some(Hdr::Unrel) => cx.up(Up::Send {
                from,
                msg,
                reliable: false,
            }),
            Some(Hdr::Data(seq)) => self.receive_data(from, seq, msg, cx),
            Some(Hdr::Ack(upto)) => {
                cx.free(msg);
                self.receive_ack(from, upto, cx);
            }
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
        for r in cx.view.ranks() {
            let Some(peer) = self.peers.get_mut(r.index()) else {
                continue;
            };
            let stalled = !peer.unacked.is_empty() && peer.acked == peer.acked_at_sweep;
            peer.acked_at_sweep = peer.acked;
            if stalled && !cx.shared.failed.contains(r) {
                self.retransmit(r, cx);
            }
        }
        self.next_sweep = self.any_unacked().then(|| cx.now + cx.params.pt2pt_sweep);
    }

    fn pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn resume(&mut self, cx: &mut Cx<'_, M>) {
        let pending = self.pending;
        for r in pending.iter() {
            self.deliver_ready(r, cx);
        }
    }

    fn clear(&mut self, pool: &mut Pool<'_>) {
        for p in self.peers.iter_mut() {
            pool.queue_clear(&mut p.unacked);
            pool.queue_clear(&mut p.ahead);
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        self.clear(&mut cx.pool);
        *self = Pt2pt::new();
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

    fn data(h: &mut Harness<4>, seq: u32, body: &[u8]) -> Msg {
        let mut m = h.msg(body);
        h.pool().push_header(&mut m, &Hdr::Data(seq)).unwrap();
        m
    }

    fn sent_headers(h: &mut Harness<4>) -> Vec<(Rank, Hdr)> {
        let down = h.take_down();
        let mut out = Vec::new();
        for ev in down {
            let Down::Send { to, mut msg, .. } = ev else {
                panic!()
            };
            let hdr = h.pool().pop_header::<Hdr>(&mut msg).unwrap();
            h.pool().free(msg);
            out.push((to, hdr));
        }
        out
    }

    #[test]
    fn delivers_in_order_buffers_early_and_acks_cumulatively() {
        let mut h = Harness::<4>::new(2, 1);
        let mut p = Pt2pt::<4>::new();
        for seq in [1, 0, 1, 2] {
            let m = data(&mut h, seq, &[seq as u8]);
            h.up(
                &mut p,
                Up::Send {
                    from: Rank(0),
                    msg: m,
                    reliable: false,
                },
            );
        }
        let up = h.take_up();
        let order: Vec<u8> = up
            .iter()
            .map(|e| match e {
                Up::Send { msg, .. } => h.pool().head_bytes(msg)[0],
                _ => panic!(),
            })
            .collect();
        assert_eq!(order, [0, 1, 2]);
        h.finish(up);
        assert_eq!(h.stats.duplicates, 1);
        let acks = sent_headers(&mut h);
        assert_eq!(acks.last(), Some(&(Rank(0), Hdr::Ack(3))));
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn retransmits_until_acked_and_publishes_the_backlog() {
        let mut h = Harness::<4>::new(2, 0);
        let mut p = Pt2pt::<4>::new();
        for i in 0..3u8 {
            let m = h.msg(&[i; 10]);
            h.down(
                &mut p,
                Down::Send {
                    to: Rank(1),
                    msg: m,
                    reliable: true,
                },
            );
        }
        assert_eq!(sent_headers(&mut h).len(), 3);
        assert_eq!(h.shared.unacked[1], Backlog { msgs: 3, bytes: 30 });

        // Ack the first one; the next sweep sees progress and stays quiet.
        let mut ack = h.msg(b"");
        h.pool().push_header(&mut ack, &Hdr::Ack(1)).unwrap();
        h.up(
            &mut p,
            Up::Send {
                from: Rank(1),
                msg: ack,
                reliable: false,
            },
        );
        assert_eq!(h.shared.unacked[1], Backlog { msgs: 2, bytes: 20 });
        let t = p.deadline().unwrap();
        h.timeout(&mut p, t);
        assert!(sent_headers(&mut h).is_empty());

        // No progress by the following sweep: both are sent again.
        let t = p.deadline().unwrap();
        h.timeout(&mut p, t);
        assert_eq!(
            sent_headers(&mut h),
            [(Rank(1), Hdr::Data(1)), (Rank(1), Hdr::Data(2))]
        );
        assert_eq!(h.stats.send_retransmissions, 2);

        let mut ack = h.msg(b"");
        h.pool().push_header(&mut ack, &Hdr::Ack(3)).unwrap();
        h.up(
            &mut p,
            Up::Send {
                from: Rank(1),
                msg: ack,
                reliable: false,
            },
        );
        assert_eq!(h.shared.unacked[1], Backlog::default());
        let t = p.deadline().unwrap();
        h.timeout(&mut p, t);
        assert_eq!(p.deadline(), None, "nothing outstanding: no timer");
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn bogus_acks_are_ignored() {
        let mut h = Harness::<4>::new(2, 0);
        let mut p = Pt2pt::<4>::new();
        let mut ack = h.msg(b"");
        h.pool().push_header(&mut ack, &Hdr::Ack(99)).unwrap();
        h.up(
            &mut p,
            Up::Send {
                from: Rank(1),
                msg: ack,
                reliable: false,
            },
        );
        assert_eq!(p.peers[1].acked, 0);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn holds_back_releases_when_the_queue_is_short() {
        let mut h = Harness::<4>::new(2, 1);
        let mut p = Pt2pt::<4>::new();
        for seq in 1..20 {
            let m = data(&mut h, seq, &[seq as u8]);
            h.up(
                &mut p,
                Up::Send {
                    from: Rank(0),
                    msg: m,
                    reliable: false,
                },
            );
        }
        let _ = sent_headers(&mut h);
        h.squeeze_queue(12);
        let m = data(&mut h, 0, &[0]);
        h.up(
            &mut p,
            Up::Send {
                from: Rank(0),
                msg: m,
                reliable: false,
            },
        );
        let first = h.take_up();
        assert!(first.len() < 20 && p.pending());
        h.unsqueeze_queue();
        h.finish(first);
        h.resume(&mut p);
        let rest = h.take_up();
        assert!(!p.pending());
        let total = rest.len();
        h.finish(rest);
        assert!(total > 0);
        assert_eq!(p.peers[0].recv_next, 20);
        let _ = sent_headers(&mut h);
        assert_eq!(h.in_use(), 0);
    }
}
