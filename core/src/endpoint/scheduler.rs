//! The scheduler: one FIFO of events between layers, run to completion
//! after every input; and the install of a new view.

use super::membership::Status;
use super::{AppItem, Endpoint};
use crate::buffer::Pool;
use crate::layers::{Layer, on_layer};
use crate::stack::{Acks, Down, Env, Item, LayerKind, TO_APP, Up};
use crate::time::Instant;

/// What the scheduler asks of a layer.
pub(super) enum Op {
    Up(Up),
    Down(Down),
    Timeout,
    Resume,
    Install,
    FinishView,
}

impl<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>> Endpoint<M, B> {
    /// Hands `op` to the layer at `pos`, with a context for it.
    pub(super) fn call(&mut self, now: Instant, pos: usize, op: Op) {
        let depth = self.spec.layers().len();
        let Some(kind) = self.spec.layers().get(pos).copied() else {
            return;
        };
        let (slots, tables) = self.storage.as_mut().split_at_mut(self.tables_at);
        let env = Env {
            pool: Pool::new(slots, &mut self.pool),
            acks: Acks::new(tables, M),
            view: &self.view,
            shared: &mut self.shared,
            params: &self.params,
            stats: &mut self.stats,
            rng: &mut self.rng,
            tx: &mut self.tx,
            geometry: &self.geometry,
            queue: &mut self.queue,
        };
        let mut cx = env.cx(now, pos, depth);
        on_layer!(kind, mut self.layers, l => match op {
            Op::Up(ev) => l.up(ev, &mut cx),
            Op::Down(ev) => l.down(ev, &mut cx),
            Op::Timeout => l.timeout(&mut cx),
            Op::Resume => l.resume(&mut cx),
            Op::Install => l.install(&mut cx),
            Op::FinishView => l.finish_view(&mut cx),
        });
    }

