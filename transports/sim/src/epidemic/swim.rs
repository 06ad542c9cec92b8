//! The SWIM baseline: the `foca` crate (std is fine here), one instance per
//! member, driven over the same simulated [network](crate::net) and clock
//! as the epidemic service, with the configuration foca recommends for a
//! LAN (`Config::new_lan`: 1 s probes, 3 indirect probes, suspicion scaled
//! with the cluster size, periodic gossip to 3 members every 200 ms).
//!
//! foca's members are flat: N member services are N SWIM members, each
//! probing and gossiping itself. The epidemic service instead has N/64 MSS
//! gossiping and each probing its own 64 services; the report puts the two
//! side by side at the same N.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::convert::Infallible;
use std::num::NonZeroU32;
use std::time::Duration;

use consort_core::Instant;
use foca::{
    Foca, Identity, Member, NoCustomBroadcast, OwnedNotification, PostcardCodec, Runtime, Timer,
};
use serde::{Deserialize, Serialize};

use crate::net::{Fault, FaultPlan, Net};
use crate::rng::Rng;

/// A SWIM member's identity: its node and an incarnation of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SwimId {
    /// Node index (its address in the simulated network).
    pub node: u32,
    /// Which life of the node.
    pub life: u32,
}

impl Identity for SwimId {
    type Addr = u32;
    fn renew(&self) -> Option<Self> {
        // As the epidemic service does: a member declared down comes back
        // as a new identity.
        Some(SwimId {
            node: self.node,
            life: self.life + 1,
        })
    }
    fn addr(&self) -> u32 {
        self.node
    }
    fn win_addr_conflict(&self, other: &Self) -> bool {
        self.life > other.life
    }
}

/// foca's random source: the simulator's seeded generator.
pub struct SimRng(Rng);

impl rand::TryRng for SimRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.0.next_u64() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for c in dst.chunks_mut(8) {
            let b = self.0.next_u64().to_le_bytes();
            c.copy_from_slice(&b[..c.len()]);
        }
        Ok(())
    }
}

type Swim = Foca<SwimId, PostcardCodec, SimRng, NoCustomBroadcast>;

#[derive(Default)]
struct Out {
    sends: Vec<(SwimId, Vec<u8>)>,
    timers: Vec<(Duration, Timer<SwimId>)>,
    notes: Vec<OwnedNotification<SwimId>>,
}

impl Runtime<SwimId> for Out {
    fn notify(&mut self, n: foca::Notification<'_, SwimId>) {
        self.notes.push(n.to_owned());
    }
    fn send_to(&mut self, to: SwimId, data: &[u8]) {
        self.sends.push((to, data.to_vec()));
    }
    fn submit_after(&mut self, event: Timer<SwimId>, after: Duration) {
        self.timers.push((after, event));
    }
}

/// What a SWIM run measured.
#[derive(Clone, Debug, Default)]
pub struct SwimResult {
    /// Per crashed member: time until every live member had it down.
    pub detection: Vec<Duration>,
    /// Crashed members some live member never saw down.
    pub undetected: usize,
    /// Live members declared down by someone (distinct identities).
    pub false_positives: usize,
    /// Bytes sent per member per second over the steady window.
    pub bytes_per_member_s: f64,
}

/// The simulated network and what the run records, around the foca
/// members.
struct World {
    net: Net,
    /// Each member's current identity (foca renames on refutation).
    current: Vec<SwimId>,
    /// foca's timers: (due, sequence number), and what each is.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: HashMap<u64, (usize, Timer<SwimId>)>,
    seq: u64,
    /// When each member first saw each identity down.
    down_at: HashMap<(usize, SwimId), Instant>,
    /// Identities declared down that never crashed.
    false_pos: HashSet<SwimId>,
    crashed: Vec<(SwimId, Instant)>,
    /// Bytes sent count from here, for ten seconds.
    bytes_from: Instant,
    bytes_window: u64,
}

impl World {
    /// Carries out what member `i` asked for: datagrams, timers, and the
    /// notifications the run records.
    fn handle(&mut self, i: usize, out: Out, now: Instant) {
        for (to, data) in out.sends {
            if now >= self.bytes_from && now < self.bytes_from + Duration::from_secs(10) {
                self.bytes_window += data.len() as u64;
            }
            self.net.send(now, i, to.node as usize, &data);
        }
        for (after, t) in out.timers {
            self.seq += 1;
            self.timers.push(Reverse((now + after, self.seq)));
            self.pending.insert(self.seq, (i, t));
        }
        for note in out.notes {
            match note {
                OwnedNotification::MemberDown(id) => {
                    self.down_at.entry((i, id)).or_insert(now);
                    if !self.crashed.iter().any(|(c, _)| *c == id) {
                        self.false_pos.insert(id);
                    }
                }
                OwnedNotification::Rename(_, new) if new.node as usize == i => {
                    self.current[i] = new;
                }
                _ => {}
            }
        }
    }
}

