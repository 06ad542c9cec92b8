//! A member service (MS): registers with an MSS and answers its probes.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consort_core::Instant;
use consort_core::driver::Application;
use consort_core::epidemic::{
    ClientConfig, ClientStats, MemberEvent, MemberId, MemberService, MemberState, MssId,
};

use crate::client::{ClientOptions, FirstRegistration};
use crate::error::EpidemicError;
use crate::runtime::{EVENT_BACKLOG, Inbox, Kill, Runtime, publish, resolve, run};
use crate::stream::EventStream;

/// A member service's events: registered, reincarnated, left.
pub type ServiceEvents = EventStream<MemberEvent>;

/// Everything about registering a member service (the seed's
/// `RequestMemberService`: the service's address, the context, the port
/// for probes).
///
/// The service answers `MemberProbe`s on a UDP socket of its own, bound
/// at [`ServiceOptions::bind`]. Its address (the URI the seed speaks of,
/// what monitors see) is that socket's address, or another address on the
/// same IP given with [`ServiceOptions::address`]: the MSS then probes
/// that IP at the socket's port.
///
/// ```
/// use consort_epidemic::ServiceOptions;
/// let opts = ServiceOptions::new("urn:consort:chat", ["127.0.0.1:7101"]).bind("127.0.0.1:0");
/// assert!(opts.validate().is_ok());
/// assert!(ServiceOptions::new("urn:consort:chat", Vec::<String>::new()).validate().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    common: ClientOptions,
    address: Option<String>,
}

impl ServiceOptions {
    /// A member service of context `uri`, registering with the first MSS
    /// of `mss` that answers (`host:port`s, at most
    /// [`MAX_SEEDS`](consort_core::epidemic::MAX_SEEDS)); bound to
    /// `0.0.0.0:0` (set `bind` or `advertise` for a usable address).
    pub fn new<S: Into<String>>(uri: impl Into<String>, mss: impl IntoIterator<Item = S>) -> Self {
        ServiceOptions {
            common: ClientOptions::new(uri, mss),
            address: None,
        }
    }

    /// Where the socket that answers probes is bound, `host:port`.
    pub fn bind(mut self, address: impl Into<String>) -> Self {
        self.common.bind = address.into();
        self
    }

    /// The probe socket's address as the MSS should see it, when it is not
    /// the bound one (a wildcard bind, NAT). Port 0 means the bound port.
    pub fn advertise(mut self, address: impl Into<String>) -> Self {
        self.common.advertise = Some(address.into());
        self
    }

    /// The service's address, when it is not the probe socket's: a group
    /// member registers its group address, say. It must be on the probe
    /// socket's IP.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The first incarnation (default: microseconds since the Unix epoch,
    /// which grows across restarts as it must).
    pub fn incarnation(mut self, incarnation: u64) -> Self {
        self.common.incarnation = Some(incarnation);
        self
    }

    /// Retries and the silence after which the MSS is presumed failed.
    pub fn client(mut self, config: ClientConfig) -> Self {
        self.common.client = config;
        self
    }

    /// How long [`register`] waits for an MSS to register the service
    /// before it gives up (default 10 s; `None`: for ever).
    pub fn register_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.common.register_timeout = timeout;
        self
    }

    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<(), EpidemicError> {
        self.common.validate()
    }
}

#[derive(Debug)]
enum ServiceRequest {
    Leave {
        reply: Option<async_channel::Sender<()>>,
    },
}

#[derive(Debug)]
struct ServiceShared {
    id: Mutex<MemberId>,
    state: Mutex<MemberState>,
    stats: Mutex<ClientStats>,
}

/// A registered member service: the handle. Dropping it leaves (the MSS
/// records the service as Left); [`Registration::crash`] stops it without
/// a word, and the MSS then fails it.
#[derive(Debug)]
pub struct Registration {
    requests: async_channel::Sender<ServiceRequest>,
    shared: Arc<ServiceShared>,
    kill: Kill,
    probe: SocketAddr,
}

impl Registration {
    /// The current incarnation (it changes when the service has to
    /// register again: see [`MemberEvent::Reincarnated`]).
    pub fn id(&self) -> MemberId {
        self.shared
            .id
            .lock()
            .map_or_else(|e| *e.into_inner(), |g| *g)
    }

    /// Where the service stands.
    pub fn state(&self) -> MemberState {
        self.shared.state.lock().map_or(MemberState::Left, |g| *g)
    }

    /// The MSS the service is registered with.
    pub fn registered_with(&self) -> Option<MssId> {
        match self.state() {
            MemberState::Registered(m) => Some(m),
            _ => None,
        }
    }

    /// Where probes arrive.
    pub fn probe_addr(&self) -> SocketAddr {
        self.probe
    }

    /// The service's counters (datagrams, drops, registrations).
    pub fn stats(&self) -> ClientStats {
        self.shared
            .stats
            .lock()
            .map_or_else(|_| ClientStats::default(), |g| *g)
    }

