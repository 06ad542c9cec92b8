//! Every datagram is hostile: whatever bytes arrive, the endpoint neither
//! panics nor leaks, and it counts what it drops.
// Tests and benchmarks fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use consort_core::{Instant, Rank};
use proptest::prelude::*;

/// A few real datagrams of a group, to mutate.
fn real_datagrams() -> Vec<Vec<u8>> {
    let mut eps = group(3, "Frag:Flow", "frag_size=64");
    let now = Instant::ZERO;
    eps[1].cast(now, b"a cast").unwrap();
    eps[1].cast(now, &[9u8; 200]).unwrap();
    eps[1].send(now, Rank(0), b"a send").unwrap();
    eps[1].handle_timeout(Instant::from_secs(1));
    let mut out = Vec::new();
    while let Some(t) = eps[1].poll_transmit() {
        if t.destination == addr(0) {
            out.push(t.contents.to_vec());
        }
    }
    out
}

/// Feeds `data` to member 0 as if from member 1, then checks the pool is clean.
fn feed(data: &[u8]) {
    let mut eps = group(3, "Frag:Flow", "frag_size=64");
    let mut got = vec![Vec::new(); 3];
    eps[0].handle_datagram(Instant::ZERO, addr(1), data);
    drain_events(&mut eps[0], &mut got[0]);
    while eps[0].poll_transmit().is_some() {}
    let s = eps[0].stats();
    let accounted = s.malformed + s.wrong_group + s.wrong_view + s.not_member + s.duplicates;
    // Either some layer took it or some counter says why not.
    assert!(
        accounted > 0
            || !got[0].is_empty()
            || eps[0].pool_usage().0 > 0
            || s.naks > 0
            || s.acks > 0
    );
    assert_eq!(s.queue_overflow, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1200)) {
        feed(&data);
    }

    #[test]
    fn mutated_datagrams_never_panic(pick in 0usize..16, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let real = real_datagrams();
        let mut d = real[pick % real.len()].clone();
        for (at, x) in flips {
            let i = at % d.len();
            d[i] ^= x;
        }
        if cut % 3 == 0 {
            d.truncate(cut % (d.len() + 1));
        }
        feed(&d);
    }

    #[test]
    fn real_prefix_with_random_headers_never_panics(pick in 0usize..16, tail in proptest::collection::vec(any::<u8>(), 0..80)) {
        let real = real_datagrams();
        let mut d = real[pick % real.len()][..28].to_vec();
        d.extend_from_slice(&tail);
        feed(&d);
    }
}

#[test]
fn oversized_datagrams_are_counted() {
    let mut eps = group(2, "Frag", "");
    eps[0].handle_datagram(Instant::ZERO, addr(1), &vec![0u8; 5000]);
    assert_eq!(eps[0].stats().malformed, 1);
    assert_eq!(eps[0].pool_usage().0, 0);
}
