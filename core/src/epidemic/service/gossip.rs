//! The MSS-to-MSS protocol: rounds, digests, member lists, suspicion and
//! probes, failure, reincarnation and cleanup.
//!
//! A round bumps the MSS's own heartbeat and pushes its digest (every
//! peer's heartbeat and list version) to one random peer. The receiver
//! merges it (largest heartbeat wins; the local timestamp is updated on
//! change), answers with the entries it has newer (push-pull), pushes the
//! member lists it has newer and, in delta mode, pulls those it has older.
//! Member lists travel as ranges of stamps: every entry of one owner with
//! a stamp in `(from, to]`, so a receiver holding every stamp up to
//! `from` can advance to `to` and never needs the whole list again.

use core::net::SocketAddr;

use super::{Job, PeerEntry, Ready, Service};
use crate::epidemic::config::GossipMode;
use crate::epidemic::event::{Change, Event};
use crate::epidemic::ids::{ContextId, MssId, Status};
use crate::epidemic::service::MemberEntry;
use crate::epidemic::wire::{
    self, DigestHead, DigestItem, Items, Kind, MAX_DATAGRAM, MemberItem, MembersHead, PREFIX_LEN,
    Probe, PullHead, PullItem, Writer,
};

/// Room for the largest digest or members head: two [`MssId`]s (at most 30
/// bytes each with an IPv6 address) and a few varints.
const HEAD_ROOM: usize = 80;

