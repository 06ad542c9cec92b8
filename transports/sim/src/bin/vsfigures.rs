//! `vsfigures`: what membership costs, measured in the simulator.
//!
//! ```text
//! cargo run --release -p consort-sim --bin vsfigures
//! ```
//!
//! For groups of 2, 8 and 32 members with the default properties
//! `Gmp:Sync:Heal:Frag:Suspect:Flow:Slander` and **default parameters**
//! (Suspect: a ping every second, suspicion after 15 silent sweeps), on a
//! network with 1 ms links and no faults, no application traffic:
//! - **join**: a new endpoint starts (`Endpoint::join`, the group's first
//!   member as its seed); the time until it installs a view with the
//!   group, and until every member has (applications answer `Block` at
//!   once);
//! - **crash**: a member (not the coordinator) stops; the time until every
//!   survivor has installed a view without it (detection + view change);
//! - the datagrams and bytes all members sent for each view change: sent
//!   between the first `Block` of the change and its last install, less the
//!   group's background traffic (pings) at the rate measured over the five
//!   seconds before the join or crash.
//!
//! Each group first forms by joining its members one by one through the
//! first; a run that does not converge says so instead of printing a
//! figure.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use consort_core::{Config, EndpointId, Instant, Stats};
use consort_sim::churn::{NodeFault, Scheduled};
use consort_sim::net::{FaultPlan, Net};
use consort_sim::node::{Node, addr_of, endpoint_id, node_of};
use consort_sim::sim::{Sim, Spawn};
use consort_sim::trace::{Entry, StartCause};
use consort_sim::{Rng, WorkloadConfig};

const PROPERTIES: &str = "Gmp:Sync:Heal:Frag:Suspect:Flow:Slander";
const GROUP: &str = "figures";
/// A server-sized datagram, so that bytes are what a LAN deployment sends.
const SLOT_SIZE: usize = 1472;
/// No application traffic: a small pool is plenty.
const SLOTS: usize = 512;
/// Members join one every this long while the group forms.
const JOIN_GAP: Duration = Duration::from_millis(200);
/// Background traffic is measured over this long before the trigger.
const QUIET: Duration = Duration::from_secs(5);
/// The view change is watched in steps this long.
const STEP: Duration = Duration::from_micros(100);

/// What is done to the formed group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Join,
    Crash,
}

/// One measurement.
struct Figure {
    /// Until the joiner's (or the first survivor's) new view.
    first: Duration,
    /// Until every member's.
    all: Duration,
    datagrams: f64,
    bytes: f64,
}

/// No messages, and `block_ok` at once: the figures are the protocol's,
/// not an application's.
fn workload() -> WorkloadConfig {
    WorkloadConfig {
        max_messages: Some(0),
        max_block_delay: Duration::ZERO,
        ..WorkloadConfig::default()
    }
}

fn build(p: usize, slot: usize, start: Instant) -> Result<Node, String> {
    let seeds: [SocketAddr; 1] = [addr_of(0)];
    let config = Config::new(GROUP, endpoint_id(p), 0xF16 + p as u64)
        .properties(PROPERTIES)
        .seeds(&seeds);
    let w = consort_sim::workload::NodeWorkload::new(p, start, workload(), Rng::new(p as u64));
    Node::join(p, slot, &config, SLOT_SIZE, SLOTS, w).map_err(|e| e.to_string())
}

fn sent(sim: &Sim<'_>) -> (u64, u64) {
    sim.nodes.iter().fold((0, 0), |(d, b), n| {
        let s: Stats = n.stats();
        (d + s.datagrams_out, b + s.bytes_out)
    })
}

/// Whether every live process is in one view holding all of them.
fn formed(sim: &Sim<'_>) -> bool {
    let live: Vec<&Node> = sim.nodes.iter().filter(|n| n.is_live()).collect();
    let Some(first) = live.first().and_then(|n| n.endpoint.as_ref()) else {
        return false;
    };
    let id = first.view().id();
    first.view().len() == live.len()
        && live
            .iter()
            .all(|n| n.endpoint.as_ref().is_some_and(|e| e.view().id() == id))
}

