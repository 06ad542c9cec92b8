//! netns_switch: a userspace Ethernet switch whose every port is the far
//! end of a lossy, slow link, for the multi-host test
//! (`tests/tests/multi_host.rs`) on kernels without `sch_netem`.
//!
//! It runs in the hub namespace in place of a Linux bridge, with a packet
//! socket on the hub's end of each member's veth. Every frame a member
//! sends is lost with the given probability (each link drawing from its own
//! seeded stream), else held for the delay and then forwarded: to the
//! port its destination was learned on, or to every other port when the
//! destination is broadcast, multicast or not yet known. That is what
//! `tc qdisc add dev eth0 root netem loss 10% delay 20ms` on each member's
//! side does, with a bridge: each link impairs what its member sends, so a
//! round trip between two members crosses two delays.
//!
//! ```text
//! netns_switch --ports m0,m1,m2,m3 --loss-percent 10 --delay-ms 20 --seed 1 \
//!              [--queue-frames 1000]
//! ```
//!
//! It prints `ready` once every port's socket is bound, or `error <what>`
//! and exits. Commands, one a line on standard input: `stats` prints, for
//! each port,
//!
//! ```text
//! port <name> in <n> lost <n> overflow <n> malformed <n> forwarded <n> sent <n> send_errors <n> kernel_drops <n> queued_mean_us <n> queued_max_us <n>
//! ```
//!
//! then `end`. End of input ends it, so it never outlives the test. A port
//! that fails (set down, deleted) is logged on standard error once, its
//! frames are counted as `send_errors`, and the others carry on.

mod packet;
mod switch;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use packet::{PacketSocket, Received};
use switch::{Config, Switch};

const USAGE: &str = "usage: netns_switch --ports IF,IF,... --loss-percent P --delay-ms MS \
                     --seed N [--queue-frames N]";
/// How often the loop looks at standard input when no frame is due.
const IDLE: Duration = Duration::from_millis(20);

#[derive(Debug)]
struct Args {
    ports: Vec<String>,
    config: Config,
}

fn parse(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut ports = Vec::new();
    let mut config = Config {
        loss_ppm: 0,
        delay: Duration::ZERO,
        // netem's default `limit`.
        queue_frames: 1000,
        seed: 0,
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
            "--ports" => ports = value.split(',').map(String::from).collect(),
            "--loss-percent" => match number()? {
                p @ 0..=100 => config.loss_ppm = p as u32 * 10_000,
                p => return Err(format!("--loss-percent {p}: at most 100")),
            },
            "--delay-ms" => config.delay = Duration::from_millis(number()?),
            "--seed" => config.seed = number()?,
            "--queue-frames" => config.queue_frames = number()? as usize,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if ports.len() < 2 {
        return Err("--ports needs two ports or more".into());
    }
    Ok(Args { ports, config })
}

/// Standard input, line by line, from a thread of its own: the loop below
/// waits on the sockets only.
fn commands() -> mpsc::Receiver<Option<String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(None);
    });
    rx
}

/// Logs a port's troubles when they start and when they end, not once per
/// frame: a port set down refuses every frame sent to it.
struct Health {
    names: Vec<String>,
    failing: Vec<bool>,
}

impl Health {
    fn failed(&mut self, port: usize, what: &str, e: &std::io::Error) {
        if !std::mem::replace(&mut self.failing[port], true) {
            eprintln!(
                "netns_switch: port {}: {what}: {e}; its frames are lost until it works again",
                self.names[port]
            );
        }
    }

    fn worked(&mut self, port: usize) {
        if std::mem::replace(&mut self.failing[port], false) {
            eprintln!("netns_switch: port {}: working again", self.names[port]);
        }
    }
}

fn print_stats(
    switch: &Switch,
    sockets: &[PacketSocket],
    names: &[String],
    kernel_drops: &mut [u64],
) {
    let mut out = std::io::stdout().lock();
    for (i, name) in names.iter().enumerate() {
        // The kernel's count resets as it is read: keep the total here.
        kernel_drops[i] += sockets[i].kernel_drops().unwrap_or(0);
        let c = switch.counts(i);
        let _ = writeln!(
            out,
            "port {name} in {} lost {} overflow {} malformed {} forwarded {} sent {} \
             send_errors {} kernel_drops {} queued_mean_us {} queued_max_us {}",
            c.frames_in,
            c.lost,
            c.overflow,
            c.malformed,
            c.forwarded,
            c.sent,
            c.send_errors,
            kernel_drops[i],
            c.queued_mean().as_micros(),
            c.queued_max.as_micros()
        );
    }
    let _ = writeln!(out, "end");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("netns_switch: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut sockets = Vec::new();
    for name in &args.ports {
        match PacketSocket::open(name) {
            Ok(s) => sockets.push(s),
            Err(e) => {
                println!("error port {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut switch = Switch::new(sockets.len(), args.config);
    let mut health = Health {
        names: args.ports.clone(),
        failing: vec![false; sockets.len()],
    };
    let mut kernel_drops = vec![0; sockets.len()];
    let commands = commands();
    println!("ready");
    let _ = std::io::stdout().flush();

    let mut buffer = vec![0u8; packet::BUFFER];
    loop {
        loop {
            match commands.try_recv() {
                Ok(Some(line)) if line.trim() == "stats" => {
                    print_stats(&switch, &sockets, &args.ports, &mut kernel_drops);
                }
                Ok(Some(line)) => eprintln!("netns_switch: unknown command {line:?}"),
                Ok(None) | Err(mpsc::TryRecvError::Disconnected) => return ExitCode::SUCCESS,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        let timeout = switch
            .poll_timeout()
            .map_or(IDLE, |due| due.saturating_duration_since(Instant::now()))
            .min(IDLE);
        let ready = match packet::wait(&sockets, timeout) {
            Ok(r) => r,
            Err(e) => {
                println!("error waiting for frames: {e}");
                return ExitCode::FAILURE;
            }
        };
        for (port, socket) in sockets.iter().enumerate() {
            if !ready[port] {
                continue;
            }
            // Drain it: the receive time is the frame's arrival, so read
            // now rather than after a later wait.
            loop {
                match socket.receive(&mut buffer) {
                    Ok(Received::Nothing) => break,
                    Ok(Received::Outgoing) => {}
                    Ok(Received::Frame(frame)) => {
                        health.worked(port);
                        switch.receive(Instant::now(), port, frame);
                    }
                    Ok(Received::Malformed(why)) => {
                        // The first says what they are; a flood of them
                        // must not flood the log too.
                        if switch.counts(port).malformed == 0 {
                            eprintln!(
                                "netns_switch: port {}: dropped a frame: {why} \
                                 (more are only counted)",
                                args.ports[port]
                            );
                        }
                        switch.receive_malformed(port);
                    }
                    Err(e) => {
                        health.failed(port, "receiving", &e);
                        break;
                    }
                }
            }
        }
        let now = Instant::now();
        while let Some(t) = switch.poll_transmit(now) {
            for port in t.to {
                match sockets[port].send(&t.frame) {
                    Ok(()) => {
                        health.worked(port);
                        switch.sent(port);
                    }
                    Err(e) => {
                        health.failed(port, "sending", &e);
                        switch.send_failed(port);
                    }
                }
            }
        }
    }
}
