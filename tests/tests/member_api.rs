//! The std Member API over real loopback sockets: point-to-point sends,
//! `send_to_many`, blocking and the view a cast goes in, heartbeats, status,
//! leaving by drop, joining again, back-pressure, and the Maestro-style
//! callbacks.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use consort_tests::FAST;
use consort_tokio::{
    Capacity, EndpointId, GroupMember, JoinOptions, Member, MemberEvent, Running, SendView, Status,
    ViewInfo, spawn,
};

type Seen = Arc<Mutex<Vec<MemberEvent>>>;

fn options(group: &str, seed: Option<&str>) -> JoinOptions {
    let mut o = JoinOptions::new(group)
        .bind("127.0.0.1:0")
        .params(FAST)
        .capacity(Capacity::Small);
    if let Some(s) = seed {
        o = o.seeds([s.to_string()]);
    }
    o
}

/// Starts `n` members of `group` (the first founds it) and collects their
/// events; returns once all are in one view of `n`.
async fn group(
    group: &str,
    n: usize,
    tweak: impl Fn(JoinOptions) -> JoinOptions,
) -> (Vec<Member>, Vec<Seen>) {
    let mut members = Vec::new();
    let mut seen = Vec::new();
    let mut seed: Option<String> = None;
    for _ in 0..n {
        let Running {
            member, mut events, ..
        } = spawn(tweak(options(group, seed.as_deref()))).await.unwrap();
        seed.get_or_insert_with(|| member.view().unwrap().addresses[0].to_string());
        let log: Seen = Arc::default();
        let l = log.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                l.lock().unwrap().push(ev);
            }
        });
        members.push(member);
        seen.push(log);
    }
    wait(&seen, "one view of all", |evs| {
        last_view(evs).is_some_and(|v| v.nmembers() == n)
    })
    .await;
    (members, seen)
}

fn last_view(evs: &[MemberEvent]) -> Option<&ViewInfo> {
    evs.iter().rev().find_map(|e| match e {
        MemberEvent::View(v) => Some(&**v),
        _ => None,
    })
}

fn sends(evs: &[MemberEvent]) -> Vec<(EndpointId, Vec<u8>)> {
    evs.iter()
        .filter_map(|e| match e {
            MemberEvent::Send { from, bytes } => Some((*from, bytes.clone())),
            _ => None,
        })
        .collect()
}

fn casts(evs: &[MemberEvent]) -> Vec<(EndpointId, Vec<u8>)> {
    evs.iter()
        .filter_map(|e| match e {
            MemberEvent::Cast { from, bytes } => Some((*from, bytes.clone())),
            _ => None,
        })
        .collect()
}