    /// Leaves (`MemberLeaves`); returns once the MSS recorded it (or,
    /// with no MSS answering, once the retries are spent: the MSS then
    /// fails the service instead).
    pub async fn leave(self) -> Result<(), EpidemicError> {
        let (tx, rx) = async_channel::bounded(1);
        self.requests
            .send(ServiceRequest::Leave { reply: Some(tx) })
            .await
            .map_err(|_| EpidemicError::Stopped)?;
        rx.recv().await.map_err(|_| EpidemicError::Stopped)
    }

    /// Stops at once, as if the process were killed: no `MemberLeaves`,
    /// no more `MemberAlive`; the MSS fails the service after its probes
    /// go unanswered.
    pub fn crash(self) {
        self.kill.kill();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // A crashed service says nothing more.
        if !self.kill.is_killed() && self.state() != MemberState::Left {
            let _ = self
                .requests
                .try_send(ServiceRequest::Leave { reply: None });
        }
    }
}

struct ServiceApp {
    inbox: Inbox<ServiceRequest>,
    events: async_channel::Sender<MemberEvent>,
    shared: Arc<ServiceShared>,
    registered: FirstRegistration,
    leaving: Vec<async_channel::Sender<()>>,
    dropped: u64,
}

impl Application<MemberService> for ServiceApp {
    type Output = ();

    fn step(&mut self, ms: &mut MemberService, now: Instant) -> ControlFlow<()> {
        for ServiceRequest::Leave { reply } in self.inbox.take() {
            if let Some(r) = reply {
                self.leaving.push(r);
            }
            if !matches!(ms.state(), MemberState::Leaving | MemberState::Left) {
                ms.leave(now);
            }
        }
        if self.inbox.orphaned && !matches!(ms.state(), MemberState::Leaving | MemberState::Left) {
            ms.leave(now);
        }
        // The handle's view first: whoever an event wakes reads it.
        if let Ok(mut g) = self.shared.id.lock() {
            *g = ms.id();
        }
        if let Ok(mut g) = self.shared.state.lock() {
            *g = ms.state();
        }
        if let Ok(mut g) = self.shared.stats.lock() {
            *g = *ms.stats();
        }
        while let Some(e) = ms.poll_event() {
            log::debug!("member service {}: {e:?}", ms.id().addr);
            if matches!(e, MemberEvent::Registered { .. }) {
                self.registered.seen();
            }
            publish(&self.events, e, &mut self.dropped);
        }
        if ms.state() == MemberState::Left {
            for r in self.leaving.drain(..) {
                let _ = r.try_send(());
            }
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    async fn wake(&mut self) {
        self.inbox.wait().await;
    }
}

/// Registers a member service on runtime `R` and answers its probes in a
/// task; returns once an MSS has registered it. Runtime adapters wrap
/// this (`consort_tokio::epidemic::register`).
pub async fn register<R: Runtime>(
    options: ServiceOptions,
) -> Result<(Registration, ServiceEvents), EpidemicError> {
    options.validate()?;
    let address = options.address.as_deref().map(resolve).transpose()?;
    let common = &options.common;
    let (opened, registered) = common.open::<R>().await?;
    let probe = opened.addr;
    let address = address.unwrap_or(probe);
    if address.ip() != probe.ip() {
        return Err(EpidemicError::ProbeAddressMismatch { address, probe });
    }
    // Boxed at once: the machine is large, and the closure given to
    // `launch` below lives in this function's future.
    let mut ms = Box::new(
        MemberService::new(
            address,
            opened.incarnation,
            &common.context,
            &opened.servers,
        )
        .map_err(|_| EpidemicError::BadUri(common.context.clone()))?,
    );
    ms.set_probe_port(probe.port());
    ms.set_config(common.client);
    ms.start(opened.started);
    let (req_tx, req_rx) = async_channel::bounded(16);
    let (ev_tx, ev_rx) = async_channel::bounded(EVENT_BACKLOG);
    let shared = Arc::new(ServiceShared {
        id: Mutex::new(ms.id()),
        state: Mutex::new(ms.state()),
        stats: Mutex::new(*ms.stats()),
    });
    let app = ServiceApp {
        inbox: Inbox::new(req_rx),
        events: ev_tx,
        shared: shared.clone(),
        registered,
        leaving: Vec::new(),
        dropped: 0,
    };
    // If no MSS registers the service, `launch` kills the task before this
    // handle drops: a killed service sends no leave.
    let registration = Registration {
        requests: req_tx,
        shared,
        kill: opened.kill.clone(),
        probe,
    };
    opened
        .launch(
            |socket, clock, killed| run(ms, socket, clock, app, killed, "member service"),
            common.register_timeout,
        )
        .await?;
    Ok((registration, EventStream::new(ev_rx)))
}
