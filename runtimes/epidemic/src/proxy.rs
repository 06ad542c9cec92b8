//! A membership proxy (MP): speaks for many services at once.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consort_core::Instant;
use consort_core::driver::Application;
use consort_core::epidemic::{
    ClientConfig, ClientStats, MemberId, MssId, ProxyEvent, ProxyService,
};

use crate::client::{ClientOptions, FirstRegistration};
use crate::error::EpidemicError;
use crate::runtime::{EVENT_BACKLOG, Inbox, Kill, Runtime, publish, run};
use crate::stream::EventStream;

/// Services one proxy speaks for, at most.
pub const PROXY_CAPACITY: usize = 256;

/// The proxy machine this crate runs.
type Machine = ProxyService<PROXY_CAPACITY>;

/// A proxy's events: registered, services registered, reincarnated, removed.
pub type ProxyEvents = EventStream<ProxyEvent>;

/// Everything about starting a proxy.
///
/// ```
/// use consort_epidemic::ProxyOptions;
/// assert!(ProxyOptions::new("urn:consort:chat", ["127.0.0.1:7101"]).validate().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    common: ClientOptions,
}

impl ProxyOptions {
    /// A proxy for context `uri`, registering with the first MSS of `mss`
    /// that answers; bound to `0.0.0.0:0` (set `bind` or `advertise`).
    pub fn new<S: Into<String>>(uri: impl Into<String>, mss: impl IntoIterator<Item = S>) -> Self {
        ProxyOptions {
            common: ClientOptions::new(uri, mss),
        }
    }

    /// Where the proxy's socket is bound (it answers `ProxyProbe`s there).
    pub fn bind(mut self, address: impl Into<String>) -> Self {
        self.common.bind = address.into();
        self
    }

    /// The address the MSS should see, when it is not the bound one.
    pub fn advertise(mut self, address: impl Into<String>) -> Self {
        self.common.advertise = Some(address.into());
        self
    }

    /// The proxy's first incarnation (default: microseconds since the Unix epoch).
    pub fn incarnation(mut self, incarnation: u64) -> Self {
        self.common.incarnation = Some(incarnation);
        self
    }

    /// Retries and the silence after which the MSS is presumed failed.
    pub fn client(mut self, config: ClientConfig) -> Self {
        self.common.client = config;
        self
    }

    /// How long [`start_proxy`] waits for an MSS to register the proxy
    /// (default 10 s; `None`: for ever).
    pub fn register_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.common.register_timeout = timeout;
        self
    }

    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<(), EpidemicError> {
        self.common.validate()
    }
}

type ProxyJob = Box<dyn FnOnce(&mut Machine, Instant) + Send>;

struct ProxyRequest(ProxyJob);

impl std::fmt::Debug for ProxyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyRequest")
    }
}

#[derive(Debug)]
struct ProxyShared {
    id: MemberId,
    mss: Mutex<Option<MssId>>,
    services: Mutex<Vec<(MemberId, bool)>>,
    stats: Mutex<ClientStats>,
}

/// A running proxy: the handle. The MSS probes the proxy, not its
/// services; the application reports the services that leave or fail.
/// Dropping the last handle stops the proxy (its MSS then fails every
/// service it spoke for), as does [`Proxy::stop`].
#[derive(Debug, Clone)]
pub struct Proxy {
    requests: async_channel::Sender<ProxyRequest>,
    shared: Arc<ProxyShared>,
    kill: Kill,
}

