//! The bridge to virtual synchrony: a group finds its peers through the
//! epidemic service, and uses it as an external failure detector.
//!
//! - [`discover`]: the addresses of the member services of a context, as
//!   the MSS know them: seeds for `JoinOptions::seeds`.
//! - [`link`]: registers a group member as a member service (its address
//!   is the member's group address; a socket of its own answers probes),
//!   and watches the context with a monitor: when the epidemic service
//!   declares Failed a member service whose address is that of a member
//!   of the current view, and no live incarnation has that address, it
//!   calls [`SuspectHandle::suspect`] for that member, and the group
//!   installs a view without it.
//!
//! The group then needs no failure detector of its own (`Suspect` can be
//! left out of its properties), and its members are probed at the epidemic
//! service's rate rather than pinging each other.
//!
//! A member service is declared Failed when its probes go unanswered, but
//! also when the MSS it registered with fails: the service then registers
//! again elsewhere after [`ClientConfig::orphan_after`], as a new
//! incarnation. [`GroupOptions::grace`] waits that long before suspecting,
//! so that a failed MSS does not cost the group a member; with no grace
//! (the default) the member is removed and, being alive, comes back
//! through `Heal` once its new incarnation is registered.
//!
//! The runtime adapters wrap both, and `join_group` does the three steps
//! (discover, join with the members found as seeds, link):
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use consort_tokio::JoinOptions;
//! use consort_tokio::epidemic::{GroupOptions, join_group};
//! // The MSS nodes of the site; the context names the group's services.
//! let epidemic = GroupOptions::new("urn:consort:chat", ["10.0.0.1:7101", "10.0.0.2:7101"]);
//! // No seed hosts: the members of the context are the seeds. No Suspect
//! // either: the epidemic service is the group's failure detector.
//! let join = JoinOptions::new("chat")
//!     .bind("10.0.0.3:7000")
//!     .properties("Gmp:Sync:Heal:Frag:Flow");
//! let (running, link) = join_group(join, &epidemic).await?;
//! running.member.cast(b"hello".to_vec()).await?;
//! // ... later: members the epidemic service failed were suspected.
//! println!("{} suspected through the epidemic service", link.suspicions());
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use consort_core::epidemic::{ClientConfig, Lifecycle, MemberId};
use consort_core::{EndpointId, Instant, ViewId};
use consort_member::{Member, MemberError, Status, SuspectHandle};
use embassy_futures::select::{Either, select};

use crate::client::check_client;
use crate::error::{EpidemicError, check_servers, check_uri, nonzero};
use crate::monitor::{Membership, MonitorOptions, Updates, start_monitor};
use crate::runtime::{Kill, Killed, Runtime, Time, resolve_all};
use crate::service::{Registration, ServiceOptions, register};

/// How a group uses the epidemic service.
///
/// ```
/// use consort_epidemic::GroupOptions;
/// use std::time::Duration;
/// let opts = GroupOptions::new("urn:consort:chat", ["127.0.0.1:7101", "127.0.0.1:7102"])
///     .grace(Duration::from_secs(8));
/// assert!(opts.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct GroupOptions {
    context: String,
    mss: Vec<String>,
    client: ClientConfig,
    discovery_timeout: Duration,
    grace: Duration,
}

impl GroupOptions {
    /// Use context `uri` at the MSS nodes `mss` (`host:port`s).
    pub fn new<S: Into<String>>(uri: impl Into<String>, mss: impl IntoIterator<Item = S>) -> Self {
        GroupOptions {
            context: uri.into(),
            mss: mss.into_iter().map(Into::into).collect(),
            client: ClientConfig::default(),
            discovery_timeout: Duration::from_secs(2),
            grace: Duration::ZERO,
        }
    }

    /// Timing of the member service and monitor (retries, and the silence
    /// after which an MSS is presumed failed).
    pub fn client(mut self, config: ClientConfig) -> Self {
        self.client = config;
        self
    }

    /// How long [`discover`] waits for the MSS's answers (default 2 s).
    pub fn discovery_timeout(mut self, timeout: Duration) -> Self {
        self.discovery_timeout = timeout;
        self
    }

