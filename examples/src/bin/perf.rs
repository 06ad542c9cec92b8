//! perf: Ensemble's perf demo. One sender and `members - 1` receivers, each
//! a separate process on loopback, and in the same run a raw-UDP baseline:
//! the same sender blasting the same datagrams to as many plain UDP
//! receivers.
//!
//! ```text
//! cargo run --release -p consort-examples --bin perf -- --members 4 --size 1024 --seconds 5
//! ```
//!
//! Prints messages/s and MB/s delivered per receiver, latency p50/p99, and
//! ends with `ratio_vs_raw_udp=X.XX` (consort's throughput over raw UDP's).

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use consort_examples::FAST_PARAMS;
use consort_tokio::{JoinOptions, MemberEvent, join};

/// Throughput and latency of a group against raw UDP, on one host.
#[derive(Parser, Debug, Clone)]
#[command(
    version,
    about = "Ensemble's perf on consort: one sender, the other members receive; beside a raw-UDP baseline"
)]
struct Args {
    /// Members of the group (one sender, the rest receivers).
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// Bytes per message.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// How long the sender sends.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Group properties.
    #[arg(long, default_value = "Gmp:Sync:Heal:Frag:Suspect:Flow:Slander")]
    properties: String,
    /// Group parameters.
    #[arg(long, default_value = FAST_PARAMS)]
    params: String,
    /// (internal) the part this process plays.
    #[arg(long, value_enum, default_value = "run", hide = true)]
    role: Role,
    /// (internal) the group, or the raw receiver's port.
    #[arg(long, default_value = "", hide = true)]
    tag: String,
    /// (internal) where to find the group / the raw receivers.
    #[arg(long, value_delimiter = ',', hide = true)]
    peers: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Run,
    Sender,
    Receiver,
    RawSender,
    RawReceiver,
}

/// What a receiver reports, one line: `result <msgs> <bytes> <secs> <p50 us> <p99 us>`.
#[derive(Debug, Default, Clone, Copy)]
struct Report {
    msgs: u64,
    bytes: u64,
    secs: f64,
    p50: u64,
    p99: u64,
}

impl Report {
    fn parse(line: &str) -> Option<Report> {
        let mut it = line.strip_prefix("result ")?.split_whitespace();
        let mut next = || it.next()?.parse::<f64>().ok();
        Some(Report {
            msgs: next()? as u64,
            bytes: next()? as u64,
            secs: next()?,
            p50: next()? as u64,
            p99: next()? as u64,
        })
    }

    fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.msgs as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Megabytes per second of payload actually delivered.
    fn megabytes(&self) -> f64 {
        if self.secs > 0.0 {
            self.bytes as f64 / self.secs / 1e6
        } else {
            0.0
        }
    }
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// A message: sequence number and send time, then filler.
fn message(seq: u64, size: usize) -> Vec<u8> {
    let mut m = vec![0x5au8; size.max(16)];
    m[..8].copy_from_slice(&seq.to_be_bytes());
    m[8..16].copy_from_slice(&micros_now().to_be_bytes());
    m
}

fn summarize(latencies: &mut [u64], msgs: u64, bytes: u64, secs: f64) -> String {
    latencies.sort_unstable();
    format!(
        "result {msgs} {bytes} {secs:.6} {} {}",
        percentile(latencies, 0.5),
        percentile(latencies, 0.99)
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    // RUST_LOG=consort_core=debug (or trace) shows what the protocol does.
    env_logger::init();
    let args = Args::parse();
    let result = match args.role {
        Role::Run => run(&args),
        Role::Sender => sender(&args).await,
        Role::Receiver => receiver(&args).await,
        Role::RawSender => raw_sender(&args),
        Role::RawReceiver => raw_receiver(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perf ({:?}): {e}", args.role);
            ExitCode::FAILURE
        }
    }
}

/// A child process that is killed when dropped, so that a run that fails
/// half-way (a child that stops early, a bad size) leaves none behind.
struct KillOnDrop(Child);

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Exited already when all went well: then both calls do nothing.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn child(args: &Args, role: Role, tag: &str, peers: &[String]) -> Result<KillOnDrop, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new(exe)
        .args([
            "--role",
            &format!("{role:?}").to_lowercase().replace("raw", "raw-"),
        ])
        .args([
            "--members",
            &args.members.to_string(),
            "--size",
            &args.size.to_string(),
        ])
        .args([
            "--seconds",
            &args.seconds.to_string(),
            "--properties",
            &args.properties,
            "--params",
            &args.params,
        ])
        .args(["--tag", tag])
        .args(if peers.is_empty() {
            vec![]
        } else {
            vec!["--peers".to_string(), peers.join(",")]
        })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map(KillOnDrop)
        .map_err(|e| e.to_string())
}

fn read_line(c: &mut BufReader<std::process::ChildStdout>, want: &str) -> Result<String, String> {
    let mut line = String::new();
    loop {
        line.clear();
        if c.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err(format!("a child stopped before printing {want:?}"));
        }
        if line.starts_with(want) {
            return Ok(line.trim().to_string());
        }
    }
}

