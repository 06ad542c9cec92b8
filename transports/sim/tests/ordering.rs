//! The ordering properties in the simulator: campaigns of Total, Causal and
//! Agree:Total under every fault must pass and must bite (casts held,
//! ordered, delivered at the end of views), and the three checks must fail
//! real runs of stacks that do not promise what they check.

// Helpers outside `#[test]` functions fail tests the same way: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use consort_sim::checker::{CausalOrder, SafeDelivery, TotalOrder};
use consort_sim::{Check, Checker, Exercised, Fault, Protocol, Report, RunConfig, run, run_report};

/// Seeds each campaign here runs (the full campaigns run 2000 and more
/// from the command line; see docs/ordering.md).
const SEEDS: u64 = 100;

/// `campaign --members 5 --properties <properties> --faults
/// loss,dup,reorder,partition,crash,restart,join,leave`.
fn config(properties: &str) -> RunConfig {
    let mut c = RunConfig::new(5, Protocol::Properties(properties.into()));
    c.faults = vec![
        Fault::Loss(0.1),
        Fault::Dup(0.05),
        Fault::Reorder(0.1),
        Fault::Partition(1),
        Fault::Crash(1),
        Fault::Restart(1),
        Fault::Join(1),
        Fault::Leave(1),
    ];
    c.bound = c.workload.duration + Duration::from_secs(56);
    c
}

/// Runs seeds `0..SEEDS` of `c` on every core; panics listing the failing
/// seeds with a replay command, else returns what they exercised.
fn campaign(c: &RunConfig) -> Exercised {
    let next = AtomicU64::new(0);
    let reports: Mutex<Vec<Report>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= SEEDS {
                        break;
                    }
                    let r = run_report(c, seed).unwrap();
                    reports.lock().unwrap().push(r);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by_key(|r| r.seed);
    assert_eq!(reports.len() as u64, SEEDS);
    let Protocol::Properties(p) = &c.protocol else {
        unreachable!()
    };
    let mut total = Exercised::default();
    let mut failures = String::new();
    for r in &reports {
        total.add(&r.exercised);
        if !r.passed() {
            failures += &format!(
                "seed {}: {:?}\n  replay: cargo run --release -p consort-sim --bin campaign -- \
                 --seeds 1 --first-seed {} --members 5 --properties {p} --faults \
                 loss,dup,reorder,partition,crash,restart,join,leave -v\n",
                r.seed,
                &r.violations[..r.violations.len().min(6)],
                r.seed
            );
        }
    }
    println!("{total}");
    assert!(failures.is_empty(), "{failures}");
    total
}

#[test]
fn a_total_order_campaign_passes_and_bites() {
    let t = campaign(&config("Gmp:Sync:Heal:Frag:Suspect:Flow:Total"));
    let o = &t.ordering;
    assert!(o.orders > 0 && o.held > 0 && o.end_of_view > 0, "{o:?}");
    let m = &t.membership;
    assert!(
        m.view_changes > 0 && m.during_block > 0 && m.merges > 0,
        "{m:?}"
    );
    assert!(
        t.faults.partitions > 0 && t.faults.crashes > 0,
        "{:?}",
        t.faults
    );
}

#[test]
fn a_causal_order_campaign_passes_and_bites() {
    let t = campaign(&config("Gmp:Sync:Heal:Frag:Suspect:Flow:Causal"));
    let o = &t.ordering;
    assert!(o.held > 0 && o.orders == 0, "{o:?}");
    assert!(t.membership.view_changes > 0, "{:?}", t.membership);
}

#[test]
fn a_safe_total_order_campaign_passes_and_bites() {
    let t = campaign(&config("Gmp:Sync:Heal:Frag:Suspect:Flow:Agree:Total"));
    let o = &t.ordering;
    assert!(o.orders > 0 && o.held > 0 && o.end_of_view > 0, "{o:?}");
    assert!(t.membership.view_changes > 0, "{:?}", t.membership);
}

/// Seeds of `properties` whose traces `check` finds violations in.
fn caught(properties: &str, check: impl Fn() -> Box<dyn Check + Send>, seeds: u64) -> Vec<u64> {
    let c = config(properties);
    (0..seeds)
        .filter(|seed| {
            let r = run(&c, *seed).unwrap();
            let mut checker = Checker::with(vec![check()]);
            checker.observe_all(r.trace.records());
            // The end state matters to none of the three checks.
            let end = consort_sim::EndState {
                nodes: Vec::new(),
                quiescent: true,
                time: r.report.end,
            };
            !checker.finish(&end).is_empty()
        })
        .collect()
}

#[test]
fn the_ordering_checks_fail_real_runs_of_stacks_without_the_layers() {
    // Plain virtual synchrony: FIFO per sender, no order across senders.
    let plain = "Gmp:Sync:Heal:Frag:Suspect:Flow";
    let total = caught(plain, || Box::new(TotalOrder::new(false)), 10);
    assert!(
        !total.is_empty(),
        "total order never violated without Total"
    );
    let causal = caught(plain, || Box::new(CausalOrder::new()), 10);
    assert!(
        !causal.is_empty(),
        "causal order never violated without Causal"
    );
    // Total without Agree orders casts that a member cut off from the
    // others may never pass on.
    let safe = caught(
        "Gmp:Sync:Heal:Frag:Suspect:Flow:Total",
        || Box::new(SafeDelivery::new()),
        20,
    );
    assert!(
        !safe.is_empty(),
        "safe delivery never violated without Agree"
    );
    println!("caught: total {total:?}, causal {causal:?}, safe {safe:?}");
}
