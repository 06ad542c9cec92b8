//! A membership monitor (MM): `MembershipUpdate`s as an async stream, and
//! the lifecycle sets kept up to date from them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::ControlFlow;

use consort_core::Instant;
use consort_core::driver::Application;
use consort_core::epidemic::{ClientConfig, Lifecycle, MemberId, Monitor, MonitorEvent, MssId};

use crate::client::check_client;
use crate::error::{EpidemicError, check_servers, check_uri};
use crate::runtime::{
    EVENT_BACKLOG, Kill, Runtime, Time, bind_local, publish, resolve, resolve_all, run,
};
use crate::stream::EventStream;

/// One `MembershipUpdate` from an MSS: the seed's five lifecycle sets.
///
/// A whole-state update (`full`) lists every member service the MSS knows:
/// current ones in `members` (or `suspected`), and the `left` and `failed`
/// ones it still keeps. A changes-only update lists what changed since the
/// previous one: new members in `joined` (also a suspected member found
/// alive again), and those newly suspected, left or failed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MembershipUpdate {
    /// The MSS instance that sent it.
    pub mss: Option<MssId>,
    /// The whole state rather than changes.
    pub full: bool,
    /// The first update from this MSS instance: forget what earlier ones
    /// said (the monitor registered again, with this MSS or another).
    pub fresh: bool,
    /// Current members (whole-state updates).
    pub members: Vec<MemberId>,
    /// Members since the last update (changes-only updates).
    pub joined: Vec<MemberId>,
    /// Left on their own.
    pub left: Vec<MemberId>,
    /// Declared failed.
    pub failed: Vec<MemberId>,
    /// Reportedly failed: suspected, not yet declared.
    pub suspected: Vec<MemberId>,
}

impl MembershipUpdate {
    fn push(&mut self, member: MemberId, set: Lifecycle) {
        match set {
            Lifecycle::Members => self.members.push(member),
            Lifecycle::Joined => self.joined.push(member),
            Lifecycle::Left => self.left.push(member),
            Lifecycle::Failed => self.failed.push(member),
            Lifecycle::Suspected => self.suspected.push(member),
        }
    }

    /// Every member service the update names, with its set.
    pub fn entries(&self) -> impl Iterator<Item = (MemberId, Lifecycle)> + '_ {
        let sets = [
            (&self.members, Lifecycle::Members),
            (&self.joined, Lifecycle::Joined),
            (&self.left, Lifecycle::Left),
            (&self.failed, Lifecycle::Failed),
            (&self.suspected, Lifecycle::Suspected),
        ];
        sets.into_iter()
            .flat_map(|(v, s)| v.iter().map(move |m| (*m, s)))
    }

    /// Whether it names no member service.
    pub fn is_empty(&self) -> bool {
        self.entries().next().is_none()
    }
}

/// The lifecycle sets as they stand, kept from a monitor's updates (whole
/// state or changes only alike).
///
/// ```
/// use consort_epidemic::{Membership, MembershipUpdate};
/// use consort_core::epidemic::{Lifecycle, MemberId};
/// let a = MemberId { addr: "127.0.0.1:9001".parse().unwrap(), incarnation: 1 };
/// let mut m = Membership::default();
/// let up = MembershipUpdate { joined: vec![a], ..Default::default() };
/// assert_eq!(m.apply(&up), vec![(a, Lifecycle::Joined)]);
/// let down = MembershipUpdate { failed: vec![a], ..Default::default() };
/// assert_eq!(m.apply(&down), vec![(a, Lifecycle::Failed)]);
/// assert!(m.members().is_empty() && m.failed() == vec![a]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    sets: BTreeMap<MemberId, Lifecycle>,
}

impl Membership {
    /// Takes in an update; returns what changed, each member service with
    /// the set it moved to: `Joined` for a new member, `Members` for a
    /// suspected one found alive, `Suspected`, `Left`, `Failed`. A
    /// whole-state update also drops the tombstones the MSS has removed.
    pub fn apply(&mut self, u: &MembershipUpdate) -> Vec<(MemberId, Lifecycle)> {
        let whole = u.full || u.fresh;
        // A whole state replaces the sets; changes amend them.
        let old = if whole {
            std::mem::take(&mut self.sets)
        } else {
            BTreeMap::new()
        };
        let mut changes = Vec::new();
        for (m, set) in u.entries() {
            let now = match set {
                Lifecycle::Joined => Lifecycle::Members,
                s => s,
            };
            let was = if whole {
                old.get(&m)
            } else {
                self.sets.get(&m)
            }
            .copied();
            self.sets.insert(m, now);
            if was == Some(now) {
                continue;
            }
            let change = match (was, now) {
                (Some(Lifecycle::Suspected), Lifecycle::Members) => Lifecycle::Members,
                (_, Lifecycle::Members) => Lifecycle::Joined,
                (_, s) => s,
            };
            changes.push((m, change));
        }
        changes
    }

    /// Every member service known, with its set (`Members`, `Suspected`,
    /// `Left` or `Failed`).
    pub fn iter(&self) -> impl Iterator<Item = (MemberId, Lifecycle)> + '_ {
        self.sets.iter().map(|(m, s)| (*m, *s))
    }

    fn of(&self, set: Lifecycle) -> Vec<MemberId> {
        self.iter()
            .filter(|(_, s)| *s == set)
            .map(|(m, _)| m)
            .collect()
    }

    /// Current members (suspected ones not included).
    pub fn members(&self) -> Vec<MemberId> {
        self.of(Lifecycle::Members)
    }

    /// Suspected members.
    pub fn suspected(&self) -> Vec<MemberId> {
        self.of(Lifecycle::Suspected)
    }

    /// Members that left.
    pub fn left(&self) -> Vec<MemberId> {
        self.of(Lifecycle::Left)
    }

    /// Members declared failed.
    pub fn failed(&self) -> Vec<MemberId> {
        self.of(Lifecycle::Failed)
    }

    /// Whether some incarnation at `addr` is a member (alive or suspected).
    pub fn is_member_at(&self, addr: SocketAddr) -> bool {
        self.iter()
            .any(|(m, s)| m.addr == addr && matches!(s, Lifecycle::Members | Lifecycle::Suspected))
    }
}

