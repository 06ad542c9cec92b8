//! Capacity profiles: how big an endpoint is, fixed at compile time.
//!
//! A profile fixes the most members a view may have (the `M` of
//! [`Endpoint`](crate::Endpoint)), the size of a pool slot (the largest
//! datagram) and the number of slots. Every bound the endpoint enforces
//! follows from these three numbers and the stack; `POOL_BYTES` is the
//! storage to give it.
//!
//! ```
//! use consort_core::profile::{Profile, Small};
//! use consort_core::{Config, EndpointId, Member, SmallEndpoint};
//! let me = Member { id: EndpointId(1), addr: "10.0.0.1:5000".parse().unwrap() };
//! let ep: SmallEndpoint = SmallEndpoint::new(
//!     &Config::new("board", me.id, 42),
//!     &[me],
//!     [0u8; Small::POOL_BYTES],
//!     Small::SLOT_SIZE,
//! )
//! .unwrap();
//! assert_eq!(ep.pool_usage().2, Small::SLOTS);
//! ```

use crate::buffer::SLOT_OVERHEAD;

/// Storage an endpoint of up to `members` members needs for `slots` slots
/// of `slot_size` bytes: the slots and their bookkeeping, then Stable's
/// `members × members` matrix of 4-byte counters.
///
/// ```
/// assert_eq!(consort_core::profile::storage_bytes(2, 100, 10), 10 * (100 + consort_core::SLOT_OVERHEAD) + 16);
/// ```
pub const fn storage_bytes(members: usize, slot_size: usize, slots: usize) -> usize {
    slots * (slot_size + SLOT_OVERHEAD) + members * members * 4
}

/// The numbers that size an endpoint.
pub trait Profile {
    /// Most members in a view.
    const MEMBERS: usize;
    /// Data bytes per pool slot: the largest datagram.
    const SLOT_SIZE: usize;
    /// Pool slots.
    const SLOTS: usize;
    /// Bytes of storage to give the endpoint: the pool, and Stable's matrix.
    const POOL_BYTES: usize = storage_bytes(Self::MEMBERS, Self::SLOT_SIZE, Self::SLOTS);
}

/// A small board: 8 members, 512-byte datagrams, 96 slots (about 50 KB of pool).
#[derive(Debug, Clone, Copy)]
pub struct Small;

impl Profile for Small {
    const MEMBERS: usize = 8;
    const SLOT_SIZE: usize = 512;
    const SLOTS: usize = 96;
}

/// A server: 256 members, Ethernet-sized datagrams (1472 bytes, no IP
/// fragmentation), 4096 slots (about 6 MB of storage, so it belongs on the heap).
#[derive(Debug, Clone, Copy)]
pub struct Server;

impl Profile for Server {
    const MEMBERS: usize = 256;
    const SLOT_SIZE: usize = 1472;
    const SLOTS: usize = 4096;
}

/// An endpoint sized by [`Small`], with its pool inline.
pub type SmallEndpoint<B = [u8; <Small as Profile>::POOL_BYTES]> =
    crate::Endpoint<{ <Small as Profile>::MEMBERS }, B>;

/// An endpoint sized by [`Server`]; give it `vec![0; Server::POOL_BYTES]`.
pub type ServerEndpoint<B> = crate::Endpoint<{ <Server as Profile>::MEMBERS }, B>;
