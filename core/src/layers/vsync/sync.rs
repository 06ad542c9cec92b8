//! Sync: makes view changes virtually synchronous.
//!
//! During a view change Sync, on each member:
//! 1. delivers `Block` to the application (once per view change, however
//!    many attempts it takes);
//! 2. after the application's `block_ok`, holds every new cast and send for
//!    the next view (Maestro's "delivered in the next view");
//! 3. freezes delivery from the members the attempt treats as failed at what
//!    this member already has, waits until its own sends to the others are
//!    acknowledged, and tells Gmp it may report (`Up::Ready`);
//! 4. once Gmp has the cut, waits for Mnak to deliver exactly up to it and
//!    tells Gmp (`Up::Flushed`).
//!
//! When the next view is installed, what Sync held goes down in it, in the
//! order the application gave it. Sync pushes no header.

use heapless::Deque;

use crate::buffer::{Msg, Pool};
use crate::id::{EndpointId, Rank};
use crate::layers::Layer;
use crate::stack::{Backlog, Cx, Down, FANOUT, Up};
use crate::time::Instant;

/// How often Sync looks again at acknowledgements it waits for.
const POLL: core::time::Duration = core::time::Duration::from_millis(5);
/// Casts and sends one view change may hold; the endpoint answers
/// `WouldBlock` beyond it until the next view is installed.
pub(crate) const HELD_MAX: usize = 64;

/// A cast (`to: None`) or a send held for the next view.
#[derive(Debug)]
struct Held {
    msg: Msg,
    to: Option<EndpointId>,
}

/// The virtual synchrony layer.
#[derive(Debug, Default)]
pub(crate) struct Sync {
    /// The application has answered `block_ok` in this view change.
    blocked: bool,
    /// `Block` has gone to the application in this view change.
    told: bool,
    /// Gmp waits for `Ready`.
    want_ready: bool,
    /// Gmp waits for `Flushed`; Mnak has (or has not yet) reached the cut.
    want_flushed: bool,
    cut_reached: bool,
    /// Casts and sends for the next view, in order.
    held: Deque<Held, HELD_MAX>,
    /// Held messages still to send after an install.
    releasing: bool,
    /// A view change began while releasing: it starts here once all is out.
    flush_deferred: bool,
    poll_at: Option<Instant>,
}

impl Sync {
    /// Whether this member's sends to every member still in the view change
    /// have been acknowledged.
    fn sends_drained<const M: usize>(cx: &Cx<'_, M>) -> bool {
        cx.view
            .ranks()
            .filter(|r| *r != cx.me() && !cx.shared.failed.contains(*r))
            .all(|r| cx.shared.unacked.get(r.index()).is_none_or(|b| b.msgs == 0))
    }

    fn progress<const M: usize>(&mut self, cx: &mut Cx<'_, M>) {
        if self.want_ready && self.blocked && Self::sends_drained(cx) {
            self.want_ready = false;
            cx.up(Up::Ready);
        }
        if self.want_flushed && self.cut_reached {
            self.want_flushed = false;
            cx.up(Up::Flushed);
        }
        self.poll_at = (self.want_ready && self.blocked).then(|| cx.now + POLL);
    }

    fn hold<const M: usize>(&mut self, cx: &mut Cx<'_, M>, ev: Down) {
        let held = match ev {
            Down::Cast { msg, .. } => Held { msg, to: None },
            Down::Send { to, msg, .. } => match cx.view.member(to) {
                Some(m) => Held {
                    msg,
                    to: Some(m.id),
                },
                None => {
                    cx.free(msg);
                    return;
                }
            },
            other => {
                cx.down(other);
                return;
            }
        };
        let len = cx.pool.len(&held.msg) as u32;
        match self.held.push_back(held) {
            Ok(()) => {
                cx.shared.held.msgs += 1;
                cx.shared.held.bytes += len;
            }
            // The endpoint admits no more than HELD_MAX: unreachable.
            Err(h) => cx.free(h.msg),
        }
    }

    /// Starts a view change that arrived while held messages were going out.
    fn resume_flush<const M: usize>(&mut self, cx: &mut Cx<'_, M>) {
        if core::mem::take(&mut self.flush_deferred) {
            Layer::<M>::down(self, Down::Flush, cx);
        }
    }

