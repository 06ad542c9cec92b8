//! A simulated member: a real endpoint, its address and its application.
//!
//! A node is driven exactly as a runtime drives an endpoint: after every
//! input it drains `poll_transmit` and `poll_event` until both are empty
//! (looping, since taking events can resume work that makes datagrams), hands
//! datagrams to the [network](crate::net) and records events in the
//! [trace](crate::trace). A `Writable` event makes the application offer its
//! refused messages again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use consort_core::{Config, ConfigError, Endpoint, EndpointId, Event, Instant, Member};

use crate::message::{Kind, decode};
use crate::net::Net;
use crate::trace::{Delivery, Entry, Trace};
use crate::workload::NodeWorkload;

/// Most members of a simulated group: the sim profile's `M`.
pub const MAX_MEMBERS: usize = 64;

/// The endpoint type every node runs.
pub type SimEndpoint = Endpoint<MAX_MEMBERS, Vec<u8>>;

/// The UDP port every node listens on.
const PORT: u16 = 7000;

/// Node `i`'s address: `10.0.0.(i+1):7000`.
pub fn addr_of(i: usize) -> SocketAddr {
    let [_, _, hi, lo] = (i as u32 + 1).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo)), PORT)
}

/// The node at `addr`, if it is one of ours.
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

/// Node `i`'s endpoint id.
pub fn endpoint_id(i: usize) -> EndpointId {
    EndpointId(i as u64 + 1)
}

/// The node with endpoint id `id`, if any.
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

/// One simulated member.
pub struct Node {
    /// Index of the node (its rank in the static view).
    pub index: usize,
    /// The endpoint.
    pub endpoint: SimEndpoint,
    /// The application.
    pub workload: NodeWorkload,
    /// When `handle_timeout` last ran.
    last_timeout: Option<Instant>,
    /// Times a deadline was still due right after `handle_timeout` ran: a
    /// real driver would spin on it.
    timer_repeats: u64,
}

impl Node {
    /// Builds node `index` of the group `members`.
    pub fn new(
        index: usize,
        members: &[Member],
        config: &Config<'_>,
        slot_size: usize,
        slots: usize,
        workload: NodeWorkload,
    ) -> Result<Node, ConfigError> {
        let storage = vec![0u8; slots * (slot_size + consort_core::SLOT_OVERHEAD)];
        let endpoint = Endpoint::new(config, members, storage, slot_size)?;
        Ok(Node {
            index,
            endpoint,
            workload,
            last_timeout: None,
            timer_repeats: 0,
        })
    }

    /// When the endpoint's timer is next due. A deadline that did not move
    /// past the last `handle_timeout` is taken one microsecond later, so a
    /// stuck timer costs simulated time instead of hanging the simulator
    /// (it is counted in [`Node::timer_repeats`]).
    pub fn timer(&self) -> Option<Instant> {
        let d = self.endpoint.poll_timeout()?;
        match self.last_timeout {
            Some(last) if d <= last => Some(last + std::time::Duration::from_micros(1)),
            _ => Some(d),
        }
    }

    /// Times the endpoint's deadline was still due right after its timeout ran.
    pub fn timer_repeats(&self) -> u64 {
        self.timer_repeats
    }

    /// A datagram from node `from` arrives.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: usize,
        bytes: &[u8],
        net: &mut Net,
        trace: &mut Trace,
    ) {
        self.endpoint.handle_datagram(now, addr_of(from), bytes);
        self.settle(now, net, trace);
    }

    /// The endpoint's timer fires.
    pub fn handle_timeout(&mut self, now: Instant, net: &mut Net, trace: &mut Trace) {
        self.endpoint.handle_timeout(now);
        self.last_timeout = Some(now);
        self.settle(now, net, trace);
        if self.endpoint.poll_timeout().is_some_and(|d| d <= now) {
            self.timer_repeats += 1;
        }
    }

    /// The application's next action is due.
    pub fn act(&mut self, now: Instant, net: &mut Net, trace: &mut Trace) {
        let me = self.index;
        let mut writable = false;
        self.workload
            .act(now, &mut self.endpoint, trace, |ep, trace| {
                writable |= drain(me, now, ep, net, trace);
            });
        self.offer_while_writable(writable, now, net, trace);
    }

    /// Drains the endpoint without any new input, offering refused
    /// messages again while it says `Writable`.
    pub fn drain(&mut self, now: Instant, net: &mut Net, trace: &mut Trace) {
        self.settle(now, net, trace);
    }

    /// Drains the endpoint, and while it says `Writable`, offers the
    /// application's refused messages again.
    fn settle(&mut self, now: Instant, net: &mut Net, trace: &mut Trace) {
        let writable = drain(self.index, now, &mut self.endpoint, net, trace);
        self.offer_while_writable(writable, now, net, trace);
    }

    /// Offers refused messages again if a `Writable` came, and again after
    /// every further `Writable` their acceptance brings.
    fn offer_while_writable(
        &mut self,
        mut writable: bool,
        now: Instant,
        net: &mut Net,
        trace: &mut Trace,
    ) {
        let me = self.index;
        while writable {
            writable = false;
            self.workload
                .offer(now, &mut self.endpoint, trace, |ep, trace| {
                    writable |= drain(me, now, ep, net, trace);
                });
        }
    }
}

/// Takes every datagram and event from `ep` until both are exhausted.
/// Returns whether a `Writable` event came.
fn drain(me: usize, now: Instant, ep: &mut SimEndpoint, net: &mut Net, trace: &mut Trace) -> bool {
    let mut writable = false;
    let mut buf = Vec::new();
    loop {
        let mut progress = false;
        while let Some(t) = ep.poll_transmit() {
            progress = true;
            // A datagram for no node goes nowhere, as on a real network.
            if let Some(to) = node_at(t.destination) {
                net.send(now, me, to, t.contents);
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
                    writable = true;
                    trace.push(now, me, Entry::Writable);
                    continue;
                }
                // Event kinds this simulator does not know yet.
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
            return writable;
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
