//! Gmp: group membership — who is in the next view, and when.
//!
//! The protocol is described in `docs/membership.md`; this file is its
//! state machine. Each member believes the coordinator to be the lowest
//! rank it does not suspect. When that is itself and something must change
//! (a suspicion, a leave, a merge, `request_new_view`), it runs an
//! **attempt**: Block, collect `FlushOk`, send the Cut, collect `Flushed`,
//! let the layers above annotate the proposal, send the view. Every member
//! follows the greatest attempt it has seen, answers it, and installs the
//! view of the attempt it flushed. Sync (when in the stack) does the
//! member's share of the flush; without it views change without virtual
//! synchrony, as Ensemble's `Gmp` alone did.
//!
//! Header: on every cast, send and subcast, and on its own foreign messages.

mod blob;
mod wire;

pub(crate) use self::wire::flush_ok_extra;

use core::net::SocketAddr;

use postcard::experimental::max_size::MaxSize;
use serde::Serialize;

use self::blob::{Incoming, Outgoing, Reader, Writer};
use self::wire::{
    AMB_MAX, BlobKind, Block, Cut, FlushOk, Flushed, Handoff, Hdr, MembersHead, MergeGrant,
    MergeRequest, ViewHead, amb_report_max,
};

/// Ambiguous proposals a coordinator collects from its members' reports.
const LEAD_AMB: usize = 8;
use crate::buffer::{Msg, Pool};
use crate::endpoint::SEAL_RESERVE;
use crate::id::{EndpointId, Rank, RankSet, ViewId};
use crate::layers::Layer;
use crate::layers::vsync::primary::holds_majority;
use crate::stack::{Cx, Down, LayerKind, PrimaryCheck, StackSpec, Up};
use crate::time::{Instant, earliest};
use crate::view::{Lineage, Member, ViewState};

/// Where a member is in the attempt it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Waiting for Sync to say it may report.
    Blocking,
    /// `FlushOk` sent; waiting for the cut.
    Reported,
    /// Delivering the cut.
    Cutting,
    /// `Flushed` sent; waiting for the view.
    Flushed,
}

/// The attempt a member follows.
#[derive(Debug, Clone, Copy)]
struct Follow {
    attempt: u32,
    coord: Rank,
    phase: Phase,
    /// Last time the coordinator was heard from.
    heard: Instant,
    /// Members the attempt lets leave (they flush but do not stay).
    leaving: RankSet,
    /// The epoch the attempt's view would have if primary (from the cut).
    epoch: u32,
    /// The view will come from a senior view instead.
    handoff: Option<Handoff>,
}

/// Where a coordinator is in its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeadPhase {
    Blocking,
    Cutting,
    /// Waiting for the other side of a merge.
    Merging,
    /// Waiting for the layers above to annotate the proposal.
    Preparing,
}

/// The senior side of a merge: the junior view taken in.
#[derive(Debug)]
struct MergeIn<const M: usize> {
    addr: SocketAddr,
    view: ViewId,
    /// The attempt that granted the merge: the junior keys its members
    /// with it, though this attempt may have restarted since.
    granted: u32,
    blob: Option<Incoming>,
    members: Option<(heapless::Vec<Member, M>, Lineage<M>)>,
}

/// The junior side of a merge: the senior view handed over to.
#[derive(Debug, Clone, Copy)]
struct MergeOut {
    addr: SocketAddr,
    view: ViewId,
    rank: Rank,
    attempt: u32,
}

/// An attempt this member coordinates.
#[derive(Debug)]
struct Lead<const M: usize> {
    attempt: u32,
    failed: RankSet,
    leaving: RankSet,
    phase: LeadPhase,
    replied: RankSet,
    cut: [u32; M],
    holder: [Rank; M],
    reported_suspects: RankSet,
    /// Ambiguous proposals the members reported (see `Primary`), and
    /// whether there were more than fit.
    ambiguous: heapless::Vec<(RankSet, u16, u32), LEAD_AMB>,
    ambiguous_overflow: bool,
    /// Members that may count towards the first primary view.
    founders: RankSet,
    /// When the current phase began (for `gmp_timeout`), and the next retry.
    since: Instant,
    next_retry: Instant,
    merge_in: Option<MergeIn<M>>,
    merge_out: Option<MergeOut>,
}

/// The membership layer.
#[derive(Debug)]
pub(crate) struct Gmp<const M: usize> {
    /// Whether Sync is in the stack (views are virtually synchronous).
    sync: bool,
    // Across views.
    leaving: bool,
    leave_since: Option<Instant>,
    exited: bool,
    /// The last view this member sent as coordinator, until every member has it.
    view_out: Option<Outgoing<M>>,
    /// Our members, on their way to a senior view.
    members_out: Option<Outgoing<M>>,
    /// Members that left in the last view change, to be told so.
    leave_done: heapless::Vec<SocketAddr, 8>,
    leave_done_rounds: u8,
    leave_done_at: Option<Instant>,
    /// Exit once `view_out` is done (a coordinator that left).
    exit_after_view: bool,
    /// The view blob last installed: (sender, sender's view, key), to
    /// acknowledge repeats.
    installed_from: Option<(SocketAddr, ViewId, u32)>,
    /// The highest `ltime` this member has proposed as coordinator. A
    /// proposal that some members may have installed must never be
    /// followed by another under the same id: the next one goes higher
    /// even if this member never installed the first.
    proposed_ltime: u32,
    /// This endpoint may count towards the first primary view.
    founder: bool,
    /// Members of the proposal this member last flushed for, if it could
    /// be primary, until its view (or another) is installed.
    pending: Option<(heapless::Vec<EndpointId, M>, u32)>,
    /// Proposals this member flushed for but never saw installed, which
    /// others may have installed as primary; cleared by a primary view.
    ambiguous: heapless::Vec<(heapless::Vec<EndpointId, M>, u32), AMB_MAX>,
    ambiguous_overflow: bool,
    /// Members an attempt this member followed in the current view change
    /// treated as failed: they are out of it for good (see `accept_block`).
    excluded: RankSet,
    /// Coordinator: the view just proposed took in a merge and would
    /// otherwise be primary: start another view change once it is in.
    again_after_install: bool,
    // Per view.
    suspects: RankSet,
    leavers: RankSet,
    want_view: bool,
    attempt_seen: u32,
    follow: Option<Follow>,
    lead: Option<Lead<M>>,
    view_in: Option<Incoming>,
    /// Junior: merge asked of this senior, at this time.
    asked_merge: Option<(SocketAddr, Instant)>,
    next_leave: Option<Instant>,
    /// `gmp_timeout`, cached for `deadline`.
    timeout: core::time::Duration,
}

impl<const M: usize> Gmp<M> {
    pub(crate) fn new(sync: bool, founder: bool) -> Self {
        Gmp {
            sync,
            founder,
            pending: None,
            ambiguous: heapless::Vec::new(),
            ambiguous_overflow: false,
            excluded: RankSet::EMPTY,
            again_after_install: false,
            leaving: false,
            leave_since: None,
            exited: false,
            view_out: None,
            members_out: None,
            leave_done: heapless::Vec::new(),
            leave_done_rounds: 0,
            leave_done_at: None,
            exit_after_view: false,
            installed_from: None,
            proposed_ltime: 0,
            suspects: RankSet::EMPTY,
            leavers: RankSet::EMPTY,
            want_view: false,
            attempt_seen: 0,
            follow: None,
            lead: None,
            view_in: None,
            asked_merge: None,
            next_leave: None,
            timeout: core::time::Duration::from_secs(2),
        }
    }

    // ---- helpers ----------------------------------------------------------

