//! Seeded randomness for the simulator.
//!
//! Every random choice of a run (fault per datagram, workload timing and
//! sizes, endpoint seeds) comes from a stream derived from the run's seed,
//! never from time or OS entropy, so that a seed replays exactly. Each
//! consumer gets its own stream ([`Rng::derive`]) so that, say, adding a
//! workload draw does not shift every later network fault.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, statistically sound for
/// simulation choices. Not for keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

/// SplitMix64's increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a strong 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// An independent stream for consumer `tag` of run `seed`.
    ///
    /// ```
    /// use consort_sim::Rng;
    /// let mut a = Rng::derive(7, 1);
    /// let mut b = Rng::derive(7, 2);
    /// assert_ne!(a.next_u64(), b.next_u64());
    /// assert_eq!(Rng::derive(7, 1).next_u64(), Rng::derive(7, 1).next_u64());
    /// ```
    pub fn derive(seed: u64, tag: u64) -> Self {
        // Mixing both halves keeps nearby seeds and tags far apart.
        Rng::new(mix(seed.wrapping_mul(GAMMA) ^ mix(tag.wrapping_add(GAMMA))))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-high (Lemire) without rejection: the bias is below 2^-32
        // for the ranges the simulator uses, far under anything observable.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        // 53 bits: exactly the mantissa of an f64.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (0 never, 1 always).
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_roughly_uniform() {
        let mut a = Rng::new(3);
        let mut b = Rng::new(3);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[a.below(10) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_500..10_500).contains(c)),
            "{counts:?}"
        );
        let hits = (0..100_000).filter(|_| a.chance(0.3)).count();
        assert!((29_000..31_000).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| a.chance(0.0)));
        assert!((0..1000).all(|_| a.chance(1.0)));
        assert!((0..1000).all(|_| (5..=9).contains(&a.between(5, 9))));
        assert_eq!(a.between(4, 4), 4);
    }
}
