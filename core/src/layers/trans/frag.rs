//! Frag: fragmentation and reassembly of messages larger than a datagram.
//!
//! Going down, a message arrives as a chain of slots, each already holding
//! at most one fragment's payload (the endpoint cut it so when the
//! application cast it). Frag sends each slot down as its own message under
//! a header saying whether more fragments follow.
//!
//! Coming up, Frag relies on the layers below (Mnak for casts, Pt2pt for
//! sends) delivering each member's messages reliably and in order, so one
//! partial message per sender and kind is all it ever holds. A partial
//! message longer than `frag_max` allows is discarded and counted: the
//! sender is faulty or hostile.
//!
//! Header: on every cast and every send.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::buffer::Msg;
use crate::config::Params;
use crate::id::Rank;
use crate::layers::Layer;
use crate::stack::{Cx, Down, Up};

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    /// A whole message.
    Whole,
    /// A fragment; more follow.
    More,
    /// The last fragment.
    Last,
}

#[derive(Debug, Default)]
struct Partial {
    msg: Option<Msg>,
    frags: u32,
}

/// The fragmentation layer.
#[derive(Debug)]
pub(crate) struct Frag<const M: usize> {
    casts: [Partial; M],
    sends: [Partial; M],
    /// Most fragments a message may have, from `frag_max` and the fragment size.
    max_frags: u32,
}

impl<const M: usize> Frag<M> {
    pub(crate) fn new(params: &Params) -> Self {
        Frag {
            casts: core::array::from_fn(|_| Partial::default()),
            sends: core::array::from_fn(|_| Partial::default()),
            max_frags: params.frag_max,
        }
    }

    /// Sets the fragment limit once the fragment payload size is known.
    pub(crate) fn set_max_frags(&mut self, max_frags: usize) {
        self.max_frags = max_frags as u32;
    }

    fn split(&mut self, mut msg: Msg, cx: &mut Cx<'_, M>, mk: impl Fn(Msg) -> Down) {
        loop {
            let rest = cx.pool.split_first(&mut msg);
            let hdr = if rest.is_some() { Hdr::More } else { Hdr::Last };
            if cx.pool.push_header(&mut msg, &hdr).is_err() {
                // Headroom is sized for every layer's header: unreachable.
                debug_assert!(false, "no headroom for Frag header");
                cx.free(msg);
                if let Some(rest) = rest {
                    cx.free(rest);
                }
                return;
            }
            cx.down(mk(msg));
            match rest {
                Some(r) => msg = r,
                None => return,
            }
        }
    }

    fn reassemble(
        &mut self,
        from: Rank,
        mut msg: Msg,
        cast: bool,
        reliable: bool,
        cx: &mut Cx<'_, M>,
    ) -> Option<Msg> {
        let Some(hdr) = cx.pool.pop_header::<Hdr>(&mut msg) else {
            cx.stats.malformed += 1;
            cx.free(msg);
            return None;
        };
        if !reliable {
            // Layers' own unreliable messages (pings, gossip) are one slot
            // each and arrive out of sequence, between the fragments of a
            // reliable message: they never touch the reassembly state.
            if hdr == Hdr::Whole {
                return Some(msg);
            }
            cx.stats.malformed += 1;
            cx.free(msg);
            return None;
        }
        let table = if cast {
            &mut self.casts
        } else {
            &mut self.sends
        };
        let Some(partial) = table.get_mut(from.index()) else {
            cx.free(msg);
            return None;
        };
        match hdr {
            Hdr::Whole => {
                if let Some(stale) = partial.msg.take() {
                    // A whole message in the middle of a fragmented one: the
                    // sender broke FIFO or is hostile. Keep the new message.
                    cx.stats.frag_discarded += 1;
                    cx.free(stale);
                }
                partial.frags = 0;
                Some(msg)
            }
            Hdr::More | Hdr::Last => {
                partial.frags += 1;
                if partial.frags > self.max_frags {
                    cx.stats.frag_discarded += 1;
                    cx.free(msg);
                    if let Some(stale) = partial.msg.take() {
                        cx.free(stale);
                    }
                    // Keep discarding until this message's last fragment.
                    if hdr == Hdr::Last {
                        partial.frags = 0;
                    }
                    return None;
                }
                match partial.msg.as_mut() {
                    Some(head) => cx.pool.concat(head, msg),
                    None => partial.msg = Some(msg),
                }
                if hdr == Hdr::Last {
                    partial.frags = 0;
                    partial.msg.take()
                } else {
                    None
                }
            }
        }
    }
}

