//! What an endpoint gives its caller: application events and datagrams.

use core::net::SocketAddr;

use crate::buffer::Segments;
use crate::id::{EndpointId, Rank};
use crate::time::Instant;
use crate::view::{Member, View};

/// Something the application should know about.
///
/// Payloads borrow the endpoint's storage: read them before calling the
/// endpoint again (the borrow checker makes sure of it).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a, const M: usize = 256> {
    /// A new view is installed (Maestro's `AcceptedView`): everything of
    /// the previous view has been delivered, everything after this is of
    /// the new one. `message` is what the coordinator's application attached
    /// (empty if none).
    View {
        /// The view.
        view: &'a View<M>,
        /// The view message.
        message: Payload<'a>,
    },
    /// A view change has begun (Maestro's `Block`): the application may still
    /// cast, then answers with `block_ok`.
    Block,
    /// This member coordinates the next view, which is about to be
    /// installed with these members: answer with `view_message` (Maestro's
    /// `ViewMsg` callback). Only with `Config::view_msg`.
    ViewMessage {
        /// The members of the next view.
        members: &'a [Member],
    },
    /// The heartbeat period has passed (Maestro's `Heartbeat`).
    Heartbeat {
        /// The time given with the input that found it due.
        time: Instant,
    },
    /// This member has left the group: the last event it ever gets.
    Exit,
    /// A cast from a member of the view (possibly this one).
    Cast {
        /// The sender's rank.
        from: Rank,
        /// The sender's endpoint id.
        endpoint: EndpointId,
        /// The message.
        payload: Payload<'a>,
    },
    /// A point-to-point message from a member of the view.
    Send {
        /// The sender's rank.
        from: Rank,
        /// The sender's endpoint id.
        endpoint: EndpointId,
        /// The message.
        payload: Payload<'a>,
    },
    /// A cast or send refused with `WouldBlock` would now be accepted.
    Writable,
}

/// A delivered message's bytes, possibly in several pieces (one per
/// fragment): read them with [`Payload::chunks`] or copy them out.
///
/// ```
/// # use consort_core::Payload;
/// fn print(p: &Payload<'_>) {
///     let mut buf = [0u8; 64];
///     if let Ok(n) = p.copy_to_slice(&mut buf) {
///         let _text = core::str::from_utf8(&buf[..n]);
///     }
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Payload<'a> {
    segments: Segments<'a>,
    len: usize,
}

/// The buffer given to [`Payload::copy_to_slice`] is shorter than the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes needed.
    pub needed: usize,
}

impl<'a> Payload<'a> {
    pub(crate) fn new(segments: Segments<'a>) -> Self {
        let len = segments.clone().map(<[u8]>::len).sum();
        Payload { segments, len }
    }

    /// A payload of no bytes.
    pub(crate) fn empty() -> Self {
        Payload {
            segments: Segments::empty(),
            len: 0,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, piece by piece.
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.segments.clone()
    }

    /// The bytes as one slice, if they are in one piece.
    pub fn as_slice(&self) -> Option<&'a [u8]> {
        let mut it = self.segments.clone();
        let first = it.next().unwrap_or(&[]);
        it.next().is_none().then_some(first)
    }

    /// Copies the bytes into the front of `out` and returns their length.
    pub fn copy_to_slice(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        if out.len() < self.len {
            return Err(BufferTooSmall { needed: self.len });
        }
        let mut at = 0;
        for c in self.chunks() {
            out[at..at + c.len()].copy_from_slice(c);
            at += c.len();
        }
        Ok(at)
    }
}

impl PartialEq<[u8]> for Payload<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        if other.len() != self.len {
            return false;
        }
        let mut rest = other;
        self.chunks().all(|c| {
            let (head, tail) = rest.split_at(c.len());
            rest = tail;
            head == c
        })
    }
}

/// A datagram for the runtime to send.
#[derive(Debug, Clone, Copy)]
pub struct Transmit<'a> {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes.
    pub contents: &'a [u8],
}
