//! Top: the application's end of the stack.
//!
//! Casts and sends that reach Top are application messages (every layer
//! swallows its own control messages), so Top hands them to the
//! application, with the membership events (`Block`, the view to install,
//! `Exit`). At the coordinator, a proposed view stops here on its way up:
//! if the application asked for view messages (Maestro's `viewMsgFlag`), it
//! is asked for one; otherwise the proposal goes straight back down to Gmp.
//! Top also keeps the application's heartbeat (`heartbeat_rate`). It pushes
//! no header.

use crate::layers::Layer;
use crate::stack::{Cx, Down, Up};
use crate::time::Instant;

/// The top layer.
#[derive(Debug, Default)]
pub(crate) struct Top {
    /// The application attaches a message to the views it coordinates.
    view_msg: bool,
    next_heartbeat: Option<Instant>,
}

impl Top {
    pub(crate) fn new(view_msg: bool) -> Self {
        Top {
            view_msg,
            next_heartbeat: None,
        }
    }
}

impl<const M: usize> Layer<M> for Top {
    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        match ev {
            Up::Cast { .. }
            | Up::Send { .. }
            | Up::Block
            | Up::Install { .. }
            | Up::Exit
            | Up::Heartbeat => cx.up(ev),
            Up::Prepare if self.view_msg => cx.up(Up::Prepare),
            Up::Prepare => cx.down(Down::Ready { msg: None }),
            other => {
                if let Some(m) = other.into_msg() {
                    cx.free(m);
                }
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.next_heartbeat
    }

    fn timeout(&mut self, cx: &mut Cx<'_, M>) {
        let rate = cx.params.heartbeat_rate;
        self.next_heartbeat = (!rate.is_zero()).then(|| cx.now + rate);
        if !rate.is_zero() {
            cx.up(Up::Heartbeat);
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        let rate = cx.params.heartbeat_rate;
        if self.next_heartbeat.is_none() && !rate.is_zero() {
            self.next_heartbeat = Some(cx.now + rate);
        }
    }

    fn max_header() -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Harness;
    use crate::stack::Up;

    #[test]
    fn delivers_messages_and_swallows_the_rest() {
        let mut h = Harness::<4>::new(4, 1);
        let msg = h.msg(b"hi");
        let mut top = Top::default();
        h.up(
            &mut top,
            Up::Cast {
                from: crate::Rank(2),
                msg,
                reliable: true,
            },
        );
        h.up(&mut top, Up::Stable);
        let out = h.take_up();
        assert_eq!(out.len(), 1);
        h.finish(out);
    }

    #[test]
    fn a_proposal_goes_back_down_unless_the_application_wants_view_messages() {
        let mut h = Harness::<4>::new(2, 0);
        let mut top = Top::new(false);
        h.up(&mut top, Up::Prepare);
        assert!(matches!(h.take_down()[..], [Down::Ready { msg: None }]));
        let mut top = Top::new(true);
        h.up(&mut top, Up::Prepare);
        assert!(matches!(h.take_up()[..], [Up::Prepare]));
    }

    #[test]
    fn heartbeats_come_at_the_rate_asked() {
        let mut h = Harness::<4>::new(2, 0);
        h.params.heartbeat_rate = core::time::Duration::from_millis(50);
        let mut top = Top::default();
        h.run_install(&mut top);
        for _ in 0..3 {
            let t = Layer::<4>::deadline(&top).unwrap();
            h.timeout(&mut top, t);
        }
        assert_eq!(
            h.take_up()
                .iter()
                .filter(|e| matches!(e, Up::Heartbeat))
                .count(),
            3
        );
    }
}