    /// How long a member must stay Failed, with no live incarnation at its
    /// address, before it is suspected (default zero). Failures are looked
    /// at with each monitor update, every `monitor_interval` of the MSS.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The context.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<(), EpidemicError> {
        check_uri(&self.context)?;
        check_servers(self.mss.len())?;
        check_client(&self.client)?;
        nonzero("discovery_timeout", self.discovery_timeout)
    }
}

/// A wildcard address of `addr`'s family, any port.
fn any_port(addr: &SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0).to_string()
}

/// The addresses of the member services of the context, as the MSS nodes
/// know them (members and suspected members, from a whole-state monitor
/// update of each MSS that answers within the discovery timeout): seeds for
/// `JoinOptions::seeds`. Each MSS is asked, because an MSS that no member
/// service registered with has not joined the context and knows nobody.
/// Empty when the context has no member yet; an error when no MSS answered.
pub async fn discover<R: Runtime>(
    options: &GroupOptions,
) -> Result<Vec<SocketAddr>, EpidemicError> {
    options.validate()?;
    let servers = resolve_all(&options.mss)?;
    let clock = Time::<R>(R::clock());
    let deadline = R::now(&clock.0) + options.discovery_timeout;
    let mut monitors = Vec::new();
    for s in &servers {
        let o = MonitorOptions::new(options.context.clone(), [s.to_string()])
            .bind(any_port(s))
            .client(options.client);
        monitors.push(start_monitor::<R>(o).await?);
    }
    let mut found = BTreeSet::new();
    let mut answered = 0;
    // The monitors run in their own tasks: waiting for each in turn costs
    // no more than waiting for all at once.
    for (updates, kill) in &mut monitors {
        loop {
            match select(updates.next(), R::sleep_until(&clock.0, deadline)).await {
                Either::First(Some(u)) if u.full => {
                    answered += 1;
                    found.extend(u.members.iter().chain(&u.suspected).map(|m| m.addr));
                    break;
                }
                Either::First(Some(_)) => {}
                Either::First(None) | Either::Second(()) => break,
            }
        }
        kill.kill();
    }
    if answered == 0 {
        return Err(EpidemicError::NotRegistered {
            waited: options.discovery_timeout,
            mss: servers,
        });
    }
    Ok(found.into_iter().collect())
}

/// What a [`Link`]'s detector did.
#[derive(Debug, Default)]
struct LinkShared {
    /// Members suspected.
    suspected: AtomicU64,
    /// Monitor updates read.
    updates: AtomicU64,
}

/// A group member linked to the epidemic service: its registration as a
/// member service and the failure detector watching the context.
///
/// Dropping it stops the detector and leaves the epidemic service (the
/// member service is recorded as Left); [`Link::crash`] stops both without
/// a word, as a killed process would.
#[derive(Debug)]
pub struct Link {
    registration: Option<Registration>,
    detector: Kill,
    monitor: Kill,
    shared: Arc<LinkShared>,
}

impl Link {
    /// The member's registration as a member service.
    pub fn registration(&self) -> Option<&Registration> {
        self.registration.as_ref()
    }

    /// How many members the detector has suspected so far.
    pub fn suspicions(&self) -> u64 {
        self.shared.suspected.load(Ordering::Relaxed)
    }

    /// How many monitor updates the detector has read.
    pub fn updates(&self) -> u64 {
        self.shared.updates.load(Ordering::Relaxed)
    }

    /// Leaves the epidemic service and stops the detector.
    pub async fn leave(mut self) -> Result<(), EpidemicError> {
        self.detector.kill();
        self.monitor.kill();
        match self.registration.take() {
            Some(r) => r.leave().await,
            None => Ok(()),
        }
    }