    fn in_view(cx: &Cx<'_, M>, set: RankSet) -> RankSet {
        let mut out = RankSet::EMPTY;
        for r in set.iter().filter(|r| r.index() < cx.view.len()) {
            out.insert(r);
        }
        out
    }

    /// The member this one believes coordinates: the lowest it does not suspect.
    fn coordinator(&self, cx: &Cx<'_, M>) -> Rank {
        cx.view
            .ranks()
            .find(|r| !self.suspects.contains(*r))
            .unwrap_or(cx.me())
    }

    fn survivors(cx: &Cx<'_, M>, failed: RankSet) -> RankSet {
        let mut s = RankSet::first(cx.view.len());
        for r in failed.iter() {
            s.remove(r);
        }
        s
    }

    fn covers(replied: RankSet, needed: RankSet) -> bool {
        needed.iter().all(|r| replied.contains(r))
    }

    /// A message of ours with a body, ready to go down.
    fn message<B: Serialize>(cx: &mut Cx<'_, M>, hdr: Hdr, body: Option<&B>) -> Option<Msg> {
        let mut msg = match cx.pool.alloc(cx.headroom()) {
            Ok(m) => m,
            Err(_) => {
                cx.stats.no_buffer += 1;
                return None;
            }
        };
        let body_ok = match body {
            Some(b) => cx
                .pool
                .write_tail(&mut msg, |out| {
                    postcard::to_slice(b, out).ok().map(|s| s.len())
                })
                .is_ok(),
            None => true,
        };
        if body_ok && cx.pool.push_header(&mut msg, &hdr).is_ok() {
            Some(msg)
        } else {
            cx.free(msg);
            None
        }
    }

    fn cast<B: Serialize>(cx: &mut Cx<'_, M>, hdr: Hdr, body: &B) {
        if let Some(msg) = Self::message(cx, hdr, Some(body)) {
            cx.down(Down::Cast {
                msg,
                reliable: false,
            });
        }
    }

    fn send<B: Serialize>(cx: &mut Cx<'_, M>, to: Rank, hdr: Hdr, body: Option<&B>) {
        if let Some(msg) = Self::message(cx, hdr, body) {
            cx.down(Down::Send {
                to,
                msg,
                reliable: false,
            });
        }
    }

    fn foreign<B: Serialize>(cx: &mut Cx<'_, M>, to: SocketAddr, hdr: Hdr, body: Option<&B>) {
        if let Some(msg) = Self::message(cx, hdr, body) {
            cx.down(Down::Foreign {
                to,
                layer: LayerKind::Gmp,
                msg,
                as_of: None,
            });
        }
    }

    fn body<B: serde::de::DeserializeOwned>(cx: &mut Cx<'_, M>, msg: Msg) -> Option<B> {
        let b = postcard::from_bytes::<B>(cx.pool.head_bytes(&msg)).ok();
        cx.free(msg);
        if b.is_none() {
            cx.stats.malformed += 1;
        }
        b
    }

    fn exit(&mut self, cx: &mut Cx<'_, M>) {
        if !self.exited {
            self.exited = true;
            cx.up(Up::Exit);
        }
    }

    // ---- elections and attempts -----------------------------------------

    /// Starts (or restarts) an attempt if this member coordinates and
    /// something must change.
    fn elect(&mut self, cx: &mut Cx<'_, M>) {
        // Once the next view is waiting to be installed, this view is over:
        // what is still handled in it (the layers that hold casts deliver
        // them first, `Layer::finish_view`) must not start a view change of
        // it. A suspicion that arrives now is the next view's business.
        if self.exited || cx.shared.next.is_some() {
            return;
        }
        if self.coordinator(cx) != cx.me() {
            // A lower rank came back (its Block cleared our suspicion):
            // this member follows it now, and its own attempt ends.
            if let Some(l) = self.lead.take() {
                if let Some(b) = l.merge_in.and_then(|m| m.blob) {
                    b.free(&mut cx.pool);
                }
            }
            return;
        }
        let mut failed = Self::in_view(cx, self.suspects);
        failed.remove(cx.me());
        let mut leaving = Self::in_view(cx, self.leavers);
        if self.leaving {
            leaving.insert(cx.me());
        }
        for r in failed.iter() {
            leaving.remove(r);
        }
        match &self.lead {
            Some(l) if l.failed == failed && l.leaving == leaving => {}
            Some(_) => {
                let (merge_in, merge_out) = self
                    .lead
                    .take()
                    .map_or((None, None), |l| (l.merge_in, l.merge_out));
                self.start(cx, failed, leaving, merge_in, merge_out);
            }
            None => {
                if !failed.is_empty() || !leaving.is_empty() || self.want_view {
                    self.start(cx, failed, leaving, None, None);
                }
            }
        }
    }

    fn start(
        &mut self,
        cx: &mut Cx<'_, M>,
        failed: RankSet,
        leaving: RankSet,
        merge_in: Option<MergeIn<M>>,
        merge_out: Option<MergeOut>,
    ) {
        self.attempt_seen += 1;
        let attempt = self.attempt_seen;
        self.want_view = false;
        let mut merge_in = merge_in;
        if let Some(mi) = merge_in.as_mut().filter(|m| m.granted == 0) {
            mi.granted = attempt;
        }
        let grant = merge_in.as_ref().map(|m| m.addr);
        self.lead = Some(Lead {
            attempt,
            failed,
            leaving,
            phase: LeadPhase::Blocking,
            replied: RankSet::EMPTY,
            cut: [0; M],
            holder: [cx.me(); M],
            reported_suspects: RankSet::EMPTY,
            ambiguous: heapless::Vec::new(),
            ambiguous_overflow: false,
            founders: RankSet::EMPTY,
            since: cx.now,
            next_retry: cx.now + cx.params.gmp_retry,
            merge_in,
            merge_out,
        });
        cx.stats.view_attempts += 1;
        debug!(
            "view change attempt {} in {:?}: failed {:?}, leaving {:?}, merge {}",
            attempt,
            crate::fmt::Dbg(cx.view.id()),
            crate::fmt::Dbg(failed),
            crate::fmt::Dbg(leaving),
            grant.is_some()
        );
        let block = Block {
            attempt,
            failed,
            leaving,
        };
        self.accept_block(cx, cx.me(), block);
        Self::cast(cx, Hdr::Block, &block);
        if let Some(addr) = grant {
            Self::foreign(cx, addr, Hdr::MergeGrant, Some(&MergeGrant { attempt }));
        }
    }

    /// A member's side of a Block (this member's own included).
    fn accept_block(&mut self, cx: &mut Cx<'_, M>, from: Rank, b: Block) {
        let lowest = cx.view.ranks().find(|r| !b.failed.contains(*r));
        // Nor does it follow one (see `elect`).
        if lowest != Some(from)
            || b.failed.contains(cx.me())
            || self.exited
            || cx.shared.next.is_some()
        {
            return;
        }
        // Once this member has followed an attempt that treats a member as
        // failed, stability stopped waiting for it and this member may have
        // freed casts it lacks: it cannot take part in this view change
        // again. An attempt led by it is ignored (it would wait forever for
        // those casts); one that still counts it in is answered with it
        // among the suspects, so its coordinator starts over without it.
        if self.excluded.contains(from) {
            return;
        }
        for r in b.failed.iter() {
            self.excluded.insert(r);
            self.suspects.insert(r);
        }
        if let Some(f) = &mut self.follow {
            if (f.attempt, f.coord) == (b.attempt, from) {
                f.heard = cx.now;
                let phase = f.phase;
                // The coordinator repeats itself: answer again.
                if phase >= Phase::Reported {
                    self.report(cx);
                }
                if phase == Phase::Flushed {
                    self.flushed(cx);
                }
                return;
            }
            if b.attempt < f.attempt || (b.attempt == f.attempt && from > f.coord) {
                return;
            }
        }
        self.attempt_seen = self.attempt_seen.max(b.attempt);
        self.suspects.remove(from);
        // A new attempt. If another coordinator runs it, whatever the last
        // attempt this member flushed for became is unknown to it now. If
        // the same one does (in the same view, or its Block would not be
        // accepted), that attempt ended without a view: a coordinator only
        // starts over when it did not finish.
        let same_coordinator = self.follow.as_ref().is_some_and(|f| f.coord == from);
        if let Some(p) = self.pending.take() {
            if !same_coordinator {
                self.remember_ambiguous(p);
            }
        }
        self.follow = Some(Follow {
            attempt: b.attempt,
            coord: from,
            phase: Phase::Blocking,
            heard: cx.now,
            leaving: b.leaving,
            epoch: 0,
            handoff: None,
        });
        cx.shared.failed = b.failed;
        cx.shared.cut_active = false;
        if self.sync {
            cx.down(Down::Flush);
        } else {
            self.report(cx);
        }
    }

