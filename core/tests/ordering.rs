//! Subcast and Total through the endpoint's API, in the small virtual-time
//! world: a subcast keeps FIFO with its sender's casts, reaches exactly its
//! destinations, is ordered with the casts by Total, and is flushed like a
//! cast when its sender fails.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::world::*;
use consort_core::EndpointId;
use std::time::Duration;

const PROPERTIES: &str = "Gmp:Sync:Heal:Frag:Suspect:Flow:Slander:Subcast:Total";

/// (origin node, kind byte, payload) of every cast and send node `i`
/// delivered between its `k`-th and `k+1`-th view. Payloads are `[origin,
/// number, b'c' or b's', ...]`.
fn delivered_in_view(w: &World, i: usize, k: usize) -> Vec<Vec<u8>> {
    let seen = &w.nodes[&i].seen;
    let views: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Seen::View { .. }))
        .map(|(p, _)| p)
        .collect();
    let end = views.get(k + 1).copied().unwrap_or(seen.len());
    seen[views[k] + 1..end]
        .iter()
        .filter_map(|s| match s {
            Seen::Cast { bytes, .. } | Seen::Send { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

fn subcast(w: &mut World, i: usize, to: &[usize], bytes: &[u8]) {
    let ids: Vec<EndpointId> = to.iter().map(|t| EndpointId(w.id(*t))).collect();
    let now = w.now;
    w.nodes
        .get_mut(&i)
        .unwrap()
        .ep
        .send_to_many(now, &ids, bytes)
        .unwrap();
    w.drain(i);
}

#[test]
fn subcasts_keep_fifo_with_casts_are_totally_ordered_and_are_flushed_like_casts() {
    let mut w = World::new();
    for i in 0..4 {
        w.join(i, PROPERTIES, FAST, &[0]);
        w.run(Duration::from_millis(300));
    }
    w.run(Duration::from_secs(2));
    // What each node sent, in order: (payload, destinations).
    let mut sent: Vec<Vec<(Vec<u8>, Vec<usize>)>> = vec![Vec::new(); 4];
    for k in 0..12u8 {
        for (i, mine) in sent.iter_mut().enumerate() {
            let others: Vec<usize> = (0..4).filter(|j| *j != i).collect();
            let c = vec![i as u8, k, b'c'];
            w.cast(i, &c);
            mine.push((c, others));
            let to = vec![(i + 1) % 4, (i + 2) % 4];
            let s = vec![i as u8, k, b's'];
            subcast(&mut w, i, &to, &s);
            mine.push((s, to));
        }
        w.run(Duration::from_millis(2));
    }
    // Node 3's datagrams now reach node 1 only, which is not a destination
    // of its last subcast; then node 3 crashes.
    w.cut = vec![(addr(3), addr(0)), (addr(3), addr(2))];
    let last = vec![3u8, 99, b's'];
    subcast(&mut w, 3, &[0, 2], &last);
    sent[3].push((last.clone(), vec![0, 2]));
    w.run(Duration::from_millis(5));
    w.crash(3);
    w.cut.clear();
    w.run(Duration::from_secs(3));
    for i in 0..3 {
        assert_eq!(w.view_of(i).len(), 3, "node {i}: {:?}", w.view_of(i));
    }
    // Everything below is about the four-member view the survivors left
    // together: each one's second-to-last view.
    let got: Vec<Vec<Vec<u8>>> = (0..3)
        .map(|i| {
            let n = w.views_seen(i).len();
            delivered_in_view(&w, i, n - 2)
        })
        .collect();
    for (r, mine) in got.iter().enumerate() {
        for (o, theirs) in sent.iter().enumerate().filter(|(o, _)| *o != r) {
            // Exactly what was addressed to r, in o's order.
            let want: Vec<&Vec<u8>> = theirs
                .iter()
                .filter(|(_, to)| to.contains(&r))
                .map(|(b, _)| b)
                .collect();
            let had: Vec<&Vec<u8>> = mine.iter().filter(|b| b[0] == o as u8).collect();
            assert_eq!(had, want, "node {r} from node {o}");
        }
    }
    // The last subcast reached its destinations through node 1, which
    // held it as a cast, but node 1 did not deliver it.
    assert!(got[0].contains(&last) && got[2].contains(&last));
    assert!(!got[1].contains(&last));
    // Total: what two survivors both delivered, they delivered in the same
    // order (subcasts included: they are ordered like casts).
    for a in 0..3 {
        for b in a + 1..3 {
            let common_a: Vec<&Vec<u8>> = got[a].iter().filter(|m| got[b].contains(m)).collect();
            let common_b: Vec<&Vec<u8>> = got[b].iter().filter(|m| got[a].contains(m)).collect();
            assert_eq!(common_a, common_b, "nodes {a} and {b}");
        }
    }
}

#[test]
fn a_subcast_is_refused_without_the_layer_and_for_non_members() {
    let mut w = World::new();
    w.join(0, VSYNC, FAST, &[0]);
    w.join(1, PROPERTIES, FAST, &[1]);
    w.run(Duration::from_millis(300));
    let now = w.now;
    let ids = [EndpointId(w.id(1))];
    let e = w
        .nodes
        .get_mut(&0)
        .unwrap()
        .ep
        .send_to_many(now, &ids, b"x");
    assert!(
        matches!(e, Err(consort_core::SendError::NotInStack(_))),
        "{e:?}"
    );
    let stranger = [EndpointId(424_242)];
    let e = w
        .nodes
        .get_mut(&1)
        .unwrap()
        .ep
        .send_to_many(now, &stranger, b"x");
    assert!(
        matches!(e, Err(consort_core::SendError::NotAMember(424_242))),
        "{e:?}"
    );
}
