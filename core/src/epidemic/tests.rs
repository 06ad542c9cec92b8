//! Behaviour tests of the roles together, over a tiny in-memory network in
//! virtual time (the simulator in `consort-sim` runs the big campaigns).

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BTreeMap;
use std::vec::Vec;

use super::*;
use crate::Instant;
use crate::driver::Machine;

const URI: &str = "urn:test:ctx";

type Mss = Service<Vec<PeerEntry>, Vec<MemberEntry>, 256>;

#[allow(clippy::large_enum_variant)] // a test harness: size does not matter
enum Node {
    Mss(Mss),
    Ms(MemberService),
    Proxy(ProxyService<4>),
    Mon(Monitor),
}

impl Node {
    fn m(&mut self) -> &mut dyn Machine {
        match self {
            Node::Mss(s) => s,
            Node::Ms(s) => s,
            Node::Proxy(s) => s,
            Node::Mon(s) => s,
        }
    }
}

struct World {
    now: Instant,
    nodes: BTreeMap<SocketAddr, Node>,
    flight: Vec<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    /// Links cut: datagrams from or to these addresses are dropped.
    down: Vec<SocketAddr>,
    events: Vec<(SocketAddr, Event)>,
    monitor: Vec<MonitorEvent>,
    gossip_bytes: u64,
}

fn mss_addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7100))
}
fn ms_addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 1, i], 9000))
}

fn mss(i: u8, config: Config) -> Mss {
    let mut s = Service::new(
        mss_addr(i),
        1,
        u64::from(i),
        config,
        std::vec![PeerEntry::EMPTY; 64],
        std::vec![MemberEntry::EMPTY; 256],
    );
    s.add_seed(mss_addr(1)).unwrap();
    s
}

impl World {
    fn new() -> Self {
        World {
            now: Instant::ZERO,
            nodes: BTreeMap::new(),
            flight: Vec::new(),
            down: Vec::new(),
            events: Vec::new(),
            monitor: Vec::new(),
            gossip_bytes: 0,
        }
    }

    fn add(&mut self, addr: SocketAddr, n: Node) {
        self.nodes.insert(addr, n);
        self.drain(addr);
    }

    fn ms(&mut self, i: u8, servers: &[SocketAddr]) {
        let mut m = MemberService::new(ms_addr(i), 1, URI, servers).unwrap();
        m.start(self.now);
        self.add(ms_addr(i), Node::Ms(m));
    }

    fn drain(&mut self, at: SocketAddr) {
        let now = self.now;
        let Some(n) = self.nodes.get_mut(&at) else {
            return;
        };
        while let Some(t) = n.m().poll_transmit() {
            let b = t.contents.to_vec();
            self.flight
                .push((now + Duration::from_millis(1), at, t.destination, b));
        }
        match n {
            Node::Mss(s) => {
                while let Some(e) = s.poll_event() {
                    self.events.push((at, e));
                }
            }
            Node::Mon(m) => {
                while let Some(e) = m.poll_event() {
                    self.monitor.push(e);
                }
            }
            _ => {}
        }
    }

