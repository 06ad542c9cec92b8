//! Bottom: the network's end of the stack.
//!
//! Going down, Bottom marks the message as a cast or a send, writes the
//! fixed [prefix](crate::wire) in front, and queues the datagram for the
//! runtime: a cast for every other member of the view, a send for one.
//!
//! Coming up, every datagram is hostile until proven otherwise. Bottom
//! checks the prefix (magic, version, flags), the group, the view, that the
//! sender's rank is a member other than this endpoint, and that the
//! datagram came from that member's address. Anything else is counted by
//! reason and dropped.
//!
//! Foreign messages are the exception to the view check: they carry joins,
//! merges and view installations between endpoints that are not (yet) in
//! one view. They go to an address, name the layer they are for, and are
//! handed up with the sender's view and rank for that layer to judge.
//!
//! Header: on every message after the prefix: `Cast`, `Send(destination
//! rank)`, or `Foreign(layer code)`.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::buffer::Msg;
use crate::id::{GroupId, Rank, RankSet, ViewId};
use crate::layers::Layer;
use crate::stack::{Cx, Down, LayerKind, TxDest, TxItem, Up};
use crate::wire::{Flags, PREFIX_LEN, Prefix, PrefixPacket};

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    Cast,
    /// To the member of this rank: a datagram that reaches another
    /// endpoint (a new incarnation now at a departed member's address) is
    /// dropped instead of delivered to the wrong member.
    Send(u16),
    /// For the peer layer with this code ([`crate::stack::LayerKind::code`]).
    Foreign(u8),
}

/// The bottom layer.
#[derive(Debug)]
pub(crate) struct Bottom {
    group: GroupId,
}

impl Bottom {
    pub(crate) fn new(group: GroupId) -> Self {
        Bottom { group }
    }

    fn frame<const M: usize>(
        &self,
        msg: &mut Msg,
        hdr: Hdr,
        as_of: Option<(ViewId, Rank)>,
        cx: &mut Cx<'_, M>,
    ) -> bool {
        let (view, sender) = as_of.unwrap_or((cx.view.id(), cx.me()));
        let prefix = Prefix {
            flags: Flags(0),
            key_epoch: 0,
            sender,
            group: self.group,
            view,
        };
        let mut bytes = [0u8; PREFIX_LEN];
        // Cannot fail: `bytes` is exactly PREFIX_LEN long.
        let _ = prefix.emit(&mut bytes);
        let framed = cx
            .pool
            .push_header(msg, &hdr)
            .and_then(|()| cx.pool.push_front(msg, &bytes));
        debug_assert!(framed.is_ok(), "no headroom for the prefix");
        framed.is_ok()
    }

    fn transmit<const M: usize>(&self, msg: Msg, hdr: Hdr, dest: TxDest, cx: &mut Cx<'_, M>) {
        self.transmit_as(msg, hdr, dest, None, cx);
    }

    fn transmit_as<const M: usize>(
        &self,
        mut msg: Msg,
        hdr: Hdr,
        dest: TxDest,
        as_of: Option<(ViewId, Rank)>,
        cx: &mut Cx<'_, M>,
    ) {
        let empty = matches!(dest, TxDest::Ranks(r) if r.is_empty());
        if empty || !self.frame(&mut msg, hdr, as_of, cx) {
            cx.free(msg);
            return;
        }
        if let Err(item) = cx.tx.push_back(TxItem { msg, dest }) {
            cx.stats.tx_queue_full += 1;
            cx.free(item.msg);
        }
    }

