//! The simulation loop: nodes and network in one virtual clock.
//!
//! At each step the loop takes the earliest thing due — a datagram
//! arriving, an endpoint's timer, an application's next action — advances
//! the clock to it and lets the node concerned handle it. Ties are broken by
//! kind (network first, then timers, then applications) and then by datagram
//! order or node index, so that a run is a pure function of its seed.
//!
//! The loop stops when the run is *quiescent* — the workload phase is over,
//! every message the applications made was accepted and delivered
//! everywhere it should be, no datagram is in flight and every pool is
//! empty — or at the time bound.

use consort_core::Instant;
use consort_core::stack::LayerKind;

use crate::checker::{EndState, NodeEnd};
use crate::net::Net;
use crate::node::Node;
use crate::trace::{Entry, Trace};

/// What is due next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Datagram,
    Timer(usize),
    Action(usize),
}

/// A group of nodes on a network.
pub struct Sim {
    /// The nodes, by index.
    pub nodes: Vec<Node>,
    /// The network.
    pub net: Net,
    /// Everything the applications saw.
    pub trace: Trace,
    now: Instant,
    /// Trace records already counted for quiescence.
    counted: usize,
    /// Deliveries owed (accepted casts and sends times receivers) and made.
    owed: u64,
    made: u64,
    /// When new messages stop being made.
    workload_end: Instant,
}

impl Sim {
    /// A simulation of `nodes` on `net`, whose applications make messages
    /// until `workload_end`.
    pub fn new(nodes: Vec<Node>, net: Net, workload_end: Instant) -> Self {
        Sim {
            nodes,
            net,
            trace: Trace::new(),
            now: Instant::ZERO,
            counted: 0,
            owed: 0,
            made: 0,
            workload_end,
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Runs until quiescence (returns `true`) or until `bound` (`false`).
    pub fn run(&mut self, bound: Instant) -> bool {
        loop {
            self.count_new_records();
            if self.quiescent() {
                return true;
            }
            let Some((at, step)) = self.next_step() else {
                return self.quiescent();
            };
            if at > bound {
                self.now = bound;
                return false;
            }
            self.now = self.now.max(at);
            self.step(step);
        }
    }

    fn next_step(&self) -> Option<(Instant, Step)> {
        let net = self.net.next_time().map(|t| (t, Step::Datagram));
        let timers = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.timer().map(|t| (t, Step::Timer(i))));
        let actions = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.workload.next_time().map(|t| (t, Step::Action(i))));
        net.into_iter().chain(timers).chain(actions).min()
    }

    fn step(&mut self, step: Step) {
        let now = self.now;
        match step {
            Step::Datagram => {
                if let Some(d) = self.net.pop_due(now) {
                    if let Some(node) = self.nodes.get_mut(d.to) {
                        node.handle_datagram(now, d.from, &d.bytes, &mut self.net, &mut self.trace);
                    }
                }
            }
            Step::Timer(i) => self.nodes[i].handle_timeout(now, &mut self.net, &mut self.trace),
            Step::Action(i) => self.nodes[i].act(now, &mut self.net, &mut self.trace),
        }
    }

    /// Keeps the count of deliveries owed and made up to date.
    fn count_new_records(&mut self) {
        let n = self.nodes.len() as u64;
        let recs = &self.trace.records()[self.counted..];
        for rec in recs {
            match &rec.entry {
                Entry::CastAccepted { .. } => {
                    let local = self.nodes[rec.node]
                        .endpoint
                        .stack()
                        .contains(LayerKind::Local);
                    self.owed += n - 1 + u64::from(local);
                }
                Entry::SendAccepted { .. } => self.owed += 1,
                Entry::Delivered(d) if d.id.is_some_and(|id| id.kind == d.kind) => {
                    self.made += 1;
                }
                _ => {}
            }
        }
        self.counted = self.trace.len();
    }

    fn quiescent(&self) -> bool {
        // An empty network too: a late duplicate still in flight could yet
        // be delivered twice, and must be given the chance.
        self.now >= self.workload_end
            && self.made >= self.owed
            && self.net.in_flight() == 0
            && self.nodes.iter().all(|n| {
                n.workload.next_time().is_none()
                    && n.workload.unsent() == 0
                    && n.endpoint.pool_usage().0 == 0
            })
    }

    /// Drains every endpoint one last time and describes how each ended.
    pub fn end_state(&mut self, quiescent: bool) -> EndState {
        let now = self.now;
        for n in &mut self.nodes {
            // Every input was followed by a drain, so nothing should be
            // left; whatever is, is taken (and recorded) here so that the
            // pool count judges the protocol, not the simulator.
            n.drain(now, &mut self.net, &mut self.trace);
        }
        if !quiescent && std::env::var_os("CONSORT_SIM_DUMP").is_some() {
            for (i, n) in self.nodes.iter().enumerate() {
                eprintln!("n{i}: {:?}", n.endpoint);
            }
        }
        let nodes = self
            .nodes
            .iter()
            .map(|n| NodeEnd {
                live: true,
                pool_in_use: n.endpoint.pool_usage().0,
                stats: n.endpoint.stats().clone(),
                unsent: n.workload.unsent(),
                errors: n.workload.errors().to_vec(),
            })
            .collect();
        EndState {
            nodes,
            quiescent,
            time: self.now,
        }
    }

    /// Deliveries owed so far: accepted casts times their receivers, plus sends.
    pub fn deliveries_owed(&self) -> u64 {
        self.owed
    }

    /// Deliveries made so far (of recognisable messages).
    pub fn deliveries_made(&self) -> u64 {
        self.made
    }
}
