//! The Membership Service engine: one communication engine serving many
//! coordination contexts, each with its own MSS instance.
//!
//! Inputs: [`Service::handle_datagram`], [`Service::handle_timeout`], and
//! the downcalls [`Service::create_context`] and [`Service::add_seed`].
//! Outputs, drained after every input: [`Service::poll_transmit`],
//! [`Service::poll_event`], [`Service::poll_timeout`]. It never reads a
//! clock, never does I/O, never allocates; given the same inputs it makes
//! the same outputs. It implements [`Machine`](crate::driver::Machine), so
//! [`drive`](crate::driver::drive) runs it on any runtime.
//!
//! Member services, proxies and monitors speak to it in datagrams (see
//! [`super::member`], [`super::proxy`], [`super::monitor`] for their sides).
//!
//! ```
//! use consort_core::epidemic::{Config, Service, PeerEntry, MemberEntry, MemberService};
//! use consort_core::Instant;
//! use core::net::SocketAddr;
//!
//! let mss_addr: SocketAddr = "10.0.0.1:7100".parse().unwrap();
//! let ms_addr: SocketAddr = "10.0.1.1:9000".parse().unwrap();
//! let mut mss: Service<_, _> = Service::new(
//!     mss_addr, 1, 42, Config::lan(),
//!     vec![PeerEntry::EMPTY; 64], vec![MemberEntry::EMPTY; 1024],
//! );
//! let mut ms = MemberService::new(ms_addr, 1, "urn:demo", &[mss_addr]).unwrap();
//! let now = Instant::ZERO;
//! ms.start(now);
//! // Carry datagrams both ways until both are quiet.
//! for _ in 0..4 {
//!     while let Some(t) = ms.poll_transmit() {
//!         let b = t.contents.to_vec();
//!         mss.handle_datagram(now, ms_addr, &b);
//!     }
//!     while let Some(t) = mss.poll_transmit() {
//!         let b = t.contents.to_vec();
//!         if t.destination == ms_addr { ms.handle_datagram(now, mss_addr, &b); }
//!     }
//! }
//! assert!(ms.registered_with().is_some());
//! assert_eq!(mss.members("urn:demo").filter(|m| m.status().is_member()).count(), 1);
//! ```

mod gossip;
mod roles;
mod table;

pub use table::{MemberEntry, PeerEntry};

use core::net::SocketAddr;

use heapless::{Deque, String, Vec};
use serde::Serialize;

use super::config::Config;
use super::event::{Change, Event, Stats};
use super::ids::{ContextId, MAX_URI, MemberId, MssId, Status};
use super::wire::{self, Kind, MAX_DATAGRAM, Message};
use crate::event::Transmit;
use crate::rng::Rng;
use crate::time::{Instant, earliest};
use table::Table;

/// Contexts one engine serves at once.
pub const MAX_CONTEXTS: usize = 8;
/// Proxies registered per context at one MSS.
pub const MAX_PROXIES: usize = 8;
/// Monitors registered per context at one MSS.
pub const MAX_MONITORS: usize = 8;
/// Seed addresses (the known MSS a joining one contacts first).
pub const MAX_SEEDS: usize = 8;
/// Encoded datagrams waiting for `poll_transmit`.
const READY: usize = 16;
/// Multi-datagram outputs (digests, member lists, updates) in progress.
const JOBS: usize = 128;
/// Rounds a leaving MSS keeps gossiping its `Left` entry.
const LEAVE_ROUNDS: u32 = 4;
/// One round in this many gossips with a failed peer instead of a live one,
/// and one (half a period later) with a seed: after a partition heals, the
/// two sides hold each other failed and would never talk again; a failed
/// peer that hears it was failed comes back as a new incarnation, and the
/// seeds bridge sides whose tombstones are already gone (Ensemble's Heal
/// layer gossips to its `gossip_hosts` for the same reason).
const HEAL_EVERY: u32 = 8;

/// Why a downcall was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServiceError {
    /// A URI longer than [`MAX_URI`] bytes, or empty.
    BadUri(usize),
    /// Every context slot is in use.
    TooManyContexts,
    /// Every seed slot is in use.
    TooManySeeds,
}

impl core::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServiceError::BadUri(n) => write!(f, "context URI of {n} bytes (1 to {MAX_URI})"),
            ServiceError::TooManyContexts => write!(f, "all {MAX_CONTEXTS} context slots in use"),
            ServiceError::TooManySeeds => write!(f, "all {MAX_SEEDS} seed slots in use"),
        }
    }
}

