//! The events layers exchange — the whole set, in one place.
//!
//! Events travel **down** (from the application towards the network) as
//! [`Down`] and **up** as [`Up`]. A message travels inside its event as a
//! [`Msg`] handle, so passing an event on never copies payload bytes.
//!
//! Large vectors (stability, received counts) do not travel in events: the
//! layer that computes one publishes it in the stack's [`Shared`](super::Shared)
//! board and sends an event announcing it. That keeps every event a few
//! words long, which is what lets the scheduler queue be a small fixed array.

use core::net::SocketAddr;

use crate::buffer::Msg;
use crate::id::{Rank, RankSet, ViewId};
use crate::stack::LayerKind;

/// An event travelling towards the network.
#[derive(Debug)]
pub(crate) enum Down {
    /// Multicast `msg` to the view. `reliable: false` marks a layer's own
    /// control message (gossip, a NAK cast) that Mnak must not sequence.
    Cast { msg: Msg, reliable: bool },
    /// Send `msg` to the member at `to`. `reliable: false` marks a control
    /// message (an ack, a retransmission) that Pt2pt must not sequence.
    Send { to: Rank, msg: Msg, reliable: bool },
    /// Send `msg` to the members in `to` (the application's
    /// `send_to_many`). Subcast turns it into a cast that the others drop;
    /// it arrives as [`Up::Send`]. Layers above Subcast that put a header on
    /// sends put the same one on it.
    Subcast { to: RankSet, msg: Msg },
    /// Send `msg` to an address that may be outside the view, for the peer
    /// layer `layer` (joins, merges, view installation). Layers between
    /// pass it on without a header; only `layer`'s peer reads it.
    Foreign {
        to: SocketAddr,
        layer: LayerKind,
        msg: Msg,
        /// The view and rank to frame it with, when not the current ones:
        /// a coordinator goes on sending a view change's transfers after
        /// it has installed the view they make, and their receivers, still
        /// in the old view, know the sender only by its old view and rank.
        as_of: Option<(ViewId, Rank)>,
    },
    /// Stable has published new stability and NumCast vectors.
    Stable,
    /// The application is ready for the view to change (`block_ok`).
    BlockOk,
    /// The application leaves the group.
    Leave,
    /// The application (or a layer above Gmp) suspects these members.
    Suspect(RankSet),
    /// The coordinator's application asks for a new view.
    RequestView,
    /// Gmp to Sync: this member takes part in a view change; the failed
    /// members are in `Shared::failed`.
    Flush,
    /// Gmp to Sync and Mnak: the cut is in `Shared::limit` and `Shared::cut_holder`.
    Cut,
    /// Back to Gmp from the top of the stack: the proposed view is annotated
    /// (`Shared::proposal`) and this is the view message, if any.
    Ready { msg: Option<Msg> },
    /// Heal to Gmp: a view of this group, senior to ours, lives at `to`.
    Merge { to: SocketAddr, view: ViewId },
}

/// An event travelling towards the application.
#[derive(Debug)]
pub(crate) enum Up {
    /// A datagram from the network; only Bottom receives this.
    Datagram { from: SocketAddr, msg: Msg },
    /// A cast from the member at `from`.
    Cast {
        from: Rank,
        msg: Msg,
        reliable: bool,
    },
    /// A point-to-point send from the member at `from`.
    Send {
        from: Rank,
        msg: Msg,
        reliable: bool,
    },
    /// A message for the peer layer `layer`, from an address that may be
    /// outside the view; `view` and `rank` are the sender's.
    Foreign {
        from: SocketAddr,
        view: ViewId,
        rank: Rank,
        layer: LayerKind,
        msg: Msg,
    },
    /// Stable has published new stability and NumCast vectors.
    Stable,
    /// Suspect, Slander: these members seem to have failed.
    Suspect(RankSet),
    /// Sync to the application: a view change has begun.
    Block,
    /// Sync to Gmp: blocked, sends drained, failed senders frozen: the
    /// member may report what it has.
    Ready,
    /// Mnak to Sync: every sender's casts are delivered up to the cut.
    CutReached,
    /// Sync to Gmp: delivered exactly the cut.
    Flushed,
    /// Gmp (coordinator) to the layers above: annotate `Shared::proposal`.
    Prepare,
    /// Gmp to the endpoint: install `Shared::next`, with the view message.
    Install { msg: Option<Msg> },
    /// Top to the application: the heartbeat period has passed.
    Heartbeat,
    /// Gmp to the application: this member has left; nothing follows.
    Exit,
}

impl Down {
    /// The message this event carries, if any.
    pub(crate) fn into_msg(self) -> Option<Msg> {
        match self {
            Down::Cast { msg, .. }
            | Down::Send { msg, .. }
            | Down::Subcast { msg, .. }
            | Down::Foreign { msg, .. } => Some(msg),
            Down::Ready { msg } => msg,
            _ => None,
        }
    }
}

impl Up {
    /// The message this event carries, if any.
    pub(crate) fn into_msg(self) -> Option<Msg> {
        match self {
            Up::Datagram { msg, .. }
            | Up::Cast { msg, .. }
            | Up::Send { msg, .. }
            | Up::Foreign { msg, .. } => Some(msg),
            Up::Install { msg } => msg,
            _ => None,
        }
    }
}

/// An event and its direction, as queued by the scheduler.
#[derive(Debug)]
pub(crate) enum Item {
    Up(Up),
    Down(Down),
}

impl Item {
    pub(crate) fn into_msg(self) -> Option<Msg> {
        match self {
            Item::Up(e) => e.into_msg(),
            Item::Down(e) => e.into_msg(),
        }
    }
}
