//! Casts per second through the sans-IO core with and without Total.
//!
//! `cargo bench -p consort-core --bench ordering [-- --casts N]`
//!
//! A static group of 4 or 16 endpoints with the `Frag:Flow` or
//! `Frag:Flow:Total` stack; member 1 (not the sequencer, so that each of
//! its casts waits for an order) casts 64-byte messages, and every
//! datagram any endpoint emits is handed straight to its destination. A
//! cast counts once it has been delivered at every member, its sender
//! included. Virtual time moves a microsecond per round so that timers
//! (stability gossip, which Total's sequencer waits on to order more)
//! run; the figure is casts per second of real time.
// Benchmarks fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use consort_core::{Config, Endpoint, EndpointId, Event, Instant, Member, SLOT_OVERHEAD};

const SLOT: usize = 1472;
const SLOTS: usize = 4096;
const CASTER: usize = 1;
type Ep = Endpoint<16, Vec<u8>>;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 7000))
}

/// Seconds to deliver `casts` casts of `payload` bytes at all `n` members.
fn run(properties: &str, n: usize, payload: usize, casts: u64) -> f64 {
    let members: Vec<Member> = (0..n)
        .map(|i| Member {
            id: EndpointId(i as u64 + 1),
            addr: addr(i),
        })
        .collect();
    let mut eps: Vec<Ep> = (0..n)
        .map(|i| {
            let cfg =
                Config::new("bench", EndpointId(i as u64 + 1), i as u64).properties(properties);
            Endpoint::new(
                &cfg,
                &members,
                vec![0u8; SLOTS * (SLOT + SLOT_OVERHEAD)],
                SLOT,
            )
            .unwrap()
        })
        .collect();
    let msg = vec![0x5au8; payload];
    let mut delivered = vec![0u64; n];
    let mut buf = [0u8; SLOT];
    let mut now = Instant::ZERO;
    let mut sent = 0u64;
    let start = std::time::Instant::now();
    while delivered.iter().any(|d| *d < casts) {
        if sent < casts && eps[CASTER].cast(now, &msg).is_ok() {
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
    start.elapsed().as_secs_f64()
}

fn main() {
    let mut casts = 50_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--casts" {
            casts = args.next().and_then(|v| v.parse().ok()).expect("--casts N");
        }
    }
    println!(
        "consort-core casts/s with and without Total: member {CASTER} casting 64 B, no sockets, {SLOTS} slots of {SLOT} B"
    );
    println!(
        "{:>8}  {:<16}  {:>10}  {:>16}",
        "members", "properties", "casts", "casts/s (at all)"
    );
    for n in [4usize, 16] {
        for p in ["Frag:Flow", "Frag:Flow:Total"] {
            let _ = run(p, n, 64, casts / 20);
            let s = run(p, n, 64, casts);
            println!("{n:>8}  {p:<16}  {casts:>10}  {:>16.0}", casts as f64 / s);
        }
    }
}
