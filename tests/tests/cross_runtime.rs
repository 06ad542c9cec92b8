//! One group, members on different runtimes and IP stacks over real
//! sockets: a tokio member, an async-std member, a smoltcp member (its own
//! IP stack, over a TAP device) and a second tokio member. The same views at
//! all, every cast delivered at every member in FIFO order, then one leaves
//! and one is killed, and the survivors agree on the view that follows.
//!
//! Creating the TAP device needs root. With `CONSORT_TAP=1` (which `.ci/run`
//! sets; CI runs as root) the smoltcp member is required; without it the
//! test tries, and if the device cannot be made it says so and runs the
//! other three on loopback.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consort_smoltcp::tap::{TapError, TapOptions};
use consort_tests::FAST;
use consort_tokio::{Capacity, EndpointId, Events, JoinOptions, Member, MemberEvent, ViewInfo};

/// What one member saw, collected by its event loop.
#[derive(Default, Debug)]
struct Log {
    views: Vec<ViewInfo>,
    casts: Vec<(EndpointId, Vec<u8>)>,
    exited: bool,
}

/// How a member is stopped without leaving (a crash).
enum Kill {
    Tokio(tokio::task::JoinHandle<()>),
    AsyncStd(Option<async_std::task::JoinHandle<()>>),
}

struct Running {
    name: &'static str,
    member: Option<Member>,
    events: Option<Events>,
    kill: Kill,
}

fn options(bind: &str, seed: Option<&str>) -> JoinOptions {
    let mut o = JoinOptions::new("cross")
        .bind(bind)
        .params(FAST)
        .capacity(Capacity::Small);
    if let Some(s) = seed {
        o = o.seeds([s.to_string()]);
    }
    o
}