/// The parent: runs the consort group, then the raw baseline, and compares.
fn run(args: &Args) -> Result<(), String> {
    if args.members < 2 {
        return Err("--members must be at least 2".into());
    }
    let receivers = args.members - 1;
    println!(
        "perf: {} members (1 sender, {receivers} receivers), {} B messages, {} s, on loopback",
        args.members, args.size, args.seconds
    );

    // consort: the sender starts the group, receivers join it.
    let group = format!("perf-{}", std::process::id());
    let mut sender = child(args, Role::Sender, &group, &[])?;
    let mut sender_out = BufReader::new(sender.stdout.take().ok_or("no stdout")?);
    let addr = read_line(&mut sender_out, "addr ")?
        .trim_start_matches("addr ")
        .to_string();
    let mut recv: Vec<(KillOnDrop, BufReader<std::process::ChildStdout>)> = Vec::new();
    for _ in 0..receivers {
        let mut c = child(args, Role::Receiver, &group, std::slice::from_ref(&addr))?;
        let out = BufReader::new(c.stdout.take().ok_or("no stdout")?);
        recv.push((c, out));
    }
    read_line(&mut sender_out, "ready")?;
    let mut stdin = sender.stdin.take().ok_or("no stdin")?;
    writeln!(stdin, "go").map_err(|e| e.to_string())?;
    let sent = read_line(&mut sender_out, "sent ")?;
    let mut consort = Vec::new();
    for (c, out) in recv.iter_mut() {
        let line = read_line(out, "result ")?;
        consort.push(Report::parse(&line).ok_or("bad result line")?);
        let _ = c.wait();
    }
    let _ = sender.wait();

    // Raw UDP: the same sender process kind blasting the same datagrams.
    let mut raw_recv = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..receivers {
        let mut c = child(args, Role::RawReceiver, "", &[])?;
        let mut out = BufReader::new(c.stdout.take().ok_or("no stdout")?);
        let port = read_line(&mut out, "addr ")?
            .trim_start_matches("addr ")
            .to_string();
        ports.push(port);
        raw_recv.push((c, out));
    }
    let mut raw_sender = child(args, Role::RawSender, "", &ports)?;
    let mut raw_out = BufReader::new(raw_sender.stdout.take().ok_or("no stdout")?);
    let raw_sent = read_line(&mut raw_out, "sent ")?;
    let mut raw = Vec::new();
    for (c, out) in raw_recv.iter_mut() {
        let line = read_line(out, "result ")?;
        raw.push(Report::parse(&line).ok_or("bad result line")?);
        let _ = c.wait();
    }
    let _ = raw_sender.wait();

    println!("\nconsort ({}; {sent})", args.properties);
    for (i, r) in consort.iter().enumerate() {
        println!(
            "  receiver {i}: {:>9.0} msgs/s {:>8.2} MB/s  latency p50 {} us p99 {} us  ({} msgs)",
            r.rate(),
            r.megabytes(),
            r.p50,
            r.p99,
            r.msgs
        );
    }
    println!("raw UDP ({raw_sent})");
    for (i, r) in raw.iter().enumerate() {
        println!(
            "  receiver {i}: {:>9.0} msgs/s {:>8.2} MB/s  latency p50 {} us p99 {} us  ({} msgs)",
            r.rate(),
            r.megabytes(),
            r.p50,
            r.p99,
            r.msgs
        );
    }
    let avg = |v: &[Report]| v.iter().map(Report::rate).sum::<f64>() / v.len().max(1) as f64;
    let ratio = if avg(&raw) > 0.0 {
        avg(&consort) / avg(&raw)
    } else {
        0.0
    };
    println!("ratio_vs_raw_udp={ratio:.2}");
    Ok(())
}

