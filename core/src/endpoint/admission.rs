//! Whether a cast or send may enter the stack now, and telling the
//! application when one that was refused would pass.

use super::membership::{SendView, Status};
use super::{ADMISSION_RESERVE, AppItem, Blocked, Endpoint};
use crate::error::SendError;
use crate::layers::HELD_MAX;
use crate::stack::TX_QUEUE;
use crate::stack::{FANOUT, LayerKind, QUEUE};

impl<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>> Endpoint<M, B> {
    /// Whether a message of this kind and size may enter the stack now;
    /// remembers a refusal to announce `Writable` later.
    pub(super) fn admit(&mut self, what: Blocked) -> Result<(), SendError> {
        let result = self.admission(what);
        if result == Err(SendError::WouldBlock) {
            self.stats.would_block += 1;
            self.blocked = Some(what);
        }
        result
    }

    /// Which view a message accepted now goes out in.
    pub(super) fn send_view(&self) -> SendView {
        if self.status == Status::Blocked {
            SendView::Next
        } else {
            SendView::Current
        }
    }

    pub(super) fn admission(&self, what: Blocked) -> Result<(), SendError> {
        if self.status == Status::Left {
            return Err(SendError::Exited);
        }
        let len = match what {
            Blocked::Cast(l) | Blocked::Send(_, l) | Blocked::Subcast(l) => l,
        };
        let max = self.max_message();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let frags = len.div_ceil(self.geometry.frag_payload).max(1);
        let held = self.status == Status::Blocked || self.shared.held.msgs > 0;
        if held && matches!(what, Blocked::Subcast(_)) {
            // Sync would hold it with destinations ranked in a view that
            // is about to end: it waits for the next view (`Writable`).
            return Err(SendError::WouldBlock);
        }
        if held {
            // Held by Sync (for the next view, or behind what it still
            // releases after an install): bounded by its queue and the pool.
            // A held message stays in the pool until it is released, and
            // releasing one needs room for its copies (see `Sync::release`):
            // after holding this one, the pool must still have that room
            // for the largest message, or held messages could fill the pool
            // so that none of them can ever be released.
            let largest = max.div_ceil(self.geometry.frag_payload).max(1);
            if self.shared.held.msgs as usize >= HELD_MAX
                || self.pool.free() < frags + 3 * largest + ADMISSION_RESERVE
            {
                return Err(SendError::WouldBlock);
            }
            // When the ordering layers hold this member's casts until they
            // are ordered (or stable), what Sync holds joins them once it
            // is released: together they stay within the window. Else a
            // member whose sequencer is gone could fill its own pool with
            // casts that only the next view delivers, and leave Sync no
            // room to release the rest, which that view change waits for.
            if self.holds_deliveries() {
                let held = self.shared.held;
                let held_slots =
                    held.bytes as usize / self.geometry.frag_payload.max(1) + held.msgs as usize;
                let own = self.shared.unstable.msgs.max(self.shared.unordered.msgs) as usize;
                if own + held_slots + frags > self.window_slots() {
                    return Err(SendError::WouldBlock);
                }
            }
            return Ok(());
        }
        // Every member keeps this member's casts until they are stable (and
        // this member keeps its sends until they are acknowledged): what one
        // member may have outstanding must fit in everybody's pool.
        let window = self.window_slots();
        let outstanding = match what {
            // With Total, a member's casts are outstanding until they come
            // back to it in total order too.
            Blocked::Cast(_) | Blocked::Subcast(_) if self.spec.contains(LayerKind::Mnak) => {
                self.shared.unstable.msgs.max(self.shared.unordered.msgs)
            }
            Blocked::Send(to, _) if self.spec.contains(LayerKind::Pt2pt) => {
                self.shared.unacked.get(to.index()).map_or(0, |b| b.msgs)
            }
            _ => 0,
        };
        if outstanding as usize + frags > window {
            return Err(SendError::WouldBlock);
        }
        // Each fragment: itself, Local's copy, and the retransmission copy.
        if self.pool.free() < 3 * frags + ADMISSION_RESERVE {
            return Err(SendError::WouldBlock);
        }
        // Room in the scheduler for every fragment at once, in the event
        // queue for the self-delivery, and in the transmit queue for every
        // fragment: a runtime that does not take datagrams slows casts down
        // rather than losing them.
        let tx_full = self.tx.len() + frags + FANOUT > TX_QUEUE;
        if self.stalled() || frags + 4 * FANOUT > QUEUE || self.app.is_full() || tx_full {
            return Err(SendError::WouldBlock);
        }
        if self.spec.contains(LayerKind::Flow) {
            let ok = match what {
                Blocked::Cast(l) | Blocked::Subcast(l) => {
                    self.layers.flow.admits_cast(&self.shared, l)
                }
                Blocked::Send(to, l) => self.layers.flow.admits_send(&self.shared, to, l),
            };
            if !ok {
                return Err(SendError::WouldBlock);
            }
        }
        Ok(())
    }

    /// After each input: if a refused message would now pass, say so.
    pub(super) fn check_writable(&mut self) {
        if let Some(b) = self.blocked {
            if self.admission(b).is_ok() && !self.app.is_full() {
                self.blocked = None;
                let _ = self.app.push_back(AppItem::Writable);
            }
        }
    }
}
