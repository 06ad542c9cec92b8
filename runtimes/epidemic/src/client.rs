//! What a member service and a proxy share: both register with an MSS
//! (from a bound socket, with an incarnation and the client's timing),
//! answer its probes in a task, and make their caller wait for the first
//! registration.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use consort_core::Instant;
use consort_core::epidemic::ClientConfig;
use embassy_futures::select::{Either, select};

use crate::error::{EpidemicError, at_most_a_day, check_servers, check_uri, nonzero};
use crate::runtime::{
    Kill, Killed, Runtime, Time, Udp, bind, incarnation_now, resolve, resolve_all,
};

/// The options a member service and a proxy share; each keeps its own
/// builder methods in its public options type.
#[derive(Clone, Debug)]
pub(crate) struct ClientOptions {
    pub(crate) context: String,
    pub(crate) mss: Vec<String>,
    pub(crate) bind: String,
    pub(crate) advertise: Option<String>,
    pub(crate) incarnation: Option<u64>,
    pub(crate) client: ClientConfig,
    pub(crate) register_timeout: Option<Duration>,
}

impl ClientOptions {
    /// Context `uri`, MSS `mss`, bound to `0.0.0.0:0`, waiting 10 s for
    /// the first registration.
    pub(crate) fn new<S: Into<String>>(
        uri: impl Into<String>,
        mss: impl IntoIterator<Item = S>,
    ) -> Self {
        ClientOptions {
            context: uri.into(),
            mss: mss.into_iter().map(Into::into).collect(),
            bind: "0.0.0.0:0".into(),
            advertise: None,
            incarnation: None,
            client: ClientConfig::default(),
            register_timeout: Some(Duration::from_secs(10)),
        }
    }

    /// Checks everything that can be checked without the network.
    pub(crate) fn validate(&self) -> Result<(), EpidemicError> {
        check_uri(&self.context)?;
        check_servers(self.mss.len())?;
        check_client(&self.client)?;
        if let Some(t) = self.register_timeout {
            nonzero("register_timeout", t)?;
        }
        Ok(())
    }

    /// Resolves the addresses and binds the socket: everything before the
    /// role's machine is made. The [`FirstRegistration`] goes to the
    /// role's application, which tells it of the first `Registered` event.
    pub(crate) async fn open<R: Runtime>(
        &self,
    ) -> Result<(Opened<R>, FirstRegistration), EpidemicError> {
        let bind_at = resolve(&self.bind)?;
        let advertise = self.advertise.as_deref().map(resolve).transpose()?;
        let servers = resolve_all(&self.mss)?;
        let (socket, addr) = bind::<R>(bind_at, advertise).await?;
        let clock = Time::<R>(R::clock());
        let started = R::now(&clock.0);
        let (kill, killed) = Kill::new();
        let (tx, registered) = async_channel::bounded(1);
        let opened = Opened {
            socket,
            addr,
            servers,
            incarnation: self.incarnation.unwrap_or_else(incarnation_now),
            clock,
            started,
            kill,
            killed,
            registered,
        };
        Ok((opened, FirstRegistration(Some(tx))))
    }
}

/// Checks a client role's timing.
pub(crate) fn check_client(c: &ClientConfig) -> Result<(), EpidemicError> {
    nonzero("retry", c.retry)?;
    nonzero("orphan_after", c.orphan_after)?;
    at_most_a_day("retry", c.retry)?;
    at_most_a_day("orphan_after", c.orphan_after)?;
    if c.tries_per_server == 0 {
        return Err(EpidemicError::BadConfig {
            name: "tries_per_server",
            why: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// A client role's socket, bound, with what its machine is made from.
pub(crate) struct Opened<R: Runtime> {
    socket: Udp<R>,
    /// Where the MSS reaches the socket.
    pub(crate) addr: SocketAddr,
    /// The MSS addresses, resolved.
    pub(crate) servers: Vec<SocketAddr>,
    /// The first incarnation.
    pub(crate) incarnation: u64,
    clock: Time<R>,
    /// When the role starts: its machine's `start` time, and where the
    /// wait for the first registration is counted from.
    pub(crate) started: Instant,
    /// Stops the role's task: the handle keeps a clone.
    pub(crate) kill: Kill,
    killed: Killed,
    registered: async_channel::Receiver<()>,
}

impl<R: Runtime> Opened<R> {
    /// Spawns the role's task, made by `task` from the socket, the clock
    /// and the kill signal (see [`run`](crate::runtime::run)), and waits
    /// for its first registration; kills the task if none comes within
    /// `timeout`.
    pub(crate) async fn launch<F>(
        self,
        task: impl FnOnce(Udp<R>, Time<R>, Killed) -> F,
        timeout: Option<Duration>,
    ) -> Result<(), EpidemicError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Opened {
            socket,
            servers,
            clock,
            started,
            kill,
            killed,
            registered,
            ..
        } = self;
        let timer = clock.clone();
        R::spawn(task(socket, clock, killed));
        wait_registered::<R>(&timer, started, timeout, registered, &servers)
            .await
            .inspect_err(|_| kill.kill())
    }
}

/// The first `Registered` event a role's task sees, told to the caller
/// waiting in [`Opened::launch`].
pub(crate) struct FirstRegistration(Option<async_channel::Sender<()>>);

impl FirstRegistration {
    /// The role registered: the first time, wake the caller.
    pub(crate) fn seen(&mut self) {
        if let Some(r) = self.0.take() {
            let _ = r.try_send(());
        }
    }
}

/// Waits for a role's first registration, or gives up after `timeout`.
async fn wait_registered<R: Runtime>(
    clock: &Time<R>,
    started: Instant,
    timeout: Option<Duration>,
    registered: async_channel::Receiver<()>,
    servers: &[SocketAddr],
) -> Result<(), EpidemicError> {
    let give_up = async {
        match timeout {
            Some(t) => R::sleep_until(&clock.0, started + t).await,
            None => std::future::pending().await,
        }
    };
    match select(registered.recv(), give_up).await {
        Either::First(Ok(())) => Ok(()),
        Either::First(Err(_)) => Err(EpidemicError::Stopped),
        Either::Second(()) => Err(EpidemicError::NotRegistered {
            waited: timeout.unwrap_or_default(),
            mss: servers.to_vec(),
        }),
    }
}