impl Proxy {
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Machine, Instant) -> T + Send + 'static,
    ) -> Result<T, EpidemicError> {
        let (tx, rx) = async_channel::bounded(1);
        let job: ProxyJob = Box::new(move |p, now| {
            let _ = tx.try_send(f(p, now));
        });
        self.requests
            .send(ProxyRequest(job))
            .await
            .map_err(|_| EpidemicError::Stopped)?;
        rx.recv().await.map_err(|_| EpidemicError::Stopped)
    }

    /// The proxy's identity (its address and incarnation).
    pub fn id(&self) -> MemberId {
        self.shared.id
    }

    /// The MSS it is registered with.
    pub fn registered_with(&self) -> Option<MssId> {
        self.shared.mss.lock().ok().and_then(|g| *g)
    }

    /// Speaks for `member` from now on: registers it with the MSS. Its
    /// incarnation may change later ([`ProxyEvent::ServiceReincarnated`]).
    pub async fn add_service(&self, member: MemberId) -> Result<(), EpidemicError> {
        self.with(move |p, now| p.add_service(now, member))
            .await?
            .map_err(EpidemicError::Proxy)
    }

    /// Reports that a service it speaks for left (`MemberLeaves`).
    pub async fn report_left(&self, member: MemberId) -> Result<(), EpidemicError> {
        self.with(move |p, now| p.report_left(now, member))
            .await?
            .map_err(EpidemicError::Proxy)
    }

    /// Reports that a service it speaks for failed (`MemberFailed`).
    pub async fn report_failed(&self, member: MemberId) -> Result<(), EpidemicError> {
        self.with(move |p, now| p.report_failed(now, member))
            .await?
            .map_err(EpidemicError::Proxy)
    }

    /// The services it speaks for, and whether each is registered.
    pub fn services(&self) -> Vec<(MemberId, bool)> {
        self.shared
            .services
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.shared
            .stats
            .lock()
            .map_or_else(|_| ClientStats::default(), |g| *g)
    }

    /// Stops the proxy at once, as if its process were killed.
    pub fn stop(&self) {
        self.kill.kill();
    }
}

struct ProxyApp {
    inbox: Inbox<ProxyRequest>,
    events: async_channel::Sender<ProxyEvent>,
    shared: Arc<ProxyShared>,
    registered: FirstRegistration,
    dropped: u64,
}

impl Application<Machine> for ProxyApp {
    type Output = ();

    fn step(&mut self, p: &mut Machine, now: Instant) -> ControlFlow<()> {
        for ProxyRequest(job) in self.inbox.take() {
            job(p, now);
        }
        // The handle's view first: whoever an event wakes reads it.
        if let Ok(mut g) = self.shared.mss.lock() {
            *g = p.registered_with();
        }
        if let Ok(mut g) = self.shared.services.lock() {
            g.clear();
            g.extend(p.services());
        }
        if let Ok(mut g) = self.shared.stats.lock() {
            *g = *p.stats();
        }
        while let Some(e) = p.poll_event() {
            log::debug!("proxy {}: {e:?}", p.id().addr);
            if matches!(e, ProxyEvent::Registered { .. }) {
                self.registered.seen();
            }
            publish(&self.events, e, &mut self.dropped);
        }
        if self.inbox.orphaned {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    async fn wake(&mut self) {
        self.inbox.wait().await;
    }
}

/// Starts a proxy on runtime `R`; returns once an MSS has registered it.
/// Runtime adapters wrap this (`consort_tokio::epidemic::start_proxy`).
pub async fn start_proxy<R: Runtime>(
    options: ProxyOptions,
) -> Result<(Proxy, ProxyEvents), EpidemicError> {
    options.validate()?;
    let common = &options.common;
    let (opened, registered) = common.open::<R>().await?;
    let mut p = Box::new(
        Machine::new(
            opened.addr,
            opened.incarnation,
            &common.context,
            &opened.servers,
        )
        .map_err(|_| EpidemicError::BadUri(common.context.clone()))?,
    );
    p.set_config(common.client);
    p.start(opened.started);
    let (req_tx, req_rx) = async_channel::bounded(64);
    let (ev_tx, ev_rx) = async_channel::bounded(EVENT_BACKLOG);
    let shared = Arc::new(ProxyShared {
        id: p.id(),
        mss: Mutex::new(None),
        services: Mutex::new(Vec::new()),
        stats: Mutex::new(*p.stats()),
    });
    let app = ProxyApp {
        inbox: Inbox::new(req_rx),
        events: ev_tx,
        shared: shared.clone(),
        registered,
        dropped: 0,
    };
    let proxy = Proxy {
        requests: req_tx,
        shared,
        kill: opened.kill.clone(),
    };
    opened
        .launch(
            |socket, clock, killed| run(p, socket, clock, app, killed, "proxy"),
            common.register_timeout,
        )
        .await?;
    Ok((proxy, EventStream::new(ev_rx)))
}
