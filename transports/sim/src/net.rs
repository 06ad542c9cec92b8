//! The simulated network: datagrams in flight in virtual time, with faults.
//!
//! A datagram sent at `now` is delivered at `now + base delay`, unless the
//! [`FaultPlan`] says otherwise: it may be lost, duplicated (an extra copy
//! arrives later) or delayed at random so that later datagrams on the same
//! link overtake it. Each choice is drawn from the run's seed, and datagrams
//! due at the same instant leave in the order they were sent, so a run
//! replays exactly.
//!
//! Faults are counted when they *actually* happen: a loss when a datagram
//! is dropped, a duplicate when the extra copy is delivered, a reorder when
//! a datagram arrives after one sent later on the same link. A campaign
//! uses these counts to refuse runs in which a requested fault never bit.
//!
//! Node faults (partitions, crashes, restarts, joins, leaves) are scheduled
//! by [`churn`](crate::churn) into [`FaultPlan::events`] and carried out by
//! the [simulation loop](crate::sim); the network's share is the partition:
//! a datagram that would cross it when it arrives is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::Duration;

use consort_core::Instant;

use crate::rng::Rng;

/// A kind of fault, as named on the command line.
///
/// Loss, duplication and reordering strike datagrams; the others strike
/// nodes or the whole network at scheduled times (see [`crate::churn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Datagrams are dropped.
    Loss,
    /// Datagrams are delivered twice.
    Dup,
    /// Datagrams are delayed so that later ones overtake them.
    Reorder,
    /// The network splits in two for a while, then heals.
    Partition,
    /// A node stops for good, as with `kill -9`.
    Crash,
    /// A crashed node's address comes back as a new endpoint.
    Restart,
    /// A new node starts part-way through and joins through seeds.
    Join,
    /// A node leaves the group (and may come back as a new endpoint).
    Leave,
}

impl FaultKind {
    /// Every fault this version simulates.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Loss,
        FaultKind::Dup,
        FaultKind::Reorder,
        FaultKind::Partition,
        FaultKind::Crash,
        FaultKind::Restart,
        FaultKind::Join,
        FaultKind::Leave,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Loss => "loss",
            FaultKind::Dup => "dup",
            FaultKind::Reorder => "reorder",
            FaultKind::Partition => "partition",
            FaultKind::Crash => "crash",
            FaultKind::Restart => "restart",
            FaultKind::Join => "join",
            FaultKind::Leave => "leave",
        }
    }

    /// Whether this fault strikes datagrams at a rate (rather than nodes at
    /// scheduled times).
    pub fn per_datagram(self) -> bool {
        matches!(self, FaultKind::Loss | FaultKind::Dup | FaultKind::Reorder)
    }

    /// Parses a fault name; unknown names are errors that list the others.
    ///
    /// ```
    /// use consort_sim::FaultKind;
    /// assert_eq!(FaultKind::parse("dup"), Ok(FaultKind::Dup));
    /// assert_eq!(FaultKind::parse("crash"), Ok(FaultKind::Crash));
    /// assert!(FaultKind::parse("los").unwrap_err().contains("unknown fault"));
    /// ```
    pub fn parse(s: &str) -> Result<FaultKind, String> {
        let s = s.trim();
        if let Some(k) = Self::ALL.iter().find(|k| k.name().eq_ignore_ascii_case(s)) {
            return Ok(*k);
        }
        let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
        Err(format!(
            "unknown fault {s:?} (available: {})",
            names.join(", ")
        ))
    }
}

/// A fault as a run asks for it: per-datagram faults with their rate (the
/// probability that one datagram is struck), node faults with how many
/// times a run suffers them (at seeded random times, see [`crate::churn`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Drop the datagram.
    Loss(f64),
    /// Deliver an extra copy of the datagram, later.
    Dup(f64),
    /// Delay the datagram by a random extra amount.
    Reorder(f64),
    /// Split the network this many times (each heals before the next).
    Partition(u32),
    /// Crash this many nodes for good.
    Crash(u32),
    /// Crash and later restart (as a new endpoint) this many nodes.
    Restart(u32),
    /// Start this many new nodes part-way through.
    Join(u32),
    /// Have this many nodes leave (some come back as new endpoints).
    Leave(u32),
}

impl Fault {
    /// Which kind of fault this is.
    pub fn kind(self) -> FaultKind {
        match self {
            Fault::Loss(_) => FaultKind::Loss,
            Fault::Dup(_) => FaultKind::Dup,
            Fault::Reorder(_) => FaultKind::Reorder,
            Fault::Partition(_) => FaultKind::Partition,
            Fault::Crash(_) => FaultKind::Crash,
            Fault::Restart(_) => FaultKind::Restart,
            Fault::Join(_) => FaultKind::Join,
            Fault::Leave(_) => FaultKind::Leave,
        }
    }

