//! The trace checker: properties every run must have.
//!
//! Each property is one [`Check`], in its own file: it watches the
//! [trace](crate::trace) record by record and, at the end of the run, says
//! what it found wrong given the nodes' final state. A [`Checker`] holds the
//! checks that apply to a run's stack: FIFO and reliability only where the
//! layers that promise them are present, self-delivery only with `Local`,
//! liveness only with `Gmp`, the primary chain only with `Primary`, total
//! order with `Total`, causal order with `Causal`, safe delivery with
//! `Agree`.
//!
//! Every check sees each record together with [`Views`]: which view each
//! process is in, and which view each message was sent in. Properties are
//! judged per view: FIFO within the view a message was sent in, reliable
//! delivery among the members that move together from a view to the next.
//! A static group has one view, and these reduce to the plain properties.
//!
//! These are the descendants of Ensemble's `debug/chk_*.ml` layers, moved
//! out of the stack so that they judge what the application saw.

mod buffers;
mod busy_timer;
mod causal_order;
mod exit_last;
mod fifo;
mod liveness;
mod no_creation;
mod no_duplicate;
mod primary;
mod progress;
mod reliable;
mod safe_delivery;
mod self_delivery;
mod sender_view;
mod total_order;
mod view_agreement;
pub mod views;
mod virtual_synchrony;
mod well_formed;

pub use buffers::BuffersReleased;
pub use busy_timer::BusyTimer;
pub use causal_order::CausalOrder;
pub use exit_last::ExitLast;
pub use fifo::Fifo;
pub use liveness::Liveness;
pub use no_creation::NoCreation;
pub use no_duplicate::NoDuplicate;
pub use primary::PrimaryChain;
pub use progress::Progress;
pub use reliable::Reliable;
pub use safe_delivery::SafeDelivery;
pub use self_delivery::SelfDelivery;
pub use sender_view::SenderView;
pub use total_order::TotalOrder;
pub use view_agreement::ViewAgreement;
pub use views::Views;
pub use virtual_synchrony::VirtualSynchrony;
pub use well_formed::WellFormed;

use std::fmt;

use consort_core::stack::{LayerKind, StackSpec};
use consort_core::{Instant, Params, Stats};

use crate::trace::Record;

/// One property, judged over a trace.
pub trait Check {
    /// The property's name, as printed with its violations.
    fn name(&self) -> &'static str;
    /// Sees the next record of the trace; `views` already includes it.
    fn observe(&mut self, rec: &Record, views: &Views);
    /// Reports every violation found, given how the run ended and
    /// everything `views` learned.
    fn finish(&mut self, end: &EndState, views: &Views) -> Vec<Violation>;
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
        match self.node {
            Some(crate::trace::NET) => write!(f, " net")?,
            Some(n) => write!(f, " n{n}")?,
            None => {}
        }
        write!(f, ": {}", self.what)
    }
}

/// How one process ended.
#[derive(Clone, Debug)]
pub struct NodeEnd {
    /// Whether the process was running at the end, not crashed, not asked
    /// to leave and not exited.
    pub live: bool,
    /// Pool slots in use after a final drain.
    pub pool_in_use: usize,
    /// The endpoint's counters.
    pub stats: Stats,
    /// Messages the application made that were never accepted.
    pub unsent: usize,
    /// Errors other than `WouldBlock` the endpoint returned to the application.
    pub errors: Vec<String>,
    /// Times the endpoint's deadline was still due right after its timeout ran.
    pub timer_repeats: u64,
    /// The most times in a row it was.
    pub timer_stuck: u32,
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
    views: Views,
}

impl Checker {
    /// The checks that apply to `stack` with default parameters.
    pub fn for_stack(stack: &StackSpec) -> Self {
        Self::for_run(stack, &Params::default())
    }

    /// The checks that apply to `stack` run with `params`.
    ///
    /// Duplicate-freedom, FIFO and reliability are promised for casts by
    /// Mnak and for sends by Pt2pt; without them a stack promises neither.
    /// Self-delivery is promised by Local, virtual synchrony by Sync (in a
    /// static group, trivially), liveness by Gmp (its bound comes from
    /// `params`), the chain of primary views by Primary, total order by
    /// Total (the stronger form with Agree), causal order by Causal, safe
    /// delivery by Agree.
    pub fn for_run(stack: &StackSpec, params: &Params) -> Self {
        let casts = stack.contains(LayerKind::Mnak);
        let sends = stack.contains(LayerKind::Pt2pt);
        let membership = stack.contains(LayerKind::Gmp);
        // Views change virtually synchronously with Sync; a static view
        // never changes, which is trivially so.
        let vsync = !membership || stack.contains(LayerKind::Sync);
        let mut checks: Vec<Box<dyn Check + Send>> = vec![
            Box::new(NoCreation::new()),
            Box::new(NoDuplicate::new(casts, sends)),
            Box::new(Fifo::new(casts, sends)),
            Box::new(Reliable::new(casts, sends, vsync)),
            Box::new(BuffersReleased),
            Box::new(BusyTimer),
            Box::new(WellFormed::new(membership)),
            Box::new(Progress),
            Box::new(ViewAgreement::new()),
            Box::new(SenderView::new()),
            Box::new(ExitLast::new()),
        ];
        if stack.contains(LayerKind::Local) {
            checks.push(Box::new(SelfDelivery::new()));
        }
        if vsync {
            checks.push(Box::new(VirtualSynchrony::new()));
        }
        if membership {
            checks.push(Box::new(Liveness::new(params)));
        }
        if stack.contains(LayerKind::Primary) {
            checks.push(Box::new(PrimaryChain::new()));
        }
        let agree = stack.contains(LayerKind::Agree);
        if stack.contains(LayerKind::Total) {
            checks.push(Box::new(TotalOrder::new(agree)));
        }
        if stack.contains(LayerKind::Causal) {
            checks.push(Box::new(CausalOrder::new()));
        }
        if agree {
            checks.push(Box::new(SafeDelivery::new()));
        }
        Checker {
            checks,
            views: Views::new(),
        }
    }

    /// A checker with exactly these checks.
    pub fn with(checks: Vec<Box<dyn Check + Send>>) -> Self {
        Checker {
            checks,
            views: Views::new(),
        }
    }

    /// The names of the checks, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.checks.iter().map(|c| c.name()).collect()
    }

    /// Shows every check the next record.
    pub fn observe(&mut self, rec: &Record) {
        self.views.update(rec);
        for c in &mut self.checks {
            c.observe(rec, &self.views);
        }
    }

    /// What the checker learned of views and messages so far.
    pub fn views(&self) -> &Views {
        &self.views
    }

    /// Shows every check a whole trace.
    pub fn observe_all<'a>(&mut self, recs: impl IntoIterator<Item = &'a Record>) {
        for r in recs {
            self.observe(r);
        }
    }

    /// Every violation of every check.
    pub fn finish(&mut self, end: &EndState) -> Vec<Violation> {
        let views = &self.views;
        self.checks
            .iter_mut()
            .flat_map(|c| c.finish(end, views))
            .collect()
    }
}
