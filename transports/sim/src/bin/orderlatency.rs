//! `orderlatency`: the delivery latency that Total and Agree add, measured
//! in the simulator.
//!
//! ```text
//! cargo run --release -p consort-sim --bin orderlatency
//! ```
//!
//! A static group of 4 or 8 members on a network with 1 ms links and no
//! faults (a round trip is 2 ms); every member casts a one-datagram
//! message every 50 ms on average for 4 virtual seconds, nothing else.
//! For each stack, the latency of a cast is the virtual time from the
//! sender's `cast` to its delivery at another member; the figures are the
//! mean and the 99th percentile over every such delivery, in milliseconds
//! and in round trips, over 5 seeds. Default parameters (Stable gossips
//! every `stable_sweep`), so Agree's figure is mostly how long stability
//! takes to be learned.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use consort_core::Instant;
use consort_sim::message::MsgId;
use consort_sim::trace::Entry;
use consort_sim::{Protocol, RunConfig, run};

const STACKS: [&str; 4] = [
    "Frag:Flow",
    "Frag:Flow:Total",
    "Frag:Flow:Agree",
    "Frag:Flow:Agree:Total",
];
const SEEDS: u64 = 5;
const ROUND_TRIP_MS: f64 = 2.0;

/// Every latency, in milliseconds, of a cast delivered at a member other
/// than its sender; `None` if a run failed its checks.
fn latencies(properties: &str, members: usize) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    for seed in 0..SEEDS {
        let mut c = RunConfig::new(members, Protocol::Properties(properties.into()));
        c.workload.mean_gap = Duration::from_millis(50);
        c.workload.cast_share = 1.0;
        c.workload.large_share = 0.0;
        c.workload.burst_share = 0.0;
        let r = run(&c, seed).ok()?;
        if !r.report.passed() {
            eprintln!(
                "{properties}, {members} members, seed {seed}: {:?}",
                r.report.violations
            );
            return None;
        }
        let mut cast_at: HashMap<MsgId, Instant> = HashMap::new();
        for rec in r.trace.records() {
            match &rec.entry {
                Entry::CastAccepted { id, .. } => {
                    cast_at.insert(*id, rec.time);
                }
                Entry::Delivered(d) => {
                    let Some(id) = d.id else { continue };
                    if id.origin == rec.node {
                        continue;
                    }
                    if let Some(t0) = cast_at.get(&id) {
                        out.push((rec.time - *t0).as_secs_f64() * 1000.0);
                    }
                }
                _ => {}
            }
        }
    }
    Some(out)
}

fn main() -> ExitCode {
    if consort_sim::help_requested(
        "orderlatency: delivery latency with and without Total and Agree, 4 and 8 members, 1 ms links, in the simulator (no flags)",
    ) {
        return ExitCode::SUCCESS;
    }
    println!(
        "delivery latency at the other members, static group, 1 ms links (round trip {ROUND_TRIP_MS} ms), no faults, {SEEDS} seeds"
    );
    println!(
        "{:>8}  {:<22}  {:>10}  {:>10}  {:>12}  {:>12}",
        "members", "properties", "mean ms", "p99 ms", "mean RTTs", "p99 RTTs"
    );
    let mut ok = true;
    for members in [4usize, 8] {
        for p in STACKS {
            let Some(mut l) = latencies(p, members) else {
                ok = false;
                continue;
            };
            if l.is_empty() {
                ok = false;
                continue;
            }
            l.sort_by(f64::total_cmp);
            let mean = l.iter().sum::<f64>() / l.len() as f64;
            let p99 = l[(l.len() * 99 / 100).min(l.len() - 1)];
            println!(
                "{members:>8}  {p:<22}  {mean:>10.2}  {p99:>10.2}  {:>12.2}  {:>12.2}",
                mean / ROUND_TRIP_MS,
                p99 / ROUND_TRIP_MS
            );
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
