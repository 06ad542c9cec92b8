//! The checker on hand-made traces: it passes correct ones and names
//! exactly what is wrong in broken ones, for a static group and for views
//! that change.

// Helpers outside `#[test]` functions fail tests the same way: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use consort_core::stack::StackSpec;
use consort_core::{Instant, Params, Stats, ViewId};
use consort_sim::checker::NodeEnd;
use consort_sim::message::{Kind, MsgId};
use consort_sim::node::endpoint_id;
use consort_sim::trace::{Delivery, NET, Start, StartCause, ViewRecord};
use consort_sim::{Checker, EndState, Entry, Record, Violation};

const STATIC: &str = "Frag:Flow";
const VSYNC: &str = "Gmp:Sync:Heal:Frag:Suspect:Flow:Slander:Primary";

fn cast(origin: usize, seq: u32) -> MsgId {
    MsgId {
        origin,
        kind: Kind::Cast,
        dest: None,
        seq,
    }
}

fn send(origin: usize, dest: usize, seq: u32) -> MsgId {
    MsgId {
        origin,
        kind: Kind::Send,
        dest: Some(dest),
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

fn accepted(ms: u64, node: usize, id: MsgId, next: bool) -> Record {
    let entry = match id.kind {
        Kind::Cast => Entry::CastAccepted { id, len: 100, next },
        Kind::Send => Entry::SendAccepted { id, len: 100, next },
    };
    rec(ms, node, entry)
}

/// `node` delivers `id`, sent by the member at `rank` of its view.
fn delivered_from(ms: u64, node: usize, id: MsgId, rank: usize) -> Record {
    rec(
        ms,
        node,
        Entry::Delivered(Delivery {
            kind: id.kind,
            from_rank: rank,
            from_node: Some(id.origin),
            id: Some(id),
            len: 100,
            intact: true,
            fragments: 1,
        }),
    )
}

/// `node` delivers `id` in a view where its origin's rank is its index.
fn delivered(ms: u64, node: usize, id: MsgId) -> Record {
    delivered_from(ms, node, id, id.origin)
}

fn vid(ltime: u32, coord: usize) -> ViewId {
    ViewId {
        ltime,
        coordinator: endpoint_id(coord),
    }
}

fn start(node: usize) -> Record {
    rec(
        0,
        node,
        Entry::Start(Start {
            slot: node,
            endpoint: endpoint_id(node),
            seeds: Vec::new(),
            cause: StartCause::Initial,
        }),
    )
}

/// `node` installs view `id` with `members` (process indices).
fn view(
    ms: u64,
    node: usize,
    id: ViewId,
    members: &[usize],
    previous: Option<ViewId>,
    primary: bool,
) -> Record {
    rec(
        ms,
        node,
        Entry::View(ViewRecord {
            id,
            members: members.iter().map(|m| endpoint_id(*m)).collect(),
            primary,
            protocol: "P".into(),
            previous,
            rank: members.iter().position(|m| *m == node).unwrap(),
        }),
    )
}

/// Every node of a static group of `n` starts in view 0@n0.
fn static_group(n: usize) -> Vec<Record> {
    let all: Vec<usize> = (0..n).collect();
    let mut t: Vec<Record> = (0..n).map(start).collect();
    for i in 0..n {
        t.push(view(0, i, vid(0, 0), &all, None, false));
    }
    t
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
                timer_repeats: 0,
                timer_stuck: 0,
            })
            .collect(),
        quiescent: true,
        time: Instant::from_secs(10),
    }
}

fn check_with(properties: &str, trace: &[Record], end: &EndState) -> Vec<Violation> {
    let spec = StackSpec::from_properties(properties).unwrap();
    let params = Params::parse(consort_sim::FAST_MEMBERSHIP).unwrap();
    let mut checker = Checker::for_run(&spec, &params);
    checker.observe_all(trace);
    checker.finish(end)
}

fn check(trace: &[Record], end: &EndState) -> Vec<Violation> {
    check_with(STATIC, trace, end)
}

fn names(v: &[Violation]) -> Vec<&'static str> {
    v.iter().map(|v| v.check).collect()
}

/// A correct little static run: n0 casts twice, n1 sends once to n2.
fn good_trace() -> Vec<Record> {
    let mut t = static_group(3);
    t.push(accepted(1, 0, cast(0, 0), false));
    t.push(accepted(2, 0, cast(0, 1), false));
    t.push(accepted(3, 1, send(1, 2, 0), false));
    for node in 0..3 {
        t.push(delivered(4, node, cast(0, 0)));
        t.push(delivered(5, node, cast(0, 1)));
    }
    t.push(delivered(6, 2, send(1, 2, 0)));
    t
}

