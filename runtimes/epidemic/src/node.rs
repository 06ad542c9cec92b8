//! An MSS node: the Membership Service engine of one site on a UDP socket.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use consort_core::Instant;
use consort_core::driver::Application;
use consort_core::epidemic::{
    Config, ContextId, Event, MAX_CONTEXTS, MAX_SEEDS, MemberEntry, MssId, PeerEntry, Service,
    ServiceError, Stats,
};

use crate::error::{EpidemicError, at_most_a_day, check_uri, nonzero};
use crate::runtime::{
    EVENT_BACKLOG, Inbox, Kill, Runtime, Time, bind, flow, incarnation_now, publish, random_seed,
    resolve, resolve_all, run,
};
use crate::stream::EventStream;

/// Length of the engine's event queue.
const ENGINE_EVENTS: usize = 1024;
/// Length of the engine's queue of small datagrams (probes and answers):
/// a probe round queues one probe per member service registered at this
/// node, so this bounds how many it probes per round without dropping
/// (drops are counted in [`Stats::tx_queue_full`]).
pub const ENGINE_CONTROL: usize = 1024;

/// The engine an MSS node runs.
pub type Engine = Service<Vec<PeerEntry>, Vec<MemberEntry>, ENGINE_EVENTS, ENGINE_CONTROL>;

/// The engine's events (context activations, peers and member services
/// joining, suspected, refuted, leaving, failing), as a stream.
pub type NodeEvents = EventStream<Event>;

/// Everything about starting an MSS node.
///
/// ```
/// use consort_epidemic::NodeOptions;
/// let opts = NodeOptions::new("127.0.0.1:7101")
///     .seeds(["127.0.0.1:7102", "127.0.0.1:7103"])
///     .context("urn:consort:chat");
/// assert!(opts.validate().is_ok());
/// assert!(NodeOptions::new("127.0.0.1:0").context("").validate().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct NodeOptions {
    bind: String,
    advertise: Option<String>,
    seeds: Vec<String>,
    contexts: Vec<String>,
    config: Config,
    peers: usize,
    members: usize,
    incarnation: Option<u64>,
}

impl NodeOptions {
    /// A node listening on `bind` (`host:port`), with [`Config::lan`],
    /// no seeds and no context activated in advance.
    pub fn new(bind: impl Into<String>) -> Self {
        NodeOptions {
            bind: bind.into(),
            advertise: None,
            seeds: Vec::new(),
            contexts: Vec::new(),
            config: Config::lan(),
            peers: 1024,
            members: 16 * 1024,
            incarnation: None,
        }
    }

    /// The address other MSS and clients send to, when it is not the
    /// bound one (a wildcard bind, NAT). Port 0 means the bound port.
    pub fn advertise(mut self, address: impl Into<String>) -> Self {
        self.advertise = Some(address.into());
        self
    }

    /// Other MSS nodes, `host:port`, contacted when a context has no known
    /// peer (the coordination service's list of existing MSS); at most
    /// [`MAX_SEEDS`]. The node's own address may be among them.
    pub fn seeds<S: Into<String>>(mut self, seeds: impl IntoIterator<Item = S>) -> Self {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }

    /// A context (group URI) to activate at start, as
    /// `CreateCoordinationContext` would. Other contexts are activated when
    /// a client first asks; as the seed says, an MSS joins a context's set
    /// of MSS only once a member service registers with it, and a context
    /// with no registration for [`Config::idle_after`] deactivates.
    pub fn context(mut self, uri: impl Into<String>) -> Self {
        self.contexts.push(uri.into());
        self
    }

    /// The service's settings (timeouts, gossip mode, suspicion).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Room for `peers` peer MSS and `members` member services, over all
    /// contexts, tombstones included (default 1024 and 16384, about 2 MB).
    /// Entries beyond are not stored and are counted in
    /// [`Stats::table_full`].
    pub fn capacity(mut self, peers: usize, members: usize) -> Self {
        self.peers = peers;
        self.members = members;
        self
    }

    /// The first incarnation of this node's MSS instances. It must grow
    /// across restarts of the same address; the default, the time since
    /// the Unix epoch in microseconds, does.
    pub fn incarnation(mut self, incarnation: u64) -> Self {
        self.incarnation = Some(incarnation);
        self
    }

    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<(), EpidemicError> {
        for c in &self.contexts {
            check_uri(c)?;
        }
        if self.contexts.len() > MAX_CONTEXTS {
            return Err(EpidemicError::TooManyContexts(self.contexts.len()));
        }
        if self.seeds.len() > MAX_SEEDS {
            return Err(EpidemicError::TooManySeeds(self.seeds.len()));
        }
        check_config(&self.config)?;
        if self.peers == 0 || self.members == 0 {
            return Err(EpidemicError::BadConfig {
                name: "capacity",
                why: format!(
                    "{} peers and {} members: both must be at least 1",
                    self.peers, self.members
                ),
            });
        }
        Ok(())
    }
}

