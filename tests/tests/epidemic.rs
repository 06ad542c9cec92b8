//! The epidemic membership service over real loopback sockets: three MSS
//! nodes gossiping, member services registering and answering probes, one
//! leaving, one crashing, one MSS killed with the services registered at
//! it; monitors (whole state and changes only) see them Joined, Suspected,
//! Left and Failed. Then a proxy speaking for several services, roles on
//! async-std beside tokio, every role on async-std alone, and bad input.
//!
//! Nothing is timed: every wait has a generous limit, and the service's
//! timeouts are several probes long.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod epidemic_common;

use std::net::SocketAddr;
use std::time::Duration;

use consort_tokio::epidemic::{
    ClientStats, Config, EpidemicError, Lifecycle, MemberId, MonitorOptions, Node, NodeOptions,
    ProxyOptions, ServiceOptions, monitor, register, start_node, start_proxy,
};
use epidemic_common::{client, config, wait_for, watch};

const URI: &str = "urn:consort:test:epidemic";

/// Starts `n` MSS nodes on loopback, each seeded with those before it.
async fn nodes(n: usize) -> Vec<Node> {
    nodes_with(n, config()).await
}

/// Like [`nodes`], with settings of the test's own.
async fn nodes_with(n: usize, config: Config) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    for _ in 0..n {
        let seeds: Vec<String> = out.iter().map(|n| n.addr().to_string()).collect();
        let (node, _events) = start_node(
            NodeOptions::new("127.0.0.1:0")
                .seeds(seeds)
                .context(URI)
                .config(config),
        )
        .await
        .unwrap();
        out.push(node);
    }
    out
}

/// A service at `127.0.0.1:port`, first incarnation (for proxies).
fn member_at(port: u16) -> MemberId {
    MemberId {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        incarnation: 1,
    }
}

fn service_at(node: &Node) -> ServiceOptions {
    ServiceOptions::new(URI, [node.addr().to_string()])
        .bind("127.0.0.1:0")
        .client(client())
}