fn is_delivery(r: &Record, node: usize, id: MsgId) -> bool {
    r.node == node && matches!(&r.entry, Entry::Delivered(d) if d.id == Some(id))
}

#[test]
fn the_checker_passes_a_correct_static_trace() {
    assert_eq!(check(&good_trace(), &end(3)), []);
}

#[test]
fn the_checker_catches_injected_violations_in_a_static_group() {
    // A duplicate.
    let mut t = good_trace();
    t.push(delivered(7, 1, cast(0, 1)));
    assert_eq!(names(&check(&t, &end(3))), ["no duplicate"]);

    // A FIFO inversion: n2 gets n0's casts in the wrong order.
    let mut t = good_trace();
    let a = t
        .iter()
        .position(|r| is_delivery(r, 2, cast(0, 0)))
        .unwrap();
    let b = t
        .iter()
        .position(|r| is_delivery(r, 2, cast(0, 1)))
        .unwrap();
    t.swap(a, b);
    let v = check(&t, &end(3));
    assert!(
        names(&v).iter().all(|n| *n == "fifo") && v.len() == 2,
        "{v:?}"
    );

    // A missing delivery: n1 never gets n0's second cast.
    let mut t = good_trace();
    t.retain(|r| !is_delivery(r, 1, cast(0, 1)));
    let v = check(&t, &end(3));
    assert_eq!(names(&v), ["reliable delivery"]);
    assert!(
        v[0].what.contains("n0's casts") && v[0].node == Some(1),
        "{v:?}"
    );

    // A missing self-delivery (the stack has Local); the cast after it is
    // then delivered out of order too.
    let mut t = good_trace();
    t.retain(|r| !is_delivery(r, 0, cast(0, 0)));
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
    t.push(delivered(8, 1, cast(0, 7)));
    t.push(delivered(9, 0, send(1, 2, 0)));
    let v = check(&t, &end(3));
    assert_eq!(names(&v), ["no creation", "no creation"], "{v:?}");

    // Buffers left in a pool, a lost event, a spinning timer, a malformed
    // datagram, a message never accepted.
    let mut e = end(3);
    e.nodes[1].pool_in_use = 4;
    e.nodes[2].stats.queue_overflow = 1;
    e.nodes[2].timer_stuck = 3;
    e.nodes[0].stats.malformed = 2;
    e.nodes[0].unsent = 1;
    let v = check(&good_trace(), &e);
    assert_eq!(
        names(&v),
        [
            "buffers released",
            "buffers released",
            "busy timer",
            "well-formed traffic",
            "progress"
        ],
        "{v:?}"
    );
    // Once in a row is not a spin: a timeout may make something due at once.
    let mut e = end(3);
    e.nodes[0].timer_stuck = 1;
    assert_eq!(check(&good_trace(), &e), []);
}

