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
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use consort_core::{Config, Endpoint, EndpointId, Event, Instant, Member, SLOT_OVERHEAD};

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
const SLOT: usize = 1472;
type Ep = Endpoint<8, Vec<u8>>;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 7000))
}

struct Run {
    casts: u64,
    seconds: f64,
    allocs: u64,
    datagrams: u64,
}

fn run(payload: usize, casts: u64) -> Run {
    let members: Vec<Member> = (0..MEMBERS)
        .map(|i| Member {
            id: EndpointId(i as u64 + 1),
            addr: addr(i),
        })
        .collect();
    let mut eps: Vec<Ep> = (0..MEMBERS)
        .map(|i| {
            let cfg =
                Config::new("bench", EndpointId(i as u64 + 1), i as u64).properties("Frag:Flow");
            Endpoint::new(
                &cfg,
                &members,
                vec![0u8; 4096 * (SLOT + SLOT_OVERHEAD)],
                SLOT,
            )
            .unwrap()
        })
        .collect();
    let msg = vec![0x5au8; payload];
    let mut delivered = [0u64; MEMBERS];
    let mut datagrams = 0u64;
    let mut buf = [0u8; SLOT];
    let mut now = Instant::ZERO;
    let mut sent = 0u64;

    let allocs_before = ALLOCS.load(Ordering::Relaxed);
    let start = std::time::Instant::now();
    let mut rounds = 0u64;
    while delivered.iter().any(|d| *d < casts) {
        rounds += 1;
        if sent < casts && eps[0].cast(now, &msg).is_ok() {
            sent += 1;
        }
        // Virtual time moves a microsecond per round, so timers run too.
        now = now + Duration::from_micros(1);
        for i in 0..MEMBERS {
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
                    let n = t.contents.len();
                    let dest = t.destination;
                    buf[..n].copy_from_slice(t.contents);
                    datagrams += 1;
                    moved = true;
                    let j = (0..MEMBERS).find(|j| addr(*j) == dest).unwrap();
                    eps[j].handle_datagram(now, addr(i), &buf[..n]);
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
    let seconds = start.elapsed().as_secs_f64();
    if std::env::var_os("BENCH_STATS").is_some() {
        eprintln!("rounds {rounds}, virtual time {now:?}");
        for ep in &eps {
            eprintln!("{:?}", ep.stats());
        }
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs_before;
    Run {
        casts,
        seconds,
        allocs,
        datagrams,
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