/// Forms a group of `n`, then joins a member or crashes the last one.
fn measure(n: usize, trigger: Trigger) -> Result<Figure, String> {
    // The members join one by one (a crowd joining at once measures
    // merges, not joins), then the group has a minute to settle.
    let settle = Instant::ZERO + JOIN_GAP * n as u32 + Duration::from_secs(60);
    let at = settle + QUIET;
    let mut events = Vec::new();
    for i in 1..n {
        events.push(Scheduled {
            at: Instant::ZERO + JOIN_GAP * i as u32,
            fault: NodeFault::Join { slot: i },
            seeds: vec![0],
        });
    }
    events.push(Scheduled {
        at,
        fault: match trigger {
            Trigger::Join => NodeFault::Join { slot: n },
            Trigger::Crash => NodeFault::Crash { slot: n - 1 },
        },
        seeds: vec![0],
    });
    let slots = n + 1;
    let nodes = vec![build(0, 0, Instant::ZERO)?];
    let net = Net::new(
        slots,
        FaultPlan::new(Vec::new(), Instant::ZERO),
        Rng::new(1),
    );
    let spawn: Spawn<'_> = Box::new(
        |p: usize, slot: usize, _seeds: &[usize], now: Instant, _cause: StartCause| {
            build(p, slot, now)
        },
    );
    let end = at + Duration::from_secs(60);
    let mut sim = Sim::new(nodes, net, Instant::ZERO).with_membership(
        events,
        end,
        slots,
        vec![vec![0]],
        spawn,
    );
    sim.run_until(settle);
    if !formed(&sim) {
        return Err(format!("the group of {n} did not form within {settle:?}"));
    }
    let before = sent(&sim);
    sim.run_until(at - Duration::from_micros(1));
    let quiet = sent(&sim);
    let rate = (
        (quiet.0 - before.0) as f64 / QUIET.as_secs_f64(),
        (quiet.1 - before.1) as f64 / QUIET.as_secs_f64(),
    );
    // Step through the rest in small steps, noting the traffic at the
    // start of the step in which the first Block comes.
    let mut first_block: Option<(Instant, (u64, u64))> = None;
    let mut seen = sim.trace.len();
    while sim.now() < end {
        let (from, before) = (sim.now(), sent(&sim));
        sim.run_until(from + STEP);
        if first_block.is_none() {
            let recs = &sim.trace.records()[seen..];
            if recs.iter().any(|r| r.entry == Entry::Block && r.time >= at) {
                first_block = Some((from, before));
            }
            seen = sim.trace.len();
        }
        if sim.now() > at && formed(&sim) {
            break;
        }
    }
    if !formed(&sim) {
        return Err(format!(
            "the group of {n} did not converge after the {trigger:?}"
        ));
    }
    let (block_at, at_block) = first_block.ok_or("no Block after the trigger")?;
    let gone: Option<EndpointId> = match trigger {
        Trigger::Crash => Some(endpoint_id(n - 1)),
        Trigger::Join => None,
    };
    // Installs of the new view: with the joiner, or without the crashed one.
    let installs: Vec<(Instant, usize)> = sim
        .trace
        .records()
        .iter()
        .filter(|r| r.time >= at)
        .filter_map(|r| match &r.entry {
            Entry::View(v) => {
                let new = match gone {
                    Some(g) => !v.members.contains(&g),
                    None => v.members.iter().any(|m| node_of(*m) == Some(n)) && v.members.len() > 1,
                };
                new.then_some((r.time, r.node))
            }
            _ => None,
        })
        .collect();
    let last = installs.iter().map(|i| i.0).max().ok_or("no new view")?;
    let first = match trigger {
        Trigger::Join => installs.iter().find(|i| i.1 == n).map(|i| i.0),
        Trigger::Crash => installs.iter().map(|i| i.0).min(),
    }
    .ok_or("no new view at the joiner")?;
    let after = sent(&sim);
    // Traffic from the step of the first Block to the end of the step of
    // the last install, less the background at the quiet rate.
    let window = (sim.now() - block_at).as_secs_f64();
    let datagrams = (after.0 - at_block.0) as f64 - rate.0 * window;
    let bytes = (after.1 - at_block.1) as f64 - rate.1 * window;
    Ok(Figure {
        first: first - at,
        all: last - at,
        datagrams: datagrams.max(0.0),
        bytes: bytes.max(0.0),
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> ExitCode {
    if consort_sim::help_requested(
        "vsfigures: join and crash-to-view times and traffic per view change for groups of 2, 8 and 32 in the simulator (no flags)",
    ) {
        return ExitCode::SUCCESS;
    }
    println!(
        "consort-sim vsfigures: {PROPERTIES}, default parameters, 1 ms links, no loss, no application traffic"
    );
    println!();
    println!(
        "| group | event | first member in the new view | all members in the new view | datagrams per view change | bytes per view change |"
    );
    println!("|---|---|---|---|---|---|");
    let mut ok = true;
    for n in [2usize, 8, 32] {
        for trigger in [Trigger::Join, Trigger::Crash] {
            let what = match trigger {
                Trigger::Join => format!("a new endpoint joins ({n} -> {})", n + 1),
                Trigger::Crash => format!("a member crashes ({n} -> {})", n - 1),
            };
            match measure(n, trigger) {
                Ok(f) => println!(
                    "| {n} | {what} | {} | {} | {:.0} | {:.0} |",
                    ms(f.first),
                    ms(f.all),
                    f.datagrams,
                    f.bytes
                ),
                Err(e) => {
                    ok = false;
                    println!("| {n} | {what} | failed: {e} | | | |");
                }
            }
        }
    }
    println!();
    println!(
        "join: from Endpoint::join at the new endpoint; crash: from the crash (detection with suspect_sweep=1s, suspect_max_idle=15, then the view change)."
    );
    println!(
        "datagrams and bytes: all members, from the first Block to the last install, less background traffic at the rate of the 5 s before."
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
