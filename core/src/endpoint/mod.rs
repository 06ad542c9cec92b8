//! The endpoint: one member of one group, as a sans-IO state machine.
//!
//! Inputs: [`Endpoint::handle_datagram`], [`Endpoint::handle_timeout`] and the
//! downcalls ([`Endpoint::cast`], [`Endpoint::send`], [`Endpoint::block_ok`],
//! [`Endpoint::leave`]...). Outputs, to be drained after every input until
//! each returns `None`: [`Endpoint::poll_transmit`] (datagrams for the
//! runtime), [`Endpoint::poll_event`] (events for the application) and
//! [`Endpoint::poll_timeout`] (when to call `handle_timeout` next). The
//! endpoint never reads a clock, never does I/O and never allocates; given
//! the same inputs it produces the same outputs.
//!
//! An endpoint is built either in a view given to it
//! ([`Endpoint::new`], static membership) or alone, to find its group
//! through seed hosts ([`Endpoint::join`]). Either way its first event is
//! the `View` it starts in.
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
//! assert!(matches!(two.poll_event(), Some(Event::View { .. })));
//! match two.poll_event() {
//!     Some(Event::Cast { payload, .. }) => assert!(payload == *b"hello".as_slice()),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod admission;
mod membership;
mod scheduler;

pub use membership::{RequestError, SendView, Status};

use core::net::SocketAddr;

use heapless::Deque;

use crate::buffer::{MAX_HEADER, Msg, Pool, PoolState, Segments};
use crate::config::{Config, Params, Protocol};
use crate::error::{ConfigError, SendError};
use crate::event::{Event, Payload, Transmit};
use crate::id::{EndpointId, Rank, ViewId};
use crate::layers::{Layer, Layers, Setup, max_header, on_layer};
use crate::rng::Rng;
use crate::stack::{
    Acks, Down, FANOUT, Geometry, Item, LayerKind, QUEUE, Queue, Queued, Shared, StackSpec, TxDest,
    TxQueue, Up,
};
use crate::stats::Stats;
use crate::time::{Instant, earliest};
use crate::view::{Lineage, Member, View, ViewState};

/// Bytes kept free at the end of every datagram for the AEAD tag of the
/// future Auth/Privacy properties, so that turning them on never changes how
/// messages are cut.
pub const SEAL_RESERVE: usize = 16;
/// The most fragments one message may have: the scheduler must hold them all
/// at once when Frag splits a message.
pub const MAX_FRAGMENTS: usize = QUEUE - 4 * FANOUT;
/// Slots the endpoint keeps free for control traffic when it admits a message.
pub(crate) const ADMISSION_RESERVE: usize = 16;
/// Application events that can wait to be polled.
const APP_QUEUE: usize = 32;

/// [`Endpoint::window_slots`] for a pool of `capacity` slots and a view of
/// `members`, in a stack whose ordering layers hold delivered casts back
/// (`holding`): also what Total's sequencer lets stand unstable in its
/// orders.
///
/// Each member's window is counted twice in every pool: Mnak's copies
/// until they are stable, and room for the rest. When Total, Causal or
/// Agree hold casts, a receiver keeps, besides Mnak's copy, the delivered
/// copy until it may be delivered, and that copy outlives stability when
/// the sequencer is gone: the window is then a third of each member's
/// share, so that the other third stays free for the view change that
/// releases them (Sync's held casts, the flush's retransmissions).
pub(crate) fn window_slots(capacity: usize, members: usize, holding: bool) -> usize {
    let shared = capacity.saturating_sub(2 * ADMISSION_RESERVE);
    let shares = if holding { 3 } else { 2 };
    (shared / (shares * members.max(1))).max(1)
}

/// An event waiting for [`Endpoint::poll_event`].
#[derive(Debug)]
enum AppItem {
    Cast { from: Rank, msg: Msg },
    Send { from: Rank, msg: Msg },
    Writable,
    View { msg: Option<Msg> },
    Block,
    ViewMessage,
    Heartbeat,
    Exit,
}

