//! When a run is over: quiescence for a static group (everything owed
//! delivered) and for one whose views change (one view of all live
//! members), as the [module documentation](super) describes.

use consort_core::Status;
use consort_core::stack::LayerKind;

use super::Sim;
use crate::node::Life;
use crate::trace::Entry;

impl Sim<'_> {
    /// Keeps the count of deliveries owed and made up to date (static groups).
    pub(super) fn count_new_records(&mut self) {
        if self.membership {
            return;
        }
        let n = self.nodes.len() as u64;
        let recs = &self.trace.records()[self.counted..];
        for rec in recs {
            match &rec.entry {
                Entry::CastAccepted { .. } => {
                    let local = self.nodes[rec.node]
                        .endpoint
                        .as_ref()
                        .is_some_and(|e| e.stack().contains(LayerKind::Local));
                    self.owed += n - 1 + u64::from(local);
                }
                Entry::SendAccepted { .. } => self.owed += 1,
                Entry::Delivered(d) if d.id.is_some_and(|id| id.kind == d.kind) => {
                    self.made += 1;
                }
                _ => {}
            }
        }
        self.counted = self.trace.len();
    }

    pub(super) fn quiescent(&self) -> bool {
        if self.membership {
            return self.converged();
        }
        // An empty network too: a late duplicate still in flight could yet
        // be delivered twice, and must be given the chance.
        self.now >= self.workload_end
            && self.next_event >= self.events.len()
            && self.made >= self.owed
            && self.net.in_flight() == 0
            && self.nodes.iter().all(|n| {
                n.workload.next_time().is_none()
                    && n.workload.unsent() == 0
                    && n.pool_usage().0 == 0
            })
    }

    /// Quiescence with membership (see the module documentation).
    fn converged(&self) -> bool {
        if !self.faults_over || self.now < self.workload_end || self.net.in_flight() != 0 {
            return false;
        }
        let mut view = None;
        let mut live = 0;
        for n in &self.nodes {
            match n.life() {
                Life::Crashed | Life::Exited => continue,
                Life::Leaving => return false,
                Life::Live => {}
            }
            let Some(ep) = n.endpoint.as_ref() else {
                return false;
            };
            if n.workload.next_time().is_some()
                || n.workload.unsent() > 0
                || ep.pool_usage().0 != 0
                || ep.status() != Status::Normal
            {
                return false;
            }
            live += 1;
            match view {
                None => view = Some((ep.view().id(), ep.view().len())),
                Some((v, _)) if v != ep.view().id() => return false,
                Some(_) => {}
            }
        }
        view.is_some_and(|(_, len)| len == live)
    }
}
