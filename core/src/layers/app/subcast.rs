//! Subcast: point-to-point sends to a subset of the view, carried as casts.
//!
//! The application's `send_to_many` enters the stack as
//! [`Down::Subcast`]. Subcast sends it down as an ordinary reliable cast
//! whose header names the destinations (a bitmap over the ranks of the
//! view); every member receives it through Mnak like any cast, and Subcast
//! at each member passes it up as a send from its origin if the member is a
//! destination, and drops it otherwise.
//!
//! So a subcast has a cast's guarantees: it is FIFO with every cast and
//! subcast of its origin, it is part of the virtual synchrony flush (a
//! destination that moves to the next view with its origin has it, and one
//! that was cast during `Block` goes out in the next view: Sync holds it,
//! above Subcast), and the ordering layers below Subcast (Total, Causal,
//! Agree) order it with the casts. Its cost is a cast's: every member
//! receives and acknowledges it. Ensemble's Subcast carried all sends this
//! way; consort keeps Pt2pt for single sends and uses Subcast only for sets.
//!
//! Header: on every cast.

use serde::{Deserialize, Serialize};

use crate::id::{MAX_GROUP_SIZE, Rank, RankSet};
use crate::layers::Layer;
use crate::stack::{Cx, Down, Up};

/// Bytes of the largest destination bitmap.
const MAP_BYTES: usize = MAX_GROUP_SIZE / 8;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum Hdr {
    /// A cast to the whole view.
    Cast,
    /// A subcast: bit `r % 8` of byte `r / 8` set for each destination rank
    /// `r`; bytes past the last one set are left out.
    To(heapless::Vec<u8, MAP_BYTES>),
}

/// The subcast layer.
#[derive(Debug, Default)]
pub(crate) struct Subcast;

/// The bitmap of `to`, without trailing zero bytes.
fn bitmap(to: &RankSet) -> heapless::Vec<u8, MAP_BYTES> {
    let mut map = heapless::Vec::new();
    for r in to.iter() {
        let byte = r.index() / 8;
        while map.len() <= byte {
            if map.push(0).is_err() {
                return map;
            }
        }
        map[byte] |= 1 << (r.index() % 8);
    }
    map
}

fn contains(map: &[u8], r: Rank) -> bool {
    map.get(r.index() / 8)
        .is_some_and(|b| b & (1 << (r.index() % 8)) != 0)
}

