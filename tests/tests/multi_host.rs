//! Multi-host: four member processes in four Linux network namespaces,
//! joined by veth pairs to a bridge in a fifth, each member's link losing
//! 10% of datagrams and delaying them 20 ms (`tc netem`). Once all four
//! share a view and cast, one member's link is cut and the coordinator is
//! killed with SIGKILL (`kill -9`); the two survivors must install the same
//! view of the two of them, and every cast either of them sent must be
//! delivered exactly once, in order, at both.
//!
//! It needs root and iproute2, so it runs only when asked for (`.ci/run`
//! does); otherwise it says how and passes:
//!
//! ```text
//! sudo CONSORT_NETNS=1 cargo test -p consort-tests --test multi_host
//! ```
//!
//! On a kernel without `sch_netem` (such as this project's CI machines) the
//! loss comes from an nftables rule on the same link instead, with no delay,
//! and the test says so.

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MEMBERS: usize = 4;
const PORT: u16 = 7000;
/// A failure bound for each phase, not a measure: the links are slow and lossy.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Failure detection fast enough for a test, slow enough that 10% loss on
/// a 20 ms link never makes a live member look dead: a member is suspected
/// after 10 pings (1 s) unanswered, a view change gives up on a member
/// after 2 s of retries every 50 ms.
const PARAMS: &str = "suspect_sweep=100ms:suspect_max_idle=10:gmp_retry=50ms:gmp_timeout=2s:heal_sweep=200ms:stable_sweep=100ms";
/// The share of datagrams each member's link loses, in percent.
const LOSS_PERCENT: u32 = 10;
/// Casts from every member each member must have delivered before the failures.
const CASTS_BEFORE: usize = 20;
/// Casts each survivor sends after the survivors' view is installed.
const CASTS_AFTER: u64 = 20;

/// Prints past the test harness's capture, so that what the run exercised
/// shows in CI's log too.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "multi_host: {line}");
}

/// Runs a command: its standard output, or what went wrong.
fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("`{}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) -> String {
    run(args).unwrap_or_else(|e| panic!("{e}"))
}

fn address(i: usize) -> String {
    format!("10.77.0.{}", i + 1)
}

/// How the links lose (and delay) datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impairment {
    /// `tc netem` on the member's side of its veth.
    Netem,
    /// The kernel has no netem: an nftables rule drops the same share of
    /// what the member sends, and nothing delays it.
    Nftables,
}

/// The namespaces, links and processes of one run. Dropping it, on a
/// panic too, kills the processes and deletes the namespaces, which takes
/// the veths and the bridge with them.
struct Lab {
    /// `consort-<pid>`: parallel runs do not clash.
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    impairment: Impairment,
    /// Each member's output, `m<i>.out` and `m<i>.err`; kept if the test fails.
    output: PathBuf,
}

impl Lab {
    fn member_ns(&self, i: usize) -> String {
        format!("{}-m{i}", self.prefix)
    }

    fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    fn add_namespace(&mut self, name: &str) {
        must(&["ip", "netns", "add", name]);
        self.namespaces.push(name.to_string());
        must(&["ip", "-n", name, "link", "set", "lo", "up"]);
    }

