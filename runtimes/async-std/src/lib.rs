//! # consort-async-std
//!
//! consort on async-std: the core's [`Clock`] and [`Transport`] over
//! async-std's timer and UDP socket, and [`join`], which runs a member as
//! an async-std task. The Member API and the protocol come from
//! `consort-member` and `consort-core`, re-exported here; [`epidemic`]
//! runs the epidemic membership service's roles (`consort-epidemic`).
//! (async-std is in maintenance; this adapter is kept as thin as the tokio
//! one so that another runtime costs as little.)
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use consort_core::Instant;
use consort_core::driver::{Clock, Transport};

pub use consort_member::*;

pub mod epidemic;

/// The host's monotonic clock, from the moment it was made.
#[derive(Clone, Copy, Debug)]
pub struct AsyncStdClock {
    start: std::time::Instant,
}

impl AsyncStdClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        AsyncStdClock {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for AsyncStdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for AsyncStdClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
        let wait = deadline.saturating_duration_since(self.now());
        async_std::task::sleep(wait.max(Duration::ZERO))
    }
}

/// An async-std UDP socket as the core's transport.
#[derive(Debug)]
pub struct AsyncStdUdp(pub async_std::net::UdpSocket);

impl Transport for AsyncStdUdp {
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
    pub task: async_std::task::JoinHandle<()>,
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
    let socket = async_std::net::UdpSocket::bind(bind)
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
        AsyncStdUdp(socket),
        AsyncStdClock::new(),
        address,
        &seeds,
    )?;
    let task = match task {
        consort_member::Task::Small(t) => async_std::task::spawn(t),
        consort_member::Task::Server(t) => async_std::task::spawn(t),
    };
    joined.wait().await?;
    Ok(Running {
        member,
        events,
        task,
    })
}