/// What was refused last, to tell the application when it would now pass.
#[derive(Debug, Clone, Copy)]
enum Blocked {
    Cast(usize),
    Send(Rank, usize),
    Subcast(usize),
}

/// One member of one group: the sans-IO protocol state machine.
///
/// `M` is the most members a view may have (the profile); `B` is the storage
/// for the message pool, any `AsMut<[u8]>`: an array, a `&'static mut [u8]`
/// on a board, a `Vec<u8>` on a host. See [`crate::profile`] for sizes.
pub struct Endpoint<const M: usize, B> {
    storage: B,
    /// Where Stable's matrix begins in `storage`, after the pool's slots.
    tables_at: usize,
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
    status: Status,
    /// The latest time the caller has given, for work resumed by a poll.
    now: Instant,
    /// While a view is being finished before an install: how many layers,
    /// counted from the top, have yet to finish (see `finish_view`).
    finishing: Option<u8>,
}

impl<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>> Endpoint<M, B> {
    /// Builds an endpoint in a view whose members are given (static
    /// membership: with Gmp in the stack, failures and leaves still shrink it).
    ///
    /// `storage` holds the message pool, cut into slots of `slot_size` data
    /// bytes ([`SLOT_OVERHEAD`](crate::SLOT_OVERHEAD) more each for
    /// bookkeeping), and after them Stable's `M × M` matrix of 4-byte
    /// counters; [`storage_bytes`](crate::profile::storage_bytes) says how
    /// much to give. `slot_size` is also the largest datagram this endpoint
    /// sends or accepts.
    pub fn new(
        config: &Config<'_>,
        members: &[Member],
        storage: B,
        slot_size: usize,
    ) -> Result<Self, ConfigError> {
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
        let first = members.first().ok_or(ConfigError::NotInView)?.id;
        let state = ViewState {
            id: ViewId {
                ltime: 0,
                coordinator: first,
            },
            members: list,
            primary: false,
            lineage: Lineage::default(),
            stack: Self::stack_of(config)?,
        };
        Self::build(config, state, storage, slot_size, Status::Normal)
    }

    /// Builds an endpoint alone in a view of its own at `address`, to find
    /// its group through `config.seeds` (Heal) and merge into it (Gmp).
    ///
    /// Ensemble's way in: an endpoint never waits for a group before it has
    /// a view. Its status is `Joining` until it has delivered its first view.
    pub fn join(
        config: &Config<'_>,
        address: SocketAddr,
        storage: B,
        slot_size: usize,
    ) -> Result<Self, ConfigError> {
        let me = Member {
            id: config.endpoint,
            addr: address,
        };
        let mut list = heapless::Vec::new();
        list.push(me).map_err(|_| ConfigError::TooManyMembers {
            members: 1,
            capacity: M,
        })?;
        let state = ViewState {
            id: ViewId {
                ltime: 0,
                coordinator: me.id,
            },
            members: list,
            primary: false,
            lineage: Lineage::default(),
            stack: Self::stack_of(config)?,
        };
        Self::build(config, state, storage, slot_size, Status::Joining)
    }

    fn stack_of(config: &Config<'_>) -> Result<StackSpec, ConfigError> {
        match config.protocol {
            Protocol::Properties(p) => StackSpec::from_properties(p),
            Protocol::Stack(s) => StackSpec::from_layers(s),
        }
    }