impl core::error::Error for ServiceError {}

#[derive(Clone, Copy, Debug)]
struct ProxyReg {
    id: MemberId,
    addr: SocketAddr,
    misses: u8,
}

#[derive(Clone, Copy, Debug)]
struct MonitorReg {
    addr: SocketAddr,
    changes_only: bool,
    acked: u32,
    last_ack: Instant,
}

/// One coordination context at this engine: its MSS instance.
#[derive(Clone, Debug)]
struct Context {
    id: ContextId,
    uri: String<MAX_URI>,
    me: MssId,
    joined: bool,
    /// Version of this MSS's own member list (stamps of its entries).
    version: u32,
    /// Highest stamp of its own tombstones removed.
    floor: u32,
    /// Change numbers for monitors.
    lseq: u32,
    next_round: Instant,
    /// Rounds run, to pace the occasional contact of failed peers and seeds.
    rounds: u32,
    next_probe: Instant,
    next_monitor: Instant,
    probe_seq: u32,
    idle_since: Option<Instant>,
    /// Leaving: rounds of `Left` gossip still to send.
    leaving: Option<u32>,
    proxies: Vec<ProxyReg, MAX_PROXIES>,
    monitors: Vec<MonitorReg, MAX_MONITORS>,
}

/// Room for a control message: probes, answers, registrations (the
/// largest, a `Probe` with three IPv6 addresses, is under 150 bytes).
const CONTROL_LEN: usize = 192;

/// A small datagram encoded and waiting.
#[derive(Clone, Debug)]
struct Control {
    to: SocketAddr,
    gossip: bool,
    len: u16,
    buf: [u8; CONTROL_LEN],
}

/// A datagram encoded and waiting.
#[derive(Clone, Debug)]
struct Ready {
    to: SocketAddr,
    gossip: bool,
    len: u16,
    buf: [u8; MAX_DATAGRAM],
}

/// A multi-datagram output, produced one datagram per `poll_transmit`.
#[derive(Clone, Copy, Debug)]
enum Job {
    /// The peer table of `slot`, after `after`.
    Digest {
        slot: u8,
        to: SocketAddr,
        reply: bool,
        after: Option<MssId>,
    },
    /// `owner`'s member entries with stamps above `since`; with `all`, the
    /// following owners' too (a full round).
    Members {
        slot: u8,
        to: SocketAddr,
        owner: MssId,
        since: u32,
        all: bool,
    },
    /// A `MembershipUpdate` for a monitor: changes above `from`, or the
    /// whole state from index `from`.
    Update {
        slot: u8,
        to: SocketAddr,
        full: bool,
        from: u32,
    },
}

/// The Membership Service engine; the module docs of `epidemic::service` say how it works.
///
/// `P` and `M` are the storage of the peer and member tables
/// (`AsMut<[PeerEntry]>`, `AsMut<[MemberEntry]>`), shared by every context:
/// size them for the peers and member services of all contexts together,
/// tombstones included. `EQ` is the length of the event queue; `CQ` of the
/// queue of small control datagrams (a probe round sends one per member
/// service registered here, more to suspects).
pub struct Service<P, M, const EQ: usize = 256, const CQ: usize = 256> {
    addr: SocketAddr,
    incarnation: u64,
    config: Config,
    seeds: Vec<SocketAddr, MAX_SEEDS>,
    contexts: [Option<Context>; MAX_CONTEXTS],
    peers: Table<P, PeerEntry>,
    members: Table<M, MemberEntry>,
    control: Deque<Control, CQ>,
    ready: Deque<Ready, READY>,
    jobs: Deque<Job, JOBS>,
    out: [u8; MAX_DATAGRAM],
    events: Deque<Event, EQ>,
    stats: Stats,
    rng: Rng,
    nonce: u32,
    now: Instant,
}

impl<P, M, const EQ: usize, const CQ: usize> core::fmt::Debug for Service<P, M, EQ, CQ> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Service")
            .field("addr", &self.addr)
            .field("incarnation", &self.incarnation)
            .field("peers", &self.peers.len)
            .field("members", &self.members.len)
            .finish_non_exhaustive()
    }
}

