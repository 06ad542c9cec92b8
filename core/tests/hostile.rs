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

/// Feeds `data` to member 0 as if from member 1; the endpoint must neither
/// panic nor overflow, and must still work afterwards.
fn feed(data: &[u8]) {
    let mut eps = group(3, "Frag:Flow", "frag_size=64");
    let mut got = vec![Vec::new(); 3];
    eps[0].handle_datagram(Instant::ZERO, addr(1), data);
    eps[0].handle_timeout(Instant::from_secs(1));
    drain_events(&mut eps[0], &mut got[0]);
    while eps[0].poll_transmit().is_some() {}
    assert_eq!(eps[0].stats().queue_overflow, 0);
    // Whatever it swallowed, it still casts and delivers to itself.
    got[0].clear();
    eps[0].cast(Instant::from_secs(1), b"still alive").unwrap();
    drain_events(&mut eps[0], &mut got[0]);
    assert!(
        got[0]
            .iter()
            .any(|d| d.0 == "cast" && d.2 == b"still alive"),
        "{:?}",
        got[0]
    );
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
fn drops_are_counted_by_reason() {
    let real = real_datagrams();
    let mut eps = group(3, "Frag:Flow", "frag_size=64");
    let now = Instant::ZERO;
    let mut bad_magic = real[0].clone();
    bad_magic[0] ^= 0xff;
    eps[0].handle_datagram(now, addr(1), &bad_magic);
    let mut other_group = real[0].clone();
    other_group[10] ^= 1;
    eps[0].handle_datagram(now, addr(1), &other_group);
    let mut other_view = real[0].clone();
    other_view[19] ^= 1;
    eps[0].handle_datagram(now, addr(1), &other_view);
    eps[0].handle_datagram(now, addr(2), &real[0]); // wrong source address
    let s = eps[0].stats();
    assert_eq!(
        (s.malformed, s.wrong_group, s.wrong_view, s.not_member),
        (1, 1, 1, 1)
    );
    assert_eq!(eps[0].pool_usage().0, 0);
}

#[test]
fn oversized_datagrams_are_counted() {
    let mut eps = group(2, "Frag", "");
    eps[0].handle_datagram(Instant::ZERO, addr(1), &vec![0u8; 5000]);
    assert_eq!(eps[0].stats().malformed, 1);
    assert_eq!(eps[0].pool_usage().0, 0);
}
