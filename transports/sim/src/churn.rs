//! Node faults: when they strike, and whom.
//!
//! A run asks for node faults by kind and count ([`Fault::Partition`],
//! [`Fault::Crash`]...); [`schedule`] draws from the run's seed the time of
//! each and the node it strikes, all inside the fault phase, and the seed
//! addresses every endpoint joins through.
//!
//! Nodes are named here by **slot**: an address. A slot holds one endpoint
//! at a time; a restart or a rejoin puts a new endpoint (a new `EndpointId`)
//! at the address of one that crashed or left, and a join takes a new slot.
//! Targets are chosen by replaying the schedule on a model of which slots
//! are occupied, so that a crash always strikes a live node and a restart
//! always finds its address free. A crash or leave never takes the last
//! live node: it waits until someone (re)starts, and what cannot happen
//! within the fault phase is dropped (so a small group asked for more
//! removals than it has members may see a requested fault not happen, and
//! the campaign says so). The run itself may still differ from the model —
//! a rejoin waits for its predecessor's `Exit` — and the simulator then
//! aims at another live node (see [`Sim`](crate::sim::Sim)).
//!
//! Seeds: every endpoint's seed list holds the *anchor* (the lowest initial
//! slot that no fault stops, or failing that the lowest slot occupied at
//! the end) and a second address: the lowest slot occupied when the
//! endpoint starts if that is another one (when the anchor is down at the
//! time, or not started yet), else, half the time, a random slot occupied
//! at the end. A real deployment's gossip hosts are hosts that stay up; an
//! endpoint whose every seed address is gone for good, or not there yet,
//! could never find its group, which would say nothing about the protocol.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use consort_core::Instant;

use crate::net::Fault;
use crate::rng::Rng;

/// What happens at a scheduled time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeFault {
    /// The network splits: slots whose bit is set on one side, the rest on
    /// the other.
    Partition {
        /// Bit `i` for slot `i`.
        side: u64,
    },
    /// The partition heals.
    Heal,
    /// The endpoint at `slot` stops for good.
    Crash {
        /// Its address.
        slot: usize,
    },
    /// A new endpoint starts at the address of one that crashed.
    Restart {
        /// The address.
        slot: usize,
    },
    /// A new endpoint starts at a new address.
    Join {
        /// The address.
        slot: usize,
    },
    /// The endpoint at `slot` calls `leave()`.
    Leave {
        /// Its address.
        slot: usize,
    },
    /// A new endpoint starts at the address of one that left (once that
    /// one has received `Exit`; the simulator waits for it until the end
    /// of the fault phase, and skips the rejoin after that).
    Rejoin {
        /// The address.
        slot: usize,
    },
}

/// A node fault and when it strikes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    /// When.
    pub at: Instant,
    /// What.
    pub fault: NodeFault,
    /// For a fault that starts an endpoint: the slots it joins through.
    pub seeds: Vec<usize>,
}

/// The node faults of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Node faults in time order.
    pub events: Vec<Scheduled>,
    /// Seed slots of each of the initial members.
    pub initial_seeds: Vec<Vec<usize>>,
    /// Slots (addresses) the run uses: the initial members and every join.
    pub slots: usize,
    /// The seed host: the first seed of every endpoint.
    pub anchor: usize,
}

/// When node faults may start: after the initial members have had time to
/// find each other (a few heal sweeps with the simulator's fast parameters).
pub const FIRST_FAULT: Duration = Duration::from_millis(300);

/// How long a crash or leave that finds only one live node waits before it
/// tries again (in microseconds).
const WAIT: u64 = 100_000;

/// A fault before targets are known; restarts and rejoins name the crash
/// or leave they follow by its index in the list.
#[derive(Clone, Copy, Debug)]
enum Draft {
    Partition { heal: bool },
    Crash,
    Restart { of: usize },
    Join,
    Leave,
    Rejoin { of: usize },
}