    fn receive<const M: usize>(
        &self,
        from: core::net::SocketAddr,
        mut msg: Msg,
        cx: &mut Cx<'_, M>,
    ) {
        let prefix = match PrefixPacket::new_checked(cx.pool.head_bytes(&msg)) {
            Ok(p) => Prefix::parse(&p),
            Err(_) => {
                cx.stats.malformed += 1;
                cx.free(msg);
                return;
            }
        };
        if prefix.group != self.group {
            cx.stats.wrong_group += 1;
            cx.free(msg);
            return;
        }
        let hdr = match cx.pool.pop_front(&mut msg, PREFIX_LEN) {
            Ok(()) => cx.pool.pop_header::<Hdr>(&mut msg),
            Err(_) => None,
        };
        let hdr = match hdr {
            Some(Hdr::Foreign(code)) => match LayerKind::from_code(code) {
                Some(layer) => {
                    cx.up(Up::Foreign {
                        from,
                        view: prefix.view,
                        rank: prefix.sender,
                        layer,
                        msg,
                    });
                    return;
                }
                None => None,
            },
            other => other,
        };
        let Some(hdr) = hdr else {
            cx.stats.malformed += 1;
            cx.free(msg);
            return;
        };
        let sender_ok = prefix.sender != cx.me()
            && cx
                .view
                .member(prefix.sender)
                .is_some_and(|m| m.addr == from);
        let verdict = if prefix.view != cx.view.id() {
            Some(&mut cx.stats.wrong_view)
        } else if !sender_ok {
            Some(&mut cx.stats.not_member)
        } else if matches!(hdr, Hdr::Send(to) if to != cx.me().0) {
            Some(&mut cx.stats.misaddressed)
        } else {
            None
        };
        if let Some(counter) = verdict {
            *counter += 1;
            cx.free(msg);
            return;
        }
        let from = prefix.sender;
        match hdr {
            Hdr::Cast => cx.up(Up::Cast {
                from,
                msg,
                reliable: false,
            }),
            _ => cx.up(Up::Send {
                from,
                msg,
                reliable: false,
            }),
        }
    }
}

