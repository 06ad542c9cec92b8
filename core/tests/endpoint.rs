//! Endpoint behaviour through its public API: delivery, flow control,
//! every bound reached, configuration errors, and memory figures.
// Tests and benchmarks fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use consort_core::profile::{Profile, Server, Small};
use consort_core::{
    Config, ConfigError, Endpoint, EndpointId, Instant, Member, Rank, SendError, ServerEndpoint,
    SmallEndpoint,
};

fn casts_from(got: &[Delivery], rank: u16) -> Vec<Vec<u8>> {
    got.iter()
        .filter(|d| d.0 == "cast" && d.1 == rank)
        .map(|d| d.2.clone())
        .collect()
}

#[test]
fn casts_and_sends_arrive_once_in_order_everywhere() {
    let mut eps = group(3, "Frag:Flow", "");
    let mut got = vec![Vec::new(); 3];
    let now = Instant::ZERO;
    let big: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    eps[0].cast(now, b"one").unwrap();
    eps[0].cast(now, &big).unwrap();
    eps[0].send(now, Rank(2), b"private").unwrap();
    eps[1].cast(now, b"two").unwrap();
    settle(&mut eps, now, &mut got);
    for g in &got {
        assert_eq!(casts_from(g, 0), vec![b"one".to_vec(), big.clone()]);
        assert_eq!(casts_from(g, 1), vec![b"two".to_vec()]);
    }
    assert_eq!(
        got[2].iter().filter(|d| d.0 == "send").collect::<Vec<_>>(),
        [&("send", 0, b"private".to_vec())]
    );
    assert!(got[1].iter().all(|d| d.0 != "send"));
    // Once everything is stable, every buffer is back in the pool.
    let now = run_for(&mut eps, now, 3, &mut got);
    let _ = now;
    for ep in &eps {
        assert_eq!(ep.pool_usage().0, 0, "{:?}", ep.stats());
    }
}

#[test]
fn flow_control_blocks_a_fast_sender_then_reopens() {
    let mut eps = group(2, "Frag:Flow", "flow_window=1000:stable_threshold=4");
    let mut got = vec![Vec::new(); 2];
    let now = Instant::ZERO;
    let mut accepted = 0;
    let err = loop {
        match eps[0].cast(now, &[1u8; 100]) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, SendError::WouldBlock);
    // The window counts the bytes Mnak keeps: payload plus the one-byte
    // headers of Stable and Frag, so 102 bytes a cast and 9 fit in 1000.
    assert_eq!(accepted, 9);
    assert_eq!(eps[0].stats().would_block, 1);
    // The receiver acknowledges; stability frees the window; Writable says so.
    settle(&mut eps, now, &mut got);
    assert!(
        got[0].iter().any(|d| d.0 == "writable"),
        "{:?}",
        got[0].iter().map(|d| d.0).collect::<Vec<_>>()
    );
    eps[0].cast(now, &[2u8; 100]).unwrap();
}

#[test]
fn a_message_larger_than_the_window_still_goes_when_nothing_is_outstanding() {
    let mut eps = group(2, "Frag:Flow", "flow_window=1000");
    assert_eq!(
        eps[0].cast(Instant::ZERO, &[0u8; 3000]),
        Ok(consort_core::SendView::Current)
    );
}

#[test]
fn too_large_and_bad_destinations_are_refused() {
    let mut eps = group(2, "Flow", "");
    let max = eps[0].max_message();
    assert_eq!(
        eps[0].cast(Instant::ZERO, &vec![0; max + 1]),
        Err(SendError::TooLarge { len: max + 1, max })
    );
    assert_eq!(
        eps[0].send(Instant::ZERO, Rank(0), b"x"),
        Err(SendError::SendToSelf)
    );
    assert_eq!(
        eps[0].send(Instant::ZERO, Rank(5), b"x"),
        Err(SendError::NoSuchMember(5))
    );
    assert!(eps[0].cast(Instant::ZERO, &vec![0; max]).is_ok());
}

