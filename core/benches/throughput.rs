//! Casts per second through the sans-IO core alone (no sockets), and heap
//! allocations per message.
//!
//! `cargo bench -p consort-core --bench throughput [-- --casts N]`
//!
//! Four endpoints with the `Frag:Flow` stack; member 0 casts, and every
//! datagram any endpoint emits is handed straight to its destination. A cast
//! counts once it has been delivered at all four members (its sender
//! included, through Local). The harness moves datagrams through a fixed
//! stack buffer, so every allocation the counting allocator sees during the
//! measured loop comes from the core.
// Tests and benchmarks fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The counting allocator needs `unsafe impl GlobalAlloc`; nothing else here is unsafe.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

mod common;

use common::{Ep, cast_all, group};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MEMBERS: usize = 4;

struct Run {
    casts: u64,
    seconds: f64,
    allocs: u64,
    datagrams: u64,
}

fn run(payload: usize, casts: u64) -> Run {
    let mut eps: Vec<Ep<8>> = group("Frag:Flow", MEMBERS, 4096);
    let msg = vec![0x5au8; payload];
    let mut delivered = [0u64; MEMBERS];
    let allocs_before = ALLOCS.load(Ordering::Relaxed);
    let r = cast_all(&mut eps, 0, &msg, casts, &mut delivered);
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs_before;
    if std::env::var_os("BENCH_STATS").is_some() {
        eprintln!("rounds {}, virtual time {:?}", r.rounds, r.now);
        for ep in &eps {
            eprintln!("{:?}", ep.stats());
        }
    }
    Run {
        casts,
        seconds: r.seconds,
        allocs,
        datagrams: r.datagrams,
    }
}

fn main() {
    let mut casts = 200_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--casts" {
            casts = args.next().and_then(|v| v.parse().ok()).expect("--casts N");
        }
    }
    println!(
        "consort-core throughput: stack Frag:Flow, {MEMBERS} members, member 0 casting, no sockets"
    );
    println!(
        "{:>8}  {:>12}  {:>16}  {:>10}  {:>12}  {:>18}",
        "payload", "casts", "casts/s (all 4)", "MB/s", "datagrams", "allocs per cast"
    );
    for payload in [64usize, 1024] {
        // A short warm-up, then the measured run.
        let _ = run(payload, casts / 20);
        let r = run(payload, casts);
        let rate = r.casts as f64 / r.seconds;
        println!(
            "{:>7}B  {:>12}  {:>16.0}  {:>10.1}  {:>12}  {:>18.4}",
            payload,
            r.casts,
            rate,
            rate * payload as f64 / 1e6,
            r.datagrams,
            r.allocs as f64 / r.casts as f64
        );
    }
}
