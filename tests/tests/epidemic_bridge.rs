//! The bridge from the epidemic service to virtual synchrony, over real
//! loopback sockets: three members of a virtually synchronous group find
//! each other through the member services of a context (no seed hosts
//! configured), each registered at a different MSS; then one member's
//! process is cut off (group socket and probe socket dropped, no leave)
//! and the survivors install a view without it because the epidemic
//! service declared it Failed.
//!
//! The group's own failure detector (`Suspect`) is set to an hour in one
//! test and left out in the other, so the only way the survivors can drop
//! the member within the test's limits is the bridge's `suspect()`; the
//! tests also check that the bridge says it suspected.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod epidemic_common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consort_tokio::epidemic::{GroupOptions, Link, NodeOptions, discover, join_group, start_node};
use consort_tokio::{Capacity, EndpointId, JoinOptions, Member, MemberEvent, Running, ViewInfo};
use epidemic_common::{client, config};

/// Fast view changes, but a `Suspect` that would take an hour to suspect
/// anybody: failures can only come from the bridge.
const SLOW_SUSPECT: &str = "suspect_sweep=1s:suspect_max_idle=3600:gmp_retry=20ms:gmp_timeout=1s:heal_sweep=100ms:stable_sweep=100ms";

/// The views one member installed.
type Views = Arc<Mutex<Vec<ViewInfo>>>;

/// A member of the group, its link to the epidemic service, its views.
struct Vs {
    member: Member,
    task: tokio::task::JoinHandle<()>,
    link: Link,
    views: Views,
}

impl Vs {
    fn new(running: Running, link: Link) -> Vs {
        let Running {
            member,
            mut events,
            task,
        } = running;
        let views: Views = Arc::default();
        let v = views.clone();
        tokio::spawn(async move {
            while let Some(e) = events.next().await {
                if let MemberEvent::View(view) = e {
                    v.lock().unwrap().push(*view);
                }
            }
        });
        Vs {
            member,
            task,
            link,
            views,
        }
    }

    fn address(&self) -> SocketAddr {
        let v = self.member.view().unwrap();
        v.addresses[usize::from(v.my_rank)]
    }
}

/// Waits, for at most a minute, until every member's latest view holds.
async fn wait_views(views: &[&Views], what: &str, done: impl Fn(&ViewInfo) -> bool) {
    for _ in 0..1200 {
        if views
            .iter()
            .all(|v| v.lock().unwrap().last().is_some_and(&done))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last: Vec<_> = views
        .iter()
        .map(|v| v.lock().unwrap().last().map(|v| v.members.clone()))
        .collect();
    panic!("timed out waiting for {what}: latest views {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_find_each_other_through_the_epidemic_service_and_it_fails_a_cut_off_one() {
    // Ensemble's default properties, Suspect an hour slow; a member that
    // is not the coordinator is cut off.
    scenario("bridge-a", JoinOptions::DEFAULT_PROPERTIES, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_without_a_failure_detector_of_its_own_loses_its_cut_off_coordinator() {
    // No Suspect (nor Slander, which needs it) at all: the epidemic
    // service is the group's only failure detector, and the member cut
    // off is the coordinator.
    scenario("bridge-b", "Gmp:Sync:Heal:Frag:Flow", true).await;
}

/// Three members of `group` with `properties` join through the epidemic
/// service; then the coordinator, or a member that is not, is cut off.
async fn scenario(group_name: &str, properties: &str, cut_coordinator: bool) {
    let uri = format!("urn:consort:test:{group_name}");
    let uri = uri.as_str();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let seeds: Vec<String> = nodes
            .iter()
            .map(|n: &consort_tokio::epidemic::Node| n.addr().to_string())
            .collect();
        let (node, _) = start_node(
            NodeOptions::new("127.0.0.1:0")
                .seeds(seeds)
                .context(uri)
                .config(config()),
        )
        .await
        .unwrap();
        nodes.push(node);
    }
    let mss: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
    // Member i registers at MSS i first: the others learn of it by gossip.
    let group = |i: usize| {
        let mut order = mss.clone();
        order.rotate_left(i);
        GroupOptions::new(uri, order).client(client())
    };
    let join = || {
        JoinOptions::new(group_name)
            .bind("127.0.0.1:0")
            .properties(properties)
            .params(SLOW_SUSPECT)
            .capacity(Capacity::Small)
    };

    // Nobody is in the context yet: the first member founds the group.
    assert!(discover(&group(0)).await.unwrap().is_empty());
    let mut members: Vec<Vs> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        if i > 0 {
            // The members so far are found, whichever MSS is asked first.
            let found = discover(&group(i)).await.unwrap();
            for m in &members {
                let addr = m.address();
                assert!(found.contains(&addr), "{addr} in {found:?}");
            }
        }
        let (running, link) = join_group(join(), &group(i)).await.unwrap();
        assert_eq!(
            link.registration()
                .and_then(|r| r.registered_with())
                .map(|m| m.addr),
            Some(node.addr()),
            "member {i} registered at MSS {i}"
        );
        members.push(Vs::new(running, link));
    }
    // No seed host was configured: one view of three means they found each
    // other through the epidemic service.
    let all: Vec<&Views> = members.iter().map(|m| &m.views).collect();
    wait_views(&all, "one view of all three", |v| v.nmembers() == 3).await;

    // The victim's process is cut off: its group socket and its probe
    // socket close, nothing is said.
    let coordinator = members[0].member.view().unwrap().coordinator;
    let victim = members
        .iter()
        .position(|m| (m.member.my_endpoint() == coordinator) == cut_coordinator)
        .unwrap();
    let victim = members.remove(victim);
    let gone: EndpointId = victim.member.my_endpoint();
    victim.task.abort();
    victim.link.crash();
    let survivors: Vec<&Views> = members.iter().map(|m| &m.views).collect();
    wait_views(&survivors, "a view of the two survivors", |v| {
        v.nmembers() == 2 && !v.members.contains(&gone)
    })
    .await;
    for m in &members {
        let last = m.views.lock().unwrap().last().cloned().unwrap();
        assert!(last.departed_members.contains(&gone), "{last:?}");
        assert!(last.members.contains(&m.member.my_endpoint()));
    }
    // The bridge did it: some survivor's detector suspected the member
    // (the group's own Suspect would have waited an hour).
    let suspicions: u64 = members.iter().map(|m| m.link.suspicions()).sum();
    assert!(suspicions >= 1, "the bridge suspected nobody");
    assert!(members.iter().all(|m| m.link.updates() > 0));
}