async fn wait_until(logs: &[Arc<Mutex<Log>>], what: &str, done: impl Fn(&[&Log]) -> bool) {
    for _ in 0..600 {
        {
            let guards: Vec<_> = logs.iter().map(|l| l.lock().unwrap()).collect();
            let refs: Vec<&Log> = guards.iter().map(|g| &**g).collect();
            if done(&refs) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}: {logs:#?}");
}

/// The TAP link for this run: a device name and a /24 of its own, so that
/// parallel runs do not collide.
fn tap_link() -> (String, String, String) {
    let n = std::process::id() % 250;
    (
        format!("cstap{n}"),
        format!("10.77.{n}.1/24"),
        format!("10.77.{n}.2/24"),
    )
}

/// Starts the smoltcp member, founding the group, or says why it cannot
/// (and fails if it is required).
async fn smoltcp_member() -> Option<Running> {
    let required = std::env::var("CONSORT_TAP").is_ok_and(|v| v == "1");
    let (device, host, smol) = tap_link();
    let bind = format!("{}:4000", smol.split('/').next().unwrap());
    let tap = TapOptions::new(&device, &smol).host(&host);
    match consort_smoltcp::tap::spawn(options(&bind, None), tap).await {
        Ok(r) => Some(Running {
            name: "smoltcp",
            member: Some(r.member),
            events: Some(r.events),
            kill: Kill::Tokio(r.task),
        }),
        Err(TapError::Device(e)) if !required => {
            println!(
                "cross_runtime: no smoltcp member ({e}); run as root with CONSORT_TAP=1 to include it"
            );
            None
        }
        Err(e) => panic!("the smoltcp member could not start: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_async_std_and_smoltcp_members_share_a_group() {
    // With a TAP link, the smoltcp member founds the group and the others
    // bind on the host's side of the link, where it can reach them.
    let smol = smoltcp_member().await;
    let (_, host, _) = tap_link();
    let (bind, mut seed) = match &smol {
        Some(r) => (
            format!("{}:0", host.split('/').next().unwrap()),
            Some(r.member.as_ref().unwrap().view().unwrap().addresses[0].to_string()),
        ),
        None => ("127.0.0.1:0".to_string(), None),
    };

    let t0 = consort_tokio::spawn(options(&bind, seed.as_deref()))
        .await
        .unwrap();
    seed.get_or_insert_with(|| t0.member.view().unwrap().addresses[0].to_string());
    let seed = seed.unwrap();
    let mut members = vec![Running {
        name: "tokio",
        member: Some(t0.member),
        events: Some(t0.events),
        kill: Kill::Tokio(t0.task),
    }];
    let a1 = async_std::task::block_on(consort_async_std::spawn(
        consort_async_std::JoinOptions::new("cross")
            .bind(&bind)
            .params(FAST)
            .capacity(consort_async_std::Capacity::Small)
            .seeds([seed.clone()]),
    ))
    .unwrap();
    members.push(Running {
        name: "async-std",
        member: Some(a1.member),
        events: Some(a1.events),
        kill: Kill::AsyncStd(Some(a1.task)),
    });
    members.extend(smol);
    let t3 = consort_tokio::spawn(options(&bind, Some(&seed)))
        .await
        .unwrap();
    members.push(Running {
        name: "tokio",
        member: Some(t3.member),
        events: Some(t3.events),
        kill: Kill::Tokio(t3.task),
    });
    let n = members.len();
    println!(
        "cross_runtime: members {:?}",
        members.iter().map(|m| m.name).collect::<Vec<_>>()
    );

    let logs: Vec<Arc<Mutex<Log>>> = (0..n).map(|_| Arc::default()).collect();
    for (m, log) in members.iter_mut().zip(&logs) {
        let mut events = m.events.take().unwrap();
        let log = log.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                let mut l = log.lock().unwrap();
                match ev {
                    MemberEvent::View(v) => l.views.push(*v),
                    MemberEvent::Cast { from, bytes } => l.casts.push((from, bytes)),
                    MemberEvent::Exit => l.exited = true,
                    _ => {}
                }
            }
        });
    }
    let ids: Vec<EndpointId> = members
        .iter()
        .map(|m| m.member.as_ref().unwrap().my_endpoint())
        .collect();
    wait_until(&logs, "one view of all members", |l| {
        l.iter()
            .all(|x| x.views.last().is_some_and(|v| v.nmembers() == n))
    })
    .await;
    let v0 = logs[0].lock().unwrap().views.last().unwrap().clone();
    for l in &logs {
        let v = l.lock().unwrap().views.last().unwrap().clone();
        assert_eq!(
            (v.id, &v.members),
            (v0.id, &v0.members),
            "the same view at every runtime"
        );
    }

    // Every member casts 50 messages; each sees all of them, FIFO per sender.
    const CASTS: u32 = 50;
    for k in 0..CASTS {
        for (i, m) in members.iter().enumerate() {
            m.member
                .as_ref()
                .unwrap()
                .cast([&(i as u32).to_be_bytes()[..], &k.to_be_bytes()].concat())
                .await
                .unwrap();
        }
    }
    let total = CASTS as usize * n;
    wait_until(&logs, "every cast everywhere", |l| {
        l.iter().all(|x| x.casts.len() == total)
    })
    .await;
    for l in &logs {
        let mut per: BTreeMap<EndpointId, Vec<u32>> = BTreeMap::new();
        for (from, b) in &l.lock().unwrap().casts {
            per.entry(*from)
                .or_default()
                .push(u32::from_be_bytes(b[4..8].try_into().unwrap()));
        }
        for id in &ids {
            assert_eq!(
                per[id],
                (0..CASTS).collect::<Vec<_>>(),
                "FIFO and complete from {id:?}"
            );
        }
    }

    // The async-std member leaves; the last tokio member is killed.
    let leaver = 1;
    let killed = n - 1;
    let m = members[leaver].member.take().unwrap();
    async_std::task::block_on(m.leave()).unwrap();
    match &mut members[killed].kill {
        Kill::Tokio(t) => t.abort(),
        Kill::AsyncStd(t) => {
            if let Some(t) = t.take() {
                async_std::task::block_on(t.cancel());
            }
        }
    }
    let survivors: Vec<usize> = (0..n).filter(|&i| i != leaver && i != killed).collect();
    let expect = n - 2;
    wait_until(
        &logs,
        "the survivors' view after the leave and the kill",
        |l| {
            l[leaver].exited
                && survivors
                    .iter()
                    .all(|&i| l[i].views.last().is_some_and(|v| v.nmembers() == expect))
        },
    )
    .await;
    let last: Vec<ViewInfo> = survivors
        .iter()
        .map(|&i| logs[i].lock().unwrap().views.last().unwrap().clone())
        .collect();
    for v in &last {
        assert_eq!(
            (v.id, &v.members),
            (last[0].id, &last[0].members),
            "the survivors agree"
        );
        assert!(!v.members.contains(&ids[leaver]) && !v.members.contains(&ids[killed]));
    }
}