    /// Sends (or repeats) this member's FlushOk.
    fn report(&mut self, cx: &mut Cx<'_, M>) {
        let Some(f) = &mut self.follow else { return };
        if f.phase == Phase::Blocking {
            f.phase = Phase::Reported;
        }
        let n = cx.view.len();
        let mut received = heapless::Vec::new();
        for s in 0..n {
            let _ = received.push(cx.shared.received[s]);
        }
        let mut ambiguous = heapless::Vec::new();
        for (amb, epoch) in &self.ambiguous {
            let mut here = RankSet::EMPTY;
            for r in cx.view.ranks() {
                if cx.view.member(r).is_some_and(|m| amb.contains(&m.id)) {
                    here.insert(r);
                }
            }
            let _ = ambiguous.push((here, amb.len() as u16, *epoch));
        }
        if self.ambiguous_overflow || ambiguous.len() > amb_report_max(M) {
            // More than a report can carry: no view with this member may be
            // primary until one is (which clears them).
            ambiguous.clear();
            let _ = ambiguous.push((RankSet::EMPTY, u16::MAX, u32::MAX));
        }
        let ok = FlushOk {
            attempt: f.attempt,
            received,
            suspects: Self::in_view(cx, self.suspects),
            ambiguous,
            founder: self.founder && Self::lineage_of(cx).members.is_empty(),
        };
        let coord = f.coord;
        if coord == cx.me() {
            self.on_flush_ok(cx, coord, ok);
        } else {
            Self::send(cx, coord, Hdr::FlushOk, Some(&ok));
        }
    }

    /// Sends (or repeats) this member's Flushed.
    fn flushed(&mut self, cx: &mut Cx<'_, M>) {
        let Some(f) = &mut self.follow else { return };
        if f.phase != Phase::Flushed {
            // Were this attempt's view installed as primary without this
            // member hearing of it, it would hold these members (a merge
            // is never primary, so no one else).
            let leaving = f.leaving;
            let survivors: heapless::Vec<EndpointId, M> = cx
                .view
                .ranks()
                .filter(|r| !cx.shared.failed.contains(*r) && !leaving.contains(*r))
                .filter_map(|r| cx.view.member(r).map(|m| m.id))
                .collect();
            let lineage = Self::lineage_of(cx);
            let could_be_primary = holds_majority(
                &lineage.members,
                survivors.iter().copied(),
                survivors.len(),
                cx.params.primary_quorum as usize,
            );
            // The coordinator said which epoch it would get.
            let epoch = f.epoch.max(lineage.epoch.saturating_add(1));
            self.pending = could_be_primary.then_some((survivors, epoch));
        }
        let Some(f) = &mut self.follow else { return };
        f.phase = Phase::Flushed;
        let (coord, attempt) = (f.coord, f.attempt);
        if coord == cx.me() {
            self.on_flushed(cx, coord, Flushed { attempt });
        } else {
            Self::send(cx, coord, Hdr::Flushed, Some(&Flushed { attempt }));
        }
    }

    fn on_flush_ok(&mut self, cx: &mut Cx<'_, M>, from: Rank, ok: FlushOk<M>) {
        let n = cx.view.len();
        let Some(l) = &mut self.lead else { return };
        if ok.attempt != l.attempt
            || l.phase != LeadPhase::Blocking
            || l.failed.contains(from)
            || ok.received.len() != n
        {
            return;
        }
        l.replied.insert(from);
        for (s, &r) in ok.received.iter().enumerate() {
            if r > l.cut[s] {
                l.cut[s] = r;
                l.holder[s] = from;
            }
        }
        for r in ok.suspects.iter().filter(|r| *r != cx.me()) {
            l.reported_suspects.insert(r);
        }
        if ok.founder {
            l.founders.insert(from);
        }
        for amb in ok.ambiguous {
            if !l.ambiguous.contains(&amb) && l.ambiguous.push(amb).is_err() {
                l.ambiguous_overflow = true;
            }
        }
        if !Self::covers(l.replied, Self::survivors(cx, l.failed)) {
            return;
        }
        // Everyone answered. New suspicions mean a new attempt without them.
        let mut news = RankSet::EMPTY;
        for r in l
            .reported_suspects
            .iter()
            .filter(|r| !l.failed.contains(*r))
        {
            news.insert(r);
        }
        if !news.is_empty() {
            for r in news.iter() {
                self.suspects.insert(r);
            }
            self.elect(cx);
            return;
        }
        l.phase = LeadPhase::Cutting;
        l.replied = RankSet::EMPTY;
        l.since = cx.now;
        let cut = self.cut_message(cx);
        if let Some(cut) = cut {
            self.on_cut(cx, cx.me(), cut.clone());
            Self::cast(cx, Hdr::Cut, &cut);
        }
    }

    fn cut_message(&self, cx: &Cx<'_, M>) -> Option<Cut<M>> {
        let l = self.lead.as_ref()?;
        let n = cx.view.len();
        let mut cut = heapless::Vec::new();
        let mut holders = heapless::Vec::new();
        for s in 0..n {
            let _ = cut.push(l.cut[s]);
            let r = Rank(s as u16);
            if l.failed.contains(r) && l.cut[s] > 0 {
                let _ = holders.push((r, l.holder[s]));
            }
        }
        // The epoch the view would have as a primary view: members keep it
        // with the proposal in case they never see the view.
        let epoch = l
            .ambiguous
            .iter()
            .map(|(_, _, e)| *e)
            .fold(Self::lineage_of(cx).epoch, u32::max)
            .saturating_add(1);
        Some(Cut {
            epoch,
            attempt: l.attempt,
            cut,
            holders,
        })
    }

    fn on_cut(&mut self, cx: &mut Cx<'_, M>, from: Rank, c: Cut<M>) {
        let n = cx.view.len();
        let Some(f) = &mut self.follow else { return };
        if (f.attempt, f.coord) != (c.attempt, from) || c.cut.len() != n {
            return;
        }
        f.heard = cx.now;
        match f.phase {
            Phase::Blocking => return,
            Phase::Cutting => return,
            Phase::Flushed => {
                self.flushed(cx);
                return;
            }
            Phase::Reported => f.phase = Phase::Cutting,
        }
        f.epoch = c.epoch;
        for (s, v) in c.cut.iter().enumerate() {
            cx.shared.limit[s] = *v;
            cx.shared.cut_holder[s] = None;
        }
        for (s, h) in c.holders.iter() {
            if let Some(slot) = cx.shared.cut_holder.get_mut(s.index()) {
                *slot = Some(*h);
            }
        }
        cx.shared.cut_active = true;
        if self.sync {
            cx.down(Down::Cut);
        } else {
            self.flushed(cx);
        }
    }

