//! Flow: window-based flow control for casts and sends.
//!
//! A member may have at most `flow_window` bytes of its own casts that are
//! not yet stable (received by every member), and at most `flow_window`
//! bytes of sends to one peer that the peer has not acknowledged. Beyond
//! that a new cast or send must wait: the endpoint answers `WouldBlock` and
//! tells the application [`Writable`](crate::Event::Writable) once the
//! window has room again.
//!
//! Measuring the cast window against stability rather than against per
//! receiver credits (Ensemble's Mflow) bounds the two things that matter at
//! once: the sender's retransmission buffer, and every receiver's, since a
//! receiver keeps a cast until it is stable. A slow receiver slows stability
//! and so slows the sender: that is the back-pressure.
//!
//! The numbers come from the shared board (Mnak publishes the unstable
//! backlog, Pt2pt the unacknowledged one), so Flow's decision is a pure
//! function the endpoint asks before it accepts a message. A message larger
//! than the whole window is admitted when nothing is outstanding, so it can
//! never wait forever. Flow pushes no header.

use crate::config::Params;
use crate::id::Rank;
use crate::layers::Layer;
use crate::stack::Shared;

/// The flow-control layer.
#[derive(Debug)]
pub(crate) struct Flow {
    window: u32,
}

impl Flow {
    pub(crate) fn new(params: &Params) -> Self {
        Flow {
            window: params.flow_window,
        }
    }

    /// Whether a cast of `bytes` may go now.
    pub(crate) fn admits_cast<const M: usize>(&self, shared: &Shared<M>, bytes: usize) -> bool {
        let b = shared.unstable.bytes;
        b == 0 || b as usize + bytes <= self.window as usize
    }

    /// Whether a send of `bytes` to `to` may go now.
    pub(crate) fn admits_send<const M: usize>(
        &self,
        shared: &Shared<M>,
        to: Rank,
        bytes: usize,
    ) -> bool {
        let b = shared.unacked.get(to.index()).map_or(0, |b| b.bytes);
        b == 0 || b as usize + bytes <= self.window as usize
    }
}

impl<const M: usize> Layer<M> for Flow {
    fn max_header() -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Backlog;

    #[test]
    fn window_counts_unstable_casts_and_unacked_sends_separately() {
        let params = Params {
            flow_window: 1000,
            ..Params::default()
        };
        let flow = Flow::new(&params);
        let mut shared = Shared::<4>::new();
        assert!(
            flow.admits_cast(&shared, 5000),
            "nothing outstanding: any size goes"
        );
        shared.unstable = Backlog {
            msgs: 3,
            bytes: 900,
        };
        assert!(flow.admits_cast(&shared, 100));
        assert!(!flow.admits_cast(&shared, 101));
        assert!(flow.admits_send(&shared, Rank(1), 1000));
        shared.unacked[1] = Backlog {
            msgs: 1,
            bytes: 1000,
        };
        assert!(!flow.admits_send(&shared, Rank(1), 1));
        assert!(flow.admits_send(&shared, Rank(2), 1));
    }
}
