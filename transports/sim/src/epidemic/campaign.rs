//! One seed of the epidemic campaign, end to end: start the MSS engines,
//! register the member services, proxies and monitors, inject the faults,
//! let the network heal, and judge.
//!
//! A run is a pure function of its [`CheckConfig`] and seed. It fails when
//! the checker finds a violation, and also when it proves nothing: when a
//! requested fault never happened.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use consort_core::Instant;
use consort_core::epidemic::{Config, GossipMode, MemberId, MemberService, Monitor, ProxyService};

use super::checker::{Counts, Id, Tracker};
use super::world::{Kind, PROXY_SERVICES, Role, URI, World, addr_of};
use crate::net::{Fault, FaultCounts, FaultPlan, Net};
use crate::rng::Rng;

/// A fault of the epidemic campaign, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EFault {
    /// Datagrams dropped.
    Loss,
    /// Datagrams delivered twice.
    Dup,
    /// Datagrams delayed past later ones.
    Delay,
    /// The network split in two for a while, then healed.
    Partition,
    /// MSS engines and member services crash.
    Crash,
    /// Crashed MSS engines and member services come back (new incarnations).
    Restart,
}

impl EFault {
    /// Every fault.
    pub const ALL: [EFault; 6] = [
        EFault::Loss,
        EFault::Dup,
        EFault::Delay,
        EFault::Partition,
        EFault::Crash,
        EFault::Restart,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EFault::Loss => "loss",
            EFault::Dup => "dup",
            EFault::Delay => "delay",
            EFault::Partition => "partition",
            EFault::Crash => "crash",
            EFault::Restart => "restart",
        }
    }

    /// Parses a name; unknown names are errors that list the known ones.
    ///
    /// ```
    /// use consort_sim::epidemic::EFault;
    /// assert_eq!(EFault::parse("partition"), Ok(EFault::Partition));
    /// assert!(EFault::parse("reorder").unwrap_err().contains("unknown fault"));
    /// ```
    pub fn parse(s: &str) -> Result<EFault, String> {
        let s = s.trim();
        Self::ALL
            .iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .copied()
            .ok_or_else(|| {
                format!(
                    "unknown fault {s:?} (available: loss, dup, delay, partition, crash, restart)"
                )
            })
    }
}

/// Everything about a run but its seed.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// MSS engines.
    pub nodes: usize,
    /// Member services (each its own process), spread over the engines.
    pub services: usize,
    /// Faults to inject.
    pub faults: Vec<EFault>,
    /// Loss rate (default: drawn per seed between 1% and 10%).
    pub loss: Option<f64>,
    /// Duplication rate (default 5%).
    pub dup: Option<f64>,
    /// Rate of datagrams delayed by up to 30 ms (default 10%).
    pub delay: Option<f64>,
    /// Proxies, each speaking for 4 services.
    pub proxies: usize,
    /// Monitors (alternately whole-state and changes-only).
    pub monitors: usize,
    /// Time before faults start.
    pub warmup: Duration,
    /// Time faults last.
    pub fault_phase: Duration,
    /// Time after faults stop by which all live MSS must agree.
    pub settle: Duration,
    /// The service's settings.
    pub service: Config,
    /// The settings the bounds are stated from (the service's, as
    /// `new` made them).
    pub yardstick: Config,
}

impl CheckConfig {
    /// `nodes` engines and `services` member services with these faults,
    /// 2 proxies, 2 monitors, 5 s warm-up, 30 s of faults, 40 s to settle.
    pub fn new(nodes: usize, services: usize, faults: Vec<EFault>) -> Self {
        CheckConfig {
            nodes,
            services,
            faults,
            loss: None,
            dup: None,
            delay: None,
            proxies: 2,
            monitors: 2,
            warmup: Duration::from_secs(5),
            fault_phase: Duration::from_secs(30),
            settle: Duration::from_secs(40),
            service: Config::lan(),
            yardstick: Config::lan(),
        }
    }