    fn on_flushed(&mut self, cx: &mut Cx<'_, M>, from: Rank, f: Flushed) {
        let Some(l) = &mut self.lead else { return };
        if f.attempt != l.attempt || l.phase != LeadPhase::Cutting || l.failed.contains(from) {
            return;
        }
        l.replied.insert(from);
        if !Self::covers(l.replied, Self::survivors(cx, l.failed)) {
            return;
        }
        l.since = cx.now;
        if let Some(out) = l.merge_out {
            // Junior: our view is flushed; hand our members to the senior.
            l.phase = LeadPhase::Merging;
            let handoff = Handoff {
                attempt: l.attempt,
                view: out.view,
                rank: out.rank,
                senior_attempt: out.attempt,
            };
            if let Some(me) = &mut self.follow {
                me.handoff = Some(handoff);
            }
            Self::cast(cx, Hdr::Handoff, &handoff);
            self.send_members(cx, out);
            return;
        }
        if l.merge_in.as_ref().is_some_and(|m| m.members.is_none()) {
            l.phase = LeadPhase::Merging;
            return;
        }
        self.prepare(cx);
    }

    /// Junior: sends this view's moving members to the senior coordinator.
    fn send_members(&mut self, cx: &mut Cx<'_, M>, out: MergeOut) {
        let Some(l) = &self.lead else { return };
        let moving: heapless::Vec<Member, M> = cx
            .view
            .ranks()
            .filter(|r| !l.failed.contains(*r) && !l.leaving.contains(*r))
            .filter_map(|r| cx.view.member(r).copied())
            .collect();
        let lineage = Self::lineage_of(cx);
        // The view id carries the highest ltime this side has used, so the
        // senior's proposal goes past it: the proposal's coordinator may be
        // one of ours.
        let mut view = cx.view.id();
        view.ltime = view.ltime.max(self.proposed_ltime);
        let head = MembersHead {
            view,
            members: moving.len() as u16,
            primary: cx.view.is_primary(),
            lineage_view: lineage.view,
            lineage: lineage.members.len() as u16,
            lineage_epoch: lineage.epoch,
        };
        let mut w = Writer::new(cx.headroom(), Self::chunk_room(cx));
        let built = (|| {
            w.record(&mut cx.pool, &head)?;
            for m in &moving {
                w.record(&mut cx.pool, m)?;
            }
            for id in &lineage.members {
                w.record(&mut cx.pool, id)?;
            }
            Ok::<(), crate::buffer::PoolError>(())
        })();
        if built.is_err() {
            w.discard(&mut cx.pool);
            return;
        }
        let Ok(chunks) = w.finish(&mut cx.pool) else {
            return;
        };
        if let Some(old) = self.members_out.take() {
            old.free(&mut cx.pool);
        }
        let mut targets = heapless::Vec::new();
        let _ = targets.push(out.addr);
        let mut o = Outgoing::new(
            BlobKind::Members,
            out.attempt,
            chunks,
            targets,
            (cx.now, cx.now + cx.params.gmp_timeout),
            (cx.view.id(), cx.me()),
        );
        o.send(cx);
        self.members_out = Some(o);
    }

    /// Keeps a proposal whose fate this member does not know.
    fn remember_ambiguous(&mut self, members: (heapless::Vec<EndpointId, M>, u32)) {
        if self.ambiguous.contains(&members) {
            return;
        }
        if self.ambiguous.push(members).is_err() {
            self.ambiguous_overflow = true;
        }
    }

    /// The last primary view this view descends from (itself if primary).
    fn lineage_of(cx: &Cx<'_, M>) -> Lineage<M> {
        let st = cx.view.state();
        if st.primary {
            Lineage {
                view: st.id,
                members: st.members.iter().map(|m| m.id).collect(),
                // A primary view's state carries its own epoch.
                epoch: st.lineage.epoch,
            }
        } else {
            st.lineage.clone()
        }
    }

    /// Room for a chunk's bytes in one datagram.
    fn chunk_room(cx: &Cx<'_, M>) -> usize {
        cx.pool
            .slot_size()
            .saturating_sub(cx.headroom() + SEAL_RESERVE)
    }

    /// Coordinator: every survivor flushed (and the merge, if any, is in):
    /// propose the next view to the layers above.
    fn prepare(&mut self, cx: &mut Cx<'_, M>) {
        let Some(l) = &mut self.lead else { return };
        l.phase = LeadPhase::Preparing;
        l.since = cx.now;
        let mut members: heapless::Vec<Member, M> = cx
            .view
            .ranks()
            .filter(|r| !l.failed.contains(*r) && !l.leaving.contains(*r))
            .filter_map(|r| cx.view.member(r).copied())
            .collect();
        let mut ltime = cx.view.ltime().max(self.proposed_ltime);
        let mut lineage = Self::lineage_of(cx);
        if let Some((joining, their)) = l.merge_in.as_ref().and_then(|m| m.members.as_ref()) {
            // A joiner at the address of one of our members is that
            // member's next incarnation: the old one is gone (it flushed
            // with us, or the attempt would not have got here), and two
            // members must never share an address.
            members.retain(|x| {
                x.id == cx.view.my_endpoint()
                    || !joining.iter().any(|j| j.addr == x.addr && j.id != x.id)
            });
            for m in joining.iter() {
                if !members.iter().any(|x| x.id == m.id) {
                    let _ = members.push(*m);
                }
            }
            ltime = ltime.max(l.merge_in.as_ref().map_or(0, |m| m.view.ltime));
            if (their.epoch, their.view.ltime) > (lineage.epoch, lineage.view.ltime) {
                lineage = their.clone();
            }
        }
        if members.is_empty() {
            // Nobody stays (the last member left): done.
            self.lead = None;
            self.exit(cx);
            return;
        }
        self.proposed_ltime = ltime + 1;
        let in_proposal = |r: Rank| {
            cx.view
                .member(r)
                .is_some_and(|m| members.iter().any(|x| x.id == m.id))
        };
        let settles = !l.ambiguous_overflow
            && l.ambiguous.iter().all(|(set, size, _)| {
                let kept = set.iter().filter(|r| in_proposal(*r)).count();
                2 * kept > usize::from(*size)
            });
        let check = PrimaryCheck {
            merge: l.merge_in.is_some(),
            settles_ambiguity: settles,
            founders: l.founders.iter().filter(|r| in_proposal(*r)).count() as u16,
        };
        // A merged view is never primary (see `Primary`); if it might
        // otherwise be (counting the other side's members as founders: the
        // next view change checks), that view change comes right after it.
        let joining = members
            .iter()
            .filter(|m| cx.view.rank_of(m.id).is_none())
            .count();
        self.again_after_install = check.merge
            && cx.view.state().stack.contains(LayerKind::Primary)
            && settles
            && holds_majority(
                &lineage.members,
                members.iter().map(|m| m.id),
                usize::from(check.founders) + joining,
                cx.params.primary_quorum as usize,
            );
        cx.shared.primary_check = check;
        // The id names this coordinator, whose clock chose the ltime, not
        // the view's first member: a junior coming first in the view may be
        // minting ids of its own with its own clock right now.
        let state = ViewState {
            id: ViewId {
                ltime: ltime + 1,
                coordinator: cx.view.my_endpoint(),
            },
            members,
            primary: false,
            lineage,
            stack: cx.view.state().stack.clone(),
        };
        cx.shared.proposal = Some(state);
        cx.up(Up::Prepare);
    }