#[test]
fn an_undrained_transmit_queue_blocks_casts_instead_of_losing_them() {
    let mut eps = group(2, "Frag", "");
    let mut got = vec![Vec::new(); 2];
    let now = Instant::ZERO;
    // The runtime does not take datagrams for a while; events are drained.
    let mut accepted = 0u8;
    while eps[0].cast(now, &[accepted; 10]).is_ok() {
        accepted += 1;
        drain_events(&mut eps[0], &mut got[0]);
    }
    assert!(accepted > 10, "{accepted}");
    assert_eq!(eps[0].stats().tx_queue_full, 0, "back-pressure, not loss");
    run_for(&mut eps, now, 5, &mut got);
    assert!(got[0].iter().any(|d| d.0 == "writable"));
    let at_1 = casts_from(&got[1], 0);
    assert_eq!(at_1.len(), accepted as usize);
    assert!(
        at_1.iter().enumerate().all(|(i, m)| m[0] == i as u8),
        "FIFO"
    );
}

#[test]
fn an_application_that_does_not_drain_events_sheds_load_without_losing_messages() {
    let mut eps = group(2, "Frag:Flow", "");
    let mut got = vec![Vec::new(); 2];
    let now = Instant::ZERO;
    // Member 1 takes datagrams but does not poll its events. Member 0 casts
    // until the pool window says wait: member 1 stopped acknowledging.
    let mut sent = 0;
    while sent < 150 && eps[0].cast(now, &[sent as u8; 20]).is_ok() {
        sent += 1;
        drain_events(&mut eps[0], &mut got[0]);
        while let Some(t) = eps[0].poll_transmit() {
            let b = t.contents.to_vec();
            eps[1].handle_datagram(now, addr(0), &b);
        }
    }
    assert!(eps[1].stats().backlog > 0, "{:?}", eps[1].stats());
    // Once it drains, NAKs recover what was shed, in order.
    run_for(&mut eps, now, 10, &mut got);
    let at_1 = casts_from(&got[1], 0);
    assert_eq!(at_1.len(), sent);
    assert!(
        at_1.iter().enumerate().all(|(i, m)| m[0] == i as u8),
        "FIFO"
    );
}

#[test]
fn configuration_errors_name_what_is_wrong() {
    let m = members(3);
    let new = |cfg: Config<'_>, members: &[Member], slot: usize, bytes: usize| {
        Endpoint::<4, _>::new(&cfg, members, vec![0u8; bytes], slot).err()
    };
    let base = |id| Config::new("g", EndpointId(id), 0);
    let pool = 256 * 1036;
    assert_eq!(new(base(9), &m, 1024, pool), Some(ConfigError::NotInView));
    assert_eq!(
        new(Config::new("", EndpointId(1), 0), &m, 1024, pool),
        Some(ConfigError::EmptyGroupName)
    );
    let dup = [m[0], m[0]];
    assert_eq!(
        new(base(1), &dup, 1024, pool),
        Some(ConfigError::DuplicateMember(1))
    );
    let many = members(5);
    assert_eq!(
        new(base(1), &many, 1024, pool),
        Some(ConfigError::TooManyMembers {
            members: 5,
            capacity: 4
        })
    );
    assert!(matches!(
        new(base(1), &m, 40, pool),
        Some(ConfigError::SlotTooSmall { .. })
    ));
    assert!(matches!(
        new(base(1), &m, 1024, 10 * 1036),
        Some(ConfigError::PoolTooSmall { .. })
    ));
    // Too small for even the acknowledgement matrix: said in bytes.
    assert_eq!(
        new(base(1), &m, 1024, 8),
        Some(ConfigError::StorageTooSmall {
            needed: 4 * 4 * 4,
            available: 8
        })
    );
    assert!(matches!(
        new(base(1).params("frag_max=1000000"), &m, 1024, pool),
        Some(ConfigError::TooManyFragments {
            limit: consort_core::MAX_FRAGMENTS,
            ..
        })
    ));
    assert!(matches!(
        new(base(1).properties("Frag:Totall"), &m, 1024, pool),
        Some(ConfigError::UnknownProperty(_))
    ));
    assert!(matches!(
        new(base(1).stack("Top:Mnak:Bottom"), &m, 1024, pool),
        Some(ConfigError::NeedsAbove { .. })
    ));
    assert!(matches!(
        new(base(1).params("flow_windw=3"), &m, 1024, pool),
        Some(ConfigError::UnknownParam(_))
    ));
    // Each error prints a sentence naming the culprit.
    let e = new(base(1).properties("Frag:Totall"), &m, 1024, pool).unwrap();
    assert_eq!(e.to_string(), "unknown property \"Totall\"");
}

