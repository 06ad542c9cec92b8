//! Liveness: after the last fault, every live member converges to one view
//! — the same view id at all of them, holding exactly them — within a
//! bound derived from the group parameters.
//!
//! The bound is what the protocol needs in the worst case it should meet
//! when faults stop: to notice a member that crashed at the last moment
//! (`suspect_sweep × (suspect_max_idle + 1)`), to run a few view-change
//! attempts of which some may wait out a member that does not answer
//! (`3 × gmp_timeout`), and to find the other views of the group and merge
//! with them after a partition heals or an endpoint joins (`10 ×
//! heal_sweep`: announcements go to a few addresses per sweep, and each
//! merge takes a sweep or two). [`Liveness::bound`] states it; the campaign
//! prints it.
//!
//! The last fault is the latest of: the end of the fault phase (when loss,
//! duplication and reordering stop), a partition or heal, and a crash,
//! start or leave. Live members are the processes running at the end that
//! were not asked to leave.

use std::time::Duration;

use consort_core::{Instant, Params, ViewId};

use super::{Check, EndState, Views, Violation};
use crate::node::endpoint_id;
use crate::trace::{Entry, NET, Record, members_name, view_name};

const NAME: &str = "liveness";

/// The liveness check.
#[derive(Debug)]
pub struct Liveness {
    bound: Duration,
    last_fault: Instant,
}

/// "1.234 s" from a duration.
fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

impl Liveness {
    /// The check for a group run with `params`.
    pub fn new(params: &Params) -> Self {
        Liveness {
            bound: Self::bound(params),
            last_fault: Instant::ZERO,
        }
    }

    /// How long after the last fault live members must have converged.
    ///
    /// ```
    /// use consort_core::Params;
    /// use consort_sim::checker::Liveness;
    /// let fast = Params::parse("suspect_sweep=50ms:suspect_max_idle=4:gmp_timeout=400ms:heal_sweep=100ms").unwrap();
    /// assert_eq!(Liveness::bound(&fast).as_millis(), 250 + 1200 + 1000);
    /// ```
    pub fn bound(params: &Params) -> Duration {
        params.suspect_sweep * (params.suspect_max_idle + 1)
            + params.gmp_timeout * 3
            + params.heal_sweep * 10
    }

    /// How the bound is made, for people.
    pub fn explain(params: &Params) -> String {
        format!(
            "{} = detection {} (suspect_sweep x (suspect_max_idle + 1)) + 3 x gmp_timeout {} + 10 x heal_sweep {}",
            secs(Self::bound(params)),
            secs(params.suspect_sweep * (params.suspect_max_idle + 1)),
            secs(params.gmp_timeout),
            secs(params.heal_sweep)
        )
    }
}

impl Check for Liveness {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, rec: &Record, _views: &Views) {
        let fault = match &rec.entry {
            Entry::Partition { .. } | Entry::Heal | Entry::FaultsOver => rec.node == NET,
            Entry::Crash | Entry::Start(_) | Entry::Leave => true,
            _ => false,
        };
        if fault {
            self.last_fault = self.last_fault.max(rec.time);
        }
    }

    fn finish(&mut self, end: &EndState, views: &Views) -> Vec<Violation> {
        let live: Vec<usize> = views
            .procs()
            .iter()
            .enumerate()
            .filter(|(p, pr)| pr.live() && end.nodes.get(*p).is_some_and(|n| n.live))
            .map(|(p, _)| p)
            .collect();
        let deadline = self.last_fault + self.bound;
        let context = format!(
            "last fault at {}, bound {}",
            secs(self.last_fault.saturating_duration_since(Instant::ZERO)),
            secs(self.bound)
        );
        let fail =
            |what: String| vec![Violation::at_end(NAME, None, format!("{what} ({context})"))];
        if live.is_empty() {
            return fail("no live member at the end".into());
        }
        let at: Vec<(usize, Option<ViewId>)> =
            live.iter().map(|p| (*p, views.current(*p))).collect();
        let first = at[0].1;
        if at.iter().any(|(_, v)| *v != first) || first.is_none() {
            let mut by_view: Vec<String> = Vec::new();
            for (p, v) in &at {
                let members = v
                    .and_then(|v| views.info(v))
                    .map_or(String::new(), |i| members_name(&i.members));
                by_view.push(format!(
                    "n{p} in {} {members}",
                    v.map_or("no view".into(), view_name)
                ));
            }
            return fail(format!(
                "live members never converged to one view by the end at {}: {}",
                secs(end.time.saturating_duration_since(Instant::ZERO)),
                by_view.join(", ")
            ));
        }
        let Some(view) = first else { return Vec::new() };
        let members = views
            .info(view)
            .map(|i| i.members.clone())
            .unwrap_or_default();
        let mut expected: Vec<_> = live.iter().map(|p| endpoint_id(*p)).collect();
        expected.sort();
        let mut got = members.clone();
        got.sort();
        if got != expected {
            return fail(format!(
                "live members {} all ended in view {} {}, which is not exactly them",
                members_name(&expected),
                view_name(view),
                members_name(&members)
            ));
        }
        let converged = live
            .iter()
            .filter_map(|p| {
                let pr = views.proc(*p)?;
                pr.views.iter().rev().find(|v| v.0 == view).map(|v| v.1)
            })
            .max()
            .unwrap_or(Instant::ZERO);
        if converged > deadline {
            return fail(format!(
                "live members converged to view {} {} only at {}, {} after the last fault",
                view_name(view),
                members_name(&members),
                secs(converged.saturating_duration_since(Instant::ZERO)),
                secs(converged.saturating_duration_since(self.last_fault))
            ));
        }
        Vec::new()
    }
}