    fn build(
        config: &Config<'_>,
        mut state: ViewState<M>,
        mut storage: B,
        slot_size: usize,
        status: Status,
    ) -> Result<Self, ConfigError> {
        if config.group.is_empty() {
            return Err(ConfigError::EmptyGroupName);
        }
        if config.group.len() > 64 {
            return Err(ConfigError::GroupNameTooLong(config.group.len()));
        }
        if config.params.len() > 256 {
            return Err(ConfigError::ParamsTooLong(config.params.len()));
        }
        let params = Params::parse(config.params)?;
        let my_rank = state
            .rank_of(config.endpoint)
            .ok_or(ConfigError::NotInView)?;
        let spec = state.stack.clone();
        // A first view is primary when Primary says so, like any other.
        if spec.contains(LayerKind::Primary) {
            state.primary = state.members.len() >= params.primary_quorum as usize;
        }
        let view = View::first(config.group, config.params, state, my_rank);
        let slot_size = slot_size.min(u16::MAX as usize - 1);
        let tables_at = storage
            .as_mut()
            .len()
            .checked_sub(Acks::bytes_for(M))
            .ok_or(ConfigError::StorageTooSmall {
                needed: Acks::bytes_for(M),
                available: storage.as_mut().len(),
            })?;
        let pool = PoolState::format(&mut storage.as_mut()[..tables_at], slot_size as u16);
        let geometry = Self::geometry(&spec, &params, slot_size, pool.capacity())?;
        let setup = Setup {
            group: view.group(),
            seeds: config.seeds,
            view_msg: config.view_msg,
            sync: spec.contains(LayerKind::Sync),
            founder: config.founder,
        };
        let mut layers = Layers::new(&params, &setup);
        layers
            .frag
            .set_max_frags(geometry.max_message.div_ceil(geometry.frag_payload));
        let mut ep = Endpoint {
            storage,
            tables_at,
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
            status,
            now: Instant::ZERO,
            finishing: None,
        };
        // The first view is installed like any other: its event first, then
        // every layer starts it (timers from time zero: they catch up at the
        // caller's first call).
        let _ = ep.app.push_back(AppItem::View { msg: None });
        ep.stats.views += 1;
        for pos in 0..ep.spec.layers().len() {
            ep.call(Instant::ZERO, pos, scheduler::Op::Install);
        }
        ep.run(Instant::ZERO);
        Ok(ep)
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
        // Some payload must fit beside the headers; and Stable's rows and
        // Gmp's reports carry up to five bytes per member in one datagram,
        // Gmp's with its suspicions and ambiguous proposals besides.
        let mut needed = total + SEAL_RESERVE + 64;
        if spec.contains(LayerKind::Stable) {
            needed = needed.max(total + SEAL_RESERVE + 5 * M + 32);
        }
        if spec.contains(LayerKind::Gmp) {
            needed = needed.max(total + SEAL_RESERVE + 5 * M + crate::layers::flush_ok_extra(M));
        }
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
        if self.status == Status::Left {
            return;
        }
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
        let mut pool = Pool::new(&mut self.storage.as_mut()[..self.tables_at], &mut self.pool);
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
        if self.stalled() || self.status == Status::Left {
            return;
        }
        for pos in 0..self.spec.layers().len() {
            let kind = self.spec.layers()[pos];
            let due = on_layer!(kind, ref self.layers, l => Layer::<M>::deadline(l))
                .is_some_and(|d| d <= now);
            if due {
                self.call(now, pos, scheduler::Op::Timeout);
            }
        }
        self.run(now);
    }

    /// Casts `payload` to the view (delivered to this member too when the
    /// stack has `Local`). While the group is blocked for a view change
    /// (after [`Endpoint::block_ok`]), the cast is held and sent in the next
    /// view, and the result says so.
    pub fn cast(&mut self, now: Instant, payload: &[u8]) -> Result<SendView, SendError> {
        self.reclaim();
        self.admit(Blocked::Cast(payload.len()))?;
        let msg = self.build_msg(payload)?;
        self.stats.casts += 1;
        let view = self.send_view();
        self.enter(
            now,
            Down::Cast {
                msg,
                reliable: true,
            },
        );
        Ok(view)
    }