/// Checks the service's settings: periods that are zero would make the
/// engine's task spin, and a failure timeout shorter than the suspicion
/// timeout would never suspect.
pub(crate) fn check_config(c: &Config) -> Result<(), EpidemicError> {
    nonzero("round", c.round)?;
    nonzero("probe_interval", c.probe_interval)?;
    nonzero("monitor_interval", c.monitor_interval)?;
    nonzero("fail_after", c.fail_after)?;
    nonzero("idle_after", c.idle_after)?;
    nonzero("monitor_timeout", c.monitor_timeout)?;
    // The engine adds a round per doubling of the peers to its timeouts:
    // bounded periods keep that sum far from overflowing.
    for (name, d) in [
        ("round", c.round),
        ("suspect_after", c.suspect_after),
        ("fail_after", c.fail_after),
        ("cleanup_after", c.cleanup_after),
        ("probe_interval", c.probe_interval),
        ("idle_after", c.idle_after),
        ("monitor_interval", c.monitor_interval),
        ("monitor_timeout", c.monitor_timeout),
    ] {
        at_most_a_day(name, d)?;
    }
    if c.fail_misses == 0 {
        return Err(EpidemicError::BadConfig {
            name: "fail_misses",
            why: "must be at least 1".into(),
        });
    }
    if c.suspicion && c.suspect_after > c.fail_after {
        return Err(EpidemicError::BadConfig {
            name: "suspect_after",
            why: format!(
                "{:?} is longer than fail_after ({:?}): nothing would ever be suspected first",
                c.suspect_after, c.fail_after
            ),
        });
    }
    Ok(())
}

type Job = Box<dyn FnOnce(&mut Engine, Instant) + Send>;

/// A request to the node's task.
enum NodeRequest {
    /// Runs a closure on the engine (queries and downcalls).
    With(Job),
}

/// What the node's handles and its task share.
#[derive(Debug, Default)]
struct NodeShared {
    events_dropped: AtomicU64,
}

/// A running MSS node: the handle. Clones share the node; it stops when
/// [`Node::stop`] is called or the last clone is dropped.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), consort_epidemic::EpidemicError> {
/// use consort_epidemic::NodeOptions;
/// use consort_tokio::epidemic::start_node;
/// let (node, mut events) = start_node(NodeOptions::new("127.0.0.1:7101")).await?;
/// println!("MSS at {}", node.addr());
/// while let Some(e) = events.next().await {
///     println!("{e:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Node {
    requests: async_channel::Sender<NodeRequest>,
    addr: SocketAddr,
    kill: Kill,
    shared: Arc<NodeShared>,
}

impl std::fmt::Debug for NodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeRequest")
    }
}

impl Node {
    /// The address other MSS and clients reach this node at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `f` on the engine in the node's task and returns its result.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine, Instant) -> T + Send + 'static,
    ) -> Result<T, EpidemicError> {
        let (tx, rx) = async_channel::bounded(1);
        let job: Job = Box::new(move |e, now| {
            let _ = tx.try_send(f(e, now));
        });
        self.requests
            .send(NodeRequest::With(job))
            .await
            .map_err(|_| EpidemicError::Stopped)?;
        rx.recv().await.map_err(|_| EpidemicError::Stopped)
    }

    /// Activates a context here (`CreateCoordinationContext`).
    pub async fn create_context(&self, uri: &str) -> Result<ContextId, EpidemicError> {
        check_uri(uri)?;
        let u = uri.to_string();
        self.with(move |e, now| e.create_context(now, &u))
            .await?
            .map_err(|e| service_error(e, uri))
    }

    /// Adds another MSS to contact when a context has no known peer.
    pub async fn add_seed(&self, seed: SocketAddr) -> Result<(), EpidemicError> {
        self.with(move |e, _| e.add_seed(seed))
            .await?
            .map_err(|_| EpidemicError::TooManySeeds(MAX_SEEDS + 1))
    }

    /// The URIs of the contexts active here.
    pub async fn contexts(&self) -> Result<Vec<String>, EpidemicError> {
        self.with(|e, _| e.contexts().map(String::from).collect())
            .await
    }

    /// This node's MSS instance in context `uri`, once it has joined the
    /// context's set of MSS (a member service registered here).
    pub async fn mss(&self, uri: &str) -> Result<Option<MssId>, EpidemicError> {
        let u = uri.to_string();
        self.with(move |e, _| e.mss(&u)).await
    }

    /// The member services of context `uri` known here, Left and Failed
    /// tombstones included (see [`MemberEntry::status`]).
    pub async fn members(&self, uri: &str) -> Result<Vec<MemberEntry>, EpidemicError> {
        let u = uri.to_string();
        self.with(move |e, _| e.members(&u).copied().collect())
            .await
    }

    /// The MSS of context `uri` known here, this one included, tombstones
    /// included.
    pub async fn peers(&self, uri: &str) -> Result<Vec<PeerEntry>, EpidemicError> {
        let u = uri.to_string();
        self.with(move |e, _| e.peers(&u).copied().collect()).await
    }

    /// The engine's counters; every datagram dropped is counted in one.
    pub async fn stats(&self) -> Result<Stats, EpidemicError> {
        self.with(|e, _| e.stats().clone()).await
    }

    /// Events not delivered because the application did not read
    /// [`NodeEvents`] (the backlog holds a few thousand).
    pub fn events_dropped(&self) -> u64 {
        self.shared.events_dropped.load(Ordering::Relaxed)
    }

    /// Stops the node at once, as if its process were killed: its peers
    /// fail it, and with it every member service registered here.
    pub fn stop(&self) {
        self.kill.kill();
    }
}

