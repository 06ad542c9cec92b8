//! The simulation loop: nodes and network in one virtual clock.
//!
//! At each step the loop takes the earliest thing due — a node fault from
//! the schedule, a datagram arriving, an endpoint's timer, an application's
//! next action — advances the clock to it and lets the node concerned
//! handle it. Ties are broken by kind (faults first, then network, timers,
//! applications) and then by schedule, datagram order or node index, so
//! that a run is a pure function of its seed.
//!
//! The loop stops when the run is *quiescent*, or at the time bound. In a
//! static group quiescent means: the workload phase is over, every message
//! the applications made was accepted and delivered everywhere it should
//! be, no datagram is in flight and every pool is empty. With membership
//! it means: the fault phase is over, every live process is in one view
//! that holds exactly the live processes, none is blocked or leaving, the
//! applications are done, no datagram is in flight and every pool is empty
//! (a member keeps each cast until every member has it, so empty pools say
//! everything was delivered).

mod faults;
mod quiescence;

use consort_core::Instant;

use crate::checker::{EndState, NodeEnd};
use crate::churn::Scheduled;
use crate::net::Net;
use crate::node::Node;
use crate::trace::{Entry, NET, Start, StartCause, Trace};

/// What is due next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// The next scheduled node fault.
    Fault,
    /// The fault phase ends.
    FaultsOver,
    Datagram,
    Timer(usize),
    Action(usize),
}

/// Builds a new process: `(process index, slot, seed slots, start time,
/// cause)`. Restarts, joins and rejoins call it during the run.
pub type Spawn<'a> =
    Box<dyn FnMut(usize, usize, &[usize], Instant, StartCause) -> Result<Node, String> + 'a>;

/// A group of nodes on a network.
pub struct Sim<'a> {
    /// The processes, by index; crashed and exited ones stay, inert.
    pub nodes: Vec<Node>,
    /// The network.
    pub net: Net,
    /// Everything the applications saw.
    pub trace: Trace,
    now: Instant,
    started: bool,
    /// Trace records already counted for quiescence.
    counted: usize,
    /// Deliveries owed (accepted casts and sends times receivers) and made.
    owed: u64,
    made: u64,
    /// When new messages stop being made.
    workload_end: Instant,
    /// When faults stop.
    faults_end: Instant,
    faults_over: bool,
    /// Node faults, in time order, and the next one due.
    events: Vec<Scheduled>,
    next_event: usize,
    /// Whether views change (Gmp): quiescence is judged on views then.
    membership: bool,
    /// Which process runs at each slot.
    owner: Vec<Option<usize>>,
    spawn: Option<Spawn<'a>>,
    /// The seed slots the initial processes were built with (for the trace).
    initial_seeds: Vec<Vec<usize>>,
    /// The seed host every endpoint joins through: never struck in place
    /// of another target.
    protect: Option<usize>,
    /// Faults that struck another slot than scheduled: scheduled -> actual.
    redirect: std::collections::BTreeMap<usize, usize>,
    /// Processes that could not be built during the run.
    spawn_errors: Vec<String>,
}

impl<'a> Sim<'a> {
    /// A simulation of `nodes` (process `i` at slot `i`) on `net`, whose
    /// applications make messages until `workload_end`.
    pub fn new(nodes: Vec<Node>, net: Net, workload_end: Instant) -> Self {
        let owner = (0..nodes.len()).map(Some).collect();
        Sim {
            nodes,
            net,
            trace: Trace::new(),
            now: Instant::ZERO,
            started: false,
            counted: 0,
            owed: 0,
            made: 0,
            workload_end,
            faults_end: workload_end,
            faults_over: false,
            events: Vec::new(),
            next_event: 0,
            membership: false,
            owner,
            spawn: None,
            initial_seeds: Vec::new(),
            protect: None,
            redirect: Default::default(),
            spawn_errors: Vec::new(),
        }
    }

    /// Adds membership: the node faults `events` (ending by `faults_end`),
    /// carried out in time order, with `spawn` building the processes that
    /// restarts, joins and rejoins start; quiescence is judged on views.
    /// `initial_seeds` are the seed slots the initial processes joined
    /// through, for the trace.
    pub fn with_membership(
        mut self,
        events: Vec<Scheduled>,
        faults_end: Instant,
        slots: usize,
        initial_seeds: Vec<Vec<usize>>,
        spawn: Spawn<'a>,
    ) -> Self {
        self.initial_seeds = initial_seeds;
        self.faults_end = faults_end.max(self.workload_end);
        self.events = events;
        self.membership = true;
        self.owner.resize(slots.max(self.owner.len()), None);
        self.spawn = Some(spawn);
        self
    }

