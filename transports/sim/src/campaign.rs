//! One seed, end to end: build the group, run the workload under faults,
//! let the network heal, check the trace, and say what was exercised.
//!
//! A run is a pure function of its [`RunConfig`] and seed. It fails when a
//! check finds a violation, and also when it proves nothing: when a fault
//! it asked for never happened, or when nothing was delivered.
//!
//! Without `Gmp` in the stack the group is static: every endpoint is built
//! in the same view ([`Endpoint::new`](consort_core::Endpoint::new)). With
//! it, every endpoint starts alone and joins through one or two seed
//! addresses ([`Endpoint::join`](consort_core::Endpoint::join)), the node
//! faults asked for are scheduled ([`crate::churn`]), and the group runs
//! with fast membership timers ([`FAST_MEMBERSHIP`]) unless `params` says
//! otherwise.

use std::net::SocketAddr;
use std::time::Duration;

use consort_core::stack::{LayerKind, StackSpec};
use consort_core::{Config, Instant, Params};

use crate::checker::{Checker, Violation};
use crate::churn::{self, Schedule};
use crate::exercised::Exercised;
use crate::net::{Fault, FaultKind, FaultPlan, Net};
use crate::node::{MAX_MEMBERS, Node, addr_of, endpoint_id, members};
use crate::rng::Rng;
use crate::sim::{Sim, Spawn};
use crate::trace::{StartCause, Trace};
use crate::workload::{NodeWorkload, WorkloadConfig};

/// Membership timers a simulated group runs with unless `--params` says
/// otherwise: failures are suspected after 4 silent sweeps of 50 ms, view
/// changes retry every 20 ms and give up on a member after 400 ms,
/// coordinators look for other views every 100 ms. Runs stay short and
/// still see many view changes.
pub const FAST_MEMBERSHIP: &str =
    "suspect_sweep=50ms:suspect_max_idle=4:gmp_retry=20ms:gmp_timeout=400ms:heal_sweep=100ms";

/// How the stack is chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// From properties, e.g. `"Frag:Flow"`.
    Properties(String),
    /// An explicit stack, e.g. `"Top:Local:Pt2pt:Stable:Mnak:Bottom"`.
    Stack(String),
}

/// Everything about a run but its seed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// Members of the group (1 to [`MAX_MEMBERS`]).
    pub members: usize,
    /// The stack.
    pub protocol: Protocol,
    /// Group parameters, `name=value` separated by `:`; with membership
    /// they apply over [`FAST_MEMBERSHIP`] (see [`RunConfig::params_in_use`]).
    pub params: String,
    /// Faults during the fault phase (the workload phase): per-datagram
    /// rates, and node faults by count.
    pub faults: Vec<Fault>,
    /// What the applications do.
    pub workload: WorkloadConfig,
    /// How long after the start the run may take to quiesce.
    pub bound: Duration,
    /// Bytes per pool slot: the largest datagram.
    pub slot_size: usize,
    /// Pool slots per endpoint (`None`: [`RunConfig::default_slots`]).
    pub slots: Option<usize>,
}

/// The group name every simulated endpoint joins.
const GROUP: &str = "sim";

impl RunConfig {
    /// A run of `members` with `protocol`, default parameters, no faults,
    /// the default workload, a 60 s bound and 512-byte slots (small enough
    /// that Frag cuts most messages).
    pub fn new(members: usize, protocol: Protocol) -> Self {
        RunConfig {
            members,
            protocol,
            params: String::new(),
            faults: Vec::new(),
            workload: WorkloadConfig::default(),
            bound: Duration::from_secs(60),
            slot_size: 512,
            slots: None,
        }
    }

    /// Pool slots for a group of `members`: room for every member's
    /// unstable casts under the default window, as a member keeps every
    /// cast it delivered until it is stable.
    pub fn default_slots(members: usize) -> usize {
        256 + 128 * members
    }

    /// Pool slots per endpoint for a group that may grow to `group` members.
    fn slots(&self, group: usize) -> usize {
        self.slots.unwrap_or(Self::default_slots(group))
    }

    fn spec(&self) -> Result<StackSpec, String> {
        match &self.protocol {
            Protocol::Properties(p) => {
                StackSpec::from_properties(p).map_err(|e| format!("--properties {p:?}: {e}"))
            }
            Protocol::Stack(s) => {
                StackSpec::from_layers(s).map_err(|e| format!("--stack {s:?}: {e}"))
            }
        }
    }

    /// Whether views change (the stack has Gmp): endpoints join through
    /// seeds, and node faults other than partitions are possible.
    pub fn membership(&self) -> bool {
        self.spec().is_ok_and(|s| s.contains(LayerKind::Gmp))
    }

