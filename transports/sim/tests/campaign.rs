//! The simulator's own tests: a campaign that must pass and must bite,
//! determinism, and a checker that can fail.

// Helpers outside `#[test]` functions fail tests the same way: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use consort_core::stack::StackSpec;
use consort_core::{Instant, Stats};
use consort_sim::checker::NodeEnd;
use consort_sim::message::{Kind, MsgId};
use consort_sim::trace::Delivery;
use consort_sim::{
    Checker, EndState, Entry, Exercised, Fault, Protocol, Record, Report, RunConfig, Violation,
    run, run_report,
};

/// Stacks the campaign cycles through: the default properties, each
/// property alone, the Drop test layer, and explicit stacks without Local
/// or without Frag.
const STACKS: [(&str, bool); 6] = [
    ("Frag:Flow", false),
    ("Frag", false),
    ("Flow", false),
    ("Frag:Flow:Drop", false),
    ("Top:Frag:Pt2pt:Stable:Mnak:Bottom", true),
    ("Top:Local:Pt2pt:Stable:Mnak:Bottom", true),
];

/// The configuration of campaign seed `seed`: 2 to 8 members, loss from 0
/// to 30% (none at all for one seed in 31), duplication and reordering,
/// over the default four-second workload.
fn config_for(seed: u64) -> RunConfig {
    let (stack, explicit) = STACKS[(seed % STACKS.len() as u64) as usize];
    let protocol = if explicit {
        Protocol::Stack(stack.into())
    } else {
        Protocol::Properties(stack.into())
    };
    let mut c = RunConfig::new(2 + (seed % 7) as usize, protocol);
    let loss = (seed % 31) as f64 / 100.0;
    if loss > 0.0 {
        c.faults.push(Fault::Loss(loss));
    }
    c.faults.push(Fault::Dup(0.05));
    c.faults.push(Fault::Reorder(0.1));
    c
}

fn replay(seed: u64) -> String {
    let c = config_for(seed);
    let proto = match &c.protocol {
        Protocol::Properties(p) => format!("--properties {p}"),
        Protocol::Stack(s) => format!("--stack {s}"),
    };
    let mut faults = Vec::new();
    let mut rates = String::new();
    for f in &c.faults {
        let (Fault::Loss(r) | Fault::Dup(r) | Fault::Reorder(r)) = *f;
        faults.push(f.kind().name());
        rates += &format!(" --{} {r}", f.kind().name());
    }
    format!(
        "cargo run --release -p consort-sim --bin campaign -- --seeds 1 --first-seed {seed} --members {} {proto} --faults {}{rates} -v",
        c.members,
        faults.join(",")
    )
}

#[test]
fn a_campaign_of_300_seeds_passes_and_its_faults_bite() {
    const SEEDS: u64 = 300;
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
                    let r = run_report(&config_for(seed), seed).unwrap();
                    reports.lock().unwrap().push(r);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by_key(|r| r.seed);
    let mut total = Exercised::default();
    let mut failures = String::new();
    for r in &reports {
        total.add(&r.exercised);
        if !r.passed() {
            failures += &format!("seed {}:\n", r.seed);
            for v in r.violations.iter().take(8) {
                failures += &format!("  {v}\n");
            }
            failures += &format!("  replay: {}\n", replay(r.seed));
        }
    }
    println!("{total}");
    assert!(failures.is_empty(), "failing seeds:\n{failures}");
    assert_eq!(reports.len() as u64, SEEDS);
    // The campaign proves something only if its faults happened and the
    // protocol had to work around them.
    let f = &total.faults;
    assert!(f.losses > 0 && f.duplicates > 0 && f.reorders > 0, "{f:?}");
    assert!(
        total.naks > 0 && total.cast_retransmissions > 0,
        "{total:?}"
    );
    assert!(
        total.send_retransmissions > 0 && total.duplicates_discarded > 0,
        "{total:?}"
    );
    assert!(total.would_blocks > 0 && total.writables > 0, "{total:?}");
    assert!(
        total.max_fragments > 10 && total.test_drops > 0,
        "{total:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let config = config_for(3);
    let a = run(&config, 3).unwrap();
    let b = run(&config, 3).unwrap();
    assert!(a.trace.len() > 100);
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.report.exercised, b.report.exercised);
    let c = run(&config, 4).unwrap();
    assert_ne!(a.trace, c.trace, "another seed, another run");
}

fn cast(origin: usize, seq: u32) -> MsgId {
    MsgId {
        origin,
        kind: Kind::Cast,
        dest: None,
        seq,
    }
}

fn rec(ms: u64, node: usize, entry: Entry) -> Record {
    Record {
        time: Instant::from_millis(ms),
        node,
        entry,
    }
}

fn delivered(ms: u64, node: usize, id: MsgId, intact: bool) -> Record {
    rec(
        ms,
        node,
        Entry::Delivered(Delivery {
            kind: id.kind,
            from_rank: id.origin,
            from_node: Some(id.origin),
            id: Some(id),
            len: 100,
            intact,
            fragments: 1,
        }),
    )
}

fn end(nodes: usize) -> EndState {
    EndState {
        nodes: (0..nodes)
            .map(|_| NodeEnd {
                live: true,
                pool_in_use: 0,
                stats: Stats::default(),
                unsent: 0,
                errors: Vec::new(),
            })
            .collect(),
        quiescent: true,
        time: Instant::from_secs(1),
    }
}

