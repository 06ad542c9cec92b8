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
use crate::id::Rank;

/// An event travelling towards the network.
#[derive(Debug)]
pub(crate) enum Down {
    /// Multicast `msg` to the view. `reliable: false` marks a layer's own
    /// control message (gossip, a NAK cast) that Mnak must not sequence.
    Cast { msg: Msg, reliable: bool },
    /// Send `msg` to the member at `to`. `reliable: false` marks a control
    /// message (an ack, a retransmission) that Pt2pt must not sequence.
    Send { to: Rank, msg: Msg, reliable: bool },
    /// Stable has published new stability and NumCast vectors.
    Stable,
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
    /// Stable has published new stability and NumCast vectors.
    Stable,
}

impl Down {
    /// The message this event carries, if any.
    pub(crate) fn into_msg(self) -> Option<Msg> {
        match self {
            Down::Cast { msg, .. } | Down::Send { msg, .. } => Some(msg),
            Down::Stable => None,
        }
    }
}

impl Up {
    /// The message this event carries, if any.
    pub(crate) fn into_msg(self) -> Option<Msg> {
        match self {
            Up::Datagram { msg, .. } | Up::Cast { msg, .. } | Up::Send { msg, .. } => Some(msg),
            Up::Stable => None,
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
