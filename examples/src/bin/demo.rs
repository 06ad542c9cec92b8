//! consort's main demo: three members on loopback UDP, in one process, with
//! no configuration.
//!
//! ```text
//! cargo run --release -p consort-examples --bin demo
//! ```
//!
//! It prints the views as the members find each other, some casts and their
//! delivery at every member, then one member leaves (and gets `Exit`), one is
//! cut off without leaving (its socket dropped, as if killed), and the views
//! that follow; it ends with a summary, and exits 0 if everything happened
//! as virtual synchrony says it must (non-zero, with the reason, otherwise).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use consort_examples::{FAST_PARAMS, short};
use consort_tokio::{JoinOptions, MemberEvent, Running, spawn};
use tokio::sync::mpsc;

const NAMES: [&str; 3] = ["ann", "bob", "cy"];

/// What the printer hears from each member's event loop.
struct Seen {
    who: usize,
    event: MemberEvent,
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!(
            "demo: three members on loopback UDP in one process; views, casts, a leave and a member cut off, then a summary (no flags; RUST_LOG=consort_core=debug shows the protocol)"
        );
        return ExitCode::SUCCESS;
    }
    // RUST_LOG=consort_core=debug (or trace) shows what the protocol does.
    env_logger::init();
    match tokio::time::timeout(Duration::from_secs(30), demo()).await {
        Ok(Ok(summary)) => {
            println!("\n{summary}");
            ExitCode::SUCCESS
        }
        Ok(Err(why)) => {
            eprintln!("demo failed: {why}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("demo failed: it took more than 30 seconds");
            ExitCode::FAILURE
        }
    }
}

async fn demo() -> Result<String, String> {
    let start = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    // (member handle, its task)
    let mut members = Vec::new();
    let mut seed: Option<String> = None;
    println!(
        "consort demo: three members on 127.0.0.1, properties {}",
        JoinOptions::DEFAULT_PROPERTIES
    );
    for (who, name) in NAMES.iter().enumerate() {
        let mut opts = JoinOptions::new("demo")
            .bind("127.0.0.1:0")
            .params(FAST_PARAMS);
        if let Some(s) = &seed {
            opts = opts.seeds([s.clone()]);
        }
        let Running {
            member,
            mut events,
            task,
        } = spawn(opts)
            .await
            .map_err(|e| format!("{name} could not join: {e}"))?;
        let addr = member
            .view()
            .and_then(|v| v.addresses.first().copied())
            .ok_or("no view")?;
        println!(
            "  {name} is endpoint {} at {addr}",
            short(member.my_endpoint())
        );
        seed.get_or_insert(addr.to_string());
        // Each member's events go to the printer, tagged.
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if tx.send(Seen { who, event }).is_err() {
                    break;
                }
            }
        });
        members.push((member, task));
    }
    drop(tx);
    let ids: Vec<_> = members.iter().map(|(m, _)| m.my_endpoint()).collect();
    let name_of = |id| {
        ids.iter()
            .position(|x| *x == id)
            .map_or_else(|| short(id), |i| NAMES[i].to_string())
    };

    let mut state = State::default();
    println!("\n-- the members find each other");
    state
        .until(&mut rx, &name_of, |s| (0..3).all(|w| s.view_size(w) == 3))
        .await?;

    println!("\n-- each member casts three messages");
    for k in 1..=3 {
        for (who, (m, _)) in members.iter().enumerate() {
            let text = format!("{} #{k}", NAMES[who]);
            m.cast(text.into_bytes()).await.map_err(|e| e.to_string())?;
        }
    }
    state
        .until(&mut rx, &name_of, |s| (0..3).all(|w| s.casts[w].len() == 9))
        .await?;
    for (name, casts) in NAMES.iter().zip(&state.casts).skip(1) {
        if !same_per_sender(casts, &state.casts[0]) {
            return Err(format!(
                "{name} delivered other casts, or in another order per sender"
            ));
        }
    }

    println!("\n-- bob leaves");
    let (bob, _) = members.remove(1);
    bob.leave().await.map_err(|e| e.to_string())?;
    state
        .until(&mut rx, &name_of, |s| {
            s.exited[1] && s.view_size(0) == 2 && s.view_size(2) == 2
        })
        .await?;

    println!("\n-- cy is cut off without leaving (its task and socket are dropped)");
    let (cy, cy_task) = members.remove(1);
    cy_task.abort();
    // The handle outlives its task: dropping it now cannot leave for it.
    drop(cy);
    let cut_at = Instant::now();
    state
        .until(&mut rx, &name_of, |s| s.view_size(0) == 1)
        .await?;
    let detected = cut_at.elapsed();

    let (ann, _) = members.remove(0);
    ann.leave().await.map_err(|e| e.to_string())?;
    Ok(format!(
        "summary: {} views installed in all, 9 casts delivered at each of 3 members in the same order per sender, \
         bob left and got Exit, ann noticed cy was gone after {:.1} s; {:.1} s in all",
        state.views,
        detected.as_secs_f64(),
        start.elapsed().as_secs_f64()
    ))
}

fn same_per_sender(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let by = |v: &[(String, String)]| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (s, t) in v {
            m.entry(s.clone()).or_default().push(t.clone());
        }
        m
    };
    by(a) == by(b)
}

#[derive(Default)]
struct State {
    sizes: [usize; 3],
    casts: [Vec<(String, String)>; 3],
    exited: [bool; 3],
    views: usize,
}

impl State {
    fn view_size(&self, who: usize) -> usize {
        self.sizes[who]
    }

    async fn until(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Seen>,
        name_of: &impl Fn(consort_core::EndpointId) -> String,
        done: impl Fn(&State) -> bool,
    ) -> Result<(), String> {
        while !done(self) {
            let Seen { who, event } = rx.recv().await.ok_or("the members stopped")?;
            let me = NAMES[who];
            match event {
                MemberEvent::View(v) => {
                    self.views += 1;
                    self.sizes[who] = v.nmembers();
                    let members: Vec<String> = v.members.iter().map(|m| name_of(*m)).collect();
                    println!("  {me:>3}: view {} [{}]", v.ltime(), members.join(", "));
                }
                MemberEvent::Cast { from, bytes } => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    println!("  {me:>3}: delivers \"{text}\" from {}", name_of(from));
                    self.casts[who].push((name_of(from), text));
                }
                MemberEvent::Block => println!("  {me:>3}: block (view change)"),
                MemberEvent::Exit => {
                    println!("  {me:>3}: exit");
                    self.exited[who] = true;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
