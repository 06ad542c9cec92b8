//! One seed, end to end: build the group, run the workload under faults,
//! let the network heal, check the trace, and say what was exercised.
//!
//! A run is a pure function of its [`RunConfig`] and seed. It fails when a
//! check finds a violation, and also when it proves nothing: when a fault
//! it asked for never happened, or when nothing was delivered.

use std::time::Duration;

use consort_core::stack::StackSpec;
use consort_core::{Config, Instant, Params};

use crate::checker::{Checker, Violation};
use crate::exercised::Exercised;
use crate::net::{Fault, FaultPlan, Net};
use crate::node::{MAX_MEMBERS, Node, members};
use crate::rng::Rng;
use crate::sim::Sim;
use crate::trace::Trace;
use crate::workload::{NodeWorkload, WorkloadConfig};

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
    /// Group parameters, `name=value` separated by `:`.
    pub params: String,
    /// Per-datagram faults during the workload phase.
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

    fn slots(&self) -> usize {
        self.slots.unwrap_or(Self::default_slots(self.members))
    }

    fn config(&self, index: usize, seed: u64) -> Config<'_> {
        let c = Config::new(GROUP, crate::node::endpoint_id(index), seed).params(&self.params);
        match &self.protocol {
            Protocol::Properties(p) => c.properties(p),
            Protocol::Stack(s) => c.stack(s),
        }
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
        let spec = match &self.protocol {
            Protocol::Properties(p) => {
                StackSpec::from_properties(p).map_err(|e| format!("--properties {p:?}: {e}"))?
            }
            Protocol::Stack(s) => {
                StackSpec::from_layers(s).map_err(|e| format!("--stack {s:?}: {e}"))?
            }
        };
        Params::parse(&self.params).map_err(|e| format!("--params {:?}: {e}", self.params))?;
        for f in &self.faults {
            let (Fault::Loss(r) | Fault::Dup(r) | Fault::Reorder(r)) = *f;
            if !(0.0..=1.0).contains(&r) {
                return Err(format!(
                    "{} rate {r} is not between 0 and 1",
                    f.kind().name()
                ));
            }
        }
        // Sizes are checked by building one endpoint as the run will.
        let group = members(self.members);
        let w = NodeWorkload::new(0, self.members, self.workload.clone(), Rng::new(0));
        Node::new(
            0,
            &group,
            &self.config(0, 0),
            self.slot_size,
            self.slots(),
            w,
        )
        .map_err(|e| format!("cannot build an endpoint: {e}"))?;
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
    let group = members(config.members);
    let mut nodes = Vec::with_capacity(config.members);
    for i in 0..config.members {
        let ep_seed = Rng::derive(seed, 0x100 + i as u64).next_u64();
        let wl_rng = Rng::derive(seed, 0x1_0000 + i as u64);
        let w = NodeWorkload::new(i, config.members, config.workload.clone(), wl_rng);
        let node = Node::new(
            i,
            &group,
            &config.config(i, ep_seed),
            config.slot_size,
            config.slots(),
            w,
        )
        .map_err(|e| format!("cannot build an endpoint: {e}"))?;
        nodes.push(node);
    }
    let workload_end = Instant::ZERO + config.workload.duration;
    let plan = FaultPlan::new(config.faults.clone(), workload_end);
    let net = Net::new(config.members, plan, Rng::derive(seed, 1));
    let mut sim = Sim::new(nodes, net, workload_end);
    let quiescent = sim.run(Instant::ZERO + config.bound);
    let end = sim.end_state(quiescent);

    let mut checker = Checker::for_stack(&spec);
    checker.observe_all(sim.trace.records());
    let mut violations = checker.finish(&end);
    let exercised = Exercised::of_run(&sim, &end);
    for f in &config.faults {
        if exercised.faults.of(f.kind()) == 0 {
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
        violations.insert(
            0,
            Violation::at_end(
                "campaign",
                None,
                format!(
                    "did not quiesce within {} s (deliveries owed {}, made {})",
                    config.bound.as_secs(),
                    sim.deliveries_owed(),
                    sim.deliveries_made()
                ),
            ),
        );
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