async fn wait(seen: &[Seen], what: &str, done: impl Fn(&[MemberEvent]) -> bool) {
    for _ in 0..600 {
        if seen.iter().all(|s| done(&s.lock().unwrap())) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}: {seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_send_to_many_reach_exactly_their_destinations_in_order() {
    let (m, seen) = group("api-send", 3, |o| o).await;
    let (b, c) = (m[1].my_endpoint(), m[2].my_endpoint());
    for k in 0..20u8 {
        m[0].send(b, vec![b'b', k]).await.unwrap();
        let views = m[0].send_to_many(&[b, c], vec![b'*', k]).await.unwrap();
        assert_eq!(views.len(), 2);
    }
    // B is sent both kinds (40 messages), C only the sends to many (20).
    wait(&seen[1..2], "the sends at B", |evs| sends(evs).len() >= 40).await;
    wait(&seen[2..], "the sends at C", |evs| sends(evs).len() >= 20).await;
    let a = m[0].my_endpoint();
    let at_b = sends(&seen[1].lock().unwrap());
    let at_c = sends(&seen[2].lock().unwrap());
    // B gets both kinds interleaved as sent; C only the many-casts.
    let want_b: Vec<_> = (0..20u8)
        .flat_map(|k| [(a, vec![b'b', k]), (a, vec![b'*', k])])
        .collect();
    let want_c: Vec<_> = (0..20u8).map(|k| (a, vec![b'*', k])).collect();
    assert_eq!(at_b, want_b);
    assert_eq!(at_c, want_c);
    assert!(
        sends(&seen[0].lock().unwrap()).is_empty(),
        "the sender is not a destination"
    );
}

/// Reads events until one matches, answering Block when `answer` says so;
/// returns everything read.
async fn until(
    member: &Member,
    events: &mut consort_tokio::Events,
    answer: bool,
    done: impl Fn(&MemberEvent) -> bool,
) -> Vec<MemberEvent> {
    let mut seen = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .expect("an event within 30 s")
            .expect("the member is running");
        if answer && ev == MemberEvent::Block {
            member.block_ok().await.unwrap();
        }
        let stop = done(&ev);
        seen.push(ev);
        if stop {
            return seen;
        }
    }
}

fn view_of(n: usize) -> impl Fn(&MemberEvent) -> bool {
    move |e| matches!(e, MemberEvent::View(v) if v.nmembers() == n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cast_made_while_blocked_goes_in_the_next_view_and_says_so() {
    // Two members that answer Block themselves.
    let a = spawn(options("api-block", None).auto_block_ok(false))
        .await
        .unwrap();
    let seed = a.member.view().unwrap().addresses[0].to_string();
    let b = spawn(options("api-block", Some(&seed)).auto_block_ok(false))
        .await
        .unwrap();
    let (ma, mut ea, mb, mut eb) = (a.member, a.events, b.member, b.events);
    let (_, _) = tokio::join!(
        until(&ma, &mut ea, true, view_of(2)),
        until(&mb, &mut eb, true, view_of(2))
    );

    // A third member joins: both get Block. A answers; B does not yet, so
    // the view change cannot end and A stays Blocked.
    let joiner = tokio::spawn(spawn(options("api-block", Some(&seed))));
    until(&ma, &mut ea, false, |e| *e == MemberEvent::Block).await;
    assert_eq!(
        ma.cast(b"in block".to_vec()).await.unwrap(),
        SendView::Current,
        "before block_ok: this view"
    );
    ma.block_ok().await.unwrap();
    assert_eq!(ma.status(), Status::Blocked);
    assert_eq!(
        ma.cast(b"while blocked".to_vec()).await.unwrap(),
        SendView::Next
    );

    // B answers; the view of three is installed, and the blocked cast is
    // delivered in it, after the View event, at all three.
    until(&mb, &mut eb, true, view_of(3)).await;
    let j = joiner.await.unwrap().unwrap();
    let mut je = j.events;
    for (who, seen) in [
        (
            "A",
            until(
                &ma,
                &mut ea,
                true,
                |e| matches!(e, MemberEvent::Cast { bytes, .. } if bytes == b"while blocked"),
            )
            .await,
        ),
        (
            "B",
            until(
                &mb,
                &mut eb,
                true,
                |e| matches!(e, MemberEvent::Cast { bytes, .. } if bytes == b"while blocked"),
            )
            .await,
        ),
        (
            "joiner",
            until(
                &j.member,
                &mut je,
                true,
                |e| matches!(e, MemberEvent::Cast { bytes, .. } if bytes == b"while blocked"),
            )
            .await,
        ),
    ] {
        let view3 = seen.iter().position(view_of(3));
        let cast = seen.len() - 1;
        match who {
            // B read its view of three above, so it must come after it anyway.
            "B" => assert!(view3.is_none_or(|v| v < cast), "{who}: {seen:#?}"),
            _ => assert!(
                view3.is_some_and(|v| v < cast),
                "{who}: the cast comes after the view of three: {seen:#?}"
            ),
        }
        if who == "joiner" {
            assert!(
                !seen
                    .iter()
                    .any(|e| matches!(e, MemberEvent::Cast { bytes, .. } if bytes == b"in block")),
                "the joiner never sees the old view's cast: {seen:#?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_arrive_at_the_configured_rate_and_status_follows_the_lifecycle() {
    let (m, seen) = group("api-heartbeat", 1, |o| {
        o.heartbeat(Duration::from_millis(50))
    })
    .await;
    assert_eq!(m[0].status(), Status::Normal);
    wait(&seen, "three heartbeats", |evs| {
        evs.iter()
            .filter(|e| matches!(e, MemberEvent::Heartbeat(_)))
            .count()
            >= 3
    })
    .await;
    let times: Vec<Duration> = seen[0]
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            MemberEvent::Heartbeat(t) => Some(*t),
            _ => None,
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "heartbeat times increase: {times:?}"
    );
    let member = m.into_iter().next().unwrap();
    member.leave().await.unwrap();
    wait(&seen, "Exit last", |evs| {
        evs.last() == Some(&MemberEvent::Exit)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_member_leaves_and_it_can_join_again() {
    let (mut m, seen) = group("api-rejoin", 2, |o| o).await;
    let gone = m.pop().unwrap();
    let old_id = gone.my_endpoint();
    let seed = {
        let v = m[0].view().unwrap();
        v.addresses[usize::from(v.my_rank)].to_string()
    };
    drop(gone);
    wait(&seen[..1], "a view without the dropped member", |evs| {
        last_view(evs).is_some_and(|v| v.nmembers() == 1)
    })
    .await;
    // A drop is a leave: Exit is the dropped member's last event.
    wait(&seen[1..], "Exit at the dropped member", |evs| {
        evs.last() == Some(&MemberEvent::Exit)
    })
    .await;

    // The same process joins again: a new endpoint, in the group.
    let again = spawn(options("api-rejoin", Some(&seed))).await.unwrap();
    assert_ne!(again.member.my_endpoint(), old_id);
    wait(&seen[..1], "the rejoined member", |evs| {
        last_view(evs)
            .is_some_and(|v| v.nmembers() == 2 && v.members.contains(&again.member.my_endpoint()))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_sender_waits_for_the_window_and_nothing_is_lost() {
    // A window of 256 bytes: the sender must wait for stability many times
    // over for 1000 casts of 4 bytes.
    let (m, seen) = group("api-window", 2, |o| {
        o.params(format!("{FAST}:flow_window=256"))
    })
    .await;
    const N: u32 = 1000;
    for k in 0..N {
        m[0].cast(k.to_be_bytes().to_vec()).await.unwrap();
    }
    wait(&seen[1..], "every cast", |evs| {
        casts(evs).len() == N as usize
    })
    .await;
    let got: Vec<u32> = casts(&seen[1].lock().unwrap())
        .iter()
        .map(|(_, b)| u32::from_be_bytes(b[..4].try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
}

/// Records the Maestro callbacks it receives.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
}

impl GroupMember for Recorder {
    fn receive_cast(&mut self, member: &Member, from: EndpointId, msg: &[u8]) {
        self.calls
            .push(format!("cast {}", String::from_utf8_lossy(msg)));
        if from != member.my_endpoint() {
            match msg {
                b"ping" => member.cast_nowait(b"pong".to_vec()).unwrap(),
                b"bye" => member.leave_nowait().unwrap(),
                _ => {}
            }
        }
    }
    fn accepted_view(&mut self, _: &Member, view: &ViewInfo) {
        self.calls.push(format!("view {}", view.nmembers()));
    }
    fn exit(&mut self) {
        self.calls.push("exit".into());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maestro_callbacks_are_driven_by_run() {
    let first = spawn(options("api-callbacks", None)).await.unwrap();
    let seed = first.member.view().unwrap().addresses[0].to_string();
    let Running {
        member, mut events, ..
    } = first;
    let recorder = tokio::spawn(async move {
        let mut r = Recorder::default();
        let m = member;
        consort_tokio::run(&m, &mut events, &mut r).await;
        r.calls
    });
    let second = spawn(options("api-callbacks", Some(&seed))).await.unwrap();
    let mut events = second.events;
    loop {
        if let Some(MemberEvent::View(v)) = events.next().await {
            if v.nmembers() == 2 {
                break;
            }
        }
    }
    second.member.cast(b"ping".to_vec()).await.unwrap();
    // The recorder answers "pong" from inside its callback.
    loop {
        match events.next().await.unwrap() {
            MemberEvent::Cast { bytes, .. } if bytes == b"pong" => break,
            _ => {}
        }
    }
    // "bye" makes the recorder leave from inside a callback; run() then
    // ends with the exit callback.
    second.member.cast(b"bye".to_vec()).await.unwrap();
    let calls = tokio::time::timeout(Duration::from_secs(30), recorder)
        .await
        .expect("run() ends after the leave")
        .unwrap();
    assert_eq!(
        calls.first().map(String::as_str),
        Some("view 1"),
        "{calls:?}"
    );
    for want in ["view 2", "cast ping", "cast pong", "cast bye"] {
        assert!(calls.iter().any(|c| c == want), "{want} missing: {calls:?}");
    }
    assert_eq!(calls.last().map(String::as_str), Some("exit"), "{calls:?}");
}
