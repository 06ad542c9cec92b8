//! Heal: finds other views of the group, so that singletons join and
//! partitions merge.
//!
//! Every `heal_sweep` a coordinator announces its view (its id travels in
//! the prefix, its size in the body) to the seed hosts it was configured
//! with (Ensemble's `gossip_hosts`), to former members no longer in its
//! view, and to coordinators it has heard of. A member that is not a
//! coordinator answers with its coordinator's address. A coordinator that
//! hears of a senior view (more members, or as many and a smaller
//! view id) asks Gmp to merge into it; a junior that announces to a
//! senior is answered, so that it learns whom to ask. Heal only sends
//! foreign messages, under its own header; it pushes nothing on casts or
//! sends.

use core::net::SocketAddr;

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::id::ViewId;
use crate::layers::Layer;
use crate::stack::{Cx, Down, LayerKind, Up};
use crate::time::Instant;

#[derive(Serialize, Deserialize, MaxSize, Debug, Clone, Copy, PartialEq, Eq)]
enum Hdr {
    /// "My view (in the prefix) has this many members."
    Announce { size: u16 },
    /// "My coordinator is at this address."
    Redirect,
}

/// Announcements a coordinator sends per sweep at most, so that a long list
/// of former members does not flood the network or the queues.
const PER_SWEEP: usize = 4;

/// The healing layer.
#[derive(Debug)]
pub(crate) struct Heal<const M: usize> {
    seeds: heapless::Vec<SocketAddr, 8>,
    /// Addresses of members of earlier views that are not in this one.
    former: heapless::Vec<SocketAddr, M>,
    /// Coordinators learned from redirects.
    hints: heapless::Vec<SocketAddr, 8>,
    /// This view's addresses, to know who left at the next install.
    members: heapless::Vec<SocketAddr, M>,
    next_sweep: Option<Instant>,
    /// Where the last sweep stopped in the list of targets.
    cursor: usize,
}

impl<const M: usize> Heal<M> {
    pub(crate) fn new(seeds: &[SocketAddr]) -> Self {
        Heal {
            seeds: seeds.iter().take(8).copied().collect(),
            former: heapless::Vec::new(),
            hints: heapless::Vec::new(),
            members: heapless::Vec::new(),
            next_sweep: None,
            cursor: 0,
        }
    }

    fn announce(cx: &mut Cx<'_, M>, to: SocketAddr) {
        let Ok(mut msg) = cx.pool.alloc(cx.headroom()) else {
            cx.stats.no_buffer += 1;
            return;
        };
        let size = cx.view.len() as u16;
        if cx
            .pool
            .push_header(&mut msg, &Hdr::Announce { size })
            .is_ok()
        {
            cx.stats.announcements += 1;
            cx.down(Down::Foreign {
                to,
                layer: LayerKind::Heal,
                msg,
                as_of: None,
            });
        } else {
            cx.free(msg);
        }
    }

    fn redirect(cx: &mut Cx<'_, M>, to: SocketAddr) {
        let Some(coord) = cx.view.member(crate::id::Rank::COORDINATOR).map(|m| m.addr) else {
            return;
        };
        let Ok(mut msg) = cx.pool.alloc(cx.headroom()) else {
            return;
        };
        let ok = cx
            .pool
            .write_tail(&mut msg, |out| {
                postcard::to_slice(&coord, out).ok().map(|s| s.len())
            })
            .and_then(|()| cx.pool.push_header(&mut msg, &Hdr::Redirect));
        match ok {
            Ok(()) => cx.down(Down::Foreign {
                to,
                layer: LayerKind::Heal,
                msg,
                as_of: None,
            }),
            Err(_) => cx.free(msg),
        }
    }

    fn on_foreign(
        &mut self,
        cx: &mut Cx<'_, M>,
        from: SocketAddr,
        view: ViewId,
        mut msg: crate::buffer::Msg,
    ) {
        let hdr = cx.pool.pop_header::<Hdr>(&mut msg);
        let body = postcard::from_bytes::<SocketAddr>(cx.pool.head_bytes(&msg)).ok();
        cx.free(msg);
        match hdr {
            Some(Hdr::Announce { size }) if view != cx.view.id() => {
                if cx.me() != crate::id::Rank::COORDINATOR {
                    Self::redirect(cx, from);
                    return;
                }
                // Larger views are senior; between views of one size, the
                // smaller id (as Gmp's merge check, so both agree who asks).
                let mine = (cx.view.len() as u16, cx.view.id());
                let theirs = (size, view);
                let they_are_senior =
                    theirs.0 > mine.0 || (theirs.0 == mine.0 && theirs.1 < mine.1);
                if they_are_senior {
                    cx.down(Down::Merge { to: from, view });
                } else {
                    Self::announce(cx, from);
                }
            }
            Some(Hdr::Announce { .. }) => {}
            Some(Hdr::Redirect) => match body {
                Some(coord) => {
                    if !self.hints.contains(&coord) {
                        if self.hints.is_full() {
                            self.hints.remove(0);
                        }
                        let _ = self.hints.push(coord);
                    }
                    if cx.me() == crate::id::Rank::COORDINATOR && cx.view.rank_at(coord).is_none() {
                        Self::announce(cx, coord);
                    }
                }
                None => cx.stats.malformed += 1,
            },
            None => cx.stats.malformed += 1,
        }
    }
}

impl<const M: usize> Layer<M> for Heal<M> {
    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Foreign {
                from,
                view,
                layer: LayerKind::Heal,
                msg,
                ..
            } => self.on_foreign(cx, from, view, msg),
            other => cx.up(other),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.next_sweep
    }

    fn timeout(&mut self, cx: &mut Cx<'_, M>) {
        self.next_sweep = Some(cx.now + cx.params.heal_sweep);
        if cx.me() != crate::id::Rank::COORDINATOR {
            return;
        }
        let mine = cx.view.member(cx.me()).map(|m| m.addr);
        let targets = || {
            self.seeds
                .iter()
                .chain(self.hints.iter())
                .chain(self.former.iter())
                .copied()
                .filter(|a| Some(*a) != mine && cx.view.rank_at(*a).is_none())
        };
        let count = targets().count();
        if count == 0 {
            return;
        }
        let start = self.cursor % count;
        let picked: heapless::Vec<SocketAddr, PER_SWEEP> = targets()
            .cycle()
            .skip(start)
            .take(PER_SWEEP.min(count))
            .collect();
        self.cursor = start + picked.len();
        for to in picked {
            Self::announce(cx, to);
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        let now: heapless::Vec<SocketAddr, M> = cx.view.addresses().collect();
        for a in self.members.iter() {
            if !now.contains(a) && !self.former.contains(a) {
                if self.former.is_full() {
                    self.former.remove(0);
                }
                let _ = self.former.push(*a);
            }
        }
        self.former.retain(|a| !now.contains(a));
        self.hints.retain(|a| !now.contains(a));
        self.members = now;
        if self.next_sweep.is_none() {
            // The first announcement goes out at once: a new endpoint should
            // not wait a sweep to find its group.
            self.next_sweep = Some(cx.now);
        }
    }

    fn max_header() -> usize {
        Hdr::POSTCARD_MAX_SIZE
    }
}
