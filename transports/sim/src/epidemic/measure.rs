//! The report's experiments: detection time against N, false positives
//! against loss, and bytes per MSS per round against N, for the epidemic
//! service (consort's settings and the seed's classic protocol) and for the
//! SWIM baseline, all on the same simulated network; then the figures and
//! the table of `docs/epidemic/README.md`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use consort_core::Instant;
use consort_core::epidemic::{Config, GossipMode, MemberService};

use super::checker::{Counts, Id, Tracker};
use super::plot::{Figure, Series};
use super::swim;
use super::world::{Kind, Observed, Observer, Role, URI, World, addr_of};
use crate::net::{Fault, FaultPlan, Net};
use crate::rng::Rng;

/// Member services per MSS in the report's groups.
pub const PER_MSS: usize = 64;

/// What one run of the epidemic service measured.
#[derive(Clone, Debug, Default)]
pub struct OursResult {
    /// Time until every live MSS had the crashed MSS failed.
    pub detect_mss: Option<Duration>,
    /// Per crashed member service: time until every live MSS had it failed.
    pub detect_ms: Vec<Duration>,
    /// Crashed incarnations some live MSS never failed.
    pub undetected: usize,
    /// What the checker counted (false positives among them).
    pub counts: Counts,
    /// MSS-to-MSS bytes per MSS per gossip round, over a steady window.
    pub gossip_bytes_per_round: f64,
    /// All bytes an MSS sends per second (gossip and member probes).
    pub bytes_per_mss_s: f64,
    /// All bytes on the network (MSS and member services) per member
    /// service per second: SWIM's measure.
    pub bytes_per_service_s: f64,
    /// Member services per MSS at the measurement.
    pub members: usize,
}

/// Records when each MSS first failed each watched incarnation.
struct Meter {
    tracker: Tracker,
    watched: HashSet<Id>,
    failed_at: HashMap<(usize, Id), Instant>,
}

impl Observer for Meter {
    fn observe(&mut self, now: Instant, node: usize, what: &Observed) {
        if let Observed::Mss(consort_core::epidemic::Event::Peer { mss, change, .. }) = what {
            if *change == consort_core::epidemic::Change::Failed
                && self.watched.contains(&Id::Mss(*mss))
            {
                self.failed_at.entry((node, Id::Mss(*mss))).or_insert(now);
            }
        }
        if let Observed::Mss(consort_core::epidemic::Event::Member { member, change, .. }) = what {
            let id = Id::Member(*member);
            if *change == consort_core::epidemic::Change::Failed && self.watched.contains(&id) {
                self.failed_at.entry((node, id)).or_insert(now);
            }
        }
        self.tracker.observe(now, node, what);
    }
}

/// One run of the epidemic service for the report.
#[derive(Clone, Copy, Debug)]
pub struct OursRun {
    /// MSS engines.
    pub mss: usize,
    /// Member services.
    pub services: usize,
    /// The service's settings.
    pub config: Config,
    /// Loss rate.
    pub loss: f64,
    /// When one MSS and `ms_crashes` member services of other MSS crash.
    pub crash_at: Option<Instant>,
    /// Member services crashed.
    pub ms_crashes: usize,
    /// When the run ends.
    pub end: Instant,
    /// Its seed.
    pub seed: u64,
}

