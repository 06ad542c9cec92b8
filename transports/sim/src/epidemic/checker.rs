//! The epidemic service's checker: what the nodes report, judged against
//! what the campaign did to them.
//!
//! - **No resurrection**: at an MSS, an incarnation (of an MSS or of a
//!   member service) once seen Left or Failed is never seen joining or
//!   refuted again; and nowhere does an incarnation whose process crashed
//!   join or come back more than the detection bound after the crash.
//! - **Completeness** and **agreement** are judged on the MSS tables at
//!   the times the campaign schedules ([`Tracker::completeness`],
//!   [`Tracker::agreement`]).
//! - **False positives** are counted, not failed: a Failed declaration of
//!   an incarnation whose process was running it at that moment. A member
//!   service failed because its (live) MSS was falsely failed is counted
//!   apart, as collateral.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use consort_core::Instant;
use consort_core::epidemic::{
    Change, Event, Lifecycle, MemberEvent, MemberId, MonitorEvent, MssId,
};

use super::world::{Observed, Observer, World};

/// An incarnation of either kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    /// An MSS instance.
    Mss(MssId),
    /// A member service.
    Member(MemberId),
}

/// Counts of what the service did, for a run's "exercised" line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// MSS incarnations declared failed (distinct).
    pub mss_failed: u64,
    /// Member-service incarnations declared failed (distinct).
    pub ms_failed: u64,
    /// Member-service incarnations that left (distinct).
    pub ms_left: u64,
    /// Suspicion events (MSS and member services, all observers).
    pub suspicions: u64,
    /// Refutation events.
    pub refutations: u64,
    /// MSS reincarnations (an MSS learned it was failed).
    pub reincarnations: u64,
    /// Member-service re-registrations under a new incarnation.
    pub ms_reincarnations: u64,
    /// False positives: live MSS incarnations declared failed.
    pub fp_mss: u64,
    /// False positives: live member services declared failed while their MSS was live.
    pub fp_ms: u64,
    /// Live member services failed because their live MSS was falsely failed.
    pub fp_collateral: u64,
}

/// Tracks identities, crashes and histories; collects violations.
#[derive(Default)]
pub struct Tracker {
    /// Bound on detecting a crashed MSS at every live MSS.
    pub bound_mss: Duration,
    /// Bound on detecting a crashed member service at every live MSS.
    pub bound_ms: Duration,
    alive: Vec<bool>,
    life: Vec<u32>,
    /// MSS ids of each node's current life.
    ids: HashMap<usize, Vec<MssId>>,
    mss_node: HashMap<MssId, (usize, u32)>,
    /// Current incarnation of each member-service node.
    ms_current: HashMap<usize, MemberId>,
    member_node: HashMap<MemberId, (usize, u32)>,
    owner: HashMap<MemberId, MssId>,
    /// When the process running an incarnation crashed.
    crashed: HashMap<Id, Instant>,
    /// Per observer life: incarnations seen ended there.
    ended: HashSet<(usize, u32, Id)>,
    failed_first: HashMap<Id, Instant>,
    left: HashSet<MemberId>,
    /// Each monitor's view of the Members set.
    pub monitor_views: HashMap<usize, BTreeSet<MemberId>>,
    /// What happened.
    pub counts: Counts,
    /// Everything wrong.
    pub violations: Vec<String>,
}

impl Tracker {
    /// A tracker of `nodes` nodes with these detection bounds.
    pub fn new(nodes: usize, bound_mss: Duration, bound_ms: Duration) -> Self {
        Tracker {
            bound_mss,
            bound_ms,
            alive: vec![false; nodes],
            life: vec![0; nodes],
            ..Default::default()
        }
    }

    /// Node `i` starts (or restarts).
    pub fn started(&mut self, i: usize) {
        self.alive[i] = true;
        self.life[i] += 1;
        self.ids.remove(&i);
        self.ms_current.remove(&i);
    }

    /// Node `i` crashes at `now`: returns the incarnations that must be
    /// detected (its MSS ids and the member services registered with them,
    /// or its member-service incarnation).
    pub fn crashed(&mut self, i: usize, now: Instant) -> Vec<Id> {
        self.alive[i] = false;
        let mut out = Vec::new();
        if let Some(ids) = self.ids.get(&i) {
            for m in ids {
                out.push(Id::Mss(*m));
            }
            for (member, owner) in &self.owner {
                if ids.contains(owner) {
                    out.push(Id::Member(*member));
                }
            }
        }
        if let Some(m) = self.ms_current.get(&i) {
            out.push(Id::Member(*m));
        }
        for id in &out {
            self.crashed.entry(*id).or_insert(now);
        }
        out
    }