/// A monitor's updates, as an async stream. Dropping it stops the monitor.
pub type Updates = EventStream<MembershipUpdate>;

/// Everything about attaching a monitor.
///
/// ```
/// use consort_epidemic::MonitorOptions;
/// let opts = MonitorOptions::new("urn:consort:chat", ["127.0.0.1:7101"]).changes_only(true);
/// assert!(opts.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct MonitorOptions {
    context: String,
    mss: Vec<String>,
    bind: String,
    changes_only: bool,
    client: ClientConfig,
}

impl MonitorOptions {
    /// A monitor of context `uri`, registering with the first MSS of
    /// `mss` that answers (and with the next when it falls silent), asking
    /// for the whole state each time; bound to `0.0.0.0:0`, from where
    /// the MSS answers.
    pub fn new<S: Into<String>>(uri: impl Into<String>, mss: impl IntoIterator<Item = S>) -> Self {
        MonitorOptions {
            context: uri.into(),
            mss: mss.into_iter().map(Into::into).collect(),
            bind: "0.0.0.0:0".into(),
            changes_only: false,
            client: ClientConfig::default(),
        }
    }

    /// Where the monitor's socket is bound, `host:port`.
    pub fn bind(mut self, address: impl Into<String>) -> Self {
        self.bind = address.into();
        self
    }

    /// Ask for changes only, rather than the whole state every
    /// `monitor_interval`.
    pub fn changes_only(mut self, on: bool) -> Self {
        self.changes_only = on;
        self
    }

    /// Retries and the silence after which the MSS is presumed failed.
    pub fn client(mut self, config: ClientConfig) -> Self {
        self.client = config;
        self
    }

    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<(), EpidemicError> {
        check_uri(&self.context)?;
        check_servers(self.mss.len())?;
        check_client(&self.client)
    }
}

struct MonitorApp {
    updates: async_channel::Sender<MembershipUpdate>,
    /// The update being assembled.
    current: MembershipUpdate,
    /// Inside a whole-state update.
    in_snapshot: bool,
    /// The MSS the last update came from.
    from: Option<MssId>,
    dropped: u64,
}

impl Application<Monitor> for MonitorApp {
    type Output = ();

    fn step(&mut self, m: &mut Monitor, _now: Instant) -> ControlFlow<()> {
        while let Some(e) = m.poll_event() {
            match e {
                MonitorEvent::Registered { mss } => log::debug!("monitor registered with {mss:?}"),
                MonitorEvent::SnapshotStart => {
                    self.current = MembershipUpdate::default();
                    self.in_snapshot = true;
                }
                MonitorEvent::Update { member, set } => self.current.push(member, set),
                MonitorEvent::SnapshotEnd => {
                    self.in_snapshot = false;
                    self.current.full = true;
                    self.send(m.registered_with());
                }
            }
        }
        if !self.in_snapshot && !self.current.is_empty() {
            self.send(m.registered_with());
        }
        if self.updates.is_closed() {
            // Nobody reads: stop.
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    async fn wake(&mut self) {
        // Nothing to wait for but datagrams and timers: a reader that went
        // away is noticed at the next step (an update at least every
        // `monitor_interval`, or a retry).
        std::future::pending().await
    }
}

impl MonitorApp {
    fn send(&mut self, mss: Option<MssId>) {
        let mut u = std::mem::take(&mut self.current);
        u.mss = mss;
        u.fresh = mss != self.from;
        self.from = mss;
        publish(&self.updates, u, &mut self.dropped);
    }
}

/// Attaches a monitor on runtime `R`: registers with an MSS and streams
/// its updates. Returns at once; the first update comes once an MSS
/// answers. Runtime adapters wrap this (`consort_tokio::epidemic::monitor`).
pub async fn monitor<R: Runtime>(options: MonitorOptions) -> Result<Updates, EpidemicError> {
    let (updates, _kill) = start_monitor::<R>(options).await?;
    Ok(updates)
}

/// Like [`monitor`], with the switch that stops it.
pub(crate) async fn start_monitor<R: Runtime>(
    options: MonitorOptions,
) -> Result<(Updates, Kill), EpidemicError> {
    options.validate()?;
    let bind_at = resolve(&options.bind)?;
    let servers = resolve_all(&options.mss)?;
    // The MSS answers the address the registration came from: no
    // advertised address is needed unless a NAT is in between.
    let (socket, _) = bind_local::<R>(bind_at).await?;
    let mut m = Box::new(
        Monitor::new(&options.context, options.changes_only, &servers)
            .map_err(|_| EpidemicError::BadUri(options.context.clone()))?,
    );
    m.set_config(options.client);
    let clock = Time::<R>(R::clock());
    m.start(R::now(&clock.0));
    let (up_tx, up_rx) = async_channel::bounded(EVENT_BACKLOG);
    let (kill, killed) = Kill::new();
    let app = MonitorApp {
        updates: up_tx,
        current: MembershipUpdate::default(),
        in_snapshot: false,
        from: None,
        dropped: 0,
    };
    R::spawn(run(m, socket, clock, app, killed, "monitor"));
    Ok((EventStream::new(up_rx), kill))
}
