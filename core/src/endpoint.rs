//! The endpoint: one member of one group, as a sans-IO state machine.
//!
//! Inputs: [`Endpoint::handle_datagram`], [`Endpoint::handle_timeout`] and the
//! downcalls ([`Endpoint::cast`], [`Endpoint::send`]). Outputs, to be drained
//! after every input until each returns `None`: [`Endpoint::poll_transmit`]
//! (datagrams for the runtime), [`Endpoint::poll_event`] (events for the
//! application) and [`Endpoint::poll_timeout`] (when to call
//! `handle_timeout` next). The endpoint never reads a clock, never does I/O
//! and never allocates; given the same inputs it produces the same outputs.
//!
//! ```
//! use consort_core::{Config, EndpointId, Endpoint, Event, Instant, Member};
//! use core::net::SocketAddr;
//!
//! let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
//! let b: SocketAddr = "127.0.0.1:7002".parse().unwrap();
//! let view = [Member { id: EndpointId(1), addr: a }, Member { id: EndpointId(2), addr: b }];
//! let mut one = Endpoint::<8, _>::new(&Config::new("demo", EndpointId(1), 1), &view, vec![0u8; 64 * 1024], 1024).unwrap();
//! let mut two = Endpoint::<8, _>::new(&Config::new("demo", EndpointId(2), 2), &view, vec![0u8; 64 * 1024], 1024).unwrap();
//!
//! let now = Instant::ZERO;
//! one.cast(now, b"hello").unwrap();
//! while let Some(t) = one.poll_transmit() {
//!     let bytes = t.contents.to_vec();
//!     two.handle_datagram(now, a, &bytes);
//! }
//! match two.poll_event() {
//!     Some(Event::Cast { payload, .. }) => assert!(payload == *b"hello".as_slice()),
//!     other => panic!("{other:?}"),
//! }
//! ```

use core::net::SocketAddr;

use heapless::Deque;

use crate::buffer::{MAX_HEADER, Msg, Pool, PoolState, Segments};
use crate::config::{Config, Params, Protocol};
use crate::error::{ConfigError, SendError};
use crate::event::{Event, Payload, Transmit};
use crate::id::{EndpointId, GroupId, Rank, ViewId};
use crate::layers::{Layer, Layers, max_header, on_layer};
use crate::rng::Rng;
use crate::stack::{
    Down, Env, FANOUT, Geometry, Item, LayerKind, QUEUE, Queue, Queued, Shared, StackSpec, TO_APP,
    TX_QUEUE, TxDest, TxQueue, Up,
};
use crate::stats::Stats;
use crate::time::{Instant, earliest};
use crate::view::{Member, View};

/// Bytes kept free at the end of every datagram for the AEAD tag of the
/// future Auth/Privacy properties, so that turning them on never changes how
/// messages are cut.
pub const SEAL_RESERVE: usize = 16;
/// The most fragments one message may have: the scheduler must hold them all
/// at once when Frag splits a message.
pub const MAX_FRAGMENTS: usize = QUEUE - 4 * FANOUT;
/// Slots the endpoint keeps free for control traffic when it admits a message.
const ADMISSION_RESERVE: usize = 16;
/// Application events that can wait to be polled.
const APP_QUEUE: usize = 32;

/// An event waiting for [`Endpoint::poll_event`].
#[derive(Debug)]
enum AppItem {
    Cast { from: Rank, msg: Msg },
    Send { from: Rank, msg: Msg },
    Writable,
}

/// What was refused last, to tell the application when it would now pass.
#[derive(Debug, Clone, Copy)]
enum Blocked {
    Cast(usize),
    Send(Rank, usize),
}

/// One member of one group: the sans-IO protocol state machine.
///
/// `M` is the most members a view may have (the profile); `B` is the storage
/// for the message pool, any `AsMut<[u8]>`: an array, a `&'static mut [u8]`
/// on a board, a `Vec<u8>` on a host. See [`crate::profile`] for sizes.
pub struct Endpoint<const M: usize, B> {
    storage: B,
    pool: PoolState,
    spec: StackSpec,
    layers: Layers<M>,
    queue: Queue,
    view: View<M>,
    shared: Shared<M>,
    params: Params,
    geometry: Geometry,
    stats: Stats,
    rng: Rng,
    tx: TxQueue,
    app: Deque<AppItem, APP_QUEUE>,
    /// The message of the last event handed out, freed at the next call.
    lent: Option<Msg>,
    blocked: Option<Blocked>,
    /// The latest time the caller has given, for work resumed by a poll.
    now: Instant,
}

