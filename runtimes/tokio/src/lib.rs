//! # consort-tokio
//!
//! consort on tokio: the core's [`Clock`] and [`Transport`] over tokio's
//! timer and UDP socket, and [`join`], which runs a member of a group as a
//! tokio task. Everything else — the Member API, and every protocol
//! decision — comes from `consort-member` and `consort-core`, re-exported
//! here. [`epidemic`] runs the epidemic membership service's roles
//! (`consort-epidemic`) on tokio the same way.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use consort_tokio::{join, JoinOptions, MemberEvent};
//! let (member, mut events) = join(JoinOptions::new("chat").bind("127.0.0.1:7000")).await?;
//! member.cast(b"hello".to_vec()).await?;
//! while let Some(ev) = events.next().await {
//!     if let MemberEvent::Cast { from, bytes } = ev {
//!         println!("{from:?}: {}", String::from_utf8_lossy(&bytes));
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::net::SocketAddr;

use consort_core::Instant;
use consort_core::driver::{Clock, Transport};

pub use consort_member::*;

pub mod epidemic;

/// tokio's monotonic clock, from the moment it was made.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        TokioClock {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
        let at = self.start + std::time::Duration::from_micros(deadline.as_micros());
        tokio::time::sleep_until(at)
    }
}

/// A tokio UDP socket as the core's transport.
#[derive(Debug)]
pub struct TokioUdp(pub tokio::net::UdpSocket);

impl Transport for TokioUdp {
    type Error = std::io::Error;

    async fn send_to(&mut self, to: SocketAddr, bytes: &[u8]) -> Result<(), std::io::Error> {
        self.0.send_to(bytes, to).await.map(|_| ())
    }

    async fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddr), std::io::Error> {
        loop {
            match self.0.recv_from(buf).await {
                Ok(r) => return Ok(r),
                Err(e) if consort_member::is_loss_report(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A running member: its handle, its events, and its task. Aborting the
/// task (or dropping it, on async-std: `cancel`) stops the member at once,
/// without leaving, as a crash would.
#[derive(Debug)]
pub struct Running {
    /// The handle.
    pub member: Member,
    /// The events.
    pub events: Events,
    /// The member's task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Joins a group: binds the socket, starts the member's task, and returns
/// once its first view is installed (or, with `join_timeout`, once it has
/// found the group).
pub async fn join(options: JoinOptions) -> Result<(Member, Events), JoinError> {
    let r = spawn(options).await?;
    Ok((r.member, r.events))
}

/// Like [`join`], and keeps the task's handle.
pub async fn spawn(options: JoinOptions) -> Result<Running, JoinError> {
    let (bind, advertise, seeds) = options.resolve()?;
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|error| JoinError::Bind {
            address: bind,
            error,
        })?;
    let local = socket.local_addr().map_err(|error| JoinError::Bind {
        address: bind,
        error,
    })?;
    let address = consort_member::advertised_address(local, advertise)?;
    let consort_member::Prepared {
        member,
        events,
        task,
        joined,
    } = consort_member::prepare(
        &options,
        TokioUdp(socket),
        TokioClock::new(),
        address,
        &seeds,
    )?;
    let task = match task {
        consort_member::Task::Small(t) => tokio::spawn(t),
        consort_member::Task::Server(t) => tokio::spawn(t),
    };
    joined.wait().await?;
    Ok(Running {
        member,
        events,
        task,
    })
}
