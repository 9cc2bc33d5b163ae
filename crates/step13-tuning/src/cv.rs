//! Cross-validation folds.

use mlops_core::Seed;
use serde::{Deserialize, Serialize};

use crate::{Result, TuneError};

/// A cross-validation scheme (scikit-learn's `KFold`, `StratifiedKFold`, `TimeSeriesSplit`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Cv {
    /// `k` consecutive (or shuffled) blocks, each the validation part once.
    KFold {
        /// Folds (>= 2).
        k: usize,
        /// Shuffle the rows (seeded) before cutting blocks.
        #[serde(default)]
        shuffle: bool,
    },
    /// Like k-fold, with every class spread evenly over the folds.
    StratifiedKFold {
        /// Folds (>= 2).
        k: usize,
    },
    /// Expanding window over rows in time order: fold i trains on everything before its block.
    TimeSeries {
        /// Folds (>= 2).
        k: usize,
    },
}

/// One fold: row numbers to train on and to validate on, each ascending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fold {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows.
    pub validation: Vec<usize>,
}

/// Sizes of `k` near-equal blocks of `n` (the first `n % k` one larger), as scikit-learn cuts.
fn blocks(n: usize, k: usize) -> Vec<usize> {
    (0..k).map(|i| n / k + usize::from(i < n % k)).collect()
}

impl Cv {
    fn k(&self) -> usize {
        match self {
            Cv::KFold { k, .. } | Cv::StratifiedKFold { k } | Cv::TimeSeries { k } => *k,
        }
    }

    /// Folds over `n` rows; `classes` (a class index per row) is needed for stratified folds.
    /// Time-series folds assume the rows are in time order.
    pub fn folds(&self, n: usize, classes: Option<&[usize]>, seed: Seed) -> Result<Vec<Fold>> {
        let k = self.k();
        let need = if matches!(self, Cv::TimeSeries { .. }) { k + 1 } else { k };
        if k < 2 || n < need {
            return Err(TuneError::Invalid {
                key: "cv.k".into(),
                message: format!("{k} folds need k >= 2 and at least {need} rows (there are {n})"),
            });
        }
        let mut validation_of: Vec<Vec<usize>> = vec![Vec::new(); k];
        match self {
            Cv::KFold { shuffle, .. } => {
                let order: Vec<usize> =
                    if *shuffle { seed.derive("kfold").draws().permutation(n) } else { (0..n).collect() };
                let mut at = 0;
                for (f, size) in blocks(n, k).into_iter().enumerate() {
                    validation_of[f].extend_from_slice(&order[at..at + size]);
                    at += size;
                }
            }
            Cv::StratifiedKFold { .. } => {
                let Some(classes) = classes else {
                    return Err(TuneError::Invalid {
                        key: "cv.stratified_k_fold".into(),
                        message: "needs class labels".into(),
                    });
                };
                if classes.len() != n {
                    return Err(TuneError::Invalid {
                        key: "cv".into(),
                        message: format!("{} labels for {n} rows", classes.len()),
                    });
                }
                let count = classes.iter().max().map_or(0, |m| m + 1);
                let mut draws = seed.derive("stratified").draws();
                // Deal each class's rows round-robin over the folds, continuing where the previous
                // class stopped, so fold sizes stay within one row of each other.
                let mut next = 0;
                for c in 0..count {
                    let mut rows: Vec<usize> = (0..n).filter(|&i| classes[i] == c).collect();
                    if rows.is_empty() {
                        continue;
                    }
                    if rows.len() < k {
                        return Err(TuneError::SmallClass { class: c, rows: rows.len(), folds: k });
                    }
                    draws.shuffle(&mut rows);
                    for r in rows {
                        validation_of[next % k].push(r);
                        next += 1;
                    }
                }
            }
            Cv::TimeSeries { .. } => {
                // scikit-learn's TimeSeriesSplit: k validation blocks of n / (k + 1) rows at the end.
                let size = n / (k + 1);
                let first = n - k * size;
                let mut out = Vec::with_capacity(k);
                for f in 0..k {
                    let start = first + f * size;
                    out.push(Fold { train: (0..start).collect(), validation: (start..start + size).collect() });
                }
                return Ok(out);
            }
        }
        Ok(validation_of
            .into_iter()
            .map(|mut validation| {
                validation.sort_unstable();
                let mut inside = vec![false; n];
                validation.iter().for_each(|&i| inside[i] = true);
                Fold { train: (0..n).filter(|&i| !inside[i]).collect(), validation }
            })
            .collect())
    }
}
