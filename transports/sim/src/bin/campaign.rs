//! `campaign`: runs many seeds of the simulator and checks every one.
//!
//! ```text
//! cargo run --release -p consort-sim --bin campaign -- \
//!     --seeds 2000 --members 5 --properties Frag:Flow --faults loss,dup,reorder
//! cargo run --release -p consort-sim --bin campaign -- --seeds 2000 --members 5 \
//!     --properties Gmp:Sync:Heal:Frag:Suspect:Flow:Slander:Primary \
//!     --faults loss,dup,reorder,partition,crash,restart,join,leave
//! ```
//!
//! Everything is validated before the first seed runs. Seeds run in
//! parallel but are reported in order; each failing seed is printed with its
//! violations and a command that replays it alone (add `--trace` to the
//! replay to see every record). The last line is always `N passed, F
//! failed`, and the exit status is non-zero if anything failed.

mod verdicts;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use consort_core::Params;
use consort_sim::checker::Liveness;
use consort_sim::parallel::over_seeds;
use consort_sim::{Fault, FaultKind, Protocol, Report, RunConfig, run, run_report};

/// Run a simulated campaign of seeds against the consort protocol core.
#[derive(Parser, Debug)]
#[command(name = "campaign", version)]
struct Args {
    /// Number of seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Members of the group (1 to 64).
    #[arg(long, default_value_t = 5)]
    members: usize,
    /// Group properties, e.g. Frag:Flow (default when no --stack is given).
    #[arg(long, conflicts_with = "stack")]
    properties: Option<String>,
    /// An explicit stack instead of properties, e.g. Top:Local:Pt2pt:Stable:Mnak:Bottom.
    #[arg(long)]
    stack: Option<String>,
    /// Group parameters, name=value separated by ':'.
    #[arg(long, default_value = "")]
    params: String,
    /// Faults, comma-separated: loss, dup, reorder (per datagram), partition,
    /// crash, restart, join, leave (per node, need Gmp in the stack but for
    /// partition); or "none".
    #[arg(long, default_value = "loss,dup,reorder")]
    faults: String,
    /// Probability that a datagram is lost (needs loss in --faults).
    #[arg(long)]
    loss: Option<f64>,
    /// Probability that a datagram is duplicated (needs dup in --faults).
    #[arg(long)]
    dup: Option<f64>,
    /// Probability that a datagram is delayed past later ones (needs reorder in --faults).
    #[arg(long)]
    reorder: Option<f64>,
    /// Partitions per run, each healing before the next (needs partition in --faults).
    #[arg(long)]
    partition: Option<u32>,
    /// Crashes per run (needs crash in --faults).
    #[arg(long)]
    crash: Option<u32>,
    /// Crash-and-restarts per run (needs restart in --faults).
    #[arg(long)]
    restart: Option<u32>,
    /// Joins of new nodes per run (needs join in --faults).
    #[arg(long)]
    join: Option<u32>,
    /// Leaves per run; half come back as new endpoints (needs leave in --faults).
    #[arg(long)]
    leave: Option<u32>,
    /// Virtual seconds of workload (faults stop with it).
    #[arg(long, default_value_t = 4.0)]
    duration: f64,
    /// Pool slots per endpoint (default: 256 + 128 per member).
    #[arg(long)]
    slots: Option<usize>,
    /// Print one line per seed.
    #[arg(short, long)]
    verbose: bool,
    /// Print every record of every seed's trace (for replaying one seed).
    #[arg(long)]
    trace: bool,
    /// Violations printed per failing seed; the rest are counted.
    #[arg(long, default_value_t = 12)]
    show: usize,
}

const DEFAULT_PROPERTIES: &str = "Frag:Flow";

/// The rate or count of a fault asked for without one.
fn default_amount(kind: FaultKind) -> f64 {
    match kind {
        FaultKind::Loss => 0.1,
        FaultKind::Dup => 0.05,
        FaultKind::Reorder => 0.1,
        FaultKind::Partition
        | FaultKind::Crash
        | FaultKind::Restart
        | FaultKind::Join
        | FaultKind::Leave => 1.0,
    }
}

/// The rate or count given on the command line for `kind`.
fn given(args: &Args, kind: FaultKind) -> Option<f64> {
    match kind {
        FaultKind::Loss => args.loss,
        FaultKind::Dup => args.dup,
        FaultKind::Reorder => args.reorder,
        FaultKind::Partition => args.partition.map(f64::from),
        FaultKind::Crash => args.crash.map(f64::from),
        FaultKind::Restart => args.restart.map(f64::from),
        FaultKind::Join => args.join.map(f64::from),
        FaultKind::Leave => args.leave.map(f64::from),
    }
}

/// Whether `properties` have membership but not Heal while some of `faults`
/// need a group to find itself again.
fn needs_heal(properties: &str, faults: &[Fault]) -> bool {
    let has = |name: &str| properties.split(':').any(|p| p.eq_ignore_ascii_case(name));
    let finding = faults.iter().any(|f| {
        matches!(
            f.kind(),
            FaultKind::Partition | FaultKind::Restart | FaultKind::Join | FaultKind::Leave
        )
    });
    has("Gmp") && !has("Heal") && finding
}