impl<P, M, const EQ: usize, const CQ: usize> Service<P, M, EQ, CQ>
where
    P: AsRef<[PeerEntry]> + AsMut<[PeerEntry]>,
    M: AsRef<[MemberEntry]> + AsMut<[MemberEntry]>,
{
    // ---- rounds ----------------------------------------------------------

    /// One gossip round of the context in `slot`.
    pub(super) fn round(&mut self, slot: u8) {
        let now = self.now;
        let cfg = self.config;
        let Some(c) = self.ctx_mut(slot) else { return };
        c.next_round = now + cfg.round;
        let (me, leaving) = (c.me, c.leaving);
        if let Some(n) = leaving {
            if n == 0 {
                self.remove_context(slot);
                return;
            }
            if let Some(c) = self.ctx_mut(slot) {
                c.leaving = Some(n - 1);
            }
        }
        self.stats.rounds += 1;
        if let Some(p) = self.peers.get_mut((slot, me)) {
            p.heartbeat += 1;
            p.updated = now;
        }
        self.check_peers(slot);
        self.cleanup_members(slot);
        let round = match self.ctx_mut(slot) {
            Some(c) => {
                c.rounds = c.rounds.wrapping_add(1);
                c.rounds
            }
            None => return,
        };
        let heal = match round % super::HEAL_EVERY {
            0 => self.pick_failed(slot),
            r if r == super::HEAL_EVERY / 2 => self.pick_seed(),
            _ => None,
        };
        let to = match heal.or_else(|| self.pick_peer(slot, None).map(|p| p.addr)) {
            Some(a) => a,
            None => match self.pick_seed() {
                Some(a) => a,
                None => return,
            },
        };
        self.job(Job::Digest {
            slot,
            to,
            reply: false,
            after: None,
        });
        if cfg.mode == GossipMode::Full {
            if let Some(first) = self
                .peers
                .all()
                .get(self.peers.range(|e| e.slot.cmp(&slot)).start)
            {
                let owner = first.id;
                self.job(Job::Members {
                    slot,
                    to,
                    owner,
                    since: 0,
                    all: true,
                });
            }
        }
    }

    /// A random seed address.
    fn pick_seed(&mut self) -> Option<SocketAddr> {
        if self.seeds.is_empty() {
            return None;
        }
        let i = self.random_below(self.seeds.len());
        Some(self.seeds[i])
    }

    /// The address of a random failed peer of `slot` (not of this address).
    fn pick_failed(&mut self, slot: u8) -> Option<SocketAddr> {
        let r = self.peers.range(|e| e.slot.cmp(&slot));
        let me = self.addr;
        let ok = |e: &PeerEntry| e.status == Status::Failed && e.id.addr != me;
        let n = self.peers.all()[r.clone()].iter().filter(|e| ok(e)).count();
        if n == 0 {
            return None;
        }
        let k = self.random_below(n);
        self.peers.all()[r]
            .iter()
            .filter(|e| ok(e))
            .nth(k)
            .map(|e| e.id.addr)
    }

    /// A random member peer of `slot` other than this MSS and `except`.
    pub(super) fn pick_peer(&mut self, slot: u8, except: Option<MssId>) -> Option<MssId> {
        let me = self.ctx(slot)?.me;
        let r = self.peers.range(|e| e.slot.cmp(&slot));
        let ok = |e: &PeerEntry| e.status.is_member() && e.id != me && Some(e.id) != except;
        let n = self.peers.all()[r.clone()].iter().filter(|e| ok(e)).count();
        if n == 0 {
            return None;
        }
        let k = self.random_below(n);
        self.peers.all()[r]
            .iter()
            .filter(|e| ok(e))
            .nth(k)
            .map(|e| e.id)
    }

    /// Suspects, probes, fails and removes peers of `slot` by their silence.
    fn check_peers(&mut self, slot: u8) {
        let now = self.now;
        let cfg = self.config;
        let Some(me) = self.ctx(slot).map(|c| c.me) else {
            return;
        };
        let r = self.peers.range(|e| e.slot.cmp(&slot));
        let live = self.peers.all()[r.clone()]
            .iter()
            .filter(|e| e.status.is_member())
            .count();
        let (suspect_after, fail_after) = (cfg.suspect_timeout(live), cfg.fail_timeout(live));
        let mut expired = false;
        for i in r {
            let e = self.peers.all()[i];
            if e.id == me {
                continue;
            }
            match e.status {
                Status::Alive | Status::Suspect => {
                    let silent = now - e.updated;
                    if silent >= fail_after {
                        self.stats.peer_failures += 1;
                        self.end_peer(i, Status::Failed);
                    } else if cfg.suspicion && silent >= suspect_after {
                        if e.status == Status::Alive {
                            let p = &mut self.peers.all_mut()[i];
                            p.status = Status::Suspect;
                            p.since = now;
                            self.stats.suspicions += 1;
                            self.peer_event(slot, e.id, Change::Suspected);
                        }
                        self.probe_suspect(slot, me, e.id, i);
                    }
                }
                Status::Left | Status::Failed => {
                    expired |= now - e.since >= cfg.cleanup_after;
                }
            }
        }
        if expired {
            let gone = |e: &PeerEntry| {
                e.slot == slot && !e.status.is_member() && now - e.since >= cfg.cleanup_after
            };
            self.peers.retain(|e| !gone(e));
            let peers = &self.peers;
            self.members
                .retain(|m| m.slot != slot || peers.get((slot, m.owner)).is_some());
        }
    }

    /// Probes suspected peer `target` directly and through
    /// `indirect_probes` others; an answer carries its current heartbeat.
    fn probe_suspect(&mut self, slot: u8, me: MssId, target: MssId, i: usize) {
        let Some(ctx) = self.ctx(slot).map(|c| c.id) else {
            return;
        };
        self.nonce = self.nonce.wrapping_add(1).max(1);
        let nonce = self.nonce;
        self.peers.all_mut()[i].probe = nonce;
        let probe = Probe {
            sender: me,
            target,
            heartbeat: 0,
            nonce,
            requester: None,
        };
        self.send(target.addr, Kind::Ping, ctx, &probe);
        self.stats.probes += 1;
        let mut asked: heapless::Vec<MssId, 8> = heapless::Vec::new();
        for _ in 0..self.config.indirect_probes.min(8) {
            let Some(helper) = self.pick_peer(slot, Some(target)) else {
                break;
            };
            if asked.contains(&helper) {
                continue;
            }
            let _ = asked.push(helper);
            self.send(helper.addr, Kind::PingReq, ctx, &probe);
            self.stats.probes += 1;
        }
    }

    /// Ends peer `i` (Failed or Left) and fails its member services.
    fn end_peer(&mut self, i: usize, status: Status) {
        let now = self.now;
        let e = self.peers.all()[i];
        {
            let p = &mut self.peers.all_mut()[i];
            p.status = status;
            p.since = now;
            p.probe = 0;
        }
        let change = if status == Status::Left {
            Change::Left
        } else {
            Change::Failed
        };
        self.peer_event(e.slot, e.id, change);
        let r = self
            .members
            .range(|m| (m.slot, m.owner).cmp(&(e.slot, e.id)));
        for j in r {
            if self.members.all()[j].status.is_member() {
                self.set_member_status(j, Status::Failed, false);
            }
        }
    }

    /// Removes this MSS's own tombstones older than the cleanup time, and
    /// raises its floor so that peers drop their copies too.
    fn cleanup_members(&mut self, slot: u8) {
        let now = self.now;
        let keep_for = self.config.cleanup_after;
        let Some(me) = self.ctx(slot).map(|c| c.me) else {
            return;
        };
        let r = self.members.range(|m| (m.slot, m.owner).cmp(&(slot, me)));
        let mut floor = 0;
        for m in &self.members.all()[r] {
            if !m.status.is_member() && now - m.since >= keep_for {
                floor = floor.max(m.stamp);
            }
        }
        if floor == 0 {
            return;
        }
        self.members.retain(|m| {
            !(m.slot == slot && m.owner == me && !m.status.is_member() && m.stamp <= floor)
        });
        if let Some(c) = self.ctx_mut(slot) {
            c.floor = c.floor.max(floor);
        }
        self.sync_own_version(slot);
    }

    /// Drops the context in `slot` and everything it holds.
    pub(super) fn remove_context(&mut self, slot: u8) {
        let Some(c) = self.contexts.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.peers.retain(|e| e.slot != slot);
        self.members.retain(|m| m.slot != slot);
        self.event(Event::ContextDeactivated { context: c.id });
    }

    /// This MSS was declared failed: it comes back as a new incarnation,
    /// and tells its member services to register again (their entries
    /// failed with the old incarnation everywhere).
    fn reincarnate(&mut self, slot: u8) {
        let now = self.now;
        let inc = self.incarnation;
        self.incarnation += 1;
        let Some(c) = self.ctx_mut(slot) else { return };
        let old = c.me;
        let new = MssId {
            addr: old.addr,
            incarnation: inc.max(old.incarnation + 1),
        };
        c.me = new;
        c.version = 0;
        c.floor = 0;
        let ctx = c.id;
        self.stats.reincarnations += 1;
        if let Some(p) = self.peers.get_mut((slot, old)) {
            p.status = Status::Failed;
            p.since = now;
        }
        let mut own = PeerEntry::new(slot, new, now);
        own.heartbeat = 1;
        if self.peers.insert(own).is_none() {
            self.stats.table_full += 1;
        }
        let r = self.members.range(|m| (m.slot, m.owner).cmp(&(slot, old)));
        for j in r {
            let m = self.members.all()[j];
            if m.status.is_member() {
                let to = self.probe_addr(slot, &m);
                self.send(to, Kind::NotRegistered, ctx, &wire::About { member: m.id });
                self.set_member_status(j, Status::Failed, false);
            }
        }
        self.event(Event::Reincarnated {
            context: ctx,
            mss: new,
        });
    }

    // ---- digests -----------------------------------------------------------

    pub(super) fn on_digest(
        &mut self,
        ctx: ContextId,
        from: SocketAddr,
        h: DigestHead,
        items: Items<'_, DigestItem>,
    ) {
        let Some(slot) = self.joined_slot(ctx) else {
            return;
        };
        if items
            .clone()
            .any(|it| Status::from_wire(it.status).is_none())
        {
            self.stats.malformed += 1;
            return;
        }
        for it in items.clone() {
            self.merge_peer(slot, &it);
        }
        if h.reply {
            return;
        }
        // Member lists: push where this MSS is newer, pull where older.
        let me = match self.ctx(slot) {
            Some(c) => c.me,
            None => return,
        };
        let delta = self.config.mode == GossipMode::Delta;
        let mut pull: Option<Ready> = None;
        let newer_here = |s: &Self, it: &DigestItem| {
            s.peers
                .get((slot, it.id))
                .is_some_and(|l| l.status.is_member() && l.version > it.version)
        };
        let n = items.clone().filter(|it| newer_here(self, it)).count();
        let start = self.random_below(n);
        // Pushed from a random start, so that when the job queue cannot take
        // them all, no owner is always the one left out.
        let order = items
            .clone()
            .filter(|it| newer_here(self, it))
            .skip(start)
            .chain(items.clone().filter(|it| newer_here(self, it)).take(start));
        let jobs: heapless::Vec<(MssId, u32), { super::JOBS }> = order
            .take(super::JOBS)
            .map(|it| (it.id, it.version))
            .collect();
        self.stats.jobs_full += (n - jobs.len()) as u64;
        for (owner, since) in jobs {
            self.job(Job::Members {
                slot,
                to: from,
                owner,
                since,
                all: false,
            });
        }
        for it in items.clone() {
            let Some(local) = self.peers.get((slot, it.id)).copied() else {
                continue;
            };
            if !local.status.is_member() {
                continue;
            }
            if delta && it.version > local.version && it.id != me {
                let item = PullItem {
                    owner: it.id,
                    since: local.version,
                };
                self.push_item(
                    &mut pull,
                    from,
                    Kind::Pull,
                    ctx,
                    &PullHead { sender: me },
                    &item,
                );
            }
        }
        if let Some(r) = pull {
            self.queue(r);
        }
        // Push-pull: answer with the entries of the range that are newer here.
        let r = self.peers.range(|e| e.slot.cmp(&slot));
        let lo = self.peers.all()[r.clone()].partition_point(|e| h.lo.is_some_and(|lo| e.id <= lo));
        let hi = match h.hi {
            Some(hi) => self.peers.all()[r.clone()].partition_point(|e| e.id <= hi),
            None => r.len(),
        };
        let head = DigestHead {
            sender: me,
            reply: true,
            lo: None,
            hi: None,
        };
        let mut reply: Option<Ready> = None;
        let mut theirs = items.peekable();
        for i in r.start + lo..r.start + hi.max(lo) {
            let mine = self.peers.all()[i];
            while theirs.peek().is_some_and(|t| t.id < mine.id) {
                theirs.next();
            }
            let newer = match theirs.peek() {
                Some(t) if t.id == mine.id => {
                    let their_status = Status::from_wire(t.status).unwrap_or(Status::Alive);
                    mine.heartbeat > t.heartbeat
                        || (!mine.status.is_member() && their_status.is_member())
                }
                _ => true,
            };
            if newer {
                let item = digest_item(&mine, me, self.leaving(slot));
                self.push_item(&mut reply, from, Kind::Digest, ctx, &head, &item);
                self.stats.digest_items += 1;
            }
        }
        if let Some(r) = reply {
            self.queue(r);
        }
    }

    fn leaving(&self, slot: u8) -> bool {
        self.ctx(slot).is_some_and(|c| c.leaving.is_some())
    }

    /// Appends `item` to the datagram being built in `cur`, queueing it and
    /// starting another when full.
    fn push_item<H: serde::Serialize, T: serde::Serialize>(
        &mut self,
        cur: &mut Option<Ready>,
        to: SocketAddr,
        kind: Kind,
        ctx: ContextId,
        head: &H,
        item: &T,
    ) {
        let limit = self.config.max_datagram;
        for _ in 0..2 {
            let r = cur.get_or_insert_with(|| Ready {
                to,
                gossip: true,
                len: 0,
                buf: [0; MAX_DATAGRAM],
            });
            if r.len == 0 {
                match Writer::new(&mut r.buf, limit, kind, ctx, head) {
                    Some(w) => r.len = w.len() as u16,
                    None => return,
                }
            }
            let len = r.len as usize;
            match postcard::to_slice(item, &mut r.buf[len..limit]) {
                Ok(s) => {
                    r.len += s.len() as u16;
                    return;
                }
                Err(_) => {
                    if let Some(full) = cur.take() {
                        self.queue(full);
                    }
                }
            }
        }
    }

    /// Merges one peer's entry from a digest or a probe answer.
    fn merge_peer(&mut self, slot: u8, it: &DigestItem) {
        let now = self.now;
        let Some(me) = self.ctx(slot).map(|c| c.me) else {
            return;
        };
        let status = match Status::from_wire(it.status) {
            // Suspicion is each MSS's own opinion: it does not travel.
            Some(Status::Suspect) | Some(Status::Alive) => Status::Alive,
            Some(s) => s,
            None => return,
        };
        if it.id.addr == me.addr {
            if it.id == me && status == Status::Failed {
                self.reincarnate(slot);
            }
            return;
        }
        match self.peers.search((slot, it.id)) {
            Ok(i) => {
                let e = self.peers.all()[i];
                if !e.status.is_member() {
                    return;
                }
                if !status.is_member() {
                    self.end_peer(i, status);
                    return;
                }
                let p = &mut self.peers.all_mut()[i];
                if it.heartbeat > p.heartbeat {
                    p.heartbeat = it.heartbeat;
                    p.updated = now;
                    if p.status == Status::Suspect {
                        p.status = Status::Alive;
                        p.since = now;
                        p.probe = 0;
                        self.stats.refutations += 1;
                        self.peer_event(slot, it.id, Change::Refuted);
                    }
                }
                if it.floor > e.floor {
                    self.raise_floor(slot, i, it.floor, it.version);
                }
            }
            Err(_) => {
                // Incarnations of the same address, oldest first.
                let same = self
                    .peers
                    .range(|e| (e.slot, e.id.addr).cmp(&(slot, it.id.addr)));
                let newest = self.peers.all()[same.clone()].last().map(|e| e.id);
                if newest.is_some_and(|n| n.incarnation > it.id.incarnation) {
                    // An older life than one already known: stale.
                    self.stats.stale += 1;
                    return;
                }
                let mut entry = PeerEntry::new(slot, it.id, now);
                entry.heartbeat = it.heartbeat;
                entry.status = status;
                if self.peers.insert(entry).is_none() {
                    self.stats.table_full += 1;
                    return;
                }
                if status.is_member() {
                    self.peer_event(slot, it.id, Change::Joined);
                    // A newer incarnation supersedes every older one.
                    let same = self
                        .peers
                        .range(|e| (e.slot, e.id.addr).cmp(&(slot, it.id.addr)));
                    for j in same {
                        let o = self.peers.all()[j];
                        if o.id.incarnation < it.id.incarnation && o.status.is_member() {
                            self.end_peer(j, Status::Failed);
                        }
                    }
                }
                if it.floor > 0 {
                    if let Ok(i) = self.peers.search((slot, it.id)) {
                        self.raise_floor(slot, i, it.floor, it.version);
                    }
                }
            }
        }
    }

    /// Peer `i`'s owner removed its tombstones up to `floor`: remove the
    /// copies here; and if this MSS's copy of the list is older than the
    /// floor, some removed tombstone may never arrive, so take the list
    /// again from the start and fail whatever it no longer holds.
    fn raise_floor(&mut self, slot: u8, i: usize, floor: u32, their_version: u32) {
        let e = self.peers.all()[i];
        self.peers.all_mut()[i].floor = floor;
        let owner = e.id;
        self.members.retain(|m| {
            !(m.slot == slot && m.owner == owner && !m.status.is_member() && m.stamp <= floor)
        });
        if e.version >= floor || e.resync != 0 {
            return;
        }
        let r = self
            .members
            .range(|m| (m.slot, m.owner).cmp(&(slot, owner)));
        if r.is_empty() {
            return;
        }
        for m in &mut self.members.all_mut()[r] {
            m.stale = true;
        }
        let p = &mut self.peers.all_mut()[i];
        p.version = 0;
        p.resync = their_version.max(floor);
        self.stats.resyncs += 1;
    }

    // ---- member lists ------------------------------------------------------

    pub(super) fn on_pull(
        &mut self,
        ctx: ContextId,
        from: SocketAddr,
        _h: PullHead,
        items: Items<'_, PullItem>,
    ) {
        let Some(slot) = self.joined_slot(ctx) else {
            return;
        };
        let wanted = |s: &Self, it: &PullItem| {
            s.peers
                .get((slot, it.owner))
                .is_some_and(|p| p.status.is_member() && p.version > it.since)
        };
        let n = items.clone().filter(|it| wanted(self, it)).count();
        self.stats.stale += (items.clone().count() - n) as u64;
        let start = self.random_below(n);
        // Served from a random start, so that when the job queue cannot
        // take them all, no owner is always the one left out.
        let order = items
            .clone()
            .filter(|it| wanted(self, it))
            .skip(start)
            .chain(items.filter(|it| wanted(self, it)).take(start));
        let jobs: heapless::Vec<(MssId, u32), { super::JOBS }> = order
            .take(super::JOBS)
            .map(|it| (it.owner, it.since))
            .collect();
        for (owner, since) in jobs {
            self.job(Job::Members {
                slot,
                to: from,
                owner,
                since,
                all: false,
            });
        }
    }

    pub(super) fn on_members(
        &mut self,
        ctx: ContextId,
        h: MembersHead,
        items: Items<'_, MemberItem>,
    ) {
        let Some(slot) = self.joined_slot(ctx) else {
            return;
        };
        if items
            .clone()
            .any(|it| Status::from_wire(it.status).is_none())
        {
            self.stats.malformed += 1;
            return;
        }
        let Some(me) = self.ctx(slot).map(|c| c.me) else {
            return;
        };
        let Ok(pi) = self.peers.search((slot, h.owner)) else {
            self.stats.stale += 1;
            return;
        };
        let p = self.peers.all()[pi];
        // About a dead owner, about this MSS's own list (it is the
        // authority), or nothing newer than held: dropped, and counted.
        if !p.status.is_member() || h.owner == me || h.to <= p.version {
            self.stats.stale += 1;
            return;
        }
        if h.from > p.version {
            self.stats.gaps += 1;
            return;
        }
        for it in items {
            let status = Status::from_wire(it.status).unwrap_or(Status::Failed);
            match self.members.search((slot, h.owner, it.id)) {
                Ok(j) => {
                    let e = &mut self.members.all_mut()[j];
                    e.stale = false;
                    if it.stamp <= e.stamp {
                        continue;
                    }
                    if !e.status.is_member() {
                        e.stamp = it.stamp;
                        continue;
                    }
                    self.apply_member(j, status, it.stamp);
                }
                Err(_) => {
                    let lseq = match self.ctx_mut(slot) {
                        Some(c) => {
                            c.lseq += 1;
                            c.lseq
                        }
                        None => return,
                    };
                    let entry = MemberEntry {
                        slot,
                        owner: h.owner,
                        id: it.id,
                        status,
                        stamp: it.stamp,
                        lseq,
                        since: self.now,
                        ..MemberEntry::EMPTY
                    };
                    if self.members.insert(entry).is_none() {
                        // Not advancing the version: the entry comes again.
                        self.stats.table_full += 1;
                        return;
                    }
                    if status.is_member() {
                        self.member_event(slot, it.id, h.owner, Change::Joined);
                        if status == Status::Suspect {
                            self.member_event(slot, it.id, h.owner, Change::Suspected);
                        }
                    }
                }
            }
        }
        let Ok(pi) = self.peers.search((slot, h.owner)) else {
            return;
        };
        let p = &mut self.peers.all_mut()[pi];
        p.version = p.version.max(h.to);
        if p.resync != 0 && p.version >= p.resync {
            p.resync = 0;
            let owner = p.id;
            let r = self
                .members
                .range(|m| (m.slot, m.owner).cmp(&(slot, owner)));
            for j in r {
                if self.members.all()[j].stale {
                    self.members.all_mut()[j].stale = false;
                    if self.members.all()[j].status.is_member() {
                        self.set_member_status(j, Status::Failed, false);
                    }
                }
            }
        }
    }

    /// Applies an owner's newer status to member entry `j` held here.
    fn apply_member(&mut self, j: usize, status: Status, stamp: u32) {
        self.set_member_status(j, status, false);
        self.members.all_mut()[j].stamp = stamp;
    }

    // ---- probes of suspected peers -----------------------------------------

    pub(super) fn on_ping(&mut self, ctx: ContextId, from: SocketAddr, p: Probe) {
        let Some(slot) = self.joined_slot(ctx) else {
            return;
        };
        let Some(me) = self.ctx(slot).map(|c| c.me) else {
            return;
        };
        if p.target.addr != me.addr {
            self.stats.unexpected += 1;
            return;
        }
        let hb = self.peers.get((slot, me)).map_or(0, |e| e.heartbeat);
        let ack = Probe {
            sender: me,
            target: p.target,
            heartbeat: hb,
            nonce: p.nonce,
            requester: p.requester,
        };
        self.send(from, Kind::Ack, ctx, &ack);
    }

    pub(super) fn on_ping_req(&mut self, ctx: ContextId, from: SocketAddr, p: Probe) {
        let Some(slot) = self.joined_slot(ctx) else {
            return;
        };
        let Some(me) = self.ctx(slot).map(|c| c.me) else {
            return;
        };
        let ping = Probe {
            sender: me,
            requester: Some(from),
            ..p
        };
        self.send(p.target.addr, Kind::Ping, ctx, &ping);
    }

    pub(super) fn on_ack(&mut self, ctx: ContextId, p: Probe) {
        let Some(slot) = self.joined_slot(ctx) else {
            return;
        };
        let item = DigestItem {
            id: p.sender,
            heartbeat: p.heartbeat,
            version: 0,
            floor: 0,
            status: Status::Alive.to_wire(),
        };
        self.merge_peer(slot, &item);
        if let Some(r) = p.requester {
            if r != self.addr {
                let fwd = Probe {
                    requester: None,
                    ..p
                };
                self.send(r, Kind::Ack, ctx, &fwd);
            }
        }
    }

    // ---- jobs ----------------------------------------------------------------

    /// Encodes the next datagram of `job` into `self.out`, queueing the
    /// rest of the job first in line.
    pub(super) fn run_job(&mut self, job: Job) -> Option<(SocketAddr, usize)> {
        match job {
            Job::Digest {
                slot,
                to,
                reply,
                after,
            } => self.run_digest(slot, to, reply, after),
            Job::Members {
                slot,
                to,
                owner,
                since,
                all,
            } => self.run_members(slot, to, owner, since, all),
            Job::Update {
                slot,
                to,
                full,
                from,
            } => self.run_update(slot, to, full, from),
        }
    }

    fn run_digest(
        &mut self,
        slot: u8,
        to: SocketAddr,
        reply: bool,
        after: Option<MssId>,
    ) -> Option<(SocketAddr, usize)> {
        let c = self.ctx(slot)?;
        let (ctx, me, leaving) = (c.id, c.me, c.leaving.is_some());
        let limit = self.config.max_datagram;
        let r = self.peers.range(|e| e.slot.cmp(&slot));
        let all = &self.peers.all()[r];
        let start = all.partition_point(|e| after.is_some_and(|a| e.id <= a));
        // How many entries fit, with their exact sizes.
        let budget = limit - PREFIX_LEN - HEAD_ROOM;
        let mut used = 0;
        let mut end = start;
        while end < all.len() {
            let size = wire::item_size(&digest_item(&all[end], me, leaving)).unwrap_or(64);
            if used + size > budget {
                break;
            }
            used += size;
            end += 1;
        }
        let done = end >= all.len();
        let hi = if done {
            None
        } else {
            all.get(end.max(start + 1) - 1).map(|e| e.id)
        };
        let head = DigestHead {
            sender: me,
            reply,
            lo: after,
            hi,
        };
        let items: heapless::Vec<DigestItem, 128> = all[start..end]
            .iter()
            .take(128)
            .map(|e| digest_item(e, me, leaving))
            .collect();
        let end = start + items.len();
        let mut w = Writer::new(&mut self.out, limit, Kind::Digest, ctx, &head)?;
        for it in &items {
            if !w.push(it) {
                break;
            }
        }
        let len = w.len();
        self.stats.digest_items += items.len() as u64;
        if !done {
            let next = self.peers.all()[self.peers.range(|e| e.slot.cmp(&slot))]
                .get(end.max(start + 1) - 1)
                .map(|e| e.id);
            if self
                .jobs
                .push_front(Job::Digest {
                    slot,
                    to,
                    reply,
                    after: next,
                })
                .is_err()
            {
                self.stats.jobs_full += 1;
            }
        }
        Some((to, len))
    }

    fn run_members(
        &mut self,
        slot: u8,
        to: SocketAddr,
        mut owner: MssId,
        mut since: u32,
        all: bool,
    ) -> Option<(SocketAddr, usize)> {
        let c = self.ctx(slot)?;
        let (ctx, me) = (c.id, c.me);
        loop {
            let peer = self.peers.get((slot, owner)).copied();
            let version = peer
                .filter(|p| p.status.is_member())
                .map_or(0, |p| p.version);
            if version > since {
                let len = self.write_members(ctx, slot, me, owner, since, version)?;
                let (sent_to, _) = len;
                let next = if sent_to < version {
                    Some(Job::Members {
                        slot,
                        to,
                        owner,
                        since: sent_to,
                        all,
                    })
                } else if all {
                    self.next_owner(slot, owner).map(|o| Job::Members {
                        slot,
                        to,
                        owner: o,
                        since: 0,
                        all,
                    })
                } else {
                    None
                };
                if let Some(j) = next {
                    if self.jobs.push_front(j).is_err() {
                        self.stats.jobs_full += 1;
                    }
                }
                return Some((to, len.1));
            }
            if !all {
                return None;
            }
            owner = self.next_owner(slot, owner)?;
            since = 0;
        }
    }

    fn next_owner(&self, slot: u8, after: MssId) -> Option<MssId> {
        let r = self.peers.range(|e| e.slot.cmp(&slot));
        let all = &self.peers.all()[r];
        let i = all.partition_point(|e| e.id <= after);
        all.get(i).map(|e| e.id)
    }

    /// Writes `owner`'s entries with stamps in `(since, t]` for the largest
    /// `t <= version` that fits one datagram; returns `(t, length)`.
    fn write_members(
        &mut self,
        ctx: ContextId,
        slot: u8,
        me: MssId,
        owner: MssId,
        since: u32,
        version: u32,
    ) -> Option<(u32, usize)> {
        let limit = self.config.max_datagram;
        let budget = limit - PREFIX_LEN - HEAD_ROOM;
        let r = self
            .members
            .range(|m| (m.slot, m.owner).cmp(&(slot, owner)));
        let list = &self.members.all()[r];
        let size_upto = |t: u32| -> usize {
            list.iter()
                .filter(|m| !m.stale && m.stamp > since && m.stamp <= t)
                .map(|m| wire::item_size(&member_item(m)).unwrap_or(64))
                .sum()
        };
        let mut to = version;
        if size_upto(version) > budget {
            // The largest stamp bound that fits: sizes grow with it.
            let (mut lo, mut hi) = (since + 1, version);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if size_upto(mid) <= budget {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            to = lo;
        }
        let head = MembersHead {
            sender: me,
            owner,
            from: since,
            to,
        };
        let mut w = Writer::new(&mut self.out, limit, Kind::Members, ctx, &head)?;
        let mut n = 0u64;
        for m in list
            .iter()
            .filter(|m| !m.stale && m.stamp > since && m.stamp <= to)
        {
            if !w.push(&member_item(m)) {
                // Sizes are exact, so this cannot happen; sending an
                // incomplete range would be wrong, so send nothing.
                return None;
            }
            n += 1;
        }
        self.stats.member_items += n;
        Some((to, w.len()))
    }
}

fn digest_item(e: &PeerEntry, me: MssId, leaving: bool) -> DigestItem {
    let status = if e.id == me && leaving {
        Status::Left
    } else if e.status == Status::Suspect {
        Status::Alive
    } else {
        e.status
    };
    DigestItem {
        id: e.id,
        heartbeat: e.heartbeat,
        version: e.version,
        floor: e.floor,
        status: status.to_wire(),
    }
}

fn member_item(m: &MemberEntry) -> MemberItem {
    MemberItem {
        id: m.id,
        status: m.status.to_wire(),
        stamp: m.stamp,
    }
}
