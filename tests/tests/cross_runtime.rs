//! One group, members on different runtimes over real loopback sockets:
//! the same views at all, every cast delivered at every member in FIFO
//! order, then one leaves and one is killed, and the survivors agree.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use consort_tests::FAST;
use consort_tokio::{EndpointId, MemberEvent, ViewInfo};

/// What one member saw, collected by its event loop.
#[derive(Default, Debug)]
struct Log {
    views: Vec<ViewInfo>,
    casts: Vec<(EndpointId, Vec<u8>)>,
    exited: bool,
}

fn opts(seed: Option<String>) -> consort_tokio::JoinOptions {
    let mut o = consort_tokio::JoinOptions::new("cross")
        .bind("127.0.0.1:0")
        .params(FAST)
        .capacity(consort_tokio::Capacity::Small);
    if let Some(s) = seed {
        o = o.seeds([s]);
    }
    o
}

async fn wait_until(
    logs: &[std::sync::Arc<std::sync::Mutex<Log>>],
    what: &str,
    done: impl Fn(&[&Log]) -> bool,
) {
    for _ in 0..400 {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_and_async_std_members_share_a_group() {
    use std::sync::{Arc, Mutex};
    let logs: Vec<Arc<Mutex<Log>>> = (0..3).map(|_| Arc::default()).collect();

    // Member 0 on tokio, member 1 on async-std, member 2 on tokio again.
    let t0 = consort_tokio::spawn(opts(None)).await.unwrap();
    let seed = t0.member.view().unwrap().addresses[0].to_string();
    let a1 = async_std::task::block_on(consort_async_std::spawn(
        consort_async_std::JoinOptions::new("cross")
            .bind("127.0.0.1:0")
            .params(FAST)
            .capacity(consort_async_std::Capacity::Small)
            .seeds([seed.clone()]),
    ))
    .unwrap();
    let t2 = consort_tokio::spawn(opts(Some(seed))).await.unwrap();

    let mut members = Vec::new();
    for (i, (member, mut events)) in [
        (t0.member, t0.events),
        (a1.member, a1.events),
        (t2.member, t2.events),
    ]
    .into_iter()
    .enumerate()
    {
        let log = logs[i].clone();
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
        members.push(Some(member));
    }
    let ids: Vec<EndpointId> = members
        .iter()
        .map(|m| m.as_ref().unwrap().my_endpoint())
        .collect();
    wait_until(&logs, "one view of three", |l| {
        l.iter()
            .all(|x| x.views.last().is_some_and(|v| v.nmembers() == 3))
    })
    .await;
    let v0 = logs[0].lock().unwrap().views.last().unwrap().id;
    for l in &logs {
        assert_eq!(
            l.lock().unwrap().views.last().unwrap().id,
            v0,
            "the same view at every runtime"
        );
    }

    // Every member casts 50 messages; each sees all 150, in FIFO order per sender.
    for k in 0..50u32 {
        for (i, m) in members.iter().enumerate() {
            m.as_ref()
                .unwrap()
                .cast([&(i as u32).to_be_bytes()[..], &k.to_be_bytes()].concat())
                .await
                .unwrap();
        }
    }
    wait_until(&logs, "150 casts everywhere", |l| {
        l.iter().all(|x| x.casts.len() == 150)
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
                (0..50).collect::<Vec<_>>(),
                "FIFO and complete from {id:?}"
            );
        }
    }

    // Member 1 (async-std) leaves; member 2 (tokio) is killed.
    let m1 = members[1].take().unwrap();
    async_std::task::block_on(m1.leave()).unwrap();
    t2.task.abort();
    wait_until(&logs, "member 0 alone after the leave and the kill", |l| {
        l[1].exited && l[0].views.last().is_some_and(|v| v.nmembers() == 1)
    })
    .await;
    let views = &logs[0].lock().unwrap().views;
    let last_two: Vec<usize> = views.iter().rev().take(2).map(|v| v.nmembers()).collect();
    assert!(last_two.contains(&1));
    assert!(
        views
            .iter()
            .any(|v| v.nmembers() == 2 && !v.members.contains(&ids[1])),
        "a view without the leaver"
    );
}
