//! The epidemic membership service on tokio: MSS nodes, member services,
//! proxies and monitors on tokio's UDP sockets and timer, and the bridge
//! that lets a group find its peers and detect failures through the
//! service. Everything comes from `consort-epidemic`, re-exported here;
//! this module only says how tokio binds, sleeps and spawns ([`Tokio`]).
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use consort_tokio::epidemic::{Membership, MonitorOptions, NodeOptions, ServiceOptions};
//! use consort_tokio::epidemic::{monitor, register, start_node};
//! let uri = "urn:consort:chat";
//! let (_node, _) = start_node(NodeOptions::new("127.0.0.1:7101").seeds(["127.0.0.1:7102"])).await?;
//! let (_service, _) = register(ServiceOptions::new(uri, ["127.0.0.1:7101"]).bind("127.0.0.1:0")).await?;
//! let mut updates = monitor(MonitorOptions::new(uri, ["127.0.0.1:7101"]).bind("127.0.0.1:0")).await?;
//! let mut sets = Membership::default();
//! while let Some(u) = updates.next().await {
//!     for (member, set) in sets.apply(&u) {
//!         println!("{} is now in {set:?}", member.addr);
//!     }
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;

use consort_core::Instant;
use consort_core::driver::{Clock, Transport};
pub use consort_epidemic::*;

use crate::{TokioClock, TokioUdp};

/// tokio as a [`Runtime`] for the epidemic service's roles: the same
/// clock and socket as the group members'.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    type Socket = TokioUdp;
    type Clock = TokioClock;

    fn clock() -> TokioClock {
        TokioClock::new()
    }

    fn now(clock: &TokioClock) -> Instant {
        Clock::now(clock)
    }

    fn sleep_until(clock: &TokioClock, deadline: Instant) -> impl Future<Output = ()> + Send {
        Clock::sleep_until(clock, deadline)
    }

    async fn bind(address: SocketAddr) -> std::io::Result<(TokioUdp, SocketAddr)> {
        let socket = tokio::net::UdpSocket::bind(address).await?;
        let local = socket.local_addr()?;
        Ok((TokioUdp(socket), local))
    }

    fn send_to<'a>(
        socket: &'a mut TokioUdp,
        to: SocketAddr,
        bytes: &'a [u8],
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a {
        Transport::send_to(socket, to, bytes)
    }

    fn recv_from<'a>(
        socket: &'a mut TokioUdp,
        buf: &'a mut [u8],
    ) -> impl Future<Output = std::io::Result<(usize, SocketAddr)>> + Send + 'a {
        Transport::recv_from(socket, buf)
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }
}

// `start_node`, `register`, `start_proxy`, `monitor`, `discover`, `link`
// and `join_group` on tokio.
consort_epidemic::adapter_functions!(Tokio, crate::spawn, crate::Running);