    /// Checks what can be wrong before a seed runs.
    pub fn validate(&self) -> Result<(), String> {
        if !(3..=4096).contains(&self.nodes) {
            return Err(format!(
                "--nodes must be between 3 and 4096, not {}",
                self.nodes
            ));
        }
        if self.services == 0 || self.services > 65_000 {
            return Err(format!(
                "--services must be between 1 and 65000, not {}",
                self.services
            ));
        }
        for (name, r) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("delay", self.delay),
        ] {
            if let Some(r) = r {
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("--{name} {r} must be between 0 and 1"));
                }
            }
        }
        for (f, r) in [
            (EFault::Loss, self.loss),
            (EFault::Dup, self.dup),
            (EFault::Delay, self.delay),
        ] {
            if r.is_some() && !self.faults.contains(&f) {
                return Err(format!(
                    "--{} is given but {} is not in --faults",
                    f.name(),
                    f.name()
                ));
            }
        }
        Ok(())
    }

    /// Detection bound for a crashed MSS, stated from the campaign's
    /// service settings as they were made by [`CheckConfig::new`] (so
    /// that a service changed afterwards is judged by the same yardstick):
    /// its silence is noticed after the failure timeout for this many MSS;
    /// two rounds and a second of slack cover the last heartbeat's travel
    /// and timer granularity.
    pub fn bound_mss(&self) -> Duration {
        let s = &self.yardstick;
        s.fail_timeout(self.nodes) + 2 * s.round + Duration::from_secs(1)
    }

    /// Detection bound for a crashed member service: its MSS fails it after
    /// `fail_misses + 1` probe periods; every other MSS then has it within
    /// the MSS failure timeout (by then it has either pulled the new list
    /// or failed the MSS itself) plus the same slack.
    pub fn bound_ms(&self) -> Duration {
        let s = &self.yardstick;
        s.probe_interval * (u32::from(s.fail_misses) + 1) + self.bound_mss()
    }

    fn has(&self, f: EFault) -> bool {
        self.faults.contains(&f)
    }
}

/// What a run (or a campaign) exercised.
#[derive(Clone, Debug, Default)]
pub struct Exercised {
    /// Runs summed.
    pub runs: u64,
    /// Network faults and traffic.
    pub net: FaultCounts,
    /// Partition episodes.
    pub partitions: u64,
    /// Datagrams a partition dropped.
    pub cut: u64,
    /// MSS engines crashed.
    pub mss_crashes: u64,
    /// Member services crashed.
    pub ms_crashes: u64,
    /// MSS engines restarted.
    pub mss_restarts: u64,
    /// Member services restarted.
    pub ms_restarts: u64,
    /// What the service did.
    pub counts: Counts,
    /// Completeness checks made (crashed incarnation × live MSS).
    pub completeness_checks: u64,
    /// Longest time from the end of faults to agreement, in ms.
    pub max_convergence_ms: u64,
    /// Member services registered at the end (at the first live MSS).
    pub members_at_end: u64,
    /// Datagrams that reached a crashed node.
    pub to_dead: u64,
    /// Summed over the MSS running at the end: outputs dropped for a full
    /// transmit queue, for a full job queue, events dropped, entries not
    /// stored for want of table space, datagrams that did not decode.
    pub limits: [u64; 5],
    /// Virtual milliseconds simulated.
    pub virtual_ms: u64,
}

impl Exercised {
    /// Adds another run's counts (maxima kept as maxima).
    pub fn add(&mut self, o: &Exercised) {
        self.runs += o.runs;
        self.net.add(&o.net);
        self.partitions += o.partitions;
        self.cut += o.cut;
        self.mss_crashes += o.mss_crashes;
        self.ms_crashes += o.ms_crashes;
        self.mss_restarts += o.mss_restarts;
        self.ms_restarts += o.ms_restarts;
        let (a, b) = (&mut self.counts, &o.counts);
        a.mss_failed += b.mss_failed;
        a.ms_failed += b.ms_failed;
        a.ms_left += b.ms_left;
        a.suspicions += b.suspicions;
        a.refutations += b.refutations;
        a.reincarnations += b.reincarnations;
        a.ms_reincarnations += b.ms_reincarnations;
        a.fp_mss += b.fp_mss;
        a.fp_ms += b.fp_ms;
        a.fp_collateral += b.fp_collateral;
        self.completeness_checks += o.completeness_checks;
        self.max_convergence_ms = self.max_convergence_ms.max(o.max_convergence_ms);
        self.members_at_end += o.members_at_end;
        self.to_dead += o.to_dead;
        for (a, b) in self.limits.iter_mut().zip(o.limits) {
            *a += b;
        }
        self.virtual_ms += o.virtual_ms;
    }