fn check(trace: &[Record], end: &EndState) -> Vec<Violation> {
    let spec = StackSpec::from_properties("Frag:Flow").unwrap();
    let mut checker = Checker::for_stack(&spec);
    checker.observe_all(trace);
    checker.finish(end)
}

/// A correct little run: n0 casts twice, n1 sends once to n2.
fn good_trace() -> Vec<Record> {
    let send = MsgId {
        origin: 1,
        kind: Kind::Send,
        dest: Some(2),
        seq: 0,
    };
    let mut t = vec![
        rec(
            1,
            0,
            Entry::CastAccepted {
                id: cast(0, 0),
                len: 100,
            },
        ),
        rec(
            2,
            0,
            Entry::CastAccepted {
                id: cast(0, 1),
                len: 100,
            },
        ),
        rec(3, 1, Entry::SendAccepted { id: send, len: 100 }),
    ];
    for node in 0..3 {
        t.push(delivered(4, node, cast(0, 0), true));
        t.push(delivered(5, node, cast(0, 1), true));
    }
    t.push(delivered(6, 2, send, true));
    t
}

#[test]
fn the_checker_passes_a_correct_trace() {
    assert_eq!(check(&good_trace(), &end(3)), []);
}

#[test]
fn the_checker_catches_injected_violations() {
    let names = |v: &[Violation]| v.iter().map(|v| v.check).collect::<Vec<_>>();

    // A duplicate.
    let mut t = good_trace();
    t.push(delivered(7, 1, cast(0, 1), true));
    assert_eq!(names(&check(&t, &end(3))), ["no duplicate"]);

    // A FIFO inversion: n2 gets n0's casts in the wrong order.
    let mut t = good_trace();
    let (a, b) = (
        t.iter()
            .position(|r| {
                r.node == 2 && matches!(&r.entry, Entry::Delivered(d) if d.id == Some(cast(0, 0)))
            })
            .unwrap(),
        t.iter()
            .position(|r| {
                r.node == 2 && matches!(&r.entry, Entry::Delivered(d) if d.id == Some(cast(0, 1)))
            })
            .unwrap(),
    );
    t.swap(a, b);
    let v = check(&t, &end(3));
    assert!(
        names(&v).iter().all(|n| *n == "fifo") && v.len() == 2,
        "{v:?}"
    );

    // A missing delivery: n1 never gets n0's second cast.
    let mut t = good_trace();
    t.retain(|r| {
        !(r.node == 1 && matches!(&r.entry, Entry::Delivered(d) if d.id == Some(cast(0, 1))))
    });
    let v = check(&t, &end(3));
    assert_eq!(names(&v), ["reliable delivery"]);
    assert!(
        v[0].what.contains("n0's casts") && v[0].node == Some(1),
        "{v:?}"
    );

    // A missing self-delivery (the stack has Local); the cast after it is
    // then delivered out of order too.
    let mut t = good_trace();
    t.retain(|r| {
        !(r.node == 0 && matches!(&r.entry, Entry::Delivered(d) if d.id == Some(cast(0, 0))))
    });
    assert_eq!(names(&check(&t, &end(3))), ["fifo", "self-delivery"]);

    // A corrupted payload (it also never counts as the real one arriving).
    let mut t = good_trace();
    for r in &mut t {
        if let Entry::Delivered(d) = &mut r.entry {
            if r.node == 2 && d.kind == Kind::Send {
                d.intact = false;
            }
        }
    }
    assert_eq!(
        names(&check(&t, &end(3))),
        ["no creation", "reliable delivery"]
    );

    // A message never accepted, and a send delivered at the wrong member.
    let mut t = good_trace();
    t.push(delivered(8, 1, cast(0, 7), true));
    let stray = MsgId {
        origin: 1,
        kind: Kind::Send,
        dest: Some(2),
        seq: 0,
    };
    t.push(delivered(9, 0, stray, true));
    let v = check(&t, &end(3));
    assert_eq!(names(&v), ["no creation", "no creation", "fifo"], "{v:?}");

    // Buffers left in a pool, a lost event, a malformed datagram, a message never accepted.
    let mut e = end(3);
    e.nodes[1].pool_in_use = 4;
    e.nodes[2].stats.queue_overflow = 1;
    e.nodes[0].stats.malformed = 2;
    e.nodes[0].unsent = 1;
    let v = check(&good_trace(), &e);
    assert_eq!(
        names(&v),
        [
            "buffers released",
            "buffers released",
            "well-formed traffic",
            "progress"
        ],
        "{v:?}"
    );
}

#[test]
fn the_checker_fails_a_real_run_of_an_unreliable_stack() {
    // Top:Bottom promises nothing, so its own checker passes what it can...
    let mut config = RunConfig::new(3, Protocol::Stack("Top:Bottom".into()));
    config.faults = vec![Fault::Loss(0.2), Fault::Dup(0.2)];
    config.workload.duration = Duration::from_secs(1);
    let r = run(&config, 5).unwrap();
    // ...but judged as a reliable FIFO stack its trace fails.
    let mut e = end(3);
    e.quiescent = false;
    let v = check(r.trace.records(), &e);
    for name in ["reliable delivery", "no duplicate", "self-delivery"] {
        assert!(
            v.iter().any(|v| v.check == name),
            "{name} not caught: {v:?}"
        );
    }
    // And the run itself fails, because it never quiesced.
    assert!(!r.report.passed());
}
