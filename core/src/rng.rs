//! A small deterministic random generator (SplitMix64).
//!
//! The core needs a little randomness (the Drop layer, jitter, later gossip
//! peers) but must stay deterministic for the simulator, so it never draws
//! entropy itself: the runtime seeds it through [`Config::seed`](crate::Config).

/// SplitMix64: tiny, fast, and good enough for protocol choices (not for keys).
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p` (clamped to 0..=1).
    pub(crate) fn chance(&mut self, p: f32) -> bool {
        // 24 random bits are plenty for a rate and exact in an f32.
        let x = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        x < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_rates_are_plausible() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        assert_eq!(a.next_u64(), b.next_u64());
        let hits = (0..10_000).filter(|_| a.chance(0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| a.chance(0.0)));
        assert!((0..1000).all(|_| a.chance(1.0)));
    }
}