    /// Sends `payload` to the member at rank `to` of the current view
    /// (Ensemble's `Send1`).
    pub fn send(&mut self, now: Instant, to: Rank, payload: &[u8]) -> Result<SendView, SendError> {
        self.reclaim();
        if to == self.view.my_rank() {
            return Err(SendError::SendToSelf);
        }
        if self.view.member(to).is_none() {
            return Err(SendError::NoSuchMember(to.0));
        }
        self.admit(Blocked::Send(to, payload.len()))?;
        let msg = self.build_msg(payload)?;
        self.stats.sends += 1;
        let view = self.send_view();
        self.enter(
            now,
            Down::Send {
                to,
                msg,
                reliable: true,
            },
        );
        Ok(view)
    }

    /// Sends `payload` to the member with this endpoint id (Maestro's
    /// `send(dest, ...)`: ids, unlike ranks, stay the same from view to view).
    pub fn send_to(
        &mut self,
        now: Instant,
        to: EndpointId,
        payload: &[u8],
    ) -> Result<SendView, SendError> {
        let rank = self.view.rank_of(to).ok_or(SendError::NotAMember(to.0))?;
        self.send(now, rank, payload)
    }

    /// Sends `payload` to each of the members with these endpoint ids, as
    /// one message (Maestro's `send(dests, msg)`), with a cast's guarantees:
    /// FIFO with this member's casts, part of the virtual synchrony flush,
    /// and ordered like a cast by Total, Causal and Agree. Each destination
    /// receives it as an [`Event::Send`](crate::Event::Send). Needs the
    /// Subcast layer ([`SendError::NotInStack`] otherwise).
    ///
    /// Unlike a cast, a subcast is not held for the next view during a view
    /// change: it is refused with `WouldBlock` from `block_ok` until the
    /// next view has started, and `Writable` says when to try again.
    ///
    /// ```
    /// use consort_core::{Config, EndpointId, Endpoint, Event, Instant, Member};
    /// let m = |i: u64| Member { id: EndpointId(i), addr: format!("127.0.0.1:{}", 7000 + i).parse().unwrap() };
    /// let view = [m(1), m(2), m(3)];
    /// let cfg = Config::new("g", EndpointId(1), 1).properties("Subcast");
    /// let mut one = Endpoint::<8, _>::new(&cfg, &view, vec![0u8; 64 * 1024], 1024).unwrap();
    /// one.send_to_many(Instant::ZERO, &[EndpointId(2), EndpointId(3)], b"to both").unwrap();
    /// assert!(one.poll_transmit().is_some());
    /// ```
    pub fn send_to_many(
        &mut self,
        now: Instant,
        to: &[EndpointId],
        payload: &[u8],
    ) -> Result<SendView, SendError> {
        self.reclaim();
        if !self.spec.contains(LayerKind::Subcast) {
            return Err(SendError::NotInStack(LayerKind::Subcast));
        }
        let mut dest = crate::id::RankSet::EMPTY;
        for id in to {
            let rank = self.view.rank_of(*id).ok_or(SendError::NotAMember(id.0))?;
            if rank == self.view.my_rank() {
                return Err(SendError::SendToSelf);
            }
            dest.insert(rank);
        }
        self.admit(Blocked::Subcast(payload.len()))?;
        let msg = self.build_msg(payload)?;
        self.stats.sends += 1;
        let view = self.send_view();
        self.enter(now, Down::Subcast { to: dest, msg });
        Ok(view)
    }

    fn build_msg(&mut self, payload: &[u8]) -> Result<Msg, SendError> {
        let headroom = self.geometry.headroom.first().copied().unwrap_or(0) as usize;
        let mut pool = Pool::new(&mut self.storage.as_mut()[..self.tables_at], &mut self.pool);
        pool.alloc_with(headroom, self.geometry.frag_payload, payload)
            .map_err(|_| {
                self.stats.would_block += 1;
                SendError::WouldBlock
            })
    }

    /// Puts a downcall into the top of the stack and runs it.
    fn enter(&mut self, now: Instant, ev: Down) {
        let _ = self.queue.push_back(Queued {
            pos: 0,
            item: Item::Down(ev),
        });
        self.run(now);
    }