    /// One line per seed.
    pub fn one_line(&self) -> String {
        format!(
            "lost {} dup {} delayed {} cut {}; crashed {} MSS {} MS, restarted {} MSS {} MS; failed {} MSS {} MS; {} suspicions {} refuted; FP {}+{}+{}; agreed after {:.1} s",
            self.net.losses,
            self.net.duplicates,
            self.net.reorders,
            self.cut,
            self.mss_crashes,
            self.ms_crashes,
            self.mss_restarts,
            self.ms_restarts,
            self.counts.mss_failed,
            self.counts.ms_failed,
            self.counts.suspicions,
            self.counts.refutations,
            self.counts.fp_mss,
            self.counts.fp_ms,
            self.counts.fp_collateral,
            self.max_convergence_ms as f64 / 1000.0
        )
    }
}

impl fmt::Display for Exercised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "exercised over {} runs ({:.1} virtual s):",
            self.runs,
            self.virtual_ms as f64 / 1000.0
        )?;
        writeln!(
            f,
            "  network:     {}, {} cut by {} partitions, {} to crashed nodes",
            self.net, self.cut, self.partitions, self.to_dead
        )?;
        writeln!(
            f,
            "  faults:      {} MSS and {} member-service crashes, {} MSS and {} member-service restarts",
            self.mss_crashes, self.ms_crashes, self.mss_restarts, self.ms_restarts
        )?;
        writeln!(
            f,
            "  detected:    {} MSS and {} member-service incarnations failed, {} left; {} completeness checks",
            c.mss_failed, c.ms_failed, c.ms_left, self.completeness_checks
        )?;
        writeln!(
            f,
            "  suspicion:   {} suspicions, {} refuted; {} MSS reincarnations, {} member re-registrations",
            c.suspicions, c.refutations, c.reincarnations, c.ms_reincarnations
        )?;
        write!(
            f,
            "  false pos.:  {} MSS, {} member services, {} collateral (member of a falsely failed MSS); agreement at most {:.1} s after faults stopped; {} members at the end",
            c.fp_mss,
            c.fp_ms,
            c.fp_collateral,
            self.max_convergence_ms as f64 / 1000.0,
            self.members_at_end
        )?;
        write!(
            f,
            "\n  limits:      {} datagrams dropped for a full transmit queue, {} for a full job queue, {} events dropped, {} entries refused for a full table, {} malformed",
            self.limits[0], self.limits[1], self.limits[2], self.limits[3], self.limits[4]
        )
    }
}

/// What one seed found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Everything wrong; empty when the run passed.
    pub violations: Vec<String>,
    /// What it exercised.
    pub exercised: Exercised,
}

impl Outcome {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

enum Action {
    Start(usize),
    Leave(usize),
    Crash(usize),
    Restart(usize),
    Partition(Vec<u32>),
    Heal,
    Complete {
        ids: Vec<Id>,
        crash: Instant,
        bound: Duration,
    },
    Probe,
}

struct Plan {
    actions: Vec<(Instant, u64, Action)>,
    seq: u64,
}

impl Plan {
    fn at(&mut self, t: Instant, a: Action) {
        self.seq += 1;
        self.actions.push((t, self.seq, a));
    }
}

/// Stack for a thread that runs seeds: an MSS engine is built on the
/// stack before it is boxed, and unoptimised test builds copy it more.
pub const STACK: usize = 64 << 20;

/// Runs `config` with `seed` on a thread with room for it, turning a panic
/// into a failing outcome.
pub fn run_check(config: &CheckConfig, seed: u64) -> Outcome {
    let out = std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn_scoped(s, || run_caught(config, seed))
            .map(|h| h.join())
    });
    match out {
        Ok(Ok(o)) => o,
        _ => Outcome {
            seed,
            violations: vec!["the run's thread could not start or died".into()],
            exercised: Exercised::default(),
        },
    }
}

fn run_caught(config: &CheckConfig, seed: u64) -> Outcome {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(config, seed))) {
        Ok(o) => o,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Outcome {
                seed,
                violations: vec![format!("the run panicked: {msg}")],
                exercised: Exercised::default(),
            }
        }
    }
}

