//! The trace: every downcall and upcall of a run, in virtual time.
//!
//! The simulator records what the application asked of each endpoint (casts
//! and sends, accepted or refused) and everything each endpoint gave back
//! (deliveries, `Writable`). The [checker](crate::checker) reads nothing
//! else: properties are judged on what an application could observe, not on
//! the protocol's internals.
//!
//! The record set grows with the protocol. Membership will add `View`,
//! `Block` and `Suspect` records, and node faults `Crash`, `Restart`, `Join`
//! and `Leave`; [`Entry`] is `#[non_exhaustive]` so that checks written now
//! ignore kinds they do not know.

use std::fmt;

use consort_core::Instant;

use crate::message::{Kind, MsgId};

/// One thing that happened at one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Virtual time.
    pub time: Instant,
    /// The node it happened at.
    pub node: usize,
    /// What happened.
    pub entry: Entry,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// The endpoint accepted a cast.
    CastAccepted {
        /// The message.
        id: MsgId,
        /// Its length in bytes.
        len: usize,
    },
    /// The endpoint accepted a send.
    SendAccepted {
        /// The message.
        id: MsgId,
        /// Its length in bytes.
        len: usize,
    },
    /// The endpoint refused a cast or send with `WouldBlock`; the workload
    /// keeps it and tries again.
    Refused {
        /// Cast or send.
        kind: Kind,
        /// Destination node of a send.
        dest: Option<usize>,
        /// Length in bytes.
        len: usize,
    },
    /// The endpoint delivered a message to the application.
    Delivered(Delivery),
    /// The endpoint said a refused message would now be accepted.
    Writable,
}

/// A delivery, as the application saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Whether it came as a cast or a send event.
    pub kind: Kind,
    /// The sender's rank, as the event gave it.
    pub from_rank: usize,
    /// The node whose endpoint id the event gave, if it is one of ours.
    pub from_node: Option<usize>,
    /// The message the payload claims to be (`None`: unrecognisable).
    pub id: Option<MsgId>,
    /// Length of the payload.
    pub len: usize,
    /// Whether every byte is what that message holds.
    pub intact: bool,
    /// Pieces the payload came in (one per fragment under Frag).
    pub fragments: usize,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.time.as_micros();
        write!(f, "{:>6}.{:03} ms  n{:<2} ", t / 1000, t % 1000, self.node)?;
        match &self.entry {
            Entry::CastAccepted { id, len } | Entry::SendAccepted { id, len } => {
                write!(f, "{id} accepted ({len} B)")
            }
            Entry::Refused { kind, dest, len } => match dest {
                Some(d) => write!(f, "{kind:?} to n{d} refused: WouldBlock ({len} B)"),
                None => write!(f, "{kind:?} refused: WouldBlock ({len} B)"),
            },
            Entry::Delivered(d) => {
                match d.id {
                    Some(id) => write!(f, "got {id}")?,
                    None => write!(f, "got an unrecognisable {:?}", d.kind)?,
                }
                write!(f, " from rank {} ({} B", d.from_rank, d.len)?;
                if d.fragments > 1 {
                    write!(f, ", {} fragments", d.fragments)?;
                }
                if !d.intact {
                    write!(f, ", CORRUPT")?;
                }
                write!(f, ")")
            }
            Entry::Writable => write!(f, "writable"),
        }
    }
}

/// The records of one run, in the order they happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    records: Vec<Record>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Trace::default()
    }

    /// Appends a record.
    pub fn push(&mut self, time: Instant, node: usize, entry: Entry) {
        self.records.push(Record { time, node, entry });
    }

    /// The records.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