    /// Frees what the last event lent out, and datagrams already sent.
    fn reclaim(&mut self) {
        let mut pool = Pool::new(&mut self.storage.as_mut()[..self.tables_at], &mut self.pool);
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
    pub fn poll_event(&mut self) -> Option<Event<'_, M>> {
        self.reclaim();
        if !self.queue.is_empty() || self.layers_pending() {
            // The scheduler may have been waiting for room in the event
            // queue, or for the application to drain the old view's events
            // before an install; layers may have work that waited for the
            // same room. It runs before the next event is taken, so that
            // the event is read against the view it was queued in.
            self.run(self.now);
        }
        let item = self.app.pop_front()?;
        let (from, msg, cast) = match item {
            AppItem::Writable => return Some(Event::Writable),
            AppItem::Block => return Some(Event::Block),
            AppItem::Heartbeat => return Some(Event::Heartbeat { time: self.now }),
            AppItem::ViewMessage => {
                let members = self
                    .shared
                    .proposal
                    .as_ref()
                    .map_or(&[][..], |p| &p.members[..]);
                return Some(Event::ViewMessage { members });
            }
            AppItem::Exit => {
                self.status = Status::Left;
                return Some(Event::Exit);
            }
            AppItem::View { msg } => {
                if matches!(self.status, Status::Joining | Status::Blocked) {
                    self.status = Status::Normal;
                }
                let message = match msg {
                    Some(m) => {
                        let m = self.lent.insert(m);
                        Payload::new(Segments::new(
                            self.storage.as_ref(),
                            self.pool.slot_size(),
                            m,
                        ))
                    }
                    None => Payload::empty(),
                };
                return Some(Event::View {
                    view: &self.view,
                    message,
                });
            }
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
        if self.stalled() || self.status == Status::Left {
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

    /// This endpoint's id (Maestro's `myEndpID`).
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
    /// another (two thirds with Total, Causal or Agree, which hold
    /// deliveries back). This is the memory bound of the protocol, enforced whether
    /// or not the stack has Flow; Flow adds its byte window on top.
    pub fn window_slots(&self) -> usize {
        window_slots(
            self.pool.capacity(),
            self.view.len(),
            self.holds_deliveries(),
        )
    }

    /// Whether the stack has a layer that holds casts back from delivery
    /// (Total, Causal, Agree).
    fn holds_deliveries(&self) -> bool {
        [LayerKind::Total, LayerKind::Causal, LayerKind::Agree]
            .iter()
            .any(|k| self.spec.contains(*k))
    }

    /// The largest datagram this endpoint sends or accepts (a pool slot).
    pub fn slot_size(&self) -> usize {
        self.pool.slot_size()
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
            .field("status", &self.status)
            .field("stack", &format_args!("{}", self.spec))
            .field("received", &&self.shared.received[..n])
            .field("stability", &&self.shared.stability[..n])
            .field("numcast", &&self.shared.numcast[..n])
            .field("failed", &self.shared.failed)
            .field("unstable", &self.shared.unstable)
            .field("held", &self.shared.held)
            .field("pool", &self.pool_usage())
            .field("queue", &self.queue.len())
            .field("events", &self.app.len())
            .field("transmits", &self.tx.len())
            .field("deadline", &self.poll_timeout())
            .field("layer_deadlines", &LayerDeadlines(self))
            .finish()
    }
}

/// Each layer's own deadline, for the debugging summary.
struct LayerDeadlines<'a, const M: usize, B>(&'a Endpoint<M, B>);

impl<const M: usize, B: AsMut<[u8]> + AsRef<[u8]>> core::fmt::Debug for LayerDeadlines<'_, M, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut list = f.debug_list();
        for kind in self.0.spec.layers() {
            if let Some(t) = on_layer!(*kind, ref self.0.layers, l => Layer::<M>::deadline(l)) {
                list.entry(&(kind, t));
            }
        }
        list.finish()
    }
}
