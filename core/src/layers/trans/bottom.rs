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
//! Header: one byte, on every cast and send, after the prefix.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::buffer::Msg;
use crate::id::{GroupId, RankSet};
use crate::layers::Layer;
use crate::stack::{Cx, Down, TxDest, TxItem, Up};
use crate::wire::{Flags, PREFIX_LEN, Prefix, PrefixPacket};

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    Cast,
    Send,
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

    fn transmit<const M: usize>(&self, mut msg: Msg, hdr: Hdr, dest: RankSet, cx: &mut Cx<'_, M>) {
        let prefix = Prefix {
            flags: Flags(0),
            key_epoch: 0,
            sender: cx.me(),
            group: self.group,
            view: cx.view.id(),
        };
        let mut bytes = [0u8; PREFIX_LEN];
        // Cannot fail: `bytes` is exactly PREFIX_LEN long.
        let _ = prefix.emit(&mut bytes);
        let framed = cx
            .pool
            .push_header(&mut msg, &hdr)
            .and_then(|()| cx.pool.push_front(&mut msg, &bytes));
        if framed.is_err() {
            debug_assert!(false, "no headroom for the prefix");
            cx.free(msg);
            return;
        }
        if dest.is_empty() {
            cx.free(msg);
            return;
        }
        if let Err(item) = cx.tx.push_back(TxItem {
            msg,
            dest: TxDest::Ranks(dest),
        }) {
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
        let sender_ok = prefix.sender != cx.me()
            && cx
                .view
                .member(prefix.sender)
                .is_some_and(|m| m.addr == from);
        let verdict = if prefix.group != self.group {
            Some(&mut cx.stats.wrong_group)
        } else if prefix.view != cx.view.id() {
            Some(&mut cx.stats.wrong_view)
        } else if !sender_ok {
            Some(&mut cx.stats.not_member)
        } else {
            None
        };
        if let Some(counter) = verdict {
            *counter += 1;
            cx.free(msg);
            return;
        }
        let hdr = match cx.pool.pop_front(&mut msg, PREFIX_LEN) {
            Ok(()) => cx.pool.pop_header::<Hdr>(&mut msg),
            Err(_) => None,
        };
        let from = prefix.sender;
        match hdr {
            Some(Hdr::Cast) => cx.up(Up::Cast {
                from,
                msg,
                reliable: false,
            }),
            Some(Hdr::Send) => cx.up(Up::Send {
                from,
                msg,
                reliable: false,
            }),
            None => {
                cx.stats.malformed += 1;
                cx.free(msg);
            }
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
                self.transmit(msg, Hdr::Cast, dest, cx);
            }
            Down::Send { to, msg, .. } => {
                let mut dest = RankSet::EMPTY;
                if to != cx.me() && cx.view.member(to).is_some() {
                    dest.insert(to);
                }
                self.transmit(msg, Hdr::Send, dest, cx);
            }
            Down::Stable => {}
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
    fn accepts_a_member_and_rejects_everything_else_by_reason() {
        let mut h = Harness::<4>::new(3, 1);
        let mut b = Bottom::new(GroupId::from_name("test"));
        let good = good_prefix(&h, 0);

        let m = datagram(&mut h, good, 1, b"hello");
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