    /// Coordinator: the proposal is annotated; send the view and install it.
    fn finish(&mut self, cx: &mut Cx<'_, M>, msg: Option<Msg>) {
        let Some(mut state) = cx.shared.proposal.take() else {
            if let Some(m) = msg {
                cx.free(m);
            }
            return;
        };
        let Some(l) = self.lead.take() else {
            if let Some(m) = msg {
                cx.free(m);
            }
            return;
        };
        if state.primary {
            // A primary view is its own lineage, one epoch past the line it
            // continues and every ambiguous proposal it was formed after.
            let after = l
                .ambiguous
                .iter()
                .map(|(_, _, e)| *e)
                .fold(state.lineage.epoch, u32::max);
            state.lineage = Lineage {
                view: state.id,
                members: state.members.iter().map(|m| m.id).collect(),
                epoch: after.saturating_add(1),
            };
        }
        if let Some(mi) = l.merge_in {
            if let Some(b) = mi.blob {
                b.free(&mut cx.pool);
            }
        }
        let chunks = self.encode_view(cx, &state, msg.as_ref());
        let me = cx.view.my_endpoint();
        let mut targets = heapless::Vec::new();
        for m in state.members.iter().filter(|m| m.id != me) {
            let _ = targets.push(m.addr);
        }
        self.leave_done.clear();
        for r in l.leaving.iter().filter(|r| *r != cx.me()) {
            if let Some(m) = cx.view.member(r) {
                let _ = self.leave_done.push(m.addr);
            }
        }
        self.leave_done_rounds = 3;
        self.leave_done_at = Some(cx.now);
        if let Some(old) = self.view_out.take() {
            old.free(&mut cx.pool);
        }
        if let Some(chunks) = chunks {
            let mut o = Outgoing::new(
                BlobKind::View,
                l.attempt,
                chunks,
                targets,
                (cx.now, cx.now + cx.params.gmp_timeout),
                (cx.view.id(), cx.me()),
            );
            o.send(cx);
            self.view_out = Some(o);
        }
        if state.rank_of(me).is_some() {
            cx.shared.next = Some(state);
            cx.up(Up::Install { msg });
        } else {
            // A coordinator that leaves exits once the others have the view.
            if let Some(m) = msg {
                cx.free(m);
            }
            self.exit_after_view = true;
            if self.view_out.as_ref().is_none_or(|o| o.done()) {
                self.exit(cx);
            }
        }
    }

    fn encode_view(
        &self,
        cx: &mut Cx<'_, M>,
        state: &ViewState<M>,
        msg: Option<&Msg>,
    ) -> Option<(crate::buffer::SlotQueue, u16)> {
        let mut stack = heapless::Vec::new();
        for k in state.stack.layers() {
            let _ = stack.push(k.code());
        }
        let message = msg.map_or(0, |m| cx.pool.len(m));
        let head = ViewHead {
            ltime: state.id.ltime,
            coordinator: state.id.coordinator,
            members: state.members.len() as u16,
            primary: state.primary,
            lineage_view: state.lineage.view,
            lineage: state.lineage.members.len() as u16,
            lineage_epoch: state.lineage.epoch,
            stack,
            message: message as u32,
        };
        let mut w = Writer::new(cx.headroom(), Self::chunk_room(cx));
        let built = (|| {
            w.record(&mut cx.pool, &head)?;
            for m in &state.members {
                w.record(&mut cx.pool, m)?;
            }
            for id in &state.lineage.members {
                w.record(&mut cx.pool, id)?;
            }
            Ok::<(), crate::buffer::PoolError>(())
        })();
        if built.is_err() {
            w.discard(&mut cx.pool);
            return None;
        }
        if let Some(m) = msg {
            // The view message lives in the same pool as the chunks being
            // written: copy it through a small buffer.
            let mut buf = [0u8; 256];
            let mut offset = 0;
            loop {
                let n = cx.pool.read_at(m, offset, &mut buf);
                if n == 0 {
                    break;
                }
                if w.raw(&mut cx.pool, &buf[..n]).is_err() {
                    w.discard(&mut cx.pool);
                    return None;
                }
                offset += n;
            }
        }
        w.finish(&mut cx.pool).ok()
    }

    /// Reads a complete view blob: the state, and the view message moved
    /// (not copied) out of the chunks.
    fn decode_view(cx: &mut Cx<'_, M>, blob: Incoming) -> Option<(ViewState<M>, Option<Msg>)> {
        let mut chunks = blob.chunks;
        let parsed = {
            let mut r = Reader::new(&cx.pool, &chunks);
            (|| {
                let head: ViewHead = r.record()?;
                let mut members = heapless::Vec::new();
                for _ in 0..head.members {
                    members.push(r.record::<Member>()?).ok()?;
                }
                let mut lineage = heapless::Vec::new();
                for _ in 0..head.lineage {
                    lineage.push(r.record::<EndpointId>()?).ok()?;
                }
                let (chunk, offset) = r.position();
                Some((head, members, lineage, chunk, offset))
            })()
        };
        let Some((head, members, lineage, raw_chunk, raw_offset)) = parsed else {
            cx.stats.malformed += 1;
            cx.pool.queue_clear(&mut chunks);
            return None;
        };
        let mut codes = heapless::Vec::<LayerKind, { crate::stack::MAX_LAYERS }>::new();
        for c in &head.stack {
            if let Some(k) = LayerKind::from_code(*c) {
                let _ = codes.push(k);
            }
        }
        let stack = match StackSpec::from_kinds(&codes) {
            Ok(s) if codes.len() == head.stack.len() => s,
            _ => {
                cx.stats.malformed += 1;
                cx.pool.queue_clear(&mut chunks);
                return None;
            }
        };
        // The raw part: drop the chunks before it and the records in its
        // first chunk, keep the rest linked as one message.
        let mut message: Option<Msg> = None;
        let mut index = 0;
        while let Some((_, mut chunk)) = cx.pool.queue_pop_front(&mut chunks) {
            let keep = index > raw_chunk
                || (index == raw_chunk && cx.pool.pop_front(&mut chunk, raw_offset).is_ok());
            if keep && cx.pool.len(&chunk) > 0 {
                match message.as_mut() {
                    Some(m) => cx.pool.concat(m, chunk),
                    None => message = Some(chunk),
                }
            } else {
                cx.free(chunk);
            }
            index += 1;
        }
        let got = message.as_ref().map_or(0, |m| cx.pool.len(m));
        if got != head.message as usize {
            if let Some(m) = message {
                cx.free(m);
            }
            cx.stats.malformed += 1;
            return None;
        }
        let state = ViewState {
            id: ViewId {
                ltime: head.ltime,
                coordinator: head.coordinator,
            },
            members,
            primary: head.primary,
            lineage: Lineage {
                view: head.lineage_view,
                members: lineage,
                epoch: head.lineage_epoch,
            },
            stack,
        };
        Some((state, message))
    }

    fn decode_members(
        cx: &mut Cx<'_, M>,
        blob: Incoming,
    ) -> Option<(heapless::Vec<Member, M>, Lineage<M>, u32)> {
        let mut chunks = blob.chunks;
        let parsed = {
            let mut r = Reader::new(&cx.pool, &chunks);
            (|| {
                let head: MembersHead = r.record()?;
                let mut members = heapless::Vec::new();
                for _ in 0..head.members {
                    members.push(r.record::<Member>()?).ok()?;
                }
                let mut lineage = heapless::Vec::new();
                for _ in 0..head.lineage {
                    lineage.push(r.record::<EndpointId>()?).ok()?;
                }
                Some((
                    members,
                    Lineage {
                        view: head.lineage_view,
                        members: lineage,
                        epoch: head.lineage_epoch,
                    },
                    head.view.ltime,
                ))
            })()
        };
        cx.pool.queue_clear(&mut chunks);
        if parsed.is_none() {
            cx.stats.malformed += 1;
        }
        parsed
    }

