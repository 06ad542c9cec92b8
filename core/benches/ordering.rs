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

mod common;

use common::{Ep, SLOT, cast_all, group};

const SLOTS: usize = 4096;
const CASTER: usize = 1;

/// Seconds to deliver `casts` casts of `payload` bytes at all `n` members.
fn run(properties: &str, n: usize, payload: usize, casts: u64) -> f64 {
    let mut eps: Vec<Ep<16>> = group(properties, n, SLOTS);
    let mut delivered = vec![0u64; n];
    cast_all(
        &mut eps,
        CASTER,
        &vec![0x5au8; payload],
        casts,
        &mut delivered,
    )
    .seconds
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