    /// The rate of a per-datagram fault.
    pub fn rate(self) -> Option<f64> {
        match self {
            Fault::Loss(r) | Fault::Dup(r) | Fault::Reorder(r) => Some(r),
            _ => None,
        }
    }

    /// How many times a run suffers a node fault.
    pub fn count(self) -> Option<u32> {
        match self {
            Fault::Partition(n)
            | Fault::Crash(n)
            | Fault::Restart(n)
            | Fault::Join(n)
            | Fault::Leave(n) => Some(n),
            _ => None,
        }
    }

    /// The fault of `kind` with `amount` (a rate or, rounded, a count).
    pub fn of(kind: FaultKind, amount: f64) -> Fault {
        let n = amount.round().max(0.0) as u32;
        match kind {
            FaultKind::Loss => Fault::Loss(amount),
            FaultKind::Dup => Fault::Dup(amount),
            FaultKind::Reorder => Fault::Reorder(amount),
            FaultKind::Partition => Fault::Partition(n),
            FaultKind::Crash => Fault::Crash(n),
            FaultKind::Restart => Fault::Restart(n),
            FaultKind::Join => Fault::Join(n),
            FaultKind::Leave => Fault::Leave(n),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.rate(), self.count()) {
            (Some(r), _) => write!(f, "{} {r}", self.kind().name()),
            (_, Some(n)) => write!(f, "{} x{n}", self.kind().name()),
            _ => write!(f, "{}", self.kind().name()),
        }
    }
}

/// The faults of one run, and when they stop.
///
/// Per-datagram faults are rates applied by [`Net::send`]. Node faults are
/// drawn from the seed into [`FaultPlan::events`] (see
/// [`churn::schedule`](crate::churn::schedule)); the simulation loop takes
/// them in time order as one more kind of step, and the network drops
/// datagrams that cross the current partition ([`Net::set_partition`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    /// Faults applied to each datagram sent before `until`, and the node
    /// faults asked for.
    pub faults: Vec<Fault>,
    /// The node faults of this run, in time order, all before `until`.
    pub events: Vec<crate::churn::Scheduled>,
    /// After this instant the network is perfect, so that a correct
    /// protocol can be required to converge.
    pub until: Instant,
    /// Delay of every datagram.
    pub base_delay: Duration,
    /// Largest extra delay of a reordered datagram or a duplicate copy.
    pub max_extra_delay: Duration,
}

impl FaultPlan {
    /// A plan with these faults until `until`, a 1 ms base delay and up to
    /// 30 ms extra: enough for dozens of datagrams to overtake a late one.
    pub fn new(faults: Vec<Fault>, until: Instant) -> Self {
        FaultPlan {
            faults,
            events: Vec::new(),
            until,
            base_delay: Duration::from_millis(1),
            max_extra_delay: Duration::from_millis(30),
        }
    }

    fn rate(&self, kind: FaultKind) -> f64 {
        self.faults
            .iter()
            .filter(|f| f.kind() == kind)
            .filter_map(|f| f.rate())
            .fold(0.0, f64::max)
    }
}

/// Faults that actually happened, and traffic carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Datagrams (copies included) delivered.
    pub delivered: u64,
    /// Datagrams dropped.
    pub losses: u64,
    /// Extra copies delivered.
    pub duplicates: u64,
    /// Datagrams delivered after one sent later on the same link.
    pub reorders: u64,
    /// Datagrams dropped because they would have crossed a partition.
    pub partitioned: u64,
    /// Partitions made (each heals later).
    pub partitions: u64,
    /// Partitions healed.
    pub heals: u64,
    /// Nodes crashed.
    pub crashes: u64,
    /// Crashed nodes' addresses started again as new endpoints.
    pub restarts: u64,
    /// New nodes started part-way through.
    pub joins: u64,
    /// Nodes that were asked to leave.
    pub leaves: u64,
    /// Nodes that left and came back as new endpoints.
    pub rejoins: u64,
}

impl FaultCounts {
    /// How many faults of `kind` happened.
    pub fn of(&self, kind: FaultKind) -> u64 {
        match kind {
            FaultKind::Loss => self.losses,
            FaultKind::Dup => self.duplicates,
            FaultKind::Reorder => self.reorders,
            FaultKind::Partition => self.partitions,
            FaultKind::Crash => self.crashes,
            FaultKind::Restart => self.restarts,
            FaultKind::Join => self.joins,
            FaultKind::Leave => self.leaves,
        }
    }

