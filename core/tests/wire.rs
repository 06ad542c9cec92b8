//! Pins the exact bytes of a few datagrams, so that an accidental change of
//! the wire format (docs/wire.md) fails loudly.
// Tests and benchmarks fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use consort_core::{Instant, Rank};

const STACK: &str = "Frag:Flow";

fn first_datagram(ep: &mut Ep) -> (std::net::SocketAddr, Vec<u8>) {
    let t = ep.poll_transmit().expect("a datagram");
    (t.destination, t.contents.to_vec())
}

/// The 28-byte prefix: "CS", version 1, flags 0, key epoch 0, reserved 0,
/// sender rank, FNV-1a of "test-group", view ltime 0, coordinator id 1.
fn prefix(sender: u16) -> Vec<u8> {
    let mut p = vec![b'C', b'S', 1, 0, 0, 0];
    p.extend_from_slice(&sender.to_be_bytes());
    p.extend_from_slice(
        &consort_core::GroupId::from_name("test-group")
            .0
            .to_be_bytes(),
    );
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&1u64.to_be_bytes());
    p
}

#[test]
fn group_id_of_the_test_group_is_pinned() {
    // FNV-1a 64 of "test-group", computed independently.
    assert_eq!(
        consort_core::GroupId::from_name("test-group").0,
        0xcad4_c4e2_f6bb_01fb
    );
}

#[test]
fn a_cast_on_the_wire() {
    let mut eps = group(2, STACK, "");
    eps[1].cast(Instant::ZERO, b"hi").unwrap();
    let (dest, bytes) = first_datagram(&mut eps[1]);
    assert_eq!(dest, addr(0));
    let mut expected = prefix(1);
    expected.extend_from_slice(&[
        0x00, // Bottom: Cast
        0x01, 0x00, // Mnak: Data(0)
        0x00, // Stable: Data
        0x00, // Frag: Whole
    ]);
    expected.extend_from_slice(b"hi");
    assert_eq!(bytes, expected);
}

#[test]
fn a_send_on_the_wire() {
    let mut eps = group(3, STACK, "");
    eps[0].send(Instant::ZERO, Rank(2), b"yo").unwrap();
    let (dest, bytes) = first_datagram(&mut eps[0]);
    assert_eq!(dest, addr(2));
    let mut expected = prefix(0);
    expected.extend_from_slice(&[
        0x01, 0x02, // Bottom: Send(to rank 2)
        0x00, // Mnak: Plain
        0x01, 0x00, // Pt2pt: Data(0)
        0x00, // Frag: Whole
    ]);
    expected.extend_from_slice(b"yo");
    assert_eq!(bytes, expected);
}

#[test]
fn a_fragmented_cast_and_a_stability_gossip_on_the_wire() {
    let mut eps = group(2, STACK, "frag_size=100:stable_sweep=1s");
    eps[0].cast(Instant::ZERO, &[7u8; 150]).unwrap();
    let (_, first) = first_datagram(&mut eps[0]);
    let (_, second) = first_datagram(&mut eps[0]);
    assert_eq!(
        &first[28..33],
        &[0x00, 0x01, 0x00, 0x00, 0x01],
        "Cast, Data(0), Data, More"
    );
    assert_eq!(first.len(), 28 + 5 + 100);
    assert_eq!(
        &second[28..33],
        &[0x00, 0x01, 0x01, 0x00, 0x02],
        "Cast, Data(1), Data, Last"
    );
    assert_eq!(second.len(), 28 + 5 + 50);
    assert!(eps[0].poll_transmit().is_none());

    // At the first sweep the row [2 casts from rank 0, 0 from rank 1] is gossiped.
    eps[0].handle_timeout(Instant::from_secs(1));
    let (_, gossip) = first_datagram(&mut eps[0]);
    let mut expected = prefix(0);
    expected.extend_from_slice(&[
        0x00, // Bottom: Cast
        0x00, // Mnak: Unrel
        0x01, // Stable: Gossip
        0x02, 0x02, 0x00, // the row, postcard: length 2, then 2 and 0
    ]);
    assert_eq!(gossip, expected);
}
