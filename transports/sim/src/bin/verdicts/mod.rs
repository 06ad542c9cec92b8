//! What the campaign binaries (`campaign`, `epidemic check`) print once
//! their seeds have run, the same way for both.

use std::fmt::Display;
use std::process::ExitCode;

/// What a seed exercised, summed over the campaign: the group
/// simulator's [`consort_sim::Exercised`] or the epidemic one's.
pub(crate) trait Tally: Default + Display {
    /// Adds one seed's counts.
    fn add(&mut self, other: &Self);
    /// One seed's counts on one line.
    fn one_line(&self) -> String;
}

impl Tally for consort_sim::Exercised {
    fn add(&mut self, other: &Self) {
        consort_sim::Exercised::add(self, other);
    }
    fn one_line(&self) -> String {
        consort_sim::Exercised::one_line(self)
    }
}

impl Tally for consort_sim::epidemic::Exercised {
    fn add(&mut self, other: &Self) {
        consort_sim::epidemic::Exercised::add(self, other);
    }
    fn one_line(&self) -> String {
        consort_sim::epidemic::Exercised::one_line(self)
    }
}

/// One seed's outcome, as the verdicts need it: the group simulator's
/// [`consort_sim::Report`] or the epidemic one's `Outcome`.
pub(crate) trait Seed {
    /// What the seed's run exercised.
    type Tally: Tally;
    /// A violation, printed as it is.
    type Violation: Display;
    /// The seed.
    fn seed(&self) -> u64;
    /// What the run exercised.
    fn exercised(&self) -> &Self::Tally;
    /// What it got wrong: nothing if it passed.
    fn violations(&self) -> &[Self::Violation];
}

impl Seed for consort_sim::Report {
    type Tally = consort_sim::Exercised;
    type Violation = consort_sim::Violation;
    fn seed(&self) -> u64 {
        self.seed
    }
    fn exercised(&self) -> &Self::Tally {
        &self.exercised
    }
    fn violations(&self) -> &[Self::Violation] {
        &self.violations
    }
}

impl Seed for consort_sim::epidemic::Outcome {
    type Tally = consort_sim::epidemic::Exercised;
    type Violation = String;
    fn seed(&self) -> u64 {
        self.seed
    }
    fn exercised(&self) -> &Self::Tally {
        &self.exercised
    }
    fn violations(&self) -> &[Self::Violation] {
        &self.violations
    }
}

/// Prints each seed's verdict (with `verbose`), the total exercised, every
/// failing seed with at most `shown` of its violations and the command that
/// replays it, what `idle` finds the whole campaign never exercised, then
/// `N passed, F failed`; fails if any seed did or `idle` found anything.
pub(crate) fn print<S: Seed>(
    seeds: &[S],
    verbose: bool,
    shown: usize,
    replay: impl Fn(u64) -> String,
    idle: impl Fn(&S::Tally) -> Vec<&'static str>,
) -> ExitCode {
    let mut total = S::Tally::default();
    for s in seeds {
        total.add(s.exercised());
        if verbose {
            let verdict = if s.violations().is_empty() {
                "ok  "
            } else {
                "FAIL"
            };
            println!(
                "seed {:>6} {verdict} {}",
                s.seed(),
                s.exercised().one_line()
            );
        }
    }
    println!("{total}");
    let mut failed = 0u64;
    for s in seeds.iter().filter(|s| !s.violations().is_empty()) {
        failed += 1;
        println!(
            "\nseed {} FAILED ({} violations):",
            s.seed(),
            s.violations().len()
        );
        for v in s.violations().iter().take(shown) {
            println!("  {v}");
        }
        if s.violations().len() > shown {
            println!("  ... and {} more", s.violations().len() - shown);
        }
        println!("  replay: {}", replay(s.seed()));
    }
    let idle = idle(&total);
    for what in &idle {
        println!("\ncampaign: {what} in any run: this campaign proves nothing about it");
    }
    println!("{} passed, {failed} failed", seeds.len() as u64 - failed);
    if failed == 0 && idle.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
