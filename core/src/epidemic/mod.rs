//! The epidemic membership service of WS-Membership: loose, scalable,
//! gossip-based membership for thousands of services, beside the strong
//! (virtually synchronous) path of the group stack.
//!
//! Roles, all sans-IO state machines like [`Endpoint`](crate::Endpoint):
//! - [`Service`]: the communication engine of one site. For each
//!   coordination context (a group URI) it runs one **Membership Service
//!   (MSS)** instance: a table of peer MSS (id, local timestamp, heartbeat
//!   counter) kept by push-pull gossip, and the member services registered
//!   with each. One engine serves many contexts at once.
//! - [`MemberService`] (MS): registers (`RequestMemberService`), answers
//!   `MemberProbe` with `MemberAlive`, leaves (`MemberLeaves`).
//! - [`ProxyService`] (MP): `RegisterMembershipProxy`, speaks for many
//!   services, answers `ProxyProbe` with `ProxyAlive`, reports
//!   `MemberLeaves` and `MemberFailed`.
//! - [`Monitor`] (MM): `RegisterMembershipMonitor`, receives
//!   `MembershipUpdate`s with the lifecycle sets (Members, Joined, Left,
//!   Failed, Suspected), the whole state or changes only.
//!
//! What consort adds to the seed's gossip-style failure detection, each
//! one a switch in [`Config`] so that the simulator can measure it:
//! - **delta gossip** ([`GossipMode::Delta`]): rounds carry a digest (per
//!   MSS: heartbeat, member-list version) and member entries travel only
//!   where versions differ, only those changed since the receiver's version;
//! - **suspicion with refutation** (`Config::suspicion`): a silent MSS is
//!   first Suspected and probed directly and through others (SWIM's
//!   indirect probes); an answer carries its current heartbeat and refutes
//!   the suspicion; only continued silence fails it;
//! - **failure dissemination and incarnations**: a Failed or Left entry
//!   travels in the gossip and is final for its incarnation; an MSS that
//!   learns it was failed comes back as a new incarnation, so a false
//!   failure heals without ever resurrecting the old one.
//!
//! The wire format is `docs/epidemic/wire.md`; [`wire`] pins its bytes.

mod client;
mod config;
mod event;
mod ids;
pub mod member;
pub mod monitor;
pub mod proxy;
mod service;
pub mod wire;

pub use client::{ClientConfig, ClientStats};
pub use config::{Config, GossipMode};
pub use event::{Change, Event, Stats};
pub use ids::{ContextId, Lifecycle, MAX_URI, MemberId, MssId, Status};
pub use member::{MemberEvent, MemberService, MemberState};
pub use monitor::{Monitor, MonitorEvent};
pub use proxy::{ProxyError, ProxyEvent, ProxyService};
pub use service::{
    MAX_CONTEXTS, MAX_MONITORS, MAX_PROXIES, MAX_SEEDS, MemberEntry, PeerEntry, Service,
    ServiceError,
};

#[cfg(test)]
mod tests;
