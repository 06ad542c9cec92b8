//! A simulated member: a real endpoint, its address and its application.
//!
//! A node is driven exactly as a runtime drives an endpoint: after every
//! input it drains `poll_transmit` and `poll_event` until both are empty
//! (looping, since taking events can resume work that makes datagrams), hands
//! datagrams to the [network](crate::net) and records events in the
//! [trace](crate::trace). A `Writable` event makes the application offer its
//! refused messages again; a `Block` makes it answer `block_ok` a little
//! later; `Exit` ends it.
//!
//! A node is one **process**: one endpoint incarnation at one address
//! (slot). A crash drops the endpoint, as `kill -9` would; a restart is a
//! new node at the same slot with a new endpoint id.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use consort_core::{
    Config, ConfigError, Endpoint, EndpointId, Event, Instant, Member, Stats, Status,
};

use crate::message::{Kind, decode};
use crate::net::Net;
use crate::trace::{Delivery, Entry, Trace, ViewRecord};
use crate::workload::NodeWorkload;

/// Most members of a simulated group: the sim profile's `M`.
pub const MAX_MEMBERS: usize = 64;

/// The endpoint type every node runs.
pub type SimEndpoint = Endpoint<MAX_MEMBERS, Vec<u8>>;

/// The UDP port every node listens on.
const PORT: u16 = 7000;

/// Slot `i`'s address: `10.0.0.(i+1):7000`. In a static group process `i`
/// runs at slot `i`; with churn a slot may hold several processes in turn.
pub fn addr_of(i: usize) -> SocketAddr {
    let [_, _, hi, lo] = (i as u32 + 1).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo)), PORT)
}

/// The slot at `addr`, if it is one of ours.
pub fn node_at(addr: SocketAddr) -> Option<usize> {
    match addr.ip() {
        IpAddr::V4(ip) if addr.port() == PORT => {
            let [a, b, hi, lo] = ip.octets();
            let n = u32::from_be_bytes([0, 0, hi, lo]);
            ((a, b) == (10, 0) && n > 0).then(|| n as usize - 1)
        }
        _ => None,
    }
}

/// Process `i`'s endpoint id: unique per incarnation.
pub fn endpoint_id(i: usize) -> EndpointId {
    EndpointId(i as u64 + 1)
}

/// The process with endpoint id `id`, if any.
pub fn node_of(id: EndpointId) -> Option<usize> {
    id.0.checked_sub(1).map(|n| n as usize)
}

/// The members of an `n`-node group, node `i` at rank `i`.
pub fn members(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| Member {
            id: endpoint_id(i),
            addr: addr_of(i),
        })
        .collect()
}

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    /// Running.
    Live,
    /// `leave()` was called; `Exit` has not come yet.
    Leaving,
    /// `Exit` came: the endpoint will do nothing more.
    Exited,
    /// Stopped for good; the endpoint is gone.
    Crashed,
}

/// One simulated member.
pub struct Node {
    /// Index of the process (its rank in a static view; see [`endpoint_id`]).
    pub index: usize,
    /// Its address (see [`addr_of`]).
    pub slot: usize,
    /// The endpoint; `None` once crashed.
    pub endpoint: Option<SimEndpoint>,
    /// The application.
    pub workload: NodeWorkload,
    life: Life,
    /// Counters and pool peak when the endpoint was dropped.
    final_stats: Option<(Stats, (usize, usize, usize))>,
    /// When `handle_timeout` last ran.
    last_timeout: Option<Instant>,
    /// Times a deadline was still due right after `handle_timeout` ran: a
    /// real driver would spin on it.
    timer_repeats: u64,
    /// Consecutive such times, for the back-off of a stuck timer.
    stuck: u32,
    /// The most consecutive such times.
    max_stuck: u32,
}

/// What draining an endpoint brought, for the node to act on.
#[derive(Clone, Copy, Debug, Default)]
struct Drained {
    writable: bool,
    /// `Some(true)` if the last of Block/View was a Block, `Some(false)` if
    /// a View.
    block: Option<bool>,
    exit: bool,
}

impl Drained {
    fn merge(&mut self, o: Drained) {
        self.writable |= o.writable;
        self.block = o.block.or(self.block);
        self.exit |= o.exit;
    }
}

fn storage(slot_size: usize, slots: usize) -> Vec<u8> {
    vec![0u8; slots * (slot_size + consort_core::SLOT_OVERHEAD)]
}

impl Node {
    /// Builds process `index` of the static group `members` (at slot `index`).
    pub fn new(
        index: usize,
        members: &[Member],
        config: &Config<'_>,
        slot_size: usize,
        slots: usize,
        workload: NodeWorkload,
    ) -> Result<Node, ConfigError> {
        let endpoint = Endpoint::new(config, members, storage(slot_size, slots), slot_size)?;
        Ok(Node::with(index, index, endpoint, workload))
    }

