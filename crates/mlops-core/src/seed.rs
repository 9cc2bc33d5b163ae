//! Seeds: every random choice in the toolkit takes one from config, so runs repeat exactly.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

/// A seed from configuration; 42 unless set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seed(pub u64);

impl Default for Seed {
    fn default() -> Self {
        Seed(42)
    }
}

impl Seed {
    /// A fast, portable random generator: the same seed gives the same stream on every platform.
    pub fn rng(self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.0)
    }

    /// An independent seed for a named sub-task, so that adding one consumer does not shift the
    /// stream another one sees.
    pub fn derive(self, label: &str) -> Seed {
        let digest = crate::hash::sha256_bytes(format!("{}:{label}", self.0).as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Seed(u64::from_le_bytes(first))
    }
}

/// A stream of random choices from a seed: bounded integers, unit floats, shuffles.
#[derive(Clone, Debug)]
pub struct Draws(ChaCha8Rng);

impl Seed {
    /// The random choices this seed makes.
    pub fn draws(self) -> Draws {
        Draws(self.rng())
    }
}

impl Draws {
    /// A uniform integer in `0..n` (Lemire's method: no modulo bias); 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.below_with(n, rejection_threshold(n))
    }

    /// `count` uniform integers in `0..n`: the numbers `count` calls of [`Draws::below`] give,
    /// with the rejection threshold (a 64-bit division, most of a draw's time) computed once.
    pub fn below_many(mut self, n: u64, count: usize) -> impl Iterator<Item = u64> {
        let threshold = rejection_threshold(n);
        (0..count).map(move |_| self.below_with(n, threshold))
    }

    /// Lemire's method: the high half of `x * n`, unless the low half falls below `threshold`.
    fn below_with(&mut self, n: u64, threshold: u64) -> u64 {
        use rand_core::Rng;
        if n == 0 {
            return 0;
        }
        loop {
            let m = u128::from(self.0.next_u64()) * u128::from(n);
            if m as u64 >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        use rand_core::Rng;
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Shuffles in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// `0..n` in random order.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        self.shuffle(&mut v);
        v
    }
}

/// `2^64 mod n`: below it the low half of `x * n` is rejected (0 for `n` = 0).
fn rejection_threshold(n: u64) -> u64 {
    n.wrapping_neg().checked_rem(n).unwrap_or(0)
}