    fn resurrection(&mut self, now: Instant, node: usize, id: Id, how: &str) {
        let life = self.life[node];
        if self.ended.contains(&(node, life, id)) {
            self.violations.push(format!(
                "no-resurrection: at {:.3} s MSS node {node} saw {id:?} {how} after it had Left or Failed there",
                secs(now)
            ));
        }
        if let Some(t) = self.crashed.get(&id) {
            let bound = match id {
                Id::Mss(_) => self.bound_mss,
                Id::Member(_) => self.bound_ms,
            };
            if now > *t + bound {
                self.violations.push(format!(
                    "no-resurrection: at {:.3} s MSS node {node} saw {id:?} {how}, {:.3} s after its process crashed",
                    secs(now),
                    (now - *t).as_secs_f64()
                ));
            }
        }
    }

    fn ended_at(&mut self, now: Instant, node: usize, id: Id, failed: bool) {
        let life = self.life[node];
        self.ended.insert((node, life, id));
        if !failed {
            if let Id::Member(m) = id {
                if self.left.insert(m) {
                    self.counts.ms_left += 1;
                }
            }
            return;
        }
        if self.failed_first.contains_key(&id) {
            return;
        }
        self.failed_first.insert(id, now);
        match id {
            Id::Mss(m) => {
                self.counts.mss_failed += 1;
                if self.is_live_mss(m) {
                    self.counts.fp_mss += 1;
                }
            }
            Id::Member(m) => {
                self.counts.ms_failed += 1;
                let live = self.member_node.get(&m).is_some_and(|(n, life)| {
                    self.alive[*n] && self.life[*n] == *life && self.ms_current.get(n) == Some(&m)
                });
                if live {
                    match self.owner.get(&m) {
                        Some(o)
                            if self.is_live_mss(*o)
                                && !self.failed_first.contains_key(&Id::Mss(*o)) =>
                        {
                            self.counts.fp_ms += 1
                        }
                        Some(_) => self.counts.fp_collateral += 1,
                        None => self.counts.fp_ms += 1,
                    }
                }
            }
        }
    }

    /// Whether the process of MSS incarnation `m` runs it now.
    fn is_live_mss(&self, m: MssId) -> bool {
        self.mss_node.get(&m).is_some_and(|(n, life)| {
            self.alive[*n]
                && self.life[*n] == *life
                && self.ids.get(n).and_then(|v| v.last()) == Some(&m)
        })
    }

    /// Completeness: at every MSS of `judges`, none of `ids` is a member.
    pub fn completeness(
        &mut self,
        world: &World,
        judges: &[usize],
        ids: &[Id],
        crash: Instant,
        bound: Duration,
    ) {
        let owners: HashSet<MssId> = ids
            .iter()
            .filter_map(|i| match i {
                Id::Mss(m) => Some(*m),
                _ => None,
            })
            .collect();
        for &j in judges {
            let Some(s) = world.mss(j) else { continue };
            for p in s.peers(super::world::URI) {
                if owners.contains(&p.id()) && p.status().is_member() {
                    self.violations.push(format!(
                        "completeness: MSS {:?} crashed at {:.3} s is still {:?} at MSS node {j} {:.1} s later (bound {:.1} s)",
                        p.id(), secs(crash), p.status(), bound.as_secs_f64(), bound.as_secs_f64()
                    ));
                }
            }
            for m in s.members(super::world::URI) {
                let crashed = ids.contains(&Id::Member(m.id())) || owners.contains(&m.owner());
                if crashed && m.status().is_member() {
                    self.violations.push(format!(
                        "completeness: member {:?} (MSS {:?}) crashed at {:.3} s is still {:?} at MSS node {j} after the {:.1} s bound",
                        m.id(), m.owner(), secs(crash), m.status(), bound.as_secs_f64()
                    ));
                }
            }
        }
    }