    /// Builds process `index` at `slot`, alone in its first view, to join
    /// its group through `config.seeds`.
    pub fn join(
        index: usize,
        slot: usize,
        config: &Config<'_>,
        slot_size: usize,
        slots: usize,
        workload: NodeWorkload,
    ) -> Result<Node, ConfigError> {
        let endpoint = Endpoint::join(config, addr_of(slot), storage(slot_size, slots), slot_size)?;
        Ok(Node::with(index, slot, endpoint, workload))
    }

    fn with(index: usize, slot: usize, endpoint: SimEndpoint, workload: NodeWorkload) -> Node {
        Node {
            index,
            slot,
            endpoint: Some(endpoint),
            workload,
            life: Life::Live,
            final_stats: None,
            last_timeout: None,
            timer_repeats: 0,
            stuck: 0,
            max_stuck: 0,
        }
    }

    /// Where the process is in its life.
    pub fn life(&self) -> Life {
        self.life
    }

    /// Whether the process runs and has not been asked to leave.
    pub fn is_live(&self) -> bool {
        self.life == Life::Live
    }

    /// The endpoint's counters (at the crash, for a crashed node).
    pub fn stats(&self) -> Stats {
        match (&self.endpoint, &self.final_stats) {
            (Some(ep), _) => ep.stats().clone(),
            (None, Some((s, _))) => s.clone(),
            (None, None) => Stats::default(),
        }
    }

    /// Pool slots (in use, peak, total); in use is 0 for a crashed node.
    pub fn pool_usage(&self) -> (usize, usize, usize) {
        match (&self.endpoint, &self.final_stats) {
            (Some(ep), _) => ep.pool_usage(),
            (None, Some((_, (_, peak, total)))) => (0, *peak, *total),
            (None, None) => (0, 0, 0),
        }
    }

    /// The endpoint's status, if it still has one.
    pub fn status(&self) -> Option<Status> {
        self.endpoint.as_ref().map(|e| e.status())
    }

    /// When the endpoint's timer is next due. A deadline that did not move
    /// past the last `handle_timeout` is taken one microsecond later, and
    /// twice as late each time it stays stuck (up to about a millisecond),
    /// so a stuck timer costs simulated time instead of hanging the
    /// simulator (it is counted in [`Node::timer_repeats`]).
    pub fn timer(&self) -> Option<Instant> {
        let d = self.endpoint.as_ref()?.poll_timeout()?;
        match self.last_timeout {
            Some(last) if d <= last => {
                let wait = 1u64 << self.stuck.min(10);
                Some(last + std::time::Duration::from_micros(wait))
            }
            _ => Some(d),
        }
    }

    /// Times the endpoint's deadline was still due right after its timeout ran.
    pub fn timer_repeats(&self) -> u64 {
        self.timer_repeats
    }

    /// The most times in a row the endpoint's deadline was still due right
    /// after its timeout ran.
    pub fn max_stuck(&self) -> u32 {
        self.max_stuck
    }

    /// A datagram from slot `from` arrives.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: usize,
        bytes: &[u8],
        net: &mut Net,
        trace: &mut Trace,
    ) {
        let Some(ep) = self.endpoint.as_mut() else {
            return;
        };
        ep.handle_datagram(now, addr_of(from), bytes);
        self.settle(now, net, trace);
    }

    /// The endpoint's timer fires.
    pub fn handle_timeout(&mut self, now: Instant, net: &mut Net, trace: &mut Trace) {
        let Some(ep) = self.endpoint.as_mut() else {
            return;
        };
        ep.handle_timeout(now);
        self.last_timeout = Some(now);
        self.settle(now, net, trace);
        let ep = self.endpoint.as_ref();
        if ep.and_then(|e| e.poll_timeout()).is_some_and(|d| d <= now) {
            self.timer_repeats += 1;
            self.stuck += 1;
            self.max_stuck = self.max_stuck.max(self.stuck);
        } else {
            self.stuck = 0;
        }
    }

    /// The application's next action is due: answering a `Block`, making
    /// messages, or both.
    pub fn act(&mut self, now: Instant, net: &mut Net, trace: &mut Trace) {
        let (me, slot) = (self.index, self.slot);
        let Some(ep) = self.endpoint.as_mut() else {
            self.workload.stop();
            return;
        };
        let mut got = Drained::default();
        if self.workload.take_block_ok(now) {
            trace.push(now, me, Entry::BlockOk);
            if let Err(e) = ep.block_ok(now) {
                self.workload.note_error(format!("block_ok: {e}"));
            }
            got.merge(drain(me, slot, now, ep, net, trace));
        }
        if self.workload.action_due(now) {
            self.workload.act(now, ep, trace, |ep, trace| {
                got.merge(drain(me, slot, now, ep, net, trace));
            });
        }
        self.apply(got, now, net, trace);
    }

    /// The application calls `leave()`. Returns whether it could (the
    /// process is live and not leaving already).
    pub fn leave(&mut self, now: Instant, net: &mut Net, trace: &mut Trace) -> bool {
        if self.life != Life::Live {
            return false;
        }
        let Some(ep) = self.endpoint.as_mut() else {
            return false;
        };
        trace.push(now, self.index, Entry::Leave);
        self.life = Life::Leaving;
        // A leaving member makes no new messages; what it cast so far
        // still reaches the members that stay.
        self.workload.stop();
        if let Err(e) = ep.leave(now) {
            self.workload.note_error(format!("leave: {e}"));
        }
        self.settle(now, net, trace);
        true
    }

    /// The process stops for good: its endpoint is dropped, as `kill -9`
    /// would, with whatever it had not sent.
    pub fn crash(&mut self, now: Instant, trace: &mut Trace) {
        if let Some(ep) = self.endpoint.take() {
            self.final_stats = Some((ep.stats().clone(), ep.pool_usage()));
        }
        self.workload.stop();
        self.life = Life::Crashed;
        trace.push(now, self.index, Entry::Crash);
    }

    /// Drains the endpoint without any new input, offering refused
    /// messages again while it says `Writable`.
    pub fn drain(&mut self, now: Instant, net: &mut Net, trace: &mut Trace) {
        self.settle(now, net, trace);
    }

    /// Drains the endpoint and acts on what came out.
    fn settle(&mut self, now: Instant, net: &mut Net, trace: &mut Trace) {
        let Some(ep) = self.endpoint.as_mut() else {
            return;
        };
        let got = drain(self.index, self.slot, now, ep, net, trace);
        self.apply(got, now, net, trace);
    }

    /// Acts on drained events: `Block` and views for the application's
    /// `block_ok`, `Exit` for the end of the process, and while the endpoint
    /// says `Writable`, the application's refused messages offered again.
    fn apply(&mut self, mut got: Drained, now: Instant, net: &mut Net, trace: &mut Trace) {
        let (me, slot) = (self.index, self.slot);
        loop {
            match got.block {
                Some(true) => self.workload.on_block(now),
                Some(false) => self.workload.on_view(),
                None => {}
            }
            if got.exit {
                self.life = Life::Exited;
                self.workload.stop();
            }
            let Some(ep) = self.endpoint.as_mut() else {
                return;
            };
            if !got.writable || self.life != Life::Live {
                return;
            }
            let mut next = Drained::default();
            self.workload.offer(now, ep, trace, |ep, trace| {
                next.merge(drain(me, slot, now, ep, net, trace));
            });
            got = next;
        }
    }
}

