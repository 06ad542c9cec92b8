//! # consort-sim
//!
//! consort's deterministic simulator. It runs N endpoints of the real
//! protocol core ([`consort_core::Endpoint`]) over a simulated network in
//! virtual time, with faults (loss, duplication, reordering) drawn from a
//! seed — and, with membership in the stack, partitions, crashes,
//! restarts, joins and leaves — records every downcall and upcall in a
//! trace, and checks the trace against the properties the stack promises
//! (FIFO and reliability; with membership, view agreement, virtual
//! synchrony, liveness...). The same seed replays the same run exactly, so
//! every failure comes with a one-line replay command.
//!
//! Map of the crate:
//! - [`rng`]: the seeded generator every random choice comes from.
//! - [`net`]: datagrams in flight, faults and their counts, partitions.
//! - [`churn`]: when node faults strike, and whom.
//! - [`node`]: one member: endpoint, address, application; the drain loop.
//! - [`workload`] and [`message`]: what the applications cast and send, in
//!   self-describing, checkable payloads.
//! - [`trace`]: the records; [`checker`]: the properties, one file each.
//! - [`sim`]: the event loop; [`campaign`]: one seed end to end;
//!   [`exercised`]: what a run exercised; [`parallel`]: many seeds over
//!   threads.
//!
//! ```
//! use consort_sim::{Fault, Protocol, RunConfig, run};
//! let mut config = RunConfig::new(3, Protocol::Properties("Frag:Flow".into()));
//! config.faults = vec![Fault::Loss(0.1)];
//! config.workload.duration = std::time::Duration::from_millis(500);
//! let r = run(&config, 42).unwrap();
//! assert!(r.report.passed(), "{:?}", r.report.violations);
//! ```
#![warn(missing_docs)]

pub mod campaign;
pub mod checker;
pub mod churn;
pub mod epidemic;
pub mod exercised;
pub mod message;
pub mod net;
pub mod node;
pub mod parallel;
pub mod rng;
pub mod sim;
pub mod trace;
pub mod workload;

pub use campaign::{FAST_MEMBERSHIP, Protocol, Report, Run, RunConfig, run, run_report};
pub use checker::{Check, Checker, EndState, Violation};
pub use exercised::Exercised;
pub use net::{Fault, FaultCounts, FaultKind, FaultPlan, Net};
pub use rng::Rng;
pub use trace::{Entry, Record, Trace};
pub use workload::WorkloadConfig;

/// For the simulator's small binaries that take no flags: when the command
/// line asks for help (`-h` or `--help`), prints `usage` and returns true.
///
/// ```
/// assert!(!consort_sim::help_requested("usage: x"));
/// ```
pub fn help_requested(usage: &str) -> bool {
    let asked = std::env::args().skip(1).any(|a| a == "-h" || a == "--help");
    if asked {
        println!("{usage}");
    }
    asked
}