/// A correct run with views changing. n0, n1, n2 start together in view
/// A = 1@n0; n2 crashes; n0 and n1 move to B = 2@n0; n3 joins (from its
/// own 0@n3) into C = 3@n0 with them. Casts are sent in every view, one of
/// them held for the next view (`Next`) while blocked.
fn good_membership_trace() -> (Vec<Record>, EndState) {
    let a = vid(1, 0);
    let b = vid(2, 0);
    let c = vid(3, 0);
    let own = vid(0, 3);
    let mut t: Vec<Record> = (0..3).map(start).collect();
    for n in 0..3 {
        t.push(view(1, n, a, &[0, 1, 2], None, true));
    }
    // In A: everyone casts once; all deliver all.
    for n in 0..3 {
        t.push(accepted(2, n, cast(n, 0), false));
    }
    for n in 0..3 {
        for o in 0..3 {
            t.push(delivered(3, n, cast(o, 0)));
        }
    }
    // n2 sends to n0, then crashes; its last cast only n1 had, and the
    // flush got it to n0 too.
    t.push(accepted(4, 2, send(2, 0, 0), false));
    t.push(delivered(5, 0, send(2, 0, 0)));
    t.push(accepted(6, 2, cast(2, 1), false));
    t.push(delivered(6, 2, cast(2, 1)));
    t.push(rec(7, 2, Entry::Crash));
    t.push(delivered(8, 1, cast(2, 1)));
    t.push(rec(9, 0, Entry::Block));
    t.push(rec(9, 1, Entry::Block));
    t.push(delivered(9, 0, cast(2, 1)));
    // n0 casts before block_ok (current view), n1 after (next view).
    t.push(accepted(10, 0, cast(0, 1), false));
    t.push(delivered(10, 0, cast(0, 1)));
    t.push(delivered(11, 1, cast(0, 1)));
    t.push(rec(12, 0, Entry::BlockOk));
    t.push(rec(12, 1, Entry::BlockOk));
    t.push(accepted(13, 1, cast(1, 1), true));
    // B: n0 and n1. The held cast goes out in B.
    t.push(view(20, 0, b, &[0, 1], Some(a), true));
    t.push(view(20, 1, b, &[0, 1], Some(a), true));
    t.push(delivered(21, 1, cast(1, 1)));
    t.push(delivered(22, 0, cast(1, 1)));
    // n3 starts alone and casts to itself.
    t.push(start(3));
    t.push(view(25, 3, own, &[3], None, false));
    t.push(accepted(26, 3, cast(3, 0), false));
    t.push(delivered_from(26, 3, cast(3, 0), 0));
    // C: merged. Everyone casts once more, n3 sends to n1.
    t.push(view(30, 0, c, &[0, 1, 3], Some(b), true));
    t.push(view(30, 1, c, &[0, 1, 3], Some(b), true));
    t.push(view(31, 3, c, &[0, 1, 3], Some(own), true));
    for n in [0, 1, 3] {
        t.push(accepted(32, n, cast(n, if n == 3 { 1 } else { 2 }), false));
    }
    t.push(accepted(33, 3, send(3, 1, 0), false));
    for n in [0, 1, 3] {
        t.push(delivered_from(34, n, cast(0, 2), 0));
        t.push(delivered_from(34, n, cast(1, 2), 1));
        t.push(delivered_from(34, n, cast(3, 1), 2));
    }
    t.push(delivered_from(35, 1, send(3, 1, 0), 2));
    t.push(rec(40, NET, Entry::FaultsOver));
    let mut e = end(4);
    e.nodes[2].live = false;
    (t, e)
}

fn at(t: &[Record], f: impl Fn(&Record) -> bool) -> usize {
    t.iter().position(f).unwrap()
}

#[test]
fn the_checker_passes_a_correct_membership_trace() {
    let (t, e) = good_membership_trace();
    assert_eq!(check_with(VSYNC, &t, &e), []);
}

#[test]
fn the_checker_catches_view_disagreement_and_broken_virtual_synchrony() {
    let (good, e) = good_membership_trace();
    let b = vid(2, 0);

    // n1 installs B with other members.
    let mut t = good.clone();
    let i = at(&t, |r| {
        r.node == 1 && matches!(&r.entry, Entry::View(v) if v.id == b)
    });
    if let Entry::View(v) = &mut t[i].entry {
        v.members.push(endpoint_id(2));
    }
    let v = check_with(VSYNC, &t, &e);
    assert!(names(&v).contains(&"view agreement"), "{v:?}");
    assert!(
        v.iter().any(|v| v.what.contains("members [n0 n1 n2]")),
        "{v:?}"
    );

    // n0 never got n2's last cast, which n1 got in A: they moved to B together.
    let mut t = good.clone();
    t.retain(|r| !is_delivery(r, 0, cast(2, 1)));
    let v = check_with(VSYNC, &t, &e);
    assert!(names(&v).contains(&"virtual synchrony"), "{v:?}");
    assert!(
        v.iter()
            .any(|v| v.what.contains("only n1 delivered cast n2#1")),
        "{v:?}"
    );
}

#[test]
fn the_checker_catches_deliveries_in_the_wrong_view() {
    let (good, e) = good_membership_trace();

    // n0 delivers n1's held cast (sent in B) while still in A.
    let mut t = good.clone();
    let i = at(&t, |r| is_delivery(r, 0, cast(1, 1)));
    let d = t.remove(i);
    let j = at(&t, |r| {
        r.node == 0 && matches!(&r.entry, Entry::View(v) if v.id == vid(2, 0))
    });
    t.insert(j, Record { time: d.time, ..d });
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter().any(|v| v.check == "sender's view"
            && v.what
                .contains("held it for a next view it has not installed")),
        "{v:?}"
    );

    // n3 delivers a cast sent in A, in C.
    let mut t = good.clone();
    t.push(delivered_from(50, 3, cast(2, 0), 0));
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter()
            .any(|v| v.check == "sender's view" && v.what.contains("which n2 is not a member of")),
        "{v:?}"
    );

    // A cast delivered with the wrong rank for the receiver's view.
    let mut t = good.clone();
    let i = at(&t, |r| is_delivery(r, 1, cast(3, 1)));
    if let Entry::Delivered(d) = &mut t[i].entry {
        d.from_rank = 3;
    }
    let v = check_with(VSYNC, &t, &e);
    assert_eq!(names(&v), ["no creation"], "{v:?}");
}