/// Runs `config` with `seed`.
pub fn run(config: &CheckConfig, seed: u64) -> Outcome {
    let mut rng = Rng::derive(seed, 0xE_0001);
    let n = config.nodes;
    let s = config.services;
    // Node indices: MSS 0..n, services, proxies, monitors.
    let total = n + s + config.proxies + config.monitors;
    let fault_start = Instant::ZERO + config.warmup;
    let fault_end = fault_start + config.fault_phase;
    let end = fault_end + config.settle;

    let mut faults = Vec::new();
    if config.has(EFault::Loss) {
        faults.push(Fault::Loss(config.loss.unwrap_or(0.01 + rng.unit() * 0.09)));
    }
    if config.has(EFault::Dup) {
        faults.push(Fault::Dup(config.dup.unwrap_or(0.05)));
    }
    if config.has(EFault::Delay) {
        faults.push(Fault::Reorder(config.delay.unwrap_or(0.1)));
    }
    let mut plan_net = FaultPlan::new(faults, fault_end);
    // Without the delay fault nothing overtakes: extra delay only for it.
    plan_net.max_extra_delay = Duration::from_millis(30);
    let net = Net::new(total, plan_net, Rng::derive(seed, 1));
    let mut world = World::new(net);
    let mut tracker = Tracker::new(total, config.bound_mss(), config.bound_ms());
    let mut starts = vec![Instant::MAX; total];

    let mss: Vec<usize> = (0..n)
        .map(|i| world.add(Kind::Mss, addr_of(Kind::Mss, i)))
        .collect();
    let seeds = [addr_of(Kind::Mss, 0), addr_of(Kind::Mss, 1)];
    let ms: Vec<usize> = (0..s)
        .map(|j| world.add(Kind::Ms, addr_of(Kind::Ms, j)))
        .collect();
    let proxies: Vec<usize> = (0..config.proxies)
        .map(|p| world.add(Kind::Proxy, addr_of(Kind::Proxy, p)))
        .collect();
    let monitors: Vec<usize> = (0..config.monitors)
        .map(|m| world.add(Kind::Monitor, addr_of(Kind::Monitor, m)))
        .collect();
    // Each client knows its home MSS and two others.
    let servers: Vec<[usize; 3]> = (0..total)
        .map(|i| {
            let home = i % n;
            let a = (home + 1 + rng.below(n as u64 - 1) as usize) % n;
            let mut b = (home + 1 + rng.below(n as u64 - 1) as usize) % n;
            if b == a {
                b = (a + 1) % n;
                if b == home {
                    b = (b + 1) % n;
                }
            }
            [home, a, b]
        })
        .collect();
    let peer_cap = 4 * n + 16;
    let member_cap = 4 * (s + 4 * config.proxies) + 64;
    let mk_mss = |world: &World, i: usize, seed: u64| {
        world.new_mss(
            i,
            config.service,
            Rng::derive(seed, 0x200 + i as u64).next_u64(),
            &seeds,
            peer_cap,
            member_cap,
        )
    };
    let client_servers = |i: usize| -> Vec<std::net::SocketAddr> {
        servers[i].iter().map(|k| addr_of(Kind::Mss, *k)).collect()
    };
    // The URI is a constant that fits: building a client cannot fail.
    #[allow(clippy::expect_used)]
    let mk_client = |world: &World, i: usize| -> Role {
        let node = &world.nodes[i];
        let inc = u64::from(node.life) * 1_000_000 + 1;
        let sv = client_servers(i);
        match node.kind {
            Kind::Ms => Role::Ms(MemberService::new(node.addr, inc, URI, &sv).expect("valid URI")),
            Kind::Proxy => Role::Proxy(Box::new(
                ProxyService::new(node.addr, inc, URI, &sv).expect("valid URI"),
            )),
            Kind::Monitor => {
                let changes = i % 2 == 1;
                Role::Monitor(Box::new(
                    Monitor::new(URI, changes, &sv).expect("valid URI"),
                ))
            }
            Kind::Mss => unreachable!("MSS are made by mk_mss"),
        }
    };

    let mut plan = Plan {
        actions: Vec::new(),
        seq: 0,
    };
    for &i in &mss {
        let role = mk_mss(&world, i, seed);
        tracker.started(i);
        starts[i] = Instant::ZERO;
        world.start(i, role, &mut tracker);
    }
    for &i in ms.iter().chain(&proxies).chain(&monitors) {
        plan.at(
            Instant::ZERO + Duration::from_micros(rng.below(2_000_000)),
            Action::Start(i),
        );
    }
    let phase = config.fault_phase.as_micros() as u64;
    let when = |rng: &mut Rng, lo: u64, hi: u64| {
        fault_start + Duration::from_micros(lo + rng.below(hi.saturating_sub(lo).max(1)))
    };
    let mut ex = Exercised {
        runs: 1,
        ..Default::default()
    };
    if config.has(EFault::Partition) {
        for k in 0..2u64 {
            let start = when(&mut rng, k * phase / 2, k * phase / 2 + phase / 4);
            let len = Duration::from_millis(4_000 + rng.below(5_000));
            let mut sides = vec![0u32; total];
            for (i, side) in sides.iter_mut().enumerate() {
                *side = if i < n { u32::from(rng.chance(0.5)) } else { 0 };
            }
            // Clients mostly stay with their home MSS.
            for i in n..total {
                let home = servers[i][0];
                sides[i] = if rng.chance(0.8) {
                    sides[home]
                } else {
                    1 - sides[home]
                };
            }
            plan.at(start, Action::Partition(sides));
            plan.at((start + len).min(fault_end), Action::Heal);
        }
    }
    let crash = config.has(EFault::Crash);
    let restart = config.has(EFault::Restart);
    if crash || restart {
        // MSS 0 and 1 are the seeds (the coordination service's known
        // MSS): a restarted MSS finds the set through them, so they stay up.
        let mss_victims = (1 + rng.below(3) as usize).min(n.saturating_sub(2));
        let ms_victims = (4 + rng.below(13) as usize).min(s);
        let mut chosen = Vec::new();
        for _ in 0..mss_victims {
            let v = 2 + rng.below(n as u64 - 2) as usize;
            if !chosen.contains(&v) {
                chosen.push(v);
            }
        }
        let first_ms = chosen.len();
        for _ in 0..ms_victims {
            let v = ms[rng.below(s as u64) as usize];
            if !chosen.contains(&v) {
                chosen.push(v);
            }
        }
        for (k, v) in chosen.into_iter().enumerate() {
            let t = when(&mut rng, 0, phase - 8_000_000);
            plan.at(t, Action::Crash(v));
            // With restart, most victims come back; without crash, all do.
            let back = restart && (!crash || rng.chance(0.7) || k == 0 || k == first_ms);
            if back {
                let later = t + Duration::from_millis(2_000 + rng.below(5_000));
                plan.at(later.min(fault_end), Action::Restart(v));
            }
        }
    }
    // Workload, not a fault: a few member services leave (MemberLeaves)
    // and come back later as new incarnations.
    for _ in 0..2 + rng.below(3) {
        let v = ms[rng.below(s as u64) as usize];
        let t = when(&mut rng, 0, phase - 8_000_000);
        plan.at(t, Action::Leave(v));
        plan.at(
            t + Duration::from_millis(3_000 + rng.below(3_000)),
            Action::Restart(v),
        );
    }
    plan.at(fault_end, Action::Heal);
    let mut t = fault_end;
    while t < end {
        t = t + Duration::from_secs(1);
        plan.at(t.min(end), Action::Probe);
    }
    plan.actions.sort_by_key(|a| (a.0, a.1));

    let mut converged: Option<Instant> = None;
    let judges_at = |starts: &[Instant], since: Instant, world: &World| -> Vec<usize> {
        (0..n)
            .filter(|&j| world.nodes[j].role.is_some() && starts[j] <= since)
            .collect()
    };
    let actions = std::mem::take(&mut plan.actions);
    let mut later: Vec<(Instant, u64, Action)> = Vec::new();
    let mut queue: std::collections::VecDeque<(Instant, u64, Action)> = actions.into();
    loop {
        // Completeness checks are added as crashes happen; keep them in order.
        later.sort_by_key(|a| (a.0, a.1));
        let next_later = later.first().map(|a| (a.0, a.1));
        let next_queue = queue.front().map(|a| (a.0, a.1));
        let (t, _, action) = match (next_queue, next_later) {
            (Some(q), Some(l)) if l < q => later.remove(0),
            (Some(_), _) => match queue.pop_front() {
                Some(a) => a,
                None => break,
            },
            (None, Some(_)) => later.remove(0),
            (None, None) => break,
        };
        world.run_until(t, &mut tracker);
        let now = world.now();
        match action {
            Action::Start(i) => {
                let role = mk_client(&world, i);
                tracker.started(i);
                starts[i] = now;
                world.start(i, role, &mut tracker);
                start_client(&mut world, i, &mut tracker);
            }
            Action::Leave(i) => {
                world.with(i, &mut tracker, |role, now| {
                    if let Role::Ms(m) = role {
                        m.leave(now);
                    }
                });
            }
            Action::Crash(i) => {
                if world.nodes[i].role.is_none() {
                    continue;
                }
                world.crash(i);
                let ids = tracker.crashed(i, now);
                let bound = if i < n {
                    ex.mss_crashes += 1;
                    config.bound_mss().max(config.bound_ms())
                } else {
                    ex.ms_crashes += 1;
                    config.bound_ms()
                };
                if !ids.is_empty() {
                    plan.seq += 1;
                    later.push((
                        now + bound,
                        plan.seq,
                        Action::Complete {
                            ids,
                            crash: now,
                            bound,
                        },
                    ));
                }
            }
            Action::Restart(i) => {
                let left = matches!(
                    &world.nodes[i].role,
                    Some(Role::Ms(m)) if m.state() == consort_core::epidemic::MemberState::Left
                );
                if world.nodes[i].role.is_some() && !left {
                    continue;
                }
                let role = if i < n {
                    ex.mss_restarts += 1;
                    mk_mss(&world, i, seed ^ u64::from(world.nodes[i].life))
                } else {
                    if !left {
                        ex.ms_restarts += 1;
                    }
                    mk_client(&world, i)
                };
                tracker.started(i);
                starts[i] = now;
                world.start(i, role, &mut tracker);
                if i >= n {
                    start_client(&mut world, i, &mut tracker);
                }
            }
            Action::Partition(sides) => {
                ex.partitions += 1;
                world.set_partition(Some(sides));
            }
            Action::Heal => world.set_partition(None),
            Action::Complete { ids, crash, bound } => {
                let judges = judges_at(&starts, crash, &world);
                ex.completeness_checks += (ids.len() * judges.len()) as u64;
                tracker.completeness(&world, &judges, &ids, crash, bound);
            }
            Action::Probe => {
                let judges = judges_at(&starts, Instant::MAX, &world);
                let sets = Tracker::members_sets(&world, &judges);
                let last = now >= end;
                let agree = tracker.agreement(&sets, now, last);
                if agree && converged.is_none() {
                    converged = Some(now);
                } else if !agree {
                    converged = None;
                }
                if last && !agree && std::env::var_os("CONSORT_EPI_DUMP").is_some() {
                    dump(&world, &sets);
                }
                if last {
                    ex.members_at_end = sets.first().map_or(0, |s| s.1.len() as u64);
                    if agree {
                        check_monitors(&world, &monitors, &sets, &mut tracker);
                    }
                }
            }
        }
    }
    if std::env::var_os("CONSORT_EPI_KINDS").is_some() {
        for (k, (n, b)) in world.by_kind.iter().enumerate().filter(|(_, c)| c.0 > 0) {
            eprintln!("kind {k:>2}: {n:>9} datagrams {b:>11} bytes");
        }
    }
    for i in 0..n {
        if let Some(m) = world.mss(i) {
            let st = m.stats();
            for (a, b) in ex.limits.iter_mut().zip([
                st.tx_queue_full,
                st.jobs_full,
                st.events_dropped,
                st.table_full,
                st.malformed,
            ]) {
                *a += b;
            }
        }
    }
    ex.net = *world.net.counts();
    ex.to_dead = world.to_dead;
    ex.cut = world.cut;
    ex.counts = tracker.counts.clone();
    ex.virtual_ms = world.now().as_millis();
    ex.max_convergence_ms = converged.map_or(config.settle.as_millis() as u64, |c| {
        (c - fault_end).as_millis() as u64
    });
    let mut violations = std::mem::take(&mut tracker.violations);
    let happened = |f: EFault| match f {
        EFault::Loss => ex.net.losses,
        EFault::Dup => ex.net.duplicates,
        EFault::Delay => ex.net.reorders,
        EFault::Partition => ex.cut,
        EFault::Crash => (ex.mss_crashes + ex.ms_crashes).min(ex.counts.ms_failed),
        EFault::Restart => ex.mss_restarts + ex.ms_restarts,
    };
    for f in &config.faults {
        if happened(*f) == 0 {
            violations.push(format!(
                "campaign: requested fault {} never happened (or never bit): this run proves nothing about it",
                f.name()
            ));
        }
    }
    if ex.members_at_end == 0 {
        violations.push("campaign: no member service registered: this run proves nothing".into());
    }
    Outcome {
        seed,
        violations,
        exercised: ex,
    }
}