    /// A bridge `br0` in its own namespace, and for each member a namespace
    /// whose `eth0` is a veth to port `m<i>` of the bridge, with address
    /// 10.77.0.<i+1>/24 and a lossy, slow egress.
    fn build() -> Lab {
        let mut lab = Lab {
            prefix: format!("consort-{}", std::process::id()),
            namespaces: Vec::new(),
            children: Vec::new(),
            impairment: Impairment::Netem,
            output: std::env::temp_dir().join(format!("consort-{}", std::process::id())),
        };
        std::fs::create_dir_all(&lab.output).unwrap();
        let br = lab.bridge_ns();
        lab.add_namespace(&br);
        must(&["ip", "-n", &br, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &br, "link", "set", "br0", "up"]);
        for i in 0..MEMBERS {
            let ns = lab.member_ns(i);
            let port = format!("m{i}");
            lab.add_namespace(&ns);
            must(&[
                "ip", "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            must(&["ip", "-n", &br, "link", "set", &port, "master", "br0"]);
            must(&["ip", "-n", &br, "link", "set", &port, "up"]);
            let cidr = format!("{}/24", address(i));
            must(&["ip", "-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
            must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            lab.impair(i);
        }
        lab
    }

    fn impair(&mut self, i: usize) {
        let ns = self.member_ns(i);
        if self.impairment == Impairment::Netem {
            let loss = format!("{LOSS_PERCENT}%");
            let netem = [
                "ip", "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "eth0", "root", "netem",
                "loss", &loss, "delay", "20ms",
            ];
            match run(&netem) {
                Ok(_) => return,
                Err(e) if e.contains("unknown") && i == 0 => {
                    say(&format!("{e}: this kernel has no netem"));
                    say(&format!(
                        "{LOSS_PERCENT}% loss from nftables instead, and NO DELAY"
                    ));
                    self.impairment = Impairment::Nftables;
                    if let Err(e) = run(&["nft", "--version"]) {
                        panic!("{e}: install nftables, or use a kernel with sch_netem");
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        // Two counters: everything the member sends, and what is dropped.
        let rules = format!(
            "table inet consort {{ chain out {{ type filter hook output priority 0; policy accept; \
             oifname \"eth0\" counter; \
             oifname \"eth0\" numgen random mod 100 < {LOSS_PERCENT} counter drop; }}; }}"
        );
        must(&["ip", "netns", "exec", &ns, "nft", &rules]);
    }

    /// Datagrams member `i`'s link carried and dropped so far.
    fn link_counts(&self, i: usize) -> (u64, u64) {
        let ns = self.member_ns(i);
        let numbers_after = |text: &str, word: &str| -> Vec<u64> {
            let words: Vec<&str> = text.split_whitespace().collect();
            words
                .windows(2)
                .filter(|w| w[0] == word)
                .filter_map(|w| w[1].trim_end_matches(',').parse().ok())
                .collect()
        };
        match self.impairment {
            Impairment::Netem => {
                // " Sent 1234 bytes 20 pkt (dropped 2, overlimits 0 requeues 0)"
                let s = must(&[
                    "ip", "netns", "exec", &ns, "tc", "-s", "qdisc", "show", "dev", "eth0",
                ]);
                let sent: u64 = s
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .windows(2)
                    .find(|w| w[1] == "pkt")
                    .and_then(|w| w[0].parse().ok())
                    .unwrap_or(0);
                let dropped = numbers_after(&s, "(dropped").first().copied().unwrap_or(0);
                (sent + dropped, dropped)
            }
            Impairment::Nftables => {
                let s = must(&[
                    "ip", "netns", "exec", &ns, "nft", "list", "chain", "inet", "consort", "out",
                ]);
                let c = numbers_after(&s, "packets");
                (
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                )
            }
        }
    }

    /// Starts member `i` in its namespace, seeded with the others' addresses.
    fn start_member(&mut self, i: usize) -> Proc {
        let seeds: Vec<String> = (0..MEMBERS)
            .filter(|&j| j != i)
            .map(|j| format!("{}:{PORT}", address(j)))
            .collect();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.member_ns(i)])
            .arg(env!("CARGO_BIN_EXE_netns_member"))
            .args(["--group", &self.prefix])
            .args(["--bind", &format!("{}:{PORT}", address(i))])
            .args(["--seeds", &seeds.join(",")])
            .args(["--params", PARAMS])
            .args(["--interval-ms", "20"])
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(self.output.join(format!("m{i}.err"))).unwrap())
            .spawn()
            .expect("start a member with `ip netns exec`");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let sink = log.clone();
        let mut copy = File::create(self.output.join(format!("m{i}.out"))).unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(copy, "{line}");
                // A panicking test may hold the lock: the log is still good.
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.record(&line);
            }
        });
        self.children.push(child);
        Proc { stdin, log }
    }

    /// Cuts member `i`'s link at the bridge.
    fn cut(&self, i: usize) {
        must(&[
            "ip",
            "-n",
            &self.bridge_ns(),
            "link",
            "set",
            &format!("m{i}"),
            "down",
        ]);
    }

    /// `kill -9` member `i` (`ip netns exec` execs it: its pid is the member's).
    fn kill(&mut self, i: usize) {
        self.children[i].kill().unwrap();
        self.children[i].wait().unwrap();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = run(&["ip", "netns", "del", ns]) {
                say(&format!("cleaning up: {e}"));
            }
        }
        if std::thread::panicking() {
            say(&format!(
                "members' output kept in {}",
                self.output.display()
            ));
        } else {
            let _ = std::fs::remove_dir_all(&self.output);
        }
    }
}

/// A view as a member printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    ltime: u32,
    coordinator: u64,
    /// Sorted.
    members: Vec<u64>,
}