    /// Adds another run's counts.
    pub fn add(&mut self, o: &FaultCounts) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.losses += o.losses;
        self.duplicates += o.duplicates;
        self.reorders += o.reorders;
        self.partitioned += o.partitioned;
        self.partitions += o.partitions;
        self.heals += o.heals;
        self.crashes += o.crashes;
        self.restarts += o.restarts;
        self.joins += o.joins;
        self.leaves += o.leaves;
        self.rejoins += o.rejoins;
    }

    /// Whether any node fault happened.
    pub fn any_node_fault(&self) -> bool {
        self.partitions + self.crashes + self.restarts + self.joins + self.leaves > 0
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} datagrams sent, {} lost, {} duplicated, {} reordered",
            self.sent, self.losses, self.duplicates, self.reorders
        )?;
        if self.any_node_fault() {
            write!(
                f,
                "; {} partitions ({} healed, {} datagrams cut), {} crashes, {} restarts, {} joins, {} leaves ({} came back)",
                self.partitions,
                self.heals,
                self.partitioned,
                self.crashes,
                self.restarts,
                self.joins,
                self.leaves,
                self.rejoins
            )?;
        }
        Ok(())
    }
}

/// A datagram arriving at a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Sending node.
    pub from: usize,
    /// Receiving node.
    pub to: usize,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A datagram in flight. Ordered by delivery time, then by the order in
/// which the network took it, which makes simultaneous arrivals deterministic.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    /// Position in its link's send order; copies share their original's.
    link_seq: u64,
    copy: bool,
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

/// The network between `n` nodes.
#[derive(Debug)]
pub struct Net {
    n: usize,
    plan: FaultPlan,
    rng: Rng,
    heap: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    /// Per link `from * n + to`: datagrams sent, and the highest send
    /// position delivered so far (plus one), to observe reordering.
    link_sent: Vec<u64>,
    link_delivered: Vec<u64>,
    counts: FaultCounts,
    /// The current partition: bit `i` set for the nodes on one side.
    partition: Option<u64>,
}

impl Net {
    /// A network between `n` nodes following `plan`, drawing from `rng`.
    pub fn new(n: usize, plan: FaultPlan, rng: Rng) -> Self {
        Net {
            n,
            plan,
            rng,
            heap: BinaryHeap::new(),
            order: 0,
            link_sent: vec![0; n * n],
            link_delivered: vec![0; n * n],
            counts: FaultCounts::default(),
            partition: None,
        }
    }

    /// Takes a datagram from `from` to `to` at `now`.
    pub fn send(&mut self, now: Instant, from: usize, to: usize, bytes: &[u8]) {
        if from >= self.n || to >= self.n {
            return;
        }
        self.counts.sent += 1;
        let link = from * self.n + to;
        let link_seq = self.link_sent[link];
        self.link_sent[link] += 1;
        let faulty = now < self.plan.until;
        // Draw every choice whether or not it applies, so that one fault's
        // rate does not shift the random stream of the others.
        let lost = self.rng.chance(self.plan.rate(FaultKind::Loss));
        let dup = self.rng.chance(self.plan.rate(FaultKind::Dup));
        let late = self.rng.chance(self.plan.rate(FaultKind::Reorder));
        let extra = self.extra_delay();
        let dup_extra = self.extra_delay();
        if faulty && lost {
            self.counts.losses += 1;
            return;
        }
        let base = now + self.plan.base_delay;
        let at = if faulty && late { base + extra } else { base };
        self.push(at, link_seq, false, from, to, bytes.to_vec());
        if faulty && dup {
            self.push(base + dup_extra, link_seq, true, from, to, bytes.to_vec());
        }
    }

    fn extra_delay(&mut self) -> Duration {
        let max = self.plan.max_extra_delay.as_micros() as u64;
        Duration::from_micros(self.rng.between(1, max.max(1)))
    }

    fn push(
        &mut self,
        at: Instant,
        link_seq: u64,
        copy: bool,
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    ) {
        self.order += 1;
        self.heap.push(Reverse(InFlight {
            at,
            order: self.order,
            link_seq,
            copy,
            from,
            to,
            bytes,
        }));
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_time(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(d)| d.at)
    }

    /// Splits the network: nodes whose bit is set in `side` (nodes 0 to 63)
    /// reach only each other, the rest only each other, until
    /// `set_partition(None)` heals it. Datagrams already in flight are
    /// judged when they arrive.
    pub fn set_partition(&mut self, side: Option<u64>) {
        self.partition = side;
    }