    /// Stops everything at once, as if the process were killed: the
    /// epidemic service fails the member service, and the other members'
    /// detectors suspect this member.
    pub fn crash(mut self) {
        self.detector.kill();
        self.monitor.kill();
        if let Some(r) = self.registration.take() {
            r.crash();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.detector.kill();
        self.monitor.kill();
    }
}

/// Links a group member to the epidemic service on runtime `R`: registers
/// it as a member service whose address is the member's group address
/// (probes arrive on a socket of its own, on the same IP), and starts a
/// task that suspects members the epidemic service declares Failed.
/// Returns once the member service is registered.
pub async fn link<R: Runtime>(
    member: &Member,
    options: &GroupOptions,
) -> Result<Link, EpidemicError> {
    options.validate()?;
    let view = member.view().ok_or(EpidemicError::NoView)?;
    let me = *view
        .addresses
        .get(usize::from(view.my_rank))
        .ok_or(EpidemicError::NoView)?;
    let probe_bind = SocketAddr::new(me.ip(), 0);
    let service = ServiceOptions::new(options.context.clone(), options.mss.clone())
        .bind(probe_bind.to_string())
        .address(me.to_string())
        .client(options.client);
    let (registration, _events) = register::<R>(service).await?;
    // Watch the context at the MSS the service registered with first: it
    // has joined the context, so it knows every member.
    let mut mss = resolve_all(&options.mss)?;
    if let Some(at) = registration.registered_with() {
        mss.retain(|a| *a != at.addr);
        mss.insert(0, at.addr);
    }
    let watch = MonitorOptions::new(options.context.clone(), mss.iter().map(ToString::to_string))
        .bind(probe_bind.to_string())
        .client(options.client);
    let (updates, monitor) = start_monitor::<R>(watch).await?;
    let (detector, killed) = Kill::new();
    let shared = Arc::new(LinkShared::default());
    R::spawn(detect::<R>(
        member.suspect_handle(),
        updates,
        options.grace,
        Time::<R>(R::clock()),
        killed,
        shared.clone(),
    ));
    Ok(Link {
        registration: Some(registration),
        detector,
        monitor,
        shared,
    })
}

/// The detector's task: until killed, or the member leaves, or the
/// monitor stops.
async fn detect<R: Runtime>(
    handle: SuspectHandle,
    mut updates: Updates,
    grace: Duration,
    clock: Time<R>,
    killed: Killed,
    shared: Arc<LinkShared>,
) {
    let mut d = Detector::new(grace, handle.view().map(|v| v.members).unwrap_or_default());
    let work = async {
        while let Some(u) = updates.next().await {
            shared.updates.fetch_add(1, Ordering::Relaxed);
            let Some(view) = handle.view() else { continue };
            let now = R::now(&clock.0);
            let victims = d.update(
                now,
                &u,
                &view.members,
                &view.addresses,
                view.my_rank,
                view.id,
            );
            if victims.is_empty() {
                continue;
            }
            log::info!("epidemic service reports failed: suspecting {victims:?}");
            match handle.suspect(&victims).await {
                Ok(()) => {
                    shared
                        .suspected
                        .fetch_add(victims.len() as u64, Ordering::Relaxed);
                }
                Err(MemberError::Left) => return,
                Err(e) => log::warn!("suspect {victims:?} refused: {e}"),
            }
            if handle.status() == Status::Left {
                return;
            }
        }
    };
    let _ = select(work, killed.wait()).await;
}

/// Which members of the view to suspect, from the monitor's updates.
///
/// A member is suspected when an incarnation at its address was declared
/// Failed after the detector first saw the member in a view (so that the
/// tombstone of an earlier process at a reused address does not condemn a
/// newcomer), no incarnation at that address is a member, the grace has
/// passed, and it was not already suspected in this view.
#[derive(Debug)]
pub(crate) struct Detector {
    grace: Duration,
    membership: Membership,
    /// Updates read so far: the detector's clock for "after".
    tick: u64,
    /// Failed incarnations: when first seen (tick, time).
    failed: BTreeMap<MemberId, (u64, Instant)>,
    /// Endpoints: the tick they were first seen in a view (0 for the view
    /// the detector started with).
    seen: BTreeMap<EndpointId, u64>,
    /// Suspicions already raised, by view.
    raised: BTreeSet<(ViewId, EndpointId)>,
}

impl Detector {
    pub(crate) fn new(grace: Duration, initial: Vec<EndpointId>) -> Self {
        Detector {
            grace,
            membership: Membership::default(),
            tick: 0,
            failed: BTreeMap::new(),
            seen: initial.into_iter().map(|e| (e, 0)).collect(),
            raised: BTreeSet::new(),
        }
    }

