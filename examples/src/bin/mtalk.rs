//! mtalk: Ensemble's chat demo. One process per member; every line typed is
//! cast to the group; views and messages are printed as they come.
//!
//! ```text
//! cargo run --release -p consort-examples --bin mtalk -- --port 7000
//! cargo run --release -p consort-examples --bin mtalk -- --port 7001 --seeds 127.0.0.1:7000
//! ```
//!
//! Lines starting with `/` are commands: `/view` prints the view, `/leave`
//! leaves (and exits), `/suspect <id>` reports a member as failed.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use consort_examples::short;
use consort_tokio::{EndpointId, JoinOptions, MemberEvent, join};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Ensemble's mtalk on consort: a chat room that is a process group.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Ensemble's mtalk on consort: every line typed is cast to the group, views and messages are printed"
)]
struct Args {
    /// The group (chat room) to join.
    #[arg(long, default_value = "mtalk")]
    group: String,
    /// Group properties (Maestro's list), colon-separated.
    #[arg(long, default_value = JoinOptions::DEFAULT_PROPERTIES)]
    properties: String,
    /// Group parameters, `name=value` separated by `:` (e.g. `suspect_sweep=200ms`).
    #[arg(long, default_value = consort_examples::FAST_PARAMS)]
    params: String,
    /// Where to look for the group (Ensemble's -gossip_hosts): host:port, comma-separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<String>,
    /// UDP port to listen on (0: any).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind; with a wildcard address also give --advertise.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// The address other members should use, if not the bound one.
    #[arg(long)]
    advertise: Option<String>,
    /// Print a heartbeat line every this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    heartbeat: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    // RUST_LOG=consort_core=debug (or trace) shows what the protocol does.
    env_logger::init();
    let args = Args::parse();
    let mut opts = JoinOptions::new(&args.group)
        .properties(&args.properties)
        .params(&args.params)
        .seeds(args.seeds.clone())
        .bind(format!("{}:{}", args.bind, args.port));
    if let Some(a) = &args.advertise {
        opts = opts.advertise(a);
    }
    if args.heartbeat > 0 {
        opts = opts.heartbeat(Duration::from_secs(args.heartbeat));
    }
    let (member, mut events) = match join(opts).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mtalk: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "mtalk: I am {} in group {:?}; type lines to send, /leave to quit",
        short(member.my_endpoint()),
        args.group
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    let line = line.trim().to_string();
                    if line == "/leave" {
                        let _ = member.leave().await;
                        println!("mtalk: left");
                        return ExitCode::SUCCESS;
                    } else if line == "/view" {
                        if let Some(v) = member.view() {
                            let names: Vec<String> = v.members.iter().map(|m| short(*m)).collect();
                            println!("view {} [{}] coordinator {}", v.ltime(), names.join(" "), short(v.coordinator));
                        }
                    } else if let Some(who) = line.strip_prefix("/suspect ") {
                        let ids: Vec<EndpointId> = member
                            .view()
                            .map(|v| v.members.into_iter().filter(|m| short(*m) == who.trim()).collect())
                            .unwrap_or_default();
                        if let Err(e) = member.suspect(&ids).await {
                            println!("mtalk: {e}");
                        }
                    } else if !line.is_empty() {
                        if let Err(e) = member.cast(line.into_bytes()).await {
                            println!("mtalk: {e}");
                        }
                    }
                }
                // End of input: stay in the group and keep printing.
                Ok(None) | Err(_) => stdin_open = false,
            },
            ev = events.next() => match ev {
                Some(MemberEvent::View(v)) => {
                    let names: Vec<String> = v.members.iter().map(|m| short(*m)).collect();
                    println!("view {} [{}]", v.ltime(), names.join(" "));
                }
                Some(MemberEvent::Cast { from, bytes }) => {
                    println!("{}: {}", short(from), String::from_utf8_lossy(&bytes));
                }
                Some(MemberEvent::Send { from, bytes }) => {
                    println!("{} (to me): {}", short(from), String::from_utf8_lossy(&bytes));
                }
                Some(MemberEvent::Heartbeat(t)) => println!("heartbeat {:.0} s", t.as_secs_f64()),
                Some(MemberEvent::Exit) | None => {
                    println!("mtalk: exit");
                    return ExitCode::SUCCESS;
                }
                Some(_) => {}
            },
        }
    }
}
