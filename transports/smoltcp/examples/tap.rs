//! A smoltcp member over a Linux TAP device, in one group with an ordinary
//! socket member. Needs root (to create the TAP device):
//!
//! ```text
//! sudo cargo run -p consort-smoltcp --features linux-tap --example tap
//! ```
//!
//! It creates `cstap0`, gives the host's side 10.77.0.1/24 and smoltcp's
//! interface 10.77.0.2/24, starts the smoltcp member, then a tokio member
//! on a kernel UDP socket at 10.77.0.1 that joins it through the TAP link.
//! Both cast, both print what they deliver, the smoltcp member leaves, and
//! the example exits 0 once the tokio member has the view without it.
//!
//! With `--stay`, it starts only the smoltcp member and keeps it in the
//! group, printing views and casts, so other programs can join it, e.g.
//!
//! ```text
//! cargo run --release -p consort-examples --bin mtalk -- --bind 10.77.0.1:0 --seeds 10.77.0.2:4000
//! ```

// An example fails by printing why and exiting non-zero.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::time::Duration;

use consort_smoltcp::tap::{TapOptions, spawn};
use consort_tokio::{JoinOptions, MemberEvent};

const PARAMS: &str = "suspect_sweep=100ms:suspect_max_idle=8:gmp_retry=30ms:gmp_timeout=800ms:heal_sweep=200ms:stable_sweep=100ms";

struct Args {
    device: String,
    address: String,
    host: String,
    port: u16,
    group: String,
    stay: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        device: "cstap0".into(),
        address: "10.77.0.2/24".into(),
        host: "10.77.0.1/24".into(),
        port: 4000,
        group: "tap-demo".into(),
        stay: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => a.device = value()?,
            "--address" => a.address = value()?,
            "--host" => a.host = value()?,
            "--port" => a.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--group" => a.group = value()?,
            "--stay" => a.stay = true,
            "--help" | "-h" => {
                println!(
                    "tap [--device cstap0] [--address 10.77.0.2/24] [--host 10.77.0.1/24] [--port 4000] [--group tap-demo] [--stay]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other} (try --help)")),
        }
    }
    Ok(a)
}

fn ip(cidr: &str) -> &str {
    cidr.split('/').next().unwrap_or(cidr)
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match args() {
        Ok(a) => tokio::time::timeout(Duration::from_secs(60), run(a))
            .await
            .unwrap_or_else(|_| Err("took more than 60 s".into())),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tap: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(a: Args) -> Result<(), String> {
    let smol_addr = format!("{}:{}", ip(&a.address), a.port);
    let smol = spawn(
        JoinOptions::new(&a.group).bind(&smol_addr).params(PARAMS),
        TapOptions::new(&a.device, &a.address).host(&a.host),
    )
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "smoltcp member {:?} at {smol_addr} on {}",
        smol.member.my_endpoint(),
        a.device
    );

    if a.stay {
        let mut events = smol.events;
        while let Some(ev) = events.next().await {
            print_event("smoltcp", &ev);
        }
        return Ok(());
    }

    let kernel = consort_tokio::spawn(
        JoinOptions::new(&a.group)
            .bind(format!("{}:0", ip(&a.host)))
            .params(PARAMS)
            .seeds([smol_addr.clone()])
            .join_timeout(Duration::from_secs(10)),
    )
    .await
    .map_err(|e| format!("kernel-socket member: {e}"))?;
    println!("kernel-socket member {:?}", kernel.member.my_endpoint());

    let (mut smol_events, mut kernel_events) = (smol.events, kernel.events);
    // Both wait for the view of two, then each casts three lines.
    for (name, events) in [
        ("smoltcp", &mut smol_events),
        ("kernel", &mut kernel_events),
    ] {
        loop {
            let ev = events.next().await.ok_or("member stopped")?;
            print_event(name, &ev);
            if matches!(&ev, MemberEvent::View(v) if v.nmembers() == 2) {
                break;
            }
        }
    }
    for k in 0..3 {
        smol.member
            .cast(format!("smoltcp says {k}").into_bytes())
            .await
            .map_err(|e| e.to_string())?;
        kernel
            .member
            .cast(format!("kernel says {k}").into_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    for (name, events) in [
        ("smoltcp", &mut smol_events),
        ("kernel", &mut kernel_events),
    ] {
        let mut casts = 0;
        while casts < 6 {
            let ev = events.next().await.ok_or("member stopped")?;
            print_event(name, &ev);
            casts += usize::from(matches!(ev, MemberEvent::Cast { .. }));
        }
    }
    println!("the smoltcp member leaves");
    smol.member.leave().await.map_err(|e| e.to_string())?;
    loop {
        let ev = kernel_events.next().await.ok_or("kernel member stopped")?;
        print_event("kernel", &ev);
        if matches!(&ev, MemberEvent::View(v) if v.nmembers() == 1) {
            break;
        }
    }
    println!(
        "done: 12 deliveries over the TAP link, and the leave seen by the kernel-socket member"
    );
    Ok(())
}

fn print_event(who: &str, ev: &MemberEvent) {
    match ev {
        MemberEvent::View(v) => println!(
            "[{who}] view {:?}: {} members {:?}",
            v.id,
            v.nmembers(),
            v.addresses
        ),
        MemberEvent::Cast { from, bytes } => {
            println!(
                "[{who}] cast from {from:?}: {}",
                String::from_utf8_lossy(bytes)
            )
        }
        MemberEvent::Exit => println!("[{who}] exit"),
        _ => {}
    }
}
