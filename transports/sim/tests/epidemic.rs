//! The epidemic service's campaign as a test: 50 seeds of the `check`
//! configuration must pass and their faults must bite; and the checker
//! must be able to fail (a broken detector is caught).

// Helpers outside `#[test]` functions fail tests the same way: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use consort_sim::epidemic::{CheckConfig, EFault, Exercised, run_check};
use consort_sim::parallel::over_seeds;

fn check_config() -> CheckConfig {
    CheckConfig::new(
        64,
        512,
        vec![
            EFault::Loss,
            EFault::Dup,
            EFault::Partition,
            EFault::Crash,
            EFault::Restart,
        ],
    )
}

fn replay(seed: u64) -> String {
    format!(
        "cargo run --release -p consort-sim --bin epidemic -- check --seeds 1 --first-seed {seed} --nodes 64 --services 512 --faults loss,dup,partition,crash,restart -v"
    )
}

#[test]
fn fifty_seeds_of_the_check_campaign_pass_and_their_faults_bite() {
    let config = check_config();
    let outcomes = over_seeds(0..50, |seed| run_check(&config, seed));
    let mut total = Exercised::default();
    let mut failures = Vec::new();
    for o in &outcomes {
        total.add(&o.exercised);
        if !o.passed() {
            failures.push(format!(
                "seed {}: {}\n  replay: {}",
                o.seed,
                o.violations
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  "),
                replay(o.seed)
            ));
        }
    }
    println!("{total}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(total.runs, 50);
    // Every kind of fault happened, and was detected.
    assert!(total.net.losses > 0 && total.net.duplicates > 0 && total.cut > 0);
    assert!(total.mss_crashes > 0 && total.ms_crashes > 0);
    assert!(total.mss_restarts > 0 && total.ms_restarts > 0);
    assert!(total.counts.mss_failed > 0 && total.counts.ms_failed > 0);
    assert!(total.counts.suspicions > 0 && total.counts.refutations > 0);
    assert!(total.completeness_checks > 0);
}

#[test]
fn runs_replay_exactly() {
    let config = check_config();
    let a = run_check(&config, 7);
    let b = run_check(&config, 7);
    assert_eq!(a.exercised.one_line(), b.exercised.one_line());
    assert_eq!(a.exercised.net, b.exercised.net);
}

#[test]
fn the_checker_catches_a_detector_that_never_fails_anyone() {
    // A member service is never failed by its MSS, and an MSS only after
    // an hour; the bounds stay those of the campaign's settings, so
    // completeness must be violated, loudly.
    let mut config = CheckConfig::new(16, 64, vec![EFault::Crash]);
    config.service.fail_misses = u8::MAX;
    config.service.suspect_misses = u8::MAX;
    config.service.fail_after = Duration::from_secs(3600);
    config.service.suspect_after = Duration::from_secs(3600);
    let o = run_check(&config, 3);
    assert!(!o.passed());
    assert!(
        o.violations.iter().any(|v| v.starts_with("completeness")),
        "{:?}",
        o.violations
    );
}

#[test]
fn a_run_whose_faults_never_happen_fails() {
    // Loss at rate 0 never bites: the run proves nothing about loss.
    let mut config = CheckConfig::new(8, 32, vec![EFault::Loss]);
    config.loss = Some(0.0);
    let o = run_check(&config, 1);
    assert!(
        o.violations.iter().any(|v| v.contains("never happened")),
        "{:?}",
        o.violations
    );
}

#[test]
fn unknown_faults_and_bad_sizes_are_errors() {
    assert!(EFault::parse("reorder").is_err());
    assert!(CheckConfig::new(2, 10, vec![]).validate().is_err());
    let mut c = CheckConfig::new(8, 10, vec![]);
    c.loss = Some(0.1);
    assert!(c.validate().unwrap_err().contains("not in --faults"));
}