    /// Sends the oldest held message down, one per call: a held cast can
    /// expand below into Local's copy and Frag's fragments (up to
    /// `MAX_FRAGMENTS`), so the next waits until the scheduler queue has
    /// drained again (`resume` runs only then). Releasing them all at once
    /// overflowed the queue and lost events.
    fn release<const M: usize>(&mut self, cx: &mut Cx<'_, M>) {
        if !self.releasing {
            return;
        }
        let Some(front) = self.held.front() else {
            self.releasing = false;
            self.resume_flush(cx);
            return;
        };
        // Room for what it expands into, and, as when the endpoint admits a
        // cast, pool slots for Local's copy and the retransmission copy:
        // the pool may have filled with others' traffic since it was held.
        let frags = cx.pool.chain_len(&front.msg);
        if cx.room() < frags + 4 * FANOUT
            || cx.pool.free_slots() < 3 * frags + crate::endpoint::ADMISSION_RESERVE
        {
            return;
        }
        let Some(Held { msg, to }) = self.held.pop_front() else {
            return;
        };
        self.releasing = !self.held.is_empty();
        let len = cx.pool.len(&msg) as u32;
        cx.shared.held.msgs = cx.shared.held.msgs.saturating_sub(1);
        cx.shared.held.bytes = cx.shared.held.bytes.saturating_sub(len);
        match to.map(|id| cx.view.rank_of(id)) {
            None => cx.down(Down::Cast {
                msg,
                reliable: true,
            }),
            Some(Some(to)) if to != cx.me() => cx.down(Down::Send {
                to,
                msg,
                reliable: true,
            }),
            // The destination did not come into the new view.
            Some(_) => {
                cx.stats.sends_to_departed += 1;
                cx.free(msg);
            }
        }
        if !self.releasing {
            self.resume_flush(cx);
        }
    }
}

impl<const M: usize> Layer<M> for Sync {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        match ev {
            // Blocked: held for the next view. Still releasing what was held
            // for this one: queued behind it, so that FIFO holds.
            Down::Cast { reliable: true, .. } | Down::Send { reliable: true, .. }
                if self.blocked || self.releasing =>
            {
                self.hold(cx, ev);
            }
            Down::BlockOk => {
                self.blocked = true;
                self.progress(cx);
            }
            Down::Flush if self.releasing => {
                // What was held for this view (or accepted behind it) must
                // all go out in this view: the view change waits for it.
                self.flush_deferred = true;
            }
            Down::Flush => {
                self.flush_deferred = false;
                // A new attempt: freeze the failed members at what this member
                // has; everyone else flows until the cut.
                let n = cx.view.len();
                for s in 0..n {
                    let r = Rank(s as u16);
                    cx.shared.limit[s] = if cx.shared.failed.contains(r) {
                        cx.shared.received[s]
                    } else {
                        u32::MAX
                    };
                }
                cx.shared.cut_active = false;
                self.want_ready = true;
                self.want_flushed = false;
                self.cut_reached = false;
                if !self.told {
                    self.told = true;
                    cx.up(Up::Block);
                }
                cx.down(Down::Flush);
                self.progress(cx);
            }
            Down::Cut => {
                self.want_flushed = true;
                self.cut_reached = false;
                cx.down(Down::Cut);
            }
            other => cx.down(other),
        }
    }

    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::CutReached => {
                self.cut_reached = true;
                self.progress(cx);
            }
            other => cx.up(other),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.poll_at
    }

    fn timeout(&mut self, cx: &mut Cx<'_, M>) {
        self.progress(cx);
    }

    fn pending(&self) -> bool {
        self.releasing
    }

    fn resume(&mut self, cx: &mut Cx<'_, M>) {
        self.release(cx);
    }

    fn clear(&mut self, pool: &mut Pool<'_>) {
        while let Some(h) = self.held.pop_front() {
            pool.free(h.msg);
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        // Everything but what is held starts afresh; what is held goes now.
        self.blocked = false;
        self.told = false;
        self.want_ready = false;
        self.want_flushed = false;
        self.cut_reached = false;
        self.poll_at = None;
        self.flush_deferred = false;
        self.releasing = !self.held.is_empty();
        let bytes = self.held.iter().map(|h| cx.pool.len(&h.msg) as u32).sum();
        cx.shared.held = Backlog {
            msgs: self.held.len() as u32,
            bytes,
        };
        self.release(cx);
    }

    fn max_header() -> usize {
        0
    }
}