    // ---- foreign messages ---------------------------------------------------

    fn on_foreign(
        &mut self,
        cx: &mut Cx<'_, M>,
        from: SocketAddr,
        view: ViewId,
        rank: Rank,
        mut msg: Msg,
    ) {
        let Some(hdr) = cx.pool.pop_header::<Hdr>(&mut msg) else {
            cx.stats.malformed += 1;
            cx.free(msg);
            return;
        };
        match hdr {
            Hdr::Chunk {
                blob,
                key,
                index,
                total,
            } => self.on_chunk(cx, from, view, rank, (blob, key, index, total), msg),
            Hdr::ChunkAck { blob, key } => {
                cx.free(msg);
                for o in [&mut self.view_out, &mut self.members_out]
                    .into_iter()
                    .flatten()
                {
                    if o.kind == blob && o.key == key {
                        o.ack(from);
                    }
                }
                self.check_outgoing(cx);
            }
            Hdr::LeaveDone => {
                cx.free(msg);
                if self.leaving {
                    self.exit(cx);
                }
            }
            Hdr::MergeRequest => {
                if let Some(req) = Self::body::<MergeRequest>(cx, msg) {
                    self.on_merge_request(cx, from, view, req);
                }
            }
            Hdr::MergeGrant => {
                if let Some(g) = Self::body::<MergeGrant>(cx, msg) {
                    self.on_merge_grant(cx, from, view, rank, g);
                }
            }
            _ => {
                cx.stats.malformed += 1;
                cx.free(msg);
            }
        }
    }

    fn on_chunk(
        &mut self,
        cx: &mut Cx<'_, M>,
        from: SocketAddr,
        view: ViewId,
        rank: Rank,
        (kind, key, index, total): (BlobKind, u32, u16, u16),
        msg: Msg,
    ) {
        if total == 0 || total > blob::MAX_CHUNKS {
            cx.stats.malformed += 1;
            cx.free(msg);
            return;
        }
        match kind {
            BlobKind::View => {
                if self.installed_from == Some((from, view, key)) {
                    // A repeat of the view already installed: the
                    // coordinator missed the acknowledgement.
                    cx.free(msg);
                    Self::foreign::<()>(cx, from, Hdr::ChunkAck { blob: kind, key }, None);
                    return;
                }
                if !self.expects_view(cx, view, rank, key) {
                    cx.free(msg);
                    return;
                }
                if !self
                    .view_in
                    .as_ref()
                    .is_some_and(|b| b.matches(kind, key, from, total))
                {
                    if let Some(old) = self.view_in.take() {
                        old.free(&mut cx.pool);
                    }
                    self.view_in = Some(Incoming::new(kind, key, from, total));
                }
                if let Some(f) = &mut self.follow {
                    f.heard = cx.now;
                }
                let Some(b) = &mut self.view_in else {
                    cx.free(msg);
                    return;
                };
                b.add(&mut cx.pool, index, msg);
                if b.complete() {
                    let Some(b) = self.view_in.take() else { return };
                    let Some((state, message)) = Self::decode_view(cx, b) else {
                        return;
                    };
                    // A view without this member, or one not newer than the
                    // view it is in (a senior finishing a merge this member
                    // gave up on, from what it sent then), is not for it.
                    if state.rank_of(cx.view.my_endpoint()).is_none()
                        || state.id.ltime <= cx.view.ltime()
                    {
                        if let Some(m) = message {
                            cx.free(m);
                        }
                        return;
                    }
                    Self::foreign::<()>(cx, from, Hdr::ChunkAck { blob: kind, key }, None);
                    self.installed_from = Some((from, view, key));
                    cx.shared.next = Some(state);
                    cx.up(Up::Install { msg: message });
                }
            }
            BlobKind::Members => {
                let Some(mi) = self.lead.as_mut().and_then(|l| {
                    let attempt = l.attempt;
                    l.merge_in
                        .as_mut()
                        .filter(|m| m.addr == from && (m.granted..=attempt).contains(&key))
                }) else {
                    cx.free(msg);
                    return;
                };
                if mi.members.is_some() {
                    cx.free(msg);
                    Self::foreign::<()>(cx, from, Hdr::ChunkAck { blob: kind, key }, None);
                    return;
                }
                if !mi
                    .blob
                    .as_ref()
                    .is_some_and(|b| b.matches(kind, key, from, total))
                {
                    if let Some(old) = mi.blob.take() {
                        old.free(&mut cx.pool);
                    }
                    mi.blob = Some(Incoming::new(kind, key, from, total));
                }
                let Some(b) = &mut mi.blob else {
                    cx.free(msg);
                    return;
                };
                b.add(&mut cx.pool, index, msg);
                if b.complete() {
                    let Some(b) = mi.blob.take() else { return };
                    let decoded = Self::decode_members(cx, b);
                    if decoded.is_some() {
                        Self::foreign::<()>(cx, from, Hdr::ChunkAck { blob: kind, key }, None);
                    }
                    let ready = match self.lead.as_mut() {
                        Some(l) => {
                            if let Some(mi) = l.merge_in.as_mut() {
                                if let Some((members, lineage, ltime)) = decoded {
                                    mi.members = Some((members, lineage));
                                    mi.view.ltime = mi.view.ltime.max(ltime);
                                }
                            }
                            l.phase == LeadPhase::Merging
                        }
                        None => false,
                    };
                    if ready {
                        self.prepare(cx);
                    }
                }
            }
        }
    }

    /// Whether a view blob from `view`/`rank` for attempt `key` is the one
    /// this member waits for.
    fn expects_view(&self, cx: &Cx<'_, M>, view: ViewId, rank: Rank, key: u32) -> bool {
        let Some(f) = &self.follow else { return false };
        let ready = if self.sync {
            f.phase == Phase::Flushed
        } else {
            f.phase >= Phase::Reported
        };
        let own = view == cx.view.id() && rank == f.coord && key == f.attempt;
        // The senior may have restarted its attempt after taking our
        // members in (someone else failed meanwhile): its attempt numbers
        // only grow, and a view from it without us is never sent to us.
        let senior = f
            .handoff
            .is_some_and(|h| h.view == view && h.rank == rank && key >= h.senior_attempt);
        ready && (own || senior)
    }

    fn on_merge_request(
        &mut self,
        cx: &mut Cx<'_, M>,
        from: SocketAddr,
        view: ViewId,
        req: MergeRequest,
    ) {
        let size = cx.view.len() as u16;
        let senior = size > req.size || (size == req.size && cx.view.id() < view);
        // A coordinator that has itself asked a senior to merge waits for
        // that answer: taking in a junior now would leave the senior's
        // grant unanswered and the senior blocked until gmp_timeout.
        let asking = self
            .asked_merge
            .is_some_and(|(_, at)| cx.now < at + cx.params.gmp_timeout);
        let idle = self.lead.is_none()
            && self.follow.is_none()
            && !self.exited
            && !self.leaving
            && !asking;
        // The junior of the merge under way asks again from a newer view:
        // it gave up on the first one and installed a view of its own. Take
        // it in afresh, or the view this attempt sends would be built from
        // what it was then.
        if let Some(l) = self.lead.as_mut() {
            let attempt = l.attempt;
            if let Some(mi) = l
                .merge_in
                .as_mut()
                .filter(|m| m.addr == from && m.view != view)
            {
                if let Some(b) = mi.blob.take() {
                    b.free(&mut cx.pool);
                }
                *mi = MergeIn {
                    addr: from,
                    view,
                    granted: attempt,
                    blob: None,
                    members: None,
                };
                Self::foreign(cx, from, Hdr::MergeGrant, Some(&MergeGrant { attempt }));
                return;
            }
        }
        if view == cx.view.id() || !senior || !idle || self.coordinator(cx) != cx.me() {
            return;
        }
        if cx.view.len() + usize::from(req.size) > M {
            return;
        }
        let merge_in = MergeIn {
            addr: from,
            view,
            granted: 0,
            blob: None,
            members: None,
        };
        self.start(cx, RankSet::EMPTY, RankSet::EMPTY, Some(merge_in), None);
    }

