//! `epidemic`: the epidemic membership service's campaign and report.
//!
//! ```text
//! cargo run --release -p consort-sim --bin epidemic -- check --seeds 300 --nodes 64 --services 512 --faults loss,dup,partition,crash,restart
//! cargo run --release -p consort-sim --bin epidemic -- report --out docs/epidemic
//! ```
//!
//! `check` runs seeds in parallel, reports them in order, prints each
//! failure with the command that replays it, and ends with
//! `N passed, F failed` (exit status non-zero on any failure). `report`
//! runs the measurements and writes SVG figures and a README table.

mod verdicts;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use consort_core::epidemic::GossipMode;
use consort_sim::epidemic::{CheckConfig, EFault, Outcome, run_check, service_config};
use consort_sim::parallel::over_seeds;

/// Violations printed per failing seed; the rest are counted.
const SHOWN: usize = 12;

/// The epidemic membership service in the simulator.
#[derive(Parser, Debug)]
#[command(name = "epidemic", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a campaign of seeds and check every one.
    Check(CheckArgs),
    /// Measure and write the figures and table of docs/epidemic.
    Report(ReportArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Digests and deltas (consort's default).
    Delta,
    /// Whole lists every round (the seed's protocol).
    Full,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Number of seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// MSS engines (3 to 4096).
    #[arg(long, default_value_t = 64)]
    nodes: usize,
    /// Member services, spread over the engines.
    #[arg(long, default_value_t = 512)]
    services: usize,
    /// Faults, comma-separated: loss, dup, delay, partition, crash, restart; or "none".
    #[arg(long, default_value = "loss,dup,partition,crash,restart")]
    faults: String,
    /// Loss rate (default: drawn per seed between 0.01 and 0.10).
    #[arg(long)]
    loss: Option<f64>,
    /// Duplication rate (default 0.05).
    #[arg(long)]
    dup: Option<f64>,
    /// Rate of datagrams delayed up to 30 ms (default 0.1).
    #[arg(long)]
    delay: Option<f64>,
    /// Gossip mode.
    #[arg(long, value_enum, default_value_t = Mode::Delta)]
    mode: Mode,
    /// Turn suspicion and indirect probes off (the seed's failure detector).
    #[arg(long)]
    no_suspicion: bool,
    /// Print one line per seed.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// Where the SVG figures and README.md go.
    #[arg(long, default_value = "docs/epidemic")]
    out: std::path::PathBuf,
    /// Smaller experiments (for a quick look; the README says so).
    #[arg(long)]
    quick: bool,
}

fn configure(a: &CheckArgs) -> Result<CheckConfig, String> {
    let mut faults = Vec::new();
    if !a.faults.trim().eq_ignore_ascii_case("none") {
        for name in a.faults.split(',') {
            let f = EFault::parse(name).map_err(|e| format!("--faults: {e}"))?;
            if !faults.contains(&f) {
                faults.push(f);
            }
        }
    }
    let mut c = CheckConfig::new(a.nodes, a.services, faults);
    c.loss = a.loss;
    c.dup = a.dup;
    c.delay = a.delay;
    let mode = match a.mode {
        Mode::Delta => GossipMode::Delta,
        Mode::Full => GossipMode::Full,
    };
    c.service = service_config(mode, !a.no_suspicion);
    c.yardstick = c.service;
    c.validate()?;
    Ok(c)
}

fn replay(c: &CheckArgs, seed: u64) -> String {
    let mut cmd = format!(
        "cargo run --release -p consort-sim --bin epidemic -- check --seeds 1 --first-seed {seed} --nodes {} --services {} --faults {}",
        c.nodes, c.services, c.faults
    );
    for (name, v) in [("loss", c.loss), ("dup", c.dup), ("delay", c.delay)] {
        if let Some(v) = v {
            cmd += &format!(" --{name} {v}");
        }
    }
    if let Mode::Full = c.mode {
        cmd += " --mode full";
    }
    if c.no_suspicion {
        cmd += " --no-suspicion";
    }
    cmd + " -v"
}

/// Runs every seed on all cores; outcomes come back in seed order.
fn run_all(config: &CheckConfig, first: u64, count: u64) -> Vec<Outcome> {
    over_seeds(first..first.saturating_add(count), |seed| {
        run_check(config, seed)
    })
}

fn check(a: &CheckArgs) -> ExitCode {
    let config = match configure(a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("epidemic check: {e}");
            return ExitCode::from(2);
        }
    };
    let names: Vec<&str> = config.faults.iter().map(|f| f.name()).collect();
    println!(
        "epidemic check: seeds {}..{}, {} MSS, {} member services, {} proxies, {} monitors, faults [{}], {:?} gossip, suspicion {}",
        a.first_seed,
        a.first_seed + a.seeds,
        config.nodes,
        config.services,
        config.proxies,
        config.monitors,
        names.join(", "),
        config.service.mode,
        if config.service.suspicion {
            "on"
        } else {
            "off"
        },
    );
    println!(
        "bounds: a crashed MSS is Failed at every live MSS within {:.1} s, a crashed member service within {:.1} s; all live MSS agree on Members within {:.0} s after faults stop",
        config.bound_mss().as_secs_f64(),
        config.bound_ms().as_secs_f64(),
        config.settle.as_secs_f64()
    );
    let outcomes = run_all(&config, a.first_seed, a.seeds);
    verdicts::print(
        &outcomes,
        a.verbose,
        SHOWN,
        |seed| replay(a, seed),
        |_| Vec::new(),
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(a) => check(&a),
        Command::Report(r) => match consort_sim::epidemic::measure::report(&r.out, r.quick) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("epidemic report: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