/// Everything one member printed, as it comes.
#[derive(Debug, Default)]
struct Log {
    id: Option<u64>,
    pid: Option<u32>,
    views: Vec<View>,
    /// Casts delivered here, in order: (sender, number).
    casts: Vec<(u64, u64)>,
    /// Casts 0..sent were accepted.
    sent: u64,
    stopped: Option<u64>,
    /// Lines that were errors, out of order, or not understood.
    trouble: Vec<String>,
}

impl Log {
    fn record(&mut self, line: &str) {
        let hex = |s: &str| u64::from_str_radix(s, 16).ok();
        let words: Vec<&str> = line.split_whitespace().collect();
        let understood = match words.as_slice() {
            ["me", id, pid] => {
                self.id = hex(id);
                self.pid = pid.parse().ok();
                self.id.is_some() && self.pid.is_some()
            }
            ["view", ltime, coordinator, members] => {
                let members: Option<Vec<u64>> = members.split(',').map(hex).collect();
                match (ltime.parse(), hex(coordinator), members) {
                    (Ok(ltime), Some(coordinator), Some(members)) => {
                        self.views.push(View {
                            ltime,
                            coordinator,
                            members,
                        });
                        true
                    }
                    _ => false,
                }
            }
            ["cast", from, k] => match (hex(from), k.parse()) {
                (Some(from), Ok(k)) => {
                    self.casts.push((from, k));
                    true
                }
                _ => false,
            },
            ["sent", k] if k.parse() == Ok(self.sent) => {
                self.sent += 1;
                true
            }
            ["stopped", n] if n.parse() == Ok(self.sent) => {
                self.stopped = Some(self.sent);
                true
            }
            ["exit"] => true,
            _ => false,
        };
        if !understood {
            self.trouble.push(line.to_string());
        }
    }

    /// The numbers of the casts from `sender` delivered here, in order.
    fn from(&self, sender: u64) -> Vec<u64> {
        self.casts
            .iter()
            .filter(|(s, _)| *s == sender)
            .map(|(_, k)| *k)
            .collect()
    }

    fn count_from(&self, sender: u64) -> usize {
        self.casts.iter().filter(|(s, _)| *s == sender).count()
    }
}

/// A member process, as the test talks to it.
struct Proc {
    stdin: ChildStdin,
    log: Arc<Mutex<Log>>,
}

impl Proc {
    fn command(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to a member");
    }
}

fn lock(procs: &[Proc]) -> Vec<MutexGuard<'_, Log>> {
    procs.iter().map(|p| p.log.lock().unwrap()).collect()
}

