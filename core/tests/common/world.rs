//! A small virtual-time world for membership tests: endpoints that join
//! through seeds, a network with delay, loss, partitions and crashes, and
//! everything each application saw.

#![allow(dead_code)]

use consort_core::{Config, Endpoint, EndpointId, Event, Instant, Status};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

pub(crate) type Ep = Endpoint<16, Vec<u8>>;

/// Fast timers so tests need only a few virtual seconds.
pub(crate) const FAST: &str = "suspect_sweep=50ms:suspect_max_idle=4:gmp_retry=20ms:gmp_timeout=400ms:heal_sweep=100ms:stable_sweep=100ms";
pub(crate) const VSYNC: &str = "Gmp:Sync:Heal:Frag:Suspect:Flow:Slander";

/// What an application saw.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Seen {
    View {
        ltime: u32,
        coord: u64,
        members: Vec<u64>,
        primary: bool,
        protocol: String,
        message: Vec<u8>,
    },
    Cast {
        from: u64,
        bytes: Vec<u8>,
    },
    Send {
        from: u64,
        bytes: Vec<u8>,
    },
    Block,
    ViewMessage,
    Heartbeat,
    Exit,
}

pub(crate) struct Node {
    pub(crate) ep: Ep,
    pub(crate) addr: SocketAddr,
    pub(crate) seen: Vec<Seen>,
    /// Answer Block with block_ok at once.
    pub(crate) auto_block_ok: bool,
    /// Attach this to views this node coordinates.
    pub(crate) view_message: Option<Vec<u8>>,
}

pub(crate) struct World {
    pub(crate) now: Instant,
    pub(crate) nodes: BTreeMap<usize, Node>,
    /// (deliver at, sequence, from, to, bytes)
    wire: Vec<(Instant, u64, SocketAddr, SocketAddr, Vec<u8>)>,
    seq: u64,
    /// Which side of a partition each address is on (same number: connected).
    pub(crate) side: BTreeMap<SocketAddr, u32>,
    /// Datagrams from A to B are dropped when (A, B) is listed.
    pub(crate) cut: Vec<(SocketAddr, SocketAddr)>,
    pub(crate) delay: Duration,
    next_id: u64,
}

pub(crate) fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 7000))
}

impl World {
    pub(crate) fn new() -> Self {
        World {
            now: Instant::from_secs(1),
            nodes: BTreeMap::new(),
            wire: Vec::new(),
            seq: 0,
            side: BTreeMap::new(),
            cut: Vec::new(),
            delay: Duration::from_millis(1),
            next_id: 1,
        }
    }

    /// Starts node `i` at its address; it joins through `seeds`.
    pub(crate) fn join(
        &mut self,
        i: usize,
        properties: &str,
        params: &str,
        seeds: &[usize],
    ) -> EndpointId {
        self.join_as(i, properties, params, seeds, true)
    }

    /// Like [`World::join`], saying whether the node is a founder (see
    /// `Config::founder`).
    pub(crate) fn join_as(
        &mut self,
        i: usize,
        properties: &str,
        params: &str,
        seeds: &[usize],
        founder: bool,
    ) -> EndpointId {
        let seeds: Vec<SocketAddr> = seeds.iter().map(|s| addr(*s)).collect();
        let id = EndpointId(self.next_id * 1000 + i as u64);
        self.next_id += 1;
        let cfg = Config::new("world", id, id.0)
            .properties(properties)
            .params(params)
            .seeds(&seeds)
            .view_messages(true)
            .founder(founder);
        let ep = Ep::join(
            &cfg,
            addr(i),
            vec![0u8; consort_core::profile::storage_bytes(16, 1024, 512)],
            1024,
        )
        .unwrap();
        let node = Node {
            ep,
            addr: addr(i),
            seen: Vec::new(),
            auto_block_ok: true,
            view_message: None,
        };
        self.nodes.insert(i, node);
        self.drain(i);
        id
    }

    /// Node `i` stops, as if its process were killed.
    pub(crate) fn crash(&mut self, i: usize) {
        self.nodes.remove(&i);
    }

    fn connected(&self, a: SocketAddr, b: SocketAddr) -> bool {
        self.side.get(&a).copied().unwrap_or(0) == self.side.get(&b).copied().unwrap_or(0)
            && !self.cut.contains(&(a, b))
    }

    /// Loses every datagram from `a` to `b` still in flight; how many.
    pub(crate) fn drop_in_flight(&mut self, a: SocketAddr, b: SocketAddr) -> usize {
        let before = self.wire.len();
        self.wire.retain(|w| (w.2, w.3) != (a, b));
        before - self.wire.len()
    }

