//! Stacks: the layer list, the scheduler that passes events between layers,
//! and the context a layer sees while it handles one.
//!
//! One FIFO queue per endpoint holds every event in flight between layers.
//! The scheduler takes the oldest, hands it to the layer it is addressed to,
//! and that layer may emit new events up or down (they join the back of the
//! queue). No layer is ever re-entered and nothing runs concurrently inside
//! a stack: Ensemble's "life is easy" rule.
//!
//! Events that leave the top of the stack become application events; a
//! datagram leaves the bottom through the transmit queue (`TxQueue`).

mod event;
mod spec;

pub(crate) use event::{Down, Item, Up};
pub use spec::{LayerKind, MAX_LAYERS, Property, StackSpec};

use core::net::SocketAddr;

use heapless::Deque;

use crate::buffer::{Msg, Pool};
use crate::config::Params;
use crate::id::{Rank, RankSet};
use crate::rng::Rng;
use crate::stats::Stats;
use crate::time::Instant;
use crate::view::{View, ViewState};

/// Events the scheduler can hold at once.
pub(crate) const QUEUE: usize = 64;
/// Room a layer may use while handling one event without checking
/// [`Cx::room`]. Layers that may emit more (Frag splitting, Mnak releasing
/// buffered messages) check the room and continue later through `resume`.
pub(crate) const FANOUT: usize = 4;
/// Position of the application above the top layer.
pub(crate) const TO_APP: u8 = u8::MAX;

/// An event addressed to the layer at `pos` (or to the application).
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) pos: u8,
    pub(crate) item: Item,
}

/// The scheduler's FIFO.
pub(crate) type Queue = Deque<Queued, QUEUE>;

/// What a member's backlog of unconfirmed messages amounts to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Backlog {
    pub(crate) msgs: u32,
    pub(crate) bytes: u32,
}

/// Vectors one layer computes and others read (see [`event`] for why they
/// are not carried in events). Each field has exactly one writer, named on it.
#[derive(Debug)]
pub(crate) struct Shared<const M: usize> {
    /// Mnak: casts received in order from each member (my own: sent). My
    /// row of the acknowledgement matrix.
    pub(crate) received: [u32; M],
    /// Stable: casts of each member that every live member has received.
    pub(crate) stability: [u32; M],
    /// Stable: most casts of each member that any live member has received.
    pub(crate) numcast: [u32; M],
    /// Stable: for each member, a live member holding its `numcast` casts,
    /// the one to ask for retransmissions when the sender itself is gone.
    pub(crate) holder: [Rank; M],
    /// Mnak: my own casts not yet stable.
    pub(crate) unstable: Backlog,
    /// Total: my own casts not yet delivered back to me in total order.
    /// The endpoint bounds it like `unstable`: a member cannot run ahead of
    /// the sequencer, and what every member holds unordered stays bounded.
    pub(crate) unordered: Backlog,
    /// Pt2pt: my sends to each member not yet acknowledged.
    pub(crate) unacked: [Backlog; M],
    /// Gmp: members considered failed in the view change under way: no one
    /// sends to them, stability does not wait for them.
    pub(crate) failed: RankSet,
    /// Sync: casts Mnak may deliver from each member (`u32::MAX`: no limit).
    /// During a view change, a failed member's are frozen, then everyone's
    /// are set to the cut.
    pub(crate) limit: [u32; M],
    /// Sync: a cut is being delivered; Mnak reports when it is reached.
    pub(crate) cut_active: bool,
    /// Gmp: for each member, a survivor that holds its casts up to the cut.
    pub(crate) cut_holder: [Option<Rank>; M],
    /// Gmp (coordinator): the view being proposed, annotated on its way up
    /// by Primary and Switch.
    pub(crate) proposal: Option<ViewState<M>>,
    /// Gmp: the view to install next.
    pub(crate) next: Option<ViewState<M>>,
    /// Sync: casts and sends held for the next view.
    pub(crate) held: Backlog,
    /// Gmp (coordinator) to Primary: what the proposal's members reported.
    pub(crate) primary_check: PrimaryCheck,
}

