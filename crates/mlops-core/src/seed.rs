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
