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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::Duration;

use consort_core::Instant;

use crate::rng::Rng;

/// A kind of fault, as named on the command line.
///
/// Only per-datagram faults exist today. Partitions, crashes, restarts,
/// joins and leaves will be node-level faults scheduled in the
/// [`FaultPlan`]; their names are reserved so that asking for one is a
/// clear error rather than a silent no-op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Datagrams are dropped.
    Loss,
    /// Datagrams are delivered twice.
    Dup,
    /// Datagrams are delayed so that later ones overtake them.
    Reorder,
}

/// Fault names the design plans but this version does not simulate yet.
const PLANNED: [&str; 5] = ["partition", "crash", "restart", "join", "leave"];

impl FaultKind {
    /// Every fault this version simulates.
    pub const ALL: [FaultKind; 3] = [FaultKind::Loss, FaultKind::Dup, FaultKind::Reorder];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Loss => "loss",
            FaultKind::Dup => "dup",
            FaultKind::Reorder => "reorder",
        }
    }

    /// Parses a fault name; planned and unknown names are errors that say so.
    ///
    /// ```
    /// use consort_sim::FaultKind;
    /// assert_eq!(FaultKind::parse("dup"), Ok(FaultKind::Dup));
    /// assert!(FaultKind::parse("crash").unwrap_err().contains("not simulated yet"));
    /// assert!(FaultKind::parse("los").unwrap_err().contains("unknown fault"));
    /// ```
    pub fn parse(s: &str) -> Result<FaultKind, String> {
        let s = s.trim();
        if let Some(k) = Self::ALL.iter().find(|k| k.name().eq_ignore_ascii_case(s)) {
            return Ok(*k);
        }
        if PLANNED.iter().any(|p| p.eq_ignore_ascii_case(s)) {
            return Err(format!(
                "fault {s:?} is not simulated yet in this version (available: loss, dup, reorder)"
            ));
        }
        Err(format!(
            "unknown fault {s:?} (available: loss, dup, reorder)"
        ))
    }
}

/// A fault with its rate: the probability that it strikes one datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Drop the datagram.
    Loss(f64),
    /// Deliver an extra copy of the datagram, later.
    Dup(f64),
    /// Delay the datagram by a random extra amount.
    Reorder(f64),
}

impl Fault {
    /// Which kind of fault this is.
    pub fn kind(self) -> FaultKind {
        match self {
            Fault::Loss(_) => FaultKind::Loss,
            Fault::Dup(_) => FaultKind::Dup,
            Fault::Reorder(_) => FaultKind::Reorder,
        }
    }
}

/// The faults of one run, and when they stop.
///
/// Today every fault is a per-datagram rate applied by [`Net::send`]. Node
/// faults (partition, crash, restart, join, leave) will join [`Fault`] as
/// variants carrying when and whom they strike; the simulation loop will
/// take them from the plan in time order as one more kind of step, and the
/// network will consult the plan's current partition before delivering.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    /// Faults applied to each datagram sent before `until`.
    pub faults: Vec<Fault>,
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
            until,
            base_delay: Duration::from_millis(1),
            max_extra_delay: Duration::from_millis(30),
        }
    }

    fn rate(&self, kind: FaultKind) -> f64 {
        self.faults
            .iter()
            .filter(|f| f.kind() == kind)
            .map(|f| match f {
                Fault::Loss(r) | Fault::Dup(r) | Fault::Reorder(r) => *r,
            })
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
}

impl FaultCounts {
    /// How many faults of `kind` happened.
    pub fn of(&self, kind: FaultKind) -> u64 {
        match kind {
            FaultKind::Loss => self.losses,
            FaultKind::Dup => self.duplicates,
            FaultKind::Reorder => self.reorders,
        }
    }

    /// Adds another run's counts.
    pub fn add(&mut self, o: &FaultCounts) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.losses += o.losses;
        self.duplicates += o.duplicates;
        self.reorders += o.reorders;
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} datagrams sent, {} lost, {} duplicated, {} reordered",
            self.sent, self.losses, self.duplicates, self.reorders
        )
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

    /// Takes the next datagram due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Datagram> {
        if self.next_time()? > now {
            return None;
        }
        let Reverse(d) = self.heap.pop()?;
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
        Some(Datagram {
            from: d.from,
            to: d.to,
            bytes: d.bytes,
        })
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
        assert!(FaultKind::parse("partition").is_err());
        assert!(FaultKind::parse("").is_err());
    }
}
