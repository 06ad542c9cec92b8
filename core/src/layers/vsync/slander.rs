//! Slander: members share their suspicions.
//!
//! A member that cannot hear another may not be the coordinator; the
//! coordinator may still hear it fine. Slander casts every local suspicion
//! to the view (and repeats it every `suspect_sweep` until the view changes,
//! since the cast is unreliable), and hands every suspicion it hears to Gmp,
//! so the coordinator removes a member that only others can no longer reach.
//!
//! Header: on every cast.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::id::RankSet;
use crate::layers::Layer;
use crate::stack::{Cx, Down, Up};
use crate::time::Instant;

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    /// Another layer's cast.
    Data,
    /// The sender's suspicions (a `RankSet`, in the payload).
    Slander,
}

/// The suspicion-sharing layer.
#[derive(Debug, Default)]
pub(crate) struct Slander {
    /// What this member suspects and has told the view.
    told: RankSet,
    next_repeat: Option<Instant>,
}

impl Slander {
    fn tell<const M: usize>(&mut self, cx: &mut Cx<'_, M>) {
        let Ok(mut msg) = cx.pool.alloc(cx.headroom()) else {
            cx.stats.no_buffer += 1;
            return;
        };
        let mut body = [0u8; 48];
        let sent = postcard::to_slice(&self.told, &mut body)
            .ok()
            .map(|b| b.len())
            .and_then(|n| cx.pool.append(&mut msg, &body[..n]).ok())
            .and_then(|()| cx.pool.push_header(&mut msg, &Hdr::Slander).ok());
        match sent {
            Some(()) => cx.down(Down::Cast {
                msg,
                reliable: false,
            }),
            None => cx.free(msg),
        }
        self.next_repeat = Some(cx.now + cx.params.suspect_sweep);
    }
}

impl<const M: usize> Layer<M> for Slander {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        match ev {
            Down::Cast { mut msg, reliable } => {
                if cx.pool.push_header(&mut msg, &Hdr::Data).is_ok() {
                    cx.down(Down::Cast { msg, reliable });
                } else {
                    cx.free(msg);
                }
            }
            other => cx.down(other),
        }
    }

    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Suspect(set) => {
                let mut new = set;
                for r in self.told.iter() {
                    new.remove(r);
                }
                cx.up(Up::Suspect(set));
                if !new.is_empty() {
                    for r in new.iter() {
                        self.told.insert(r);
                    }
                    self.tell(cx);
                }
            }
            Up::Cast {
                from,
                mut msg,
                reliable,
            } => match cx.pool.pop_header::<Hdr>(&mut msg) {
                Some(Hdr::Data) => cx.up(Up::Cast {
                    from,
                    msg,
                    reliable,
                }),
                Some(Hdr::Slander) => {
                    let heard = postcard::from_bytes::<RankSet>(cx.pool.head_bytes(&msg));
                    cx.free(msg);
                    match heard {
                        Ok(mut set) => {
                            // Nobody is believed about themselves.
                            set.remove(cx.me());
                            set.remove(from);
                            if !set.is_empty() {
                                cx.up(Up::Suspect(set));
                            }
                        }
                        Err(_) => cx.stats.malformed += 1,
                    }
                }
                None => {
                    cx.stats.malformed += 1;
                    cx.free(msg);
                }
            },
            other => cx.up(other),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.next_repeat
    }

    fn timeout(&mut self, cx: &mut Cx<'_, M>) {
        if self.told.is_empty() {
            self.next_repeat = None;
        } else {
            self.tell(cx);
        }
    }

    fn install(&mut self, _cx: &mut Cx<'_, M>) {
        *self = Slander::default();
    }

    fn max_header() -> usize {
        Hdr::POSTCARD_MAX_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Rank;
    use crate::layers::testing::Harness;

    #[test]
    fn local_suspicions_are_told_and_heard_ones_passed_on() {
        let mut h = Harness::<4>::new(3, 1);
        let mut s = Slander::default();
        let mut set = RankSet::EMPTY;
        set.insert(Rank(2));
        h.up(&mut s, Up::Suspect(set));
        let up = h.take_up();
        assert!(matches!(up[..], [Up::Suspect(x)] if x == set));
        let down = h.take_down();
        let Down::Cast {
            mut msg,
            reliable: false,
        } = down.into_iter().next().unwrap()
        else {
            panic!()
        };
        assert_eq!(h.pool().pop_header::<Hdr>(&mut msg), Some(Hdr::Slander));
        let body = h.bytes(&msg);
        // The same bytes arriving at another member become its suspicion.
        let mut other = Harness::<4>::new(3, 0);
        let mut t = Slander::default();
        let mut m = other.msg(&body);
        other.pool().push_header(&mut m, &Hdr::Slander).unwrap();
        other.up(
            &mut t,
            Up::Cast {
                from: Rank(1),
                msg: m,
                reliable: false,
            },
        );
        let up = other.take_up();
        assert!(matches!(up[..], [Up::Suspect(x)] if x == set));
        h.pool().free(msg);
        // Repeated at the next sweep while it stands.
        let at = Layer::<4>::deadline(&s).unwrap();
        h.timeout(&mut s, at);
        let again = h.take_down();
        assert_eq!(again.len(), 1);
        h.finish(again);
        h.finish(up);
        assert_eq!(h.in_use(), 0);
    }
}