/// Member names (`m0`...) by endpoint id, for messages.
fn names(logs: &[MutexGuard<'_, Log>]) -> BTreeMap<u64, String> {
    logs.iter()
        .enumerate()
        .filter_map(|(i, l)| Some((l.id?, format!("m{i}"))))
        .collect()
}

fn show_view(v: &View, names: &BTreeMap<u64, String>) -> String {
    let name = |id: &u64| names.get(id).cloned().unwrap_or(format!("{id:016x}"));
    let members: Vec<String> = v.members.iter().map(name).collect();
    format!(
        "{}:{}[{}]",
        v.ltime,
        name(&v.coordinator),
        members.join(" ")
    )
}

/// What every member has seen, for failure messages.
fn describe(logs: &[MutexGuard<'_, Log>]) -> String {
    let names = names(logs);
    let mut out = String::new();
    for (i, l) in logs.iter().enumerate() {
        let views: Vec<String> = l.views.iter().map(|v| show_view(v, &names)).collect();
        let delivered: Vec<String> = names
            .iter()
            .map(|(id, n)| format!("{n}:{}", l.count_from(*id)))
            .collect();
        out += &format!(
            "m{i}: id {:016x?} sent {} stopped {:?}; delivered from {}; views {}; trouble {:?}\n",
            l.id,
            l.sent,
            l.stopped,
            delivered.join(" "),
            views.join(" -> "),
            l.trouble
        );
    }
    out
}

/// Waits until `done` holds for the members' logs; false after `TIMEOUT`,
/// or at once when a member reports an error (a panic, a failed cast).
fn wait_until(procs: &[Proc], done: impl Fn(&[MutexGuard<'_, Log>]) -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < TIMEOUT {
        let logs = lock(procs);
        if done(&logs) {
            return true;
        }
        if logs.iter().any(|l| !l.trouble.is_empty()) {
            return false;
        }
        drop(logs);
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn expect(procs: &[Proc], what: &str, done: impl Fn(&[MutexGuard<'_, Log>]) -> bool) {
    if !wait_until(procs, done) {
        panic!(
            "gave up waiting for {what} (after an error, or {TIMEOUT:?}):\n{}",
            describe(&lock(procs))
        );
    }
}

/// What is wrong with one sender's casts as delivered at one member, if
/// anything: they must be 0, 1, 2... (FIFO, no duplicates, no gaps) and,
/// when `all` is given, exactly 0..all.
fn fifo_problem(got: &[u64], all: Option<u64>) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    let duplicates: Vec<u64> = got.iter().copied().filter(|k| !seen.insert(*k)).collect();
    let out_of_order = got.iter().zip(0..).position(|(&k, i)| k != i);
    let missing: Vec<u64> = (0..all.unwrap_or(0))
        .filter(|k| !seen.contains(k))
        .collect();
    if duplicates.is_empty()
        && out_of_order.is_none()
        && missing.is_empty()
        && all.is_none_or(|n| got.len() as u64 == n)
    {
        return None;
    }
    let first = |v: &[u64]| format!("{:?}", &v[..v.len().min(20)]);
    Some(format!(
        "{} delivered; duplicates {}; first out of order at position {:?} (got {:?}); missing {} ({} in all)",
        got.len(),
        first(&duplicates),
        out_of_order,
        out_of_order.map(|p| got[p]),
        first(&missing),
        missing.len()
    ))
}

/// The verdict on the run, once the survivors have stopped casting.
fn check(l: &[MutexGuard<'_, Log>], ids: &[u64], survivors: [usize; 2], four: &View) {
    let context = describe(l);
    let [a, b] = survivors;
    for (r, log) in l.iter().enumerate() {
        assert!(
            log.trouble.is_empty(),
            "m{r} printed errors or lines out of order\n{context}"
        );
    }
    // The views first: survivors that parted cannot have all each other's casts.
    let since_four = |i: usize| -> &[View] {
        let views = &l[i].views;
        &views[views.iter().position(|v| v == four).unwrap()..]
    };
    assert_eq!(
        since_four(a),
        since_four(b),
        "the survivors went through the same views together\n{context}"
    );
    let mut want = vec![ids[a], ids[b]];
    want.sort();
    assert_eq!(
        l[a].views.last().unwrap().members,
        want,
        "the survivors' final view is the two of them\n{context}"
    );
    // At every member, the killed and the cut one included: each sender's
    // casts in order, once each, with no gaps; at the survivors, all of
    // each other's.
    for (r, log) in l.iter().enumerate() {
        for (s, &id) in ids.iter().enumerate() {
            let all = survivors.contains(&r) && survivors.contains(&s);
            let all = all.then(|| l[s].stopped.unwrap());
            if let Some(p) = fifo_problem(&log.from(id), all) {
                panic!("m{r}, casts from m{s}: {p}\n{context}");
            }
        }
    }
    // Virtual synchrony: the survivors moved together from the views the
    // failed members were in, so they delivered the same casts from them.
    for f in (0..l.len()).filter(|i| !survivors.contains(i)) {
        assert_eq!(
            l[a].count_from(ids[f]),
            l[b].count_from(ids[f]),
            "the survivors delivered the same casts from m{f}\n{context}"
        );
    }
}

#[test]
fn survivors_of_a_cut_and_a_kill_agree_and_lose_no_cast() {
    if std::env::var("CONSORT_NETNS").as_deref() != Ok("1") {
        say("skipped: it needs root and iproute2; run it with \
             `sudo CONSORT_NETNS=1 cargo test -p consort-tests --test multi_host`");
        return;
    }
    assert_eq!(
        must(&["id", "-u"]).trim(),
        "0",
        "CONSORT_NETNS=1: the multi-host test makes network namespaces and needs root"
    );
    let begun = Instant::now();
    let mut lab = Lab::build();
    let mut procs: Vec<Proc> = (0..MEMBERS).map(|i| lab.start_member(i)).collect();

    expect(&procs, "one view of all four at every member", |l| {
        let first = l[0].views.last();
        l.iter().all(|x| {
            x.views
                .last()
                .is_some_and(|v| v.members.len() == MEMBERS && Some(v) == first)
        })
    });
    let formed_in = begun.elapsed();
    let (ids, four) = {
        let l = lock(&procs);
        let ids: Vec<u64> = l.iter().map(|x| x.id.unwrap()).collect();
        (ids, l[0].views.last().unwrap().clone())
    };

    for p in &mut procs {
        p.command("start");
    }
    expect(
        &procs,
        "casts from every member delivered everywhere",
        |l| {
            l.iter()
                .all(|x| ids.iter().all(|&id| x.count_from(id) >= CASTS_BEFORE))
        },
    );

    // The coordinator is killed, so another takes over; the last other
    // member is cut off; the two left are the survivors.
    let killed = ids.iter().position(|&id| id == four.coordinator).unwrap();
    let cut = (0..MEMBERS).rev().find(|&i| i != killed).unwrap();
    let mut rest = (0..MEMBERS).filter(|&i| i != killed && i != cut);
    let survivors = [rest.next().unwrap(), rest.next().unwrap()];
    assert_eq!(
        lock(&procs)[killed].pid,
        Some(lab.children[killed].id()),
        "`ip netns exec` runs the member itself, so the kill reaches it"
    );
    lab.cut(cut);
    lab.kill(killed);
    let failed_at = Instant::now();

    let mut want: Vec<u64> = survivors.iter().map(|&i| ids[i]).collect();
    want.sort();
    expect(&procs, "a view of the two survivors at both", |l| {
        survivors
            .iter()
            .all(|&i| l[i].views.last().is_some_and(|v| v.members == want))
    });
    let recovered_in = failed_at.elapsed();

    // The survivors cast on in their new view, then stop; every cast
    // either sent must arrive at both.
    let sent_then: Vec<u64> = {
        let l = lock(&procs);
        survivors.iter().map(|&i| l[i].sent).collect()
    };
    expect(&procs, "more casts from the survivors", |l| {
        survivors
            .iter()
            .zip(&sent_then)
            .all(|(&i, &s)| l[i].sent >= s + CASTS_AFTER)
    });
    for i in survivors {
        procs[i].command("stop");
    }
    expect(&procs, "both survivors to stop casting", |l| {
        survivors.iter().all(|&i| l[i].stopped.is_some())
    });
    let arrived = wait_until(&procs, |l| {
        survivors.iter().all(|&r| {
            survivors
                .iter()
                .all(|&s| l[r].count_from(ids[s]) as u64 >= l[s].stopped.unwrap())
        })
    });
    if !arrived {
        say("gave up waiting for the survivors' casts; checking what arrived");
    }

    let l = lock(&procs);
    check(&l, &ids, survivors, &four);

    // What the run exercised.
    let names = names(&l);
    let [a, b] = survivors;
    let views_since_four: Vec<String> = {
        let views = &l[a].views;
        let from = views.iter().position(|v| *v == four).unwrap();
        views[from..].iter().map(|v| show_view(v, &names)).collect()
    };
    let links: Vec<String> = (0..MEMBERS)
        .map(|i| {
            let (carried, dropped) = lab.link_counts(i);
            format!("m{i} {dropped}/{carried}")
        })
        .collect();
    say(&match lab.impairment {
        Impairment::Netem => format!("links: tc netem, loss {LOSS_PERCENT}%, delay 20 ms"),
        Impairment::Nftables => {
            format!("links: nftables, loss {LOSS_PERCENT}%, no delay (no netem here)")
        }
    });
    say(&format!(
        "all four in one view after {:.1} s: {}",
        formed_in.as_secs_f64(),
        show_view(&four, &names)
    ));
    say(&format!(
        "killed m{killed} (the coordinator) and cut m{cut}'s link; \
         m{a} and m{b} installed their view {:.1} s later",
        recovered_in.as_secs_f64()
    ));
    say(&format!(
        "views at m{a} and m{b}: {}",
        views_since_four.join(" -> ")
    ));
    say(&format!(
        "casts sent: {}; delivered at m{a}: {}, at m{b}: {}",
        (0..MEMBERS)
            .map(|i| format!("m{i} {}", l[i].sent))
            .collect::<Vec<_>>()
            .join(", "),
        l[a].casts.len(),
        l[b].casts.len()
    ));
    say(&format!(
        "datagrams dropped/sent at each member's link: {}",
        links.join(", ")
    ));
    say(&format!("passed in {:.1} s", begun.elapsed().as_secs_f64()));
}