/// Draws the node faults `faults` asks for, for a group of `members`
/// starting at time zero, inside `[FIRST_FAULT, until)`.
///
/// ```
/// use consort_sim::churn::{schedule, NodeFault};
/// use consort_sim::{Fault, Rng};
/// use consort_core::Instant;
/// let s = schedule(&[Fault::Crash(1), Fault::Join(1)], 5, Instant::from_secs(4), &mut Rng::new(1));
/// assert_eq!(s.slots, 6);
/// assert!(s.events.iter().any(|e| matches!(e.fault, NodeFault::Join { slot: 5 })));
/// ```
pub fn schedule(faults: &[Fault], members: usize, until: Instant, rng: &mut Rng) -> Schedule {
    let lo = FIRST_FAULT.as_micros() as u64;
    let hi = (until.as_micros()).max(lo + 1000);
    let mut drafts: Vec<(u64, Draft)> = Vec::new();
    let between = |rng: &mut Rng, a: u64, b: u64| rng.between(a, b.max(a));
    for f in faults {
        let n = u64::from(f.count().unwrap_or(0));
        match f {
            Fault::Partition(_) => {
                // Each partition in its own window, so each heals before the
                // next splits the network again.
                let width = (hi - lo) / n.max(1);
                for k in 0..n {
                    let w0 = lo + k * width;
                    let w1 = w0 + width;
                    let at = between(rng, w0, w1.saturating_sub(100_000));
                    let heal = between(rng, at + 100_000, (at + 1_500_000).min(w1));
                    drafts.push((at, Draft::Partition { heal: false }));
                    drafts.push((heal.min(hi - 1), Draft::Partition { heal: true }));
                }
            }
            Fault::Crash(_) => {
                for _ in 0..n {
                    drafts.push((between(rng, lo, hi - 1), Draft::Crash));
                }
            }
            Fault::Restart(_) => {
                for _ in 0..n {
                    let at = between(rng, lo, hi.saturating_sub(100_000));
                    drafts.push((at, Draft::Crash));
                    let of = drafts.len() - 1;
                    let back = between(rng, at + 50_000, (at + 1_000_000).min(hi - 1));
                    drafts.push((back, Draft::Restart { of }));
                }
            }
            Fault::Join(_) => {
                for _ in 0..n {
                    drafts.push((between(rng, lo, hi - 1), Draft::Join));
                }
            }
            Fault::Leave(_) => {
                for _ in 0..n {
                    let at = between(rng, lo, hi - 1);
                    drafts.push((at, Draft::Leave));
                    let of = drafts.len() - 1;
                    let back = between(rng, at + 200_000, at + 1_200_000);
                    if rng.chance(0.5) && back < hi {
                        drafts.push((back, Draft::Rejoin { of }));
                    }
                }
            }
            Fault::Loss(_) | Fault::Dup(_) | Fault::Reorder(_) => {}
        }
    }
    // Time order; the index keeps ties deterministic and keeps a restart
    // after its crash. A crash or leave that would strike the last live
    // node waits until someone (re)starts, and a restart or rejoin waits
    // for what it follows; what cannot happen within the phase is dropped.
    let mut queue: BinaryHeap<Reverse<(u64, usize)>> = drafts
        .iter()
        .enumerate()
        .map(|(i, (t, _))| Reverse((*t, i)))
        .collect();
    let mut occupied: Vec<bool> = vec![true; members];
    let mut target: Vec<Option<(usize, u64)>> = vec![None; drafts.len()];
    let mut dropped = vec![false; drafts.len()];
    let mut events = Vec::new();
    // Per event: the lowest slot occupied just before it.
    let mut host_then: Vec<Option<usize>> = Vec::new();
    let later = |queue: &mut BinaryHeap<Reverse<(u64, usize)>>, t: u64, i: usize| {
        if t < hi {
            queue.push(Reverse((t, i)));
            false
        } else {
            true
        }
    };
    while let Some(Reverse((t, i))) = queue.pop() {
        let draft = drafts[i].1;
        let at = Instant::from_micros(t);
        let live: Vec<usize> = (0..occupied.len()).filter(|s| occupied[*s]).collect();
        let fault = match draft {
            Draft::Partition { heal: true } => NodeFault::Heal,
            Draft::Partition { heal: false } => {
                // Each side keeps at least one live node.
                let pick = live[rng.below(live.len() as u64) as usize];
                let mut side = 1u64 << pick.min(63);
                for s in 0..occupied.len().min(64) {
                    if s != pick && rng.chance(0.5) {
                        side |= 1 << s;
                    }
                }
                if live.iter().all(|s| *s < 64 && side >> s & 1 == 1) {
                    let other = live.iter().copied().find(|s| *s != pick);
                    if let Some(o) = other {
                        side &= !(1 << o.min(63));
                    }
                }
                NodeFault::Partition { side }
            }
            Draft::Crash | Draft::Leave => {
                // Never the last live node: someone must remain to converge.
                if live.len() < 2 {
                    dropped[i] = later(&mut queue, t + WAIT, i);
                    continue;
                }
                let slot = live[rng.below(live.len() as u64) as usize];
                occupied[slot] = false;
                target[i] = Some((slot, t));
                if matches!(draft, Draft::Crash) {
                    NodeFault::Crash { slot }
                } else {
                    NodeFault::Leave { slot }
                }
            }
            Draft::Restart { of } | Draft::Rejoin { of } => {
                let slot = match target[of] {
                    Some((slot, when)) if t >= when + WAIT / 2 => slot,
                    Some((_, when)) => {
                        dropped[i] = later(&mut queue, when + WAIT / 2, i);
                        continue;
                    }
                    None if !dropped[of] => {
                        dropped[i] = later(&mut queue, t + WAIT, i);
                        continue;
                    }
                    None => continue,
                };
                occupied[slot] = true;
                if matches!(draft, Draft::Restart { .. }) {
                    NodeFault::Restart { slot }
                } else {
                    NodeFault::Rejoin { slot }
                }
            }
            Draft::Join => {
                occupied.push(true);
                NodeFault::Join {
                    slot: occupied.len() - 1,
                }
            }
        };
        events.push(Scheduled {
            at,
            fault,
            seeds: Vec::new(),
        });
        host_then.push(live.first().copied());
    }
    let end_live: Vec<usize> = (0..occupied.len()).filter(|s| occupied[*s]).collect();
    let stopped: Vec<usize> = events
        .iter()
        .filter_map(|e| match e.fault {
            NodeFault::Crash { slot } | NodeFault::Leave { slot } => Some(slot),
            _ => None,
        })
        .collect();
    // The seed host: best a slot no fault stops; else one occupied at the
    // end whose last start is a restart or a join, which happen when
    // scheduled (a rejoin waits for the leaver's Exit and may not happen).
    let mut rejoined = std::collections::BTreeMap::new();
    for e in &events {
        match e.fault {
            NodeFault::Rejoin { slot } => {
                rejoined.insert(slot, true);
            }
            NodeFault::Restart { slot } | NodeFault::Join { slot } => {
                rejoined.insert(slot, false);
            }
            _ => {}
        }
    }
    let anchor = (0..members)
        .find(|s| !stopped.contains(s))
        .or(end_live
            .iter()
            .copied()
            .find(|s| !rejoined.get(s).copied().unwrap_or(false)))
        .or(end_live.first().copied())
        .unwrap_or(0);
    let seeds = |rng: &mut Rng, host: Option<usize>| {
        let mut s = vec![anchor];
        match host.filter(|h| *h != anchor) {
            Some(h) => s.push(h),
            None => {
                if rng.chance(0.5) {
                    let other = end_live[rng.below(end_live.len() as u64) as usize];
                    if other != anchor {
                        s.push(other);
                    }
                }
            }
        }
        s
    };
    let initial_seeds = (0..members).map(|_| seeds(rng, Some(0))).collect();
    for (e, host) in events.iter_mut().zip(host_then) {
        if matches!(
            e.fault,
            NodeFault::Restart { .. } | NodeFault::Join { .. } | NodeFault::Rejoin { .. }
        ) {
            e.seeds = seeds(rng, host);
        }
    }
    Schedule {
        events,
        initial_seeds,
        slots: occupied.len(),
        anchor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_scheduled_in_the_phase_with_consistent_targets() {
        let faults = [
            Fault::Partition(2),
            Fault::Crash(1),
            Fault::Restart(1),
            Fault::Join(2),
            Fault::Leave(1),
        ];
        for seed in 0..200 {
            let until = Instant::from_secs(4);
            let s = schedule(&faults, 5, until, &mut Rng::new(seed));
            assert_eq!(s.slots, 7);
            let mut occupied = vec![true; 5];
            occupied.resize(7, false);
            let mut split = false;
            for e in &s.events {
                assert!(e.at >= Instant::ZERO + FIRST_FAULT && e.at < until, "{e:?}");
                match e.fault {
                    NodeFault::Partition { side } => {
                        assert!(!split);
                        split = true;
                        let live: Vec<usize> = (0..7).filter(|i| occupied[*i]).collect();
                        assert!(live.iter().any(|i| side >> i & 1 == 1), "{seed}");
                        assert!(live.iter().any(|i| side >> i & 1 == 0), "{seed}");
                    }
                    NodeFault::Heal => {
                        assert!(split);
                        split = false;
                    }
                    NodeFault::Crash { slot } | NodeFault::Leave { slot } => {
                        assert!(occupied[slot]);
                        occupied[slot] = false;
                    }
                    NodeFault::Restart { slot }
                    | NodeFault::Join { slot }
                    | NodeFault::Rejoin { slot } => {
                        assert!(!occupied[slot]);
                        occupied[slot] = true;
                        assert!(e.seeds.iter().all(|s| *s < 7) && !e.seeds.is_empty());
                    }
                }
            }
            assert!(!split, "every partition heals");
            let kinds = |f: fn(&NodeFault) -> bool| s.events.iter().filter(|e| f(&e.fault)).count();
            assert_eq!(kinds(|f| matches!(f, NodeFault::Partition { .. })), 2);
            assert_eq!(kinds(|f| matches!(f, NodeFault::Crash { .. })), 2);
            assert_eq!(kinds(|f| matches!(f, NodeFault::Restart { .. })), 1);
            assert_eq!(kinds(|f| matches!(f, NodeFault::Join { .. })), 2);
            assert_eq!(kinds(|f| matches!(f, NodeFault::Leave { .. })), 1);
            // The first seed is an address that no fault ever stops (there
            // always is one here), the second one occupied at the end or
            // when the endpoint starts.
            let stopped: Vec<usize> = s
                .events
                .iter()
                .filter_map(|e| match e.fault {
                    NodeFault::Crash { slot } | NodeFault::Leave { slot } => Some(slot),
                    _ => None,
                })
                .collect();
            for seeds in s.initial_seeds.iter().chain(
                s.events
                    .iter()
                    .filter(|e| !e.seeds.is_empty())
                    .map(|e| &e.seeds),
            ) {
                assert!(
                    !stopped.contains(&seeds[0]) && occupied[seeds[0]],
                    "{seed}: {seeds:?}"
                );
                assert!(seeds.len() <= 2, "{seed}: {seeds:?}");
            }
        }
    }
}
