//! Three members whose IP stacks are all smoltcp, on an in-memory Ethernet
//! hub: ARP, UDP and the whole group protocol through `SmolUdp`, without
//! root. (The TAP test in `consort-tests` puts one beside kernel sockets.)

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consort_smoltcp::{Readiness, SmolUdp, UdpStorage};
use consort_tokio::{Capacity, JoinOptions, MemberEvent, Running, TokioClock};
use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use tokio::sync::Notify;

/// Quick view changes, but failure detection slow enough (2 s of silence)
/// that a test machine busy with other tests does not split the group:
/// this test is about the transport, not about suspicion.
const PARAMS: &str = "suspect_sweep=100ms:suspect_max_idle=20:gmp_retry=20ms:gmp_timeout=500ms:heal_sweep=100ms:stable_sweep=100ms";

/// One port's inbox and its doorbell.
#[derive(Default)]
struct Inbox {
    frames: Mutex<VecDeque<Vec<u8>>>,
    bell: Notify,
}

/// A hub: every frame sent on a port arrives at every other port.
#[derive(Clone, Default)]
struct Hub(Arc<Mutex<Vec<Arc<Inbox>>>>);

struct Port {
    hub: Hub,
    me: usize,
}

impl Hub {
    fn port(&self) -> (Port, Arc<Inbox>) {
        let inbox = Arc::new(Inbox::default());
        let mut ports = self.0.lock().unwrap();
        ports.push(inbox.clone());
        (
            Port {
                hub: self.clone(),
                me: ports.len() - 1,
            },
            inbox,
        )
    }
}

struct Rx(Vec<u8>);
struct Tx(Hub, usize);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        for (i, inbox) in self.0.0.lock().unwrap().iter().enumerate() {
            if i != self.1 {
                inbox.frames.lock().unwrap().push_back(frame.clone());
                inbox.bell.notify_one();
            }
        }
        r
    }
}

impl Device for Port {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(Rx, Tx)> {
        let inbox = self.hub.0.lock().unwrap()[self.me].clone();
        let frame = inbox.frames.lock().unwrap().pop_front()?;
        Some((Rx(frame), Tx(self.hub.clone(), self.me)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Tx> {
        Some(Tx(self.hub.clone(), self.me))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

struct Bell(Arc<Inbox>);

impl Readiness for Bell {
    async fn frame_ready(&mut self) {
        self.0.bell.notified().await;
    }
}

/// A member at 10.9.0.`host`:4000 on the hub, over smoltcp with static-style
/// (leaked) storage, as a board would have it.
async fn member(hub: &Hub, host: u8, seeds: &[SocketAddr]) -> Running {
    let (mut port, inbox) = hub.port();
    let clock = TokioClock::new();
    let mut iface = Interface::new(
        Config::new(HardwareAddress::Ethernet(EthernetAddress([
            2, 0, 0, 0, 0, host,
        ]))),
        &mut port,
        smoltcp::time::Instant::ZERO,
    );
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(10, 9, 0, host), 24))
            .unwrap();
    });
    let slots: &'static mut [SocketStorage<'static>; 1] =
        Box::leak(Box::new([SocketStorage::EMPTY; 1]));
    let storage = Box::leak(Box::new(UdpStorage::<256, 131072>::new()));
    let mut socket = storage.socket();
    socket.bind(4000).unwrap();
    let mut sockets = SocketSet::new(&mut slots[..]);
    let handle = sockets.add(socket);
    let udp = SmolUdp::new(iface, port, sockets, handle, clock, Bell(inbox)).unwrap();
    let local = udp.local_addr().unwrap();
    let options = JoinOptions::new("hub")
        .params(PARAMS)
        .capacity(Capacity::Small);
    let p = consort_tokio::prepare(&options, udp, clock, local, seeds).unwrap();
    let task = match p.task {
        consort_tokio::Task::Small(t) => tokio::spawn(t),
        consort_tokio::Task::Server(t) => tokio::spawn(t),
    };
    p.joined.wait().await.unwrap();
    Running {
        member: p.member,
        events: p.events,
        task,
    }
}

#[derive(Default, Debug)]
struct Log {
    views: Vec<(u32, usize)>,
    casts: Vec<(u64, u32)>,
}

async fn wait_for(logs: &[Arc<Mutex<Log>>], what: &str, done: impl Fn(&Log) -> bool) {
    for _ in 0..400 {
        if logs.iter().all(|l| done(&l.lock().unwrap())) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}: {logs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_smoltcp_members_form_a_group_and_deliver_in_fifo_order() {
    let hub = Hub::default();
    let first = member(&hub, 1, &[]).await;
    let seed: SocketAddr = "10.9.0.1:4000".parse().unwrap();
    let second = member(&hub, 2, &[seed]).await;
    let third = member(&hub, 3, &[seed]).await;

    let logs: Vec<Arc<Mutex<Log>>> = (0..3).map(|_| Arc::default()).collect();
    let mut handles = Vec::new();
    for (r, log) in [first, second, third].into_iter().zip(&logs) {
        let (member, mut events, log) = (r.member, r.events, log.clone());
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                let mut l = log.lock().unwrap();
                match ev {
                    MemberEvent::View(v) => l.views.push((v.ltime(), v.nmembers())),
                    MemberEvent::Cast { from, bytes } => l
                        .casts
                        .push((from.0, u32::from_be_bytes(bytes[..4].try_into().unwrap()))),
                    _ => {}
                }
            }
        });
        handles.push(member);
    }
    wait_for(&logs, "a view of three", |l| {
        l.views.last().is_some_and(|v| v.1 == 3)
    })
    .await;

    for k in 0..20u32 {
        for m in &handles {
            m.cast(k.to_be_bytes().to_vec()).await.unwrap();
        }
    }
    wait_for(&logs, "60 casts at every member", |l| l.casts.len() == 60).await;
    for log in &logs {
        let mut per: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for (from, k) in &log.lock().unwrap().casts {
            per.entry(*from).or_default().push(*k);
        }
        assert_eq!(per.len(), 3);
        for seq in per.values() {
            assert_eq!(*seq, (0..20).collect::<Vec<_>>(), "complete and FIFO");
        }
    }

    let leaver = handles.pop().unwrap();
    leaver.leave().await.unwrap();
    wait_for(&logs[..2], "a view of two after the leave", |l| {
        l.views.last().is_some_and(|v| v.1 == 2)
    })
    .await;
    let a = *logs[0].lock().unwrap().views.last().unwrap();
    let b = *logs[1].lock().unwrap().views.last().unwrap();
    assert_eq!(a, b, "the two survivors agree");
}