    /// The current partition, if any.
    pub fn partition(&self) -> Option<u64> {
        self.partition
    }

    /// Whether a datagram from `from` to `to` crosses the current partition.
    fn cut(&self, from: usize, to: usize) -> bool {
        let side = |i: usize| self.partition.map(|p| i < 64 && p >> i & 1 == 1);
        self.partition.is_some() && side(from) != side(to)
    }

    /// Counters of node faults, kept by whoever carries them out.
    pub fn counts_mut(&mut self) -> &mut FaultCounts {
        &mut self.counts
    }

    /// Takes the next datagram due at or before `now`. Datagrams that
    /// would cross the partition are dropped and counted on the way.
    pub fn pop_due(&mut self, now: Instant) -> Option<Datagram> {
        loop {
            if self.next_time()? > now {
                return None;
            }
            let Reverse(d) = self.heap.pop()?;
            if self.cut(d.from, d.to) {
                self.counts.partitioned += 1;
                continue;
            }
            return Some(self.arrive(d));
        }
    }

    fn arrive(&mut self, d: InFlight) -> Datagram {
        self.counts.delivered += 1;
        let link = d.from * self.n + d.to;
        if d.copy {
            self.counts.duplicates += 1;
        } else {
            if self.link_delivered[link] > d.link_seq + 1 {
                self.counts.reorders += 1;
            }
            self.link_delivered[link] = self.link_delivered[link].max(d.link_seq + 1);
        }
        Datagram {
            from: d.from,
            to: d.to,
            bytes: d.bytes,
        }
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.heap.len()
    }

    /// Faults that happened so far.
    pub fn counts(&self) -> &FaultCounts {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(net: &mut Net) -> Vec<(Instant, u8)> {
        let mut out = Vec::new();
        while let Some(t) = net.next_time() {
            let d = net.pop_due(t).unwrap();
            out.push((t, d.bytes[0]));
        }
        out
    }

    #[test]
    fn perfect_network_is_fifo_with_base_delay() {
        let mut net = Net::new(2, FaultPlan::new(vec![], Instant::MAX), Rng::new(1));
        for i in 0..5u8 {
            net.send(Instant::from_millis(u64::from(i)), 0, 1, &[i]);
        }
        let got = drain(&mut net);
        assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert_eq!(got[0].0, Instant::from_millis(1));
        assert_eq!(
            *net.counts(),
            FaultCounts {
                sent: 5,
                delivered: 5,
                ..Default::default()
            }
        );
    }

    #[test]
    fn faults_happen_are_counted_and_stop() {
        let plan = FaultPlan::new(
            vec![Fault::Loss(0.2), Fault::Dup(0.2), Fault::Reorder(0.3)],
            Instant::from_secs(1),
        );
        let mut net = Net::new(2, plan, Rng::new(9));
        for i in 0..1000u64 {
            net.send(Instant::from_micros(i * 100), 0, 1, &[(i % 256) as u8]);
        }
        let got = drain(&mut net);
        let c = *net.counts();
        assert!(
            c.losses > 100 && c.duplicates > 100 && c.reorders > 50,
            "{c:?}"
        );
        assert_eq!(got.len() as u64, 1000 - c.losses + c.duplicates);
        // After `until` the network is perfect again.
        net.send(Instant::from_secs(2), 0, 1, &[7]);
        assert_eq!(
            drain(&mut net),
            [(Instant::from_secs(2) + Duration::from_millis(1), 7)]
        );
        assert_eq!(net.counts().losses, c.losses);
    }

    #[test]
    fn fault_names() {
        assert_eq!(FaultKind::parse("Loss"), Ok(FaultKind::Loss));
        assert_eq!(FaultKind::parse("partition"), Ok(FaultKind::Partition));
        assert!(FaultKind::parse("").is_err());
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::parse(k.name()), Ok(k));
            assert_eq!(Fault::of(k, 1.0).kind(), k);
        }
    }

    #[test]
    fn a_partition_drops_what_crosses_it_until_healed() {
        let mut net = Net::new(3, FaultPlan::new(vec![], Instant::MAX), Rng::new(1));
        net.set_partition(Some(0b001));
        net.send(Instant::ZERO, 0, 1, &[1]);
        net.send(Instant::ZERO, 1, 2, &[2]);
        assert_eq!(drain(&mut net).iter().map(|g| g.1).collect::<Vec<_>>(), [2]);
        assert_eq!(net.counts().partitioned, 1);
        net.set_partition(None);
        net.send(Instant::from_secs(1), 0, 1, &[3]);
        assert_eq!(drain(&mut net).len(), 1);
    }
}