impl<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>> Endpoint<M, B> {
    /// Builds an endpoint in a view whose members are given (static membership).
    ///
    /// `storage` holds the message pool, cut into slots of `slot_size` data
    /// bytes ([`SLOT_OVERHEAD`](crate::SLOT_OVERHEAD) more each for bookkeeping);
    /// `slot_size` is also the largest datagram this endpoint sends or accepts.
    pub fn new(
        config: &Config<'_>,
        members: &[Member],
        mut storage: B,
        slot_size: usize,
    ) -> Result<Self, ConfigError> {
        if config.group.is_empty() {
            return Err(ConfigError::EmptyGroupName);
        }
        let spec = match config.protocol {
            Protocol::Properties(p) => StackSpec::from_properties(p)?,
            Protocol::Stack(s) => StackSpec::from_layers(s)?,
        };
        let params = Params::parse(config.params)?;
        if members.len() > M || members.len() > crate::id::MAX_GROUP_SIZE {
            return Err(ConfigError::TooManyMembers {
                members: members.len(),
                capacity: M,
            });
        }
        let mut list = heapless::Vec::new();
        for (i, m) in members.iter().enumerate() {
            if members[..i].iter().any(|o| o.id == m.id) {
                return Err(ConfigError::DuplicateMember(m.id.0));
            }
            // Cannot fail: the length was checked against M above.
            let _ = list.push(*m);
        }
        let my_rank = members
            .iter()
            .position(|m| m.id == config.endpoint)
            .ok_or(ConfigError::NotInView)?;
        let group = GroupId::from_name(config.group);
        let view_id = ViewId {
            ltime: 0,
            coordinator: members[0].id,
        };
        let view = View::new(group, view_id, list, Rank(my_rank as u16));

        let slot_size = slot_size.min(u16::MAX as usize - 1);
        let pool = PoolState::format(storage.as_mut(), slot_size as u16);
        let geometry = Self::geometry(&spec, &params, slot_size, pool.capacity())?;
        let frags = geometry.max_message.div_ceil(geometry.frag_payload);
        let mut layers = Layers::new(&params, group);
        layers.frag.set_max_frags(frags);
        Ok(Endpoint {
            storage,
            pool,
            spec,
            layers,
            queue: Queue::new(),
            view,
            shared: Shared::new(),
            params,
            geometry,
            stats: Stats::default(),
            rng: Rng::new(config.seed),
            tx: TxQueue::new(),
            app: Deque::new(),
            lent: None,
            blocked: None,
            now: Instant::ZERO,
        })
    }

    /// Works out headroom per layer, fragment size and the largest message,
    /// and checks that the pool can carry them.
    fn geometry(
        spec: &StackSpec,
        params: &Params,
        slot_size: usize,
        slots: usize,
    ) -> Result<Geometry, ConfigError> {
        let mut headroom = heapless::Vec::new();
        let layers = spec.layers();
        for i in 0..=layers.len() {
            let below: usize = layers[i..].iter().map(|k| max_header::<M>(*k)).sum();
            // Cannot fail: a spec has at most MAX_LAYERS layers.
            let _ = headroom.push(below.min(u16::MAX as usize) as u16);
        }
        let total = headroom.first().copied().unwrap_or(0) as usize;
        // Some payload must fit beside the headers, or nothing useful can be sent.
        let needed = total + SEAL_RESERVE + 64;
        if slot_size < needed {
            return Err(ConfigError::SlotTooSmall { needed, slot_size });
        }
        let room = slot_size - total - SEAL_RESERVE;
        let frag_payload = match params.frag_size as usize {
            0 => room,
            n => n.min(room),
        };
        // Every fragment of a message in flight takes up to three slots (itself,
        // Local's copy, the retransmission copy) beside a reserve for control.
        let spare = slots.saturating_sub(2 * ADMISSION_RESERVE) / 3;
        let max_message = if spec.contains(LayerKind::Frag) {
            match params.frag_max as usize {
                0 => frag_payload * MAX_FRAGMENTS.min(spare / 2).max(1),
                m => {
                    let frags = m.div_ceil(frag_payload);
                    if frags > MAX_FRAGMENTS {
                        return Err(ConfigError::TooManyFragments {
                            needed: frags,
                            limit: MAX_FRAGMENTS,
                        });
                    }
                    m
                }
            }
        } else {
            frag_payload
        };
        let needed = 3 * max_message.div_ceil(frag_payload) + 2 * ADMISSION_RESERVE;
        if slots < needed {
            return Err(ConfigError::PoolTooSmall {
                needed,
                available: slots,
            });
        }
        debug_assert!(
            layers
                .iter()
                .all(|k| max_header::<M>(*k) <= MAX_HEADER + crate::wire::PREFIX_LEN)
        );
        Ok(Geometry {
            headroom,
            frag_payload,
            max_message,
        })
    }