    /// Takes everything node `i` has to say.
    pub(crate) fn drain(&mut self, i: usize) {
        let now = self.now;
        loop {
            let mut moved = false;
            let Some(node) = self.nodes.get_mut(&i) else {
                return;
            };
            while let Some(ev) = node.ep.poll_event() {
                moved = true;
                let seen = match ev {
                    Event::View { view, message } => Seen::View {
                        ltime: view.ltime(),
                        coord: view.coordinator().0,
                        members: view.endpoints().map(|e| e.0).collect(),
                        primary: view.is_primary(),
                        protocol: view.protocol().to_string(),
                        message: message.chunks().flatten().copied().collect(),
                    },
                    Event::Cast {
                        endpoint, payload, ..
                    } => Seen::Cast {
                        from: endpoint.0,
                        bytes: payload.chunks().flatten().copied().collect(),
                    },
                    Event::Send {
                        endpoint, payload, ..
                    } => Seen::Send {
                        from: endpoint.0,
                        bytes: payload.chunks().flatten().copied().collect(),
                    },
                    Event::Block => Seen::Block,
                    Event::ViewMessage { .. } => Seen::ViewMessage,
                    Event::Heartbeat { .. } => Seen::Heartbeat,
                    Event::Exit => Seen::Exit,
                    _ => continue,
                };
                node.seen.push(seen.clone());
                if seen == Seen::Block && node.auto_block_ok {
                    node.ep.block_ok(now).unwrap();
                }
                if seen == Seen::ViewMessage {
                    let m = node.view_message.clone().unwrap_or_default();
                    node.ep.view_message(now, &m).unwrap();
                }
            }
            while let Some(t) = node.ep.poll_transmit() {
                moved = true;
                let (to, bytes) = (t.destination, t.contents.to_vec());
                let at = now + self.delay;
                self.seq += 1;
                self.wire.push((at, self.seq, node.addr, to, bytes));
            }
            if !moved {
                return;
            }
        }
    }

    /// Runs the world for `d` of virtual time.
    pub(crate) fn run(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next_wire = self.wire.iter().map(|w| (w.0, w.1)).min();
            let next_timer = self
                .nodes
                .values()
                .filter_map(|n| n.ep.poll_timeout())
                .min();
            let t = match (next_wire.map(|w| w.0), next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            if let Some((at, seq)) = next_wire.filter(|w| w.0 <= t) {
                let pos = self
                    .wire
                    .iter()
                    .position(|w| w.0 == at && w.1 == seq)
                    .unwrap();
                let (_, _, from, to, bytes) = self.wire.remove(pos);
                if !self.connected(from, to) {
                    continue;
                }
                let Some(i) = self
                    .nodes
                    .iter()
                    .find(|(_, n)| n.addr == to)
                    .map(|(i, _)| *i)
                else {
                    continue;
                };
                let now = self.now;
                self.nodes
                    .get_mut(&i)
                    .unwrap()
                    .ep
                    .handle_datagram(now, from, &bytes);
                self.drain(i);
            } else {
                let due: Vec<usize> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.ep.poll_timeout().is_some_and(|x| x <= t))
                    .map(|(i, _)| *i)
                    .collect();
                for i in due {
                    let now = self.now;
                    self.nodes.get_mut(&i).unwrap().ep.handle_timeout(now);
                    self.drain(i);
                }
            }
        }
        self.now = end;
    }

    /// The members of node `i`'s current view.
    pub(crate) fn view_of(&self, i: usize) -> Vec<u64> {
        self.nodes[&i].ep.view().endpoints().map(|e| e.0).collect()
    }

    pub(crate) fn id(&self, i: usize) -> u64 {
        self.nodes[&i].ep.my_endpoint().0
    }

    pub(crate) fn status(&self, i: usize) -> Status {
        self.nodes[&i].ep.status()
    }

    /// Casts at node `i`.
    pub(crate) fn cast(&mut self, i: usize, bytes: &[u8]) -> consort_core::SendView {
        let now = self.now;
        let v = self.nodes.get_mut(&i).unwrap().ep.cast(now, bytes).unwrap();
        self.drain(i);
        v
    }

    /// Casts node `i` delivered since its last view, by sender.
    pub(crate) fn casts_in_current_view(&self, i: usize) -> Vec<(u64, Vec<u8>)> {
        let seen = &self.nodes[&i].seen;
        let start = seen
            .iter()
            .rposition(|s| matches!(s, Seen::View { .. }))
            .map_or(0, |p| p + 1);
        seen[start..]
            .iter()
            .filter_map(|s| match s {
                Seen::Cast { from, bytes } => Some((*from, bytes.clone())),
                _ => None,
            })
            .collect()
    }

    /// Everything node `i` saw between its `k`-th and `k+1`-th view.
    pub(crate) fn casts_in_view(&self, i: usize, k: usize) -> Vec<(u64, Vec<u8>)> {
        let seen = &self.nodes[&i].seen;
        let views: Vec<usize> = seen
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Seen::View { .. }))
            .map(|(p, _)| p)
            .collect();
        let start = views[k] + 1;
        let end = views.get(k + 1).copied().unwrap_or(seen.len());
        seen[start..end]
            .iter()
            .filter_map(|s| match s {
                Seen::Cast { from, bytes } => Some((*from, bytes.clone())),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn views_seen(&self, i: usize) -> Vec<Seen> {
        self.nodes[&i]
            .seen
            .iter()
            .filter(|s| matches!(s, Seen::View { .. }))
            .cloned()
            .collect()
    }
}
