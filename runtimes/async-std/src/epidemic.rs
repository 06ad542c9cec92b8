//! The epidemic membership service on async-std: MSS nodes, member services,
//! proxies and monitors on async-std's UDP sockets and timer, and the bridge
//! that lets a group find its peers and detect failures through the
//! service. Everything comes from `consort-epidemic`, re-exported here;
//! this module only says how async-std binds, sleeps and spawns ([`AsyncStd`]).
//!
//! ```no_run
//! # #[async_std::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use consort_async_std::epidemic::{Membership, MonitorOptions, NodeOptions, ServiceOptions};
//! use consort_async_std::epidemic::{monitor, register, start_node};
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

use crate::{AsyncStdClock, AsyncStdUdp};

/// async-std as a [`Runtime`] for the epidemic service's roles: the same
/// clock and socket as the group members'.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsyncStd;

impl Runtime for AsyncStd {
    type Socket = AsyncStdUdp;
    type Clock = AsyncStdClock;

    fn clock() -> AsyncStdClock {
        AsyncStdClock::new()
    }

    fn now(clock: &AsyncStdClock) -> Instant {
        Clock::now(clock)
    }

    fn sleep_until(clock: &AsyncStdClock, deadline: Instant) -> impl Future<Output = ()> + Send {
        Clock::sleep_until(clock, deadline)
    }

    async fn bind(address: SocketAddr) -> std::io::Result<(AsyncStdUdp, SocketAddr)> {
        let socket = async_std::net::UdpSocket::bind(address).await?;
        let local = socket.local_addr()?;
        Ok((AsyncStdUdp(socket), local))
    }

    fn send_to<'a>(
        socket: &'a mut AsyncStdUdp,
        to: SocketAddr,
        bytes: &'a [u8],
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a {
        Transport::send_to(socket, to, bytes)
    }

    fn recv_from<'a>(
        socket: &'a mut AsyncStdUdp,
        buf: &'a mut [u8],
    ) -> impl Future<Output = std::io::Result<(usize, SocketAddr)>> + Send + 'a {
        Transport::recv_from(socket, buf)
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        async_std::task::spawn(task);
    }
}

// `start_node`, `register`, `start_proxy`, `monitor`, `discover`, `link`
// and `join_group` on async-std.
consort_epidemic::adapter_functions!(AsyncStd, crate::spawn, crate::Running);