    /// Runs until `until`, in steps of the next datagram or timer.
    fn run(&mut self, until: Instant) {
        let mut steps = 0u64;
        loop {
            steps += 1;
            assert!(steps < 10_000_000, "livelock at {:?}", self.now);
            let next_dgram = self.flight.iter().map(|f| f.0).min();
            let next_timer = self
                .nodes
                .values_mut()
                .filter_map(|n| n.m().poll_timeout())
                .min();
            let next = match (next_dgram, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(t), None) | (None, Some(t)) => t,
                (None, None) => {
                    self.now = until;
                    return;
                }
            };
            if next > until {
                self.now = until;
                return;
            }
            self.now = next.max(self.now);
            let now = self.now;
            if let Some(i) = self.flight.iter().position(|f| f.0 <= now) {
                let (_, from, to, b) = self.flight.remove(i);
                if self.down.contains(&from) || self.down.contains(&to) {
                    continue;
                }
                if let Some(n) = self.nodes.get_mut(&to) {
                    if matches!(n, Node::Mss(_)) && b.get(3).is_some_and(|k| *k < 16) {
                        self.gossip_bytes += b.len() as u64;
                    }
                    n.m().handle_datagram(now, from, &b);
                    self.drain(to);
                }
                continue;
            }
            let due: Vec<SocketAddr> = self
                .nodes
                .iter_mut()
                .filter_map(|(a, n)| n.m().poll_timeout().is_some_and(|t| t <= now).then_some(*a))
                .collect();
            for a in due {
                if let Some(n) = self.nodes.get_mut(&a) {
                    n.m().handle_timeout(now);
                }
                self.drain(a);
            }
        }
    }

    fn service(&self, i: u8) -> &Mss {
        match self.nodes.get(&mss_addr(i)) {
            Some(Node::Mss(s)) => s,
            _ => panic!("no MSS {i}"),
        }
    }

    fn members_at(&self, i: u8) -> Vec<MemberId> {
        self.service(i)
            .members(URI)
            .filter(|m| m.status().is_member())
            .map(|m| m.id())
            .collect()
    }

    fn status_at(&self, i: u8, member: MemberId) -> Option<Status> {
        self.service(i)
            .members(URI)
            .find(|m| m.id() == member)
            .map(|m| m.status())
    }
}

/// Three MSS, each with two member services: everyone learns all six.
fn three_sites(config: Config) -> World {
    let mut w = World::new();
    for i in 1..=3 {
        w.add(mss_addr(i), Node::Mss(mss(i, config)));
    }
    for i in 1..=6u8 {
        let home = mss_addr(1 + (i - 1) / 2);
        w.ms(i, &[home]);
    }
    w.run(Instant::from_secs(10));
    w
}

#[test]
fn members_spread_to_every_mss() {
    for config in [Config::lan(), Config::classic()] {
        let w = three_sites(config);
        for i in 1..=3 {
            assert_eq!(w.members_at(i).len(), 6, "MSS {i} with {:?}", config.mode);
            assert_eq!(
                w.service(i)
                    .peers(URI)
                    .filter(|p| p.status().is_member())
                    .count(),
                3
            );
        }
        // Each MSS joined once and saw every member join once.
        let joins = w
            .events
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    Event::Member {
                        change: Change::Joined,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(joins, 18);
    }
}

#[test]
fn a_crashed_member_service_is_suspected_then_failed_everywhere() {
    let mut w = three_sites(Config::lan());
    let victim = MemberId {
        addr: ms_addr(1),
        incarnation: 1,
    };
    w.nodes.remove(&ms_addr(1));
    w.run(w.now + Duration::from_secs(12));
    for i in 1..=3 {
        assert_eq!(w.status_at(i, victim), Some(Status::Failed), "at MSS {i}");
        assert_eq!(w.members_at(i).len(), 5);
    }
    let suspected = w.events.iter().any(|(_, e)| {
        matches!(e, Event::Member { member, change: Change::Suspected, .. } if *member == victim)
    });
    assert!(suspected, "suspected before failed");
}

#[test]
fn a_crashed_mss_and_its_services_fail_and_the_services_move() {
    let mut w = three_sites(Config::lan());
    let old = w.service(3).mss(URI).unwrap();
    w.nodes.remove(&mss_addr(3));
    // Services 5 and 6 lose their MSS; give them a second one to move to.
    for i in 5..=6u8 {
        let mut m = MemberService::new(ms_addr(i), 1, URI, &[mss_addr(3), mss_addr(1)]).unwrap();
        m.start(w.now);
        w.nodes.insert(ms_addr(i), Node::Ms(m));
    }
    w.run(w.now + Duration::from_secs(30));
    for i in 1..=2 {
        let p = w.service(i).peers(URI).find(|p| p.id() == old).copied();
        assert_eq!(p.map(|p| p.status()), Some(Status::Failed), "MSS 3 at {i}");
        // The old incarnations failed; new ones registered with MSS 1.
        assert_eq!(
            w.status_at(
                i,
                MemberId {
                    addr: ms_addr(5),
                    incarnation: 1
                }
            ),
            Some(Status::Failed)
        );
        let alive: Vec<_> = w.members_at(i);
        assert_eq!(alive.len(), 6, "{alive:?}");
        assert!(alive.contains(&MemberId {
            addr: ms_addr(5),
            incarnation: 2
        }));
    }
}

#[test]
fn a_leaving_member_is_left_not_failed_and_never_comes_back() {
    let mut w = three_sites(Config::lan());
    let id = MemberId {
        addr: ms_addr(2),
        incarnation: 1,
    };
    if let Some(Node::Ms(m)) = w.nodes.get_mut(&ms_addr(2)) {
        m.leave(w.now);
    }
    w.drain(ms_addr(2));
    w.run(w.now + Duration::from_secs(5));
    for i in 1..=3 {
        assert_eq!(w.status_at(i, id), Some(Status::Left));
    }
    // The same incarnation asking again is refused; the client moves on.
    let mut m = MemberService::new(ms_addr(2), 1, URI, &[mss_addr(1)]).unwrap();
    m.start(w.now);
    w.add(ms_addr(2), Node::Ms(m));
    w.run(w.now + Duration::from_secs(5));
    for i in 1..=3 {
        assert_eq!(w.status_at(i, id), Some(Status::Left));
        assert!(w.members_at(i).contains(&MemberId {
            incarnation: 2,
            ..id
        }));
    }
}

#[test]
fn suspicion_is_refuted_by_a_probe_answer() {
    // MSS 3 is cut off long enough to be suspected, not failed.
    let mut config = Config::lan();
    config.suspect_after = Duration::from_secs(1);
    config.fail_after = Duration::from_secs(10);
    let mut w = three_sites(config);
    w.down.push(mss_addr(3));
    w.run(w.now + Duration::from_millis(2500));
    w.down.clear();
    w.run(w.now + Duration::from_secs(5));
    let refuted = w
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::Peer {
                    change: Change::Refuted,
                    ..
                }
            )
        })
        .count();
    assert!(refuted >= 1);
    for i in 1..=3 {
        assert_eq!(
            w.service(i)
                .peers(URI)
                .filter(|p| p.status() == Status::Alive)
                .count(),
            3
        );
        assert_eq!(w.members_at(i).len(), 6);
    }
    assert!(w.service(1).stats().suspicions >= 1 && w.service(1).stats().probes >= 1);
}