/// What Primary needs beyond the proposal to decide whether it is primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrimaryCheck {
    /// The proposal takes in a merging view, whose members' history this
    /// coordinator does not know.
    pub(crate) merge: bool,
    /// The proposal holds a majority of every earlier proposal that a
    /// member flushed for but never saw installed (and that others may have
    /// installed as primary).
    pub(crate) settles_ambiguity: bool,
    /// Members of the proposal that may count towards the first primary view.
    pub(crate) founders: u16,
}

impl PrimaryCheck {
    const NONE: PrimaryCheck = PrimaryCheck {
        merge: false,
        settles_ambiguity: true,
        founders: 0,
    };
}

impl<const M: usize> Shared<M> {
    pub(crate) fn new() -> Self {
        Shared {
            received: [0; M],
            stability: [0; M],
            numcast: [0; M],
            holder: [Rank(0); M],
            unstable: Backlog::default(),
            unordered: Backlog::default(),
            unacked: [Backlog::default(); M],
            failed: RankSet::EMPTY,
            limit: [u32::MAX; M],
            cut_active: false,
            cut_holder: [None; M],
            proposal: None,
            next: None,
            held: Backlog::default(),
            primary_check: PrimaryCheck::NONE,
        }
    }

    /// Starts a new view: every per-view vector back to its initial value;
    /// what Sync holds for the new view stays.
    pub(crate) fn reset_for_view(&mut self) {
        let held = self.held;
        *self = Shared::new();
        self.held = held;
    }
}

/// Stable's acknowledgement matrix: `M × M` counters kept in the caller's
/// storage after the pool slots, so that an endpoint of hundreds of members
/// is not a value of hundreds of kilobytes (which a debug build copies
/// around on the stack).
pub(crate) struct Acks<'a> {
    bytes: &'a mut [u8],
    width: usize,
}

impl<'a> Acks<'a> {
    /// Bytes a matrix for `members` takes.
    pub(crate) const fn bytes_for(members: usize) -> usize {
        members * members * 4
    }

    pub(crate) fn new(bytes: &'a mut [u8], width: usize) -> Self {
        Acks { bytes, width }
    }

    fn at(&self, t: usize, s: usize) -> usize {
        (t * self.width + s) * 4
    }

