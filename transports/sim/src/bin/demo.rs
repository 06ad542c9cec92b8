//! `simdemo`: a small group in the simulator, told as it happens.
//!
//! Three members with the default `Frag:Flow` properties on a network that
//! loses 5% of datagrams. Each member casts three messages of random size;
//! the demo prints, in virtual time, every cast and its delivery at every
//! member, then what the protocol did to get them there and the checker's
//! verdict (the main demo, on real sockets, is `consort-examples`' `demo`):
//!
//! ```text
//! cargo run --release -p consort-sim --bin simdemo [seed]
//! ```

use std::process::ExitCode;
use std::time::Duration;

use consort_sim::message::Kind;
use consort_sim::{Entry, Fault, Protocol, RunConfig, run};

fn main() -> ExitCode {
    if consort_sim::help_requested(
        "simdemo [seed]: three members with Frag:Flow in the simulator, 5% loss; every cast and delivery in virtual time, then the checker's verdict",
    ) {
        return ExitCode::SUCCESS;
    }
    let seed = match std::env::args().nth(1).map(|s| s.parse::<u64>()) {
        None => 1,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            eprintln!("simdemo: the seed must be a number: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = RunConfig::new(3, Protocol::Properties("Frag:Flow".into()));
    config.faults = vec![Fault::Loss(0.05)];
    config.workload.duration = Duration::from_secs(1);
    config.workload.mean_gap = Duration::from_millis(150);
    config.workload.cast_share = 1.0;
    config.workload.large_share = 0.3;
    config.workload.burst_share = 0.0;
    config.workload.max_messages = Some(3);
    let stack = match config.validate() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = match run(&config, seed) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("consort demo (seed {seed}): 3 members, stack {stack}");
    println!("5% of datagrams lost; times are virtual; n0..n2 are the members\n");
    for rec in r.trace.records() {
        let t = rec.time.as_micros();
        let when = format!("{:>5}.{:03} ms", t / 1000, t % 1000);
        match &rec.entry {
            Entry::CastAccepted { id, len, .. } => {
                println!("{when}  n{} casts #{} ({len} bytes)", rec.node, id.seq);
            }
            Entry::Delivered(d) if d.kind == Kind::Cast => {
                let what = d.id.map_or("an unknown message".into(), |id| {
                    format!("n{}#{}", id.origin, id.seq)
                });
                let frags = if d.fragments > 1 {
                    format!(", {} fragments", d.fragments)
                } else {
                    String::new()
                };
                let own = if d.id.is_some_and(|id| id.origin == rec.node) {
                    " (its own)"
                } else {
                    ""
                };
                println!("{when}      n{} delivers {what}{own}{frags}", rec.node);
            }
            _ => {}
        }
    }
    let e = &r.report.exercised;
    println!(
        "\n{} casts, {} deliveries; quiet again at {:.3} s",
        e.casts,
        e.cast_deliveries,
        r.report.end.as_micros() as f64 / 1e6
    );
    println!(
        "network: {} datagrams, {} lost; protocol: {} NAKs, {} retransmissions, {} stability gossips",
        e.faults.sent, e.faults.losses, e.naks, e.cast_retransmissions, e.gossip
    );
    if r.report.passed() {
        println!("checker: every cast delivered once, intact and in order, at every member");
        ExitCode::SUCCESS
    } else {
        for v in &r.report.violations {
            println!("checker: {v}");
        }
        ExitCode::FAILURE
    }
}
