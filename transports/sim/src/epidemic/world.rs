//! The epidemic service's simulated world: MSS engines, member services,
//! proxies and monitors of the real core, on the shared simulated
//! [network](crate::net), in virtual time.
//!
//! Each node is driven as a runtime would drive it: after every input its
//! datagrams are handed to the network and its events to an [`Observer`].
//! Timers sit in a heap with lazy invalidation (a popped deadline that is
//! no longer the node's current one is skipped), so ten thousand nodes
//! cost a heap operation per step, not a scan.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use consort_core::Instant;
use consort_core::driver::Machine;
use consort_core::epidemic::{
    Config, Event, MemberEntry, MemberEvent, MemberService, Monitor, MonitorEvent, PeerEntry,
    ProxyEvent, ProxyService, Service,
};

use crate::net::Net;

/// The one context every simulated service joins.
pub const URI: &str = "urn:consort:sim";
/// Services one simulated proxy speaks for, at most.
pub const PROXY_SERVICES: usize = 8;

/// The engine type of a simulated MSS.
pub type SimService = Service<Vec<PeerEntry>, Vec<MemberEntry>, 1024>;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A Membership Service engine.
    Mss,
    /// A member service.
    Ms,
    /// A membership proxy.
    Proxy,
    /// A membership monitor.
    Monitor,
}

/// A node's running state machine (none while crashed).
#[allow(clippy::large_enum_variant)] // boxed where large
pub enum Role {
    /// An MSS engine.
    Mss(Box<SimService>),
    /// A member service.
    Ms(MemberService),
    /// A proxy.
    Proxy(Box<ProxyService<PROXY_SERVICES>>),
    /// A monitor.
    Monitor(Box<Monitor>),
}

impl Role {
    fn machine(&mut self) -> &mut dyn Machine {
        match self {
            Role::Mss(s) => s.as_mut(),
            Role::Ms(s) => s,
            Role::Proxy(s) => s.as_mut(),
            Role::Monitor(s) => s.as_mut(),
        }
    }
}

/// One simulated node.
pub struct SimNode {
    /// Its address.
    pub addr: SocketAddr,
    /// What it is.
    pub kind: Kind,
    /// Its state machine, `None` while crashed.
    pub role: Option<Role>,
    /// Lives so far (1 for the first; each restart adds one).
    pub life: u32,
}

/// What happens in the world, as the observers see it.
#[derive(Clone, Debug)]
pub enum Observed {
    /// An MSS engine's event.
    Mss(Event),
    /// A member service's event.
    Ms(MemberEvent),
    /// A proxy's event.
    Proxy(ProxyEvent),
    /// A monitor's event.
    Monitor(MonitorEvent),
}

/// Receives what the nodes report.
pub trait Observer {
    /// Node `node` reported `what` at `now`.
    fn observe(&mut self, now: Instant, node: usize, what: &Observed);
}

impl Observer for () {
    fn observe(&mut self, _: Instant, _: usize, _: &Observed) {}
}

/// Address of node `i` of `kind`: 10.(1..4).hi.lo with a port per kind.
pub fn addr_of(kind: Kind, i: usize) -> SocketAddr {
    let (net, port) = match kind {
        Kind::Mss => (1, 7100),
        Kind::Ms => (2, 9000),
        Kind::Proxy => (3, 9100),
        Kind::Monitor => (4, 9200),
    };
    let [_, _, hi, lo] = (i as u32).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, net, hi, lo)), port)
}

/// The world.
pub struct World {
    /// Every node, by index.
    pub nodes: Vec<SimNode>,
    /// The network.
    pub net: Net,
    index: HashMap<SocketAddr, usize>,
    /// (when to run, node, the deadline the node gave).
    timers: BinaryHeap<Reverse<(Instant, usize, Instant)>>,
    now: Instant,
    /// Datagrams that arrived at a crashed node.
    pub to_dead: u64,
    /// Each node's side while a partition is in force.
    sides: Option<Vec<u32>>,
    /// Datagrams dropped because a partition separated sender and
    /// receiver, when sent or when they arrived.
    pub cut: u64,
    /// Datagrams and bytes sent, by message kind (the byte at offset 3).
    pub by_kind: [(u64, u64); 64],
}

impl World {
    /// An empty world on `net` (which must have room for every node added).
    pub fn new(net: Net) -> Self {
        World {
            nodes: Vec::new(),
            net,
            index: HashMap::new(),
            timers: BinaryHeap::new(),
            now: Instant::ZERO,
            to_dead: 0,
            sides: None,
            cut: 0,
            by_kind: [(0, 0); 64],
        }
    }

    /// Puts a partition in force (`Some(side of each node)`) or heals it
    /// (`None`). The partition is the world's, not the network's: the
    /// shared [`Net`] stays as the group simulator uses it.
    pub fn set_partition(&mut self, sides: Option<Vec<u32>>) {
        self.sides = sides;
    }