    // ---- inputs ---------------------------------------------------------

    /// Hands the endpoint a datagram received from `from`.
    ///
    /// Any bytes are accepted: what does not parse, or is not for this
    /// group and view, is counted in [`Stats`] and dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.reclaim();
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += data.len() as u64;
        if data.len() > self.pool.slot_size() {
            self.stats.malformed += 1;
            return;
        }
        if self.stalled() {
            // The application is not draining events: shed load here, where
            // retransmission will make up for it.
            self.stats.backlog += 1;
            return;
        }
        let mut pool = Pool::new(self.storage.as_mut(), &mut self.pool);
        let msg = match pool.alloc_with(0, data.len().max(1), data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.no_buffer += 1;
                return;
            }
        };
        let bottom = self.spec.layers().len() - 1;
        let _ = self.queue.push_back(Queued {
            pos: bottom as u8,
            item: Item::Up(Up::Datagram { from, msg }),
        });
        self.run(now);
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.reclaim();
        if self.stalled() {
            return;
        }
        for pos in 0..self.spec.layers().len() {
            let kind = self.spec.layers()[pos];
            let due = on_layer!(kind, ref self.layers, l => Layer::<M>::deadline(l))
                .is_some_and(|d| d <= now);
            if due {
                self.call(now, pos, Op::Timeout);
            }
        }
        self.run(now);
    }

    /// Casts `payload` to the view (delivered to this member too when the
    /// stack has `Local`).
    pub fn cast(&mut self, now: Instant, payload: &[u8]) -> Result<(), SendError> {
        self.reclaim();
        self.admit(Blocked::Cast(payload.len()))?;
        let msg = self.build(payload)?;
        self.stats.casts += 1;
        let _ = self.queue.push_back(Queued {
            pos: 0,
            item: Item::Down(Down::Cast {
                msg,
                reliable: true,
            }),
        });
        self.run(now);
        Ok(())
    }

    /// Sends `payload` to the member at rank `to`.
    pub fn send(&mut self, now: Instant, to: Rank, payload: &[u8]) -> Result<(), SendError> {
        self.reclaim();
        if to == self.view.my_rank() {
            return Err(SendError::SendToSelf);
        }
        if self.view.member(to).is_none() {
            return Err(SendError::NoSuchMember(to.0));
        }
        self.admit(Blocked::Send(to, payload.len()))?;
        let msg = self.build(payload)?;
        self.stats.sends += 1;
        let _ = self.queue.push_back(Queued {
            pos: 0,
            item: Item::Down(Down::Send {
                to,
                msg,
                reliable: true,
            }),
        });
        self.run(now);
        Ok(())
    }

    fn build(&mut self, payload: &[u8]) -> Result<Msg, SendError> {
        let headroom = self.geometry.headroom.first().copied().unwrap_or(0) as usize;
        let mut pool = Pool::new(self.storage.as_mut(), &mut self.pool);
        pool.alloc_with(headroom, self.geometry.frag_payload, payload)
            .map_err(|_| {
                self.stats.would_block += 1;
                SendError::WouldBlock
            })
    }

    /// Whether a message of this kind and size may enter the stack now.
    fn admit(&mut self, what: Blocked) -> Result<(), SendError> {
        let result = self.admission(what);
        if result == Err(SendError::WouldBlock) {
            self.stats.would_block += 1;
            self.blocked = Some(what);
        }
        result
    }

    fn admission(&self, what: Blocked) -> Result<(), SendError> {
        let len = match what {
            Blocked::Cast(l) | Blocked::Send(_, l) => l,
        };
        let max = self.max_message();
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let frags = len.div_ceil(self.geometry.frag_payload).max(1);
        // Every member keeps this member's casts until they are stable (and
        // this member keeps its sends until they are acknowledged): what one
        // member may have outstanding must fit in everybody's pool.
        let window = self.window_slots();
        let outstanding = match what {
            Blocked::Cast(_) if self.spec.contains(LayerKind::Mnak) => self.shared.unstable.msgs,
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
                Blocked::Cast(l) => self.layers.flow.admits_cast(&self.shared, l),
                Blocked::Send(to, l) => self.layers.flow.admits_send(&self.shared, to, l),
            };
            if !ok {
                return Err(SendError::WouldBlock);
            }
        }
        Ok(())
    }

    // ---- the scheduler --------------------------------------------------

    /// Hands `op` to the layer at `pos`, with a context for it.
    fn call(&mut self, now: Instant, pos: usize, op: Op) {
        let depth = self.spec.layers().len();
        let Some(kind) = self.spec.layers().get(pos).copied() else {
            return;
        };
        let env = Env {
            pool: Pool::new(self.storage.as_mut(), &mut self.pool),
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
        });
    }

    /// Whether the scheduler is waiting for the application to drain events.
    ///
    /// `run` empties the queue unless an event for the application finds
    /// the event queue full; until the application polls, the endpoint takes
    /// no new input (datagrams are dropped and counted as `backlog`, casts
    /// get `WouldBlock`, timers wait) so that the scheduler queue never has
    /// to hold more than one input's worth of events.
    fn stalled(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Processes queued events until the queue is empty or the application
    /// must drain events first.
    fn run(&mut self, now: Instant) {
        self.now = self.now.max(now);
        loop {
            while let Some(front) = self.queue.front() {
                if front.pos == TO_APP {
                    if self.app.is_full() {
                        return;
                    }
                    if let Some(q) = self.queue.pop_front() {
                        self.deliver_to_app(q.item);
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

    fn deliver_to_app(&mut self, item: Item) {
        let app = match item {
            Item::Up(Up::Cast { from, msg, .. }) => AppItem::Cast { from, msg },
            Item::Up(Up::Send { from, msg, .. }) => AppItem::Send { from, msg },
            other => {
                if let Some(m) = other.into_msg() {
                    Pool::new(self.storage.as_mut(), &mut self.pool).free(m);
                }
                return;
            }
        };
        if let Err(AppItem::Cast { msg, .. } | AppItem::Send { msg, .. }) = self.app.push_back(app)
        {
            // `run` checks for room first; unreachable.
            Pool::new(self.storage.as_mut(), &mut self.pool).free(msg);
        }
    }

    fn check_writable(&mut self) {
        if let Some(b) = self.blocked {
            if self.admission(b).is_ok() && !self.app.is_full() {
                self.blocked = None;
                let _ = self.app.push_back(AppItem::Writable);
            }
        }
    }

    /// Frees what the last event lent out, and datagrams already sent.
    fn reclaim(&mut self) {
        let mut pool = Pool::new(self.storage.as_mut(), &mut self.pool);
        if let Some(m) = self.lent.take() {
            pool.free(m);
        }
        while self
            .tx
            .front()
            .is_some_and(|t| matches!(t.dest, TxDest::Ranks(r) if r.is_empty()))
        {
            if let Some(t) = self.tx.pop_front() {
                pool.free(t.msg);
            }
        }
    }

    // ---- outputs --------------------------------------------------------

    /// The next datagram to send, if any. Call until it returns `None`.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.reclaim();
        let item = self.tx.front_mut()?;
        let destination = match &mut item.dest {
            TxDest::Ranks(ranks) => {
                let r = ranks.iter().next()?;
                ranks.remove(r);
                self.view.member(r)?.addr
            }
            TxDest::Addr(a) => {
                let a = *a;
                item.dest = TxDest::Ranks(crate::id::RankSet::EMPTY);
                a
            }
        };
        let item = self.tx.front()?;
        let contents =
            Segments::new(self.storage.as_ref(), self.pool.slot_size(), &item.msg).next()?;
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += contents.len() as u64;
        Some(Transmit {
            destination,
            contents,
        })
    }

    /// The next application event, if any. Call until it returns `None`.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.reclaim();
        let item = self.app.pop_front()?;
        if !self.queue.is_empty() {
            // The scheduler may have been waiting for room in the event queue.
            self.run(self.now);
        }
        let (from, msg, cast) = match item {
            AppItem::Writable => return Some(Event::Writable),
            AppItem::Cast { from, msg } => (from, msg, true),
            AppItem::Send { from, msg } => (from, msg, false),
        };
        let endpoint = self
            .view
            .member(from)
            .map_or(EndpointId::default(), |m| m.id);
        let msg = self.lent.insert(msg);
        let payload = Payload::new(Segments::new(
            self.storage.as_ref(),
            self.pool.slot_size(),
            msg,
        ));
        Some(if cast {
            self.stats.cast_deliveries += 1;
            Event::Cast {
                from,
                endpoint,
                payload,
            }
        } else {
            self.stats.send_deliveries += 1;
            Event::Send {
                from,
                endpoint,
                payload,
            }
        })
    }

    /// When [`Endpoint::handle_timeout`] should next be called, if ever.
    ///
    /// `None` also while events wait to be polled and the endpoint can do
    /// nothing until they are: drain [`Endpoint::poll_event`] first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stalled() {
            return None;
        }
        let mut t = None;
        for kind in self.spec.layers() {
            t = earliest(
                t,
                on_layer!(*kind, ref self.layers, l => Layer::<M>::deadline(l)),
            );
        }
        t
    }

    // ---- state ------------------------------------------------------------

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The current view.
    pub fn view(&self) -> &View<M> {
        &self.view
    }

    /// This endpoint's id.
    pub fn my_endpoint(&self) -> EndpointId {
        self.view.my_endpoint()
    }

    /// The stack in use.
    pub fn stack(&self) -> &StackSpec {
        &self.spec
    }

    /// The group parameters in use.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The largest message [`Endpoint::cast`] and [`Endpoint::send`] accept
    /// in the current view: `frag_max`, or less when the pool must hold the
    /// windows of many members (see [`Endpoint::window_slots`]).
    pub fn max_message(&self) -> usize {
        self.geometry
            .max_message
            .min(self.window_slots() * self.geometry.frag_payload)
    }

    /// Pool slots one member's unconfirmed messages may take at every
    /// member: the pool less its reserves, shared by the members of the
    /// view, with half kept free for early arrivals, deliveries on their way
    /// to the application, and stability that one member learns before
    /// another. This is the memory bound of the protocol, enforced whether
    /// or not the stack has Flow; Flow adds its byte window on top.
    pub fn window_slots(&self) -> usize {
        let shared = self.pool.capacity().saturating_sub(2 * ADMISSION_RESERVE);
        (shared / (2 * self.view.len().max(1))).max(1)
    }

    /// Pool slots: (in use now, most ever in use, total).
    pub fn pool_usage(&self) -> (usize, usize, usize) {
        (
            self.pool.in_use(),
            self.pool.peak_in_use(),
            self.pool.capacity(),
        )
    }
}

/// A summary for debugging: the view, the shared board (each member's row of
/// acknowledgements, stability, NumCast), backlogs and queue lengths.
impl<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>> core::fmt::Debug for Endpoint<M, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n = self.view.len();
        f.debug_struct("Endpoint")
            .field("view", &self.view.id())
            .field("rank", &self.view.my_rank())
            .field("stack", &format_args!("{}", self.spec))
            .field("received", &&self.shared.received[..n])
            .field("stability", &&self.shared.stability[..n])
            .field("numcast", &&self.shared.numcast[..n])
            .field("unstable", &self.shared.unstable)
            .field("unacked", &&self.shared.unacked[..n])
            .field("pool", &self.pool_usage())
            .field("queue", &self.queue.len())
            .field("events", &self.app.len())
            .field("transmits", &self.tx.len())
            .field("deadline", &self.poll_timeout())
            .finish()
    }
}

/// What the scheduler asks of a layer.
enum Op {
    Up(Up),
    Down(Down),
    Timeout,
    Resume,
}