    /// The group parameters the endpoints are built with. With membership:
    /// [`FAST_MEMBERSHIP`], then with Primary a `primary_quorum` of a
    /// majority of the initial group, then `params` (later settings win).
    pub fn params_in_use(&self) -> String {
        let Ok(spec) = self.spec() else {
            return self.params.clone();
        };
        if !spec.contains(LayerKind::Gmp) {
            return self.params.clone();
        }
        let mut p = FAST_MEMBERSHIP.to_string();
        if spec.contains(LayerKind::Primary) {
            p += &format!(":primary_quorum={}", self.members / 2 + 1);
        }
        if !self.params.is_empty() {
            p += ":";
            p += &self.params;
        }
        p
    }

    fn config<'a>(
        &'a self,
        params: &'a str,
        index: usize,
        seed: u64,
        seeds: &'a [SocketAddr],
    ) -> Config<'a> {
        // Processes of the initial group are the founders; a restart (a
        // new incarnation without the old one's memory) or a later join is
        // not (see `Config::founder`).
        let c = Config::new(GROUP, endpoint_id(index), seed)
            .params(params)
            .seeds(seeds)
            .founder(index < self.members);
        match &self.protocol {
            Protocol::Properties(p) => c.properties(p),
            Protocol::Stack(s) => c.stack(s),
        }
    }

    /// Node faults asked for with a count above zero.
    fn node_faults(&self) -> impl Iterator<Item = &Fault> {
        self.faults
            .iter()
            .filter(|f| f.count().is_some_and(|n| n > 0))
    }

    /// Checks everything that can be wrong before a seed runs, and returns
    /// the stack. Errors name the offending value.
    pub fn validate(&self) -> Result<StackSpec, String> {
        if !(1..=MAX_MEMBERS).contains(&self.members) {
            return Err(format!(
                "--members must be between 1 and {MAX_MEMBERS}, not {}",
                self.members
            ));
        }
        let spec = self.spec()?;
        Params::parse(&self.params).map_err(|e| format!("--params {:?}: {e}", self.params))?;
        let params = self.params_in_use();
        Params::parse(&params).map_err(|e| format!("--params {params:?}: {e}"))?;
        let membership = spec.contains(LayerKind::Gmp);
        for f in &self.faults {
            if let Some(r) = f.rate().filter(|r| !(0.0..=1.0).contains(r)) {
                return Err(format!(
                    "{} rate {r} is not between 0 and 1",
                    f.kind().name()
                ));
            }
        }
        for f in self.node_faults() {
            let k = f.kind();
            if k != FaultKind::Partition && !membership {
                return Err(format!(
                    "fault {} needs membership: a stack with Gmp (e.g. --properties Gmp:Sync:Heal:Frag:Suspect:Flow:Slander)",
                    k.name()
                ));
            }
            let finds = matches!(
                k,
                FaultKind::Partition | FaultKind::Restart | FaultKind::Join
            ) || (k == FaultKind::Leave && membership);
            if membership && finds && !spec.contains(LayerKind::Heal) {
                return Err(format!(
                    "fault {} needs Heal in the stack: without it endpoints never find the group again",
                    k.name()
                ));
            }
        }
        let removals: u32 = self
            .node_faults()
            .filter(|f| {
                matches!(
                    f.kind(),
                    FaultKind::Crash | FaultKind::Restart | FaultKind::Leave
                )
            })
            .filter_map(|f| f.count())
            .sum();
        if removals > 0 && self.members < 2 {
            return Err("crashes, restarts and leaves need at least 2 members".into());
        }
        // Sizes are checked by building one endpoint as the run will.
        let w = NodeWorkload::new(0, Instant::ZERO, self.workload.clone(), Rng::new(0));
        let built = if membership {
            let seeds = [addr_of(0)];
            let c = self.config(&params, 0, 0, &seeds);
            Node::join(0, 0, &c, self.slot_size, self.slots(self.members), w)
        } else {
            let c = self.config(&params, 0, 0, &[]);
            let group = members(self.members);
            Node::new(0, &group, &c, self.slot_size, self.slots(self.members), w)
        };
        built.map_err(|e| format!("cannot build an endpoint: {e}"))?;
        Ok(spec)
    }
}

/// What one seed found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Everything wrong; empty when the run passed.
    pub violations: Vec<Violation>,
    /// What the run exercised.
    pub exercised: Exercised,
    /// Whether the run quiesced before its bound.
    pub quiescent: bool,
    /// Virtual time at the end.
    pub end: Instant,
}

impl Report {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A report with the trace it was judged on.
#[derive(Clone, Debug)]
pub struct Run {
    /// The verdict and counts.
    pub report: Report,
    /// Every downcall and upcall.
    pub trace: Trace,
}

/// Runs `config` with `seed` and returns its report, turning a panic (a
/// `debug_assert!` in the core, say) into a failing report that quotes it.
pub fn run_report(config: &RunConfig, seed: u64) -> Result<Report, String> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(config, seed)));
    match outcome {
        Ok(r) => r.map(|r| r.report),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            Ok(Report {
                seed,
                violations: vec![Violation::at_end(
                    "panic",
                    None,
                    format!("the run panicked: {msg}"),
                )],
                exercised: Exercised::default(),
                quiescent: false,
                end: Instant::ZERO,
            })
        }
    }
}