impl<const M: usize> Layer<M> for Subcast {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        match ev {
            Down::Cast { mut msg, reliable } => {
                if cx.pool.push_header(&mut msg, &Hdr::Cast).is_ok() {
                    cx.down(Down::Cast { msg, reliable });
                } else {
                    cx.free(msg);
                }
            }
            Down::Subcast { to, mut msg } => {
                let me = cx.me();
                let mut dest = RankSet::EMPTY;
                for r in to
                    .iter()
                    .filter(|r| *r != me && cx.view.member(*r).is_some())
                {
                    dest.insert(r);
                }
                if dest.is_empty() {
                    // Every destination left the view on the way here.
                    cx.stats.sends_to_departed += 1;
                    cx.free(msg);
                    return;
                }
                if cx
                    .pool
                    .push_header(&mut msg, &Hdr::To(bitmap(&dest)))
                    .is_ok()
                {
                    cx.down(Down::Cast {
                        msg,
                        reliable: true,
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
        match cx.pool.pop_header::<Hdr>(&mut msg) {
            Some(Hdr::Cast) => cx.up(Up::Cast {
                from,
                msg,
                reliable,
            }),
            Some(Hdr::To(map)) if reliable => {
                if from != cx.me() && contains(&map, cx.me()) {
                    cx.up(Up::Send {
                        from,
                        msg,
                        reliable: true,
                    });
                } else {
                    // Not a destination (the origin's own copy, from Local,
                    // comes here too).
                    cx.free(msg);
                }
            }
            _ => {
                cx.stats.malformed += 1;
                cx.free(msg);
            }
        }
    }

    fn max_header() -> usize {
        // The tag, the bitmap's length, the bitmap.
        2 + MAP_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Harness;
    use std::vec::Vec;

    fn set(ranks: &[u16]) -> RankSet {
        let mut s = RankSet::EMPTY;
        for r in ranks {
            s.insert(Rank(*r));
        }
        s
    }

    /// What member `me` of a 12-member view does with `msg` coming up.
    fn arrive(me: u16, from: u16, msg: &[u8]) -> (Vec<&'static str>, u64) {
        let mut h = Harness::<16>::new(12, me);
        let mut m = h.msg(&msg[1..]);
        h.pool().push_front(&mut m, &msg[..1]).unwrap();
        h.up(
            &mut Subcast,
            Up::Cast {
                from: Rank(from),
                msg: m,
                reliable: true,
            },
        );
        let up = h.take_up();
        let kinds = up
            .iter()
            .map(|e| match e {
                Up::Cast { .. } => "cast",
                Up::Send { .. } => "send",
                _ => "other",
            })
            .collect();
        h.finish(up);
        (kinds, h.stats.malformed)
    }

    fn encode(h: &Hdr) -> Vec<u8> {
        let mut buf = [0u8; 64];
        postcard::to_slice(h, &mut buf).unwrap().to_vec()
    }

    #[test]
    fn a_subcast_goes_down_as_a_cast_naming_its_destinations() {
        let mut h = Harness::<16>::new(12, 1);
        let m = h.msg(b"to some");
        // Itself and ranks outside the view are left out.
        h.down(
            &mut Subcast,
            Down::Subcast {
                to: set(&[1, 2, 10, 13]),
                msg: m,
            },
        );
        let mut down = h.take_down();
        let Some(Down::Cast {
            mut msg,
            reliable: true,
        }) = down.pop()
        else {
            panic!("expected one reliable cast");
        };
        let hdr = h.pool().pop_header::<Hdr>(&mut msg).unwrap();
        assert_eq!(
            hdr,
            Hdr::To(heapless::Vec::from_slice(&[0b100, 0b100]).unwrap())
        );
        assert_eq!(h.bytes(&msg), b"to some");
        h.pool().free(msg);
        // A subcast to nobody in the view goes nowhere.
        let m = h.msg(b"x");
        h.down(
            &mut Subcast,
            Down::Subcast {
                to: set(&[1, 40]),
                msg: m,
            },
        );
        assert!(h.take_down().is_empty());
        assert_eq!(h.stats.sends_to_departed, 1);
        assert_eq!(h.in_use(), 0);
    }

    #[test]
    fn destinations_get_a_send_the_others_nothing() {
        let to = encode(&Hdr::To(bitmap(&set(&[2, 10]))));
        let mut msg = to.clone();
        msg.extend_from_slice(b"payload");
        assert_eq!(arrive(2, 0, &msg).0, ["send"]);
        assert_eq!(arrive(10, 0, &msg).0, ["send"]);
        assert!(arrive(3, 0, &msg).0.is_empty());
        // The origin's own copy is not delivered to it.
        assert!(arrive(2, 2, &msg).0.is_empty());
        let mut cast = encode(&Hdr::Cast);
        cast.extend_from_slice(b"all");
        assert_eq!(arrive(3, 0, &cast).0, ["cast"]);
        // Garbage is counted, not delivered.
        let (kinds, malformed) = arrive(3, 0, &[9, 9, 9]);
        assert!(kinds.is_empty());
        assert_eq!(malformed, 1);
    }

    #[test]
    fn bitmaps_round_trip_every_rank() {
        let all: Vec<u16> = (0..MAX_GROUP_SIZE as u16).collect();
        let map = bitmap(&set(&all));
        assert_eq!(map.len(), MAP_BYTES);
        assert!((0..MAX_GROUP_SIZE as u16).all(|r| contains(&map, Rank(r))));
        let map = bitmap(&set(&[0, 255]));
        assert!(contains(&map, Rank(255)) && contains(&map, Rank(0)));
        assert!(!contains(&map, Rank(254)) && !contains(&map, Rank(300)));
        assert!(encode(&Hdr::To(map)).len() <= <Subcast as Layer<4>>::max_header());
    }
}