#[test]
fn a_partitioned_mss_is_failed_then_comes_back_as_a_new_incarnation() {
    let mut w = three_sites(Config::lan());
    let old = w.service(3).mss(URI).unwrap();
    w.down.push(mss_addr(3));
    w.run(w.now + Duration::from_secs(8));
    w.down.clear();
    w.run(w.now + Duration::from_secs(30));
    let new = w.service(3).mss(URI).unwrap();
    assert!(new.incarnation > old.incarnation, "{old:?} {new:?}");
    for i in 1..=3 {
        let old_at = w
            .service(i)
            .peers(URI)
            .find(|p| p.id() == old)
            .map(|p| p.status());
        assert!(matches!(old_at, Some(Status::Failed) | None), "{old_at:?}");
        assert_eq!(w.members_at(i).len(), 6, "at {i}");
    }
    // Agreement: everyone has the same members.
    let mut a = w.members_at(1);
    a.sort();
    for i in 2..=3 {
        let mut b = w.members_at(i);
        b.sort();
        assert_eq!(a, b);
    }
}

#[test]
fn delta_gossip_sends_fewer_bytes_than_full_lists_in_a_stable_group() {
    let mut bytes = [0u64; 2];
    for (k, config) in [Config::lan(), Config::classic()].into_iter().enumerate() {
        let mut w = three_sites(config);
        let before = w.gossip_bytes;
        w.run(w.now + Duration::from_secs(20));
        bytes[k] = w.gossip_bytes - before;
    }
    assert!(bytes[0] < bytes[1], "delta {} full {}", bytes[0], bytes[1]);
}