/// Reports what an endpoint takes in each profile (README "Memory").
/// Run with `cargo test -p consort-core --test endpoint memory -- --nocapture`.
#[test]
fn memory_per_profile() {
    let small = std::mem::size_of::<SmallEndpoint>();
    let small_state = small - Small::POOL_BYTES;
    let server_state = std::mem::size_of::<ServerEndpoint<Vec<u8>>>();
    println!("profile  members  slot  slots  pool bytes  state bytes  total");
    println!(
        "small    {:>7}  {:>4}  {:>5}  {:>10}  {:>11}  {:>5}",
        Small::MEMBERS,
        Small::SLOT_SIZE,
        Small::SLOTS,
        Small::POOL_BYTES,
        small_state,
        small
    );
    println!(
        "server   {:>7}  {:>4}  {:>5}  {:>10}  {:>11}  {:>5}",
        Server::MEMBERS,
        Server::SLOT_SIZE,
        Server::SLOTS,
        Server::POOL_BYTES,
        server_state,
        Server::POOL_BYTES + server_state
    );
    // Guards against accidental growth, with room to spare.
    assert!(
        small_state < 24 * 1024,
        "small profile state grew to {small_state} bytes"
    );
    assert!(
        server_state < 768 * 1024,
        "server profile state grew to {server_state} bytes"
    );

    // Both profiles build and run with their own storage.
    let me = Member {
        id: EndpointId(1),
        addr: addr(0),
    };
    let mut s: SmallEndpoint = SmallEndpoint::new(
        &Config::new("g", me.id, 1),
        &[me],
        [0u8; Small::POOL_BYTES],
        Small::SLOT_SIZE,
    )
    .unwrap();
    s.cast(Instant::ZERO, b"x").unwrap();
    let mut b = Box::new(
        ServerEndpoint::new(
            &Config::new("g", me.id, 1),
            &[me],
            vec![0u8; Server::POOL_BYTES],
            Server::SLOT_SIZE,
        )
        .unwrap(),
    );
    b.cast(Instant::ZERO, b"x").unwrap();
    println!(
        "small max message {} B, server max message {} B",
        s.max_message(),
        b.max_message()
    );
}

/// Every profile must carry every stack: the headers of the longest stack
/// and Gmp's largest report must fit its datagrams. (A report that grew
/// once made the server profile refuse the membership stack.)
#[test]
fn every_profile_builds_every_stack() {
    let me = Member {
        id: EndpointId(1),
        addr: addr(0),
    };
    for properties in [
        "Frag:Flow",
        "Gmp:Sync:Heal:Frag:Suspect:Flow:Slander",
        "Gmp:Sync:Heal:Frag:Suspect:Flow:Slander:Primary:Switch",
    ] {
        let config = Config::new("g", me.id, 1).properties(properties);
        let small = SmallEndpoint::new(&config, &[me], [0u8; Small::POOL_BYTES], Small::SLOT_SIZE);
        assert!(
            small.is_ok(),
            "small profile, {properties}: {:?}",
            small.err()
        );
        let server = ServerEndpoint::new(
            &config,
            &[me],
            vec![0u8; Server::POOL_BYTES],
            Server::SLOT_SIZE,
        )
        .map(Box::new);
        assert!(
            server.is_ok(),
            "server profile, {properties}: {:?}",
            server.err()
        );
    }
}