/// Starts a client's protocol (registration) and, for a proxy, its services.
fn start_client(world: &mut World, i: usize, obs: &mut Tracker) {
    let n_services = 4.min(PROXY_SERVICES);
    let [_, _, hi, lo] = (i as u32).to_be_bytes();
    world.with(i, obs, |role, now| match role {
        Role::Ms(m) => m.start(now),
        Role::Proxy(p) => {
            p.start(now);
            for k in 0..n_services {
                // Services behind a proxy live in 10.5.0.0/16, one port each.
                let ip = std::net::Ipv4Addr::new(10, 5, hi, lo);
                let id = MemberId {
                    addr: std::net::SocketAddr::new(ip.into(), 9300 + k as u16),
                    incarnation: 1,
                };
                let _ = p.add_service(now, id);
            }
        }
        Role::Monitor(m) => m.start(now),
        Role::Mss(_) => {}
    });
}

/// Every monitor's view equals the Members set of the MSS it listens to.
fn check_monitors(
    world: &World,
    monitors: &[usize],
    sets: &[(usize, BTreeSet<MemberId>)],
    tracker: &mut Tracker,
) {
    for &m in monitors {
        let Some(Role::Monitor(mon)) = &world.nodes[m].role else {
            continue;
        };
        let Some(mss) = mon.registered_with() else {
            continue;
        };
        let Some(node) = world.node_at(mss.addr) else {
            continue;
        };
        let Some((_, want)) = sets.iter().find(|(j, _)| *j == node) else {
            continue;
        };
        let got = tracker.monitor_views.get(&m).cloned().unwrap_or_default();
        if &got != want {
            let missing: Vec<_> = want.difference(&got).take(3).collect();
            let extra: Vec<_> = got.difference(want).take(3).collect();
            tracker.violations.push(format!(
                "monitor: monitor node {m} holds {} members, its MSS node {node} {} (missing {missing:?}, extra {extra:?})",
                got.len(),
                want.len()
            ));
        }
    }
}

