//! membership: the epidemic membership service of WS-Membership, one node
//! per process. Each process runs an MSS node, registers a member service
//! with it and attaches a monitor that prints the lifecycle sets (Members,
//! Joined, Left, Failed, Suspected) whenever they change.
//!
//! ```text
//! cargo run --release -p consort-examples --bin membership -- --bind 127.0.0.1:7101 --peers 127.0.0.1:7102,127.0.0.1:7103
//! cargo run --release -p consort-examples --bin membership -- --bind 127.0.0.1:7102 --peers 127.0.0.1:7101,127.0.0.1:7103
//! cargo run --release -p consort-examples --bin membership -- --bind 127.0.0.1:7103 --peers 127.0.0.1:7101,127.0.0.1:7102
//! ```
//!
//! Type `leave` to have the member service leave (the others see it Left),
//! `register` to register a new one, `crash` to stop it without a word
//! (the others see it Suspected, then Failed), `quit` to leave and exit.
//! Killing the process (Ctrl-C) stops the MSS node too: its peers fail it
//! and every member service registered with it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use consort_tokio::epidemic::{
    Change, Config, Event, Lifecycle, MemberEvent, MemberId, Membership, MembershipUpdate,
    MonitorOptions, Node, NodeOptions, Registration, ServiceOptions, monitor, register, start_node,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// One node of the epidemic membership service: an MSS, a member service
/// registered with it, and a monitor printing the lifecycle sets.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "One node of consort's epidemic membership service: runs an MSS, registers a member \
             service with it, and prints the lifecycle sets (Members, Joined, Left, Failed, \
             Suspected) as a monitor sees them change",
    after_help = "Commands on standard input: `leave` (the member service leaves), `register` \
                  (register a new one), `crash` (stop it without a word: it is Suspected, then \
                  Failed), `quit` (leave and exit). Ctrl-C kills the whole node, MSS included. \
                  Logs: RUST_LOG=consort_epidemic=debug."
)]
struct Args {
    /// UDP address the MSS node listens on, host:port. Other nodes list it
    /// in their --peers, and the member service and monitor register there.
    #[arg(long, default_value = "127.0.0.1:7101")]
    bind: String,
    /// The address other nodes should use, when --bind is a wildcard
    /// (0.0.0.0) or behind a NAT.
    #[arg(long)]
    advertise: Option<String>,
    /// Seed addresses of other MSS nodes (host:port, comma-separated): the
    /// MSS gossips with them to join the context's set of MSS.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// The coordination context (group URI) the member service registers in
    /// and the monitor watches.
    #[arg(long, default_value = "urn:consort:demo")]
    context: String,
    /// Where the member service's socket binds (it answers the MSS's
    /// probes there); its address is what the monitors show. Default: the
    /// MSS node's IP, any port.
    #[arg(long)]
    service: Option<String>,
    /// Register no member service: run the MSS node and the monitor only.
    /// (An MSS joins a context only once a service registers with it, so
    /// the monitor then asks the --peers first.)
    #[arg(long)]
    no_service: bool,
    /// Ask the MSS for changes only, instead of the whole state at every
    /// monitor interval.
    #[arg(long)]
    changes_only: bool,
    /// The seed's gossip-style failure detection (whole lists every round,
    /// no suspicion) instead of consort's default (digests and deltas,
    /// suspicion with indirect probes).
    #[arg(long)]
    classic: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("membership: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = if args.classic {
        Config::classic()
    } else {
        Config::lan()
    };
    let mut node_options = NodeOptions::new(&args.bind)
        .seeds(args.peers.clone())
        .context(&args.context)
        .config(config);
    if let Some(a) = &args.advertise {
        node_options = node_options.advertise(a);
    }
    let (node, mut node_events) = start_node(node_options).await?;
    let start = Instant::now();
    println!(
        "membership: MSS at {} in context {:?}, peers [{}]",
        node.addr(),
        args.context,
        args.peers.join(" ")
    );
    let service_bind = args
        .service
        .clone()
        .unwrap_or_else(|| SocketAddr::new(node.addr().ip(), 0).to_string());
    let mut service = if args.no_service {
        None
    } else {
        Some(register_service(&node, &args.context, &service_bind).await?)
    };
    // The monitor asks this node first and the peers when it falls silent;
    // with no service here, this node knows nobody in the context, so the
    // peers come first.
    let mut mss: Vec<String> = std::iter::once(node.addr().to_string())
        .chain(args.peers.iter().cloned())
        .collect();
    if args.no_service {
        mss.rotate_left(1);
    }
    let mut updates = monitor(
        MonitorOptions::new(&args.context, mss)
            .bind(SocketAddr::new(node.addr().ip(), 0).to_string())
            .changes_only(args.changes_only),
    )
    .await?;
    let mut sets = Membership::default();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            u = updates.next() => match u {
                Some(u) => print_update(start, &mut sets, &u),
                None => return Err("the monitor stopped".into()),
            },
            e = node_events.next() => match e {
                Some(e) => print_node_event(start, e),
                None => return Err("the MSS node stopped".into()),
            },
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => match line.trim() {
                    "leave" => match service.take() {
                        Some(s) => {
                            let addr = s.id().addr;
                            s.leave().await?;
                            println!("membership: member service {addr} left");
                        }
                        None => println!("membership: no member service"),
                    },
                    "crash" => match service.take() {
                        Some(s) => {
                            println!("membership: member service {} stops answering probes", s.id().addr);
                            s.crash();
                        }
                        None => println!("membership: no member service"),
                    },
                    "register" => match &service {
                        Some(s) => println!("membership: member service {} is registered already (leave first)", s.id().addr),
                        // A failed registration is said, and the node runs on.
                        None => match register_service(&node, &args.context, &service_bind).await {
                            Ok(s) => service = Some(s),
                            Err(e) => println!("membership: {e}"),
                        },
                    },
                    "quit" => {
                        if let Some(s) = service.take() {
                            s.leave().await?;
                        }
                        println!("membership: bye");
                        return Ok(());
                    }
                    "" => {}
                    other => println!("membership: unknown command {other:?} (leave, register, crash, quit)"),
                },
                // End of input: keep running and printing.
                Ok(None) | Err(_) => stdin_open = false,
            },
        }
    }
}