    /// Names the seed host (see [`crate::churn`]), which a fault never
    /// strikes in place of another.
    pub fn protect(mut self, slot: usize) -> Self {
        self.protect = Some(slot);
        self
    }

    /// Adds the node faults `events` to a static group (partitions only
    /// make sense there: nothing can replace a crashed member).
    pub fn with_events(mut self, events: Vec<Scheduled>) -> Self {
        self.events = events;
        self
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// When faults stop.
    pub fn faults_end(&self) -> Instant {
        self.faults_end
    }

    /// Processes that could not be built during the run.
    pub fn spawn_errors(&self) -> &[String] {
        &self.spawn_errors
    }

    /// Runs until quiescence (returns `true`) or until `bound` (`false`).
    pub fn run(&mut self, bound: Instant) -> bool {
        self.start();
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

    /// Runs every step due up to `until`, quiescent or not, and leaves the
    /// clock there (for measurements that need the group to go on).
    pub fn run_until(&mut self, until: Instant) {
        self.start();
        while let Some((at, step)) = self.next_step() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.step(step);
        }
        self.now = self.now.max(until);
    }

    /// Records the initial processes and their first views.
    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            let Some(ep) = n.endpoint.as_ref() else {
                continue;
            };
            let start = Start {
                slot: n.slot,
                endpoint: ep.my_endpoint(),
                seeds: self.initial_seeds.get(i).cloned().unwrap_or_default(),
                cause: StartCause::Initial,
            };
            self.trace.push(self.now, i, Entry::Start(start));
            self.nodes[i].drain(self.now, &mut self.net, &mut self.trace);
        }
    }

    fn next_step(&self) -> Option<(Instant, Step)> {
        let fault = self
            .events
            .get(self.next_event)
            .map(|e| (e.at, Step::Fault));
        let over = (!self.faults_over).then_some((self.faults_end, Step::FaultsOver));
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
        fault
            .into_iter()
            .chain(over)
            .chain(net)
            .chain(timers)
            .chain(actions)
            .min()
    }

    fn step(&mut self, step: Step) {
        let now = self.now;
        match step {
            Step::Fault => {
                let e = self.events[self.next_event].clone();
                self.next_event += 1;
                self.fault(&e);
            }
            Step::FaultsOver => {
                self.faults_over = true;
                self.trace.push(now, NET, Entry::FaultsOver);
            }
            Step::Datagram => {
                if let Some(d) = self.net.pop_due(now) {
                    let to = self.owner.get(d.to).copied().flatten();
                    if let Some(node) = to.and_then(|p| self.nodes.get_mut(p)) {
                        node.handle_datagram(now, d.from, &d.bytes, &mut self.net, &mut self.trace);
                    }
                }
            }
            Step::Timer(i) => self.nodes[i].handle_timeout(now, &mut self.net, &mut self.trace),
            Step::Action(i) => self.nodes[i].act(now, &mut self.net, &mut self.trace),
        }
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
                match &n.endpoint {
                    Some(ep) => eprintln!("n{i} (slot {}, {:?}): {ep:?}", n.slot, n.life()),
                    None => eprintln!("n{i} (slot {}): crashed", n.slot),
                }
            }
        }
        let nodes = self
            .nodes
            .iter()
            .map(|n| NodeEnd {
                live: n.is_live(),
                pool_in_use: n.pool_usage().0,
                stats: n.stats(),
                unsent: n.workload.unsent(),
                errors: n.workload.errors().to_vec(),
                timer_repeats: n.timer_repeats(),
                timer_stuck: n.max_stuck(),
            })
            .collect();
        EndState {
            nodes,
            quiescent,
            time: self.now,
        }
    }

    /// Deliveries owed so far: accepted casts times their receivers, plus
    /// sends (static groups only).
    pub fn deliveries_owed(&self) -> u64 {
        self.owed
    }

    /// Deliveries made so far (of recognisable messages; static groups only).
    pub fn deliveries_made(&self) -> u64 {
        self.made
    }

    /// Whether views change in this run.
    pub fn membership(&self) -> bool {
        self.membership
    }
}
