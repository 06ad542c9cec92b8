//! The MSS's side of the other roles: member services (registration,
//! `MemberProbe`/`MemberAlive`, `MemberLeaves`), proxies
//! (`RegisterMembershipProxy`, `ProxyProbe`/`ProxyAlive`, `MemberFailed`),
//! monitors (`RegisterMembershipMonitor`, `MembershipUpdate`), and the
//! activation and deactivation of contexts.

use core::net::SocketAddr;

use super::{Job, MonitorReg, PeerEntry, ProxyReg, Service};
use crate::epidemic::event::Event;
use crate::epidemic::ids::{ContextId, Lifecycle, MemberId, Status};
use crate::epidemic::service::MemberEntry;
use crate::epidemic::wire::{
    About, Kind, Liveness, PREFIX_LEN, RegisterMonitor, RegisterProxy, Registered, RequestMember,
    UpdateHead, UpdateItem, Writer, item_size,
};

impl<P, M, const EQ: usize, const CQ: usize> Service<P, M, EQ, CQ>
where
    P: AsRef<[PeerEntry]> + AsMut<[PeerEntry]>,
    M: AsRef<[MemberEntry]> + AsMut<[MemberEntry]>,
{
    /// Activates the context of a client message, checking that the
    /// prefix's context id is the URI's.
    fn activate_for(&mut self, ctx: ContextId, uri: &str) -> Option<u8> {
        if ContextId::from_uri(uri) != ctx {
            self.stats.malformed += 1;
            return None;
        }
        match self.activate(uri) {
            Ok(s) if self.ctx(s).is_some_and(|c| c.leaving.is_none()) => Some(s),
            Ok(_) => {
                // Leaving: the client retries and finds the context anew.
                self.stats.unexpected += 1;
                None
            }
            Err(_) => None,
        }
    }

    pub(super) fn on_create(&mut self, ctx: ContextId, from: SocketAddr, uri: &str) {
        let Some(slot) = self.activate_for(ctx, uri) else {
            return;
        };
        let Some(me) = self.ctx(slot).map(|c| c.me) else {
            return;
        };
        let who = MemberId {
            addr: from,
            incarnation: 0,
        };
        self.send(
            from,
            Kind::ContextCreated,
            ctx,
            &Registered { who, mss: me },
        );
    }

    /// Joins the context's set of MSS: from now on it gossips.
    fn join(&mut self, slot: u8) {
        let now = self.now;
        let Some(c) = self.ctx_mut(slot) else { return };
        if c.joined {
            return;
        }
        c.joined = true;
        c.next_round = now;
        let (me, id) = (c.me, c.id);
        let mut own = PeerEntry::new(slot, me, now);
        own.heartbeat = 1;
        if self.peers.insert(own).is_none() {
            self.stats.table_full += 1;
        }
        self.event(Event::ContextJoined {
            context: id,
            mss: me,
        });
    }

    pub(super) fn on_request_member(
        &mut self,
        ctx: ContextId,
        from: SocketAddr,
        r: RequestMember<'_>,
    ) {
        let Some(slot) = self.activate_for(ctx, r.uri) else {
            return;
        };
        let me = self.ctx(slot).map(|c| c.me);
        if r.mss.is_some() && r.mss != me {
            // Meant for an earlier life of this MSS: that life may have
            // registered this incarnation, which is failed with it now.
            self.send(from, Kind::NotRegistered, ctx, &About { member: r.member });
            return;
        }
        if let Some(p) = r.proxy {
            let known = self
                .ctx(slot)
                .is_some_and(|c| c.proxies.iter().any(|x| x.id == p && x.addr == from));
            if !known {
                self.send(from, Kind::NotRegistered, ctx, &About { member: p });
                return;
            }
        }
        self.join(slot);
        let Some(me) = self.ctx(slot).map(|c| c.me) else {
            return;
        };
        // Is this incarnation known here under any owner?
        let range = self.members.range(|m| m.slot.cmp(&slot));
        let existing = self.members.all()[range]
            .iter()
            .find(|m| m.id == r.member)
            .copied();
        if let Some(m) = existing {
            if m.owner == me && m.status.is_member() {
                self.send(
                    from,
                    Kind::MemberRegistered,
                    ctx,
                    &Registered {
                        who: r.member,
                        mss: me,
                    },
                );
            } else {
                // Left, failed, or another MSS's: a new incarnation is needed.
                self.send(from, Kind::NotRegistered, ctx, &About { member: r.member });
            }
            return;
        }
        let (stamp, lseq) = match self.ctx_mut(slot) {
            Some(c) => {
                c.version += 1;
                c.lseq += 1;
                c.idle_since = None;
                (c.version, c.lseq)
            }
            None => return,
        };
        let entry = MemberEntry {
            slot,
            owner: me,
            id: r.member,
            status: Status::Alive,
            stamp,
            lseq,
            since: self.now,
            probe_port: r.probe_port,
            proxy: r.proxy,
            ..MemberEntry::EMPTY
        };
        if self.members.insert(entry).is_none() {
            self.stats.table_full += 1;
            if let Some(c) = self.ctx_mut(slot) {
                c.version -= 1;
            }
            return;
        }
        self.sync_own_version(slot);
        self.member_event(slot, r.member, me, crate::epidemic::Change::Joined);
        self.send(
            from,
            Kind::MemberRegistered,
            ctx,
            &Registered {
                who: r.member,
                mss: me,
            },
        );
    }

    /// Where probes of member `m` go: its proxy, or its probe port.
    pub(super) fn probe_addr(&self, slot: u8, m: &MemberEntry) -> SocketAddr {
        if let Some(p) = m.proxy {
            if let Some(x) = self
                .ctx(slot)
                .and_then(|c| c.proxies.iter().find(|x| x.id == p))
            {
                return x.addr;
            }
        }
        let mut a = m.id.addr;
        if m.probe_port != 0 {
            a.set_port(m.probe_port);
        }
        a
    }

    fn own_member(&mut self, ctx: ContextId, member: MemberId) -> Option<(u8, usize)> {
        let slot = self.slot_of(ctx)?;
        let me = self.ctx(slot)?.me;
        let i = self.members.search((slot, me, member)).ok()?;
        Some((slot, i))
    }

    pub(super) fn on_member_alive(&mut self, ctx: ContextId, from: SocketAddr, l: Liveness) {
        match self.own_member(ctx, l.who) {
            Some((_, i)) if self.members.all()[i].status.is_member() => {
                self.members.all_mut()[i].misses = 0;
                if self.members.all()[i].status == Status::Suspect {
                    self.set_member_status(i, Status::Alive, true);
                }
            }
            _ => {
                self.stats.unexpected += 1;
                self.send(from, Kind::NotRegistered, ctx, &About { member: l.who });
            }
        }
    }

    /// `MemberLeaves` from a member service or its proxy, or `MemberFailed`
    /// from a proxy.
    pub(super) fn on_member_leaves(
        &mut self,
        ctx: ContextId,
        from: SocketAddr,
        member: MemberId,
        status: Status,
    ) {
        if let Some((slot, i)) = self.own_member(ctx, member) {
            let m = self.members.all()[i];
            let by_proxy = m.proxy.is_some_and(|p| {
                self.ctx(slot)
                    .is_some_and(|c| c.proxies.iter().any(|x| x.id == p && x.addr == from))
            });
            // Only the service itself or its proxy may say so.
            if status == Status::Failed && !by_proxy {
                self.stats.unexpected += 1;
                return;
            }
            if m.status.is_member() {
                self.set_member_status(i, status, true);
            }
        }
        self.send(from, Kind::MemberRemoved, ctx, &About { member });
    }

    pub(super) fn on_register_proxy(
        &mut self,
        ctx: ContextId,
        from: SocketAddr,
        r: RegisterProxy<'_>,
    ) {
        let Some(slot) = self.activate_for(ctx, r.uri) else {
            return;
        };
        let Some(c) = self.ctx_mut(slot) else { return };
        let me = c.me;
        if !c.proxies.iter().any(|x| x.id == r.proxy) {
            let reg = ProxyReg {
                id: r.proxy,
                addr: from,
                misses: 0,
            };
            if c.proxies.push(reg).is_err() {
                self.stats.table_full += 1;
                return;
            }
        }
        c.idle_since = None;
        self.send(
            from,
            Kind::ProxyRegistered,
            ctx,
            &Registered {
                who: r.proxy,
                mss: me,
            },
        );
    }

    pub(super) fn on_proxy_alive(&mut self, ctx: ContextId, from: SocketAddr, l: Liveness) {
        let found = self
            .slot_of(ctx)
            .and_then(|s| self.ctx_mut(s))
            .and_then(|c| {
                c.proxies
                    .iter_mut()
                    .find(|x| x.id == l.who && x.addr == from)
            })
            .map(|x| x.misses = 0)
            .is_some();
        if !found {
            self.stats.unexpected += 1;
            self.send(from, Kind::NotRegistered, ctx, &About { member: l.who });
        }
    }

    pub(super) fn on_register_monitor(
        &mut self,
        ctx: ContextId,
        from: SocketAddr,
        r: RegisterMonitor<'_>,
    ) {
        let Some(slot) = self.activate_for(ctx, r.uri) else {
            return;
        };
        let now = self.now;
        let Some(c) = self.ctx_mut(slot) else { return };
        let me = c.me;
        match c.monitors.iter_mut().find(|m| m.addr == from) {
            // A registration again means the monitor starts over.
            Some(m) => {
                m.changes_only = r.changes_only;
                m.last_ack = now;
                m.acked = 0;
            }
            None => {
                let reg = MonitorReg {
                    addr: from,
                    changes_only: r.changes_only,
                    acked: 0,
                    last_ack: now,
                };
                if c.monitors.push(reg).is_err() {
                    self.stats.table_full += 1;
                    return;
                }
            }
        }
        if c.monitors.len() == 1 {
            c.next_monitor = now;
        }
        let who = MemberId {
            addr: from,
            incarnation: 0,
        };
        self.send(
            from,
            Kind::MonitorRegistered,
            ctx,
            &Registered { who, mss: me },
        );
    }

    pub(super) fn on_update_ack(&mut self, ctx: ContextId, from: SocketAddr, to: u32) {
        let now = self.now;
        let m = self
            .slot_of(ctx)
            .and_then(|s| self.ctx_mut(s))
            .and_then(|c| {
                let lseq = c.lseq;
                c.monitors
                    .iter_mut()
                    .find(|m| m.addr == from)
                    .map(|m| (m, lseq))
            });
        match m {
            Some((m, lseq)) => {
                m.acked = m.acked.max(to.min(lseq));
                m.last_ack = now;
            }
            None => self.stats.unexpected += 1,
        }
    }

    // ---- periodic work -------------------------------------------------------

    /// Probes this MSS's member services and proxies, and suspects or
    /// fails those that stopped answering.
    pub(super) fn probe_members(&mut self, slot: u8) {
        let now = self.now;
        let cfg = self.config;
        let Some(c) = self.ctx_mut(slot) else { return };
        c.next_probe = now + cfg.probe_interval;
        c.probe_seq = c.probe_seq.wrapping_add(1);
        let (me, ctx, seq) = (c.me, c.id, c.probe_seq);
        // Proxies first: a failed proxy fails the services it speaks for.
        let mut failed: heapless::Vec<MemberId, { super::MAX_PROXIES }> = heapless::Vec::new();
        let mut probes: heapless::Vec<(SocketAddr, MemberId), { super::MAX_PROXIES }> =
            heapless::Vec::new();
        c.proxies.retain_mut(|x| {
            if x.misses >= cfg.fail_misses {
                let _ = failed.push(x.id);
                return false;
            }
            x.misses = x.misses.saturating_add(1);
            let _ = probes.push((x.addr, x.id));
            true
        });
        for (addr, id) in probes {
            self.send(addr, Kind::ProxyProbe, ctx, &Liveness { who: id, seq });
        }
        let r = self.members.range(|m| (m.slot, m.owner).cmp(&(slot, me)));
        let mut live = 0;
        for i in r {
            let m = self.members.all()[i];
            if !m.status.is_member() {
                continue;
            }
            if let Some(p) = m.proxy {
                if failed.contains(&p) {
                    self.set_member_status(i, Status::Failed, true);
                } else {
                    live += 1;
                }
                continue;
            }
            if m.misses >= cfg.fail_misses {
                self.set_member_status(i, Status::Failed, true);
                continue;
            }
            if m.misses >= cfg.suspect_misses && m.status == Status::Alive {
                self.set_member_status(i, Status::Suspect, true);
            }
            live += 1;
            self.members.all_mut()[i].misses = m.misses.saturating_add(1);
            let to = self.probe_addr(slot, &m);
            // A suspect gets redundant probes: under loss, one lost probe
            // or answer should not be the last word (Lifeguard's idea of
            // trying harder before failing, at the cost of a few datagrams
            // for the rare suspect).
            let copies = if cfg.suspicion && self.members.all()[i].status == Status::Suspect {
                1 + cfg.indirect_probes.min(4)
            } else {
                1
            };
            for _ in 0..copies {
                self.send(to, Kind::MemberProbe, ctx, &Liveness { who: m.id, seq });
            }
        }
        let Some(c) = self.ctx_mut(slot) else { return };
        if live == 0 && c.proxies.is_empty() {
            if c.idle_since.is_none() && c.leaving.is_none() {
                c.idle_since = Some(now);
            }
        } else {
            c.idle_since = None;
        }
    }

    /// No registration for the idle time: leave the set of MSS (gossiping
    /// `Left` for a few rounds), or vanish at once if never joined.
    pub(super) fn go_idle(&mut self, slot: u8) {
        let Some(c) = self.ctx_mut(slot) else { return };
        c.idle_since = None;
        if c.joined {
            if c.leaving.is_none() {
                c.leaving = Some(super::LEAVE_ROUNDS);
            }
        } else {
            self.remove_context(slot);
        }
    }

    /// Sends every monitor its update, and drops monitors gone silent.
    pub(super) fn update_monitors(&mut self, slot: u8) {
        let now = self.now;
        let cfg = self.config;
        let Some(c) = self.ctx_mut(slot) else { return };
        c.next_monitor = now + cfg.monitor_interval;
        c.monitors
            .retain(|m| now - m.last_ack < cfg.monitor_timeout);
        let mons = c.monitors.clone();
        for m in mons {
            self.job(Job::Update {
                slot,
                to: m.addr,
                full: !m.changes_only,
                from: if m.changes_only { m.acked } else { 0 },
            });
        }
    }

    /// One `MembershipUpdate` datagram: changes above `from` (by change
    /// number), or the whole state from entry index `from`.
    pub(super) fn run_update(
        &mut self,
        slot: u8,
        to: SocketAddr,
        full: bool,
        from: u32,
    ) -> Option<(SocketAddr, usize)> {
        let c = self.ctx(slot)?;
        let (ctx, me, lseq) = (c.id, c.me, c.lseq);
        let limit = self.config.max_datagram;
        let budget = limit - PREFIX_LEN - 48;
        let r = self.members.range(|m| m.slot.cmp(&slot));
        let list = &self.members.all()[r];
        let item = |m: &MemberEntry| UpdateItem {
            member: m.id,
            set: Lifecycle::of(m.status, full).to_wire(),
        };
        let (lo, hi, last) = if full {
            let start = (from as usize).min(list.len());
            let mut used = 0;
            let mut end = start;
            while end < list.len() {
                let s = item_size(&item(&list[end])).unwrap_or(48);
                if used + s > budget {
                    break;
                }
                used += s;
                end += 1;
            }
            (start as u32, end as u32, end >= list.len())
        } else {
            let size_upto = |t: u32| -> usize {
                list.iter()
                    .filter(|m| m.lseq > from && m.lseq <= t)
                    .map(|m| item_size(&item(m)).unwrap_or(48))
                    .sum()
            };
            let mut t = lseq.max(from);
            if size_upto(t) > budget {
                let (mut a, mut b) = (from + 1, t);
                while a < b {
                    let mid = a + (b - a).div_ceil(2);
                    if size_upto(mid) <= budget {
                        a = mid;
                    } else {
                        b = mid - 1;
                    }
                }
                t = a;
            }
            (from, t, t >= lseq)
        };
        let head = UpdateHead {
            mss: me,
            from: lo,
            to: hi,
            full,
            last,
        };
        let mut w = Writer::new(&mut self.out, limit, Kind::MembershipUpdate, ctx, &head)?;
        for (i, m) in list.iter().enumerate() {
            let inside = if full {
                (lo as usize..hi as usize).contains(&i)
            } else {
                m.lseq > lo && m.lseq <= hi
            };
            if inside && !w.push(&item(m)) {
                return None;
            }
        }
        let len = w.len();
        if !last {
            let next = Job::Update {
                slot,
                to,
                full,
                from: hi,
            };
            if self.jobs.push_front(next).is_err() {
                self.stats.jobs_full += 1;
            }
        }
        Some((to, len))
    }
}