/// Registers a member service with this node and says so.
async fn register_service(
    node: &Node,
    context: &str,
    bind: &str,
) -> Result<Registration, Box<dyn std::error::Error>> {
    let (service, mut events) =
        register(ServiceOptions::new(context, [node.addr().to_string()]).bind(bind)).await?;
    println!(
        "membership: member service {} registered with the MSS at {}",
        service.id().addr,
        service.registered_with().map_or(node.addr(), |m| m.addr)
    );
    // Reincarnations (after the MSS was declared failed) are worth a line.
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            if let MemberEvent::Reincarnated { new, .. } = e {
                println!(
                    "membership: member service {} registered again as a new incarnation",
                    new.addr
                );
            }
        }
    });
    Ok(service)
}

/// Prints what an update changed, then the sets as they stand.
fn print_update(start: Instant, sets: &mut Membership, u: &MembershipUpdate) {
    let changes = sets.apply(u);
    if changes.is_empty() {
        return;
    }
    let t = format!("[{:5.1} s]", start.elapsed().as_secs_f64());
    let pad = " ".repeat(t.len());
    let mut first = true;
    for set in [
        Lifecycle::Joined,
        Lifecycle::Members,
        Lifecycle::Suspected,
        Lifecycle::Left,
        Lifecycle::Failed,
    ] {
        let moved: Vec<MemberId> = changes
            .iter()
            .filter(|(_, s)| *s == set)
            .map(|(m, _)| *m)
            .collect();
        if moved.is_empty() {
            continue;
        }
        let what = match set {
            Lifecycle::Members => "alive again",
            Lifecycle::Joined => "joined",
            Lifecycle::Suspected => "suspected",
            Lifecycle::Left => "left",
            Lifecycle::Failed => "failed",
        };
        println!(
            "{} {what}: {}",
            if first { &t } else { &pad },
            addresses(&moved)
        );
        first = false;
    }
    let joined: Vec<MemberId> = changes
        .iter()
        .filter(|(_, s)| *s == Lifecycle::Joined)
        .map(|(m, _)| *m)
        .collect();
    println!(
        "{pad} Members {} | Joined {} | Left {} | Failed {} | Suspected {}",
        addresses(&sets.members()),
        addresses(&joined),
        addresses(&sets.left()),
        addresses(&sets.failed()),
        addresses(&sets.suspected()),
    );
}

/// `[a b c]`, sorted, each address once (two incarnations at one address
/// are one service to a reader).
fn addresses(ms: &[MemberId]) -> String {
    let set: BTreeSet<SocketAddr> = ms.iter().map(|m| m.addr).collect();
    let v: Vec<String> = set.iter().map(ToString::to_string).collect();
    format!("[{}]", v.join(" "))
}

/// The MSS's own view of its peers: how the MSS nodes find and fail each
/// other by gossip.
fn print_node_event(start: Instant, e: Event) {
    let t = format!("[{:5.1} s]", start.elapsed().as_secs_f64());
    match e {
        Event::Peer { mss, change, .. } => {
            let what = match change {
                Change::Joined => "joined",
                Change::Suspected => "suspected",
                Change::Refuted => "alive after all",
                Change::Left => "left",
                Change::Failed => "failed",
            };
            println!("{t} MSS {} {what}", mss.addr);
        }
        Event::Reincarnated { .. } => {
            println!(
                "{t} this MSS was declared failed by its peers: it rejoins as a new incarnation"
            );
        }
        _ => {}
    }
}
