//! The trace: every downcall and upcall of a run, in virtual time.
//!
//! The simulator records what the application asked of each endpoint (casts
//! and sends, accepted or refused; `block_ok`, `leave`) and everything each
//! endpoint gave back (deliveries, views, `Block`, `Exit`, `Writable`), and
//! what the simulator did to nodes and network (starts, crashes,
//! partitions). The [checker](crate::checker) reads nothing else:
//! properties are judged on what an application could observe, not on the
//! protocol's internals.
//!
//! A record's `node` is an **endpoint incarnation** (a process), not an
//! address: a restarted or rejoining node is a new process with a new
//! `EndpointId`, and message streams, FIFO and duplicates are judged per
//! process. [`Entry::Start`] says at which address (slot) a process runs.
//! Records about the whole network carry [`NET`] as their node. [`Entry`]
//! is `#[non_exhaustive]` so that checks ignore kinds they do not know.

use std::fmt;

use consort_core::{EndpointId, Instant, ViewId};

use crate::message::{Kind, MsgId};

/// The `node` of records about the whole network (partitions, heals, the
/// end of the fault phase).
pub const NET: usize = usize::MAX;

/// One thing that happened at one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Virtual time.
    pub time: Instant,
    /// The process it happened at ([`NET`] for the network).
    pub node: usize,
    /// What happened.
    pub entry: Entry,
}

/// Why a process started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartCause {
    /// One of the group's first members.
    Initial,
    /// A new node, part-way through.
    Join,
    /// At the address of a crashed endpoint.
    Restart,
    /// At the address of an endpoint that left.
    Rejoin,
}

/// A process starting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    /// Its address (slot).
    pub slot: usize,
    /// Its endpoint id.
    pub endpoint: EndpointId,
    /// The slots it joins through (empty in a static view).
    pub seeds: Vec<usize>,
    /// Why.
    pub cause: StartCause,
}

/// A view as installed at one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewRecord {
    /// The view's id.
    pub id: ViewId,
    /// Members in rank order.
    pub members: Vec<EndpointId>,
    /// The primary flag.
    pub primary: bool,
    /// The stack, as its layer list.
    pub protocol: String,
    /// The member's previous view, as the view says.
    pub previous: Option<ViewId>,
    /// The member's rank in it.
    pub rank: usize,
}

/// A view id for people: `3@n0` is logical time 3, coordinated by process 0.
pub fn view_name(v: ViewId) -> String {
    match crate::node::node_of(v.coordinator) {
        Some(p) => format!("{}@n{p}", v.ltime),
        None => format!("{}@{:?}", v.ltime, v.coordinator),
    }
}

/// Endpoint ids as process names: `[n0 n3 n5]`.
pub fn members_name(members: &[EndpointId]) -> String {
    let names: Vec<String> = members
        .iter()
        .map(|m| match crate::node::node_of(*m) {
            Some(p) => format!("n{p}"),
            None => format!("{m:?}"),
        })
        .collect();
    format!("[{}]", names.join(" "))
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
        /// Held for the next view (`SendView::Next`) rather than sent in
        /// the current one.
        next: bool,
    },
    /// The endpoint accepted a send.
    SendAccepted {
        /// The message.
        id: MsgId,
        /// Its length in bytes.
        len: usize,
        /// Held for the next view (`SendView::Next`).
        next: bool,
    },
    /// The application gave up a send because its destination is no
    /// longer in the view (the endpoint said `NotAMember`).
    Abandoned {
        /// The destination process.
        dest: usize,
        /// Length in bytes.
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
    /// The endpoint installed a view.
    View(ViewRecord),
    /// The endpoint said a view change has begun.
    Block,
    /// The application answered `block_ok`.
    BlockOk,
    /// The application called `leave()`.
    Leave,
    /// The endpoint said this member has left: its last event.
    Exit,
    /// A process started (its endpoint was built).
    Start(Start),
    /// The process stopped for good (its endpoint was dropped).
    Crash,
    /// The network split; these slots on one side, the rest on the other.
    Partition {
        /// The slots of one side.
        side: Vec<usize>,
    },
    /// The partition healed.
    Heal,
    /// From here on no fault strikes: the network is perfect and no node
    /// starts, stops or leaves.
    FaultsOver,
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
        if self.node == NET {
            write!(f, "{:>6}.{:03} ms  net ", t / 1000, t % 1000)?;
        } else {
            write!(f, "{:>6}.{:03} ms  n{:<2} ", t / 1000, t % 1000, self.node)?;
        }
        match &self.entry {
            Entry::CastAccepted { id, len, next } | Entry::SendAccepted { id, len, next } => {
                let when = if *next { ", for the next view" } else { "" };
                write!(f, "{id} accepted ({len} B{when})")
            }
            Entry::Abandoned { dest, len } => {
                write!(f, "send to n{dest} abandoned: not in the view ({len} B)")
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
            Entry::View(v) => {
                write!(
                    f,
                    "VIEW {} {} rank {}",
                    view_name(v.id),
                    members_name(&v.members),
                    v.rank
                )?;
                if v.primary {
                    write!(f, " primary")?;
                }
                if let Some(p) = v.previous {
                    write!(f, " (after {})", view_name(p))?;
                }
                Ok(())
            }
            Entry::Block => write!(f, "block"),
            Entry::BlockOk => write!(f, "block_ok"),
            Entry::Leave => write!(f, "leave()"),
            Entry::Exit => write!(f, "EXIT"),
            Entry::Start(s) => {
                let seeds: Vec<String> = s.seeds.iter().map(|x| format!("s{x}")).collect();
                write!(
                    f,
                    "START {:?} at slot s{} as {:?}, seeds [{}]",
                    s.cause,
                    s.slot,
                    s.endpoint,
                    seeds.join(" ")
                )
            }
            Entry::Crash => write!(f, "CRASH"),
            Entry::Partition { side } => {
                let side: Vec<String> = side.iter().map(|x| format!("s{x}")).collect();
                write!(f, "PARTITION [{}] | the rest", side.join(" "))
            }
            Entry::Heal => write!(f, "HEAL"),
            Entry::FaultsOver => write!(f, "faults over"),
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