/// Turns the arguments into a run configuration, or says what is wrong.
fn configure(args: &Args) -> Result<RunConfig, String> {
    let protocol = match (&args.stack, &args.properties) {
        (Some(s), _) => Protocol::Stack(s.clone()),
        (None, Some(p)) => Protocol::Properties(p.clone()),
        (None, None) => Protocol::Properties(DEFAULT_PROPERTIES.into()),
    };
    let mut kinds = Vec::new();
    if !args.faults.trim().eq_ignore_ascii_case("none") {
        for name in args.faults.split(',') {
            let k = FaultKind::parse(name).map_err(|e| format!("--faults: {e}"))?;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    let mut faults = Vec::new();
    for kind in FaultKind::ALL {
        let amount = given(args, kind);
        if amount.is_some() && !kinds.contains(&kind) {
            return Err(format!(
                "--{} is given but {} is not in --faults",
                kind.name(),
                kind.name()
            ));
        }
        if kinds.contains(&kind) {
            let r = amount.unwrap_or(default_amount(kind));
            if kind.per_datagram() && !(0.0..=1.0).contains(&r) {
                return Err(format!("--{} {r} must be between 0 and 1", kind.name()));
            }
            faults.push(Fault::of(kind, r));
        }
    }
    if !(args.duration > 0.0 && args.duration <= 3600.0) {
        return Err(format!(
            "--duration {} must be in (0, 3600] seconds",
            args.duration
        ));
    }
    // Partitions, restarts, joins and leaves need a group that finds itself
    // again, which is Heal's work: a property list with Gmp but without Heal
    // gets it (`main` says so), rather than a campaign that cannot pass.
    let protocol = match protocol {
        Protocol::Properties(p) if needs_heal(&p, &faults) => {
            Protocol::Properties(format!("{p}:Heal"))
        }
        other => other,
    };
    let mut config = RunConfig::new(args.members, protocol);
    config.params = args.params.clone();
    config.faults = faults;
    config.workload.duration = Duration::from_secs_f64(args.duration);
    config.bound = config.workload.duration + Duration::from_secs(56);
    config.slots = args.slots;
    config.validate()?;
    Ok(config)
}

/// The command that runs `seed` alone with the same configuration.
fn replay(config: &RunConfig, args: &Args, seed: u64) -> String {
    let mut cmd = format!(
        "cargo run --release -p consort-sim --bin campaign -- --seeds 1 --first-seed {seed} --members {}",
        config.members
    );
    match &config.protocol {
        Protocol::Properties(p) => cmd += &format!(" --properties {p}"),
        Protocol::Stack(s) => cmd += &format!(" --stack {s}"),
    }
    if !config.params.is_empty() {
        cmd += &format!(" --params \"{}\"", config.params);
    }
    if config.faults.is_empty() {
        cmd += " --faults none";
    } else {
        let names: Vec<&str> = config.faults.iter().map(|f| f.kind().name()).collect();
        cmd += &format!(" --faults {}", names.join(","));
        for f in &config.faults {
            match (f.rate(), f.count()) {
                (Some(r), _) => cmd += &format!(" --{} {r}", f.kind().name()),
                (_, Some(n)) => cmd += &format!(" --{} {n}", f.kind().name()),
                _ => {}
            }
        }
    }
    cmd += &format!(" --duration {}", args.duration);
    if let Some(s) = args.slots {
        cmd += &format!(" --slots {s}");
    }
    cmd + " -v"
}

/// Runs every seed on all cores; reports come back in seed order.
fn run_all(config: &RunConfig, first: u64, count: u64) -> Result<Vec<Report>, String> {
    over_seeds(first..first.saturating_add(count), |seed| {
        run_report(config, seed)
    })
    .into_iter()
    .collect()
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match configure(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("campaign: {e}");
            return ExitCode::from(2);
        }
    };
    if let (Some(asked), Protocol::Properties(used)) = (&args.properties, &config.protocol) {
        if asked != used {
            println!(
                "campaign: properties {asked} with Heal added ({used}): partitions, restarts, joins and leaves need it, or an endpoint never finds the group again"
            );
        }
    }
    let stack = config.validate().map(|s| s.to_string()).unwrap_or_default();
    let faults: Vec<String> = config.faults.iter().map(Fault::to_string).collect();
    println!(
        "campaign: seeds {}..{}, {} member(s), stack {stack}, faults [{}]",
        args.first_seed,
        args.first_seed + args.seeds,
        config.members,
        faults.join(", ")
    );
    if config.membership() {
        let params = config.params_in_use();
        // validate() has parsed these already.
        let parsed = Params::parse(&params).unwrap_or_default();
        println!("membership: params {params}");
        println!(
            "liveness:   live members must converge to one view within {} of the last fault",
            Liveness::explain(&parsed)
        );
    }
    if args.trace {
        for seed in args.first_seed..args.first_seed + args.seeds {
            match run(&config, seed) {
                Ok(r) => {
                    println!("--- trace of seed {seed}");
                    for rec in r.trace.records() {
                        println!("{rec}");
                    }
                }
                Err(e) => eprintln!("campaign: {e}"),
            }
        }
    }
    let reports = match run_all(&config, args.first_seed, args.seeds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("campaign: {e}");
            return ExitCode::from(2);
        }
    };
    // The ordering layers must have had work to do somewhere in the
    // campaign. Not in every run: in one where the group never holds
    // together long enough, Total may have nothing to order.
    let idle = |total: &consort_sim::Exercised| {
        let o = &total.ordering;
        let mut idle = Vec::new();
        if stack.split(':').any(|l| l == "Total") && total.cast_deliveries > 0 && o.orders == 0 {
            idle.push("Total never ordered a cast");
        }
        if stack.split(':').any(|l| l == "Agree") && total.cast_deliveries > 0 && o.held == 0 {
            idle.push("Agree never held a cast back");
        }
        idle
    };
    verdicts::print(
        &reports,
        args.verbose,
        args.show,
        |seed| replay(&config, &args, seed),
        idle,
    )
}