#[test]
fn the_checker_catches_missing_deliveries_between_views() {
    let (good, e) = good_membership_trace();

    // n1 moved from A to B with n0 but never got n0's cast #1 sent in A.
    let mut t = good.clone();
    t.retain(|r| !is_delivery(r, 1, cast(0, 1)));
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter().any(|v| v.check == "reliable delivery"
            && v.what
                .contains("sent in view 1@n0 which both moved on from to 2@n0")),
        "{v:?}"
    );

    // n1 never delivers its own held cast in B.
    let mut t = good.clone();
    t.retain(|r| !is_delivery(r, 1, cast(1, 1)));
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter().any(|v| v.check == "self-delivery"
            && v.what
                .contains("installed view 3@n0 without delivering 1 of its own casts")),
        "{v:?}"
    );

    // The joiner n3 starts its stream in C at #1: fine. But skipping n1's
    // first cast of C at n3 is a FIFO gap within the view.
    let mut t = good.clone();
    t.retain(|r| !is_delivery(r, 3, cast(1, 2)));
    t.push(accepted(36, 1, cast(1, 3), false));
    for n in [0, 1, 3] {
        t.push(delivered_from(37, n, cast(1, 3), 1));
    }
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter()
            .any(|v| v.check == "fifo" && v.what.contains("delivered cast n1#3 while #2 was due")),
        "{v:?}"
    );

    // A send to n1 in C never delivered, sender and receiver staying in C.
    let mut t = good.clone();
    t.retain(|r| !is_delivery(r, 1, send(3, 1, 0)));
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter().any(|v| v.check == "reliable delivery"
            && v.what.contains("n3's sends to n1")
            && v.what.contains("where both ended")),
        "{v:?}"
    );
}

#[test]
fn the_checker_catches_events_after_exit_and_leaves_without_exit() {
    let (mut t, mut e) = good_membership_trace();
    t.push(rec(41, 3, Entry::Leave));
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter()
            .any(|v| v.check == "exit last" && v.what.contains("never received Exit")),
        "{v:?}"
    );
    t.push(rec(42, 3, Entry::Exit));
    t.push(delivered(43, 3, cast(3, 1)));
    e.nodes[3].live = false;
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter()
            .any(|v| v.check == "exit last" && v.what.contains("after Exit")),
        "{v:?}"
    );
}

#[test]
fn the_checker_states_and_enforces_a_liveness_bound() {
    let (good, e) = good_membership_trace();
    // n3 never merged: two views at the end.
    let mut t = good.clone();
    t.retain(|r| !(r.node == 3 && matches!(&r.entry, Entry::View(v) if v.id == vid(3, 0))));
    t.retain(|r| !(r.node == 3 && matches!(&r.entry, Entry::Delivered(_))));
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter().any(|v| v.check == "liveness"
            && v.what.contains("never converged")
            && v.what.contains("bound 2.450 s")),
        "{v:?}"
    );
    // Converged, but 3 s after the last fault: too late.
    let mut t = good.clone();
    let faults = at(&t, |r| r.entry == Entry::FaultsOver);
    t[faults].time = Instant::from_millis(1);
    let mut late = t.clone();
    for r in late.iter_mut().filter(|r| r.node == 3) {
        if matches!(&r.entry, Entry::View(v) if v.id == vid(3, 0)) {
            r.time = Instant::from_millis(3_100);
        }
    }
    let v = check_with(VSYNC, &late, &e);
    assert!(
        v.iter()
            .any(|v| v.check == "liveness" && v.what.contains("only at 3.100 s")),
        "{v:?}"
    );
}

#[test]
fn the_checker_catches_two_concurrent_primary_views() {
    let (mut t, e) = good_membership_trace();
    // n3's own first view claims to be primary beside B.
    let i = at(&t, |r| {
        r.node == 3 && matches!(&r.entry, Entry::View(v) if v.id == vid(0, 3))
    });
    if let Entry::View(v) = &mut t[i].entry {
        v.primary = true;
    }
    let v = check_with(VSYNC, &t, &e);
    assert!(
        v.iter().any(|v| v.check == "primary"
            && v.what
                .contains("holds only 0 of the 2 members of the previous primary view 2@n0")),
        "{v:?}"
    );
}