fn service_error(e: ServiceError, uri: &str) -> EpidemicError {
    match e {
        ServiceError::BadUri(_) => EpidemicError::BadUri(uri.into()),
        ServiceError::TooManyContexts => EpidemicError::TooManyContexts(MAX_CONTEXTS + 1),
        ServiceError::TooManySeeds => EpidemicError::TooManySeeds(MAX_SEEDS + 1),
    }
}

/// The node task's application side.
struct NodeApp {
    inbox: Inbox<NodeRequest>,
    events: async_channel::Sender<Event>,
    shared: Arc<NodeShared>,
}

impl Application<Engine> for NodeApp {
    type Output = ();

    fn step(&mut self, engine: &mut Engine, now: Instant) -> ControlFlow<()> {
        for NodeRequest::With(job) in self.inbox.take() {
            job(engine, now);
        }
        let mut dropped = 0;
        while let Some(e) = engine.poll_event() {
            log::debug!("mss {}: {e:?}", engine.addr());
            publish(&self.events, e, &mut dropped);
        }
        if dropped > 0 {
            self.shared
                .events_dropped
                .fetch_add(dropped, Ordering::Relaxed);
        }
        flow(self.inbox.orphaned)
    }

    async fn wake(&mut self) {
        self.inbox.wait().await;
    }
}

/// The engine, on the heap: built in a frame of its own, since it is a
/// value of a few hundred kilobytes.
#[inline(never)]
fn build_engine(
    addr: SocketAddr,
    incarnation: u64,
    config: Config,
    peers: usize,
    members: usize,
) -> Box<Engine> {
    Box::new(Service::new(
        addr,
        incarnation,
        random_seed(),
        config,
        vec![PeerEntry::EMPTY; peers],
        vec![MemberEntry::EMPTY; members],
    ))
}

/// Starts an MSS node on runtime `R`: binds its socket, activates the
/// contexts asked for, and runs the engine in a task. Runtime adapters
/// wrap this (`consort_tokio::epidemic::start_node`).
pub async fn start_node<R: Runtime>(
    options: NodeOptions,
) -> Result<(Node, NodeEvents), EpidemicError> {
    options.validate()?;
    let bind_at = resolve(&options.bind)?;
    let advertise = options.advertise.as_deref().map(resolve).transpose()?;
    let seeds = resolve_all(&options.seeds)?;
    let (socket, addr) = bind::<R>(bind_at, advertise).await?;
    let clock = Time::<R>(R::clock());
    let mut engine = build_engine(
        addr,
        options.incarnation.unwrap_or_else(incarnation_now),
        options.config,
        options.peers,
        options.members,
    );
    for s in seeds {
        engine
            .add_seed(s)
            .map_err(|_| EpidemicError::TooManySeeds(options.seeds.len()))?;
    }
    let now = R::now(&clock.0);
    for c in &options.contexts {
        engine
            .create_context(now, c)
            .map_err(|e| service_error(e, c))?;
    }
    let (req_tx, req_rx) = async_channel::bounded(64);
    let (ev_tx, ev_rx) = async_channel::bounded(EVENT_BACKLOG);
    let (kill, killed) = Kill::new();
    let shared = Arc::new(NodeShared::default());
    let app = NodeApp {
        inbox: Inbox::new(req_rx),
        events: ev_tx,
        shared: shared.clone(),
    };
    R::spawn(run(engine, socket, clock, app, killed, "mss node"));
    Ok((
        Node {
            requests: req_tx,
            addr,
            kill,
            shared,
        },
        EventStream::new(ev_rx),
    ))
}
