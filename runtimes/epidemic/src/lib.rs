//! # consort-epidemic
//!
//! The epidemic membership service of WS-Membership on std hosts: every
//! role of `consort_core::epidemic` on a real UDP socket, as a task driven
//! by the core's async driver, with a handle and an async stream of events.
//! Runtime-agnostic: `consort-tokio` and `consort-async-std` implement
//! [`Runtime`] and wrap the functions here (`consort_tokio::epidemic`,
//! `consort_async_std::epidemic`), with the runtime fixed, through one
//! macro (`adapter_functions!`). Nothing here decides protocol
//! behaviour; the core does.
//!
//! - [`start_node`]: an **MSS node** (the Membership Service engine of a
//!   site): bind address, seed MSS addresses, contexts, [`Config`].
//! - [`register`]: a **member service** (MS) registers with an MSS
//!   (`RequestMemberService`: its address, the context, the probe port)
//!   and answers `MemberProbe`s until it leaves.
//! - [`start_proxy`]: a **proxy** (MP) speaks for many services and
//!   reports their leaves and failures.
//! - [`monitor`]: a **monitor** (MM) receives `MembershipUpdate`s (the
//!   lifecycle sets Members, Joined, Left, Failed, Suspected), whole state
//!   or changes only, as an async stream; [`Membership`] keeps the sets.
//! - [`bridge`] ([`discover`], [`link`]): the bridge to virtual
//!   synchrony. A group finds its peers from the member services of a
//!   context, and uses the epidemic service as its failure detector
//!   (`Member::suspect`, through a `SuspectHandle`).
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), consort_epidemic::EpidemicError> {
//! use consort_epidemic::{Membership, MonitorOptions, NodeOptions, ServiceOptions};
//! use consort_tokio::epidemic::{monitor, register, start_node};
//! let uri = "urn:consort:chat";
//! let (node, _events) = start_node(NodeOptions::new("127.0.0.1:7101").seeds(["127.0.0.1:7102"])).await?;
//! let (service, _) = register(ServiceOptions::new(uri, ["127.0.0.1:7101"]).bind("127.0.0.1:0")).await?;
//! let mut updates = monitor(MonitorOptions::new(uri, ["127.0.0.1:7101"]).bind("127.0.0.1:0")).await?;
//! let mut sets = Membership::default();
//! while let Some(u) = updates.next().await {
//!     for (member, set) in sets.apply(&u) {
//!         println!("{} is now in {set:?}", member.addr);
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod adapter;
pub mod bridge;
mod client;
mod error;
mod monitor;
mod node;
mod proxy;
mod runtime;
mod service;
mod stream;

pub use bridge::{GroupOptions, Link, discover, link};
pub use consort_core::epidemic::{
    Change, ClientConfig, ClientStats, Config, ContextId, Event, GossipMode, Lifecycle,
    MemberEntry, MemberEvent, MemberId, MemberState, MssId, PeerEntry, ProxyEvent, Stats, Status,
};
pub use error::EpidemicError;
pub use monitor::{Membership, MembershipUpdate, MonitorOptions, Updates, monitor};
pub use node::{ENGINE_CONTROL, Engine, Node, NodeEvents, NodeOptions, start_node};
pub use proxy::{PROXY_CAPACITY, Proxy, ProxyEvents, ProxyOptions, start_proxy};
pub use runtime::{Runtime, incarnation_now};
pub use service::{Registration, ServiceEvents, ServiceOptions, register};
pub use stream::EventStream;

/// What [`adapter_functions!`] names from other crates, so that an adapter
/// need not depend on them under these names. Not an API.
#[doc(hidden)]
pub mod __private {
    pub use consort_member::{JoinOptions, Member};
}