/// Runs `n` foca members for `duration` under `loss`; crashes `crashes`
/// of them at `crash_at` (if given), and measures.
pub fn run(
    n: usize,
    loss: f64,
    crashes: usize,
    crash_at: Option<Instant>,
    end: Instant,
    seed: u64,
) -> SwimResult {
    let mut faults = Vec::new();
    if loss > 0.0 {
        faults.push(Fault::Loss(loss));
    }
    let net = Net::new(
        n,
        FaultPlan::new(faults, Instant::MAX),
        Rng::derive(seed, 1),
    );
    let config = foca::Config::new_lan(NonZeroU32::new(n.max(1) as u32).unwrap_or(NonZeroU32::MIN));
    let ids: Vec<SwimId> = (0..n)
        .map(|i| SwimId {
            node: i as u32,
            life: 0,
        })
        .collect();
    let mut nodes: Vec<Option<Swim>> = ids
        .iter()
        .map(|id| {
            let rng = SimRng(Rng::derive(seed, 0x5000 + u64::from(id.node)));
            Some(Foca::new(*id, config.clone(), rng, PostcardCodec))
        })
        .collect();
    let mut w = World {
        net,
        current: ids.clone(),
        timers: BinaryHeap::new(),
        pending: HashMap::new(),
        seq: 0,
        down_at: HashMap::new(),
        false_pos: HashSet::new(),
        crashed: Vec::new(),
        bytes_from: crash_at.unwrap_or(end) - Duration::from_secs(10),
        bytes_window: 0,
    };
    let mut now = Instant::ZERO;

    // Everyone starts knowing everyone (as the epidemic service's MSS learn
    // each other from the seeds in a few rounds).
    for (i, node) in nodes.iter_mut().enumerate() {
        let mut out = Out::default();
        if let Some(f) = node.as_mut() {
            let others = ids
                .iter()
                .filter(|o| o.node as usize != i)
                .map(|o| Member::alive(*o));
            let _ = f.apply_many(others, false, &mut out);
            // foca schedules its probe cycle once it has members.
        }
        w.handle(i, out, now);
    }
    let mut crash_done = crash_at.is_none();
    loop {
        let tn = w.net.next_time();
        let tt = w.timers.peek().map(|Reverse((t, _))| *t);
        let tc = if crash_done { None } else { crash_at };
        let next = [tn, tt, tc].into_iter().flatten().min();
        let Some(next) = next else { break };
        if next > end {
            break;
        }
        now = next;
        if tc == Some(now) {
            crash_done = true;
            let mut r = Rng::derive(seed, 0x77);
            let mut k = 0;
            while k < crashes.min(n - 1) {
                let v = r.below(n as u64) as usize;
                if nodes[v].is_some() {
                    nodes[v] = None;
                    w.crashed.push((w.current[v], now));
                    k += 1;
                }
            }
            continue;
        }
        if tn == Some(now) {
            if let Some(d) = w.net.pop_due(now) {
                let mut out = Out::default();
                if let Some(f) = nodes[d.to].as_mut() {
                    let _ = f.handle_data(&d.bytes, &mut out);
                    w.handle(d.to, out, now);
                }
            }
            continue;
        }
        if let Some(Reverse((_, s))) = w.timers.pop() {
            if let Some((i, t)) = w.pending.remove(&s) {
                let mut out = Out::default();
                if let Some(f) = nodes[i].as_mut() {
                    let _ = f.handle_timer(t, &mut out);
                    w.handle(i, out, now);
                }
            }
        }
    }
    let live: Vec<usize> = (0..n).filter(|i| nodes[*i].is_some()).collect();
    let mut detection = Vec::new();
    let mut undetected = 0;
    for (id, at) in &w.crashed {
        let mut worst = Duration::ZERO;
        let mut all = true;
        for &j in &live {
            match w.down_at.get(&(j, *id)) {
                Some(t) => worst = worst.max(*t - *at),
                None => all = false,
            }
        }
        if all {
            detection.push(worst);
        } else {
            undetected += 1;
        }
    }
    SwimResult {
        detection,
        undetected,
        false_positives: w.false_pos.len(),
        bytes_per_member_s: w.bytes_window as f64 / n as f64 / 10.0,
    }
}