#[test]
fn monitors_get_the_lifecycle_sets_and_proxies_speak_for_services() {
    let mut w = three_sites(Config::lan());
    let mut mon = Monitor::new(URI, true, &[mss_addr(2)]).unwrap();
    mon.start(w.now);
    w.add(SocketAddr::from(([10, 0, 2, 1], 9500)), Node::Mon(mon));
    let paddr = SocketAddr::from(([10, 0, 3, 1], 9600));
    let mut proxy = ProxyService::<4>::new(paddr, 1, URI, &[mss_addr(1)]).unwrap();
    proxy.start(w.now);
    let s1 = MemberId {
        addr: SocketAddr::from(([10, 0, 4, 1], 1)),
        incarnation: 1,
    };
    let s2 = MemberId {
        addr: SocketAddr::from(([10, 0, 4, 2], 1)),
        incarnation: 1,
    };
    proxy.add_service(w.now, s1).unwrap();
    proxy.add_service(w.now, s2).unwrap();
    w.add(paddr, Node::Proxy(proxy));
    w.run(w.now + Duration::from_secs(6));
    assert_eq!(w.members_at(3).len(), 8);
    if let Some(Node::Proxy(p)) = w.nodes.get_mut(&paddr) {
        p.report_failed(w.now, s1).unwrap();
    }
    w.drain(paddr);
    w.run(w.now + Duration::from_secs(6));
    assert_eq!(w.status_at(3, s1), Some(Status::Failed));
    let joined = w
        .monitor
        .iter()
        .filter(|e| {
            matches!(
                e,
                MonitorEvent::Update {
                    set: Lifecycle::Joined,
                    ..
                }
            )
        })
        .count();
    assert!(joined >= 8, "{joined}");
    assert!(w.monitor.iter().any(
        |e| matches!(e, MonitorEvent::Update { member, set: Lifecycle::Failed } if *member == s1)
    ));
    // The proxy stops answering: its remaining service fails with it.
    w.nodes.remove(&paddr);
    w.run(w.now + Duration::from_secs(10));
    assert_eq!(w.status_at(2, s2), Some(Status::Failed));
}

#[test]
fn an_idle_context_deactivates() {
    let mut config = Config::lan();
    config.idle_after = Duration::from_secs(3);
    let mut w = World::new();
    let mut s = mss(1, config);
    s.create_context(Instant::ZERO, URI).unwrap();
    w.add(mss_addr(1), Node::Mss(s));
    w.ms(1, &[mss_addr(1)]);
    w.run(Instant::from_secs(2));
    assert!(w.service(1).mss(URI).is_some());
    if let Some(Node::Ms(m)) = w.nodes.get_mut(&ms_addr(1)) {
        m.leave(w.now);
    }
    w.drain(ms_addr(1));
    w.run(w.now + Duration::from_secs(10));
    assert!(!w.service(1).is_active(URI));
    assert!(
        w.events
            .iter()
            .any(|(_, e)| matches!(e, Event::ContextDeactivated { .. }))
    );
    assert_eq!(w.service(1).table_usage().0, 0);
}

#[test]
fn hostile_bytes_are_counted_never_a_panic() {
    let mut s = mss(1, Config::lan());
    s.create_context(Instant::ZERO, URI).unwrap();
    let mut x: u64 = 0x1234_5678;
    let mut buf = [0u8; 300];
    for round in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 300) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = (x >> (i % 8 * 8)) as u8 ^ (i as u8).wrapping_mul(31);
        }
        if round % 2 == 0 && n >= 12 {
            // A valid prefix, so that the heads and items get fuzzed too.
            buf[..3].copy_from_slice(&[b'C', b'E', 1]);
            buf[3] = [1, 2, 3, 4, 5, 6, 18, 21, 22, 25, 30, 33][(x >> 20) as usize % 12];
            buf[4..12].copy_from_slice(&ContextId::from_uri(URI).0.to_be_bytes());
        }
        s.handle_datagram(
            Instant::from_millis(u64::from(round)),
            mss_addr(9),
            &buf[..n],
        );
        while s.poll_transmit().is_some() {}
        while s.poll_event().is_some() {}
    }
    assert!(s.stats().malformed > 5_000, "{:?}", s.stats());
}
