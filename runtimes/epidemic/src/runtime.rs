//! What a runtime adapter provides, and how every role's task is run.
//!
//! The core's [`Clock`] and [`Transport`] traits return futures without a
//! `Send` bound, so code generic over them cannot hand the driver's future
//! to a multi-threaded executor. [`Runtime`] asks the adapter for the same
//! few operations with `Send` futures; this crate wraps them back into the
//! core's traits ([`Udp`], [`Time`]) and runs
//! [`drive`](consort_core::driver::drive) over them.

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::ControlFlow;

use consort_core::Instant;
use consort_core::driver::{Application, Clock, Machine, Transport, drive};
use embassy_futures::select::{Either, select};

use crate::error::EpidemicError;

/// A runtime: a clock, UDP sockets and tasks. `consort-tokio` and
/// `consort-async-std` implement it (`consort_tokio::Tokio`,
/// `consort_async_std::AsyncStd`) over the same clock and socket types
/// their group members use.
///
/// Every future must be `Send`, so that a role's task can run on a
/// multi-threaded executor.
pub trait Runtime: Send + Sync + 'static {
    /// A bound UDP socket.
    type Socket: Send + 'static;
    /// A monotonic clock.
    type Clock: Clone + Send + Sync + 'static;

    /// A clock whose zero is now.
    fn clock() -> Self::Clock;
    /// The current time on `clock`.
    fn now(clock: &Self::Clock) -> Instant;
    /// Completes at or after `deadline` on `clock`.
    fn sleep_until(clock: &Self::Clock, deadline: Instant) -> impl Future<Output = ()> + Send;
    /// Binds a UDP socket; returns it with its local address.
    fn bind(
        address: SocketAddr,
    ) -> impl Future<Output = std::io::Result<(Self::Socket, SocketAddr)>> + Send;
    /// Sends one datagram.
    fn send_to<'a>(
        socket: &'a mut Self::Socket,
        to: SocketAddr,
        bytes: &'a [u8],
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a;
    /// Receives one datagram; must be cancel-safe (see
    /// [`Transport::recv_from`]).
    fn recv_from<'a>(
        socket: &'a mut Self::Socket,
        buf: &'a mut [u8],
    ) -> impl Future<Output = std::io::Result<(usize, SocketAddr)>> + Send + 'a;
    /// Runs `task` in the background, detached.
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
}

/// A runtime's socket as the core's [`Transport`].
pub(crate) struct Udp<R: Runtime>(pub(crate) R::Socket);

impl<R: Runtime> Transport for Udp<R> {
    type Error = std::io::Error;

    async fn send_to(&mut self, to: SocketAddr, bytes: &[u8]) -> Result<(), std::io::Error> {
        R::send_to(&mut self.0, to, bytes).await
    }

    async fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddr), std::io::Error> {
        R::recv_from(&mut self.0, buf).await
    }
}

/// A runtime's clock as the core's [`Clock`].
pub(crate) struct Time<R: Runtime>(pub(crate) R::Clock);

impl<R: Runtime> Clone for Time<R> {
    fn clone(&self) -> Self {
        Time(self.0.clone())
    }
}

impl<R: Runtime> Clock for Time<R> {
    fn now(&self) -> Instant {
        R::now(&self.0)
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> {
        R::sleep_until(&self.0, deadline)
    }
}

/// Stops a role's task at once, as if its process were killed: no leave,
/// no last datagram; its socket closes.
#[derive(Debug, Clone)]
pub(crate) struct Kill(async_channel::Sender<()>);

/// The task's side of a [`Kill`]: it holds a sender too, so that only an
/// explicit [`Kill::kill`] closes the channel, never the handles' drop.
#[derive(Debug)]
pub(crate) struct Killed {
    rx: async_channel::Receiver<()>,
    _keep: async_channel::Sender<()>,
}

impl Killed {
    /// Completes when the role is killed.
    pub(crate) async fn wait(&self) {
        // Nothing is ever sent: this completes when the channel closes.
        let _ = self.rx.recv().await;
    }
}

impl Kill {
    pub(crate) fn new() -> (Kill, Killed) {
        let (tx, rx) = async_channel::bounded(1);
        (Kill(tx.clone()), Killed { rx, _keep: tx })
    }

    pub(crate) fn kill(&self) {
        self.0.close();
    }