/// The service settings named on the command line.
pub fn service_config(mode: GossipMode, suspicion: bool) -> Config {
    let mut c = Config::lan();
    c.mode = mode;
    c.suspicion = suspicion;
    c
}

/// Prints how the first two disagreeing MSS differ (set `CONSORT_EPI_DUMP`).
fn dump(world: &World, sets: &[(usize, BTreeSet<MemberId>)]) {
    let Some((a, sa)) = sets.first() else { return };
    let Some((b, sb)) = sets.iter().find(|(_, s)| s != sa) else {
        return;
    };
    let (Some(x), Some(y)) = (world.mss(*a), world.mss(*b)) else {
        return;
    };
    eprintln!("node {a} me {:?}, node {b} me {:?}", x.mss(URI), y.mss(URI));
    for m in sa.symmetric_difference(sb).take(6) {
        for (n, s) in [(a, x), (b, y)] {
            let e = s.members(URI).find(|e| e.id() == *m);
            let owner = e.map(|e| e.owner());
            let peer = owner.and_then(|o| s.peers(URI).find(|p| p.id() == o));
            eprintln!(
                "  {m:?} at node {n}: {:?} owner {:?} -> {:?}",
                e.map(|e| e.status()),
                owner,
                peer.map(|p| (p.status(), p.heartbeat()))
            );
        }
    }
    let px: Vec<_> = x.peers(URI).map(|p| (p.id(), p.status())).collect();
    let py: Vec<_> = y.peers(URI).map(|p| (p.id(), p.status())).collect();
    for p in &px {
        if !py.contains(p) {
            eprintln!(
                "  peer only at {a}: {p:?}; at {b}: {:?}",
                py.iter().find(|q| q.0 == p.0)
            );
        }
    }
    for p in &py {
        if !px.iter().any(|q| q.0 == p.0) {
            eprintln!("  peer only at {b}: {p:?}");
        }
    }
}
