//! The trace checker: properties every run must have.
//!
//! Each property is one [`Check`], in its own file: it watches the
//! [trace](crate::trace) record by record and, at the end of the run, says
//! what it found wrong given the nodes' final state. A [`Checker`] holds the
//! checks that apply to a run's stack: FIFO and reliability only where the
//! layers that promise them are present, self-delivery only with `Local`.
//! Later properties (view agreement, virtual synchrony, total and causal
//! order) are more `Check`s chosen the same way; none of these change.
//!
//! These are the descendants of Ensemble's `debug/chk_*.ml` layers, moved
//! out of the stack so that they judge what the application saw.

mod buffers;
mod fifo;
mod no_creation;
mod no_duplicate;
mod progress;
mod reliable;
mod self_delivery;
mod well_formed;

pub use buffers::BuffersReleased;
pub use fifo::Fifo;
pub use no_creation::NoCreation;
pub use no_duplicate::NoDuplicate;
pub use progress::Progress;
pub use reliable::Reliable;
pub use self_delivery::SelfDelivery;
pub use well_formed::WellFormed;

use std::fmt;

use consort_core::stack::{LayerKind, StackSpec};
use consort_core::{Instant, Stats};

use crate::trace::Record;

/// One property, judged over a trace.
pub trait Check {
    /// The property's name, as printed with its violations.
    fn name(&self) -> &'static str;
    /// Sees the next record of the trace.
    fn observe(&mut self, rec: &Record);
    /// Reports every violation found, given how the run ended.
    fn finish(&mut self, end: &EndState) -> Vec<Violation>;
}

/// Something that should not have happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The property violated.
    pub check: &'static str,
    /// When, if it happened at one moment.
    pub time: Option<Instant>,
    /// Where, if at one node.
    pub node: Option<usize>,
    /// What happened.
    pub what: String,
}

impl Violation {
    /// A violation seen in record `rec`.
    pub fn at(check: &'static str, rec: &Record, what: String) -> Self {
        Violation {
            check,
            time: Some(rec.time),
            node: Some(rec.node),
            what,
        }
    }

    /// A violation found at the end of the run at `node`.
    pub fn at_end(check: &'static str, node: Option<usize>, what: String) -> Self {
        Violation {
            check,
            time: None,
            node,
            what,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.check)?;
        if let Some(t) = self.time {
            let t = t.as_micros();
            write!(f, " at {}.{:03} ms", t / 1000, t % 1000)?;
        }
        if let Some(n) = self.node {
            write!(f, " n{n}")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// How one node ended.
#[derive(Clone, Debug)]
pub struct NodeEnd {
    /// Whether the node was a live member at the end (always, until crashes exist).
    pub live: bool,
    /// Pool slots in use after a final drain.
    pub pool_in_use: usize,
    /// The endpoint's counters.
    pub stats: Stats,
    /// Messages the application made that were never accepted.
    pub unsent: usize,
    /// Errors other than `WouldBlock` the endpoint returned to the application.
    pub errors: Vec<String>,
}

/// How the run ended.
#[derive(Clone, Debug)]
pub struct EndState {
    /// Every node, by index.
    pub nodes: Vec<NodeEnd>,
    /// Whether the run reached quiescence (everything delivered and
    /// released) before its time bound.
    pub quiescent: bool,
    /// Virtual time at the end.
    pub time: Instant,
}

impl EndState {
    /// Indices of the nodes live at the end.
    pub fn live(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.live)
            .map(|(i, _)| i)
    }
}

/// The checks of one run.
pub struct Checker {
    checks: Vec<Box<dyn Check + Send>>,
}

impl Checker {
    /// The checks that apply to `stack`.
    ///
    /// Duplicate-freedom, FIFO and reliability are promised for casts by
    /// Mnak and for sends by Pt2pt; without them a stack promises neither.
    /// Self-delivery is promised by Local.
    pub fn for_stack(stack: &StackSpec) -> Self {
        let casts = stack.contains(LayerKind::Mnak);
        let sends = stack.contains(LayerKind::Pt2pt);
        let mut checks: Vec<Box<dyn Check + Send>> = vec![
            Box::new(NoCreation::new()),
            Box::new(NoDuplicate::new(casts, sends)),
            Box::new(Fifo::new(casts, sends)),
            Box::new(Reliable::new(casts, sends)),
            Box::new(BuffersReleased),
            Box::new(WellFormed),
            Box::new(Progress),
        ];
        if stack.contains(LayerKind::Local) {
            checks.push(Box::new(SelfDelivery::new()));
        }
        Checker { checks }
    }

    /// A checker with exactly these checks.
    pub fn with(checks: Vec<Box<dyn Check + Send>>) -> Self {
        Checker { checks }
    }

    /// The names of the checks, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.checks.iter().map(|c| c.name()).collect()
    }

    /// Shows every check the next record.
    pub fn observe(&mut self, rec: &Record) {
        for c in &mut self.checks {
            c.observe(rec);
        }
    }

    /// Shows every check a whole trace.
    pub fn observe_all<'a>(&mut self, recs: impl IntoIterator<Item = &'a Record>) {
        for r in recs {
            self.observe(r);
        }
    }

    /// Every violation of every check.
    pub fn finish(&mut self, end: &EndState) -> Vec<Violation> {
        self.checks.iter_mut().flat_map(|c| c.finish(end)).collect()
    }
}
