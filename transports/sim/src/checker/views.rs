//! What the checks need to know about views, worked out once from the trace.
//!
//! [`Views`] follows every process through its views and every message to
//! the view it was *sent in*: the sender's current view when it was accepted
//! (`SendView::Current`), or the next view the sender installs when it was
//! held (`SendView::Next`). The [`Checker`](super::Checker) updates it with
//! each record before the checks see that record, so a check looking at a
//! `View` record finds the new view current, and at a delivery the view it
//! is delivered in.

use std::collections::HashMap;

use consort_core::{EndpointId, Instant, ViewId};

use crate::message::MsgId;
use crate::trace::{Entry, Record};

/// What the first member to install a view saw of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewInfo {
    /// Members in rank order.
    pub members: Vec<EndpointId>,
    /// The primary flag.
    pub primary: bool,
    /// The stack.
    pub protocol: String,
    /// When it was first installed, and by which process.
    pub first: (Instant, usize),
}

/// One process, as far as the trace tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proc {
    /// Its address, once started.
    pub slot: Option<usize>,
    /// Its endpoint id, once started.
    pub endpoint: Option<EndpointId>,
    /// The views it installed, in order, with when.
    pub views: Vec<(ViewId, Instant)>,
    /// It crashed.
    pub crashed: bool,
    /// Its application called `leave()`.
    pub leave_called: bool,
    /// It received `Exit`.
    pub exited: bool,
}

impl Proc {
    /// Its current view.
    pub fn current(&self) -> Option<ViewId> {
        self.views.last().map(|v| v.0)
    }

    /// The view it installed right after `view`, if any.
    pub fn after(&self, view: ViewId) -> Option<ViewId> {
        let at = self.views.iter().position(|v| v.0 == view)?;
        self.views.get(at + 1).map(|v| v.0)
    }

    /// Whether it is running and was not asked to leave.
    pub fn live(&self) -> bool {
        self.slot.is_some() && !self.crashed && !self.leave_called && !self.exited
    }
}

/// Views and sent-views, record by record.
#[derive(Debug, Default)]
pub struct Views {
    procs: Vec<Proc>,
    table: HashMap<ViewId, ViewInfo>,
    /// Every accepted message: the view it was sent in (`None` while held).
    sent: HashMap<MsgId, Option<ViewId>>,
    /// Per process, messages held for its next view.
    held: HashMap<usize, Vec<MsgId>>,
    /// Messages whose sent view the last record fixed.
    released: Vec<MsgId>,
    /// Per (stream, view): the number of the stream's first message sent
    /// in that view.
    first_seq: HashMap<(MsgId, ViewId), u32>,
}

/// A message's stream: the id with sequence number 0.
pub fn stream(id: &MsgId) -> MsgId {
    MsgId { seq: 0, ..*id }
}

impl Views {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Views::default()
    }

    fn proc_mut(&mut self, p: usize) -> &mut Proc {
        if self.procs.len() <= p {
            self.procs.resize(p + 1, Proc::default());
        }
        &mut self.procs[p]
    }

    /// Takes the next record into account.
    pub fn update(&mut self, rec: &Record) {
        self.released.clear();
        if rec.node == crate::trace::NET {
            return;
        }
        let p = rec.node;
        match &rec.entry {
            Entry::Start(s) => {
                let me = self.proc_mut(p);
                me.slot = Some(s.slot);
                me.endpoint = Some(s.endpoint);
            }
            Entry::View(v) => {
                self.proc_mut(p).views.push((v.id, rec.time));
                self.table.entry(v.id).or_insert_with(|| ViewInfo {
                    members: v.members.clone(),
                    primary: v.primary,
                    protocol: v.protocol.clone(),
                    first: (rec.time, p),
                });
                for id in self.held.remove(&p).unwrap_or_default() {
                    self.mark_sent(id, v.id);
                }
            }
            Entry::CastAccepted { id, next, .. } | Entry::SendAccepted { id, next, .. } => {
                match (next, self.current(p)) {
                    (false, Some(v)) => self.mark_sent(*id, v),
                    _ => {
                        self.sent.insert(*id, None);
                        self.held.entry(p).or_default().push(*id);
                    }
                }
            }
            Entry::Crash => self.proc_mut(p).crashed = true,
            Entry::Leave => self.proc_mut(p).leave_called = true,
            Entry::Exit => self.proc_mut(p).exited = true,
            _ => {}
        }
    }

    fn mark_sent(&mut self, id: MsgId, view: ViewId) {
        self.sent.insert(id, Some(view));
        self.first_seq.entry((stream(&id), view)).or_insert(id.seq);
        self.released.push(id);
    }

    /// Process `p`, if the trace has mentioned it.
    pub fn proc(&self, p: usize) -> Option<&Proc> {
        self.procs.get(p)
    }

    /// Every process, by index.
    pub fn procs(&self) -> &[Proc] {
        &self.procs
    }

    /// Process `p`'s current view.
    pub fn current(&self, p: usize) -> Option<ViewId> {
        self.procs.get(p)?.current()
    }

    /// What the first member to install `view` saw of it.
    pub fn info(&self, view: ViewId) -> Option<&ViewInfo> {
        self.table.get(&view)
    }

    /// Every view installed anywhere.
    pub fn all(&self) -> impl Iterator<Item = (&ViewId, &ViewInfo)> {
        self.table.iter()
    }

    /// Whether `id` was accepted.
    pub fn accepted(&self, id: &MsgId) -> bool {
        self.sent.contains_key(id)
    }

    /// The view `id` was sent in: `None` if it was never accepted, or is
    /// still held for a next view its sender has not installed.
    pub fn sent_view(&self, id: &MsgId) -> Option<ViewId> {
        self.sent.get(id).copied().flatten()
    }

    /// Every accepted message and the view it was sent in.
    pub fn messages(&self) -> impl Iterator<Item = (&MsgId, &Option<ViewId>)> {
        self.sent.iter()
    }

    /// Messages whose sent view the last record fixed (an accept in the
    /// current view, or held messages going out in a view just installed).
    pub fn released(&self) -> &[MsgId] {
        &self.released
    }

    /// The sequence number of the first message of `stream` sent in `view`.
    pub fn first_seq(&self, stream: &MsgId, view: ViewId) -> Option<u32> {
        self.first_seq.get(&(*stream, view)).copied()
    }

    /// The rank of `endpoint` in `view`.
    pub fn rank_in(&self, view: ViewId, endpoint: EndpointId) -> Option<usize> {
        self.table
            .get(&view)?
            .members
            .iter()
            .position(|m| *m == endpoint)
    }
}
