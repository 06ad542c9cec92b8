//! What a run (or a campaign) exercised.
//!
//! A campaign that passes only because its faults never bit proves nothing,
//! so every run counts what actually happened: faults
//! by kind, messages accepted and delivered, the protocol's recovery work,
//! back-pressure, how close the pools came to full, and with membership the
//! views, blocks, suspicions, merges, leaves and exits.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::checker::EndState;
use crate::net::FaultCounts;
use crate::sim::Sim;
use crate::trace::Entry;

/// What membership did, summed over runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipWork {
    /// Views installed, counted at every member.
    pub installs: u64,
    /// Installs of a view after the member's first (view changes seen).
    pub view_changes: u64,
    /// Distinct views installed.
    pub views: u64,
    /// Distinct primary views.
    pub primary_views: u64,
    /// Largest view.
    pub largest_view: u64,
    /// `Block` events.
    pub blocks: u64,
    /// Casts and sends accepted after `Block` but before `block_ok`
    /// (sent in the current view).
    pub during_block: u64,
    /// Casts and sends held for the next view (`SendView::Next`).
    pub next_view: u64,
    /// Sends given up because the destination left the view.
    pub abandoned: u64,
    /// `leave()` calls.
    pub leaves: u64,
    /// `Exit` events.
    pub exits: u64,
    /// Members newly suspected by failure detectors.
    pub suspicions: u64,
    /// View-change attempts started.
    pub attempts: u64,
    /// Attempts abandoned for a member that did not answer.
    pub attempt_timeouts: u64,
    /// Merges asked for by junior coordinators.
    pub merges: u64,
    /// Heal announcements.
    pub announcements: u64,
    /// Held sends whose destination did not come into the next view.
    pub sends_to_departed: u64,
    /// Datagrams dropped as from another view.
    pub wrong_view: u64,
    /// Datagrams dropped as from a non-member.
    pub not_member: u64,
}

impl MembershipWork {
    fn add(&mut self, o: &MembershipWork) {
        self.installs += o.installs;
        self.view_changes += o.view_changes;
        self.views += o.views;
        self.primary_views += o.primary_views;
        self.largest_view = self.largest_view.max(o.largest_view);
        self.blocks += o.blocks;
        self.during_block += o.during_block;
        self.next_view += o.next_view;
        self.abandoned += o.abandoned;
        self.leaves += o.leaves;
        self.exits += o.exits;
        self.suspicions += o.suspicions;
        self.attempts += o.attempts;
        self.attempt_timeouts += o.attempt_timeouts;
        self.merges += o.merges;
        self.announcements += o.announcements;
        self.sends_to_departed += o.sends_to_departed;
        self.wrong_view += o.wrong_view;
        self.not_member += o.not_member;
    }
}

/// Counts of what happened, summed over runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exercised {
    /// Runs summed.
    pub runs: u64,
    /// Faults that happened, and datagrams carried.
    pub faults: FaultCounts,
    /// Casts accepted.
    pub casts: u64,
    /// Sends accepted.
    pub sends: u64,
    /// Casts delivered (own casts included).
    pub cast_deliveries: u64,
    /// Sends delivered.
    pub send_deliveries: u64,
    /// Refusals with `WouldBlock`.
    pub would_blocks: u64,
    /// `Writable` events.
    pub writables: u64,
    /// Most fragments one delivered message came in.
    pub max_fragments: u64,
    /// Messages delivered in more than one fragment.
    pub fragmented: u64,
    /// Largest message accepted.
    pub max_len: u64,
    /// NAKs sent by Mnak.
    pub naks: u64,
    /// Casts retransmitted by Mnak.
    pub cast_retransmissions: u64,
    /// Sends retransmitted by Pt2pt.
    pub send_retransmissions: u64,
    /// Acknowledgements sent by Pt2pt.
    pub acks: u64,
    /// Stability gossip messages sent.
    pub gossip: u64,
    /// Duplicates discarded by the reliability layers.
    pub duplicates_discarded: u64,
    /// Messages discarded by the Drop layer.
    pub test_drops: u64,
    /// Datagrams dropped for want of a pool slot.
    pub no_buffer: u64,
    /// Datagrams dropped because the transmit queue was full.
    pub tx_queue_full: u64,
    /// Datagrams shed because the scheduler queue was full.
    pub backlog: u64,
    /// Highest pool occupancy of any endpoint, in percent.
    pub peak_pool_percent: u64,
    /// Times an endpoint's deadline was still due right after its timeout.
    pub timer_repeats: u64,
    /// Virtual milliseconds simulated.
    pub virtual_ms: u64,
    /// What membership did (all zero in a static group).
    pub membership: MembershipWork,
    /// What the ordering layers did (all zero without them).
    pub ordering: OrderingWork,
}

/// What Total, Causal and Agree did, summed over runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderingWork {
    /// Order messages sent by Total's sequencers.
    pub orders: u64,
    /// Casts held on arrival (waiting for an order, a causal predecessor,
    /// or stability), counted at every member.
    pub held: u64,
    /// Casts delivered while a view ended, after the flush.
    pub end_of_view: u64,
    /// Casts Causal discarded at the end of a view (a predecessor reached
    /// no survivor).
    pub causal_discarded: u64,
    /// Causal's context casts (vector entries that did not fit a header).
    pub causal_context: u64,
}