    /// Whether the scheduler is waiting for the application to drain events.
    ///
    /// `run` empties the queue unless an event for the application finds
    /// the event queue full; until the application polls, the endpoint takes
    /// no new input (datagrams are dropped and counted as `backlog`, casts
    /// get `WouldBlock`, timers wait) so that the scheduler queue never has
    /// to hold more than one input's worth of events.
    pub(super) fn stalled(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether a layer has work it stopped for lack of room (Sync releasing
    /// held messages, Mnak releasing buffered ones, a view transfer).
    pub(super) fn layers_pending(&self) -> bool {
        self.spec
            .layers()
            .iter()
            .any(|kind| on_layer!(*kind, ref self.layers, l => Layer::<M>::pending(l)))
    }

    /// Processes queued events until the queue is empty or the application
    /// must drain events first.
    pub(super) fn run(&mut self, now: Instant) {
        self.now = self.now.max(now);
        loop {
            while let Some(front) = self.queue.front() {
                if front.pos == TO_APP {
                    // A view is installed only once every event of the old
                    // view ahead of it has been handled, and those behind
                    // it too: they were caused in the old view.
                    let install = matches!(front.item, Item::Up(Up::Install { .. }));
                    // (Were only installs behind it, rotating would never
                    // end; Gmp makes one install per view, and `install`
                    // ignores one that finds no view waiting.)
                    let only_installs = self
                        .queue
                        .iter()
                        .all(|q| q.pos == TO_APP && matches!(q.item, Item::Up(Up::Install { .. })));
                    if install && self.queue.len() > 1 && !only_installs {
                        if let Some(q) = self.queue.pop_front() {
                            let _ = self.queue.push_back(q);
                        }
                        continue;
                    }
                    // ... and once the application has taken every event of
                    // the old view: they name senders by rank and refer to
                    // `self.view`, which the install replaces.
                    if install && !self.app.is_empty() {
                        return;
                    }
                    // ... and once the layers that hold messages back have
                    // delivered what the view still owes (see `finish_view`).
                    if install && self.finish_view(now) {
                        if let Some(q) = self.queue.pop_front() {
                            let _ = self.queue.push_back(q);
                        }
                        continue;
                    }
                    if self.app.is_full() {
                        return;
                    }
                    if let Some(q) = self.queue.pop_front() {
                        self.deliver_to_app(now, q.item);
                    }
                    continue;
                }
                let Some(q) = self.queue.pop_front() else {
                    break;
                };
                let pos = q.pos as usize;
                match q.item {
                    Item::Up(ev) => self.call(now, pos, Op::Up(ev)),
                    Item::Down(ev) => self.call(now, pos, Op::Down(ev)),
                }
            }
            let mut resumed = false;
            for pos in 0..self.spec.layers().len() {
                let kind = self.spec.layers()[pos];
                if on_layer!(kind, ref self.layers, l => Layer::<M>::pending(l)) {
                    resumed = true;
                    self.call(now, pos, Op::Resume);
                }
            }
            if !resumed || self.queue.is_empty() {
                break;
            }
        }
        self.check_writable();
    }

    /// Lets the layers end the view, bottom-up (Layer::finish_view): each
    /// is called once the events the layers below it emitted have all been
    /// handled, and again while it emits more. Returns whether a layer
    /// emitted events, which must run before the install; `false` once
    /// every layer is done.
    fn finish_view(&mut self, now: Instant) -> bool {
        let mut pos = self.finishing.map_or(self.spec.layers().len(), usize::from);
        while pos > 0 {
            let before = self.queue.len();
            self.call(now, pos - 1, Op::FinishView);
            if self.queue.len() > before {
                self.finishing = Some(pos as u8);
                return true;
            }
            pos -= 1;
        }
        self.finishing = None;
        false
    }

    fn free_item(&mut self, item: Item) {
        if let Some(m) = item.into_msg() {
            Pool::new(&mut self.storage.as_mut()[..self.tables_at], &mut self.pool).free(m);
        }
    }

    fn deliver_to_app(&mut self, now: Instant, item: Item) {
        let app = match item {
            Item::Up(Up::Cast { from, msg, .. }) => AppItem::Cast { from, msg },
            Item::Up(Up::Send { from, msg, .. }) => AppItem::Send { from, msg },
            Item::Up(Up::Block) => AppItem::Block,
            Item::Up(Up::Heartbeat) => AppItem::Heartbeat,
            Item::Up(Up::Prepare) => AppItem::ViewMessage,
            Item::Up(Up::Exit) => {
                self.exit();
                AppItem::Exit
            }
            Item::Up(Up::Install { msg }) => {
                self.install(now, msg);
                return;
            }
            other => {
                self.free_item(other);
                return;
            }
        };
        if let Err(AppItem::Cast { msg, .. } | AppItem::Send { msg, .. }) = self.app.push_back(app)
        {
            // `run` checks for room first; unreachable.
            Pool::new(&mut self.storage.as_mut()[..self.tables_at], &mut self.pool).free(msg);
        }
    }

    /// Installs the view Gmp left in `Shared::next`: every layer starts it
    /// afresh (a new stack, in Ensemble's words), and the application hears
    /// of it before anything of the new view.
    fn install(&mut self, now: Instant, msg: Option<crate::buffer::Msg>) {
        let Some(state) = self.shared.next.take() else {
            if let Some(m) = msg {
                Pool::new(&mut self.storage.as_mut()[..self.tables_at], &mut self.pool).free(m);
            }
            return;
        };
        let me = self.view.my_endpoint();
        let Some(rank) = state.rank_of(me) else {
            if let Some(m) = msg {
                Pool::new(&mut self.storage.as_mut()[..self.tables_at], &mut self.pool).free(m);
            }
            return;
        };
        // Switch may have changed the stack; a stack this endpoint cannot
        // run (too large for its slots) ends its membership.
        if state.stack != self.spec {
            match Self::geometry(
                &state.stack,
                &self.params,
                self.pool.slot_size(),
                self.pool.capacity(),
            ) {
                Ok(g) => {
                    self.clear_layers();
                    self.geometry = g;
                    self.spec = state.stack.clone();
                    let frags = self
                        .geometry
                        .max_message
                        .div_ceil(self.geometry.frag_payload);
                    self.layers.frag.set_max_frags(frags);
                }
                Err(_) => {
                    if let Some(m) = msg {
                        Pool::new(&mut self.storage.as_mut()[..self.tables_at], &mut self.pool)
                            .free(m);
                    }
                    self.exit();
                    let _ = self.app.push_back(AppItem::Exit);
                    return;
                }
            }
        }
        self.view = self.view.next(state, rank);
        self.shared.reset_for_view();
        let _ = self.app.push_back(AppItem::View { msg });
        self.stats.views += 1;
        info!(
            "view {:?} installed: {} members, rank {}, primary {}",
            crate::fmt::Dbg(self.view.id()),
            self.view.len(),
            rank.0,
            self.view.is_primary()
        );
        for pos in 0..self.spec.layers().len() {
            self.call(now, pos, Op::Install);
        }
    }

    /// Gives every layer's buffers back (the stack is being replaced).
    fn clear_layers(&mut self) {
        let mut pool = Pool::new(&mut self.storage.as_mut()[..self.tables_at], &mut self.pool);
        for kind in LayerKind::ALL {
            on_layer!(kind, mut self.layers, l => Layer::<M>::clear(l, &mut pool));
        }
    }

    /// This member has left: nothing it holds matters any more.
    fn exit(&mut self) {
        info!("left the group: {:?}", crate::fmt::Dbg(self.view.id()));
        self.status = Status::Left;
        self.finishing = None;
        while let Some(q) = self.queue.pop_front() {
            self.free_item(q.item);
        }
        self.clear_layers();
    }
}