fn monitor_at(node: &Node, changes_only: bool) -> MonitorOptions {
    MonitorOptions::new(URI, [node.addr().to_string()])
        .bind("127.0.0.1:0")
        .changes_only(changes_only)
        .client(client())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_mss_nodes_see_services_join_leave_crash_and_fail_with_their_mss() {
    // A crashed service stays Suspected for seven probes before it is
    // Failed: plenty of monitor updates to report it in, even on a loaded
    // machine.
    let mut slow_fail = config();
    slow_fail.fail_misses = 10;
    let nodes = nodes_with(3, slow_fail).await;
    // Two services at each MSS.
    let mut services = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            let (r, _) = register(service_at(node)).await.unwrap();
            assert_eq!(
                r.registered_with().map(|m| m.addr),
                Some(node.addr()),
                "registered with the MSS it asked"
            );
            services.push(r);
        }
    }
    let addrs: Vec<SocketAddr> = services.iter().map(|s| s.id().addr).collect();
    // A whole-state monitor at the first MSS, a changes-only one at the second.
    let whole = watch(monitor(monitor_at(&nodes[0], false)).await.unwrap());
    let changes = watch(monitor(monitor_at(&nodes[1], true)).await.unwrap());
    for seen in [&whole, &changes] {
        wait_for(seen, "all six services as members", |s| {
            addrs.iter().all(|a| s.sets.is_member_at(*a))
        })
        .await;
    }
    for a in &addrs {
        assert!(whole.lock().unwrap().saw(*a, Lifecycle::Joined));
        assert!(changes.lock().unwrap().saw(*a, Lifecycle::Joined));
    }

    // Service 1 (at the first MSS) leaves; service 2 (at the second) crashes.
    let leaver = services.remove(1);
    leaver.leave().await.unwrap();
    let crasher = services.remove(1);
    crasher.crash();
    for seen in [&whole, &changes] {
        wait_for(seen, "the leave and the crash", |s| {
            s.saw(addrs[1], Lifecycle::Left) && s.saw(addrs[2], Lifecycle::Failed)
        })
        .await;
    }
    // The crashed service's own MSS (the second) suspected it before it
    // failed it, and its monitor was told.
    {
        let s = changes.lock().unwrap();
        let suspected = s.first(addrs[2], Lifecycle::Suspected);
        let failed = s.first(addrs[2], Lifecycle::Failed);
        assert!(suspected.is_some() && suspected < failed, "{s:#?}");
        assert!(
            !s.saw(addrs[1], Lifecycle::Suspected),
            "a leave is no failure"
        );
    }

    // The third MSS is killed: its two services fail with it, everywhere.
    nodes[2].stop();
    for seen in [&whole, &changes] {
        wait_for(seen, "the killed MSS's services failed", |s| {
            s.saw(addrs[4], Lifecycle::Failed) && s.saw(addrs[5], Lifecycle::Failed)
        })
        .await;
    }
    // The others are members still, and the leaver never failed nor the
    // crashed one left.
    for seen in [&whole, &changes] {
        let s = seen.lock().unwrap();
        for a in [addrs[0], addrs[3]] {
            assert!(s.sets.is_member_at(a), "{a} is a member: {s:#?}");
        }
        assert!(!s.saw(addrs[1], Lifecycle::Failed), "{s:#?}");
        assert!(!s.saw(addrs[2], Lifecycle::Left), "{s:#?}");
    }
    assert!(whole.lock().unwrap().full > 0, "whole-state updates came");
    assert_eq!(changes.lock().unwrap().full, 0, "changes-only updates only");

    // What the surviving MSS hold agrees with what the monitors saw.
    for node in &nodes[..2] {
        let members = node.members(URI).await.unwrap();
        let status = |a: SocketAddr| {
            members
                .iter()
                .filter(|m| m.id().addr == a)
                .map(|m| m.status())
                .collect::<Vec<_>>()
        };
        assert!(status(addrs[0]).iter().any(|s| s.is_member()));
        // The killed MSS's services still run, but they only know that
        // MSS: no live incarnation of theirs anywhere.
        assert!(!status(addrs[4]).iter().any(|s| s.is_member()));
        let peers = node.peers(URI).await.unwrap();
        assert!(
            peers
                .iter()
                .any(|p| p.id().addr == nodes[2].addr() && !p.status().is_member()),
            "the killed MSS is failed at {}: {peers:?}",
            node.addr()
        );
        let stats = node.stats().await.unwrap();
        assert!(stats.rounds > 0 && stats.datagrams_in > 0);
    }
    drop(services);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_speaks_for_services_and_reports_their_leaves_and_failures() {
    let nodes = nodes(2).await;
    let (proxy, _) = start_proxy(
        ProxyOptions::new(URI, [nodes[0].addr().to_string()])
            .bind("127.0.0.1:0")
            .client(client()),
    )
    .await
    .unwrap();
    let ids: Vec<MemberId> = (0..4u16)
        .map(|i| MemberId {
            addr: SocketAddr::from(([127, 0, 0, 1], 40_000 + i)),
            incarnation: 1,
        })
        .collect();
    for id in &ids {
        proxy.add_service(*id).await.unwrap();
    }
    // The services are seen at the other MSS too, by gossip.
    let seen = watch(monitor(monitor_at(&nodes[1], true)).await.unwrap());
    let dummy = register(service_at(&nodes[1])).await.unwrap();
    wait_for(&seen, "the proxy's four services", |s| {
        ids.iter().all(|m| s.sets.is_member_at(m.addr))
    })
    .await;
    let current = |addr: SocketAddr| {
        proxy
            .services()
            .into_iter()
            .find(|(m, _)| m.addr == addr)
            .map(|(m, _)| m)
            .unwrap()
    };
    proxy.report_failed(current(ids[0].addr)).await.unwrap();
    proxy.report_left(current(ids[1].addr)).await.unwrap();
    wait_for(&seen, "one failed and one left by report", |s| {
        s.saw(ids[0].addr, Lifecycle::Failed) && s.saw(ids[1].addr, Lifecycle::Left)
    })
    .await;
    let stranger = MemberId {
        addr: SocketAddr::from(([127, 0, 0, 1], 1)),
        incarnation: 1,
    };
    assert!(matches!(
        proxy.report_failed(stranger).await,
        Err(EpidemicError::Proxy(_))
    ));
    // The proxy stops: the services it still spoke for fail with it.
    proxy.stop();
    wait_for(&seen, "the proxy's other services failed", |s| {
        s.saw(ids[2].addr, Lifecycle::Failed) && s.saw(ids[3].addr, Lifecycle::Failed)
    })
    .await;
    drop(dummy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_run_on_async_std_beside_tokio() {
    use consort_async_std::epidemic as astd;
    let (a, _) = astd::start_node(
        astd::NodeOptions::new("127.0.0.1:0")
            .context(URI)
            .config(config()),
    )
    .await
    .unwrap();
    let (b, _) = start_node(
        NodeOptions::new("127.0.0.1:0")
            .seeds([a.addr().to_string()])
            .config(config()),
    )
    .await
    .unwrap();
    let (on_async_std, _) = astd::register(
        astd::ServiceOptions::new(URI, [a.addr().to_string()])
            .bind("127.0.0.1:0")
            .client(client()),
    )
    .await
    .unwrap();
    let (on_tokio, _) = register(service_at(&b)).await.unwrap();
    let seen = watch(
        astd::monitor(
            astd::MonitorOptions::new(URI, [b.addr().to_string()])
                .bind("127.0.0.1:0")
                .client(client()),
        )
        .await
        .unwrap(),
    );
    let (x, y) = (on_async_std.id().addr, on_tokio.id().addr);
    wait_for(&seen, "both services, one per runtime", |s| {
        s.sets.is_member_at(x) && s.sets.is_member_at(y)
    })
    .await;
    on_async_std.crash();
    wait_for(&seen, "the async-std service failed", |s| {
        s.saw(x, Lifecycle::Failed)
    })
    .await;
    drop(on_tokio);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_datagrams_are_counted_and_bad_settings_named() {
    let nodes = nodes(1).await;
    let node = &nodes[0];
    let (service, _) = register(service_at(node)).await.unwrap();
    let (proxy, _) = start_proxy(
        ProxyOptions::new(URI, [node.addr().to_string()])
            .bind("127.0.0.1:0")
            .client(client()),
    )
    .await
    .unwrap();
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut bad: Vec<Vec<u8>> = vec![
        vec![],
        b"CS\x01garbage".to_vec(),
        b"CE\x09\x01\0\0\0\0\0\0\0\0".to_vec(),
        b"CE\x01\xff\0\0\0\0\0\0\0\0".to_vec(),
        vec![0xff; 1500],
    ];
    // A digest cut short, and random bytes after a good prefix.
    let mut digest = b"CE\x01\x01".to_vec();
    digest.extend_from_slice(
        &consort_tokio::epidemic::ContextId::from_uri(URI)
            .0
            .to_be_bytes(),
    );
    digest.extend_from_slice(&[0, 127, 0, 0]);
    bad.push(digest);
    for b in &bad {
        junk.send_to(b, node.addr()).await.unwrap();
        junk.send_to(b, service.probe_addr()).await.unwrap();
        junk.send_to(b, proxy.id().addr).await.unwrap();
    }
    let mut counted = 0;
    for _ in 0..200 {
        counted = node.stats().await.unwrap().malformed;
        if counted >= bad.len() as u64 - 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The oversized datagram may be cut by the receive buffer and counted
    // as malformed or too long: either way dropped, never a panic.
    assert!(
        counted >= bad.len() as u64 - 1,
        "malformed counted: {counted}"
    );
    // All three still work.
    let seen = watch(monitor(monitor_at(node, false)).await.unwrap());
    let addr = service.id().addr;
    wait_for(&seen, "the service as a member", |s| {
        s.sets.is_member_at(addr)
    })
    .await;
    assert!(service.stats().malformed + service.stats().unexpected > 0);
    let dropped = |p: ClientStats| p.malformed + p.unexpected;
    for _ in 0..400 {
        if dropped(proxy.stats()) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(dropped(proxy.stats()) > 0, "{:?}", proxy.stats());
    proxy.add_service(member_at(40_200)).await.unwrap();
    wait_for(&seen, "the proxy's service as a member", |s| {
        s.sets.is_member_at(member_at(40_200).addr)
    })
    .await;

    // Settings that cannot work are named.
    let e = NodeOptions::new("127.0.0.1:0")
        .context("")
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("context URI"), "{e}");
    let mut zero = config();
    zero.round = Duration::ZERO;
    let e = start_node(NodeOptions::new("127.0.0.1:0").config(zero))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("round"), "{e}");
    let mut huge = config();
    huge.suspect_after = Duration::MAX;
    let e = NodeOptions::new("127.0.0.1:0")
        .config(huge)
        .validate()
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("suspect_after: 18446744073709551615"),
        "{e}"
    );
    let mut c = client();
    c.retry = Duration::MAX;
    let e = ServiceOptions::new(URI, ["127.0.0.1:1"])
        .client(c)
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("retry"), "{e}");
    let e = start_node(NodeOptions::new(node.addr().to_string()))
        .await
        .unwrap_err();
    assert!(matches!(e, EpidemicError::Bind { .. }), "{e}");
    let e = register(ServiceOptions::new(URI, Vec::<String>::new()))
        .await
        .unwrap_err();
    assert!(matches!(e, EpidemicError::NoMss), "{e}");
    let e = start_node(NodeOptions::new("0.0.0.0:0")).await.unwrap_err();
    assert!(matches!(e, EpidemicError::NoAdvertisedAddress(_)), "{e}");
    let e = register(
        service_at(node)
            .address("10.9.9.9:1")
            .register_timeout(Some(Duration::from_millis(200))),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, EpidemicError::ProbeAddressMismatch { .. }),
        "{e}"
    );
    // Nobody at the MSS address: registration gives up with the address tried.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let e = register(
        ServiceOptions::new(URI, [silent.local_addr().unwrap().to_string()])
            .bind("127.0.0.1:0")
            .client(client())
            .register_timeout(Some(Duration::from_millis(500))),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, EpidemicError::NotRegistered { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&silent.local_addr().unwrap().to_string())
    );
}

