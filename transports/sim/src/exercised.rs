//! What a run (or a campaign) exercised.
//!
//! A campaign that passes only because its faults never bit proves nothing
//! (DESIGN.md section 7), so every run counts what actually happened: faults
//! by kind, messages accepted and delivered, the protocol's recovery work,
//! back-pressure, and how close the pools came to full.

use std::fmt;

use crate::checker::EndState;
use crate::net::FaultCounts;
use crate::sim::Sim;
use crate::trace::Entry;

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
}

impl Exercised {
    /// What one finished run exercised.
    pub fn of_run(sim: &Sim, end: &EndState) -> Self {
        let mut e = Exercised {
            runs: 1,
            faults: *sim.net.counts(),
            virtual_ms: end.time.as_millis(),
            ..Default::default()
        };
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
            let (_, peak, total) = node.endpoint.pool_usage();
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
    }

    /// One line, for a verbose per-seed listing.
    pub fn one_line(&self) -> String {
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
        )
    }
}