impl<const M: usize> Layer<M> for Frag<M> {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        match ev {
            Down::Cast { msg, reliable } if cx.pool.chain_len(&msg) > 1 => {
                self.split(msg, cx, |msg| Down::Cast { msg, reliable });
            }
            Down::Send { to, msg, reliable } if cx.pool.chain_len(&msg) > 1 => {
                self.split(msg, cx, |msg| Down::Send { to, msg, reliable });
            }
            Down::Cast { mut msg, reliable } => {
                if cx.pool.push_header(&mut msg, &Hdr::Whole).is_ok() {
                    cx.down(Down::Cast { msg, reliable });
                } else {
                    cx.free(msg);
                }
            }
            Down::Send {
                to,
                mut msg,
                reliable,
            } => {
                if cx.pool.push_header(&mut msg, &Hdr::Whole).is_ok() {
                    cx.down(Down::Send { to, msg, reliable });
                } else {
                    cx.free(msg);
                }
            }
            other => cx.down(other),
        }
    }

    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Cast {
                from,
                msg,
                reliable,
            } => {
                if let Some(msg) = self.reassemble(from, msg, true, reliable, cx) {
                    cx.up(Up::Cast {
                        from,
                        msg,
                        reliable,
                    });
                }
            }
            Up::Send {
                from,
                msg,
                reliable,
            } => {
                if let Some(msg) = self.reassemble(from, msg, false, reliable, cx) {
                    cx.up(Up::Send {
                        from,
                        msg,
                        reliable,
                    });
                }
            }
            other => cx.up(other),
        }
    }

    fn clear(&mut self, pool: &mut crate::buffer::Pool<'_>) {
        for p in self.casts.iter_mut().chain(self.sends.iter_mut()) {
            if let Some(m) = p.msg.take() {
                pool.free(m);
            }
            p.frags = 0;
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        self.clear(&mut cx.pool);
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

    fn frag() -> Frag<4> {
        let mut f = Frag::new(&Params::default());
        f.set_max_frags(4);
        f
    }

    #[test]
    fn splits_a_chain_and_reassembles_it() {
        let mut sender = Harness::<4>::new(3, 0);
        let mut f = frag();
        let data: Vec<u8> = (0..150).collect();
        let m = sender.chain(&data, 64);
        sender.down(
            &mut f,
            Down::Cast {
                msg: m,
                reliable: true,
            },
        );
        let frags = sender.take_down();
        assert_eq!(frags.len(), 3);

        // Carry the fragments' bytes to a receiver, as the network would.
        let mut receiver = Harness::<4>::new(3, 1);
        let mut g = frag();
        for ev in frags {
            let Down::Cast { msg, .. } = ev else { panic!() };
            let bytes = sender.bytes(&msg);
            sender.pool().free(msg);
            let m = receiver.msg(&bytes);
            receiver.up(
                &mut g,
                Up::Cast {
                    from: Rank(0),
                    msg: m,
                    reliable: true,
                },
            );
        }
        let up = receiver.take_up();
        assert_eq!(up.len(), 1);
        let Up::Cast { from, msg, .. } = &up[0] else {
            panic!()
        };
        assert_eq!(*from, Rank(0));
        assert_eq!(receiver.bytes(msg), data);
        receiver.finish(up);
        assert_eq!(receiver.in_use(), 0);
        assert_eq!(sender.in_use(), 0);
    }

    #[test]
    fn an_unreliable_message_between_fragments_leaves_the_partial_alone() {
        // A ping (unreliable, one slot) arrives between the fragments of a
        // reliable cast from the same sender: both must come up intact.
        let mut sender = Harness::<4>::new(3, 0);
        let mut f = frag();
        let data: Vec<u8> = (0..150).collect();
        let m = sender.chain(&data, 64);
        sender.down(
            &mut f,
            Down::Cast {
                msg: m,
                reliable: true,
            },
        );
        let ping = sender.msg(b"ping");
        sender.down(
            &mut f,
            Down::Cast {
                msg: ping,
                reliable: false,
            },
        );
        let mut wire: Vec<(Vec<u8>, bool)> = Vec::new();
        for ev in sender.take_down() {
            let Down::Cast { msg, reliable } = ev else {
                panic!()
            };
            wire.push((sender.bytes(&msg), reliable));
            sender.pool().free(msg);
        }
        // Fragment, ping, fragment, fragment.
        let ping = wire.remove(3);
        wire.insert(1, ping);
        let mut receiver = Harness::<4>::new(3, 1);
        let mut g = frag();
        for (bytes, reliable) in wire {
            let msg = receiver.msg(&bytes);
            receiver.up(
                &mut g,
                Up::Cast {
                    from: Rank(0),
                    msg,
                    reliable,
                },
            );
        }
        let up = receiver.take_up();
        let got: Vec<(Vec<u8>, bool)> = up
            .iter()
            .map(|e| match e {
                Up::Cast { msg, reliable, .. } => (receiver.bytes(msg), *reliable),
                _ => panic!(),
            })
            .collect();
        assert_eq!(got, [(b"ping".to_vec(), false), (data, true)]);
        assert_eq!(receiver.stats.frag_discarded, 0);
        receiver.finish(up);
        assert_eq!(receiver.in_use(), 0);
    }

    #[test]
    fn whole_messages_pass_with_one_byte_header() {
        let mut h = Harness::<4>::new(2, 0);
        let mut f = frag();
        let m = h.msg(b"small");
        h.down(
            &mut f,
            Down::Send {
                to: Rank(1),
                msg: m,
                reliable: true,
            },
        );
        let down = h.take_down();
        let Down::Send { msg, .. } = &down[0] else {
            panic!()
        };
        assert_eq!(h.bytes(msg), [&[0u8][..], b"small"].concat());
        h.finish(down);
    }

    #[test]
    fn too_many_fragments_are_discarded_and_counted() {
        let mut h = Harness::<4>::new(2, 1);
        let mut f = frag();
        for i in 0..6 {
            let hdr = if i == 5 { 2u8 } else { 1u8 }; // More.. then Last
            let m = h.msg(&[hdr, i]);
            h.up(
                &mut f,
                Up::Cast {
                    from: Rank(0),
                    msg: m,
                    reliable: true,
                },
            );
        }
        assert!(h.take_up().is_empty());
        assert!(h.stats.frag_discarded >= 1);
        // The next message from that sender is received normally.
        let m = h.msg(&[0, 42]);
        h.up(
            &mut f,
            Up::Cast {
                from: Rank(0),
                msg: m,
                reliable: true,
            },
        );
        let up = h.take_up();
        assert_eq!(up.len(), 1);
        h.finish(up);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn malformed_header_is_counted() {
        let mut h = Harness::<4>::new(2, 1);
        let mut f = frag();
        let m = h.msg(&[9]);
        h.up(
            &mut f,
            Up::Send {
                from: Rank(0),
                msg: m,
                reliable: true,
            },
        );
        assert_eq!(h.stats.malformed, 1);
        assert_eq!(h.in_use(), 0);
    }
}