/// Takes every datagram and event from `ep` until both are exhausted.
fn drain(
    me: usize,
    slot: usize,
    now: Instant,
    ep: &mut SimEndpoint,
    net: &mut Net,
    trace: &mut Trace,
) -> Drained {
    let mut got = Drained::default();
    let mut buf = Vec::new();
    loop {
        let mut progress = false;
        while let Some(t) = ep.poll_transmit() {
            progress = true;
            // A datagram for no node goes nowhere, as on a real network.
            if let Some(to) = node_at(t.destination) {
                net.send(now, slot, to, t.contents);
            }
        }
        while let Some(ev) = ep.poll_event() {
            progress = true;
            let (kind, from, endpoint, payload) = match ev {
                Event::Cast {
                    from,
                    endpoint,
                    payload,
                } => (Kind::Cast, from, endpoint, payload),
                Event::Send {
                    from,
                    endpoint,
                    payload,
                } => (Kind::Send, from, endpoint, payload),
                Event::Writable => {
                    got.writable = true;
                    trace.push(now, me, Entry::Writable);
                    continue;
                }
                Event::View { view, .. } => {
                    got.block = Some(false);
                    let record = ViewRecord {
                        id: view.id(),
                        members: view.endpoints().collect(),
                        primary: view.is_primary(),
                        protocol: view.protocol().to_string(),
                        previous: view.previous_id(),
                        rank: view.my_rank().index(),
                    };
                    trace.push(now, me, Entry::View(record));
                    continue;
                }
                Event::Block => {
                    got.block = Some(true);
                    trace.push(now, me, Entry::Block);
                    continue;
                }
                Event::Exit => {
                    got.exit = true;
                    trace.push(now, me, Entry::Exit);
                    continue;
                }
                // Heartbeats and view-message requests are not asked for.
                _ => continue,
            };
            buf.clear();
            for c in payload.chunks() {
                buf.extend_from_slice(c);
            }
            let decoded = decode(&buf);
            trace.push(
                now,
                me,
                Entry::Delivered(Delivery {
                    kind,
                    from_rank: from.index(),
                    from_node: node_of(endpoint),
                    id: decoded.map(|d| d.0),
                    len: payload.len(),
                    intact: decoded.is_some_and(|d| d.1),
                    fragments: payload.chunks().count(),
                }),
            );
        }
        if !progress {
            return got;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_ids_round_trip() {
        for i in [0, 1, 63, 254, 255, 1000] {
            assert_eq!(node_at(addr_of(i)), Some(i));
            assert_eq!(node_of(endpoint_id(i)), Some(i));
        }
        assert_eq!(addr_of(0).to_string(), "10.0.0.1:7000");
        assert_eq!(node_at("10.0.0.1:7001".parse().unwrap()), None);
        assert_eq!(node_at("10.0.0.0:7000".parse().unwrap()), None);
    }
}