/// Runs `r.mss` engines with `r.services` member services under `r.loss`;
/// at `r.crash_at`, crashes one MSS and `r.ms_crashes` member services of
/// other MSS; measures until `r.end`.
pub fn run_ours(r: OursRun) -> OursResult {
    let OursRun {
        mss,
        services,
        config,
        loss,
        crash_at,
        ms_crashes,
        end,
        seed,
    } = r;
    let total = mss + services;
    let faults = if loss > 0.0 {
        vec![Fault::Loss(loss)]
    } else {
        Vec::new()
    };
    let net = Net::new(
        total,
        FaultPlan::new(faults, Instant::MAX),
        Rng::derive(seed, 1),
    );
    let mut world = World::new(net);
    let mut meter = Meter {
        tracker: Tracker::new(total, Duration::from_secs(3600), Duration::from_secs(3600)),
        watched: HashSet::new(),
        failed_at: HashMap::new(),
    };
    let mut rng = Rng::derive(seed, 0xE_0002);
    let seeds = [addr_of(Kind::Mss, 0), addr_of(Kind::Mss, 1)];
    for i in 0..mss {
        world.add(Kind::Mss, addr_of(Kind::Mss, i));
    }
    for j in 0..services {
        world.add(Kind::Ms, addr_of(Kind::Ms, j));
    }
    for i in 0..mss {
        let role = world.new_mss(
            i,
            config,
            rng.next_u64(),
            &seeds,
            2 * mss + 16,
            services + services / 4 + 64,
        );
        meter.tracker.started(i);
        world.start(i, role, &mut meter);
    }
    // Services join over the first two seconds, each with its home MSS.
    let mut joins: Vec<(Instant, usize)> = (0..services)
        .map(|j| (Instant::from_micros(rng.below(2_000_000)), mss + j))
        .collect();
    joins.sort();
    for (t, i) in joins {
        world.run_until(t, &mut meter);
        let home = (i - mss) % mss;
        let servers = [
            addr_of(Kind::Mss, home),
            addr_of(Kind::Mss, (home + 1) % mss),
        ];
        let Ok(mut m) = MemberService::new(world.nodes[i].addr, 1, URI, &servers) else {
            continue;
        };
        m.start(world.now());
        meter.tracker.started(i);
        world.start(i, Role::Ms(m), &mut meter);
    }
    // The steady window: ten seconds before the crash (or the end).
    let stop = crash_at.unwrap_or(end);
    let w0 = stop - Duration::from_secs(10);
    world.run_until(w0, &mut meter);
    let snap = |world: &World| -> (u64, u64) {
        (0..mss)
            .filter_map(|i| world.mss(i))
            .map(|s| (s.stats().gossip_bytes_out, s.stats().bytes_out))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    let (g0, b0) = snap(&world);
    let all0: u64 = world.by_kind.iter().map(|k| k.1).sum();
    world.run_until(stop, &mut meter);
    let (g1, b1) = snap(&world);
    let all1: u64 = world.by_kind.iter().map(|k| k.1).sum();
    let rounds = 10.0 / config.round.as_secs_f64();
    let mut out = OursResult {
        gossip_bytes_per_round: (g1 - g0) as f64 / mss as f64 / rounds,
        bytes_per_mss_s: (b1 - b0) as f64 / mss as f64 / 10.0,
        bytes_per_service_s: (all1 - all0) as f64 / services as f64 / 10.0,
        members: services / mss.max(1),
        ..Default::default()
    };
    let mut targets = Vec::new();
    if let Some(at) = crash_at {
        // One MSS (not a seed) and member services of other MSS.
        let victim = 2.min(mss - 1);
        world.crash(victim);
        let ids = meter.tracker.crashed(victim, at);
        let mss_ids: Vec<Id> = ids
            .iter()
            .filter(|i| matches!(i, Id::Mss(_)))
            .copied()
            .collect();
        targets.extend(mss_ids.iter().copied().map(|i| (i, true)));
        let mut k = 0;
        while k < ms_crashes {
            let j = mss + rng.below(services as u64) as usize;
            if (j - mss) % mss == victim || world.nodes[j].role.is_none() {
                continue;
            }
            world.crash(j);
            for id in meter.tracker.crashed(j, at) {
                targets.push((id, false));
            }
            k += 1;
        }
        for (id, _) in &targets {
            meter.watched.insert(*id);
        }
    }
    world.run_until(end, &mut meter);
    if let Some(at) = crash_at {
        let live: Vec<usize> = (0..mss).filter(|i| world.mss(*i).is_some()).collect();
        for (id, is_mss) in targets {
            let mut worst = Duration::ZERO;
            let mut all = true;
            for &j in &live {
                match meter.failed_at.get(&(j, id)) {
                    Some(t) => worst = worst.max(*t - at),
                    None => all = false,
                }
            }
            match (all, is_mss) {
                (false, _) => out.undetected += 1,
                (true, true) => out.detect_mss = Some(worst),
                (true, false) => out.detect_ms.push(worst),
            }
        }
    }
    out.counts = meter.tracker.counts.clone();
    out
}

fn consort_config() -> Config {
    Config::lan()
}

fn classic_config() -> Config {
    Config::classic()
}

/// The seed's protocol with timeouts twice as long: what it needs to come
/// near consort's false-positive rate under loss, at the cost of detection.
fn classic_slow_config() -> Config {
    let mut c = Config::classic();
    c.fail_after *= 2;
    c.suspect_after *= 2;
    c.fail_misses *= 2;
    c.suspect_misses *= 2;
    c
}

fn delta_no_suspicion() -> Config {
    let mut c = Config::lan();
    c.suspicion = false;
    c
}

fn full_with_suspicion() -> Config {
    let mut c = Config::lan();
    c.mode = GossipMode::Full;
    c
}

/// A named setting of the service.
type Variant = (&'static str, fn() -> Config);

fn mean(v: &[Duration]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().map(|d| d.as_secs_f64()).sum::<f64>() / v.len() as f64)
}

fn max(v: &[Duration]) -> Option<f64> {
    v.iter().map(|d| d.as_secs_f64()).reduce(f64::max)
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// Runs every experiment and writes `out/README.md` and the SVG figures.
pub fn report(out: &Path, quick: bool) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let started = std::time::Instant::now();
    let ns: Vec<usize> = if quick {
        vec![256, 1024]
    } else {
        vec![256, 1024, 2048, 4096, 10_000]
    };
    let swim_ns: Vec<usize> = if quick {
        vec![256]
    } else {
        vec![256, 1024, 2048, 4096]
    };
    let losses = [0.0, 0.05, 0.10, 0.15, 0.20];
    let crash = Instant::from_secs(30);
    let end = Instant::from_secs(55);
    let cmd = "cargo run --release -p consort-sim --bin epidemic -- report --out docs/epidemic";

    // 1. Detection time and bytes against N.
    let variants: [Variant; 3] = [
        ("consort (delta gossip, suspicion)", consort_config),
        ("classic (full lists, no suspicion)", classic_config),
        ("classic, timeouts x2", classic_slow_config),
    ];
    let mut detect: Vec<Vec<(usize, OursResult)>> = vec![Vec::new(); variants.len()];
    for &n in &ns {
        let mss = (n / PER_MSS).max(4);
        let results = par_map(variants.iter().enumerate().collect(), |(k, (_, mk))| {
            (
                k,
                run_ours(OursRun {
                    mss,
                    services: n,
                    config: mk(),
                    loss: 0.0,
                    crash_at: Some(crash),
                    ms_crashes: 8,
                    end,
                    seed: 1000 + n as u64,
                }),
            )
        });
        for (k, r) in results {
            eprintln!(
                "report: N={n} {}: {:?} {:.0} B/round ({:.1} s so far)",
                variants[k].0,
                r.detect_mss,
                r.gossip_bytes_per_round,
                started.elapsed().as_secs_f64()
            );
            detect[k].push((n, r));
        }
    }
    // Delta without suspicion, and full with it, for the bytes figure.
    let extra: [Variant; 2] = [
        ("delta gossip, no suspicion", delta_no_suspicion),
        ("full lists, suspicion", full_with_suspicion),
    ];
    let mut bytes_extra: Vec<Vec<(usize, f64)>> = vec![Vec::new(); extra.len()];
    for &n in ns.iter().filter(|n| **n <= 4096) {
        let mss = (n / PER_MSS).max(4);
        let results = par_map(extra.iter().enumerate().collect(), |(k, (_, mk))| {
            (
                k,
                run_ours(OursRun {
                    mss,
                    services: n,
                    config: mk(),
                    loss: 0.0,
                    crash_at: None,
                    ms_crashes: 0,
                    end: Instant::from_secs(20),
                    seed: 2000 + n as u64,
                }),
            )
        });
        for (k, r) in results {
            bytes_extra[k].push((n, r.gossip_bytes_per_round));
        }
    }
    let mut swim_detect: Vec<(usize, swim::SwimResult)> = Vec::new();
    let swim_results = par_map(swim_ns.clone(), |n| {
        (n, swim::run(n, 0.0, 4, Some(crash), end, 3000 + n as u64))
    });
    for (n, r) in swim_results {
        eprintln!(
            "report: SWIM N={n}: {:?} ({:.1} s so far)",
            r.detection,
            started.elapsed().as_secs_f64()
        );
        swim_detect.push((n, r));
    }

    // 2. False positives against loss.
    let fp_mss = if quick { 16 } else { 32 };
    let fp_services = fp_mss * 16;
    let fp_end = Instant::from_secs(if quick { 40 } else { 70 });
    let mut fp: Vec<Vec<(f64, Counts)>> = vec![Vec::new(); variants.len()];
    let mut swim_fp: Vec<(f64, usize)> = Vec::new();
    let mut jobs: Vec<(usize, f64)> = Vec::new();
    for &l in &losses {
        for k in 0..=variants.len() {
            jobs.push((k, l));
        }
    }
    let fp_results = par_map(jobs, |(k, l)| {
        let seed = 4000 + (l * 100.0) as u64;
        if k < variants.len() {
            let r = run_ours(OursRun {
                mss: fp_mss,
                services: fp_services,
                config: (variants[k].1)(),
                loss: l,
                crash_at: None,
                ms_crashes: 0,
                end: fp_end,
                seed,
            });
            (k, l, Some(r.counts), 0)
        } else {
            let r = swim::run(fp_services, l, 0, None, fp_end, seed);
            (k, l, None, r.false_positives)
        }
    });
    for (k, l, counts, swim_n) in fp_results {
        match counts {
            Some(c) => fp[k].push((l, c)),
            None => swim_fp.push((l, swim_n)),
        }
    }
    for v in &mut fp {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    swim_fp.sort_by(|a, b| a.0.total_cmp(&b.0));

    // 3. Figures.
    let secs = |r: &OursResult| r.detect_mss.map(|d| d.as_secs_f64());
    let mut f1 = Figure::new(
        "Detection time vs N (crash of one MSS and 8 member services)",
        "member services N",
        "seconds until every live MSS / member has it failed",
    );
    let colour = |k: usize| [0, 1, 5][k];
    for (k, (name, _)) in variants.iter().enumerate() {
        f1.add(Series::new(
            &format!("{name}: crashed MSS"),
            detect[k]
                .iter()
                .filter_map(|(n, r)| secs(r).map(|s| (*n as f64, s)))
                .collect(),
            colour(k),
        ));
        f1.add(
            Series::new(
                &format!("{name}: crashed member services (mean)"),
                detect[k]
                    .iter()
                    .filter_map(|(n, r)| mean(&r.detect_ms).map(|s| (*n as f64, s)))
                    .collect(),
                colour(k),
            )
            .dashed(),
        );
    }
    f1.add(Series::new(
        "SWIM (foca, N flat members): crashed members (max)",
        swim_detect
            .iter()
            .filter_map(|(n, r)| max(&r.detection).map(|s| (*n as f64, s)))
            .collect(),
        2,
    ));
    f1.log_x = true;
    f1.write(&out.join("detection.svg"), cmd)?;

    let mut f2 = Figure::new(
        &format!(
            "False positives vs loss ({fp_mss} MSS, {fp_services} member services; SWIM: {fp_services} members; {} s)",
            fp_end.as_millis() / 1000
        ),
        "datagram loss rate",
        "live incarnations declared failed",
    );
    for (k, (name, _)) in variants.iter().enumerate() {
        f2.add(Series::new(
            &format!("{name}: MSS"),
            fp[k].iter().map(|(l, c)| (*l, c.fp_mss as f64)).collect(),
            colour(k),
        ));
        f2.add(
            Series::new(
                &format!("{name}: member services (incl. collateral)"),
                fp[k]
                    .iter()
                    .map(|(l, c)| (*l, (c.fp_ms + c.fp_collateral) as f64))
                    .collect(),
                colour(k),
            )
            .dashed(),
        );
    }
    f2.add(Series::new(
        "SWIM (foca): members",
        swim_fp.iter().map(|(l, n)| (*l, *n as f64)).collect(),
        2,
    ));
    f2.write(&out.join("false_positives.svg"), cmd)?;

    let mut f3 = Figure::new(
        "Bytes vs N (stable group): per MSS per round; dashed blue and SWIM: per member service per second",
        "member services N",
        "bytes",
    );
    for (k, (name, _)) in variants.iter().enumerate().take(2) {
        f3.add(Series::new(
            name,
            detect[k]
                .iter()
                .map(|(n, r)| (*n as f64, r.gossip_bytes_per_round))
                .collect(),
            colour(k),
        ));
    }
    for (k, (name, _)) in extra.iter().enumerate() {
        f3.add(
            Series::new(
                name,
                bytes_extra[k]
                    .clone()
                    .into_iter()
                    .map(|(n, b)| (n as f64, b))
                    .collect(),
                3 + k,
            )
            .dashed(),
        );
    }
    f3.add(
        Series::new(
            "consort: all bytes per member service per second (gossip, probes, answers)",
            detect[0]
                .iter()
                .map(|(n, r)| (*n as f64, r.bytes_per_service_s))
                .collect(),
            0,
        )
        .dashed(),
    );
    f3.add(Series::new(
        "SWIM (foca): bytes per member per second",
        swim_detect
            .iter()
            .map(|(n, r)| (*n as f64, r.bytes_per_member_s))
            .collect(),
        2,
    ));
    f3.log_x = true;
    f3.log_y = true;
    f3.write(&out.join("bytes.svg"), cmd)?;

    // 4. The README.
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# The epidemic membership service: simulation results\n"
    );
    let _ = writeln!(
        md,
        "Everything on this page was produced by\n\n```sh\n{cmd}\n```\n\nin {:.0} s of wall time{}. Every run is deterministic (seeded); the simulated network delays each datagram by 1 ms, and loses each with the stated probability.\n",
        started.elapsed().as_secs_f64(),
        if quick {
            " with `--quick` (smaller experiments)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "Compared: **consort** (`Config::lan()`: delta gossip, suspicion with direct and indirect probes and refutation, redundant probes to suspected member services, timeouts that grow by one round per doubling of the MSS count), **classic** (`Config::classic()`: the seed's protocol, whole lists every round, no suspicion, the same timeouts), and a **SWIM baseline**, the `foca` crate (2.0, `Config::new_lan(N)`), one foca member per member service, on the same simulated network and clock. The epidemic service runs {PER_MSS} member services per MSS (at least 4 MSS).\n"
    );
    let _ = writeln!(
        md,
        "## Detection time vs N\n\n![detection time](detection.svg)\n\nProduced by `{cmd}` (experiment 1): one MSS and 8 member services of other MSS crash at 30 s; the time is until **every** live MSS (SWIM: every live member) holds them failed.\n"
    );
    let _ = writeln!(
        md,
        "| N | MSS | consort: MSS crash | consort: member crash (mean / max) | classic: MSS crash | classic: member crash (mean / max) | classic x2: MSS crash | classic x2: member crash (mean / max) | SWIM (foca): member crash (max) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (i, &n) in ns.iter().enumerate() {
        let mut row = format!("| {n} | {} |", (n / PER_MSS).max(4));
        for d in &detect {
            let r = &d[i].1;
            let _ = write!(
                row,
                " {} s | {} / {} s |",
                fmt_opt(secs(r), 1),
                fmt_opt(mean(&r.detect_ms), 1),
                fmt_opt(max(&r.detect_ms), 1)
            );
        }
        let s = swim_detect
            .iter()
            .find(|(m, _)| *m == n)
            .map_or("not run".into(), |(_, r)| {
                let undetected = if r.undetected > 0 {
                    format!(" ({} never detected)", r.undetected)
                } else {
                    String::new()
                };
                format!("{} s{undetected}", fmt_opt(max(&r.detection), 1))
            });
        let _ = writeln!(md, "{row} {s} |");
    }
    let _ = writeln!(
        md,
        "\n## False positives vs loss\n\n![false positives](false_positives.svg)\n\nProduced by `{cmd}` (experiment 2): {fp_mss} MSS with {fp_services} member services (SWIM: {fp_services} foca members), no crash, {} s, each datagram lost with the given probability. A false positive is a live incarnation declared failed by anyone; \"collateral\" counts member services failed because their live MSS was.\n",
        fp_end.as_millis() / 1000
    );
    let _ = writeln!(
        md,
        "| loss | consort: MSS | consort: members (collateral) | consort: suspicions / refuted | classic: MSS | classic: members (collateral) | classic x2: MSS | classic x2: members (collateral) | SWIM (foca): members |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (i, l) in losses.iter().enumerate() {
        let c = &fp[0][i].1;
        let k = &fp[1][i].1;
        let k2 = &fp[2][i].1;
        let s = swim_fp.iter().find(|(x, _)| x == l).map_or(0, |x| x.1);
        let _ = writeln!(
            md,
            "| {:.0}% | {} | {} ({}) | {} / {} | {} | {} ({}) | {} | {} ({}) | {s} |",
            l * 100.0,
            c.fp_mss,
            c.fp_ms,
            c.fp_collateral,
            c.suspicions,
            c.refutations,
            k.fp_mss,
            k.fp_ms,
            k.fp_collateral,
            k2.fp_mss,
            k2.fp_ms,
            k2.fp_collateral
        );
    }
    let _ = writeln!(
        md,
        "\n## Bytes per MSS per round vs N\n\n![bytes](bytes.svg)\n\nProduced by `{cmd}` (experiments 1 and 3): MSS-to-MSS bytes (digests, member lists, pulls, probes of suspects) each MSS sends per 500 ms gossip round over the 10 s before the crash, in a stable group. SWIM's figure is all bytes a member sends per second (its probe period), a member being what an MSS and its services are together here.\n"
    );
    let _ = writeln!(
        md,
        "| N | MSS | consort (delta) | classic (full lists) | saving | delta, no suspicion | full, suspicion | consort: all bytes per member service per s (gossip, probes, answers) | SWIM (foca): bytes per member per s |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (i, &n) in ns.iter().enumerate() {
        let c = &detect[0][i].1;
        let k = &detect[1][i].1;
        let e0 = bytes_extra[0]
            .iter()
            .find(|(m, _)| *m == n)
            .map_or("–".into(), |x| format!("{:.0}", x.1));
        let e1 = bytes_extra[1]
            .iter()
            .find(|(m, _)| *m == n)
            .map_or("–".into(), |x| format!("{:.0}", x.1));
        let s = swim_detect
            .iter()
            .find(|(m, _)| *m == n)
            .map_or("not run".into(), |(_, r)| {
                format!("{:.0}", r.bytes_per_member_s)
            });
        let saving = if k.gossip_bytes_per_round > 0.0 {
            100.0 * (1.0 - c.gossip_bytes_per_round / k.gossip_bytes_per_round)
        } else {
            0.0
        };
        let _ = writeln!(
            md,
            "| {n} | {} | {:.0} | {:.0} | {saving:.0}% | {e0} | {e1} | {:.1} | {s} |",
            (n / PER_MSS).max(4),
            c.gossip_bytes_per_round,
            k.gossip_bytes_per_round,
            c.bytes_per_service_s
        );
    }
    let _ = writeln!(md, "\n## Reading the figures\n");
    let _ = writeln!(
        md,
        "- **Message size.** The classic protocol's round carries every member service of the context, so its bytes grow with N; delta gossip carries a digest of one entry per MSS and only the member entries that changed, so in a stable group it grows with the number of MSS (N/{PER_MSS}), not with N. The saving column is that difference."
    );
    let _ = writeln!(
        md,
        "- **Detection time.** consort and classic fail a silent MSS after the same timeout (4 s plus one 500 ms round per doubling of the MSS count) and a member service after 4 unanswered probes; classic x2 doubles both. SWIM's foca detects at its suspicion timeout (scaled with log N)."
    );
    let _ = writeln!(
        md,
        "- **False positives.** Under loss the classic detector fails live member services whenever four probes in a row or their answers are lost; consort suspects first and probes a suspect redundantly, and an MSS that falls silent too long is suspected and probed directly and through others before it is failed, so a heartbeat delayed by loss is refuted instead. The classic protocol needs its timeouts doubled (classic x2) to come near consort's false-positive rate, and then detects twice as slowly: consort keeps both the short detection time and the low false-positive rate."
    );
    let _ = writeln!(
        md,
        "- **What SWIM still does better.** Per member service, SWIM's traffic is flat with N (one probe and answer per member per second), while the epidemic service's grows with the number of MSS, because every round still carries one digest entry per MSS: at N = 10,000 it is several times SWIM's bytes per member. A bounded digest (a fixed number of entries per round, chosen by age) would make it flat too; it is not done yet."
    );
    let _ = writeln!(
        md,
        "- **Limits.** The SWIM baseline is flat (N members, N² member records in one process), so it is run up to N = {} here; the epidemic service's runs go to N = {}.",
        swim_ns.last().copied().unwrap_or(0),
        ns.last().copied().unwrap_or(0)
    );
    std::fs::write(out.join("README.md"), md)
        .map_err(|e| format!("cannot write README.md: {e}"))?;
    eprintln!(
        "report: wrote {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `f` over `items` on every core, in big-stack threads; results in any order.
fn par_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let items = std::sync::Mutex::new(items);
    let out = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            let _ = std::thread::Builder::new()
                .stack_size(super::campaign::STACK)
                .spawn_scoped(s, || {
                    loop {
                        let Some(item) = items.lock().ok().and_then(|mut v| v.pop()) else {
                            break;
                        };
                        let r = f(item);
                        if let Ok(mut o) = out.lock() {
                            o.push(r);
                        }
                    }
                });
        }
    });
    out.into_inner().unwrap_or_default()
}