    fn on_merge_grant(
        &mut self,
        cx: &mut Cx<'_, M>,
        from: SocketAddr,
        view: ViewId,
        rank: Rank,
        g: MergeGrant,
    ) {
        let asked = self.asked_merge.is_some_and(|(a, _)| a == from);
        let idle = self.lead.is_none() && self.follow.is_none() && !self.exited;
        if !asked || !idle || self.coordinator(cx) != cx.me() {
            return;
        }
        self.asked_merge = None;
        let out = MergeOut {
            addr: from,
            view,
            rank,
            attempt: g.attempt,
        };
        let mut leaving = Self::in_view(cx, self.leavers);
        if self.leaving {
            leaving.insert(cx.me());
        }
        let mut failed = Self::in_view(cx, self.suspects);
        failed.remove(cx.me());
        self.start(cx, failed, leaving, None, Some(out));
    }

    /// Frees finished transfers; a coordinator that left exits after its view.
    fn check_outgoing(&mut self, cx: &mut Cx<'_, M>) {
        if self
            .view_out
            .as_ref()
            .is_some_and(|o| o.done() || o.expired(cx.now))
        {
            if let Some(o) = self.view_out.take() {
                o.free(&mut cx.pool);
            }
            if self.exit_after_view {
                self.exit(cx);
            }
        }
        if self
            .members_out
            .as_ref()
            .is_some_and(|o| o.done() || o.expired(cx.now))
        {
            if let Some(o) = self.members_out.take() {
                o.free(&mut cx.pool);
            }
        }
    }

    fn send_leave(&mut self, cx: &mut Cx<'_, M>) {
        let coord = self.coordinator(cx);
        if coord == cx.me() {
            self.elect(cx);
        } else {
            Self::send::<()>(cx, coord, Hdr::Leave, None);
        }
        self.next_leave = Some(cx.now + cx.params.gmp_retry);
    }

    /// In-view messages of ours, from a cast or a send.
    fn on_control(&mut self, cx: &mut Cx<'_, M>, from: Rank, hdr: Hdr, msg: Msg) {
        match hdr {
            Hdr::Block => {
                if let Some(b) = Self::body::<Block>(cx, msg) {
                    self.accept_block(cx, from, b);
                }
            }
            Hdr::FlushOk => {
                if let Some(ok) = Self::body::<FlushOk<M>>(cx, msg) {
                    self.on_flush_ok(cx, from, ok);
                }
            }
            Hdr::Cut => {
                if let Some(c) = Self::body::<Cut<M>>(cx, msg) {
                    self.on_cut(cx, from, c);
                }
            }
            Hdr::Flushed => {
                if let Some(f) = Self::body::<Flushed>(cx, msg) {
                    self.on_flushed(cx, from, f);
                }
            }
            Hdr::Handoff => {
                if let Some(h) = Self::body::<Handoff>(cx, msg) {
                    if let Some(f) = self
                        .follow
                        .as_mut()
                        .filter(|f| f.coord == from && f.attempt == h.attempt)
                    {
                        f.handoff = Some(h);
                        f.heard = cx.now;
                    }
                }
            }
            Hdr::Leave => {
                cx.free(msg);
                self.leavers.insert(from);
                self.elect(cx);
            }
            _ => {
                cx.stats.malformed += 1;
                cx.free(msg);
            }
        }
    }
}

impl<const M: usize> Layer<M> for Gmp<M> {
    fn down(&mut self, ev: Down, cx: &mut Cx<'_, M>) {
        if self.exited {
            if let Some(m) = ev.into_msg() {
                cx.free(m);
            }
            return;
        }
        match ev {
            Down::Cast { mut msg, reliable } => {
                if cx.pool.push_header(&mut msg, &Hdr::Data).is_ok() {
                    cx.down(Down::Cast { msg, reliable });
                } else {
                    cx.free(msg);
                }
            }
            Down::Send {
                to,
                mut msg,
                reliable,
            } => {
                if cx.pool.push_header(&mut msg, &Hdr::Data).is_ok() {
                    cx.down(Down::Send { to, msg, reliable });
                } else {
                    cx.free(msg);
                }
            }
            // A subcast arrives as a send: it carries a send's header.
            Down::Subcast { to, mut msg } => {
                if cx.pool.push_header(&mut msg, &Hdr::Data).is_ok() {
                    cx.down(Down::Subcast { to, msg });
                } else {
                    cx.free(msg);
                }
            }
            Down::Leave => {
                self.leaving = true;
                self.leave_since = Some(cx.now);
                if cx.view.len() == 1 {
                    self.exit(cx);
                } else {
                    self.send_leave(cx);
                }
            }
            Down::Suspect(set) => {
                for r in Self::in_view(cx, set).iter().filter(|r| *r != cx.me()) {
                    self.suspects.insert(r);
                }
                self.elect(cx);
            }
            Down::RequestView => {
                self.want_view = true;
                self.elect(cx);
            }
            Down::Ready { msg } => {
                if self
                    .lead
                    .as_ref()
                    .is_some_and(|l| l.phase == LeadPhase::Preparing)
                {
                    self.finish(cx, msg);
                } else if let Some(m) = msg {
                    cx.free(m);
                }
            }
            Down::Merge { to, view } => {
                let asked = self
                    .asked_merge
                    .is_some_and(|(_, at)| cx.now < at + cx.params.gmp_timeout);
                let idle = self.lead.is_none() && self.follow.is_none() && !self.leaving;
                if idle && !asked && view != cx.view.id() && self.coordinator(cx) == cx.me() {
                    let req = MergeRequest {
                        size: cx.view.len() as u16,
                    };
                    Self::foreign(cx, to, Hdr::MergeRequest, Some(&req));
                    self.asked_merge = Some((to, cx.now));
                    cx.stats.merge_requests += 1;
                    debug!("asking the view at {:?} to merge", crate::fmt::Dbg(to));
                }
            }
            other => cx.down(other),
        }
    }

