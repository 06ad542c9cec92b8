//! What the benchmarks share: a static group of endpoints in one thread,
//! every datagram handed straight from its sender to its destination.

// Each benchmark includes this module and uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use consort_core::{Config, Endpoint, EndpointId, Event, Instant, Member, SLOT_OVERHEAD};

/// Slot size: a datagram that fits an Ethernet frame.
pub(crate) const SLOT: usize = 1472;

/// An endpoint whose pool is a `Vec`.
pub(crate) type Ep<const M: usize> = Endpoint<M, Vec<u8>>;

/// Member `i`'s address.
pub(crate) fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 7000))
}

/// `n` endpoints already in one view with `properties`, each with a pool
/// of `slots` slots.
pub(crate) fn group<const M: usize>(properties: &str, n: usize, slots: usize) -> Vec<Ep<M>> {
    let members: Vec<Member> = (0..n)
        .map(|i| Member {
            id: EndpointId(i as u64 + 1),
            addr: addr(i),
        })
        .collect();
    (0..n)
        .map(|i| {
            let cfg =
                Config::new("bench", EndpointId(i as u64 + 1), i as u64).properties(properties);
            Endpoint::new(
                &cfg,
                &members,
                vec![0u8; slots * (SLOT + SLOT_OVERHEAD)],
                SLOT,
            )
            .unwrap()
        })
        .collect()
}

/// What [`cast_all`] measured.
pub(crate) struct Run {
    /// Real time until every cast was delivered everywhere.
    pub(crate) seconds: f64,
    /// Datagrams handed from one endpoint to another.
    pub(crate) datagrams: u64,
    /// Rounds of the loop (one microsecond of virtual time each).
    pub(crate) rounds: u64,
    /// Virtual time at the end.
    pub(crate) now: Instant,
}

/// Member `caster` casts `msg` `casts` times, as fast as the endpoint
/// accepts, until every member has delivered them all (`delivered` counts
/// per member, starting at zero). Virtual time moves a microsecond per
/// round so that timers (stability gossip) run. Allocates nothing: the
/// datagrams go through a buffer on the stack, so an allocation counter
/// around the call sees only the core's.
pub(crate) fn cast_all<const M: usize>(
    eps: &mut [Ep<M>],
    caster: usize,
    msg: &[u8],
    casts: u64,
    delivered: &mut [u64],
) -> Run {
    let n = eps.len();
    let mut buf = [0u8; SLOT];
    let mut now = Instant::ZERO;
    let (mut sent, mut datagrams, mut rounds) = (0u64, 0u64, 0u64);
    let start = std::time::Instant::now();
    while delivered.iter().any(|d| *d < casts) {
        rounds += 1;
        if sent < casts && eps[caster].cast(now, msg).is_ok() {
            sent += 1;
        }
        now = now + Duration::from_micros(1);
        for i in 0..n {
            if eps[i].poll_timeout().is_some_and(|t| t <= now) {
                eps[i].handle_timeout(now);
            }
            loop {
                let mut moved = false;
                while let Some(ev) = eps[i].poll_event() {
                    if let Event::Cast { .. } = ev {
                        delivered[i] += 1;
                    }
                }
                while let Some(t) = eps[i].poll_transmit() {
                    let len = t.contents.len();
                    let dest = t.destination;
                    buf[..len].copy_from_slice(t.contents);
                    datagrams += 1;
                    moved = true;
                    let j = (0..n).find(|j| addr(*j) == dest).unwrap();
                    eps[j].handle_datagram(now, addr(i), &buf[..len]);
                    while let Some(ev) = eps[j].poll_event() {
                        if let Event::Cast { .. } = ev {
                            delivered[j] += 1;
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
        }
    }
    Run {
        seconds: start.elapsed().as_secs_f64(),
        datagrams,
        rounds,
        now,
    }
}