impl<P, M, const EQ: usize, const CQ: usize> Service<P, M, EQ, CQ>
where
    P: AsRef<[PeerEntry]> + AsMut<[PeerEntry]>,
    M: AsRef<[MemberEntry]> + AsMut<[MemberEntry]>,
{
    /// An engine listening on `addr`, drawing random choices from `seed`,
    /// with table storage `peers` and `members`.
    ///
    /// Its MSS instances take incarnations from `incarnation` upwards, one
    /// per context activation and one per reincarnation, so the runtime
    /// must give a restarted engine a larger number than any its previous
    /// life used (its boot time in microseconds, say).
    pub fn new(
        addr: SocketAddr,
        incarnation: u64,
        seed: u64,
        config: Config,
        peers: P,
        members: M,
    ) -> Self {
        let mut config = config;
        config.max_datagram = config.max_datagram.clamp(256, MAX_DATAGRAM);
        Service {
            addr,
            incarnation,
            config,
            seeds: Vec::new(),
            contexts: Default::default(),
            peers: Table::new(peers),
            members: Table::new(members),
            control: Deque::new(),
            ready: Deque::new(),
            jobs: Deque::new(),
            out: [0; MAX_DATAGRAM],
            events: Deque::new(),
            stats: Stats::default(),
            rng: Rng::new(seed),
            nonce: 0,
            now: Instant::ZERO,
        }
    }

    /// Adds an MSS address to contact when a context has no known peer
    /// (the coordination service's list of existing MSS).
    pub fn add_seed(&mut self, seed: SocketAddr) -> Result<(), ServiceError> {
        if seed == self.addr || self.seeds.contains(&seed) {
            return Ok(());
        }
        self.seeds
            .push(seed)
            .map_err(|_| ServiceError::TooManySeeds)
    }

    /// `CreateCoordinationContext` as a downcall: activates the context
    /// here. The MSS joins the context's set of MSS only when a member
    /// service registers.
    pub fn create_context(&mut self, now: Instant, uri: &str) -> Result<ContextId, ServiceError> {
        self.now = now;
        self.activate(uri)
            .map(|slot| self.ctx(slot).map_or(ContextId(0), |c| c.id))
    }

    // ---- outputs ---------------------------------------------------------

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        loop {
            if let Some(r) = self.control.pop_front() {
                let len = r.len as usize;
                self.out[..len].copy_from_slice(&r.buf[..len]);
                self.count_out(len, r.gossip);
                return Some(Transmit {
                    destination: r.to,
                    contents: &self.out[..len],
                });
            }
            if let Some(r) = self.ready.pop_front() {
                let len = r.len as usize;
                self.out[..len].copy_from_slice(&r.buf[..len]);
                self.count_out(len, r.gossip);
                return Some(Transmit {
                    destination: r.to,
                    contents: &self.out[..len],
                });
            }
            let job = self.jobs.pop_front()?;
            if let Some((to, len)) = self.run_job(job) {
                self.count_out(len, true);
                return Some(Transmit {
                    destination: to,
                    contents: &self.out[..len],
                });
            }
        }
    }

    fn count_out(&mut self, len: usize, gossip: bool) {
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += len as u64;
        if gossip {
            self.stats.gossip_bytes_out += len as u64;
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Service::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = None;
        for c in self.contexts.iter().flatten() {
            if c.joined {
                t = earliest(t, Some(c.next_round));
            }
            t = earliest(t, Some(c.next_probe));
            if !c.monitors.is_empty() {
                t = earliest(t, Some(c.next_monitor));
            }
            if let Some(s) = c.idle_since {
                t = earliest(t, Some(s + self.config.idle_after));
            }
        }
        t
    }

    // ---- inputs ----------------------------------------------------------

    /// Hands the engine a datagram from `from`. Anything is accepted: what
    /// does not decode or does not apply is counted in [`Stats`] and dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.now = self.now.max(now);
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += data.len() as u64;
        let (prefix, msg) = match Message::parse(data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let ctx = prefix.context;
        match msg {
            Message::Digest(h, items) => self.on_digest(ctx, from, h, items),
            Message::Pull(h, items) => self.on_pull(ctx, from, h, items),
            Message::Members(h, items) => self.on_members(ctx, h, items),
            Message::Ping(p) => self.on_ping(ctx, from, p),
            Message::PingReq(p) => self.on_ping_req(ctx, from, p),
            Message::Ack(p) => self.on_ack(ctx, p),
            Message::CreateCoordinationContext(a) => self.on_create(ctx, from, a.uri),
            Message::RequestMemberService(r) => self.on_request_member(ctx, from, r),
            Message::MemberAlive(l) => self.on_member_alive(ctx, from, l),
            Message::MemberLeaves(a) => self.on_member_leaves(ctx, from, a.member, Status::Left),
            Message::MemberFailed(a) => self.on_member_leaves(ctx, from, a.member, Status::Failed),
            Message::RegisterMembershipProxy(r) => self.on_register_proxy(ctx, from, r),
            Message::ProxyAlive(l) => self.on_proxy_alive(ctx, from, l),
            Message::RegisterMembershipMonitor(r) => self.on_register_monitor(ctx, from, r),
            Message::UpdateAck(a) => self.on_update_ack(ctx, from, a.to),
            // Messages for the other roles.
            _ => self.stats.unexpected += 1,
        }
    }

    /// Runs whatever is due at `now`: gossip rounds, failure timeouts,
    /// probes of member services and proxies, monitor updates, deactivation.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        for slot in 0..MAX_CONTEXTS as u8 {
            let Some(c) = self.ctx(slot) else { continue };
            let (round, probe, monitor, idle) = (
                c.joined && c.next_round <= now,
                c.next_probe <= now,
                c.next_monitor <= now && !c.monitors.is_empty(),
                c.idle_since
                    .is_some_and(|s| s + self.config.idle_after <= now),
            );
            if round {
                self.round(slot);
            }
            if probe {
                self.probe_members(slot);
            }
            if monitor {
                self.update_monitors(slot);
            }
            if idle {
                self.go_idle(slot);
            }
        }
    }

    // ---- queries ---------------------------------------------------------

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The address the engine listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This MSS's identity in the context named `uri`, once joined.
    pub fn mss(&self, uri: &str) -> Option<MssId> {
        let slot = self.slot_of(ContextId::from_uri(uri))?;
        self.ctx(slot).filter(|c| c.joined).map(|c| c.me)
    }

    /// The URIs of the contexts active here.
    pub fn contexts(&self) -> impl Iterator<Item = &str> + '_ {
        self.contexts.iter().flatten().map(|c| c.uri.as_str())
    }

    /// Whether the context is active here.
    pub fn is_active(&self, uri: &str) -> bool {
        self.slot_of(ContextId::from_uri(uri)).is_some()
    }

    /// The peer MSS of a context (this one included), tombstones included.
    pub fn peers(&self, uri: &str) -> impl Iterator<Item = &PeerEntry> + '_ {
        let slot = self.slot_of(ContextId::from_uri(uri));
        let r = match slot {
            Some(s) => self.peers.range(|e| e.slot.cmp(&s)),
            None => 0..0,
        };
        self.peers.all()[r].iter()
    }

    /// The member services of a context known here, tombstones included.
    pub fn members(&self, uri: &str) -> impl Iterator<Item = &MemberEntry> + '_ {
        let slot = self.slot_of(ContextId::from_uri(uri));
        let r = match slot {
            Some(s) => self.members.range(|e| e.slot.cmp(&s)),
            None => 0..0,
        };
        self.members.all()[r].iter()
    }

    /// How full the tables are: (peers, peer capacity, members, member capacity).
    pub fn table_usage(&self) -> (usize, usize, usize, usize) {
        (
            self.peers.len,
            self.peers.capacity(),
            self.members.len,
            self.members.capacity(),
        )
    }

    // ---- shared helpers --------------------------------------------------

    fn ctx(&self, slot: u8) -> Option<&Context> {
        self.contexts.get(slot as usize)?.as_ref()
    }

    fn ctx_mut(&mut self, slot: u8) -> Option<&mut Context> {
        self.contexts.get_mut(slot as usize)?.as_mut()
    }

    fn slot_of(&self, id: ContextId) -> Option<u8> {
        self.contexts
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.id == id))
            .map(|i| i as u8)
    }

    /// The slot of a context this MSS has joined.
    fn joined_slot(&mut self, id: ContextId) -> Option<u8> {
        match self.slot_of(id) {
            Some(s) if self.ctx(s).is_some_and(|c| c.joined) => Some(s),
            _ => {
                self.stats.unknown_context += 1;
                None
            }
        }
    }

    /// Finds or creates the context for `uri`.
    fn activate(&mut self, uri: &str) -> Result<u8, ServiceError> {
        if uri.is_empty() || uri.len() > MAX_URI {
            return Err(ServiceError::BadUri(uri.len()));
        }
        let id = ContextId::from_uri(uri);
        if let Some(s) = self.slot_of(id) {
            return Ok(s);
        }
        let Some(slot) = self.contexts.iter().position(Option::is_none) else {
            self.stats.contexts_full += 1;
            return Err(ServiceError::TooManyContexts);
        };
        let mut u = String::new();
        // Cannot fail: the length was checked.
        let _ = u.push_str(uri);
        let now = self.now;
        // Each life of a context here is a new incarnation, so that one
        // that left can come back.
        let incarnation = self.incarnation;
        self.incarnation += 1;
        self.contexts[slot] = Some(Context {
            id,
            uri: u,
            me: MssId {
                addr: self.addr,
                incarnation,
            },
            joined: false,
            version: 0,
            floor: 0,
            lseq: 0,
            next_round: now,
            next_probe: now + self.config.probe_interval,
            next_monitor: now + self.config.monitor_interval,
            probe_seq: 0,
            rounds: 0,
            idle_since: Some(now),
            leaving: None,
            proxies: Vec::new(),
            monitors: Vec::new(),
        });
        self.event(Event::ContextActivated { context: id });
        Ok(slot as u8)
    }

    fn event(&mut self, e: Event) {
        if self.events.push_back(e).is_err() {
            self.stats.events_dropped += 1;
        }
    }

    fn member_event(&mut self, slot: u8, member: MemberId, owner: MssId, change: Change) {
        if let Some(c) = self.ctx(slot) {
            let context = c.id;
            self.event(Event::Member {
                context,
                member,
                owner,
                change,
            });
        }
    }

    fn peer_event(&mut self, slot: u8, mss: MssId, change: Change) {
        if let Some(c) = self.ctx(slot) {
            let context = c.id;
            self.event(Event::Peer {
                context,
                mss,
                change,
            });
        }
    }

    /// Encodes a message without items and queues it.
    fn send<H: Serialize>(&mut self, to: SocketAddr, kind: Kind, ctx: ContextId, head: &H) {
        let gossip = matches!(kind, Kind::Ping | Kind::PingReq | Kind::Ack | Kind::Pull);
        let mut r = Control {
            to,
            gossip,
            len: 0,
            buf: [0; CONTROL_LEN],
        };
        match wire::Writer::new(&mut r.buf, CONTROL_LEN, kind, ctx, head) {
            Some(w) => r.len = w.len() as u16,
            None => {
                // Cannot happen for the messages sent this way; counted
                // rather than silent if it ever does.
                self.stats.tx_queue_full += 1;
                return;
            }
        }
        if self.control.push_back(r).is_err() {
            self.stats.tx_queue_full += 1;
        }
    }

    fn queue(&mut self, r: Ready) {
        if self.ready.push_back(r).is_err() {
            self.stats.tx_queue_full += 1;
        }
    }

    fn job(&mut self, j: Job) {
        if self.jobs.push_back(j).is_err() {
            self.stats.jobs_full += 1;
        }
    }

    fn random_below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.rng.next_u64()) * n as u128) >> 64) as usize
    }

    /// Changes the status of a member entry at index `i`, stamping it when
    /// this MSS owns it, and reports the change.
    fn set_member_status(&mut self, i: usize, status: Status, own: bool) {
        let now = self.now;
        let e = self.members.all()[i];
        if e.status == status {
            return;
        }
        let (slot, was) = (e.slot, e.status);
        let (stamp, lseq) = {
            let Some(c) = self.ctx_mut(slot) else { return };
            if own {
                c.version += 1;
            }
            c.lseq += 1;
            (if own { c.version } else { e.stamp }, c.lseq)
        };
        {
            let m = &mut self.members.all_mut()[i];
            m.status = status;
            m.stamp = stamp;
            m.lseq = lseq;
            m.since = now;
        }
        if own {
            self.sync_own_version(slot);
        }
        let change = match status {
            Status::Alive if was == Status::Suspect => Change::Refuted,
            Status::Alive => Change::Joined,
            Status::Suspect => Change::Suspected,
            Status::Left => Change::Left,
            Status::Failed => Change::Failed,
        };
        if change == Change::Refuted {
            self.stats.refutations += 1;
        }
        if own && status == Status::Failed {
            self.stats.member_failures += 1;
        }
        self.member_event(slot, e.id, e.owner, change);
    }

    /// Copies the context's own list version into its own peer entry.
    fn sync_own_version(&mut self, slot: u8) {
        let Some(c) = self.ctx(slot) else { return };
        let (me, v, f) = (c.me, c.version, c.floor);
        if let Some(p) = self.peers.get_mut((slot, me)) {
            p.version = v;
            p.floor = f;
        }
    }
}

crate::driver::forward_machine!([P, M, const EQ: usize, const CQ: usize] Service<P, M, EQ, CQ> where P: AsRef<[PeerEntry]> + AsMut<[PeerEntry]>, M: AsRef<[MemberEntry]> + AsMut<[MemberEntry]>);