    fn separated(&self, a: usize, b: usize) -> bool {
        self.sides
            .as_ref()
            .is_some_and(|s| s.get(a).copied().unwrap_or(0) != s.get(b).copied().unwrap_or(0))
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Adds a node (not started: give it a role with [`World::start`]).
    pub fn add(&mut self, kind: Kind, addr: SocketAddr) -> usize {
        let i = self.nodes.len();
        self.nodes.push(SimNode {
            addr,
            kind,
            role: None,
            life: 0,
        });
        self.index.insert(addr, i);
        i
    }

    /// The node listening on `addr`.
    pub fn node_at(&self, addr: SocketAddr) -> Option<usize> {
        self.index.get(&addr).copied()
    }

    /// Gives node `i` a running state machine (a start or a restart).
    pub fn start(&mut self, i: usize, role: Role, obs: &mut dyn Observer) {
        self.nodes[i].role = Some(role);
        self.nodes[i].life += 1;
        self.drain(i, obs);
    }

    /// A new MSS engine for node `i`, in its next life.
    pub fn new_mss(
        &self,
        i: usize,
        config: Config,
        seed: u64,
        seeds: &[SocketAddr],
        peers: usize,
        members: usize,
    ) -> Role {
        let n = &self.nodes[i];
        let incarnation = u64::from(n.life + 1) * 1_000_000;
        let mut s = Box::new(SimService::new(
            n.addr,
            incarnation,
            seed,
            config,
            vec![PeerEntry::EMPTY; peers],
            vec![MemberEntry::EMPTY; members],
        ));
        for a in seeds {
            // Cannot fail below MAX_SEEDS seeds; the campaign passes few.
            let _ = s.add_seed(*a);
        }
        Role::Mss(s)
    }

    /// Crashes node `i`: its state is lost, datagrams to it are dropped.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].role = None;
    }

    /// Runs the MSS of node `i` through `f` and drains it.
    pub fn with<R>(
        &mut self,
        i: usize,
        obs: &mut dyn Observer,
        f: impl FnOnce(&mut Role, Instant) -> R,
    ) -> Option<R> {
        let now = self.now;
        let r = f(self.nodes[i].role.as_mut()?, now);
        self.drain(i, obs);
        Some(r)
    }

    /// The MSS engine of node `i`, if it runs.
    pub fn mss(&self, i: usize) -> Option<&SimService> {
        match &self.nodes.get(i)?.role {
            Some(Role::Mss(s)) => Some(s),
            _ => None,
        }
    }

    /// Runs everything due up to and including `until`, then sets the clock to it.
    pub fn run_until(&mut self, until: Instant, obs: &mut dyn Observer) {
        loop {
            let net = self.net.next_time();
            let timer = self.timers.peek().map(|Reverse((t, _, _))| *t);
            let next = match (net, timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            // Datagrams first, then timers, as in the group simulator.
            if net.is_some_and(|t| t <= now) {
                if let Some(d) = self.net.pop_due(now) {
                    if self.separated(d.from, d.to) {
                        self.cut += 1;
                        continue;
                    }
                    let from = self.nodes[d.from].addr;
                    match self.nodes.get_mut(d.to).and_then(|n| n.role.as_mut()) {
                        Some(role) => {
                            role.machine().handle_datagram(now, from, &d.bytes);
                            self.drain(d.to, obs);
                        }
                        None => self.to_dead += 1,
                    }
                }
                continue;
            }
            if let Some(Reverse((_, i, deadline))) = self.timers.pop() {
                let Some(role) = self.nodes[i].role.as_mut() else {
                    continue;
                };
                if role.machine().poll_timeout() != Some(deadline) {
                    continue;
                }
                role.machine().handle_timeout(now);
                self.drain(i, obs);
            }
        }
        self.now = self.now.max(until);
    }

    /// Hands node `i`'s datagrams to the network and its events to `obs`,
    /// and files its next deadline.
    fn drain(&mut self, i: usize, obs: &mut dyn Observer) {
        let now = self.now;
        let Some(role) = self.nodes[i].role.as_mut() else {
            return;
        };
        let m = role.machine();
        while let Some(t) = m.poll_transmit() {
            let Some(&to) = self.index.get(&t.destination) else {
                continue;
            };
            let k = t.contents.get(3).map_or(0, |k| usize::from(*k) % 64);
            self.by_kind[k].0 += 1;
            self.by_kind[k].1 += t.contents.len() as u64;
            let cut = self
                .sides
                .as_ref()
                .is_some_and(|s| s.get(i).copied().unwrap_or(0) != s.get(to).copied().unwrap_or(0));
            if cut {
                self.cut += 1;
            } else {
                self.net.send(now, i, to, t.contents);
            }
        }
        match role {
            Role::Mss(s) => {
                while let Some(e) = s.poll_event() {
                    obs.observe(now, i, &Observed::Mss(e));
                }
            }
            Role::Ms(s) => {
                while let Some(e) = s.poll_event() {
                    obs.observe(now, i, &Observed::Ms(e));
                }
            }
            Role::Proxy(s) => {
                while let Some(e) = s.poll_event() {
                    obs.observe(now, i, &Observed::Proxy(e));
                }
            }
            Role::Monitor(s) => {
                while let Some(e) = s.poll_event() {
                    obs.observe(now, i, &Observed::Monitor(e));
                }
            }
        }
        if let Some(t) = role.machine().poll_timeout() {
            // A deadline already past runs a microsecond later, so that a
            // node whose deadline never advances cannot stall the clock.
            let at = t.max(now + std::time::Duration::from_micros(1));
            self.timers.push(Reverse((at, i, t)));
        }
    }
}
