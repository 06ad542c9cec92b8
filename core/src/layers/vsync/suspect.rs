//! Suspect: failure detection by pings.
//!
//! Every `suspect_sweep` each member casts a small unreliable ping. Anything
//! heard from a member (a ping, a cast, a send) resets that member's idle
//! count; a member silent for more than `suspect_max_idle` sweeps is
//! suspected, once, and Gmp hears of it (`Up::Suspect`). Ensemble's defaults,
//! 1 s and 15 sweeps, suit a LAN where a false suspicion costs a view
//! change; tests and the simulator use shorter ones.
//!
//! Header: on every cast.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::id::{Rank, RankSet};
use crate::layers::Layer;
use crate::stack::{Cx, Down, Up};
use crate::time::Instant;

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    /// Another layer's cast.
    Data,
    /// "I am alive."
    Ping,
}

/// The failure detector.
#[derive(Debug)]
pub(crate) struct Suspect<const M: usize> {
    /// Sweeps since each member was last heard from.
    idle: [u32; M],
    suspected: RankSet,
    next_sweep: Option<Instant>,
}

impl<const M: usize> Suspect<M> {
    pub(crate) fn new() -> Self {
        Suspect {
            idle: [0; M],
            suspected: RankSet::EMPTY,
            next_sweep: None,
        }
    }

    fn heard(&mut self, from: Rank) {
        if let Some(i) = self.idle.get_mut(from.index()) {
            *i = 0;
        }
    }
}

impl<const M: usize> Layer<M> for Suspect<M> {
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
            Up::Cast {
                from,
                mut msg,
                reliable,
            } => {
                self.heard(from);
                match cx.pool.pop_header::<Hdr>(&mut msg) {
                    Some(Hdr::Data) => cx.up(Up::Cast {
                        from,
                        msg,
                        reliable,
                    }),
                    Some(Hdr::Ping) => cx.free(msg),
                    None => {
                        cx.stats.malformed += 1;
                        cx.free(msg);
                    }
                }
            }
            Up::Send { from, .. } => {
                self.heard(from);
                cx.up(ev);
            }
            other => cx.up(other),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.next_sweep
    }

    fn timeout(&mut self, cx: &mut Cx<'_, M>) {
        self.next_sweep = Some(cx.now + cx.params.suspect_sweep);
        if cx.view.len() > 1 {
            match cx.pool.alloc(cx.headroom()) {
                Ok(mut msg) => {
                    if cx.pool.push_header(&mut msg, &Hdr::Ping).is_ok() {
                        cx.down(Down::Cast {
                            msg,
                            reliable: false,
                        });
                    } else {
                        cx.free(msg);
                    }
                }
                Err(_) => cx.stats.no_buffer += 1,
            }
        }
        let mut newly = RankSet::EMPTY;
        for r in cx.view.ranks().filter(|r| *r != cx.me()) {
            let Some(i) = self.idle.get_mut(r.index()) else {
                continue;
            };
            *i = i.saturating_add(1);
            if *i > cx.params.suspect_max_idle && !self.suspected.contains(r) {
                newly.insert(r);
                self.suspected.insert(r);
            }
        }
        if !newly.is_empty() {
            cx.stats.suspicions += newly.len() as u64;
            info!(
                "suspecting {:?} (no word for too long)",
                crate::fmt::Dbg(newly)
            );
            cx.up(Up::Suspect(newly));
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        *self = Suspect::new();
        self.next_sweep = Some(cx.now + cx.params.suspect_sweep);
    }

    fn max_header() -> usize {
        Hdr::POSTCARD_MAX_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Harness;
    use core::time::Duration;

    #[test]
    fn a_silent_member_is_suspected_once_a_talking_one_never() {
        let mut h = Harness::<4>::new(3, 0);
        h.params.suspect_max_idle = 3;
        h.params.suspect_sweep = Duration::from_millis(100);
        let mut s = Suspect::<4>::new();
        h.run_install(&mut s);
        let mut suspected = RankSet::EMPTY;
        for round in 0..10 {
            // Member 1 pings every round; member 2 has crashed.
            let mut ping = h.msg(b"");
            h.pool().push_header(&mut ping, &Hdr::Ping).unwrap();
            h.up(
                &mut s,
                Up::Cast {
                    from: Rank(1),
                    msg: ping,
                    reliable: false,
                },
            );
            let t = s.deadline().unwrap();
            h.timeout(&mut s, t);
            for ev in h.take_up() {
                if let Up::Suspect(set) = ev {
                    assert!(round >= 3, "suspected too early, round {round}");
                    for r in set.iter() {
                        assert!(!suspected.contains(r), "suspected twice");
                        suspected.insert(r);
                    }
                }
            }
            let pings = h.take_down();
            assert_eq!(pings.len(), 1, "one ping per sweep");
            h.finish(pings);
        }
        assert_eq!(suspected.iter().collect::<std::vec::Vec<_>>(), [Rank(2)]);
        assert_eq!(h.in_use(), 0);
    }
}