/// Runs `config` with `seed`. Errors only when the configuration is
/// invalid (see [`RunConfig::validate`]).
pub fn run(config: &RunConfig, seed: u64) -> Result<Run, String> {
    let spec = config.validate()?;
    let membership = spec.contains(LayerKind::Gmp);
    let params = config.params_in_use();
    let parsed = Params::parse(&params).map_err(|e| format!("--params {params:?}: {e}"))?;
    let workload_end = Instant::ZERO + config.workload.duration;
    let schedule = churn::schedule(
        &config.faults,
        config.members,
        workload_end,
        &mut Rng::derive(seed, 2),
    );
    let slots = config.slots(if membership {
        schedule.slots
    } else {
        config.members
    });
    let group = members(config.members);
    let mut nodes = Vec::with_capacity(config.members);
    for i in 0..config.members {
        let ep_seed = Rng::derive(seed, 0x100 + i as u64).next_u64();
        let wl_rng = Rng::derive(seed, 0x1_0000 + i as u64);
        let w = NodeWorkload::new(i, Instant::ZERO, config.workload.clone(), wl_rng);
        let node = if membership {
            let seeds: Vec<SocketAddr> = schedule.initial_seeds[i]
                .iter()
                .map(|s| addr_of(*s))
                .collect();
            let c = config.config(&params, i, ep_seed, &seeds);
            Node::join(i, i, &c, config.slot_size, slots, w)
        } else {
            let c = config.config(&params, i, ep_seed, &[]);
            Node::new(i, &group, &c, config.slot_size, slots, w)
        };
        nodes.push(node.map_err(|e| format!("cannot build an endpoint: {e}"))?);
    }
    let mut plan = FaultPlan::new(config.faults.clone(), workload_end);
    plan.events = schedule.events.clone();
    let net = Net::new(
        schedule.slots.max(config.members),
        plan,
        Rng::derive(seed, 1),
    );
    let sim = Sim::new(nodes, net, workload_end);
    let mut sim = if membership {
        let Schedule {
            events,
            initial_seeds,
            slots: addresses,
            anchor,
        } = schedule;
        sim.with_membership(
            events,
            workload_end,
            addresses,
            initial_seeds,
            spawner(config, &params, seed, slots),
        )
        .protect(anchor)
    } else {
        sim.with_events(schedule.events)
    };
    let quiescent = sim.run(Instant::ZERO + config.bound);
    let end = sim.end_state(quiescent);

    let mut checker = Checker::for_run(&spec, &parsed);
    checker.observe_all(sim.trace.records());
    let mut violations = checker.finish(&end);
    let exercised = Exercised::of_run(&sim, &end);
    for f in &config.faults {
        let asked = f.rate().is_some() || f.count().is_some_and(|n| n > 0);
        if asked && exercised.faults.of(f.kind()) == 0 {
            violations.push(Violation::at_end(
                "campaign",
                None,
                format!(
                    "requested fault {} never happened: this run proves nothing about it",
                    f.kind().name()
                ),
            ));
        }
    }
    for e in sim.spawn_errors() {
        violations.push(Violation::at_end(
            "campaign",
            None,
            format!("could not start an endpoint: {e}"),
        ));
    }
    if exercised.cast_deliveries + exercised.send_deliveries == 0 {
        violations.push(Violation::at_end(
            "campaign",
            None,
            "nothing was delivered: this run proves nothing".into(),
        ));
    }
    if !quiescent {
        // Said first, as it is the context of whatever the checks found
        // missing; and a run that never settled must not pass even if
        // every check did.
        let what = if membership {
            format!(
                "did not quiesce within {} s (live members in one view, nothing in flight, pools empty)",
                config.bound.as_secs()
            )
        } else {
            format!(
                "did not quiesce within {} s (deliveries owed {}, made {})",
                config.bound.as_secs(),
                sim.deliveries_owed(),
                sim.deliveries_made()
            )
        };
        violations.insert(0, Violation::at_end("campaign", None, what));
    }
    Ok(Run {
        report: Report {
            seed,
            violations,
            exercised,
            quiescent,
            end: end.time,
        },
        trace: std::mem::take(&mut sim.trace),
    })
}

/// Builds the processes a run starts part-way through: process `p` at
/// `slot`, alone, joining through `seeds`, with its own seeded endpoint and
/// application streams.
fn spawner<'a>(config: &'a RunConfig, params: &'a str, seed: u64, slots: usize) -> Spawn<'a> {
    Box::new(
        move |p: usize, slot: usize, seeds: &[usize], now: Instant, _cause: StartCause| {
            let ep_seed = Rng::derive(seed, 0x100 + p as u64).next_u64();
            let wl_rng = Rng::derive(seed, 0x1_0000 + p as u64);
            let w = NodeWorkload::new(p, now, config.workload.clone(), wl_rng);
            let addrs: Vec<SocketAddr> = seeds.iter().map(|s| addr_of(*s)).collect();
            let c = config.config(params, p, ep_seed, &addrs);
            Node::join(p, slot, &c, config.slot_size, slots, w).map_err(|e| e.to_string())
        },
    )
}
