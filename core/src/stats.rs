//! Counters of what an endpoint did and what it refused.
//!
//! Every bound the core enforces and every input it rejects has a counter
//! here, so that a dropped datagram is never silent. The simulator prints
//! them to show what a campaign exercised.

/// Counters, all monotonic from the endpoint's creation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    /// Datagrams handed to [`Endpoint::handle_datagram`](crate::Endpoint::handle_datagram).
    pub datagrams_in: u64,
    /// Datagrams given out by [`Endpoint::poll_transmit`](crate::Endpoint::poll_transmit).
    pub datagrams_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Datagrams dropped because they did not parse (prefix or a header).
    pub malformed: u64,
    /// Datagrams for another group.
    pub wrong_group: u64,
    /// Datagrams from another view.
    pub wrong_view: u64,
    /// Datagrams whose sender rank or source address is not a member of the view.
    pub not_member: u64,
    /// Datagrams dropped: a point-to-point send for another rank (a new
    /// endpoint at the address of a member that is gone).
    pub misaddressed: u64,
    /// Datagrams dropped because the message pool was full.
    pub no_buffer: u64,
    /// Datagrams dropped because the endpoint's event queue was full (the
    /// application is not draining events).
    pub backlog: u64,
    /// Outgoing datagrams dropped because the transmit queue was full (the
    /// runtime is not draining transmits).
    pub tx_queue_full: u64,
    /// Events lost to a full scheduler queue. Always 0 unless there is a bug.
    pub queue_overflow: u64,
    /// Casts accepted from the application.
    pub casts: u64,
    /// Sends accepted from the application.
    pub sends: u64,
    /// Casts and sends refused with `WouldBlock`.
    pub would_block: u64,
    /// Casts delivered to the application (own casts included).
    pub cast_deliveries: u64,
    /// Sends delivered to the application.
    pub send_deliveries: u64,
    /// Duplicate messages discarded by the reliability layers.
    pub duplicates: u64,
    /// Negative acknowledgements sent by Mnak.
    pub naks: u64,
    /// Casts retransmitted by Mnak (own or on behalf of another member).
    pub cast_retransmissions: u64,
    /// Sends retransmitted by Pt2pt.
    pub send_retransmissions: u64,
    /// Acknowledgements sent by Pt2pt.
    pub acks: u64,
    /// Stability gossip messages sent.
    pub stable_gossip: u64,
    /// Messages discarded by the Drop test layer.
    pub test_drops: u64,
    /// Partial messages discarded by Frag (too many fragments, or out of sequence).
    pub frag_discarded: u64,
    /// Members newly suspected by this endpoint's failure detector.
    pub suspicions: u64,
    /// View-change attempts this endpoint started as coordinator.
    pub view_attempts: u64,
    /// Attempts abandoned because a member did not answer in `gmp_timeout`.
    pub view_timeouts: u64,
    /// Views installed (the first view included).
    pub views: u64,
    /// Merges this endpoint asked for as a junior coordinator.
    pub merge_requests: u64,
    /// View announcements sent by Heal.
    pub announcements: u64,
    /// Sends held for the next view whose destination did not come into it.
    pub sends_to_departed: u64,
    /// Order messages sent by Total's sequencer.
    pub total_orders: u64,
    /// Casts the ordering layers (Total, Causal, Agree) could not deliver
    /// on arrival and held (for an order, a causal predecessor, stability).
    pub order_held: u64,
    /// Casts the ordering layers (Total, Causal, Agree) delivered while
    /// ending a view, after the flush: those their normal rule had not
    /// released yet.
    pub end_of_view_deliveries: u64,
    /// Casts Causal discarded at the end of a view because a cast they
    /// depend on reached no survivor (their sender and the only holders of
    /// that cast failed).
    pub causal_discarded: u64,
    /// Causal's own casts carrying the part of a causal context that did
    /// not fit in a data cast's header (large groups only).
    pub causal_context_casts: u64,
}