impl OrderingWork {
    fn add(&mut self, o: &OrderingWork) {
        self.orders += o.orders;
        self.held += o.held;
        self.end_of_view += o.end_of_view;
        self.causal_discarded += o.causal_discarded;
        self.causal_context += o.causal_context;
    }

    /// Whether any ordering layer did anything.
    pub fn any(&self) -> bool {
        *self != OrderingWork::default()
    }
}

impl Exercised {
    /// What one finished run exercised.
    pub fn of_run(sim: &Sim<'_>, end: &EndState) -> Self {
        let mut e = Exercised {
            runs: 1,
            faults: *sim.net.counts(),
            virtual_ms: end.time.as_millis(),
            ..Default::default()
        };
        let m = &mut e.membership;
        let mut views = HashSet::new();
        let mut primary = HashSet::new();
        // Processes that got Block and have not answered it yet.
        let mut blocked: HashMap<usize, bool> = HashMap::new();
        for rec in sim.trace.records() {
            match &rec.entry {
                Entry::CastAccepted { next, .. } | Entry::SendAccepted { next, .. } => {
                    if *next {
                        m.next_view += 1;
                    } else if blocked.get(&rec.node).copied().unwrap_or(false) {
                        m.during_block += 1;
                    }
                }
                Entry::View(v) => {
                    m.installs += 1;
                    m.view_changes += u64::from(v.previous.is_some());
                    m.largest_view = m.largest_view.max(v.members.len() as u64);
                    views.insert(v.id);
                    if v.primary {
                        primary.insert(v.id);
                    }
                    blocked.insert(rec.node, false);
                }
                Entry::Block => {
                    m.blocks += 1;
                    blocked.insert(rec.node, true);
                }
                Entry::BlockOk => {
                    blocked.insert(rec.node, false);
                }
                Entry::Abandoned { .. } => m.abandoned += 1,
                Entry::Leave => m.leaves += 1,
                Entry::Exit => m.exits += 1,
                _ => {}
            }
        }
        m.views = views.len() as u64;
        m.primary_views = primary.len() as u64;
        for rec in sim.trace.records() {
            match &rec.entry {
                Entry::CastAccepted { len, .. } => {
                    e.casts += 1;
                    e.max_len = e.max_len.max(*len as u64);
                }
                Entry::SendAccepted { len, .. } => {
                    e.sends += 1;
                    e.max_len = e.max_len.max(*len as u64);
                }
                Entry::Refused { .. } => e.would_blocks += 1,
                Entry::Writable => e.writables += 1,
                Entry::Delivered(d) => {
                    match d.kind {
                        crate::message::Kind::Cast => e.cast_deliveries += 1,
                        crate::message::Kind::Send => e.send_deliveries += 1,
                    }
                    e.max_fragments = e.max_fragments.max(d.fragments as u64);
                    e.fragmented += u64::from(d.fragments > 1);
                }
                _ => {}
            }
        }
        for (node, n) in sim.nodes.iter().zip(&end.nodes) {
            let s = &n.stats;
            e.naks += s.naks;
            e.cast_retransmissions += s.cast_retransmissions;
            e.send_retransmissions += s.send_retransmissions;
            e.acks += s.acks;
            e.gossip += s.stable_gossip;
            e.duplicates_discarded += s.duplicates;
            e.test_drops += s.test_drops;
            e.no_buffer += s.no_buffer;
            e.tx_queue_full += s.tx_queue_full;
            e.backlog += s.backlog;
            let m = &mut e.membership;
            m.suspicions += s.suspicions;
            m.attempts += s.view_attempts;
            m.attempt_timeouts += s.view_timeouts;
            m.merges += s.merge_requests;
            m.announcements += s.announcements;
            m.sends_to_departed += s.sends_to_departed;
            m.wrong_view += s.wrong_view;
            m.not_member += s.not_member;
            let o = &mut e.ordering;
            o.orders += s.total_orders;
            o.held += s.order_held;
            o.end_of_view += s.end_of_view_deliveries;
            o.causal_discarded += s.causal_discarded;
            o.causal_context += s.causal_context_casts;
            let (_, peak, total) = node.pool_usage();
            e.peak_pool_percent = e.peak_pool_percent.max((peak * 100 / total.max(1)) as u64);
            e.timer_repeats += node.timer_repeats();
        }
        e
    }