    fn up(&mut self, ev: Up, cx: &mut Cx<'_, M>) {
        if self.exited {
            if let Some(m) = ev.into_msg() {
                cx.free(m);
            }
            return;
        }
        match ev {
            Up::Cast {
                from,
                mut msg,
                reliable,
            } => match cx.pool.pop_header::<Hdr>(&mut msg) {
                Some(Hdr::Data) => cx.up(Up::Cast {
                    from,
                    msg,
                    reliable,
                }),
                Some(hdr) => self.on_control(cx, from, hdr, msg),
                None => {
                    cx.stats.malformed += 1;
                    cx.free(msg);
                }
            },
            Up::Send {
                from,
                mut msg,
                reliable,
            } => match cx.pool.pop_header::<Hdr>(&mut msg) {
                Some(Hdr::Data) => cx.up(Up::Send {
                    from,
                    msg,
                    reliable,
                }),
                Some(hdr) => self.on_control(cx, from, hdr, msg),
                None => {
                    cx.stats.malformed += 1;
                    cx.free(msg);
                }
            },
            Up::Foreign {
                from,
                view,
                rank,
                layer: LayerKind::Gmp,
                msg,
            } => self.on_foreign(cx, from, view, rank, msg),
            Up::Suspect(set) => {
                for r in Self::in_view(cx, set).iter().filter(|r| *r != cx.me()) {
                    self.suspects.insert(r);
                }
                self.elect(cx);
            }
            Up::Ready => {
                if self.follow.is_some_and(|f| f.phase == Phase::Blocking) {
                    self.report(cx);
                }
            }
            Up::Flushed => {
                if self.follow.is_some_and(|f| f.phase == Phase::Cutting) {
                    self.flushed(cx);
                }
            }
            other => cx.up(other),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        if self.exited {
            return None;
        }
        let mut t = None;
        if let Some(l) = &self.lead {
            t = earliest(t, Some(l.next_retry));
        }
        if let Some(f) = &self.follow {
            t = earliest(t, Some(f.heard + self.timeout));
        }
        for o in [&self.view_out, &self.members_out].into_iter().flatten() {
            t = earliest(t, o.deadline());
        }
        t = earliest(t, self.next_leave);
        t = earliest(t, self.leave_done_at);
        if let Some(l) = &self.lead {
            t = earliest(t, Some(l.since + self.timeout));
        }
        t
    }

    fn timeout(&mut self, cx: &mut Cx<'_, M>) {
        self.timeout = cx.params.gmp_timeout;
        let now = cx.now;
        // Transfers under way.
        for o in [&mut self.view_out, &mut self.members_out]
            .into_iter()
            .flatten()
        {
            o.tick(now);
            o.send(cx);
        }
        self.check_outgoing(cx);
        // Leavers of the last view change.
        if self.leave_done_at.is_some_and(|t| now >= t) {
            self.leave_done_rounds = self.leave_done_rounds.saturating_sub(1);
            for i in 0..self.leave_done.len() {
                let to = self.leave_done[i];
                Self::foreign::<()>(cx, to, Hdr::LeaveDone, None);
            }
            self.leave_done_at = (self.leave_done_rounds > 0).then(|| now + cx.params.gmp_retry);
        }
        // A member leaving: ask again, and give up waiting after a while.
        if self.leaving {
            if self
                .leave_since
                .is_some_and(|s| now >= s + cx.params.gmp_timeout + cx.params.gmp_timeout)
            {
                self.exit(cx);
                return;
            }
            if self.next_leave.is_some_and(|t| now >= t) {
                if self.lead.is_none() && self.follow.is_none() {
                    self.send_leave(cx);
                } else {
                    // A view change is under way: ask again after it.
                    self.next_leave = Some(now + cx.params.gmp_retry);
                }
            }
        } else {
            self.next_leave = None;
        }
        // The attempt this member coordinates.
        if let Some(l) = &mut self.lead {
            if now >= l.since + cx.params.gmp_timeout {
                match l.phase {
                    LeadPhase::Blocking | LeadPhase::Cutting => {
                        // Whoever has not answered is treated as failed.
                        let mut silent = Self::survivors(cx, l.failed);
                        for r in l.replied.iter() {
                            silent.remove(r);
                        }
                        silent.remove(cx.me());
                        if silent.is_empty() && !l.replied.contains(cx.me()) {
                            // Everyone answered but this member, whose own
                            // flush waits for its sends to be acknowledged:
                            // whoever does not acknowledge them is as good
                            // as silent.
                            for r in Self::survivors(cx, l.failed).iter() {
                                if cx.shared.unacked.get(r.index()).is_some_and(|b| b.msgs > 0) {
                                    silent.insert(r);
                                }
                            }
                        }
                        for r in silent.iter() {
                            self.suspects.insert(r);
                        }
                        cx.stats.view_timeouts += 1;
                        warn!(
                            "view change attempt {} timed out; silent: {:?}",
                            l.attempt,
                            crate::fmt::Dbg(silent)
                        );
                        if silent.is_empty() {
                            // Nobody to blame: try again from the start, so
                            // the attempt's timers move on.
                            let l = self.lead.take();
                            if let Some(l) = l {
                                self.start(cx, l.failed, l.leaving, l.merge_in, l.merge_out);
                            }
                        } else {
                            self.elect(cx);
                        }
                        return;
                    }
                    LeadPhase::Merging => {
                        // The other side of the merge did not come through.
                        l.merge_in = None;
                        l.merge_out = None;
                        if let Some(f) = &mut self.follow {
                            f.handoff = None;
                        }
                        self.prepare(cx);
                        return;
                    }
                    LeadPhase::Preparing => {
                        // The application did not give a view message in time.
                        self.finish(cx, None);
                        return;
                    }
                }
            }
            if now >= l.next_retry {
                l.next_retry = now + cx.params.gmp_retry;
                let (attempt, failed, leaving, phase) = (l.attempt, l.failed, l.leaving, l.phase);
                let grant = l
                    .merge_in
                    .as_ref()
                    .filter(|m| m.members.is_none())
                    .map(|m| m.addr);
                if phase == LeadPhase::Blocking {
                    Self::cast(
                        cx,
                        Hdr::Block,
                        &Block {
                            attempt,
                            failed,
                            leaving,
                        },
                    );
                } else if let Some(cut) = self.cut_message(cx) {
                    Self::cast(cx, Hdr::Cut, &cut);
                }
                if let Some(addr) = grant {
                    Self::foreign(cx, addr, Hdr::MergeGrant, Some(&MergeGrant { attempt }));
                }
            }
        }
        // The attempt this member follows: a silent coordinator is suspected.
        if let Some(f) = &mut self.follow {
            if now >= f.heard + cx.params.gmp_timeout {
                if f.coord == cx.me() {
                    // This member coordinates the attempt it follows: it
                    // hears itself; its lead has timers of its own.
                    f.heard = now;
                } else {
                    self.suspects.insert(f.coord);
                    self.follow = None;
                    self.elect(cx);
                }
            }
        }
    }

    fn pending(&self) -> bool {
        [&self.view_out, &self.members_out]
            .into_iter()
            .flatten()
            .any(|o| o.pending())
    }

    fn resume(&mut self, cx: &mut Cx<'_, M>) {
        for o in [&mut self.view_out, &mut self.members_out]
            .into_iter()
            .flatten()
        {
            o.send(cx);
        }
    }

    fn clear(&mut self, pool: &mut Pool<'_>) {
        if let Some(b) = self.view_in.take() {
            b.free(pool);
        }
        if let Some(l) = self.lead.take() {
            if let Some(b) = l.merge_in.and_then(|m| m.blob) {
                b.free(pool);
            }
        }
    }

    fn install(&mut self, cx: &mut Cx<'_, M>) {
        self.clear(&mut cx.pool);
        let st = cx.view.state();
        if st.primary {
            // It held a majority of everything this member reported.
            self.pending = None;
            self.ambiguous.clear();
            self.ambiguous_overflow = false;
        } else if let Some(p) = self.pending.take() {
            let same =
                p.0.len() == st.members.len() && st.members.iter().all(|m| p.0.contains(&m.id));
            if !same {
                self.remember_ambiguous(p);
            }
        }
        self.suspects = RankSet::EMPTY;
        self.excluded = RankSet::EMPTY;
        self.leavers = RankSet::EMPTY;
        self.want_view = false;
        // Attempt numbers keep growing from view to view, so that what a
        // coordinator sends in one view change is never mistaken for what it
        // sent in an earlier one.
        self.follow = None;
        self.asked_merge = None;
        if core::mem::take(&mut self.again_after_install)
            && !self.leaving
            && self.coordinator(cx) == cx.me()
        {
            self.want_view = true;
            self.elect(cx);
        }
        if self.leaving && !self.exited {
            // Still here: ask the new coordinator.
            if cx.view.len() == 1 {
                self.exit(cx);
            } else {
                self.send_leave(cx);
            }
        }
    }

    fn max_header() -> usize {
        Hdr::POSTCARD_MAX_SIZE
    }
}
