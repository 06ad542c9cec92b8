//! Seeds run over threads: every campaign runs many independent seeds,
//! and each seed's run is deterministic wherever it runs.
//!
//! ```
//! let squares = consort_sim::parallel::over_seeds(3..7, |seed| seed * seed);
//! assert_eq!(squares, [9, 16, 25, 36]);
//! ```

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Runs `job` for every seed of `seeds`, on as many threads as there are
/// cores (at most one per seed), and returns the results in seed order.
/// A job that panics ends the run with that panic, once every thread has
/// stopped.
pub fn over_seeds<T: Send>(seeds: Range<u64>, job: impl Fn(u64) -> T + Sync) -> Vec<T> {
    let count = usize::try_from(seeds.end.saturating_sub(seeds.start)).unwrap_or(usize::MAX);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count.max(1));
    // An index, not the seed itself: counting past `seeds.end` cannot wrap.
    let next = AtomicU64::new(0);
    let done: Mutex<Vec<(u64, T)>> = Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= seeds.end.saturating_sub(seeds.start) {
                        break;
                    }
                    let seed = seeds.start + i;
                    let result = job(seed);
                    done.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((seed, result));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(PoisonError::into_inner);
    done.sort_by_key(|&(seed, _)| seed);
    done.into_iter().map(|(_, result)| result).collect()
}
