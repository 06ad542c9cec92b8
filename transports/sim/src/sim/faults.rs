//! Node faults carried out: partitions and heals, crashes, leaves, and the
//! processes that restarts, joins and rejoins start.

use super::Sim;
use crate::churn::{NodeFault, Scheduled};
use crate::node::{Life, Node};
use crate::trace::{Entry, NET, Start, StartCause};

/// How long a rejoin waits for the endpoint that left to receive `Exit`
/// before it looks again.
const REJOIN_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

impl Sim<'_> {
    /// Carries out one node fault. A fault whose target is not as the
    /// schedule expected (a rejoin whose predecessor has not exited yet) is
    /// skipped, and not counted.
    pub(super) fn fault(&mut self, e: &Scheduled) {
        let now = self.now;
        let owner = |slot: usize| self.owner.get(slot).copied().flatten();
        match e.fault {
            NodeFault::Partition { side } => {
                self.net.set_partition(Some(side));
                self.net.counts_mut().partitions += 1;
                let side = (0..self.owner.len().min(64))
                    .filter(|s| side >> s & 1 == 1)
                    .collect();
                self.trace.push(now, NET, Entry::Partition { side });
            }
            NodeFault::Heal => {
                self.net.set_partition(None);
                self.net.counts_mut().heals += 1;
                self.trace.push(now, NET, Entry::Heal);
            }
            NodeFault::Crash { slot } => {
                let Some((slot, p)) = self.target(slot, true) else {
                    return;
                };
                self.nodes[p].crash(now, &mut self.trace);
                self.owner[slot] = None;
                self.net.counts_mut().crashes += 1;
            }
            NodeFault::Leave { slot } => {
                let Some((_, p)) = self.target(slot, false) else {
                    return;
                };
                if self.nodes[p].leave(now, &mut self.net, &mut self.trace) {
                    self.net.counts_mut().leaves += 1;
                }
            }
            NodeFault::Restart { slot } => {
                let slot = self.redirect.get(&slot).copied().unwrap_or(slot);
                if owner(slot).is_none() && self.spawn(slot, &e.seeds, StartCause::Restart) {
                    self.net.counts_mut().restarts += 1;
                }
            }
            NodeFault::Join { slot } => {
                if owner(slot).is_none() && self.spawn(slot, &e.seeds, StartCause::Join) {
                    self.net.counts_mut().joins += 1;
                }
            }
            NodeFault::Rejoin { slot } => {
                let slot = self.redirect.get(&slot).copied().unwrap_or(slot);
                let Some(left) = owner(slot) else {
                    // The member crashed while leaving: its address is the
                    // crash's (a restart may be due there), not the leave's.
                    return;
                };
                if self.nodes[left].life() != Life::Exited {
                    // The leave is still under way: come back a little
                    // later, if still within the fault phase.
                    let later = now + REJOIN_RETRY;
                    if later < self.faults_end {
                        let at = self.events[self.next_event..]
                            .iter()
                            .position(|x| x.at > later)
                            .map_or(self.events.len(), |i| self.next_event + i);
                        let mut again = e.clone();
                        again.at = later;
                        self.events.insert(at, again);
                    }
                    return;
                }
                if self.spawn(slot, &e.seeds, StartCause::Rejoin) {
                    self.net.counts_mut().rejoins += 1;
                }
            }
        }
    }

    /// The process a crash (`crash`) or a leave strikes, and its slot: the
    /// one at `slot` if it can be struck (live, or for a crash also
    /// leaving); otherwise, because the run went differently from the
    /// schedule's model (a rejoin waited for its `Exit` past the fault
    /// phase), the next live process in slot order that is not the seed
    /// host, and later faults aimed at `slot` follow it there. Never the
    /// last live process.
    fn target(&mut self, slot: usize, crash: bool) -> Option<(usize, usize)> {
        let live = |n: &Node| n.life() == Life::Live;
        let strikable = |n: &Node| live(n) || (crash && n.life() == Life::Leaving);
        if self.nodes.iter().filter(|n| live(n)).count() < 2 {
            return None;
        }
        let at = |s: usize| self.owner.get(s).copied().flatten();
        if let Some(p) = at(slot).filter(|p| strikable(&self.nodes[*p])) {
            return Some((slot, p));
        }
        let n = self.owner.len();
        let other = (1..n)
            .map(|k| (slot + k) % n)
            .filter(|s| Some(*s) != self.protect)
            .find_map(|s| at(s).filter(|p| live(&self.nodes[*p])).map(|p| (s, p)))?;
        self.redirect.insert(slot, other.0);
        Some(other)
    }

    /// Starts a new process at `slot`; returns whether it could be built.
    fn spawn(&mut self, slot: usize, seeds: &[usize], cause: StartCause) -> bool {
        let now = self.now;
        let p = self.nodes.len();
        let Some(spawn) = self.spawn.as_mut() else {
            return false;
        };
        match spawn(p, slot, seeds, now, cause) {
            Ok(node) => {
                let endpoint = node
                    .endpoint
                    .as_ref()
                    .map(|e| e.my_endpoint())
                    .unwrap_or_default();
                let start = Start {
                    slot,
                    endpoint,
                    seeds: seeds.to_vec(),
                    cause,
                };
                self.trace.push(now, p, Entry::Start(start));
                self.nodes.push(node);
                if slot >= self.owner.len() {
                    self.owner.resize(slot + 1, None);
                }
                self.owner[slot] = Some(p);
                self.nodes[p].drain(now, &mut self.net, &mut self.trace);
                true
            }
            Err(e) => {
                self.spawn_errors
                    .push(format!("{cause:?} at slot {slot}: {e}"));
                false
            }
        }
    }
}