/// The group's sender: waits for the whole group and the parent's go, casts
/// for `seconds`, then says how much it sent.
async fn sender(args: &Args) -> Result<(), String> {
    let opts = JoinOptions::new(&args.tag)
        .properties(&args.properties)
        .params(&args.params)
        .bind("127.0.0.1:0");
    let (member, mut events) = join(opts).await.map_err(|e| e.to_string())?;
    let addr = member
        .view()
        .and_then(|v| v.addresses.first().copied())
        .ok_or("no view")?;
    println!("addr {addr}");
    loop {
        match events.next().await {
            Some(MemberEvent::View(v)) if v.nmembers() == args.members => break,
            Some(_) => {}
            None => return Err("left before the group formed".into()),
        }
    }
    println!("ready");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    // Keep draining our own events (self-deliveries) so the member never stalls.
    tokio::spawn(async move { while events.next().await.is_some() {} });
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < Duration::from_secs(args.seconds) {
        member
            .cast(message(seq, args.size))
            .await
            .map_err(|e| e.to_string())?;
        seq += 1;
    }
    // The end marker tells receivers to stop.
    member
        .cast(vec![0xffu8; 16])
        .await
        .map_err(|e| e.to_string())?;
    println!("sent {seq} msgs in {:.2} s", start.elapsed().as_secs_f64());
    // Stay until the receivers have everything, then leave.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = member.leave().await;
    Ok(())
}

async fn receiver(args: &Args) -> Result<(), String> {
    let opts = JoinOptions::new(&args.tag)
        .properties(&args.properties)
        .params(&args.params)
        .bind("127.0.0.1:0")
        .seeds(args.peers.clone());
    let (member, mut events) = join(opts).await.map_err(|e| e.to_string())?;
    let (mut msgs, mut bytes) = (0u64, 0u64);
    let mut lat = Vec::new();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while let Some(ev) = events.next().await {
        if let MemberEvent::Cast { bytes: b, .. } = ev {
            if b.len() == 16 && b.iter().all(|x| *x == 0xff) {
                break;
            }
            let now = Instant::now();
            first.get_or_insert(now);
            last = now;
            msgs += 1;
            bytes += b.len() as u64;
            if b.len() >= 16 {
                let sent = u64::from_be_bytes(b[8..16].try_into().unwrap_or([0; 8]));
                lat.push(micros_now().saturating_sub(sent));
            }
        }
    }
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64());
    println!("{}", summarize(&mut lat, msgs, bytes, secs));
    let _ = member.leave().await;
    Ok(())
}

fn raw_sender(args: &Args) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < Duration::from_secs(args.seconds) {
        let m = message(seq, args.size);
        for p in &args.peers {
            // A full socket buffer drops, as UDP does.
            let _ = socket.send_to(&m, p);
        }
        seq += 1;
    }
    std::thread::sleep(Duration::from_millis(200));
    for p in &args.peers {
        for _ in 0..10 {
            let _ = socket.send_to(&[0xffu8; 16], p);
        }
    }
    println!("sent {seq} msgs in {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn raw_receiver(args: &Args) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    println!("addr {}", socket.local_addr().map_err(|e| e.to_string())?);
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(args.seconds + 10)))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; args.size.max(16) + 64];
    let (mut msgs, mut bytes) = (0u64, 0u64);
    let mut lat = Vec::new();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        let b = &buf[..n];
        if n == 16 && b.iter().all(|x| *x == 0xff) {
            break;
        }
        let now = Instant::now();
        first.get_or_insert(now);
        last = now;
        msgs += 1;
        bytes += n as u64;
        if n >= 16 {
            let sent = u64::from_be_bytes(b[8..16].try_into().unwrap_or([0; 8]));
            lat.push(micros_now().saturating_sub(sent));
        }
    }
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64());
    println!("{}", summarize(&mut lat, msgs, bytes, secs));
    Ok(())
}