    /// Whether [`Kill::kill`] was called.
    pub(crate) fn is_killed(&self) -> bool {
        self.0.is_closed()
    }
}

/// Largest datagram any role takes: the epidemic wire format's limit.
pub(crate) const RECV_BUF: usize = consort_core::epidemic::wire::MAX_DATAGRAM;

/// Runs `machine` with `app` over `socket` until the application stops,
/// the socket breaks, or `killed` closes.
pub(crate) async fn run<R, S, A>(
    mut machine: Box<S>,
    mut socket: Udp<R>,
    clock: Time<R>,
    mut app: A,
    killed: Killed,
    role: &'static str,
) where
    R: Runtime,
    S: Machine,
    A: Application<S, Output = ()>,
{
    let mut buf = vec![0u8; RECV_BUF];
    let work = drive(&mut *machine, &mut socket, &clock, &mut app, &mut buf);
    // The kill is polled first: once killed, the machine does not get one
    // more step (a crash sends nothing, not even what was queued).
    if let Either::Second(Err(e)) = select(killed.wait(), work).await {
        log::error!("{role} task stopped: {e:?}");
    }
}

/// The application side every role shares: a request channel and a stop flag.
pub(crate) struct Inbox<Q> {
    pub(crate) requests: async_channel::Receiver<Q>,
    pub(crate) pending: Vec<Q>,
    /// Every handle is gone.
    pub(crate) orphaned: bool,
}

impl<Q> Inbox<Q> {
    pub(crate) fn new(requests: async_channel::Receiver<Q>) -> Self {
        Inbox {
            requests,
            pending: Vec::new(),
            orphaned: false,
        }
    }

    /// Waits for a request, or for the last handle to go.
    pub(crate) async fn wait(&mut self) {
        if self.orphaned {
            return std::future::pending().await;
        }
        match self.requests.recv().await {
            Ok(q) => self.pending.push(q),
            Err(_) => self.orphaned = true,
        }
    }

    /// The requests to answer now: the one that woke the task and any
    /// others already queued.
    pub(crate) fn take(&mut self) -> Vec<Q> {
        while let Ok(q) = self.requests.try_recv() {
            self.pending.push(q);
        }
        std::mem::take(&mut self.pending)
    }
}

/// Continue unless `stop`.
pub(crate) fn flow(stop: bool) -> ControlFlow<()> {
    if stop {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

/// Resolves `host:port`.
pub(crate) fn resolve(address: &str) -> Result<SocketAddr, EpidemicError> {
    let err = |error| EpidemicError::Resolve {
        address: address.into(),
        error,
    };
    address
        .to_socket_addrs()
        .map_err(err)?
        .next()
        .ok_or_else(|| {
            err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address",
            ))
        })
}

/// Resolves a list of `host:port`s.
pub(crate) fn resolve_all(addresses: &[String]) -> Result<Vec<SocketAddr>, EpidemicError> {
    addresses.iter().map(|a| resolve(a)).collect()
}

/// Binds at `bind`; returns the socket and its local address.
pub(crate) async fn bind_local<R: Runtime>(
    bind: SocketAddr,
) -> Result<(Udp<R>, SocketAddr), EpidemicError> {
    let (socket, local) = R::bind(bind).await.map_err(|error| EpidemicError::Bind {
        address: bind,
        error,
    })?;
    Ok((Udp(socket), local))
}

/// Binds at `bind` and works out the address others reach the socket at.
pub(crate) async fn bind<R: Runtime>(
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
) -> Result<(Udp<R>, SocketAddr), EpidemicError> {
    let (socket, local) = bind_local::<R>(bind).await?;
    let public = consort_member::advertised_address(local, advertise)
        .map_err(|_| EpidemicError::NoAdvertisedAddress(local))?;
    Ok((socket, public))
}

/// An incarnation number that grows across restarts: microseconds since
/// the Unix epoch (the core asks that a restarted MSS or service use a
/// larger number than any its previous life used).
pub fn incarnation_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A random 64-bit seed from the operating system (never from time).
pub(crate) fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // No entropy source: fall back to the clock, which only affects
        // which peer each round picks, never correctness.
        return incarnation_now();
    }
    u64::from_le_bytes(b)
}

/// Sends `item` on `events` unless it is full (then counts it) or closed.
pub(crate) fn publish<E>(events: &async_channel::Sender<E>, item: E, dropped: &mut u64) {
    if let Err(async_channel::TrySendError::Full(_)) = events.try_send(item) {
        *dropped += 1;
    }
}

/// Events a role keeps for an application that does not read them before
/// it drops new ones (counted).
pub(crate) const EVENT_BACKLOG: usize = 4096;