    /// Adds another run's counts (maxima are kept as maxima).
    pub fn add(&mut self, o: &Exercised) {
        self.runs += o.runs;
        self.faults.add(&o.faults);
        self.casts += o.casts;
        self.sends += o.sends;
        self.cast_deliveries += o.cast_deliveries;
        self.send_deliveries += o.send_deliveries;
        self.would_blocks += o.would_blocks;
        self.writables += o.writables;
        self.max_fragments = self.max_fragments.max(o.max_fragments);
        self.fragmented += o.fragmented;
        self.max_len = self.max_len.max(o.max_len);
        self.naks += o.naks;
        self.cast_retransmissions += o.cast_retransmissions;
        self.send_retransmissions += o.send_retransmissions;
        self.acks += o.acks;
        self.gossip += o.gossip;
        self.duplicates_discarded += o.duplicates_discarded;
        self.test_drops += o.test_drops;
        self.no_buffer += o.no_buffer;
        self.tx_queue_full += o.tx_queue_full;
        self.backlog += o.backlog;
        self.peak_pool_percent = self.peak_pool_percent.max(o.peak_pool_percent);
        self.timer_repeats += o.timer_repeats;
        self.virtual_ms += o.virtual_ms;
        self.membership.add(&o.membership);
        self.ordering.add(&o.ordering);
    }

    /// One line, for a verbose per-seed listing.
    pub fn one_line(&self) -> String {
        let f = &self.faults;
        let m = &self.membership;
        let churn = if f.any_node_fault() || m.view_changes > 0 {
            format!(
                "; part {} crash {} restart {} join {} leave {}; {} views, {} changes, {} blocks, {}+{} sent during Block (current+next view), {} suspicions, {} merges, {} exits",
                f.partitions,
                f.crashes,
                f.restarts,
                f.joins,
                f.leaves,
                m.views,
                m.view_changes,
                m.blocks,
                m.during_block,
                m.next_view,
                m.suspicions,
                m.merges,
                m.exits
            )
        } else {
            String::new()
        };
        let o = &self.ordering;
        let ordering = if o.any() {
            format!(
                "; {} orders, {} held, {} at end of view, {} causal discards",
                o.orders, o.held, o.end_of_view, o.causal_discarded
            )
        } else {
            String::new()
        };
        self.one_line_traffic() + &churn + &ordering
    }

    fn one_line_traffic(&self) -> String {
        format!(
            "{} casts, {} sends, {} deliveries; lost {} dup {} reord {}; {} NAKs, {} retrans, {} WouldBlock; max {} frags; {:.1} s",
            self.casts,
            self.sends,
            self.cast_deliveries + self.send_deliveries,
            self.faults.losses,
            self.faults.duplicates,
            self.faults.reorders,
            self.naks,
            self.cast_retransmissions + self.send_retransmissions,
            self.would_blocks,
            self.max_fragments,
            self.virtual_ms as f64 / 1000.0
        )
    }
}

impl fmt::Display for Exercised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "exercised over {} runs ({:.1} virtual s):",
            self.runs,
            self.virtual_ms as f64 / 1000.0
        )?;
        writeln!(f, "  network:     {}", self.faults)?;
        writeln!(
            f,
            "  messages:    {} casts and {} sends accepted (largest {} B), {} refused with WouldBlock, {} Writable",
            self.casts, self.sends, self.max_len, self.would_blocks, self.writables
        )?;
        writeln!(
            f,
            "  deliveries:  {} casts, {} sends; {} in several fragments, at most {} fragments",
            self.cast_deliveries, self.send_deliveries, self.fragmented, self.max_fragments
        )?;
        writeln!(
            f,
            "  recovery:    {} NAKs, {} cast and {} send retransmissions, {} acks, {} stability gossips, {} duplicates discarded",
            self.naks,
            self.cast_retransmissions,
            self.send_retransmissions,
            self.acks,
            self.gossip,
            self.duplicates_discarded
        )?;
        write!(
            f,
            "  limits:      pools peaked at {}%; dropped {} for no buffer, {} for a full transmit queue, {} for backlog; {} Drop-layer drops; {} repeated timers",
            self.peak_pool_percent,
            self.no_buffer,
            self.tx_queue_full,
            self.backlog,
            self.test_drops,
            self.timer_repeats
        )?;
        let m = &self.membership;
        if m.view_changes > 0 {
            writeln!(f)?;
            writeln!(
                f,
                "  views:       {} installed ({} distinct, {} primary, largest {} members), {} view changes; {} attempts, {} timed out; {} merges asked; {} heal announcements",
                m.installs,
                m.views,
                m.primary_views,
                m.largest_view,
                m.view_changes,
                m.attempts,
                m.attempt_timeouts,
                m.merges,
                m.announcements
            )?;
            writeln!(
                f,
                "  blocking:    {} Block events; {} messages accepted between Block and block_ok, {} held for the next view; {} sends abandoned (destination gone), {} held sends to departed members",
                m.blocks, m.during_block, m.next_view, m.abandoned, m.sends_to_departed
            )?;
            write!(
                f,
                "  failures:    {} suspicions; {} leave() calls, {} Exit events; {} datagrams from another view, {} from non-members",
                m.suspicions, m.leaves, m.exits, m.wrong_view, m.not_member
            )?;
        }
        let o = &self.ordering;
        if o.any() {
            writeln!(f)?;
            write!(
                f,
                "  ordering:    {} order messages; {} casts held on arrival, {} delivered at the end of a view; {} causal discards, {} causal context casts",
                o.orders, o.held, o.end_of_view, o.causal_discarded, o.causal_context
            )?;
        }
        Ok(())
    }
}
