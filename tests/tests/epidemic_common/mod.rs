//! What the epidemic tests share: quick but forgiving timing, and a
//! monitor whose updates are collected in the background.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consort_tokio::epidemic::{
    ClientConfig, Config, Lifecycle, MemberId, Membership, MembershipUpdate, Updates,
};

/// The service's timing for tests on one host: about ten times Config::lan()'s
/// pace, with failure timeouts several probes long so that a loaded
/// machine does not fail live services.
pub fn config() -> Config {
    let mut c = Config::lan();
    c.round = Duration::from_millis(100);
    c.suspect_after = Duration::from_millis(800);
    c.fail_after = Duration::from_millis(1600);
    c.probe_interval = Duration::from_millis(200);
    c.suspect_misses = 3;
    c.fail_misses = 6;
    c.monitor_interval = Duration::from_millis(200);
    c.monitor_timeout = Duration::from_secs(5);
    c
}

/// Client timing to go with [`config`]: a silent MSS is given up after
/// longer than it takes the MSS to fail a silent service.
pub fn client() -> ClientConfig {
    let mut c = ClientConfig::default();
    c.retry = Duration::from_millis(100);
    c.orphan_after = Duration::from_secs(3);
    c
}

/// What a monitor reported: every transition, and the sets as they stand.
#[derive(Default, Debug)]
pub struct Seen {
    pub sets: Membership,
    pub transitions: Vec<(MemberId, Lifecycle)>,
    pub updates: usize,
    pub full: usize,
}

impl Seen {
    /// Takes in one update.
    pub fn apply(&mut self, u: &MembershipUpdate) {
        self.updates += 1;
        self.full += usize::from(u.full);
        let t = self.sets.apply(u);
        self.transitions.extend(t);
    }

    /// Where `addr` first went through `set` in the transitions, if it did.
    pub fn first(&self, addr: SocketAddr, set: Lifecycle) -> Option<usize> {
        self.transitions
            .iter()
            .position(|(m, s)| m.addr == addr && *s == set)
    }

    /// Whether `addr` went through `set` (any incarnation).
    pub fn saw(&self, addr: SocketAddr, set: Lifecycle) -> bool {
        self.transitions
            .iter()
            .any(|(m, s)| m.addr == addr && *s == set)
    }
}

/// Collects a monitor's updates in a task.
pub fn watch(mut updates: Updates) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Some(u) = updates.next().await {
            s.lock().unwrap().apply(&u);
        }
    });
    seen
}

/// Waits until `done` holds, for at most a minute (failure timeouts are
/// generous: nothing here measures time).
pub async fn wait_for(seen: &Arc<Mutex<Seen>>, what: &str, done: impl Fn(&Seen) -> bool) {
    for _ in 0..1200 {
        if done(&seen.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: {:#?}", seen.lock().unwrap());
}
