//! A tiny lossless in-memory network for endpoint tests.

#![allow(dead_code)]

pub(crate) mod world;

use consort_core::{Config, Endpoint, EndpointId, Event, Instant, Member};
use std::net::SocketAddr;

/// Endpoints of a test group, up to 8 members, pools on the heap.
pub(crate) type Ep = Endpoint<8, Vec<u8>>;

pub(crate) fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 7000))
}

pub(crate) fn members(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| Member {
            id: EndpointId(i as u64 + 1),
            addr: addr(i),
        })
        .collect()
}

/// A group of `n` endpoints with the given properties and params.
pub(crate) fn group(n: usize, properties: &str, params: &str) -> Vec<Ep> {
    let m = members(n);
    (0..n)
        .map(|i| {
            let cfg = Config::new("test-group", EndpointId(i as u64 + 1), i as u64 + 99)
                .properties(properties)
                .params(params);
            Endpoint::new(
                &cfg,
                &m,
                vec![0u8; 512 * (1024 + consort_core::SLOT_OVERHEAD)],
                1024,
            )
            .unwrap()
        })
        .collect()
}

/// What a member received: (kind, from rank, bytes).
pub(crate) type Delivery = (&'static str, u16, Vec<u8>);

/// Delivers every datagram until the network is quiet, collecting events.
pub(crate) fn settle(eps: &mut [Ep], now: Instant, got: &mut [Vec<Delivery>]) {
    loop {
        let mut moved = false;
        for i in 0..eps.len() {
            drain_events(&mut eps[i], &mut got[i]);
            while let Some(t) = eps[i].poll_transmit() {
                let (dest, bytes) = (t.destination, t.contents.to_vec());
                moved = true;
                if let Some(j) = (0..eps.len()).find(|j| addr(*j) == dest) {
                    eps[j].handle_datagram(now, addr(i), &bytes);
                }
            }
            drain_events(&mut eps[i], &mut got[i]);
        }
        if !moved {
            return;
        }
    }
}

pub(crate) fn drain_events(ep: &mut Ep, got: &mut Vec<Delivery>) {
    while let Some(ev) = ep.poll_event() {
        match ev {
            Event::Cast { from, payload, .. } => got.push((
                "cast",
                from.0,
                payload.chunks().flatten().copied().collect(),
            )),
            Event::Send { from, payload, .. } => got.push((
                "send",
                from.0,
                payload.chunks().flatten().copied().collect(),
            )),
            Event::Writable => got.push(("writable", 0, Vec::new())),
            _ => {}
        }
    }
}

/// Runs timers and traffic for `secs` virtual seconds in 10 ms steps.
pub(crate) fn run_for(
    eps: &mut [Ep],
    from: Instant,
    secs: u64,
    got: &mut [Vec<Delivery>],
) -> Instant {
    let mut now = from;
    let end = from + std::time::Duration::from_secs(secs);
    while now < end {
        now = now + std::time::Duration::from_millis(10);
        for ep in eps.iter_mut() {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
        }
        settle(eps, now, got);
    }
    now
}