impl<const M: usize> Layer<M> for Bottom {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        match ev {
            Down::Cast { msg, .. } => {
                let mut dest = cx.view.others();
                for r in cx.shared.failed.iter() {
                    dest.remove(r);
                }
                self.transmit(msg, Hdr::Cast, TxDest::Ranks(dest), cx);
            }
            Down::Send { to, msg, .. } => {
                let mut dest = RankSet::EMPTY;
                if to != cx.me() && cx.view.member(to).is_some() {
                    dest.insert(to);
                }
                self.transmit(msg, Hdr::Send(to.0), TxDest::Ranks(dest), cx);
            }
            Down::Foreign {
                to,
                layer,
                msg,
                as_of,
            } => {
                self.transmit_as(msg, Hdr::Foreign(layer.code()), TxDest::Addr(to), as_of, cx);
            }
            // Other events end here; a message in one has nowhere to go.
            other => {
                if let Some(m) = other.into_msg() {
                    cx.free(m);
                }
            }
        }
    }

    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Datagram { from, msg } => self.receive(from, msg, cx),
            other => cx.up(other),
        }
    }

    fn max_header() -> usize {
        PREFIX_LEN + Hdr::POSTCARD_MAX_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{EndpointId, Rank, ViewId};
    use crate::layers::testing::{Harness, addr};
    use std::vec::Vec;

    fn datagram(h: &mut Harness<4>, prefix: Prefix, hdr: u8, payload: &[u8]) -> Msg {
        let mut bytes = [0u8; PREFIX_LEN];
        prefix.emit(&mut bytes).unwrap();
        let mut all = Vec::from(bytes);
        all.push(hdr);
        all.extend_from_slice(payload);
        h.msg(&all)
    }

    fn good_prefix(h: &Harness<4>, sender: u16) -> Prefix {
        Prefix {
            flags: Flags(0),
            key_epoch: 0,
            sender: Rank(sender),
            group: GroupId::from_name("test"),
            view: h.view.id(),
        }
    }

    #[test]
    fn frames_a_cast_for_every_other_member() {
        let mut h = Harness::<4>::new(3, 1);
        let mut b = Bottom::new(GroupId::from_name("test"));
        let m = h.msg(b"data");
        h.down(
            &mut b,
            Down::Cast {
                msg: m,
                reliable: true,
            },
        );
        let item = h.tx.pop_front().unwrap();
        let TxDest::Ranks(dest) = item.dest else {
            panic!()
        };
        assert_eq!(dest.iter().collect::<Vec<_>>(), [Rank(0), Rank(2)]);
        let bytes = h.bytes(&item.msg);
        let p = Prefix::parse(&PrefixPacket::new_checked(&bytes[..]).unwrap());
        assert_eq!(p, good_prefix(&h, 1));
        assert_eq!(&bytes[PREFIX_LEN..], [&[0u8][..], b"data"].concat());
        h.pool().free(item.msg);
    }

    #[test]
    fn foreign_messages_cross_views_to_the_layer_they_name() {
        let mut h = Harness::<4>::new(3, 1);
        let mut b = Bottom::new(GroupId::from_name("test"));
        let stranger: core::net::SocketAddr = "192.168.1.9:7000".parse().unwrap();
        let m = h.msg(b"join me");
        h.down(
            &mut b,
            Down::Foreign {
                to: stranger,
                layer: LayerKind::Heal,
                msg: m,
                as_of: None,
            },
        );
        let item = h.tx.pop_front().unwrap();
        assert!(matches!(item.dest, TxDest::Addr(a) if a == stranger));
        let bytes = h.bytes(&item.msg);
        h.pool().free(item.msg);
        assert_eq!(bytes[PREFIX_LEN], 2, "Foreign");
        assert_eq!(bytes[PREFIX_LEN + 1], LayerKind::Heal.code());

        // From another view and an unknown address: still handed up.
        let other_view = ViewId {
            ltime: 9,
            coordinator: EndpointId(77),
        };
        let mut p = good_prefix(&h, 0);
        p.view = other_view;
        let m = datagram(
            &mut h,
            p,
            2,
            &[&[LayerKind::Gmp.code()][..], b"hi"].concat(),
        );
        h.up(
            &mut b,
            Up::Datagram {
                from: stranger,
                msg: m,
            },
        );
        let up = h.take_up();
        match &up[..] {
            [
                Up::Foreign {
                    from,
                    view,
                    rank,
                    layer,
                    ..
                },
            ] => {
                assert_eq!(
                    (*from, *view, *rank, *layer),
                    (stranger, other_view, Rank(0), LayerKind::Gmp)
                );
            }
            other => panic!("{other:?}"),
        }
        h.finish(up);
        // An unknown layer code is malformed.
        let p = good_prefix(&h, 0);
        let m = datagram(&mut h, p, 2, &[250]);
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(0),
                msg: m,
            },
        );
        assert_eq!(h.stats.malformed, 1);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn accepts_a_member_and_rejects_everything_else_by_reason() {
        let mut h = Harness::<4>::new(3, 1);
        let mut b = Bottom::new(GroupId::from_name("test"));
        let good = good_prefix(&h, 0);

        // A send for rank 1 (this endpoint) comes up; one for rank 2 does not.
        let m = datagram(&mut h, good, 1, b"\x01hello");
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(0),
                msg: m,
            },
        );
        let up = h.take_up();
        assert!(matches!(&up[..], [Up::Send { from: Rank(0), .. }]));
        h.finish(up);
        let m = datagram(&mut h, good, 1, b"\x02hello");
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(0),
                msg: m,
            },
        );
        assert!(h.take_up().is_empty());
        assert_eq!(h.stats.misaddressed, 1);

        let m = datagram(
            &mut h,
            Prefix {
                group: GroupId(1),
                ..good
            },
            0,
            b"",
        );
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(0),
                msg: m,
            },
        );
        let other_view = ViewId {
            ltime: 9,
            coordinator: EndpointId(1),
        };
        let m = datagram(
            &mut h,
            Prefix {
                view: other_view,
                ..good
            },
            0,
            b"",
        );
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(0),
                msg: m,
            },
        );
        let m = datagram(&mut h, good, 0, b"");
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(2),
                msg: m,
            },
        ); // spoofed source
        let m = datagram(
            &mut h,
            Prefix {
                sender: Rank(1),
                ..good
            },
            0,
            b"",
        ); // myself
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(1),
                msg: m,
            },
        );
        let m = datagram(
            &mut h,
            Prefix {
                sender: Rank(7),
                ..good
            },
            0,
            b"",
        ); // no such rank
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(0),
                msg: m,
            },
        );
        let m = datagram(&mut h, good, 9, b""); // bad Bottom header
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(0),
                msg: m,
            },
        );
        let m = h.msg(b"CS\x01"); // truncated prefix
        h.up(
            &mut b,
            Up::Datagram {
                from: addr(0),
                msg: m,
            },
        );

        assert!(h.take_up().is_empty());
        assert_eq!(h.stats.wrong_group, 1);
        assert_eq!(h.stats.wrong_view, 1);
        assert_eq!(h.stats.not_member, 3);
        assert_eq!(h.stats.malformed, 2);
        assert_eq!(h.in_use(), 0);
    }
}
