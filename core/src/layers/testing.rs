//! A harness for layer unit tests: one layer, a small pool, a view, and the
//! events the layer emits, without an endpoint around it.

extern crate std;

use std::vec::Vec;

use core::net::{Ipv4Addr, SocketAddr};

use crate::buffer::{Msg, Pool, PoolState, SLOT_OVERHEAD};
use crate::config::Params;
use crate::id::{EndpointId, Rank, ViewId};
use crate::layers::Layer;
use crate::rng::Rng;
use crate::stack::{Down, Env, Geometry, Item, Queue, Shared, TO_APP, TxQueue, Up};
use crate::stats::Stats;
use crate::time::Instant;
use crate::view::{Member, View, ViewState};

/// Slot size of the harness pool.
pub(crate) const SLOT: usize = 256;
/// Headroom every harness message gets.
pub(crate) const HEADROOM: usize = 96;

/// One layer under test, at position 1 of a three-layer stack.
pub(crate) struct Harness<const M: usize> {
    arena: Vec<u8>,
    acks: Vec<u8>,
    pub(crate) pool: PoolState,
    pub(crate) view: View<M>,
    pub(crate) shared: Shared<M>,
    pub(crate) params: Params,
    pub(crate) stats: Stats,
    rng: Rng,
    pub(crate) tx: TxQueue,
    geometry: Geometry,
    queue: Queue,
    pub(crate) now: Instant,
    up: Vec<Up>,
    down: Vec<Down>,
    /// Queue places left free while a layer runs, if squeezed.
    squeeze: Option<usize>,
}

/// The address of the harness member at `rank`.
pub(crate) fn addr(rank: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 0, 0, rank as u8 + 1), 9000))
}

impl<const M: usize> Harness<M> {
    /// A view of `n` members in which this endpoint has rank `me`.
    pub(crate) fn new(n: usize, me: u16) -> Self {
        let mut arena = std::vec![0u8; 128 * (SLOT + SLOT_OVERHEAD)];
        let pool = PoolState::format(&mut arena, SLOT as u16);
        let mut members = heapless::Vec::new();
        for r in 0..n {
            let _ = members.push(Member {
                id: EndpointId(100 + r as u64),
                addr: addr(r as u16),
            });
        }
        let state = ViewState {
            id: ViewId {
                ltime: 1,
                coordinator: EndpointId(100),
            },
            members,
            primary: false,
            lineage: Default::default(),
            stack: crate::stack::StackSpec::from_properties("").unwrap(),
        };
        let view = View::first("test", "", state, Rank(me));
        let mut headroom = heapless::Vec::new();
        for _ in 0..=crate::stack::MAX_LAYERS {
            let _ = headroom.push(HEADROOM as u16);
        }
        Harness {
            arena,
            acks: std::vec![0u8; crate::stack::Acks::bytes_for(M)],
            pool,
            view,
            shared: Shared::new(),
            params: Params::default(),
            stats: Stats::default(),
            rng: Rng::new(7),
            tx: TxQueue::new(),
            geometry: Geometry {
                headroom,
                frag_payload: 64,
                max_message: 64 * 8,
            },
            queue: Queue::new(),
            now: Instant::from_secs(1),
            up: Vec::new(),
            down: Vec::new(),
            squeeze: None,
        }
    }