    /// `acks[t][s]` (0 outside the matrix).
    pub(crate) fn get(&self, t: usize, s: usize) -> u32 {
        let i = self.at(t, s);
        self.bytes
            .get(i..i + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Sets `acks[t][s]` (ignored outside the matrix).
    pub(crate) fn set(&mut self, t: usize, s: usize, v: u32) {
        let i = self.at(t, s);
        if let Some(b) = self.bytes.get_mut(i..i + 4) {
            b.copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Every counter back to zero.
    pub(crate) fn clear(&mut self) {
        self.bytes.fill(0);
    }
}

/// Sizes that follow from the stack and the slot size.
#[derive(Clone, Debug)]
pub(crate) struct Geometry {
    /// `headroom[i]`: bytes needed in front of a message that layer `i`
    /// sends down: the prefix plus the largest headers of layers `i..`.
    pub(crate) headroom: heapless::Vec<u16, { MAX_LAYERS + 1 }>,
    /// Payload bytes per fragment (and the largest message without Frag).
    pub(crate) frag_payload: usize,
    /// Largest application message.
    pub(crate) max_message: usize,
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TxDest {
    /// Members of the current view.
    Ranks(RankSet),
    /// An address, perhaps outside the view.
    Addr(SocketAddr),
}

/// A datagram waiting for the runtime, possibly for several destinations.
#[derive(Debug)]
pub(crate) struct TxItem {
    pub(crate) msg: Msg,
    pub(crate) dest: TxDest,
}

/// Datagrams ready to send: room for a whole fragmented message beside
/// control traffic.
pub(crate) const TX_QUEUE: usize = QUEUE;
/// Datagrams ready to send.
pub(crate) type TxQueue = Deque<TxItem, TX_QUEUE>;

/// What a layer sees while handling an event: the clock, the pool, the view,
/// the shared board, and the way to emit events.
pub(crate) struct Cx<'a, const M: usize> {
    /// The current time.
    pub(crate) now: Instant,
    /// Message storage.
    pub(crate) pool: Pool<'a>,
    /// The current view.
    pub(crate) view: &'a View<M>,
    /// The shared board.
    pub(crate) shared: &'a mut Shared<M>,
    /// Group parameters.
    pub(crate) params: &'a Params,
    /// Counters.
    pub(crate) stats: &'a mut Stats,
    /// Seeded randomness.
    pub(crate) rng: &'a mut Rng,
    /// Outgoing datagrams (Bottom only).
    pub(crate) tx: &'a mut TxQueue,
    /// Stable's matrix.
    pub(crate) acks: Acks<'a>,
    pub(crate) geometry: &'a Geometry,
    queue: &'a mut Queue,
    pos: u8,
    bottom: u8,
}

/// The parts of an endpoint a [`Cx`] borrows, gathered so that the endpoint
/// can lend them and its layers at the same time.
pub(crate) struct Env<'a, const M: usize> {
    pub(crate) pool: Pool<'a>,
    pub(crate) view: &'a View<M>,
    pub(crate) shared: &'a mut Shared<M>,
    pub(crate) params: &'a Params,
    pub(crate) stats: &'a mut Stats,
    pub(crate) rng: &'a mut Rng,
    pub(crate) tx: &'a mut TxQueue,
    pub(crate) acks: Acks<'a>,
    pub(crate) geometry: &'a Geometry,
    pub(crate) queue: &'a mut Queue,
}

impl<'a, const M: usize> Env<'a, M> {
    /// A context for the layer at `pos` of a stack of `depth` layers.
    pub(crate) fn cx(self, now: Instant, pos: usize, depth: usize) -> Cx<'a, M> {
        Cx {
            now,
            pool: self.pool,
            view: self.view,
            shared: self.shared,
            params: self.params,
            stats: self.stats,
            rng: self.rng,
            tx: self.tx,
            acks: self.acks,
            geometry: self.geometry,
            queue: self.queue,
            pos: pos as u8,
            bottom: depth.saturating_sub(1) as u8,
        }
    }
}

impl<const M: usize> Cx<'_, M> {
    /// Passes an event to the layer above (or to the application from Top).
    pub(crate) fn up(&mut self, ev: Up) {
        let pos = self.pos.checked_sub(1).unwrap_or(TO_APP);
        self.enqueue(pos, Item::Up(ev));
    }

    /// Passes an event to the layer below. Bottom never calls this: it
    /// hands datagrams to [`Cx::tx`].
    pub(crate) fn down(&mut self, ev: Down) {
        if self.pos >= self.bottom {
            // A layer below Bottom does not exist; treat as a dropped event.
            debug_assert!(false, "down() called from Bottom");
            self.drop_item(Item::Down(ev));
            return;
        }
        self.enqueue(self.pos + 1, Item::Down(ev));
    }

    fn enqueue(&mut self, pos: u8, item: Item) {
        if let Err(q) = self.queue.push_back(Queued { pos, item }) {
            // Layers keep within FANOUT or check `room()`; reaching this is a bug.
            debug_assert!(false, "scheduler queue overflow");
            self.drop_item(q.item);
        }
    }

    fn drop_item(&mut self, item: Item) {
        self.stats.queue_overflow += 1;
        if let Some(m) = item.into_msg() {
            self.pool.free(m);
        }
    }

    /// Free places in the scheduler queue.
    pub(crate) fn room(&self) -> usize {
        QUEUE - self.queue.len()
    }

    /// Whether a layer may release one more buffered message now, keeping
    /// [`FANOUT`] places for what that message causes.
    pub(crate) fn can_release(&self) -> bool {
        self.room() > 2 * FANOUT
    }

    /// Whether a layer may start one more optional datagram (a
    /// retransmission): the transmit queue keeps room for [`FANOUT`]
    /// datagrams beyond it, so repairs never push out new traffic.
    pub(crate) fn can_transmit(&self) -> bool {
        self.tx.len() + 2 * FANOUT < TX_QUEUE
    }

    /// Headroom for a message this layer sends down (its own header included).
    pub(crate) fn headroom(&self) -> usize {
        self.geometry
            .headroom
            .get(self.pos as usize)
            .copied()
            .unwrap_or(0) as usize
    }

    /// My rank in the view.
    pub(crate) fn me(&self) -> Rank {
        self.view.my_rank()
    }

    /// Frees a message that is not passed on.
    pub(crate) fn free(&mut self, msg: Msg) {
        self.pool.free(msg);
    }
}