/// Reads `updates` into `seen` until `done` holds; gives up after a
/// minute without it (nothing here measures time).
async fn read_until(
    updates: &mut consort_async_std::epidemic::Updates,
    seen: &mut epidemic_common::Seen,
    what: &str,
    done: impl Fn(&epidemic_common::Seen) -> bool,
) {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !done(seen) {
        let left = give_up.saturating_duration_since(std::time::Instant::now());
        match async_std::future::timeout(left, updates.next()).await {
            Ok(Some(u)) => seen.apply(&u),
            Ok(None) => panic!("the monitor stopped while waiting for {what}: {seen:#?}"),
            Err(_) => panic!("timed out waiting for {what}: {seen:#?}"),
        }
    }
}

#[async_std::test]
async fn every_role_runs_on_async_std_alone() {
    use consort_async_std::epidemic as astd;
    let uri = "urn:consort:test:async-std";
    let (a, _) = astd::start_node(
        astd::NodeOptions::new("127.0.0.1:0")
            .context(uri)
            .config(config()),
    )
    .await
    .unwrap();
    let (b, _) = astd::start_node(
        astd::NodeOptions::new("127.0.0.1:0")
            .seeds([a.addr().to_string()])
            .context(uri)
            .config(config()),
    )
    .await
    .unwrap();
    let at = |n: &astd::Node| {
        astd::ServiceOptions::new(uri, [n.addr().to_string()])
            .bind("127.0.0.1:0")
            .client(client())
    };
    let (crasher, _) = astd::register(at(&a)).await.unwrap();
    let (leaver, _) = astd::register(at(&b)).await.unwrap();
    let (proxy, _) = astd::start_proxy(
        astd::ProxyOptions::new(uri, [b.addr().to_string()])
            .bind("127.0.0.1:0")
            .client(client()),
    )
    .await
    .unwrap();
    let spoken = MemberId {
        addr: SocketAddr::from(([127, 0, 0, 1], 40_100)),
        incarnation: 1,
    };
    proxy.add_service(spoken).await.unwrap();
    // A changes-only monitor at the first MSS: the second's services reach
    // it by gossip.
    let mut updates = astd::monitor(
        astd::MonitorOptions::new(uri, [a.addr().to_string()])
            .bind("127.0.0.1:0")
            .changes_only(true)
            .client(client()),
    )
    .await
    .unwrap();
    let mut seen = epidemic_common::Seen::default();
    let (x, y) = (crasher.id().addr, leaver.id().addr);
    read_until(&mut updates, &mut seen, "three members", |s| {
        [x, y, spoken.addr].iter().all(|m| s.sets.is_member_at(*m))
    })
    .await;
    leaver.leave().await.unwrap();
    let current = proxy
        .services()
        .into_iter()
        .find(|(m, _)| m.addr == spoken.addr)
        .unwrap()
        .0;
    proxy.report_failed(current).await.unwrap();
    crasher.crash();
    read_until(&mut updates, &mut seen, "a leave and two failures", |s| {
        s.saw(y, Lifecycle::Left)
            && s.saw(spoken.addr, Lifecycle::Failed)
            && s.saw(x, Lifecycle::Failed)
    })
    .await;
    assert!(
        !seen.saw(y, Lifecycle::Failed),
        "the leaver left: {seen:#?}"
    );
    assert!(a.stats().await.unwrap().rounds > 0 && b.stats().await.unwrap().rounds > 0);
}