    /// The pool, for building or reading messages.
    pub(crate) fn pool(&mut self) -> Pool<'_> {
        Pool::new(&mut self.arena, &mut self.pool)
    }

    /// A one-slot message holding `bytes`.
    pub(crate) fn msg(&mut self, bytes: &[u8]) -> Msg {
        let mut pool = self.pool();
        let mut m = pool.alloc(HEADROOM).unwrap();
        pool.append(&mut m, bytes).unwrap();
        m
    }

    /// A message holding `bytes` in slots of `per_slot` bytes.
    pub(crate) fn chain(&mut self, bytes: &[u8], per_slot: usize) -> Msg {
        self.pool().alloc_with(HEADROOM, per_slot, bytes).unwrap()
    }

    /// All the bytes of a message.
    pub(crate) fn bytes(&mut self, m: &Msg) -> Vec<u8> {
        self.pool().segments(m).flatten().copied().collect()
    }

    /// Slots in use.
    pub(crate) fn in_use(&self) -> usize {
        self.pool.in_use()
    }

    fn run<L: Layer<M>>(
        &mut self,
        layer: &mut L,
        f: impl FnOnce(&mut L, &mut crate::stack::Cx<'_, M>),
    ) {
        let mut fillers = 0;
        if let Some(room) = self.squeeze {
            while self.queue.len() < crate::stack::QUEUE - room {
                let _ = self.queue.push_back(crate::stack::Queued {
                    pos: 2,
                    item: Item::Down(Down::Stable),
                });
                fillers += 1;
            }
        }
        let env = Env {
            pool: Pool::new(&mut self.arena, &mut self.pool),
            view: &self.view,
            shared: &mut self.shared,
            params: &self.params,
            stats: &mut self.stats,
            rng: &mut self.rng,
            tx: &mut self.tx,
            acks: crate::stack::Acks::new(&mut self.acks, M),
            geometry: &self.geometry,
            queue: &mut self.queue,
        };
        let mut cx = env.cx(self.now, 1, 3);
        f(layer, &mut cx);
        for _ in 0..fillers {
            self.queue.pop_front();
        }
        while let Some(q) = self.queue.pop_front() {
            match (q.pos, q.item) {
                (0 | TO_APP, Item::Up(e)) => self.up.push(e),
                (2, Item::Down(e)) => self.down.push(e),
                (pos, item) => panic!("layer emitted to position {pos}: {item:?}"),
            }
        }
    }

    /// Hands `ev` to the layer from below.
    pub(crate) fn up<L: Layer<M>>(&mut self, layer: &mut L, ev: Up) {
        self.run(layer, |l, cx| l.up(ev, cx));
    }

    /// Hands `ev` to the layer from above.
    pub(crate) fn down<L: Layer<M>>(&mut self, layer: &mut L, ev: Down) {
        self.run(layer, |l, cx| l.down(ev, cx));
    }

    /// Runs the layer's timers at `now`.
    pub(crate) fn timeout<L: Layer<M>>(&mut self, layer: &mut L, now: Instant) {
        self.now = now;
        self.run(layer, |l, cx| l.timeout(cx));
    }

    /// Lets the layer start the harness's view.
    pub(crate) fn run_install<L: Layer<M>>(&mut self, layer: &mut L) {
        self.run(layer, |l, cx| l.install(cx));
    }

    /// Lets the layer end the view (the scheduler's `finish_view`).
    pub(crate) fn run_finish<L: Layer<M>>(&mut self, layer: &mut L) {
        self.run(layer, |l, cx| l.finish_view(cx));
    }

    /// Lets the layer continue pending work.
    pub(crate) fn resume<L: Layer<M>>(&mut self, layer: &mut L) {
        self.run(layer, |l, cx| l.resume(cx));
    }

    /// Events the layer sent up since the last call.
    pub(crate) fn take_up(&mut self) -> Vec<Up> {
        core::mem::take(&mut self.up)
    }

    /// Events the layer sent down since the last call.
    pub(crate) fn take_down(&mut self) -> Vec<Down> {
        core::mem::take(&mut self.down)
    }

    /// Passes a reliable cast from rank `from` up into the layer.
    pub(crate) fn cast_up<L: Layer<M>>(&mut self, layer: &mut L, from: u16, msg: Msg) {
        self.up(
            layer,
            Up::Cast {
                from: Rank(from),
                msg,
                reliable: true,
            },
        );
    }

    /// (sender, first byte) of every cast the layer delivered up since the
    /// last call; frees what it took.
    pub(crate) fn delivered_casts(&mut self) -> Vec<(u16, u8)> {
        let up = self.take_up();
        let out = up
            .iter()
            .filter_map(|e| match e {
                Up::Cast { from, msg, .. } => Some((from.0, self.pool().head_bytes(msg)[0])),
                _ => None,
            })
            .collect();
        self.finish(up);
        out
    }

    /// Frees the messages of events a test has looked at.
    pub(crate) fn finish<E: Into<Item>>(&mut self, events: Vec<E>) {
        for e in events {
            if let Some(m) = e.into().into_msg() {
                self.pool().free(m);
            }
        }
    }

    /// From now on, leaves only `room` free places in the scheduler queue
    /// while the layer runs, so a test can see it hold back work.
    pub(crate) fn squeeze_queue(&mut self, room: usize) {
        self.squeeze = Some(room);
    }

    /// Undoes [`Harness::squeeze_queue`].
    pub(crate) fn unsqueeze_queue(&mut self) {
        self.squeeze = None;
    }
}

impl From<Up> for Item {
    fn from(e: Up) -> Item {
        Item::Up(e)
    }
}

impl From<Down> for Item {
    fn from(e: Down) -> Item {
        Item::Down(e)
    }
}