    /// Takes in an update; returns the members of the view to suspect.
    pub(crate) fn update(
        &mut self,
        now: Instant,
        u: &crate::monitor::MembershipUpdate,
        members: &[EndpointId],
        addresses: &[SocketAddr],
        my_rank: u16,
        view: ViewId,
    ) -> Vec<EndpointId> {
        self.tick += 1;
        self.membership.apply(u);
        let tick = self.tick;
        for (m, s) in self.membership.iter() {
            if s == Lifecycle::Failed {
                self.failed.entry(m).or_insert((tick, now));
            }
        }
        let current: BTreeSet<MemberId> = self.membership.failed().into_iter().collect();
        self.failed.retain(|m, _| current.contains(m));
        self.raised.retain(|(v, _)| *v == view);
        let mut victims = Vec::new();
        for (rank, (ep, addr)) in members.iter().zip(addresses).enumerate() {
            let first = *self.seen.entry(*ep).or_insert(tick);
            if rank == usize::from(my_rank) || self.membership.is_member_at(*addr) {
                continue;
            }
            let condemned = self.failed.iter().any(|(m, (t, at))| {
                m.addr == *addr && *t > first && now.saturating_duration_since(*at) >= self.grace
            });
            if condemned && self.raised.insert((view, *ep)) {
                victims.push(*ep);
            }
        }
        victims
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::monitor::MembershipUpdate;

    fn id(port: u16, incarnation: u64) -> MemberId {
        MemberId {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            incarnation,
        }
    }

    fn full(members: &[MemberId], failed: &[MemberId]) -> MembershipUpdate {
        MembershipUpdate {
            full: true,
            members: members.to_vec(),
            failed: failed.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_failed_member_is_suspected_once_per_view_and_only_after_the_grace() {
        let eps = [EndpointId(1), EndpointId(2), EndpointId(3)];
        let addrs: Vec<SocketAddr> = (1..=3).map(|p| id(p, 1).addr).collect();
        let v1 = ViewId {
            ltime: 1,
            coordinator: EndpointId(1),
        };
        let mut d = Detector::new(Duration::from_secs(2), eps.to_vec());
        let t = Instant::from_secs(10);
        let all = [id(1, 1), id(2, 1), id(3, 1)];
        assert!(
            d.update(t, &full(&all, &[]), &eps, &addrs, 0, v1)
                .is_empty()
        );
        let up = full(&all[..2], &[id(3, 1)]);
        assert!(d.update(t, &up, &eps, &addrs, 0, v1).is_empty(), "grace");
        let later = t + Duration::from_secs(2);
        assert_eq!(
            d.update(later, &up, &eps, &addrs, 0, v1),
            vec![EndpointId(3)]
        );
        assert!(
            d.update(later, &up, &eps, &addrs, 0, v1).is_empty(),
            "once per view"
        );
        // I am never my own victim.
        let me_failed = full(&all[1..], &[id(1, 1)]);
        let mut d = Detector::new(Duration::ZERO, eps.to_vec());
        assert!(d.update(t, &me_failed, &eps, &addrs, 0, v1).is_empty());
    }

    #[test]
    fn a_live_incarnation_or_an_older_tombstone_saves_a_member() {
        let eps = [EndpointId(1), EndpointId(2)];
        let addrs: Vec<SocketAddr> = (1..=2).map(|p| id(p, 1).addr).collect();
        let v = ViewId {
            ltime: 1,
            coordinator: EndpointId(1),
        };
        let t = Instant::from_secs(1);
        // Member 2's first incarnation failed, its second is alive (it
        // registered again after its MSS failed): not suspected.
        let mut d = Detector::new(Duration::ZERO, eps.to_vec());
        let up = full(&[id(1, 1), id(2, 2)], &[id(2, 1)]);
        assert!(d.update(t, &up, &eps, &addrs, 0, v).is_empty());
        // A newcomer at an address whose earlier process failed before the
        // newcomer was seen: not suspected for that old failure.
        let mut d = Detector::new(Duration::ZERO, vec![EndpointId(1)]);
        let old = full(&[id(1, 1)], &[id(2, 1)]);
        assert!(d.update(t, &old, &eps[..1], &addrs[..1], 0, v).is_empty());
        let v2 = ViewId {
            ltime: 2,
            coordinator: EndpointId(1),
        };
        assert!(d.update(t, &old, &eps, &addrs, 0, v2).is_empty());
        // ... but its own incarnation failing later is.
        let new_failed = full(&[id(1, 1)], &[id(2, 1), id(2, 5)]);
        assert_eq!(
            d.update(t, &new_failed, &eps, &addrs, 0, v2),
            vec![EndpointId(2)]
        );
    }
}
