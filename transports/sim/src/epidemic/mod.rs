//! The epidemic membership service under simulation: the real MSS engines,
//! member services, proxies and monitors of `consort_core::epidemic` on
//! the shared simulated network, with partitions, crashes and restarts;
//! a checker of completeness, no resurrection, agreement and false
//! positives; and the measurements behind `docs/epidemic/README.md`,
//! beside a SWIM baseline (the `foca` crate) on the same network.
//!
//! - [`world`]: nodes, timers and the event loop.
//! - [`checker`]: what must hold, and what is counted.
//! - [`campaign`]: one seed end to end ([`run_check`]).
//! - [`measure`]: the report's experiments; [`swim`]: the foca baseline;
//!   [`plot`]: SVG figures.

pub mod campaign;
pub mod checker;
pub mod measure;
pub mod plot;
pub mod swim;
pub mod world;

pub use campaign::{CheckConfig, EFault, Exercised, Outcome, run, run_check, service_config};