    /// The Members set of every running, joined MSS among `judges`.
    pub fn members_sets(world: &World, judges: &[usize]) -> Vec<(usize, BTreeSet<MemberId>)> {
        judges
            .iter()
            .filter_map(|&j| {
                let s = world.mss(j)?;
                s.mss(super::world::URI)?;
                let set = s
                    .members(super::world::URI)
                    .filter(|m| m.status().is_member())
                    .map(|m| m.id())
                    .collect();
                Some((j, set))
            })
            .collect()
    }

    /// Agreement: every set equal. Returns whether they are.
    pub fn agreement(
        &mut self,
        sets: &[(usize, BTreeSet<MemberId>)],
        at: Instant,
        record: bool,
    ) -> bool {
        let Some((first, a)) = sets.first() else {
            return true;
        };
        for (j, b) in &sets[1..] {
            if a != b {
                if record {
                    let only_a: Vec<_> = a.difference(b).take(3).collect();
                    let only_b: Vec<_> = b.difference(a).take(3).collect();
                    self.violations.push(format!(
                        "agreement: at {:.3} s MSS nodes {first} and {j} hold different Members sets ({} vs {}; only at {first}: {only_a:?}; only at {j}: {only_b:?})",
                        secs(at), a.len(), b.len()
                    ));
                }
                return false;
            }
        }
        true
    }
}

fn secs(t: Instant) -> f64 {
    t.as_micros() as f64 / 1e6
}

impl Observer for Tracker {
    fn observe(&mut self, now: Instant, node: usize, what: &Observed) {
        if let Some(t) = std::env::var_os("CONSORT_EPI_TRACE") {
            let t = t.to_string_lossy().into_owned();
            let text = format!("{what:?}");
            if text.contains(&t) {
                eprintln!("{:>9.3} node {node}: {text}", secs(now));
            }
        }
        match what {
            Observed::Mss(e) => match *e {
                Event::ContextJoined { mss, .. } | Event::Reincarnated { mss, .. } => {
                    if matches!(e, Event::Reincarnated { .. }) {
                        self.counts.reincarnations += 1;
                    }
                    self.ids.entry(node).or_default().push(mss);
                    self.mss_node.insert(mss, (node, self.life[node]));
                }
                Event::Peer { mss, change, .. } => match change {
                    Change::Joined => self.resurrection(now, node, Id::Mss(mss), "join"),
                    Change::Refuted => {
                        self.counts.refutations += 1;
                        self.resurrection(now, node, Id::Mss(mss), "refuted");
                    }
                    Change::Suspected => self.counts.suspicions += 1,
                    Change::Left => self.ended_at(now, node, Id::Mss(mss), false),
                    Change::Failed => self.ended_at(now, node, Id::Mss(mss), true),
                },
                Event::Member {
                    member,
                    owner,
                    change,
                    ..
                } => {
                    self.owner.entry(member).or_insert(owner);
                    let id = Id::Member(member);
                    match change {
                        Change::Joined => self.resurrection(now, node, id, "join"),
                        Change::Refuted => {
                            self.counts.refutations += 1;
                            self.resurrection(now, node, id, "refuted");
                        }
                        Change::Suspected => self.counts.suspicions += 1,
                        Change::Left => self.ended_at(now, node, id, false),
                        Change::Failed => self.ended_at(now, node, id, true),
                    }
                }
                _ => {}
            },
            Observed::Ms(e) => match *e {
                MemberEvent::Registered { member, mss } => {
                    self.ms_current.insert(node, member);
                    self.member_node.insert(member, (node, self.life[node]));
                    self.owner.insert(member, mss);
                }
                MemberEvent::Reincarnated { new, .. } => {
                    self.counts.ms_reincarnations += 1;
                    self.ms_current.insert(node, new);
                    self.member_node.insert(new, (node, self.life[node]));
                }
                MemberEvent::Left => {}
            },
            Observed::Proxy(_) => {}
            Observed::Monitor(e) => {
                let v = self.monitor_views.entry(node).or_default();
                match *e {
                    MonitorEvent::Registered { .. } | MonitorEvent::SnapshotStart => v.clear(),
                    MonitorEvent::Update { member, set } => match set {
                        Lifecycle::Members | Lifecycle::Joined | Lifecycle::Suspected => {
                            v.insert(member);
                        }
                        Lifecycle::Left | Lifecycle::Failed => {
                            v.remove(&member);
                        }
                    },
                    MonitorEvent::SnapshotEnd => {}
                }
            }
        }
    }
}
