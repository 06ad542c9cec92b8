//! netns_member: one member of a group in a process of its own, for the
//! multi-host test (`tests/tests/multi_host.rs`), which starts one in each
//! network namespace and reads what it prints.
//!
//! ```text
//! netns_member --group G --bind 10.0.0.1:7000 --seeds 10.0.0.2:7000,10.0.0.3:7000 \
//!              --params suspect_sweep=100ms --casts 0 --interval-ms 20
//! ```
//!
//! Commands, one a line on standard input: `start` begins casting (message
//! `k` is the decimal number `k`, from 0, one every `--interval-ms`), `stop`
//! stops casting; casting also stops after `--casts` messages (0: no limit).
//! End of input ends the process at once, without leaving, so members never
//! outlive the test that started them.
//!
//! Standard output is one record a line; endpoint ids are 16 hex digits:
//!
//! ```text
//! me <my id> <pid>
//! view <ltime> <coordinator> <member>,<member>,...   members sorted
//! cast <sender> <k>                                   a cast delivered here
//! sent <k>                                            cast k was accepted
//! stopped <count>                                     casts 0..count were sent
//! error <what>                                        then the process exits;
//!                                                     a panic is one too
//! exit                                                the member has left
//! ```
//!
//! With `CONSORT_LOG=info` (or `debug`, `trace`...) consort's own log goes
//! to standard error, each line stamped with the wall clock in
//! milliseconds so that several members' logs can be read side by side.

use std::process::ExitCode;
use std::time::Duration;

use consort_tokio::{EndpointId, JoinOptions, MemberEvent, join};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::MissedTickBehavior;

/// consort's log on standard error, for reading a failed run afterwards.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        eprintln!(
            "{}.{:03} {} {}: {}",
            ms / 1000,
            ms % 1000,
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

static STDERR_LOG: StderrLog = StderrLog;

/// Turns the log on at the level `CONSORT_LOG` names, if it names one.
fn start_log() {
    let level = std::env::var("CONSORT_LOG")
        .ok()
        .and_then(|l| l.parse().ok());
    if let Some(level) = level {
        if log::set_logger(&STDERR_LOG).is_ok() {
            log::set_max_level(level);
        }
    }
}

const USAGE: &str = "usage: netns_member --group G --bind HOST:PORT [--seeds HOST:PORT,...] \
                     [--params P] [--casts N] [--interval-ms MS]";

/// What the command line says.
#[derive(Debug)]
struct Args {
    group: String,
    bind: String,
    seeds: Vec<String>,
    params: String,
    /// Stop casting after this many casts; 0: only on `stop`.
    casts: u64,
    interval: Duration,
}

impl Args {
    fn parse(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut args = Args {
            group: String::new(),
            bind: String::new(),
            seeds: Vec::new(),
            params: String::new(),
            casts: 0,
            interval: Duration::from_millis(20),
        };
        while let Some(flag) = words.next() {
            let value = words
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{flag} {value}: {e}"))
            };
            match flag.as_str() {
                "--group" => args.group = value,
                "--bind" => args.bind = value,
                "--seeds" => args.seeds = value.split(',').map(String::from).collect(),
                "--params" => args.params = value,
                "--casts" => args.casts = number()?,
                "--interval-ms" => args.interval = Duration::from_millis(number()?),
                _ => return Err(format!("unknown argument {flag}")),
            }
        }
        if args.group.is_empty() || args.bind.is_empty() {
            return Err("--group and --bind are required".into());
        }
        Ok(args)
    }
}

fn hex(id: EndpointId) -> String {
    format!("{:016x}", id.0)
}

/// Prints every event the test needs, as it comes.
async fn print_events(mut events: consort_tokio::Events) {
    while let Some(event) = events.next().await {
        match event {
            MemberEvent::View(v) => {
                let mut members = v.members.clone();
                members.sort();
                let members: Vec<String> = members.into_iter().map(hex).collect();
                println!(
                    "view {} {} {}",
                    v.ltime(),
                    hex(v.coordinator),
                    members.join(",")
                );
            }
            MemberEvent::Cast { from, bytes } => {
                let k = String::from_utf8_lossy(&bytes);
                println!("cast {} {k}", hex(from));
            }
            MemberEvent::Exit => {
                println!("exit");
                return;
            }
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // A panic in the member's task would leave the process up and the
    // member gone: make it an `error` line and end the process.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        println!("error panic: {}", info.to_string().replace('\n', " "));
        std::process::exit(101);
    }));
    start_log();
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("netns_member: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = JoinOptions::new(&args.group)
        .bind(&args.bind)
        .seeds(args.seeds.clone())
        .params(&args.params);
    let (member, events) = match join(options).await {
        Ok(m) => m,
        Err(e) => {
            println!("error join: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("me {} {}", hex(member.my_endpoint()), std::process::id());
    tokio::spawn(print_events(events));

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut tick = tokio::time::interval(args.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut casting = false;
    let mut next: u64 = 0;
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => match line.trim() {
                    "start" => casting = true,
                    "stop" => {
                        casting = false;
                        println!("stopped {next}");
                    }
                    other => eprintln!("netns_member: unknown command {other:?}"),
                },
                // The test is gone: end as a crash would.
                Ok(None) | Err(_) => return ExitCode::SUCCESS,
            },
            _ = tick.tick(), if casting => {
                // `cast` waits while flow control or a view change says so.
                if let Err(e) = member.cast(next.to_string().into_bytes()).await {
                    println!("error cast {next}: {e}");
                    return ExitCode::FAILURE;
                }
                println!("sent {next}");
                next += 1;
                if next == args.casts {
                    casting = false;
                    println!("stopped {next}");
                }
            }
        }
    }
}
